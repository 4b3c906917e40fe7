/**
 * Where Émargement's CPU per login + launch goes, measured without the network and the sampling profiler:
 * the production build (dist/) in this process, on PostgreSQL, driven through `app.inject` (no sockets), with
 * the fake Open edX signing every id_token before the timed loops. Prints the process's CPU (all threads)
 * per login and per launch, so that one change can be judged by its own figure:
 *
 *   node src/cli/build.mjs && node --import tsx bench/launch/attribute.ts [--pairs 3000] [--rounds 3]
 *
 * The HTTP parsing and socket writes of a real request are not in these figures (bench/launch/run.ts has them).
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { type FakeComponent, startFakeOpenEdx } from '../../test/fixtures/openedx/index.js';

const { values: args } = parseArgs({
  options: { pairs: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '3' } },
});
const PAIRS = Number(args.pairs);
const ROUNDS = Number(args.rounds);
const ROOT = new URL('../../', import.meta.url).pathname;
const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = 'emargement_bench_attribute';

const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`drop database if exists ${DB} with (force)`);
await admin.query(`create database ${DB}`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${DB}`;

const tmp = await mkdtemp(join(os.tmpdir(), 'emargement-attribute-'));
const toolUrl = 'http://127.0.0.1:9';
const platform = await startFakeOpenEdx({
  toolUrl,
  component: { name: 'Émargement', custom: { theme: 'digitalisation' } },
});
const component = platform.components[0] as FakeComponent;
await cp(join(ROOT, 'lti-config'), join(tmp, 'lti-config'), { recursive: true });
await writeFile(join(tmp, 'lti-config', 'registrations.json'), JSON.stringify([component.registration], null, 2));

const env = {
  NODE_ENV: 'development',
  DEMO_LMS: 'false',
  PUBLIC_URL: toolUrl,
  APP_SECRET: 'bench-attribute-app-secret-0123456789abcdefghij',
  DATA_DIR: join(tmp, 'data'),
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  MIGRATE_ON_START: 'true',
  SCHEDULED_TASKS: 'false',
  LTI_REGISTRATIONS_FILE: join(tmp, 'lti-config', 'registrations.json'),
  DATABASE_URL: dbUrl.toString(),
};
const { buildApp } = (await import(join(ROOT, 'dist/src/app.js'))) as typeof import('../../src/app.js');
const { loadConfig } = (await import(
  join(ROOT, 'dist/src/config/index.js')
)) as typeof import('../../src/config/index.js');
const { default: pino } = await import('pino');
const app = await buildApp({
  config: loadConfig(env),
  logger: { level: env.LOG_LEVEL, stream: pino.destination({ dest: '/dev/null', sync: false }) } as never,
});
await app.ready();

const users = Array.from({ length: 200 }, () => platform.createUser({ role: 'student' }));
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** A V8 CPU profile of what runs until the returned function is called, written to `file` (none without it). */
async function profileTo(file: string | undefined): Promise<() => Promise<void>> {
  if (!file) return async () => {};
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(file, JSON.stringify(profile));
    session.disconnect();
  };
}

for (let round = 0; round < ROUNDS; round++) {
  // Logins, timed.
  const locations: string[] = [];
  const last = round === ROUNDS - 1;
  const stopLoginProfile = await profileTo(last ? process.env.BENCH_ATTRIBUTE_LOGIN_PROFILE : undefined);
  let t0 = cpu();
  for (let i = 0; i < PAIRS; i++) {
    const user = users[i % users.length];
    const url = platform.loginInitiationUrl({ user: user as never, component });
    const res = await app.inject({ method: 'GET', url: url.slice(toolUrl.length) });
    if (res.statusCode !== 302) throw new Error(`login ${res.statusCode} ${res.body.slice(0, 200)}`);
    locations.push(String(res.headers.location));
  }
  const loginUs = (cpu() - t0) / PAIRS;
  await stopLoginProfile();
  // The platform signs every id_token, untimed.
  const forms: string[] = [];
  for (const location of locations) {
    const auth = await platform.authorize(new URL(location).searchParams);
    if (!auth.ok) throw new Error(auth.error);
    forms.push(new URLSearchParams(auth.fields).toString());
  }
  const stopLaunchProfile = await profileTo(last ? process.env.BENCH_ATTRIBUTE_PROFILE : undefined);
  t0 = cpu();
  for (const form of forms) {
    const res = await app.inject({
      method: 'POST',
      url: '/lti/launch',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form,
    });
    if (res.statusCode !== 200) throw new Error(`launch ${res.statusCode} ${res.body.slice(0, 300)}`);
  }
  const launchUs = (cpu() - t0) / PAIRS;
  await stopLaunchProfile();
  console.log(
    `round ${round + 1}: login ${loginUs.toFixed(0)} µs, launch ${launchUs.toFixed(0)} µs, pair ${(loginUs + launchUs).toFixed(0)} µs CPU (this process, all threads)`,
  );
}
await app.close();
await platform.close();
await admin.query(`drop database if exists ${DB} with (force)`);
await admin.end();
await rm(tmp, { recursive: true, force: true });
