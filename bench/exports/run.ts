import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.js';
import { createDatabase, migrateToLatest } from '../../src/db/index.js';
import { createToken, createUser } from '../../src/portal/index.js';
import { seedBench } from './seed.js';

/**
 * Summary export benchmark: 100k learners × 16 modules on PostgreSQL, in a database of its own;
 * CSV and XLSX timed end to end over HTTP against the service started the way production starts it
 * (`node dist/src/server.js`, the compiled build), with that process's idle and peak RSS read from /proc.
 * Targets: CSV < 5 s and < 150 MB.
 *
 *   node --import tsx bench/exports/run.ts [--learners 100000] [--modules 16] [--reseed] [--runs 3]
 *     [--url postgres://postgres@127.0.0.1:5432/postgres] [--runtime compiled|tsx] [--node-options "…"]
 *     [--only csv|xlsx] [--startup N]   (only start-up to /ready, N times each for the compiled build and tsx)
 */
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] as string) : fallback;
};
const learners = Number(opt('learners', '100000'));
const modules = Number(opt('modules', '16'));
const runs = Number(opt('runs', '3'));
/** `--only csv` or `--only xlsx`: measure that format alone. */
const onlyFormat = opt('only', '');
const runtime = opt('runtime', 'compiled');
if (runtime !== 'compiled' && runtime !== 'tsx') throw new Error('--runtime is compiled or tsx');
/** Node flags of the served process: by default those of `npm start` (package.json), as production runs. */
const startFlags = (JSON.parse(readFileSync('package.json', 'utf8')).scripts.start as string)
  .split(' ')
  .filter((w) => w.startsWith('--'));
const nodeOptions = process.argv.includes('--node-options')
  ? opt('node-options', '').split(' ').filter(Boolean)
  : startFlags;
const startupRounds = Number(opt('startup', '0'));
const adminUrl = opt('url', 'postgres://postgres@127.0.0.1:5432/postgres');
const dbName = `emargement_bench_exports_${learners}_${modules}`;
const dbUrl = (() => {
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
// Keys at rest are sealed under APP_SECRET: the same one for seeding and every served process.
const appSecret = 'bench-exports-app-secret-not-for-production-0001';
const serverEnv = {
  PATH: process.env.PATH ?? '',
  NODE_ENV: 'development',
  LOG_LEVEL: 'info',
  HOST: '127.0.0.1',
  DATABASE_URL: dbUrl,
  APP_SECRET: appSecret,
  DATA_DIR: join(tmpdir(), 'emargement-bench-exports'),
  MIGRATE_ON_START: 'true',
};

const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
if (args.includes('--reseed')) await admin.query(`drop database if exists ${dbName} with (force)`);
const exists = (await admin.query('select 1 from pg_database where datname = $1', [dbName])).rowCount === 1;
if (!exists) await admin.query(`create database ${dbName}`);
await admin.end();

if (!exists) {
  process.stdout.write(`seeding ${learners} learners × ${modules} modules into ${dbName}…\n`);
  const t0 = Date.now();
  // The app's start imports the catalog (funds, branches) and creates keys; seeding comes after.
  const config = loadConfig({ ...serverEnv, LOG_LEVEL: 'warn' });
  const { buildApp } = await import('../../src/app.js');
  const app = await buildApp({ config });
  await app.ready();
  await app.close();
  const handle = await createDatabase({ databaseUrl: dbUrl, poolMax: 1 });
  await migrateToLatest(handle.db);
  await seedBench(handle.db, learners, modules);
  const n = await sql<{ n: number }>`select count(*) as n from module_progress`.execute(handle.db);
  await handle.close();
  process.stdout.write(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s (${n.rows[0]?.n} module rows)\n`);
}

// What `npm start` runs first: the build, skipped when dist/ is up to date.
if (runtime === 'compiled' || startupRounds > 0) {
  const build = spawnSync(process.execPath, ['src/cli/build.mjs', '--if-stale'], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
}

// --- the served process ---------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** VmRSS and VmHWM (peak RSS over the process's life) in MiB, from /proc. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** User + system CPU time of a process, in ms (clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Server {
  child: ChildProcess;
  port: number;
  readyMs: number;
  output: () => string;
  stop: () => Promise<number | null>;
}

async function startServer(which: 'compiled' | 'tsx'): Promise<Server> {
  const port = await freePort();
  const entry = which === 'compiled' ? ['dist/src/server.js'] : ['--import', 'tsx', 'src/server.ts'];
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [...nodeOptions, ...entry], {
    env: { ...serverEnv, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  child.stderr?.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let readyMs = 0;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${out}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/ready`);
      if (res.status === 200) {
        readyMs = Number(process.hrtime.bigint() - started) / 1e6;
        break;
      }
    } catch {}
    await new Promise((r) => setTimeout(r, 20));
    if (Number(process.hrtime.bigint() - started) > 60e9) throw new Error(`server not ready after 60 s: ${out}`);
  }
  return {
    child,
    port,
    readyMs,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// --- start-up only --------------------------------------------------------------------------------

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
if (startupRounds > 0) {
  const figures: Record<string, { ready: number[]; idle: number[] }> = {
    compiled: { ready: [], idle: [] },
    tsx: { ready: [], idle: [] },
  };
  for (let i = 0; i < startupRounds; i++) {
    for (const which of ['compiled', 'tsx'] as const) {
      const server = await startServer(which);
      await new Promise((r) => setTimeout(r, 1000));
      const idle = memoryOf(server.child.pid as number).rss;
      await server.stop();
      figures[which]?.ready.push(server.readyMs);
      figures[which]?.idle.push(idle);
      process.stdout.write(`${which}: ready in ${Math.round(server.readyMs)} ms, idle RSS ${idle.toFixed(0)} MiB\n`);
    }
  }
  for (const [which, f] of Object.entries(figures)) {
    process.stdout.write(
      `${which}: start to /ready median ${Math.round(median(f.ready))} ms (min ${Math.round(Math.min(...f.ready))}, max ${Math.round(
        Math.max(...f.ready),
      )}), idle RSS median ${median(f.idle).toFixed(0)} MiB\n`,
    );
  }
  process.exit(0);
}

// --- exports --------------------------------------------------------------------------------------

// Tokens are made before the server starts (in this process), so that the served process does only
// what production does.
const handle = await createDatabase({ databaseUrl: dbUrl, poolMax: 1 });
async function tokenFor(fund: string | undefined): Promise<{ tokenId: string; token: string }> {
  const username = fund ? `bench-${fund}@bench.test` : 'bench-ops@bench.test';
  let user = await handle.db
    .selectFrom('portal_users')
    .select('id')
    .where('username', '=', username)
    .executeTakeFirst();
  if (!user) {
    user = (
      await createUser(handle.db, {
        username,
        displayName: 'Bench',
        role: fund ? 'fund_staff' : 'operator',
        fundSlug: fund ?? null,
        password: 'bench bench bench bench',
      })
    ).user;
  }
  const { id, token } = await createToken(handle.db, user.id, 'bench', 1);
  return { tokenId: id, token };
}

interface Measure {
  kind: string;
  format: string;
  fund: string;
  status: number;
  rows: number;
  audit: string;
  bytes: number;
  ms: number;
  firstByteMs: number;
  readyMs: number;
  idleRssMB: number;
  peakRssMB: number;
  hwmMB: number;
  cpuMs: number;
}
const results: Measure[] = [];
for (const [kind, format, fund] of [
  ['summary', 'csv', undefined],
  ['summary', 'xlsx', undefined],
  ['summary', 'csv', 'uniformation'],
] as const) {
  if (onlyFormat && format !== onlyFormat) continue;
  for (let i = 0; i < runs; i++) {
    const { tokenId, token } = await tokenFor(fund);
    const server = await startServer(runtime);
    const pid = server.child.pid as number;
    await new Promise((r) => setTimeout(r, 1000));
    const idle = memoryOf(pid);
    let peakRss = idle.rss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, memoryOf(pid).rss);
    }, 20);
    const cpuBefore = cpuMsOf(pid);
    const started = process.hrtime.bigint();
    let firstByteMs = 0;
    const url = `http://127.0.0.1:${server.port}/api/v1/exports/${kind}?format=${format}`;
    const result = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          if (bytes === 0) firstByteMs = Number(process.hrtime.bigint() - started) / 1e6;
          bytes += chunk.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    clearInterval(sampler);
    const after = memoryOf(pid);
    const cpuMs = cpuMsOf(pid) - cpuBefore;
    peakRss = Math.max(peakRss, after.rss);
    const audit = await handle.db
      .selectFrom('audit_log')
      .select(['row_count', 'status'])
      .where('token_id', '=', tokenId)
      .orderBy('at', 'desc')
      .limit(1)
      .executeTakeFirst();
    const code = await server.stop();
    const m: Measure = {
      kind,
      format,
      fund: fund ?? 'all',
      status: result.status,
      rows: Number(audit?.row_count ?? 0),
      audit: audit?.status ?? 'missing',
      bytes: result.bytes,
      ms: Math.round(ms),
      firstByteMs: Math.round(firstByteMs),
      readyMs: Math.round(server.readyMs),
      idleRssMB: Math.round(idle.rss),
      peakRssMB: Math.round(peakRss),
      hwmMB: Math.round(after.hwm),
      cpuMs,
    };
    if (m.status !== 200 || m.audit !== 'completed' || code !== 0) {
      throw new Error(`export failed (exit ${code}): ${JSON.stringify(m)}\n${server.output()}`);
    }
    results.push(m);
    process.stdout.write(`${JSON.stringify(m)}\n`);
  }
}
await handle.close();

process.stdout.write(
  `\nruntime: ${runtime === 'compiled' ? 'node dist/src/server.js' : 'node --import tsx src/server.ts'}${
    nodeOptions.length ? ` with ${nodeOptions.join(' ')}` : ''
  }\n\n| export | scope | rows | size | time (median) | first byte | server CPU | process RSS: idle → peak (VmHWM) |\n|---|---|---|---|---|---|---|---|\n`,
);
for (const key of [...new Set(results.map((r) => `${r.kind}|${r.format}|${r.fund}`))]) {
  const rs = results.filter((r) => `${r.kind}|${r.format}|${r.fund}` === key);
  const [kind, format, fund] = key.split('|');
  process.stdout.write(
    `| ${kind} ${format?.toUpperCase()} | ${fund} | ${rs[0]?.rows} | ${((rs[0]?.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB | ${(
      median(rs.map((r) => r.ms)) / 1000
    ).toFixed(2)} s | ${(median(rs.map((r) => r.firstByteMs)) / 1000).toFixed(2)} s | ${(
      median(rs.map((r) => r.cpuMs)) / 1000
    ).toFixed(2)} s | ${median(rs.map((r) => r.idleRssMB))} → ${Math.max(...rs.map((r) => r.peakRssMB))} (${Math.max(
      ...rs.map((r) => r.hwmMB),
    )}) MB |\n`,
  );
}
const csv = results.filter((r) => r.format === 'csv' && r.fund === 'all');
const time = median(csv.map((r) => r.ms));
const peak = Math.max(...csv.map((r) => Math.max(r.peakRssMB, r.hwmMB)));
process.stdout.write(
  `\nSummary CSV, all funds: ${(time / 1000).toFixed(2)} s (target < 5 s: ${time < 5000 ? 'met' : 'NOT met'}); ` +
    `serving process peak RSS ${peak} MB over its whole life (target < 150 MB: ${peak < 150 ? 'met' : 'NOT met'}); ` +
    `idle ${median(csv.map((r) => r.idleRssMB))} MB; start to /ready ${median(results.map((r) => r.readyMs))} ms.\n`,
);
