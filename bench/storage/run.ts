/**
 * Storage per learner-month, measured on a seeded PostgreSQL database through the product's own code paths
 * (no hand-written rows for what the product writes):
 * - LTI launches: real OIDC login + launch through the fake Open edX of the tests (one per session);
 * - connection time: the tracker's items posted to POST /api/tracking/beats (open, a beat every 30 s of a
 *   visible, active page, close), with the ingest's clock moved by hand so that a month passes in minutes,
 *   then credited (runs, hash-chained evidence, totals);
 * - LMS logs: an Open edX tracking log generated for the same learners, imported by `importLmsFile`.
 * Then VACUUM ANALYZE and pg_total_relation_size per table (heap + indexes + TOAST), divided by learners.
 *
 *   node --import tsx bench/storage/run.ts [--learners 100] [--sessions 12] [--minutes 50] [--lms-events 400]
 *
 * PostgreSQL at BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres); the bench creates
 * and drops its own database `emargement_bench_storage`. Figures: bench/README.md, "storage".
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createDatabase, migrateToLatest } from '../../src/db/index.js';
import { importLmsFile } from '../../src/lms/index.js';
import { settleTracking } from '../../src/tracking/index.js';
import { configureIngest, trackerScript } from '../../src/tracking/plugin.js';
import { BEATS_PATH } from '../../src/tracking/routes.js';
import { injectTransport, startFakeOpenEdx } from '../../test/fixtures/openedx/index.js';

const { values } = parseArgs({
  options: {
    learners: { type: 'string', default: '100' },
    sessions: { type: 'string', default: '12' },
    minutes: { type: 'string', default: '50' },
    'lms-events': { type: 'string', default: '400' },
  },
});
const LEARNERS = Number(values.learners);
const SESSIONS = Number(values.sessions);
const MINUTES = Number(values.minutes);
const LMS_EVENTS = Number(values['lms-events']);
const BEAT_MS = 30_000;

const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = 'emargement_bench_storage';
const dbUrl = (() => {
  const u = new URL(adminUrl);
  u.pathname = `/${DB}`;
  return u.toString();
})();

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  await admin(`drop database if exists ${DB} with (force)`);
  await admin(`create database ${DB}`);
  const dir = mkdtempSync(join(tmpdir(), 'emargement-storage-'));
  const publicUrl = 'http://tool.bench';
  const fake = await startFakeOpenEdx({ toolUrl: publicUrl, component: { custom: { theme: 'digitalisation' } } });
  const registrations = join(dir, 'registrations.json');
  writeFileSync(registrations, JSON.stringify(fake.registrations()));
  const database = await createDatabase({ databaseUrl: dbUrl, poolMax: 10 });
  await migrateToLatest(database.db);
  const config = loadConfig({
    NODE_ENV: 'test',
    PUBLIC_URL: publicUrl,
    APP_SECRET: 'bench-storage-secret-0123456789abcdefghij',
    MIGRATE_ON_START: 'false',
    LTI_REGISTRATIONS_FILE: registrations,
    DATA_DIR: dir,
  });
  const app = await buildApp({ config, database, logger: false });
  await app.ready();
  let now = Date.parse('2026-03-02T07:00:00.000Z');
  await configureIngest(app, { clock: async () => now, consumer: false });
  const transport = injectTransport(app, publicUrl);
  // What the empty service holds (catalog, keys, migrations): subtracted, so the figures are growth only.
  const baseline = new Map((await tableSizes()).map((r) => [r.table, Number(r.bytes)]));

  const users = Array.from({ length: LEARNERS }, (_, i) => fake.createUser({ username: `learner${i}` }));
  const started = Date.now();
  let items = 0;
  const lmsLines: string[] = [];
  for (let s = 0; s < SESSIONS; s++) {
    // Sessions spread over the month: every ~2.5 days, each learner once, all at the same server time.
    now = Date.parse('2026-03-02T07:00:00.000Z') + s * 2.5 * 86_400_000;
    const tabs = await Promise.all(
      users.map(async (user) => {
        const launch = await fake.launch({ user, transport });
        if (!launch.sessionToken) throw new Error(`launch failed: ${launch.final.status}`);
        const claims = JSON.parse(Buffer.from(launch.sessionToken.split('.')[1] as string, 'base64url').toString());
        const markup = trackerScript(app, {
          learnerId: claims.learnerId,
          courseId: claims.courseId,
          moduleId: 'common-digitalisation',
          moduleVersion: 1,
          nominalMinutes: 15,
          sessionToken: launch.sessionToken,
        }).toString();
        const json = /id="emargement-tracker-config">(.*?)<\/script>/s.exec(markup)?.[1] as string;
        return { token: launch.sessionToken, ticket: JSON.parse(json).ticket as string, tabId: crypto.randomUUID() };
      }),
    );
    const beats = Math.floor((MINUTES * 60_000) / BEAT_MS);
    for (let b = 0; b <= beats + 1; b++) {
      const kind = b === 0 ? 'open' : b === beats + 1 ? 'close' : 'beat';
      await Promise.all(
        tabs.map(async (tab) => {
          const res = await app.inject({
            method: 'POST',
            url: BEATS_PATH,
            headers: { authorization: `Bearer ${tab.token}` },
            payload: {
              tabId: tab.tabId,
              ticket: tab.ticket,
              items: [{ kind, seq: b, inputAgoMs: 2000, clientTime: new Date(now).toISOString() }],
            },
          });
          if (res.statusCode !== 200) throw new Error(`beats ${res.statusCode} ${res.body}`);
        }),
      );
      items += tabs.length;
      now += BEAT_MS;
    }
    await settleTracking(app.db, {});
    // LMS events of the session (page views and video events in the common trunk).
    const perSession = Math.round(LMS_EVENTS / SESSIONS);
    for (const user of users) {
      for (let e = 0; e < perSession; e++) {
        const t = new Date(now - (perSession - e) * 20_000).toISOString().replace('Z', '+00:00');
        lmsLines.push(
          JSON.stringify({
            username: user.username,
            event_type: e % 3 === 0 ? 'play_video' : '/courses/course-v1:FUN+TPE-PME+2025_T1/courseware/chap1/seq1/',
            event_source: e % 3 === 0 ? 'browser' : 'server',
            time: t,
            session: `s${s}`,
            ip: '192.0.2.10',
            agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)',
            host: 'lms.fun.test',
            context: { course_id: 'course-v1:FUN+TPE-PME+2025_T1', user_id: 1000, org_id: 'FUN', path: '/event' },
            page: null,
            event: e % 3 === 0 ? '{"id": "video-1", "currentTime": 12.5, "code": "html5"}' : { POST: {}, GET: {} },
          }),
        );
      }
    }
  }
  const logFile = join(dir, 'tracking.log');
  writeFileSync(logFile, `${lmsLines.join('\n')}\n`);
  const report = await importLmsFile(app.db, logFile, { format: 'tracking-log' });
  const elapsed = (Date.now() - started) / 1000;

  const rows = (await tableSizes())
    .map((r) => ({ ...r, bytes: String(Number(r.bytes) - (baseline.get(r.table) ?? 0)) }))
    .sort((a, b) => Number(b.bytes) - Number(a.bytes));
  const total = rows.reduce((n, r) => n + Number(r.bytes), 0);
  process.stdout.write(
    `${LEARNERS} learners × ${SESSIONS} sessions × ${MINUTES} min (beat every ${BEAT_MS / 1000} s): ` +
      `${items} tracker items, ${report.lines} LMS log lines imported, ${SESSIONS * LEARNERS} launches, ${elapsed.toFixed(0)} s\n\n` +
      '| table | rows | bytes added | bytes per learner-month |\n|---|---|---|---|\n',
  );
  for (const r of rows.filter((x) => Number(x.bytes) > 0)) {
    process.stdout.write(
      `| ${r.table} | ${r.rows} | ${Number(r.bytes).toLocaleString('en')} | ${Math.round(Number(r.bytes) / LEARNERS).toLocaleString('en')} |\n`,
    );
  }
  process.stdout.write(
    `| **all tables** | | ${total.toLocaleString('en')} | **${Math.round(total / LEARNERS).toLocaleString('en')}** |\n`,
  );
  await app.close();
  await database.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
  await admin(`drop database if exists ${DB} with (force)`);
}

async function tableSizes(): Promise<{ table: string; rows: string; bytes: string }[]> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    await c.query('vacuum analyze');
    const { rows } = await c.query<{ table: string; rows: string; bytes: string }>(`
      select c.relname as table, greatest(c.reltuples, 0)::bigint as rows, pg_total_relation_size(c.oid) as bytes
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r'`);
    return rows;
  } finally {
    await c.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
