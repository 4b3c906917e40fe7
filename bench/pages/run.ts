/**
 * What a learner on a mid-range phone waits for: the tool's learner pages, launched through the project's own
 * test platform (test/fixtures/openedx) in a cross-site iframe, loaded by Debian's Chromium under CDP emulation
 * of a mid-range phone. See bench/README.md, "pages", for the profile's figures and how to read the table.
 *
 *   node --import tsx bench/pages/run.ts [--runs 3] [--db pg|pglite] [--beat-seconds 12] [--json file]
 *
 * The tool runs in this process (src/app.ts buildApp, every plugin) on the local PostgreSQL
 * (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres; the bench creates and drops
 * `emargement_bench_pages`) or on an in-memory PGlite (`--db pglite`), with the tracker's accelerated profile
 * (a beat every second) so that the tracker's cost per beat can be measured in a short window.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { type Browser, type CDPSession, chromium, type Frame, type Page } from 'playwright-core';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createDatabase } from '../../src/db/index.js';
import { setTrackingProfile } from '../../src/tracking/plugin.js';
import {
  type FakeComponent,
  type FakeUser,
  injectTransport,
  startFakeOpenEdx,
} from '../../test/fixtures/openedx/index.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    db: { type: 'string', default: 'pg' },
    'beat-windows': { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const RUNS = Number(args.runs);
const BEAT_WINDOWS = Number(args['beat-windows']);

/**
 * The mid-range phone. Network: Chrome DevTools' « Slow 4G » preset (the one Lighthouse's mobile run also
 * uses): 562.5 ms added latency per request (150 ms RTT × 3.75), 1.6 Mbit/s down and 750 kbit/s up, each × 0.9
 * (i.e. 180 000 and 84 375 bytes/s). CPU: 4× slowdown of the renderer's main thread. Viewport 375×667, DPR 2,
 * touch, a phone's user agent.
 */
const NETWORK = { offline: false, latency: 562.5, downloadThroughput: 180_000, uploadThroughput: 84_375 };
const CPU_SLOWDOWN = Number(process.env.BENCH_PAGES_CPU_SLOWDOWN ?? 4);
const VIEWPORT = { width: 375, height: 667 };
const USER_AGENT =
  'Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36';

const TARGETS = { bytes: 60 * 1024, requests: 6, lcpMs: 2500, beatMs: 1 };

interface Req {
  id: string;
  url: string;
  type: string;
  frameId: string | undefined;
  loaderId: string | undefined;
  method: string;
  status?: number;
  bytes: number;
  fromCache: boolean;
  failed?: string;
  at: number;
}

interface PageFigures {
  page: string;
  bytes: number;
  byKind: Record<string, number>;
  requests: number;
  cached: number;
  excludedVideo: number;
  fcpMs: number | null;
  lcpMs: number | null;
  /** LCP counted from the LMS page's own navigation (iframe src, OIDC hops, auto-post included). */
  lcpFromLmsMs: number | null;
  urls: string[];
}

function kindOf(r: Req): string {
  if (r.type === 'Document') return 'html';
  if (r.type === 'Stylesheet') return 'css';
  if (r.type === 'Script') return 'js';
  if (r.type === 'Font') return 'font';
  if (r.type === 'Image') return 'img';
  if (r.type === 'Fetch' || r.type === 'XHR' || r.type === 'Ping') return 'api';
  return r.type.toLowerCase();
}

/** Video: media elements' requests and anything under a video player's frame (the placeholder included). */
function isVideo(r: Req, videoFrames: Set<string>): boolean {
  return (
    r.type === 'Media' ||
    (r.frameId !== undefined && videoFrames.has(r.frameId)) ||
    /video-placeholder|youtube|vimeo|dailymotion|\.mp4|\.webm|\.vtt/i.test(r.url)
  );
}

/** Network log of one page (CDP, page target: the tool's frame shares the page's renderer, see below). */
function networkLog(session: CDPSession) {
  const byId = new Map<string, Req>();
  const all: Req[] = [];
  session.on('Network.requestWillBeSent', (e) => {
    const prev = byId.get(e.requestId);
    if (prev && e.redirectResponse) {
      prev.status = e.redirectResponse.status;
      prev.bytes += e.redirectResponse.encodedDataLength ?? 0;
    }
    const r: Req = {
      id: e.requestId,
      url: e.request.url,
      type: e.type ?? 'Other',
      frameId: e.frameId,
      loaderId: e.loaderId,
      method: e.request.method,
      bytes: 0,
      fromCache: false,
      at: Date.now(),
    };
    byId.set(e.requestId, r);
    all.push(r);
  });
  session.on('Network.requestServedFromCache', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.fromCache = true;
  });
  session.on('Network.responseReceived', (e) => {
    const r = byId.get(e.requestId);
    if (!r) return;
    r.status = e.response.status;
    if (e.response.fromDiskCache || e.response.fromPrefetchCache) r.fromCache = true;
    r.type = e.type ?? r.type;
  });
  session.on('Network.loadingFinished', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.bytes += e.encodedDataLength;
  });
  session.on('Network.loadingFailed', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.failed = e.errorText;
  });
  return all;
}

async function phone(browser: Browser) {
  const context = await browser.newContext({
    viewport: VIEWPORT,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    userAgent: USER_AGENT,
    locale: 'fr-FR',
  });
  const page = await context.newPage();
  const session = await context.newCDPSession(page);
  await session.send('Network.enable');
  await session.send('Network.setCacheDisabled', { cacheDisabled: false });
  await session.send('Network.emulateNetworkConditions', NETWORK);
  await session.send('Emulation.setCPUThrottlingRate', { rate: CPU_SLOWDOWN });
  await session.send('Performance.enable');
  const log = networkLog(session);
  // Beats counted from Playwright's view of the page, which includes its workers' requests (the tracker sends
  // from a dedicated worker; the page's own CDP session does not see a worker's requests).
  let beats = 0;
  const seen: PlaywrightBeat[] = [];
  workerBeats.set(log, seen);
  page.on('request', (r) => {
    if (r.url().endsWith('/api/tracking/beats')) beats++;
  });
  page.on('requestfinished', (r) => {
    if (!r.url().endsWith('/api/tracking/beats')) return;
    const at = Date.now();
    r.sizes().then(
      (z) =>
        seen.push({ at, bytes: z.requestHeadersSize + z.requestBodySize + z.responseHeadersSize + z.responseBodySize }),
      () => {},
    );
  });
  return { context, page, session, log, beatsSeen: () => beats };
}

/** The tool's frame, once its document at `path` has loaded. */
async function toolFrame(page: Page, toolUrl: string, path: string, timeoutMs = 120_000): Promise<Frame> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const frame = page.frames().find((f) => f.parentFrame() === page.mainFrame() && f.url().startsWith(toolUrl));
    if (frame && new URL(frame.url()).pathname === path) {
      await frame.waitForLoadState('load', { timeout: Math.max(1, end - Date.now()) });
      return frame;
    }
    if (Date.now() > end) throw new Error(`the tool's frame never reached ${path} (at ${frame?.url() ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Paint figures of a frame's document (its own PerformanceObserver, buffered entries). */
async function paints(frame: Frame): Promise<{ fcp: number | null; lcp: number | null; timeOrigin: number }> {
  return frame.evaluate(
    () =>
      new Promise<{ fcp: number | null; lcp: number | null; timeOrigin: number }>((resolve) => {
        let lcp: number | null = null;
        const po = new PerformanceObserver((list) => {
          for (const e of list.getEntries()) lcp = e.startTime;
        });
        po.observe({ type: 'largest-contentful-paint', buffered: true });
        setTimeout(() => {
          po.disconnect();
          const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null;
          resolve({ fcp, lcp, timeOrigin: performance.timeOrigin });
        }, 200);
      }),
  );
}

/**
 * The beats as Playwright saw them, workers' included: the tracker sends from a dedicated worker, whose
 * requests the page's own CDP session does not see. Used for the page-open beat when CDP has none.
 */
interface PlaywrightBeat {
  at: number;
  bytes: number;
}
const workerBeats = new WeakMap<Req[], PlaywrightBeat[]>();

async function figuresOf(
  name: string,
  page: Page,
  frame: Frame,
  log: Req[],
  from: number,
  fromLms = true,
): Promise<PageFigures> {
  // Let late requests (deferred scripts, the tracker's first beat, fonts) land before counting.
  await new Promise((r) => setTimeout(r, 2_500));
  const p = await paints(frame);
  const top = (await page.evaluate(() => performance.timeOrigin)) as number;
  const docs = log.slice(from);
  const doc = docs[0] as Req;
  // The page's own requests: its document and what that document loaded (same loader), plus any frame it
  // opened (a video player: excluded below). The previous document's pagehide beacon is not the page's.
  const videoFrames = new Set<string>();
  for (const r of docs) {
    if (r.type === 'Document' && r.frameId && r.frameId !== doc.frameId && r !== doc) videoFrames.add(r.frameId);
  }
  const mine = docs.filter((r) => r.loaderId === doc.loaderId || (r.frameId && videoFrames.has(r.frameId)));
  // Periodic beats are the tracker's running cost (measured below), not the page load: the first beat (the
  // page-open beat) is counted, later ones are not (the accelerated profile beats every second).
  const firstBeat = mine.find((r) => r.url.endsWith('/api/tracking/beats'));
  const counted = mine.filter(
    (r) => !isVideo(r, videoFrames) && (!r.url.endsWith('/api/tracking/beats') || r === firstBeat),
  );
  const network = counted.filter((r) => !r.fromCache);
  const byKind: Record<string, number> = {};
  for (const r of network) byKind[kindOf(r)] = (byKind[kindOf(r)] ?? 0) + r.bytes;
  // The page-open beat sent by the tracker's worker (not in the page's CDP log): counted from Playwright's view.
  // Only on a page that loaded the tracker (the previous page's beacon or late beats are not this page's).
  const tracked = mine.some((r) => r.url.includes('/assets/tracker.js'));
  const workerBeat = firstBeat || !tracked ? undefined : workerBeats.get(log)?.find((b) => b.at >= doc.at);
  if (workerBeat) byKind.api = (byKind.api ?? 0) + workerBeat.bytes;
  return {
    page: name,
    bytes: network.reduce((s, r) => s + r.bytes, 0) + (workerBeat?.bytes ?? 0),
    byKind,
    requests: network.length + (workerBeat ? 1 : 0),
    cached: counted.length - network.length,
    excludedVideo: mine.length - counted.length,
    fcpMs: p.fcp,
    lcpMs: p.lcp,
    lcpFromLmsMs: p.lcp === null || !fromLms ? null : p.timeOrigin + p.lcp - top,
    urls: [
      ...counted.map(
        (r) =>
          `${r.method} ${r.url.replace(/session_token=[^&]+/, 'session_token=…').slice(0, 110)} ${r.status ?? '?'} ${r.bytes} B${r.fromCache ? ' (cache)' : ''}`,
      ),
      ...(workerBeat ? [`POST /api/tracking/beats (from the tracker's worker) ${workerBeat.bytes} B`] : []),
    ],
  };
}

/** Index in the log of the tool document request for `path` (the page's own navigation). */
function docIndex(log: Req[], toolUrl: string, path: string): number {
  for (let i = log.length - 1; i >= 0; i--) {
    const r = log[i] as Req;
    if (r.type === 'Document' && r.url.startsWith(toolUrl) && new URL(r.url).pathname === path) return i;
  }
  throw new Error(`no document request for ${path}`);
}

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string; data?: { url?: string } };
}

/**
 * The tracker's main-thread cost per beat, in thread CPU time (the machine is shared: wall time would count
 * the time the renderer waits for a core). After one pointer move the tracker beats every second until it
 * calls the learner idle (6 s in the accelerated profile); a Chromium trace of a 5 s window with no other
 * input holds the beats' work and little else. Chromium's CPU throttling keeps the throttled thread busy
 * while it holds it back, so thread CPU time under throttling is already the phone's time (checked: the same
 * beat costs ~1.3 ms unthrottled and ~7.5 ms at 4×). Two figures: the CPU of every top-level task of the
 * renderer's main thread (timers, fetch completions, microtasks, IPC, anything else that ran: an upper
 * bound), and the CPU of the JavaScript calls into tracker.js (its timer and listener calls: the beat itself,
 * without the promise callbacks of the fetch).
 */
async function trackerCost(
  browser: Browser,
  page: Page,
  beatsSeen: () => number,
  script = '/assets/tracker.js',
  region: 'iframe' | 'body' = 'iframe',
  label = 'tracker',
  idleFirst = false,
) {
  const box = await page.locator(region).first().boundingBox();
  if (!box) throw new Error(`no ${region} box`);
  let beats = 0;
  let tasksUs = 0;
  let callsUs = 0;
  let windows = 0;
  let idle: { tasksUs: number; callsUs: number; beats: number } | null = null;
  // A bare page starts its beats at the first pointer move: its window with no beat comes first.
  if (idleFirst) {
    await new Promise((r) => setTimeout(r, 1_000));
    const beatsBefore = beatsSeen();
    const t = await traceWindow(browser, page, script, `${label}.idle`);
    idle = { ...t, beats: beatsSeen() - beatsBefore };
  }
  for (let w = 0; w < BEAT_WINDOWS; w++) {
    await page.mouse.move(box.x + 40 + (w % 2) * 30, box.y + 120);
    await new Promise((r) => setTimeout(r, 300));
    const beatsBefore = beatsSeen();
    const t = await traceWindow(browser, page, script, `${label}.${w}`);
    beats += beatsSeen() - beatsBefore;
    windows++;
    tasksUs += t.tasksUs;
    callsUs += t.callsUs;
  }
  // The same page once nothing beats any more (the tracker calls the learner idle 6 s after the last input):
  // what the renderer's main thread does anyway.
  if (!idleFirst) {
    await new Promise((r) => setTimeout(r, IDLE_WAIT_MS));
    const beatsBefore = beatsSeen();
    const t = await traceWindow(browser, page, script, `${label}.idle`);
    idle = { ...t, beats: beatsSeen() - beatsBefore };
  }
  const background = idle ? idle.tasksUs * windows : 0;
  return {
    beats,
    windows,
    tasksMsPerBeat: beats ? tasksUs / 1000 / beats : Number.NaN,
    trackerMsPerBeat: beats ? callsUs / 1000 / beats : Number.NaN,
    /** All tasks of a window with no beat (same page, the tracker idle), per window, and its beats (0 expected). */
    idleTasksMsPerWindow: idle ? idle.tasksUs / 1000 : Number.NaN,
    idleBeats: idle ? idle.beats : Number.NaN,
    /** All tasks minus what the same page runs with no beat, per beat: what the beats add to the main thread. */
    addedTasksMsPerBeat: beats && idle ? (tasksUs - background) / 1000 / beats : Number.NaN,
  };
}

const WINDOW_MS = 5_000;
const IDLE_WAIT_MS = 8_000;

/** One traced window of the renderer's main thread: CPU of its top-level tasks and of the calls into `script`. */
async function traceWindow(browser: Browser, page: Page, script: string, label: string) {
  await browser.startTracing(page, {
    categories: [
      'toplevel',
      'devtools.timeline',
      'disabled-by-default-devtools.timeline',
      'v8.execute',
      // BENCH_PAGES_CATEGORIES=a,b: more trace categories, to see what a task does (with BENCH_PAGES_TRACE).
      ...(process.env.BENCH_PAGES_CATEGORIES?.split(',') ?? []),
    ],
  });
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const trace = JSON.parse((await browser.stopTracing()).toString('utf8')) as { traceEvents: TraceEvent[] };
  if (process.env.BENCH_PAGES_TRACE)
    await writeFile(`${process.env.BENCH_PAGES_TRACE}.${label}.json`, JSON.stringify(trace));
  const events = trace.traceEvents;
  const main = new Set(
    events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`),
  );
  const onMain = events.filter((e) => e.ph === 'X' && main.has(`${e.pid}:${e.tid}`));
  // Outermost tasks only (the scheduler's RunTask may wrap ThreadControllerImpl::RunTask or not).
  let tasksUs = 0;
  let taskEnd = 0;
  for (const e of onMain
    .filter((x) => x.name === 'RunTask' || x.name === 'ThreadControllerImpl::RunTask')
    .sort((a, b) => a.ts - b.ts)) {
    if (e.ts < taskEnd) continue;
    tasksUs += e.tdur ?? 0;
    taskEnd = e.ts + (e.dur ?? 0);
  }
  // Outermost calls into the script (a listener may call into another of its functions: count it once).
  let callsUs = 0;
  let until = 0;
  for (const e of onMain
    .filter((x) => x.name === 'FunctionCall' && x.args?.data?.url?.includes(script))
    .sort((a, b) => a.ts - b.ts)) {
    if (e.ts < until) continue;
    callsUs += e.tdur ?? 0;
    until = e.ts + (e.dur ?? 0);
  }
  return { tasksUs, callsUs };
}

/**
 * The bare baselines of the tracker's cost, measured in the same run under the same emulation: a page of the
 * tool's origin doing nothing but one `fetch()` per beat interval to the beats endpoint, with a real beat
 * (the module page's token and ticket, its own tab) whose JSON answer it reads — from the page itself
 * (`page`: what sending a beat from the page costs at the least), or from a dedicated worker that the page
 * starts and never hears from again (`worker`: what one request a beat costs the page's main thread however
 * little the page does, the browser's own bookkeeping of a request made for the page). Both start at the
 * first pointer move, so that a window before it shows the page with nothing running.
 */
const BARE_PATH = '/bench/bare-beats';
const BARE_WORKER_PATH = '/bench/bare-worker-beats';
function barePage(
  config: { endpoint: string; sessionToken: string; ticket: string; beatMs: number },
  mode: 'page' | 'worker',
): string {
  const c = JSON.stringify({
    endpoint: config.endpoint,
    token: config.sessionToken,
    ticket: config.ticket,
    beatMs: config.beatMs,
  });
  const beats = `
const tab = crypto.randomUUID();
let seq = 0;
function send(kind) {
  const item = { kind, seq: seq++, clientTime: new Date().toISOString() };
  if (kind === 'beat') Object.assign(item, { cause: 'periodic', inputAgoMs: 0, media: false });
  fetch(c.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + c.token },
    body: JSON.stringify({ tabId: tab, ticket: c.ticket, items: [item] }),
    credentials: 'omit',
  }).then((r) => r.json()).catch(() => {});
}
send('open');
setInterval(() => send('beat'), c.beatMs);`;
  const start =
    mode === 'page'
      ? `function start(c) {${beats}\n}`
      : `function start(c) {
  const src = 'const c = ' + JSON.stringify(c) + ';' + ${JSON.stringify(beats)};
  new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
}`;
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>bare</title></head><body><p>bare</p>
<script type="application/json" id="c">${c.replace(/</g, '\\u003c')}</script>
<script>
${start}
addEventListener('pointermove', () => start(JSON.parse(document.getElementById('c').textContent)), { once: true });
</script></body></html>`;
}

async function main() {
  const dbUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = 'emargement_bench_pages';
  let databaseUrl: string | undefined;
  if (args.db === 'pg') {
    const admin = new pg.Client({ connectionString: dbUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${dbName} with (force)`);
    await admin.query(`create database ${dbName}`);
    await admin.end();
    const u = new URL(dbUrl);
    u.pathname = `/${dbName}`;
    databaseUrl = u.toString();
  }

  const { freePort } = await import('../../test/helpers/ports.js');
  const port = await freePort();
  const toolUrl = `http://localhost:${port}`;
  const fake = await startFakeOpenEdx({ toolUrl, component: { custom: { theme: 'digitalisation' } } });
  const themeLink = fake.components[0] as FakeComponent;
  const parcoursLink = fake.addComponent({ custom: {} });
  const dir = await mkdtemp(join(tmpdir(), 'emargement-bench-pages-'));
  const registrations = join(dir, 'registrations.json');
  await writeFile(registrations, JSON.stringify(fake.registrations(), null, 2));
  const config = loadConfig({
    NODE_ENV: 'development',
    PUBLIC_URL: toolUrl,
    PORT: String(port),
    APP_SECRET: 'bench-pages-secret-0123456789-abcdefghijklmnop',
    LTI_REGISTRATIONS_FILE: registrations,
    LOG_LEVEL: 'warn',
    SCHEDULED_TASKS: 'false',
    DATA_DIR: dir,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  });
  const database = databaseUrl ? undefined : await createDatabase({});
  const app = await buildApp({ config, ...(database ? { database, closeDatabase: true } : {}) });
  setTrackingProfile(app, 'accelerated');
  await app.ready();
  await app.listen({ port, host: '127.0.0.1' });
  const inject = injectTransport(app, toolUrl);

  /** A learner with a profile (onboarded through the form's POST, as the onboarding page does). */
  async function onboarded(name: string): Promise<FakeUser> {
    const user = fake.createUser({ name });
    const launch = await fake.launch({ user, transport: inject, component: themeLink });
    if (!launch.sessionToken) throw new Error(`launch failed: ${launch.final.status}`);
    const res = await app.inject({
      method: 'POST',
      url: '/catalog/onboarding',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        session_token: launch.sessionToken,
        civility: 'madame',
        familyName: 'Durand',
        givenName: 'Léa',
        companyName: 'Hôtel du Parc',
        siret: '732 829 320 00074',
        headcountBand: '10-49',
        idcc: '',
        fund: 'akto',
      }).toString(),
    });
    if (res.statusCode !== 200) throw new Error(`onboarding failed: ${res.statusCode}`);
    return user;
  }

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // A mid-range Android phone runs a cross-site iframe in its parent's renderer (Chrome for Android
      // isolates only sites the user logs into, on devices with enough memory): one renderer, throttled as one.
      '--disable-site-isolation-trials',
    ],
  });

  const results: PageFigures[][] = [];
  const beatsRuns: Awaited<ReturnType<typeof trackerCost>>[] = [];
  const bareRuns: Awaited<ReturnType<typeof trackerCost>>[] = [];
  const bareWorkerRuns: Awaited<ReturnType<typeof trackerCost>>[] = [];
  const bareFramedRuns: Awaited<ReturnType<typeof trackerCost>>[] = [];
  let trackerConfig: { endpoint: string; sessionToken: string; ticket: string; beatMs: number } | null = null;
  try {
    for (let run = 0; run < RUNS; run++) {
      const rows: PageFigures[] = [];
      // 1. Onboarding form: a learner's first launch.
      {
        const { context, page, log } = await phone(browser);
        const user = fake.createUser({ name: `Nouvelle Apprenante ${run}` });
        await page.goto(fake.coursePageUrl({ user, component: themeLink }));
        const frame = await toolFrame(page, toolUrl, '/lti/launch');
        rows.push(await figuresOf('onboarding form', page, frame, log, docIndex(log, toolUrl, '/lti/launch')));
        await context.close();
      }
      // 2. A module page (theme link, onboarded learner), then its time page through its link, then the tracker.
      const learner = await onboarded(`Apprenante ${run}`);
      {
        const { context, page, log, beatsSeen } = await phone(browser);
        await page.goto(fake.coursePageUrl({ user: learner, component: themeLink }));
        const frame = await toolFrame(page, toolUrl, '/lti/launch');
        if (!(await frame.evaluate(() => document.body.dataset.moduleId ?? null))) {
          throw new Error('the theme link did not open a module page');
        }
        rows.push(await figuresOf('module page', page, frame, log, docIndex(log, toolUrl, '/lti/launch')));
        if (run === 0) {
          for (const line of (rows.at(-1) as PageFigures).urls) console.log(`  module page: ${line}`);
        }
        beatsRuns.push(await trackerCost(browser, page, beatsSeen));
        trackerConfig = JSON.parse(
          await frame.locator('#emargement-tracker-config').evaluate((e) => e.textContent ?? ''),
        ) as typeof trackerConfig;
        if (!(await frame.locator('a[href*="/tracking/time"]').count())) {
          const hrefs = await frame.evaluate(() =>
            [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')),
          );
          throw new Error(`no time link in ${frame.url()} (detached: ${frame.isDetached()}): ${hrefs.join(' ')}`);
        }
        await frame.locator('a[href*="/tracking/time"]').first().click();
        const timeFrame = await toolFrame(page, toolUrl, '/tracking/time');
        rows.push(
          await figuresOf(
            'time page (from the module page)',
            page,
            timeFrame,
            log,
            docIndex(log, toolUrl, '/tracking/time'),
            false,
          ),
        );
        // 3. The module page again in the same browser (a later visit: what its caching saves).
        await page.goto(fake.coursePageUrl({ user: learner, component: themeLink }));
        const again = await toolFrame(page, toolUrl, '/lti/launch');
        rows.push(await figuresOf('module page, later visit', page, again, log, docIndex(log, toolUrl, '/lti/launch')));
        await context.close();
      }
      // The bare baselines: one fetch() per beat from a page of the tool's origin, or from its worker; the
      // worker's page also framed as the module page is (another site's page around it), to compare like with like.
      if (trackerConfig) {
        for (const mode of ['page', 'worker', 'framed worker'] as const) {
          const { context, page, beatsSeen } = await phone(browser);
          const path = mode === 'page' ? BARE_PATH : BARE_WORKER_PATH;
          const html = barePage(trackerConfig, mode === 'page' ? 'page' : 'worker');
          await page.route(`${toolUrl}${path}`, (route) =>
            route.fulfill({ contentType: 'text/html; charset=utf-8', body: html }),
          );
          if (mode === 'framed worker') {
            const outer = `${fake.url}/bench/course-page`;
            await page.route(outer, (route) =>
              route.fulfill({
                contentType: 'text/html; charset=utf-8',
                body: `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>cours</title></head><body><h1>Cours</h1><iframe src="${toolUrl}${path}" width="360" height="500"></iframe></body></html>`,
              }),
            );
            await page.goto(outer);
            await page.frameLocator('iframe').locator('p').waitFor();
          } else {
            await page.goto(`${toolUrl}${path}`);
          }
          const region = mode === 'framed worker' ? 'iframe' : 'body';
          const cost = await trackerCost(
            browser,
            page,
            beatsSeen,
            path,
            region,
            `bare-${mode.replace(' ', '-')}`,
            true,
          );
          (mode === 'page' ? bareRuns : mode === 'worker' ? bareWorkerRuns : bareFramedRuns).push(cost);
          await context.close();
        }
      }
      // 4. « Mon parcours »: a link without theme or module.
      {
        const { context, page, log } = await phone(browser);
        await page.goto(fake.coursePageUrl({ user: learner, component: parcoursLink }));
        const frame = await toolFrame(page, toolUrl, '/lti/launch');
        rows.push(await figuresOf('Mon parcours', page, frame, log, docIndex(log, toolUrl, '/lti/launch')));
        await context.close();
      }
      results.push(rows);
      console.error(`run ${run + 1}/${RUNS} done`);
    }
  } finally {
    await browser.close();
    await app.close();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
    if (databaseUrl) {
      const admin = new pg.Client({ connectionString: dbUrl });
      await admin.connect();
      await admin.query(`drop database if exists ${dbName} with (force)`);
      await admin.end();
    }
  }

  const median = (xs: (number | null)[]) => {
    const v = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
    return v.length ? (v[Math.floor((v.length - 1) / 2)] as number) : Number.NaN;
  };
  const names = (results[0] ?? []).map((r) => r.page);
  const ok = (b: boolean) => (b ? 'ok' : 'OVER');
  console.log(
    `\nmid-range phone: CPU ${CPU_SLOWDOWN}× slower, Slow 4G (${NETWORK.latency} ms, ${(NETWORK.downloadThroughput * 8) / 1000} kbit/s down, ${(NETWORK.uploadThroughput * 8) / 1000} kbit/s up), ${VIEWPORT.width}×${VIEWPORT.height}; median of ${RUNS} run(s)\n`,
  );
  console.log(
    '| page | transferred (html / css / js / font / api / other) | requests (+ from cache) | FCP | LCP | LCP from the LMS page | targets (60 kB, 6 req, LCP 2.5 s) |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const name of names) {
    const rows = results.map((rs) => rs.find((r) => r.page === name) as PageFigures);
    const m = (f: (r: PageFigures) => number | null) => median(rows.map(f));
    const bytes = m((r) => r.bytes);
    const kinds = ['html', 'css', 'js', 'font', 'api']
      .map((k) => (m((r) => r.byKind[k] ?? 0) / 1024).toFixed(1))
      .join(' / ');
    const other = m((r) => r.bytes - ['html', 'css', 'js', 'font', 'api'].reduce((s, k) => s + (r.byKind[k] ?? 0), 0));
    const requests = m((r) => r.requests);
    const lcp = m((r) => r.lcpMs);
    console.log(
      `| ${name} | ${(bytes / 1024).toFixed(1)} kB (${kinds} / ${(other / 1024).toFixed(1)}) | ${requests} (+${m((r) => r.cached)}) | ${m((r) => r.fcpMs).toFixed(0)} ms | ${lcp.toFixed(0)} ms | ${Number.isNaN(m((r) => r.lcpFromLmsMs)) ? 'n/a' : `${m((r) => r.lcpFromLmsMs).toFixed(0)} ms`} | ${ok(bytes <= TARGETS.bytes)} · ${ok(requests <= TARGETS.requests)} · ${ok(lcp <= TARGETS.lcpMs)} |`,
    );
  }
  const tasks = median(beatsRuns.map((b) => b.tasksMsPerBeat));
  const calls = median(beatsRuns.map((b) => b.trackerMsPerBeat));
  const added = median(beatsRuns.map((b) => b.addedTasksMsPerBeat));
  const runsOf = (f: (b: (typeof beatsRuns)[number]) => number) => beatsRuns.map((b) => f(b).toFixed(3)).join(', ');
  console.log(
    `\ntracker, main-thread CPU per beat at ${CPU_SLOWDOWN}× (${beatsRuns.map((b) => `${b.beats} beats in ${b.windows} × 5 s`).join(', ')}): all renderer main-thread tasks ${tasks.toFixed(3)} ms (runs: ${runsOf((b) => b.tasksMsPerBeat)}); the same page with no beat (tracker idle, ${beatsRuns.map((b) => b.idleBeats).join(', ')} beats): ${runsOf((b) => b.idleTasksMsPerWindow)} ms per 5 s window; added by the beats: ${added.toFixed(3)} ms (runs: ${runsOf((b) => b.addedTasksMsPerBeat)}), of which tracker.js calls ${calls.toFixed(3)} ms (runs: ${runsOf((b) => b.trackerMsPerBeat)}) — target ≤ ${TARGETS.beatMs} ms (tracker.js calls): ${ok(calls <= TARGETS.beatMs)}`,
  );
  for (const [what, list] of [
    ['one fetch() per beat from a page', bareRuns],
    ['one fetch() per beat from a worker the page never hears from', bareWorkerRuns],
    ['the same worker, its page framed by another site (as the module page)', bareFramedRuns],
  ] as const) {
    const of = (f: (b: (typeof list)[number]) => number) => list.map((b) => f(b).toFixed(3)).join(', ');
    console.log(
      `bare baseline, ${what} (${list.map((b) => `${b.beats} fetches in ${b.windows} × 5 s`).join(', ')}): all renderer main-thread tasks ${median(list.map((b) => b.tasksMsPerBeat)).toFixed(3)} ms (runs: ${of((b) => b.tasksMsPerBeat)}); with nothing running yet: ${of((b) => b.idleTasksMsPerWindow)} ms per 5 s window; added by the fetches: ${median(list.map((b) => b.addedTasksMsPerBeat)).toFixed(3)} ms (runs: ${of((b) => b.addedTasksMsPerBeat)}), of which its script's calls ${median(list.map((b) => b.trackerMsPerBeat)).toFixed(3)} ms (runs: ${of((b) => b.trackerMsPerBeat)})`,
    );
  }
  const floor = median(bareWorkerRuns.map((b) => b.addedTasksMsPerBeat));
  const framedFloor = median(bareFramedRuns.map((b) => b.addedTasksMsPerBeat));
  const barePageAdded = median(bareRuns.map((b) => b.addedTasksMsPerBeat));
  console.log(
    `tracker / bare page fetch: added tasks ${(added / barePageAdded).toFixed(2)}, script calls ${(calls / median(bareRuns.map((b) => b.trackerMsPerBeat))).toFixed(2)}; tracker / bare worker fetch (the floor of one request a beat): added tasks ${(added / floor).toFixed(2)}, framed ${(added / framedFloor).toFixed(2)}`,
  );
  if (args.json)
    await writeFile(
      args.json,
      JSON.stringify({ results, beatsRuns, bareRuns, bareWorkerRuns, bareFramedRuns }, null, 2),
    );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
