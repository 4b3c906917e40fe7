import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { createDatabase, type DatabaseHandle } from '../../src/db/index.js';
import {
  CookieJar,
  type FakeOpenEdx,
  httpTransport,
  startFakeOpenEdx,
  type ToolTransport,
} from '../fixtures/openedx/index.js';
import { attachServices, type FakeOpenEdxServices } from '../fixtures/openedx/services.js';
import { testConfig } from '../helpers/app.js';
import { withDatabase } from '../helpers/global-setup.js';
import { freePort } from '../helpers/ports.js';
import { type Item, pageConfig, seedCourse, seedLearner } from '../tracking/helpers.js';

/**
 * The compiled build as production runs it: plain node on dist/, with neither tsx nor TypeScript resolvable
 * (a node_modules holding every other package). First the CLI's one entry point; then, on PostgreSQL, two
 * instances on one database behind a round-robin proxy written here (what Caddy does in docker-compose.yml).
 */
const root = process.cwd();
const out = mkdtempSync(join(tmpdir(), 'emargement-compiled-'));
const DEV_ONLY = new Set(['typescript', 'tsx', '.bin']);

beforeAll(() => {
  const build = spawnSync(process.execPath, ['src/cli/build.mjs', '--out', join(out, 'dist')], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(build.stderr + build.stdout).toBe('');
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(out, 'node_modules'));
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (!DEV_ONLY.has(name)) symlinkSync(join(root, 'node_modules', name), join(out, 'node_modules', name));
  }
  mkdirSync(join(out, 'src', 'cli'), { recursive: true });
  cpSync(join(root, 'src/cli/run.mjs'), join(out, 'src/cli/run.mjs'));
});

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the CLI entry point (src/cli/run.mjs)', () => {
  it('runs the compiled CLI where neither tsx nor TypeScript is installed', () => {
    const tsx = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('tsx')"], {
      cwd: out,
      encoding: 'utf8',
    });
    expect(tsx.status).not.toBe(0);
    const dataDir = mkdtempSync(join(tmpdir(), 'emargement-cli-'));
    const migrate = spawnSync(process.execPath, [join(out, 'src/cli/run.mjs'), 'migrate'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir },
      encoding: 'utf8',
    });
    expect(migrate.stderr).toBe('');
    expect(migrate.stdout).toMatch(/^Applied: 0001_foundation, .*0021_operations_metrics/);
    const unknown = spawnSync(process.execPath, [join(out, 'src/cli/run.mjs'), 'nope'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('Unknown command "nope"');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('in a checkout, rebuilds a stale dist/ first (as npm start does), then runs it', () => {
    // The checkout's own run.mjs against the checkout's dist/: up to date or rebuilt, the command runs.
    const help = spawnSync(process.execPath, ['src/cli/run.mjs', 'help'], { cwd: root, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: npm run cli -- <command>');
    const again = spawnSync(process.execPath, ['src/cli/run.mjs', 'help'], { cwd: root, encoding: 'utf8' });
    expect(again.stderr).toBe(''); // fresh: no rebuild the second time
  });
});

// ─── Two instances, one PostgreSQL ────────────────────────────────────────────────────────────────────

const testDb = inject('testDb');
const target = testDb.kind === 'pg' ? testDb : { kind: 'pglite' as const, url: '', template: '', prefix: '' };
const onPostgres = testDb.kind === 'pg';
if (!onPostgres) {
  process.stderr.write(
    'test/operations/compiled.test.ts: the two-instance tests need PostgreSQL (PGlite is single-process): ' +
      'set TEST_DATABASE_URL to run them.\n',
  );
}

interface Instance {
  port: number;
  child: ChildProcess | null;
  output: string;
  /** When its /ready first answered 200 (its scheduled tasks count from there). */
  readyAt: number;
}

/** Round-robin over the instances; a refused connection goes to the next one (Caddy's lb_try_duration). */
class RoundRobin {
  server!: Server;
  url = '';
  next = 0;
  readonly hits: { path: string; backend: number }[] = [];
  constructor(readonly backends: Instance[]) {}

  async start(port: number): Promise<void> {
    this.server = createServer((req, res) => {
      this.#handle(req).then(
        ({ status, headers, body }) => {
          res.writeHead(status, headers);
          res.end(body);
        },
        () => {
          res.writeHead(502);
          res.end();
        },
      );
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async #handle(req: IncomingMessage) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const pinned = req.headers['x-test-backend'];
    const order =
      pinned !== undefined ? [Number(pinned)] : [this.next++ % this.backends.length, this.next % this.backends.length];
    let lastError: unknown;
    for (const b of order) {
      try {
        const answer = await this.#forward(req, body, this.backends[b] as Instance);
        this.hits.push({ path: (req.url ?? '').split('?')[0] as string, backend: b });
        return answer;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  #forward(req: IncomingMessage, body: Buffer, backend: Instance) {
    return new Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }>(
      (resolve, reject) => {
        const headers = { ...req.headers };
        delete headers['x-test-backend'];
        const r = httpRequest(
          { host: '127.0.0.1', port: backend.port, method: req.method, path: req.url, headers, agent: false },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => {
              const h: Record<string, string | string[]> = {};
              for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && k !== 'connection') h[k] = v;
              resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(parts) });
            });
            res.on('error', reject);
          },
        );
        r.on('error', reject);
        r.end(body);
      },
    );
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

describe.skipIf(!onPostgres)('two instances of the compiled server on one PostgreSQL', () => {
  const dbName = onPostgres ? `${target.prefix}replicas_${randomBytes(4).toString('hex')}` : '';
  const databaseUrl = onPostgres ? withDatabase(target.url, dbName) : '';
  const secret = `replicas-secret-${randomBytes(16).toString('hex')}`;
  const instances: Instance[] = [];
  let proxy: RoundRobin;
  let fake: FakeOpenEdx;
  let services: FakeOpenEdxServices;
  let registrationsFile: string;
  let helper: App;
  let database: DatabaseHandle;

  async function startInstance(i: number): Promise<void> {
    const instance = instances[i] as Instance;
    const child = spawn(process.execPath, [join(out, 'dist/src/server.js')], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        PORT: String(instance.port),
        PUBLIC_URL: proxy.url,
        DATABASE_URL: databaseUrl,
        APP_SECRET: secret,
        SCHEDULED_TASKS: 'true',
        LOG_LEVEL: 'info',
        LTI_REGISTRATIONS_FILE: registrationsFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    instance.child = child;
    child.stdout?.on('data', (d) => {
      instance.output += d;
    });
    child.stderr?.on('data', (d) => {
      instance.output += d;
    });
    // Readiness, not a timer: /ready answers 200 once migrations are applied and the database answers.
    for (;;) {
      if (child.exitCode !== null) throw new Error(`instance ${i} exited: ${instance.output}`);
      try {
        const res = await fetch(`http://127.0.0.1:${instance.port}/ready`);
        if (res.status === 200) {
          instance.readyAt = Date.now();
          return;
        }
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resolves once instance `i` has printed `text` (its output arrives by `data` events). */
  async function outputContaining(i: number, text: string): Promise<void> {
    const instance = instances[i] as Instance;
    const child = instance.child;
    if (!child) throw new Error(`instance ${i} is not running`);
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (instance.output.includes(text)) {
          child.stdout?.off('data', check);
          child.off('exit', exited);
          resolve();
        }
      };
      const exited = () => reject(new Error(`instance ${i} exited before printing ${text}: ${instance.output}`));
      child.stdout?.on('data', check);
      child.once('exit', exited);
      check();
    });
  }

  async function stopInstance(i: number): Promise<void> {
    const instance = instances[i] as Instance;
    const child = instance.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    instance.child = null;
  }

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    try {
      await admin.query(`create database ${dbName} template ${target.template}`);
    } finally {
      await admin.end();
    }
    for (let i = 0; i < 2; i++) instances.push({ port: await freePort(), child: null, output: '', readyAt: 0 });
    proxy = new RoundRobin(instances);
    await proxy.start(await freePort());
    fake = await startFakeOpenEdx({ toolUrl: proxy.url, component: { custom: { theme: 'digitalisation' } } });
    services = attachServices(fake, async () => (await fetch(`${proxy.url}/.well-known/jwks.json`)).json());
    registrationsFile = join(out, 'registrations.json');
    writeFileSync(registrationsFile, JSON.stringify(fake.registrations()));
    await startInstance(0);
    await startInstance(1);
    // Mints session tokens and tracker tickets (same APP_SECRET); never made ready, so it runs no loop.
    database = await createDatabase({ databaseUrl, poolMax: 2 });
    helper = await buildApp({
      config: testConfig({ APP_SECRET: secret, PUBLIC_URL: proxy.url, LTI_REGISTRATIONS_FILE: registrationsFile }),
      database,
    });
  });

  afterAll(async () => {
    for (const i of instances) i.child?.kill('SIGKILL');
    await helper?.close().catch(() => {});
    await database?.close();
    await proxy?.close();
    await fake?.close();
  });

  /** The browser's requests, sent through the proxy to one chosen instance. */
  const pinnedTo = (backend: number): ToolTransport => {
    const http = httpTransport();
    return {
      kind: 'http',
      request: (req) => http.request({ ...req, headers: { ...req.headers, 'x-test-backend': String(backend) } }),
    };
  };

  it('completes on instance 2 a launch whose login hit instance 1', async () => {
    const user = fake.createUser();
    const jar = new CookieJar();
    const step = await fake.startLogin({ user, transport: pinnedTo(0), jar });
    expect(step.login.status).toBe(302);
    expect(step.authRequest).not.toBeNull();
    const auth = await fake.authorize(step.authRequest as URLSearchParams);
    if (!auth.ok) throw new Error(auth.error);
    const launch = await fake.postLaunch(pinnedTo(1), auth, jar);
    expect(launch.status).toBe(200);
    expect(proxy.hits.filter((h) => h.path === '/lti/login').map((h) => h.backend)).toEqual([0]);
    expect(proxy.hits.filter((h) => h.path === '/lti/launch').map((h) => h.backend)).toEqual([1]);
    // Log lines are written in chunks (at most half a second later): wait for the line, not for a timer.
    await outputContaining(1, 'lti launch accepted');
    // The same id_token posted again (a replay), to the other instance: the nonce was consumed once, for both.
    const replay = await fake.postLaunch(pinnedTo(0), auth, jar);
    expect(replay.status).toBe(401);
  });

  /** Tabs sending beats through the proxy like the tracker: unacknowledged items are sent again. */
  async function beatLoad(stop: { done: boolean }, tabs: number) {
    const course = await seedCourse(helper.db);
    const sent: { tabId: string; learnerId: string; acked: Set<number> }[] = [];
    const loops = Array.from({ length: tabs }, async () => {
      const learner = await seedLearner(helper, course);
      const { ticket } = pageConfig(helper, learner, 'common-digitalisation');
      const tab = { tabId: randomUUID(), learnerId: learner.learnerId, acked: new Set<number>() };
      sent.push(tab);
      let seq = 0;
      let pending: Item[] = [{ kind: 'open', seq: seq++, inputAgoMs: 500 }];
      while (!stop.done) {
        try {
          const res = await fetch(`${proxy.url}/api/tracking/beats`, {
            method: 'POST',
            headers: { authorization: `Bearer ${learner.token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ tabId: tab.tabId, ticket, items: pending }),
          });
          if (res.status === 200) {
            const body = (await res.json()) as { results: { seq: number; status: string }[] };
            for (const r of body.results) if (r.status === 'received' || r.status === 'duplicate') tab.acked.add(r.seq);
            pending = pending.filter((i) => !tab.acked.has(i.seq));
          }
        } catch {}
        await new Promise((r) => setTimeout(r, 150));
        pending.push({ kind: 'beat', seq: seq++, inputAgoMs: 500, clientTime: new Date().toISOString() });
      }
      // The last items, until acknowledged (both instances are up again).
      while (pending.length > 0) {
        const res = await fetch(`${proxy.url}/api/tracking/beats`, {
          method: 'POST',
          headers: { authorization: `Bearer ${learner.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ tabId: tab.tabId, ticket, items: pending }),
        });
        if (res.status === 200) {
          const body = (await res.json()) as { results: { seq: number; status: string }[] };
          for (const r of body.results) if (r.status === 'received' || r.status === 'duplicate') tab.acked.add(r.seq);
          pending = pending.filter((i) => !tab.acked.has(i.seq));
        }
      }
    });
    return { sent, done: Promise.all(loops) };
  }

  /** Waits until both instances credited everything acknowledged (journal and inbox empty). */
  async function drained(): Promise<void> {
    for (;;) {
      const { rows } = await pg_count(databaseUrl);
      if (rows === 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function checkCreditedOnce(sent: { tabId: string; acked: Set<number> }[]): Promise<void> {
    for (const tab of sent) {
      const [events, runs] = await Promise.all([
        helper.db.selectFrom('tracking_events').select(['seq', 'kind']).where('tab_id', '=', tab.tabId).execute(),
        helper.db
          .selectFrom('tracking_runs')
          .select(['first_seq', 'last_seq'])
          .where('tab_id', '=', tab.tabId)
          .orderBy('first_seq')
          .execute(),
      ]);
      const eventSeqs = events.filter((e) => e.seq !== null).map((e) => e.seq as number);
      // Once: no item recorded twice, no two runs covering the same item.
      expect(new Set(eventSeqs).size, `tab ${tab.tabId}: an item recorded twice`).toBe(eventSeqs.length);
      runs.forEach((r, i) => {
        if (i > 0) expect(r.first_seq).toBeGreaterThan((runs[i - 1] as { last_seq: number }).last_seq);
      });
      // Every acknowledged item is accounted for (credited in a run, or kept as an event).
      for (const seq of tab.acked) {
        const accounted = eventSeqs.includes(seq) || runs.some((r) => r.first_seq <= seq && seq <= r.last_seq);
        expect(accounted, `tab ${tab.tabId}: acknowledged item ${seq} lost`).toBe(true);
      }
    }
  }

  it('credits exactly once the beats spread over both instances', async () => {
    const stop = { done: false };
    const hitsBefore = proxy.hits.length;
    const load = await beatLoad(stop, 4);
    for (;;) {
      const beats = proxy.hits.slice(hitsBefore).filter((h) => h.path === '/api/tracking/beats');
      if (beats.filter((h) => h.backend === 0).length >= 10 && beats.filter((h) => h.backend === 1).length >= 10) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    stop.done = true;
    await load.done;
    await drained();
    await checkCreditedOnce(load.sent);
    expect(load.sent.reduce((n, t) => n + t.acked.size, 0)).toBeGreaterThanOrEqual(20);
  });

  it('loses no acknowledged beat through a rolling restart under load', async () => {
    const stop = { done: false };
    const load = await beatLoad(stop, 4);
    const acked = () => load.sent.reduce((n, t) => n + t.acked.size, 0);
    const waitForMoreAcks = async (more: number) => {
      const start = acked();
      while (acked() < start + more) await new Promise((r) => setTimeout(r, 50));
    };
    await waitForMoreAcks(10);
    await stopInstance(0);
    await waitForMoreAcks(10); // served by instance 2 alone
    await startInstance(0);
    await waitForMoreAcks(10);
    await stopInstance(1);
    await waitForMoreAcks(10); // served by instance 1 alone
    await startInstance(1);
    await waitForMoreAcks(10);
    stop.done = true;
    await load.done;
    await drained();
    await checkCreditedOnce(load.sent);
    for (const i of instances) expect(i.output).not.toContain('"level":50');
  });

  it('delivers each queued score once although both instances run the outbox', async () => {
    const registration = await helper.db
      .selectFrom('lti_registrations')
      .select('id')
      .where('client_id', '=', fake.registration.clientId)
      .executeTakeFirstOrThrow();
    const course = await seedCourse(helper.db);
    const configId = fake.components[0]?.configId as string;
    const lineitem = `${fake.url}/api/lti_consumer/v1/lti/${configId}/lti-ags/1`;
    const n = 12;
    for (let k = 0; k < n; k++) {
      const learner = await seedLearner(helper, course);
      await helper.db
        .insertInto('lti_score_outbox')
        .values({
          registration_id: registration.id,
          learner_id: learner.learnerId,
          course_id: course,
          lineitem_url: lineitem,
          user_id: `user-${k}`,
          score_given: 1,
          score_maximum: 1,
          activity_progress: 'Completed',
          grading_progress: 'FullyGraded',
          occurred_at: new Date(),
          idempotency_key: randomUUID(),
        })
        .execute();
    }
    // Both instances poll the outbox every few seconds: wait for the rows to leave "pending".
    for (;;) {
      const left = await helper.db
        .selectFrom('lti_score_outbox')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'pending')
        .executeTakeFirstOrThrow();
      if (Number(left.n) === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // One POST per score, each accepted: no instance delivered a row the other had taken.
    expect(services.scorePosts).toHaveLength(n);
    expect(services.scorePosts.every((p) => p.status < 300)).toBe(true);
    const sent = await helper.db
      .selectFrom('lti_score_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'sent')
      .executeTakeFirstOrThrow();
    expect(Number(sent.n)).toBe(n);
  });

  it('keeps the daily digest once although both instances run the scheduled digest', async () => {
    // Each instance checks a minute after it is ready, then hourly, whether yesterday's digest is kept.
    for (;;) {
      const kept = await helper.db
        .selectFrom('tracking_digests')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      const bothTicked = instances.every((i) => Date.now() > i.readyAt + 65_000);
      if (Number(kept.n) > 0 && bothTicked) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const days = await helper.db.selectFrom('tracking_digests').select('day').execute();
    expect(new Set(days.map((d) => d.day)).size).toBe(days.length);
    const all = instances.map((i) => i.output).join('');
    // Stored by one instance; the other found it kept and did nothing (no second computation, no mismatch).
    expect(all.match(/"msg":"daily digest stored"/g)?.length).toBe(days.length);
    expect(all).not.toContain('daily digest mismatch');
    expect(all).not.toContain('periodic task failed');
  });
});

async function pg_count(url: string): Promise<{ rows: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      'select (select count(*) from tracking_journal) + (select count(*) from tracking_inbox) as n',
    );
    return { rows: Number(rows[0]?.n ?? 0) };
  } finally {
    await client.end();
  }
}
