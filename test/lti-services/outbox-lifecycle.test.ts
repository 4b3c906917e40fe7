import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { enqueueCompletionScore, processScoreOutbox, runOutbox } from '../../src/lti-services/index.js';
import { FakeOpenEdxServices, toolKeysetAt } from '../fixtures/openedx/services.js';
import { testConfig } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { type SeededPlatform, seedLaunch, seedPlatform, seedResourceLink } from './seed.js';

/**
 * The score outbox across the life of an instance (docs/score-outbox.md): it starts once the server
 * listens (Open edX checks our token requests against the keyset this server publishes), it does not
 * count a refusal that may be its own keyset being unreachable at start, it keeps the scores of a
 * replaced registration pending until an operator re-targets them, and it sends a backlog as soon as the
 * platform answers again after an outage. The stop during a hung request runs a real process:
 * test/lti-services/outbox-stop.test.ts.
 */

let database: DatabaseHandle;
let platform: FakeOpenEdxServices;
const apps: App[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  platform = new FakeOpenEdxServices();
  await platform.start();
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  await platform.setOutage('none');
  // Each test counts what its own passes claim: nothing a previous test left waiting may fall due.
  await database.db
    .updateTable('lti_score_outbox')
    .set({ status: 'superseded' })
    .where('status', '=', 'pending')
    .execute();
});
afterAll(async () => {
  await platform.stop();
  await database.close();
});

/**
 * Waits until `done()` holds (a loaded machine may be slow; no timing is asserted, and no deadline but
 * the test's own limit, which names `what` through the test's title).
 */
async function until(done: () => Promise<boolean>, _what: string): Promise<void> {
  while (!(await done())) await new Promise((r) => setTimeout(r, 20));
}

/** A tool instance on this file's database, with the public URL it will listen on. */
async function toolInstance(options: { scheduled: boolean; logs?: Record<string, unknown>[] }) {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const config = testConfig({ PUBLIC_URL: publicUrl, SCHEDULED_TASKS: options.scheduled ? 'true' : 'false' });
  const lines = options.logs;
  const app = await buildApp({
    config,
    database,
    closeDatabase: false,
    ...(lines ? { logger: { level: 'info', stream: { write: (l: string) => lines.push(JSON.parse(l)) } } } : {}),
  });
  apps.push(app);
  return {
    app,
    keysetUrl: `${publicUrl}/.well-known/jwks.json`,
    listen: () => app.listen({ port, host: '127.0.0.1' }),
  };
}

/** A platform registration of the fake Open edX, kept by the tool at start (not from the registrations file). */
async function registration(toolJwks: Parameters<typeof seedPlatform>[2]): Promise<SeededPlatform> {
  const p = await seedPlatform(database.db, platform, toolJwks);
  await database.db
    .updateTable('lti_registrations')
    .set({ source: 'cli' })
    .where('id', '=', p.registrationId)
    .execute();
  return p;
}

async function queuedScore(p: SeededPlatform) {
  const linkId = await seedResourceLink(database.db, p, { module: 'akto-visibilite' });
  const lineitem = platform.addLineItem(p.configId, { label: 'Module', scoreMaximum: 1, resourceLinkId: linkId });
  const launch = await seedLaunch(database.db, p, {
    resourceLinkId: linkId,
    ags: platform.agsClaim(p.configId, lineitem),
  });
  const queued = await enqueueCompletionScore(database.db, {
    learnerId: launch.learnerId,
    courseId: p.courseId,
    resourceLinkId: linkId,
    moduleId: 'akto-visibilite',
    completedAt: new Date(),
  });
  if (!queued.queued) throw new Error(`not queued: ${queued.reason}`);
  return { id: queued.id, lineitem, sub: launch.sub };
}

function row(id: string) {
  return database.db.selectFrom('lti_score_outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

function cli() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    ctx: { db: database.db, out: (t: string) => out.push(t), err: (t: string) => err.push(t) },
  };
}

describe('start: the outbox waits for the server to listen', () => {
  it('delivers a score due at start on the first attempt, to a platform that reads our keyset from us', async () => {
    const tool = await toolInstance({ scheduled: true });
    const keyset = toolKeysetAt(tool.keysetUrl);
    const p = await registration(keyset);
    const score = await queuedScore(p);

    await tool.app.ready();
    // Ready is not listening: nothing was tried yet (a token request now could not be checked).
    expect(await row(score.id)).toMatchObject({ status: 'pending', attempts: 0 });
    await tool.listen();
    await until(async () => (await row(score.id)).status === 'sent', 'score sent');

    expect(await row(score.id)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(platform.grade(score.lineitem, score.sub)).toBe(1);
    // The platform did read our keyset, from this very server, and never refused the tool.
    expect(keyset.fetches).toBeGreaterThanOrEqual(1);
    expect(keyset.failures).toBe(0);
    const requests = platform.tokenRequests.filter((r) => r.configId === p.configId);
    expect(requests.map((r) => r.outcome)).toEqual(['issued']);
  });

  it('does not count an invalid_client while our keyset may not be reachable yet, and tries again shortly', async () => {
    const tool = await toolInstance({ scheduled: false });
    const keyset = toolKeysetAt(tool.keysetUrl);
    // The first read of our keyset fails, as when the load balancer does not route to a new instance yet.
    let routed = false;
    const p = await registration(async () => {
      if (!routed) {
        routed = true;
        throw new Error('no route to the tool yet');
      }
      return keyset();
    });
    const score = await queuedScore(p);
    await tool.app.ready();
    await tool.listen();

    const t0 = new Date();
    expect(await processScoreOutbox(tool.app, { now: t0 })).toMatchObject({ claimed: 1, released: 1, retrying: 0 });
    const released = await row(score.id);
    expect(released).toMatchObject({ status: 'pending', attempts: 0, locked_by: null, last_http_status: 400 });
    expect(released.last_error).toContain('invalid_client');
    expect(released.last_error).toContain('may not have reached our keyset');
    // Due again after one poll interval, not after the backoff of a counted attempt.
    expect(released.next_attempt_at.getTime() - t0.getTime()).toBe(5_000);

    expect(await processScoreOutbox(tool.app, { now: new Date(t0.getTime() + 5_000) })).toMatchObject({ sent: 1 });
    expect(await row(score.id)).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('counts an invalid_client given after the platform read our keyset: that is a real refusal', async () => {
    const tool = await toolInstance({ scheduled: false });
    const keyset = toolKeysetAt(tool.keysetUrl);
    const p = await registration(keyset);
    // The platform knows this component by another client ID: it reads our keys, then refuses us.
    const config = platform.tools.get(p.configId);
    if (!config) throw new Error('no tool config');
    config.clientId = randomUUID();
    const score = await queuedScore(p);
    await tool.app.ready();
    await tool.listen();

    expect(await processScoreOutbox(tool.app)).toMatchObject({ claimed: 1, retrying: 1, released: 0 });
    expect(keyset.fetches).toBe(1);
    const counted = await row(score.id);
    expect(counted).toMatchObject({ status: 'pending', attempts: 1, last_http_status: 400 });
    expect(counted.last_error).not.toContain('may not have reached our keyset');
  });
});

describe('a replaced registration (same platform and deployment, new client ID)', () => {
  it('keeps its scores pending and held, says so truthfully, and sends them once re-targeted', async () => {
    const logs: Record<string, unknown>[] = [];
    const tool = await toolInstance({ scheduled: false, logs });
    await tool.app.ready();
    const old = await registration(async () =>
      (await tool.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json(),
    );
    const scores = [await queuedScore(old), await queuedScore(old)];

    // Studio gave the component a new client ID; the operator registered it and removed the old one.
    const newClientId = randomUUID();
    const config = platform.tools.get(old.configId);
    if (!config) throw new Error('no tool config');
    config.clientId = newClientId;
    const replacement = await database.db
      .insertInto('lti_registrations')
      .values({
        name: 'FUN test (recréé)',
        issuer: old.issuer,
        client_id: newClientId,
        deployment_ids: JSON.stringify(['1']),
        auth_login_url: `${old.issuer}/api/lti_consumer/v1/launch/`,
        access_token_url: platform.tokenUrl(old.configId),
        jwks_url: `${old.issuer}/api/lti_consumer/v1/public_keysets/${old.configId}`,
        source: 'cli',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await database.db
      .updateTable('lti_registrations')
      .set({ removed_at: new Date() })
      .where('id', '=', old.registrationId)
      .execute();

    const tokenRequests = platform.tokenRequests.length;
    const posts = platform.scorePosts.length;
    expect(await processScoreOutbox(tool.app)).toMatchObject({ claimed: 2, held: 2, failed: 0 });
    for (const s of scores) {
      const held = await row(s.id);
      expect(held).toMatchObject({ status: 'pending', attempts: 0, locked_by: null });
      expect(held.held_reason).toContain('unknown or removed');
      expect(held.held_reason).toContain('outbox retarget');
    }
    // Nothing went to the platform, and the log does not pretend it refused anything.
    expect(platform.tokenRequests.length).toBe(tokenRequests);
    expect(platform.scorePosts.length).toBe(posts);
    const warnings = logs.filter((l) => l.component === 'score-outbox' && l.level === 40);
    expect(warnings.map((l) => l.msg)).toEqual([
      'score held: its registration is unknown or removed, nothing was sent to the platform',
      'score held: its registration is unknown or removed, nothing was sent to the platform',
    ]);
    expect(logs.some((l) => String(l.msg).includes('refused'))).toBe(false);
    // Held rows are not claimed again while their registration stays removed, however late it gets.
    expect((await processScoreOutbox(tool.app, { now: new Date(Date.now() + 30 * 24 * 3600_000) })).claimed).toBe(0);

    // The operator sees why.
    const list = cli();
    expect(await runOutbox(list.ctx, ['list', '--status', 'pending'])).toBe(0);
    const text = list.out.join('');
    expect(text).toMatch(/\(2 held for an operator, 0 claimed\)/);
    expect(text).toContain(`registration client ID ${old.clientId} (removed)`);
    expect(text).toContain('held: ');

    // Refusals first: the same registration, an unknown one, a registration of another platform.
    const same = cli();
    expect(await runOutbox(same.ctx, ['retarget', '--from', old.clientId, '--to', old.clientId])).toBe(2);
    const unknown = cli();
    expect(await runOutbox(unknown.ctx, ['retarget', '--from', old.clientId, '--to', 'nope'])).toBe(1);
    expect(unknown.err.join('')).toContain('no registration');
    const elsewhere = await seedPlatform(database.db, platform, async () => ({ keys: [] }));
    await database.db
      .updateTable('lti_registrations')
      .set({ issuer: 'https://autre-lms.example' })
      .where('id', '=', elsewhere.registrationId)
      .execute();
    const other = cli();
    expect(await runOutbox(other.ctx, ['retarget', '--from', old.clientId, '--to', elsewhere.clientId])).toBe(1);
    expect(other.err.join('')).toContain('one platform');
    const missing = cli();
    expect(await runOutbox(missing.ctx, ['retarget', '--from', old.clientId])).toBe(2);

    const retarget = cli();
    expect(await runOutbox(retarget.ctx, ['retarget', '--from', old.clientId, '--to', newClientId])).toBe(0);
    expect(retarget.out.join('')).toContain('2 pending score(s)');
    for (const s of scores) {
      expect(await row(s.id)).toMatchObject({ registration_id: replacement.id, held_reason: null });
    }
    expect(await processScoreOutbox(tool.app)).toMatchObject({ sent: 2 });
    for (const s of scores) {
      expect(await row(s.id)).toMatchObject({ status: 'sent', attempts: 1 });
      expect(platform.grade(s.lineitem, s.sub)).toBe(1);
    }
  });

  it('resumes held scores by itself when the registration comes back', async () => {
    const tool = await toolInstance({ scheduled: false });
    await tool.app.ready();
    const p = await registration(async () =>
      (await tool.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json(),
    );
    const score = await queuedScore(p);
    const registrations = database.db.updateTable('lti_registrations').where('id', '=', p.registrationId);
    await registrations.set({ removed_at: new Date() }).execute();
    expect(await processScoreOutbox(tool.app)).toMatchObject({ held: 1 });
    await registrations.set({ removed_at: null }).execute();
    expect(await processScoreOutbox(tool.app)).toMatchObject({ sent: 1 });
    expect(platform.grade(score.lineitem, score.sub)).toBe(1);
  });
});

describe('the platform back after an outage', () => {
  it('sends the whole backlog at the first poll that finds the token endpoint answering again', async () => {
    const tool = await toolInstance({ scheduled: false });
    await tool.app.ready();
    const p = await registration(async () =>
      (await tool.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json(),
    );
    const backlog = [await queuedScore(p), await queuedScore(p), await queuedScore(p)];
    await platform.setOutage('refuse');
    expect(await processScoreOutbox(tool.app)).toMatchObject({ retrying: 3 });
    // An hour of outage: ten attempts each, the next one up to the 15-minute cap away.
    const inFifteen = new Date(Date.now() + 15 * 60_000);
    await database.db
      .updateTable('lti_score_outbox')
      .set({ attempts: 10, next_attempt_at: inFifteen, created_at: new Date(Date.now() - 3600_000) })
      .where(
        'id',
        'in',
        backlog.map((b) => b.id),
      )
      .execute();
    for (const b of backlog) expect(await row(b.id)).toMatchObject({ waiting_for_platform: true });

    // Still down: the probe fails, nothing is released.
    const probes = platform.tokenRequests.length;
    expect(await processScoreOutbox(tool.app)).toMatchObject({ reopened: 0, claimed: 0 });
    for (const b of backlog) expect((await row(b.id)).next_attempt_at).toEqual(inFifteen);

    // Back: the next poll probes the token endpoint, releases the backlog and sends it, in that one pass.
    await platform.setOutage('none');
    expect(await processScoreOutbox(tool.app)).toMatchObject({ reopened: 3, claimed: 3, sent: 3 });
    expect(platform.tokenRequests.length - probes).toBe(1);
    for (const b of backlog) {
      expect(await row(b.id)).toMatchObject({ status: 'sent', waiting_for_platform: false });
      expect(platform.grade(b.lineitem, b.sub)).toBe(1);
    }
  });

  it('does not release scores that failed for another reason than reaching the platform', async () => {
    const tool = await toolInstance({ scheduled: false });
    await tool.app.ready();
    const p = await registration(async () =>
      (await tool.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json(),
    );
    const score = await queuedScore(p);
    // A 429 from the scores endpoint: the platform is up and asked us to wait.
    await database.db
      .updateTable('lti_score_outbox')
      .set({ attempts: 3, next_attempt_at: new Date(Date.now() + 60_000), last_http_status: 429 })
      .where('id', '=', score.id)
      .execute();
    expect(await processScoreOutbox(tool.app)).toMatchObject({ reopened: 0, claimed: 0 });
  });
});
