/**
 * bench/heartbeats — sustained beats per second and p50/p99 latency of POST /api/tracking/beats with
 * durable acknowledgement (answered only after the PostgreSQL commit that holds the beat in the tracking
 * inbox), at 50 concurrent connections; in the same run a bare Fastify route answering 200, for the ratio.
 * The app credits the inbox with its own consumer, as in production: the bench prints the backlog after each
 * round, the crediting throughput, and the time to drain after the rounds. After the drain every acknowledged
 * item is checked to be stored exactly once (runs' beat counts and rolling hashes recomputed from the
 * acknowledgements; one evidence row per stored or rejected item).
 *
 *   node --import tsx bench/heartbeats/run.ts [--seconds 20] [--warmup 25] [--connections 50]
 *       [--learners 150000] [--rounds 1] [--ingest-concurrency N] [--ingest-batch N] [--json file]
 *
 * PostgreSQL at 127.0.0.1:5432 (BENCH_DATABASE_URL to change); the bench creates and drops its own database.
 * Load: one tab per learner, each beating at most every 21 s (the server rejects a second beat within 20 s),
 * as a class of learners would; the first beat of each tab is its page-open event.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { signSession } from '../../src/lti/index.js';
import { beatHash } from '../../src/tracking/chain.js';
import { trackerScript } from '../../src/tracking/plugin.js';
import { backendCpu, processCpuMs } from '../proc-cpu.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '25' },
    connections: { type: 'string', default: '50' },
    learners: { type: 'string', default: '150000' },
    rounds: { type: 'string', default: '1' },
    'ingest-concurrency': { type: 'string' },
    'ingest-batch': { type: 'string' },
    json: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const LEARNERS = Number(args.learners);
const ROUNDS = Number(args.rounds);
const SPACING_MS = 21_000;
/** Node flags of the served process: those of `npm start` (package.json), as production runs. */
const startFlags = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts.start as string
)
  .split(' ')
  .filter((f) => f.startsWith('--') && f !== '--import');
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB_NAME = 'emargement_bench_heartbeats';
const dbUrl = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${DB_NAME}`;
  return u.toString();
})();

// ───────────────────────────── database and seed ─────────────────────────────

async function freshDatabase(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${DB_NAME} with (force)`);
  await admin.query(`create database ${DB_NAME}`);
  await admin.end();
}

async function dropDatabase(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${DB_NAME} with (force)`);
  await admin.end();
}

interface Seeded {
  learnerId: string;
  auth: string;
  ticket: string;
  tabId: string;
  seq: number;
  nextAt: number;
  /** Left with an unanswered beat at the end of a phase: never used again, so that beat stays its run's last. */
  retired?: boolean;
}

const env = {
  ...process.env,
  // Not 'production': that would demand a real certificate provider file; nothing here depends on it.
  NODE_ENV: 'development',
  DATABASE_URL: dbUrl,
  PUBLIC_URL: 'https://tool.bench.example',
  DATA_DIR: os.tmpdir(),
  APP_SECRET: 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
  LOG_LEVEL: 'warn',
  MIGRATE_ON_START: 'true',
  // No daily digest or sweep in the middle of a measured round (the digest of a fresh database is due).
  SCHEDULED_TASKS: 'false',
};

/** Learners, a course, and for each learner a session token and the ticket of a module page. */
async function seed(): Promise<Seeded[]> {
  const config = loadConfig(env);
  const app = await buildApp({ config });
  await app.ready();
  const courseId = randomUUID();
  await app.db
    .insertInto('courses')
    .values({ id: courseId, issuer: 'https://fun.bench', context_id: 'course-v1:FUN+BENCH' })
    .execute();
  const out: Seeded[] = [];
  for (let i = 0; i < LEARNERS; i += 5000) {
    const rows = Array.from({ length: Math.min(5000, LEARNERS - i) }, () => ({
      id: randomUUID(),
      issuer: 'https://fun.bench',
      sub: randomUUID(),
    }));
    await app.db.insertInto('learners').values(rows).execute();
    for (const r of rows) {
      const token = await signSession(app, {
        learnerId: r.id,
        courseId,
        resourceLinkId: null,
        launchId: randomUUID(),
        registrationId: randomUUID(),
        role: 'learner',
      });
      const markup = trackerScript(app, {
        learnerId: r.id,
        courseId,
        moduleId: 'common-digitalisation',
        moduleVersion: 1,
        nominalMinutes: 15,
        sessionToken: token,
      }).toString();
      const ticket = JSON.parse(/id="emargement-tracker-config">(.*?)<\/script>/s.exec(markup)?.[1] ?? '{}').ticket;
      out.push({ learnerId: r.id, auth: `Bearer ${token}`, ticket, tabId: randomUUID(), seq: 0, nextAt: 0 });
    }
  }
  await app.close();
  return out;
}

// ───────────────────────────── load ─────────────────────────────

interface Sent {
  learner: Seeded;
  seq: number;
  kind: 'open' | 'beat';
  clientTime: string;
}

interface Ack {
  tabId: string;
  seq: number;
  kind: 'open' | 'beat';
  status: string;
  serverTime: string;
  clientTime: string;
}

/** Hands out the next item: the learner whose tab may beat again soonest, else a learner not yet started. */
class Scheduler {
  private ready: Seeded[] = [];
  private head = 0;
  private fresh = 0;
  exhausted = 0;
  constructor(private readonly pool: Seeded[]) {}
  next(): Sent | null {
    const now = Date.now();
    let learner: Seeded | undefined;
    while (this.head < this.ready.length && (this.ready[this.head] as Seeded).retired) this.head++;
    if (this.head < this.ready.length && (this.ready[this.head] as Seeded).nextAt <= now)
      learner = this.ready[this.head++];
    else if (this.fresh < this.pool.length) learner = this.pool[this.fresh++];
    else if (this.head < this.ready.length) {
      learner = this.ready[this.head++]; // pool exhausted: this beat may be rejected as too frequent
      this.exhausted++;
    }
    if (!learner) return null;
    if (this.head > 100_000) {
      this.ready = this.ready.slice(this.head);
      this.head = 0;
    }
    learner.nextAt = now + SPACING_MS;
    this.ready.push(learner);
    const seq = learner.seq++;
    return { learner, seq, kind: seq === 0 ? 'open' : 'beat', clientTime: new Date(now).toISOString() };
  }
}

function body(s: Sent): string {
  const item =
    s.kind === 'open'
      ? { kind: 'open', seq: s.seq, clientTime: s.clientTime }
      : { kind: 'beat', seq: s.seq, clientTime: s.clientTime, inputAgoMs: 1000, media: false, cause: 'interval' };
  return JSON.stringify({ tabId: s.learner.tabId, ticket: s.learner.ticket, items: [item] });
}

interface LoadFigures {
  requestsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  total: number;
}

function figures(r: autocannon.Result): LoadFigures {
  return {
    requestsPerSecond: r.requests.total / r.duration,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    total: r.requests.total,
  };
}

async function cannon(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** Sent, answer not seen (autocannon drops the last in-flight answers when its time is up). */
const inFlight = new Set<Sent>();

async function runBeats(port: number, scheduler: Scheduler, seconds: number, acks: Ack[] | null): Promise<LoadFigures> {
  const result = await cannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/api/tracking/beats',
        setupRequest: (req, context) => {
          const s = scheduler.next();
          if (!s) return req;
          (context as { sent?: Sent }).sent = s;
          inFlight.add(s);
          return {
            ...req,
            headers: { 'content-type': 'application/json', authorization: s.learner.auth },
            body: body(s),
          };
        },
        onResponse: (status, responseBody, context) => {
          const s = (context as { sent?: Sent }).sent;
          if (s) inFlight.delete(s);
          if (!s || status !== 200 || !acks) return;
          const b = JSON.parse(responseBody) as { serverTime: string; results: Array<{ seq: number; status: string }> };
          const r = b.results[0];
          if (r)
            acks.push({
              tabId: s.learner.tabId,
              seq: r.seq,
              kind: s.kind,
              status: r.status,
              serverTime: b.serverTime,
              clientTime: s.clientTime,
            });
        },
      },
    ],
  });
  for (const s of inFlight) s.learner.retired = true;
  return figures(result);
}

async function runBare(port: number, scheduler: Scheduler, seconds: number, path = '/bare'): Promise<LoadFigures> {
  // The same requests (headers and body), to a route that only parses and answers 200 (or, on /floor, answers
  // after a group commit of the body).
  const sample = Array.from({ length: 1000 }, () => scheduler.next()).filter((s): s is Sent => s !== null);
  let i = 0;
  const result = await cannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path,
        setupRequest: (req) => {
          const s = sample[i++ % sample.length] as Sent;
          return {
            ...req,
            headers: { 'content-type': 'application/json', authorization: s.learner.auth },
            body: body(s),
          };
        },
      },
    ],
  });
  return figures(result);
}

// ───────────────────────────── CPU accounting (/proc, Linux) ─────────────────────────────

/** CPU ms so far of the server process, of the PostgreSQL backends serving the bench database (by pid), and of
 * this process (autocannon). */
function cpuSnapshot(serverPid: number): { server: number; db: Map<number, number>; driver: number } {
  const usage = process.cpuUsage();
  return { server: processCpuMs(serverPid), db: backendCpu(DB_NAME), driver: (usage.user + usage.system) / 1000 };
}

interface CpuPerRequest {
  server: number;
  db: number;
  driver: number;
}

/** CPU µs per answered request between two snapshots, for the server, PostgreSQL and the load generator. */
function cpuPerRequest(
  from: ReturnType<typeof cpuSnapshot>,
  to: ReturnType<typeof cpuSnapshot>,
  requests: number,
): CpuPerRequest {
  let db = 0;
  for (const [pid, ms] of to.db) db += ms - (from.db.get(pid) ?? 0);
  const per = (ms: number) => (ms * 1000) / Math.max(requests, 1);
  return { server: per(to.server - from.server), db: per(db), driver: per(to.driver - from.driver) };
}

const fmtCpu = (c: CpuPerRequest) =>
  `CPU per request: server ${c.server.toFixed(0)} µs, PostgreSQL ${c.db.toFixed(0)} µs, autocannon ${c.driver.toFixed(0)} µs`;

// ───────────────────────────── exactly once ─────────────────────────────

interface Check {
  acknowledged: number;
  /** Sent without a seen answer: each may be stored once or not at all, never twice. */
  unanswered: number;
  acceptedBeats: number;
  storedOrRejected: number;
  lost: number;
  duplicated: number;
  hashMismatches: number;
}

async function checkExactlyOnce(acks: Ack[], unanswered: Sent[]): Promise<Check> {
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  const byTab = new Map<string, Ack[]>();
  for (const a of acks) byTab.set(a.tabId, [...(byTab.get(a.tabId) ?? []), a]);
  const pending = new Map<string, Sent[]>();
  for (const u of unanswered) pending.set(u.learner.tabId, [...(pending.get(u.learner.tabId) ?? []), u]);
  const tabIds = [...new Set([...byTab.keys(), ...pending.keys()])];
  const runs = new Map<
    string,
    Array<{ id: string; first_seq: number; last_seq: number; beat_count: number; rolling_hash: string }>
  >();
  const starts = new Map<string, string>();
  const events = new Map<string, number>();
  for (let i = 0; i < tabIds.length; i += 5000) {
    const chunk = tabIds.slice(i, i + 5000);
    const r = await db.query(
      'select id, tab_id, first_seq, last_seq, beat_count, rolling_hash, last_beat_at from tracking_runs where tab_id = any($1)',
      [chunk],
    );
    for (const row of r.rows) runs.set(row.tab_id, [...(runs.get(row.tab_id) ?? []), row]);
    const s = await db.query(
      "select data->>'runId' as run_id, hash from tracking_events where kind = 'run_start' and tab_id = any($1)",
      [chunk],
    );
    for (const row of s.rows) starts.set(row.run_id, row.hash);
    const e = await db.query(
      'select tab_id, seq, count(*)::int as n from tracking_events where seq is not null and tab_id = any($1) group by 1, 2',
      [chunk],
    );
    for (const row of e.rows) events.set(`${row.tab_id}/${row.seq}`, row.n);
  }
  await db.end();

  const check: Check = {
    acknowledged: acks.length,
    unanswered: unanswered.length,
    acceptedBeats: 0,
    storedOrRejected: 0,
    lost: 0,
    duplicated: 0,
    hashMismatches: 0,
  };
  for (const tabId of tabIds) {
    const list = byTab.get(tabId) ?? [];
    const maybe = (pending.get(tabId) ?? []).filter((u) => u.kind === 'beat');
    // Acknowledged beats with no evidence row of their own (open, rejection) were credited to a run.
    const accepted = list
      .filter((a) => a.kind === 'beat' && !events.has(`${tabId}/${a.seq}`))
      .sort((a, b) => a.seq - b.seq);
    check.acceptedBeats += accepted.length;
    const tabRuns = (runs.get(tabId) ?? []).sort((a, b) => a.first_seq - b.first_seq);
    const counted = tabRuns.reduce((n, r) => n + r.beat_count, 0);
    if (counted < accepted.length) check.lost += accepted.length - counted;
    if (counted > accepted.length + maybe.length) check.duplicated += counted - accepted.length - maybe.length;
    for (const run of tabRuns) {
      // The rolling hash over the acknowledged beats of this run, from its run_start record; an unanswered
      // beat can only be the run's last, stored at its last_beat_at.
      let hash = starts.get(run.id) ?? '';
      const beats = accepted.filter((x) => x.seq >= run.first_seq && x.seq <= run.last_seq);
      for (const a of beats) {
        hash = beatHash(hash, {
          tabId,
          seq: a.seq,
          at: a.serverTime,
          clientTime: a.clientTime,
          inputAgoMs: 1000,
          media: false,
          cause: 'interval',
        });
      }
      const last = maybe.find((u) => u.seq === run.last_seq);
      if (hash !== run.rolling_hash && last && beats.length === run.beat_count - 1) {
        const at = (run as unknown as { last_beat_at: Date }).last_beat_at.toISOString();
        hash = beatHash(hash, {
          tabId,
          seq: last.seq,
          at,
          clientTime: last.clientTime,
          inputAgoMs: 1000,
          media: false,
          cause: 'interval',
        });
      }
      if (hash !== run.rolling_hash) check.hashMismatches++;
    }
    for (const a of list.filter((x) => x.kind === 'open' || events.has(`${tabId}/${x.seq}`))) {
      check.storedOrRejected++;
      const n = events.get(`${tabId}/${a.seq}`) ?? 0;
      if (n === 0) check.lost++;
      if (n > 1) check.duplicated += n - 1;
    }
  }
  return check;
}

// ───────────────────────────── backlog ─────────────────────────────

async function backlog(): Promise<number> {
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  try {
    // Items waiting: still in journal rows (one per group commit) or unpacked into the inbox.
    const { rows } = await db.query(
      'select (select count(*) from tracking_inbox) + (select coalesce(sum(item_count), 0) from tracking_journal) as n',
    );
    return Number(rows[0].n);
  } finally {
    await db.end();
  }
}

/** Waits until the app's consumer has credited every inbox row; returns the seconds it took. */
async function drain(): Promise<number> {
  const t0 = Date.now();
  while ((await backlog()) > 0) await new Promise((r) => setTimeout(r, 200));
  return (Date.now() - t0) / 1000;
}

// ───────────────────────────── main ─────────────────────────────

function startServer(): Promise<{ child: ChildProcess; appPort: number; barePort: number }> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), {
    execArgv: [
      ...startFlags,
      '--import',
      'tsx',
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
    ],
    env: {
      ...env,
      ...(args['ingest-concurrency'] ? { BENCH_INGEST_CONCURRENCY: args['ingest-concurrency'] } : {}),
      ...(args['ingest-batch'] ? { BENCH_INGEST_BATCH: args['ingest-batch'] } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.on('message', (m: { ready?: boolean; appPort: number; barePort: number }) => {
      if (m.ready) resolve({ child, appPort: m.appPort, barePort: m.barePort });
    });
  });
}

const fmt = (f: LoadFigures) =>
  `${f.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${String(f.p50).padStart(3)} ms  p90 ${String(f.p90).padStart(3)} ms  p99 ${String(f.p99).padStart(3)} ms  max ${f.max} ms  non-2xx ${f.non2xx}  errors ${f.errors}`;

async function main(): Promise<void> {
  const started = Date.now();
  process.stdout.write(
    `machine: ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  process.stdout.write(`server: node ${[...startFlags, '--import tsx'].join(' ')} bench/heartbeats/server.ts\n`);
  await freshDatabase();
  process.stdout.write(`seeding ${LEARNERS} learners with sessions and module tickets…\n`);
  const pool = await seed();
  const { child, appPort, barePort } = await startServer();
  const scheduler = new Scheduler(pool);
  const rounds: Array<{
    bare: LoadFigures;
    floor: LoadFigures;
    beats: LoadFigures;
    backlog: number;
    creditedPerSecond: number;
    cpu: { bare: CpuPerRequest; floor: CpuPerRequest; beats: CpuPerRequest };
  }> = [];
  const acks: Ack[] = [];
  let drainSeconds = Number.NaN;
  try {
    process.stdout.write(`warm-up: ${WARMUP} s of beats (not measured, acknowledgements checked too)\n`);
    const warm = await runBeats(appPort, scheduler, WARMUP, acks);
    process.stdout.write(`  warm-up  ${fmt(warm)}; backlog ${await backlog()} items\n`);
    for (let r = 1; r <= ROUNDS; r++) {
      // The bare route is measured on a quiet machine: the consumer's backlog is drained first, so that
      // crediting does not slow the baseline down (which would flatter the ratio).
      const quiet = await drain();
      process.stdout.write(`round ${r}: backlog drained in ${quiet.toFixed(1)} s before the bare route\n`);
      const bareCpu = cpuSnapshot(child.pid as number);
      const bare = await runBare(barePort, new Scheduler(pool.slice(0, 2000)), SECONDS);
      const bareCost = cpuPerRequest(bareCpu, cpuSnapshot(child.pid as number), bare.total);
      process.stdout.write(`round ${r}: bare Fastify route      ${fmt(bare)}\n         ${fmtCpu(bareCost)}\n`);
      const floorCpu = cpuSnapshot(child.pid as number);
      const floor = await runBare(barePort, new Scheduler(pool.slice(2000, 4000)), SECONDS, '/floor');
      const floorCost = cpuPerRequest(floorCpu, cpuSnapshot(child.pid as number), floor.total);
      process.stdout.write(
        `round ${r}: durable floor (/floor)    ${fmt(floor)}\n         ${fmtCpu(floorCost)}; ${((floor.requestsPerSecond / bare.requestsPerSecond) * 100).toFixed(1)} % of bare\n`,
      );
      const before = { backlog: await backlog(), acks: acks.length, at: Date.now() };
      const beatsCpu = cpuSnapshot(child.pid as number);
      const beats = await runBeats(appPort, scheduler, SECONDS, acks);
      const beatsCost = cpuPerRequest(beatsCpu, cpuSnapshot(child.pid as number), beats.total);
      const after = await backlog();
      const received = acks.slice(before.acks).filter((a) => a.status === 'received').length;
      const creditedPerSecond = (before.backlog + received - after) / ((Date.now() - before.at) / 1000);
      process.stdout.write(`round ${r}: POST /api/tracking/beats ${fmt(beats)}\n         ${fmtCpu(beatsCost)}\n`);
      process.stdout.write(
        `round ${r}: backlog at the end ${after} items; credited ${creditedPerSecond.toFixed(0)} items/s during the round\n`,
      );
      rounds.push({
        bare,
        floor,
        beats,
        backlog: after,
        creditedPerSecond,
        cpu: { bare: bareCost, floor: floorCost, beats: beatsCost },
      });
    }
    const left = await backlog();
    drainSeconds = await drain();
    process.stdout.write(
      `drain: ${left} items credited in ${drainSeconds.toFixed(1)} s after the rounds (${(left / Math.max(drainSeconds, 0.001)).toFixed(0)} items/s)\n`,
    );
  } finally {
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
  }
  // After the drain: everything acknowledged has been credited (or kept as rejected evidence).
  const check = await checkExactlyOnce(acks, [...inFlight]);
  const best = rounds.map((r) => ({ ...r, ratio: r.beats.requestsPerSecond / r.bare.requestsPerSecond }));
  for (const [i, r] of best.entries()) {
    process.stdout.write(
      `round ${i + 1}: ratio ${(r.ratio * 100).toFixed(1)} % of the bare route (the durable floor: ${((r.floor.requestsPerSecond / r.bare.requestsPerSecond) * 100).toFixed(1)} %; beats / floor ${((r.beats.requestsPerSecond / r.floor.requestsPerSecond) * 100).toFixed(1)} %), p99 ${r.beats.p99} ms (floor ${r.floor.p99} ms)\n`,
    );
  }
  process.stdout.write(
    `exactly once (after the drain): ${check.acknowledged} acknowledged items (${check.acceptedBeats} credited beats, ${check.storedOrRejected} stored/rejected items), ${check.unanswered} sent without a seen answer; lost ${check.lost}, duplicated ${check.duplicated}, rolling-hash mismatches ${check.hashMismatches}; pool exhausted ${scheduler.exhausted} times\n`,
  );
  const ok =
    best.every((r) => r.ratio >= 0.6 && r.beats.p99 <= 25) &&
    check.lost === 0 &&
    check.duplicated === 0 &&
    check.hashMismatches === 0;
  process.stdout.write(
    `targets (≥ 60 % of bare, p99 ≤ 25 ms, zero lost): ${ok ? 'met' : 'NOT met'} — ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  if (args.json)
    await writeFile(
      args.json,
      JSON.stringify({ rounds: best, check, drainSeconds, connections: CONNECTIONS, seconds: SECONDS }, null, 2),
    );
  await dropDatabase();
  process.exitCode = ok ? 0 : 1;
}

await main();
