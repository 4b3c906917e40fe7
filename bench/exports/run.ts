import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.js';
import { createDatabase, migrateToLatest } from '../../src/db/index.js';
import { seedBench } from './seed.js';

/**
 * Summary export benchmark (issue 8): 100k learners × 16 modules on PostgreSQL, in a database of its own;
 * CSV and XLSX timed end to end over HTTP, with the serving process's peak RSS.
 * Targets: CSV < 5 s and < 150 MB.
 *
 *   node --import tsx bench/exports/run.ts [--learners 100000] [--modules 16] [--reseed] [--runs 3]
 *     [--url postgres://postgres@127.0.0.1:5432/postgres]
 */
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] as string) : fallback;
};
const learners = Number(opt('learners', '100000'));
const modules = Number(opt('modules', '16'));
const runs = Number(opt('runs', '3'));
const adminUrl = opt('url', 'postgres://postgres@127.0.0.1:5432/postgres');
const dbName = `emargement_bench_exports_${learners}_${modules}`;
const dbUrl = (() => {
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

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
  const config = loadConfig({ ...process.env, DATABASE_URL: dbUrl, NODE_ENV: 'development', LOG_LEVEL: 'warn' });
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

const exec = promisify(execFile);
interface Measure {
  kind: string;
  format: string;
  fund: string;
  status: number;
  rows: number;
  bytes: number;
  ms: number;
  firstByteMs: number;
  baselineRssMB: number;
  peakRssMB: number;
  maxRssMB: number;
  audit: string;
}
const results: Measure[] = [];
for (const [kind, format, fund] of [
  ['summary', 'csv', undefined],
  ['summary', 'xlsx', undefined],
  ['summary', 'csv', 'uniformation'],
] as const) {
  for (let i = 0; i < runs; i++) {
    const { stdout } = await exec(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', 'bench/exports/measure.ts', kind, format, ...(fund ? [fund] : [])],
      { env: { ...process.env, DATABASE_URL: dbUrl }, maxBuffer: 1 << 20 },
    );
    const m = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Measure;
    if (m.status !== 200 || m.audit !== 'completed') throw new Error(`export failed: ${stdout}`);
    results.push(m);
    process.stdout.write(`${JSON.stringify(m)}\n`);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
process.stdout.write(
  '\n| export | scope | rows | size | time (median) | first byte | process RSS: idle → peak | added by the export (max) |\n|---|---|---|---|---|---|---|---|\n',
);
const added = (r: Measure) => Math.max(r.maxRssMB, r.peakRssMB) - r.baselineRssMB;
for (const key of [...new Set(results.map((r) => `${r.kind}|${r.format}|${r.fund}`))]) {
  const rs = results.filter((r) => `${r.kind}|${r.format}|${r.fund}` === key);
  const [kind, format, fund] = key.split('|');
  process.stdout.write(
    `| ${kind} ${format?.toUpperCase()} | ${fund} | ${rs[0]?.rows} | ${((rs[0]?.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB | ${(
      median(rs.map((r) => r.ms)) / 1000
    ).toFixed(2)} s | ${(median(rs.map((r) => r.firstByteMs)) / 1000).toFixed(2)} s | ${median(
      rs.map((r) => r.baselineRssMB),
    )} → ${Math.max(...rs.map((r) => r.maxRssMB))} MB | ${Math.max(...rs.map(added))} MB |\n`,
  );
}
const csv = results.filter((r) => r.format === 'csv' && r.fund === 'all');
const time = median(csv.map((r) => r.ms));
const memory = Math.max(...csv.map(added));
process.stdout.write(
  `\nSummary CSV, all funds: ${(time / 1000).toFixed(2)} s (target < 5 s: ${time < 5000 ? 'met' : 'NOT met'}), ` +
    `${memory} MB added to the serving process (target < 150 MB: ${memory < 150 ? 'met' : 'NOT met'}); ` +
    `the idle process itself is ${median(csv.map((r) => r.baselineRssMB))} MB.\n`,
);
