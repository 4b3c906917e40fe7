/**
 * Reads a V8 .cpuprofile and says where the CPU went: self time by origin (our source folders, each npm
 * package, Node internals, GC, idle) and the heaviest functions. Used by ./run.ts --profile; also runnable
 * alone: `node --import tsx bench/launch/profile-summary.ts file.cpuprofile`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall time covered by the profile, ms. */
  wallMs: number;
  /** Sampled non-idle time, ms. */
  busyMs: number;
  byOrigin: { origin: string; ms: number }[];
  /** Self time, native and Node-internal time included in the nearest caller from our code or a package. */
  byCaller: { origin: string; ms: number }[];
  topFunctions: { name: string; origin: string; ms: number }[];
}

export function originOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    return 'native';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '?');
  }
  if (url.startsWith('node:')) return 'node internals';
  const src = /\/src\/([^/]+)\//.exec(url) ?? /\/src\/([^/]+)$/.exec(url);
  if (src) return `src/${src[1]}`;
  if (url.includes('/test/fixtures/')) return 'test/fixtures';
  if (url.includes('/bench/')) return 'bench';
  return url.replace(/^file:\/\//, '');
}

const UNATTRIBUTED = new Set(['native', 'node internals']);

export function summariseProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const callerOrigin = (id: number): string => {
    const own = byId.get(id);
    const first = own ? originOf(own.callFrame.url, own.callFrame.functionName) : '?';
    if (!UNATTRIBUTED.has(first)) return first;
    for (let at = parent.get(id); at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (!n) break;
      const o = originOf(n.callFrame.url, n.callFrame.functionName);
      if (!UNATTRIBUTED.has(o) && n.callFrame.functionName !== '(root)') return o;
    }
    return first;
  };
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    // timeDeltas[i] is the time since the previous sample; attribute the next delta to this sample.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const origins = new Map<string, number>();
  const callers = new Map<string, number>();
  const functions = new Map<string, { name: string; origin: string; us: number }>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const origin = originOf(url, functionName);
    origins.set(origin, (origins.get(origin) ?? 0) + us);
    const caller = callerOrigin(id);
    callers.set(caller, (callers.get(caller) ?? 0) + us);
    if (origin !== 'idle') busy += us;
    const name =
      `${functionName || '(anonymous)'} ${url ? `${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : ''}`.trim();
    const f = functions.get(name) ?? { name, origin, us: 0 };
    f.us += us;
    functions.set(name, f);
  }
  return {
    wallMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busy / 1000,
    byOrigin: [...origins].map(([origin, us]) => ({ origin, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
    byCaller: [...callers].map(([origin, us]) => ({ origin, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
    topFunctions: [...functions.values()]
      .filter((f) => f.origin !== 'idle')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, origin: f.origin, ms: f.us / 1000 })),
  };
}

export async function summariseProfileFile(file: string, top?: number): Promise<ProfileSummary> {
  return summariseProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, top);
}

/** Text for the console: self time per origin, per pair when `pairs` is given. */
export function formatProfile(label: string, s: ProfileSummary, pairs: number): string {
  const per = (ms: number) => (pairs > 0 ? `${(ms / pairs).toFixed(3)} ms/pair` : '');
  const lines = [
    `${label}: CPU profile of the measured window — busy ${s.busyMs.toFixed(0)} ms of ${s.wallMs.toFixed(0)} ms wall (${per(s.busyMs)})`,
    '  self time by origin:',
    ...s.byOrigin
      .filter((o) => o.origin !== 'idle' && o.ms >= s.busyMs * 0.005)
      .map(
        (o) =>
          `    ${o.origin.padEnd(34)} ${o.ms.toFixed(0).padStart(7)} ms  ${((100 * o.ms) / s.busyMs).toFixed(1).padStart(5)} %  ${per(o.ms)}`,
      ),
    '  the same, with native and Node-internal time charged to the nearest caller (our code or a package):',
    ...s.byCaller
      .filter((o) => o.origin !== 'idle' && o.ms >= s.busyMs * 0.005)
      .map(
        (o) =>
          `    ${o.origin.padEnd(34)} ${o.ms.toFixed(0).padStart(7)} ms  ${((100 * o.ms) / s.busyMs).toFixed(1).padStart(5)} %  ${per(o.ms)}`,
      ),
    '  heaviest functions (self):',
    ...s.topFunctions.map(
      (f) =>
        `    ${f.ms.toFixed(0).padStart(7)} ms  ${((100 * f.ms) / s.busyMs).toFixed(1).padStart(5)} %  ${f.name}  [${f.origin}]`,
    ),
  ];
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/launch/profile-summary.ts file.cpuprofile [pairs]\n');
    process.exit(64);
  }
  const summary = await summariseProfileFile(file, 25);
  process.stdout.write(`${formatProfile(file, summary, Number(process.argv[3] ?? 0))}\n`);
}
