import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { createDatabase, migrateToLatest } from '../../src/db/index.js';
import { addCredential } from '../../src/lms/index.js';

/**
 * Common-trunk time at platform scale (docs/lms-estimate.md): a generated platform tracking log of
 * `--lines` lines (default 1 000 000), Tutor-prefixed, ~3 % of it this tool's course, the rest 60 other
 * courses and events without course.
 *   1. import: lines/s and peak RSS, against a plain line-reading loop over the same file (the baseline);
 *      checks that only this course's events were stored. Targets ≥ 50 000 lines/s, ≤ 200 MB.
 *      The same import is then run as an operator runs it in production (compiled CLI).
 *   2. `lms recompute`: time and peak RSS (≤ 200 MB), one learner at a time.
 *   3. the xAPI statements endpoint: statements/s in batches of 100 (`--concurrency` pushers) against a
 *      bare Fastify route in the same process (the baseline); every acknowledged statement must be in
 *      the database afterwards (acknowledged = committed). Target ≥ 2 000 statements/s.
 * Each phase runs in a process of its own (bench/lms/child.ts) so its peak RSS is its own.
 *
 *   node --import tsx bench/lms/run.ts [--lines 1000000] [--statements 20000] [--concurrency 4]
 *     [--url postgres://postgres@127.0.0.1:5432/postgres] [--keep-file]
 *     [--generate-only]   (seed the database and write the file, measure nothing: for profiling a phase
 *                          with `node --import tsx bench/lms/child.ts import <file> <db url>`)
 */
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] as string) : fallback;
};
const totalLines = Number(opt('lines', '1000000'));
const totalStatements = Number(opt('statements', '20000'));
const concurrency = Number(opt('concurrency', '4'));
const adminUrl = opt('url', 'postgres://postgres@127.0.0.1:5432/postgres');
const dbName = 'emargement_bench_lms';
const dbUrl = (() => {
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
const ISSUER = 'https://lms.bench.test';
const COURSE = 'course-v1:FUN+BENCH+2026_T1';
const LEARNERS = 1500;
const OUR_SHARE = 0.03;
const NO_COURSE_SHARE = 0.1;

// --- a deterministic platform log ---------------------------------------------------------------------

// mulberry32: small, fast, and good enough that shares come out as asked.
let seed = 42;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (n: number) => Math.floor(random() * n);

const otherCourses = Array.from({ length: 60 }, (_, i) => `course-v1:ORG${i}+C${100 + i}+2026`);
const start = Date.parse('2026-03-01T06:00:00Z');

function event(username: string, course: string | null, ms: number, userId: number): string {
  const time = new Date(ms).toISOString().replace('Z', '000+00:00');
  const browser = course !== null && random() < 0.2;
  const type = browser
    ? 'seq_goto'
    : course
      ? `/courses/${course}/courseware/chap${pick(9)}/seq${pick(9)}/`
      : '/dashboard';
  const page = course ? `https://lms.bench.test/courses/${course}/courseware/chap1/seq${pick(9)}/` : null;
  const e = {
    name: type,
    context: {
      course_id: browser ? '' : (course ?? ''),
      user_id: userId,
      org_id: course ? course.slice(10, course.indexOf('+')) : '',
      path: browser ? '/event' : type,
      enterprise_uuid: '',
    },
    username,
    session: `s${userId.toString(36)}${Math.floor(ms / 3_600_000).toString(36)}`,
    ip: `192.0.2.${userId % 250}`,
    agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    host: 'lms.bench.test',
    referer: page ?? 'https://lms.bench.test/dashboard',
    accept_language: 'fr-FR,fr;q=0.9,en;q=0.8',
    event: browser
      ? JSON.stringify({
          old: 1,
          new: 2,
          current_tab: 1,
          tab_count: 4,
          id: `block-v1:${course?.slice(10)}+type@sequential+block@s1`,
        })
      : { POST: {}, GET: {} },
    time,
    event_type: type,
    event_source: browser ? 'browser' : 'server',
    page: browser ? page : null,
  };
  const prefix = `${new Date(ms).toISOString().replace('T', ' ').replace('Z', '').replace('.', ',')} INFO 20 [tracking] [user ${userId}] [ip ${e.ip}] logger.py:41 - `;
  return `${prefix}${JSON.stringify(e)}\n`;
}

async function generate(path: string): Promise<{ ours: number; anonymous: number }> {
  const out = createWriteStream(path, { highWaterMark: 1024 * 1024 });
  let ours = 0;
  let anonymous = 0;
  for (let i = 0; i < totalLines; i++) {
    const ms = start + Math.floor((i / totalLines) * 30 * 86_400_000);
    const r = random();
    let line: string;
    if (r < OUR_SHARE) {
      const learner = pick(LEARNERS);
      if (random() < 0.01) {
        line = event('anonymous', COURSE, ms, 0);
        anonymous++;
      } else {
        line = event(`learner${learner}`, COURSE, ms, 10_000 + learner);
        ours++;
      }
    } else if (r < OUR_SHARE + NO_COURSE_SHARE) {
      line = event(`user${pick(200_000)}`, null, ms, pick(200_000));
    } else {
      const user = pick(200_000);
      line = event(`user${user}`, otherCourses[pick(otherCourses.length)] as string, ms, user);
    }
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { ours, anonymous };
}

// --- phases in processes of their own -------------------------------------------------------------------

interface PhaseResult {
  phase: string;
  peakRssMb: number;
  seconds?: number;
  [key: string]: unknown;
}

function runPhase(phaseArgs: string[]): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/lms/child.ts', ...phaseArgs], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'warn' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) reject(new Error(`${phaseArgs[0]} exited ${code}: ${out}`));
      else resolve(JSON.parse(line) as PhaseResult);
    });
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

// --- the run -----------------------------------------------------------------------------------------------

const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`drop database if exists ${dbName} with (force)`);
await admin.query(`create database ${dbName}`);
const settings = await admin.query(
  `select name, setting from pg_settings where name in ('synchronous_commit', 'fsync')`,
);
await admin.end();

const handle = await createDatabase({ databaseUrl: dbUrl, poolMax: 2 });
await migrateToLatest(handle.db);
const db = handle.db;
await db
  .insertInto('lti_registrations')
  .values({
    name: 'Bench LMS',
    issuer: ISSUER,
    client_id: 'bench',
    deployment_ids: JSON.stringify(['1']) as unknown as string[],
    auth_login_url: `${ISSUER}/auth`,
    access_token_url: `${ISSUER}/token`,
    jwks_url: `${ISSUER}/jwks`,
  })
  .execute();
await db
  .insertInto('courses')
  .values({ issuer: ISSUER, context_id: COURSE, title: 'Bench', label: '2026' })
  .returning('id')
  .executeTakeFirstOrThrow();
for (let i = 0; i < LEARNERS; i += 500) {
  await db
    .insertInto('learners')
    .values(
      Array.from({ length: Math.min(500, LEARNERS - i) }, (_, k) => ({
        issuer: ISSUER,
        sub: `sub-${i + k}`,
        username: `learner${i + k}`,
        email: `learner${i + k}@bench.test`,
      })),
    )
    .execute();
}
const credential = await addCredential(db, ISSUER, 'bench');

const file = join(tmpdir(), `emargement-bench-lms-${totalLines}.log`);
process.stdout.write(`generating ${totalLines} lines into ${file}…\n`);
const generated = await generate(file);
if (args.includes('--generate-only')) {
  await handle.close();
  process.stdout.write(`generated ${file} (${generated.ours} events of ${COURSE}); database ${dbName} seeded\n`);
  process.exit(0);
}
const fileMb = statSync(file).size / 1024 / 1024;
process.stdout.write(`  ${fileMb.toFixed(0)} MiB, ${generated.ours} events of ${COURSE}\n`);

const load = () => loadavg()[0]?.toFixed(1);
const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en');
const rows: string[] = [];

// 1. import against the plain read loop
const read = await runPhase(['read', file]);
rows.push(
  `| baseline: plain line-reading loop | ${read.lines} lines | ${(read.seconds as number).toFixed(2)} s | ${rate(read.lines as number, read.seconds as number)} lines/s | ${read.peakRssMb.toFixed(0)} MB | ${load()} |`,
);
const split = await runPhase(['split', file]);
rows.push(
  `| baseline: the same file cut into lines from its bytes, nothing else | ${split.lines} lines | ${(split.seconds as number).toFixed(2)} s | ${rate(split.lines as number, split.seconds as number)} lines/s | ${split.peakRssMb.toFixed(0)} MB | ${load()} |`,
);
const imported = await runPhase(['import', file, dbUrl]);
rows.push(
  `| lms import (Tutor-prefixed, ~3 % this course) | ${imported.lines} lines | ${(imported.seconds as number).toFixed(2)} s | ${rate(imported.lines as number, imported.seconds as number)} lines/s | ${imported.peakRssMb.toFixed(0)} MB | ${load()} |`,
);
// The same import as an operator runs it in production (the image has no tsx: `node dist/src/cli/index.js
// lms import`, built as `npm start` builds): the whole CLI loaded, wall time from spawn to exit (start-up
// included), peak RSS by /usr/bin/time. The file is already imported, so every event of this course is
// found already stored: the same reading and filtering, no new rows.
const build = spawnSync(process.execPath, ['src/cli/build.mjs', '--if-stale'], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('build failed');
const cliEnv = {
  PATH: process.env.PATH ?? '',
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://tool.bench.test',
  DATABASE_URL: dbUrl,
  APP_SECRET: 'bench-lms-app-secret-not-for-production-000001',
  DATA_DIR: join(tmpdir(), 'emargement-bench-lms'),
};
const cli = await new Promise<{ seconds: number; peakRssMb: number; out: string }>((resolve, reject) => {
  const t0 = performance.now();
  const child = spawn(
    '/usr/bin/time',
    ['-f', 'maxrss_kb=%M', process.execPath, 'dist/src/cli/index.js', 'lms', 'import', file, '--no-recompute'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  child.on('exit', (code) => {
    const kb = Number(/maxrss_kb=(\d+)/.exec(err)?.[1]);
    if (code !== 0 || !Number.isFinite(kb)) reject(new Error(`cli import exited ${code}: ${out}${err}`));
    else resolve({ seconds: (performance.now() - t0) / 1000, peakRssMb: kb / 1024, out });
  });
});
rows.push(
  `| CLI as in production, node dist/src/cli/index.js lms import (again: all found stored), start-up included | ${totalLines} lines | ${cli.seconds.toFixed(2)} s | ${rate(totalLines, cli.seconds)} lines/s | ${cli.peakRssMb.toFixed(0)} MB | ${load()} |`,
);
const cliIdle = await new Promise<number>((resolve) => {
  const child = spawn(
    '/usr/bin/time',
    ['-f', 'maxrss_kb=%M', process.execPath, 'dist/src/cli/index.js', 'lms', 'help'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: cliEnv },
  );
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  child.on('exit', () => resolve(Number(/maxrss_kb=(\d+)/.exec(err)?.[1]) / 1024));
});
const stored = await sql<{
  n: number;
  courses: number;
}>`select count(*)::int as n, count(distinct course_context_id)::int as courses from lms_events`.execute(db);
const storedRow = stored.rows[0] as { n: number; courses: number };
const storedOk = storedRow.n === generated.ours && storedRow.courses === 1;

// 2. recompute
const recomputed = await runPhase(['recompute', dbUrl]);
rows.push(
  `| lms recompute (${recomputed.totals} learner × course totals) | ${storedRow.n} events | ${(recomputed.seconds as number).toFixed(2)} s | — | ${recomputed.peakRssMb.toFixed(0)} MB | ${load()} |`,
);

// 3. the statements endpoint against a bare Fastify route
const port = await freePort();
const barePort = await freePort();
const server = spawn(
  process.execPath,
  ['--import', 'tsx', 'bench/lms/child.ts', 'serve', dbUrl, String(port), String(barePort)],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      APP_SECRET: 'bench-lms-app-secret-not-for-production-000001',
      DATA_DIR: join(tmpdir(), 'emargement-bench-lms'),
      SCHEDULED_TASKS: 'false',
    },
  },
);
let serverOut = '';
server.stdout.on('data', (d) => {
  serverOut += d;
});
while (!serverOut.includes('"ready":true')) {
  if (server.exitCode !== null) throw new Error(`server exited: ${serverOut}`);
  await new Promise((r) => setTimeout(r, 50));
}

function statementBatch(from: number): object[] {
  return Array.from({ length: 100 }, (_, k) => {
    const i = from + k;
    const learner = i % LEARNERS;
    return {
      id: randomUUID(),
      actor: { objectType: 'Agent', account: { homePage: ISSUER, name: `sub-${learner}` } },
      verb: { id: 'http://id.tincanapi.com/verb/viewed', display: { 'en-US': 'viewed' } },
      object: {
        id: `${ISSUER}/xblock/block-v1:FUN+BENCH+2026_T1+type@vertical+block@v${i % 97}`,
        objectType: 'Activity',
        definition: { type: 'http://adlnet.gov/expapi/activities/module', name: { 'en-US': 'Unit' } },
      },
      timestamp: new Date(start + i * 7_000).toISOString(),
      version: '1.0.3',
      context: {
        contextActivities: {
          parent: [
            {
              id: `${ISSUER}/course/${COURSE}`,
              objectType: 'Activity',
              definition: { type: 'http://adlnet.gov/expapi/activities/course' },
            },
          ],
        },
        extensions: {
          'https://w3id.org/xapi/openedx/extensions/session-id': `s${learner}`,
          'https://w3id.org/xapi/openedx/extension/transformer-version': 'event-routing-backends@9.0.0',
        },
      },
    };
  });
}

const auth = `Basic ${Buffer.from(`${credential.key}:${credential.secret}`).toString('base64')}`;
async function pushAll(target: number): Promise<{ seconds: number; acknowledged: number; failed: number }> {
  const batches = Array.from({ length: Math.ceil(totalStatements / 100) }, (_, b) =>
    JSON.stringify(statementBatch(b * 100)),
  );
  let next = 0;
  let acknowledged = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const body = batches[next++] as string;
        const res = await fetch(`http://127.0.0.1:${target}/xapi/statements`, {
          method: 'POST',
          headers: { authorization: auth, 'x-experience-api-version': '1.0.3', 'content-type': 'application/json' },
          body,
        });
        const ids = (await res.json()) as string[];
        if (res.status === 200 && Array.isArray(ids) && ids.length === 100) acknowledged += 100;
        else failed++;
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, acknowledged, failed };
}

const before = Number((await sql<{ n: number }>`select count(*)::int as n from lms_events`.execute(db)).rows[0]?.n);
const bare = await pushAll(barePort);
rows.push(
  `| baseline: bare Fastify route, JSON parsed, ids answered | ${bare.acknowledged} statements | ${bare.seconds.toFixed(2)} s | ${rate(bare.acknowledged, bare.seconds)} statements/s | — | ${load()} |`,
);
const lrs = await pushAll(port);
const after = Number((await sql<{ n: number }>`select count(*)::int as n from lms_events`.execute(db)).rows[0]?.n);
rows.push(
  `| POST /xapi/statements, batches of 100, ${concurrency} pushers | ${lrs.acknowledged} statements | ${lrs.seconds.toFixed(2)} s | ${rate(lrs.acknowledged, lrs.seconds)} statements/s | — | ${load()} |`,
);
server.kill('SIGTERM');
await once(server, 'exit');
const durable = after - before === lrs.acknowledged && lrs.failed === 0;

await handle.close();
if (!args.includes('--keep-file')) rmSync(file, { force: true });
if (existsSync(file)) process.stdout.write(`(file kept: ${file})\n`);

process.stdout.write(
  `\nNode ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, PostgreSQL ${settings.rows.map((r) => `${r.name}=${r.setting}`).join(' ')}\n` +
    `file: ${totalLines} lines, ${fileMb.toFixed(0)} MiB; this course ${generated.ours} events (+${generated.anonymous} "anonymous")\n\n` +
    '| case | volume | time | rate | peak RSS | load (1 min) |\n|---|---|---|---|---|---|\n' +
    `${rows.join('\n')}\n\n` +
    `CLI: ${cli.out.trim().split('\n')[0]}\n` +
    `CLI footprint before any work (\`node dist/src/cli/index.js lms help\`): ${cliIdle.toFixed(0)} MB peak RSS\n` +
    `import: ${imported.events} events kept, ${imported.inserted} stored, ${imported.otherEvents} of ${imported.otherCourses} other courses counted, ` +
    `skipped ${JSON.stringify(imported.skipped)}, ${imported.malformed} malformed; stored = this course's events only: ${storedOk ? 'yes' : `NO (${storedRow.n} rows, ${storedRow.courses} courses)`}\n` +
    `LRS: ${lrs.acknowledged} acknowledged, ${lrs.failed} batches failed, ${after - before} new rows: every acknowledged statement committed: ${durable ? 'yes' : 'NO'}\n`,
);
