import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as holdsMigration from '../../migrations/0016_score_outbox_holds.js';
import {
  AccessTokenService,
  claimDueScores,
  enqueueCompletionScore,
  listOutbox,
  type OutboxContext,
  OutboxWorker,
  processOutbox,
  requeueScores,
  runOutbox,
} from '../../src/lti-services/index.js';
import { FakeOpenEdxServices } from '../fixtures/openedx/services.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import {
  capturingLogger,
  type SeededPlatform,
  seedLaunch,
  seedPlatform,
  seedResourceLink,
  testToolKey,
} from './seed.js';

let ctx: TestContext;
let platform: FakeOpenEdxServices;
let p: SeededPlatform;
let key: Awaited<ReturnType<typeof testToolKey>>;
let logs: ReturnType<typeof capturingLogger>;

function instance(worker: string): OutboxContext {
  const tokens = new AccessTokenService({ db: ctx.app.db, toolKey: async () => key.key });
  return { db: ctx.app.db, tokens, log: logs.log, worker, random: () => 0.5 };
}

let tool: OutboxContext;

beforeAll(async () => {
  ctx = await createTestApp();
  platform = new FakeOpenEdxServices();
  await platform.start();
  key = await testToolKey();
  p = await seedPlatform(ctx.app.db, platform, async () => key.jwks);
});
afterAll(async () => {
  await platform.stop();
  await ctx.close();
});
beforeEach(async () => {
  await platform.setOutage('none');
  logs = capturingLogger();
  tool = instance('tool-a');
});

/** A learner launched from a graded component: a resource link, a line item, a launch carrying it. */
async function gradedLearner(label = 'Module') {
  const linkId = await seedResourceLink(ctx.app.db, p, { module: 'akto-visibilite' });
  const lineitem = platform.addLineItem(p.configId, { label, scoreMaximum: 1, resourceLinkId: linkId });
  const launch = await seedLaunch(ctx.app.db, p, {
    resourceLinkId: linkId,
    ags: platform.agsClaim(p.configId, lineitem),
  });
  return { linkId, lineitem, ...launch };
}

async function complete(l: { learnerId: string; linkId: string }, moduleId = 'akto-visibilite', at = new Date()) {
  return enqueueCompletionScore(ctx.app.db, {
    learnerId: l.learnerId,
    courseId: p.courseId,
    resourceLinkId: l.linkId,
    moduleId,
    completedAt: at,
  });
}

async function row(id: string) {
  return ctx.app.db.selectFrom('lti_score_outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

describe('scoring a completed module (AGS score publish service)', () => {
  it('puts a full, non-zero score in the gradebook with the score media type and the learner sub', async () => {
    const l = await gradedLearner();
    const queued = await complete(l);
    expect(queued).toMatchObject({ queued: true, duplicate: false });
    const result = await processOutbox(tool);
    expect(result).toMatchObject({ claimed: 1, sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
    const [stored] = platform.storedScores(l.lineitem);
    expect(stored).toMatchObject({
      userId: l.sub,
      scoreGiven: 1,
      scoreMaximum: 1,
      activityProgress: 'Completed',
      gradingProgress: 'FullyGraded',
    });
    if (!queued.queued) throw new Error('not queued');
    const sent = await row(queued.id);
    expect(sent.status).toBe('sent');
    expect(sent.score_timestamp?.toISOString()).toBe(stored?.timestamp);
  });

  it('queues one score per completion however often it is reported', async () => {
    const l = await gradedLearner();
    const at = new Date();
    const a = await complete(l, 'akto-visibilite', at);
    const b = await complete(l, 'akto-visibilite', at);
    expect(a.queued && b.queued && a.id === b.id && b.duplicate).toBe(true);
  });

  it('does not queue a score when the launch carried no line item or no score scope', async () => {
    const linkId = await seedResourceLink(ctx.app.db, p);
    const noAgs = await seedLaunch(ctx.app.db, p, { resourceLinkId: linkId });
    expect(await complete({ learnerId: noAgs.learnerId, linkId })).toEqual({ queued: false, reason: 'no_lineitem' });
    const lineitem = platform.addLineItem(p.configId, { label: 'Lecture seule', scoreMaximum: 1 });
    const readOnly = await seedLaunch(ctx.app.db, p, {
      resourceLinkId: linkId,
      ags: { scope: ['https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly'], lineitem },
    });
    expect(await complete({ learnerId: readOnly.learnerId, linkId })).toEqual({
      queued: false,
      reason: 'no_score_scope',
    });
    const stranger = await complete({ learnerId: '00000000-0000-4000-8000-000000000000', linkId });
    expect(stranger).toEqual({ queued: false, reason: 'no_launch' });
  });

  it('keeps timestamps strictly increasing per learner and line item (Open edX refuses a same-time score)', async () => {
    const l = await gradedLearner();
    const at = new Date();
    await complete(l, 'akto-visibilite', at);
    await processOutbox(tool);
    // A second completion reported with the very same instant (e.g. a module variant on the same link).
    await complete(l, 'akto-visibilite-variante', at);
    const r = await processOutbox(tool);
    expect(r.sent).toBe(1);
    const stored = platform.storedScores(l.lineitem);
    expect(stored).toHaveLength(2);
    expect(Date.parse(stored[1]?.timestamp as string)).toBeGreaterThan(Date.parse(stored[0]?.timestamp as string));
    // The fake does refuse a same-time score: the clock above is what avoids it.
    const res = await fetch(`${l.lineitem}/scores`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await tool.tokens.getToken(p.registrationId, ['https://purl.imsglobal.org/spec/lti-ags/scope/score'])}`,
        'content-type': 'application/vnd.ims.lis.v1.score+json',
      },
      body: JSON.stringify({ ...stored[1], userId: l.sub }),
    });
    expect(res.status).toBe(400);
  });

  it('supersedes an unsent score by a newer one of the same learner for the same line item', async () => {
    const l = await gradedLearner();
    const first = await complete(l, 'module-a', new Date(Date.now() - 1000));
    const second = await complete(l, 'module-b', new Date());
    if (!first.queued || !second.queued) throw new Error('not queued');
    expect((await row(first.id)).status).toBe('superseded');
    await processOutbox(tool);
    expect((await row(second.id)).status).toBe('sent');
    expect(platform.storedScores(l.lineitem)).toHaveLength(1);
  });
});

describe('delivery through the durable outbox', () => {
  it('retries with backoff through a 503 outage and delivers once the platform is back', async () => {
    const l = await gradedLearner();
    const queued = await complete(l);
    if (!queued.queued) throw new Error('not queued');
    await platform.setOutage('503');
    const t0 = new Date();
    expect(await processOutbox(tool, { now: t0 })).toMatchObject({ claimed: 1, retrying: 1 });
    const waiting = await row(queued.id);
    expect(waiting).toMatchObject({ status: 'pending', attempts: 1, locked_by: null });
    expect(waiting.last_error).toMatch(/503/);
    // Backoff: not due again right away, due after the (jittered) delay.
    expect(waiting.next_attempt_at.getTime()).toBeGreaterThan(t0.getTime());
    expect((await processOutbox(tool, { now: t0 })).claimed).toBe(0);
    // Still down an hour later: retried again with a longer wait.
    const t1 = new Date(t0.getTime() + 3600_000);
    expect(await processOutbox(tool, { now: t1 })).toMatchObject({ retrying: 1 });
    const second = await row(queued.id);
    expect(second.next_attempt_at.getTime() - t1.getTime()).toBeGreaterThan(
      waiting.next_attempt_at.getTime() - t0.getTime(),
    );
    await platform.setOutage('none');
    expect(await processOutbox(tool, { now: new Date(t1.getTime() + 3600_000) })).toMatchObject({ sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
    expect(logs.lines.some((x) => x.msg === 'score not sent yet: will retry')).toBe(true);
  });

  it('retries when the platform refuses connections', async () => {
    const l = await gradedLearner();
    await complete(l);
    await platform.setOutage('refuse');
    const r = await processOutbox(tool);
    expect(r).toMatchObject({ retrying: 1 });
    const [pending] = await listOutbox(ctx.app.db, { statuses: ['pending'], limit: 5 });
    expect(pending?.last_error).toMatch(/unreachable/);
    await platform.setOutage('none');
    expect(await processOutbox(tool, { now: new Date(Date.now() + 3600_000) })).toMatchObject({ sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
  });

  it('drops a score the platform refuses for good, with an error an operator sees, and can resend it', async () => {
    const l = await gradedLearner();
    // The line item was deleted from the course: 404, which resending will not fix.
    const key = platform.lineItemKey(l.lineitem);
    const item = platform.lineItems.get(key);
    platform.lineItems.delete(key);
    const queued = await complete(l);
    if (!queued.queued) throw new Error('not queued');
    expect(await processOutbox(tool)).toMatchObject({ failed: 1 });
    const failed = await row(queued.id);
    expect(failed).toMatchObject({ status: 'failed', last_http_status: 404 });
    expect(failed.last_error).toMatch(/404/);
    const error = logs.lines.find((x) => x.level === 50);
    expect(error).toMatchObject({ outboxId: queued.id, status: 404 });
    expect(JSON.stringify(logs.lines)).not.toContain(l.sub);
    // The operator restores the line item and resends.
    if (item) platform.lineItems.set(key, item);
    expect(await requeueScores(ctx.app.db, { allFailed: true })).toBe(1);
    expect(await processOutbox(tool)).toMatchObject({ sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
  });

  it('survives a tool restart: another instance with an empty memory sends what was queued', async () => {
    const l = await gradedLearner();
    await complete(l);
    await platform.setOutage('refuse');
    await processOutbox(tool);
    await platform.setOutage('none');
    const restarted = instance('tool-restarted');
    expect(await processOutbox(restarted, { now: new Date(Date.now() + 3600_000) })).toMatchObject({ sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
  });

  it('takes over a score whose sender died mid-send once its lease expires', async () => {
    const l = await gradedLearner();
    const queued = await complete(l);
    if (!queued.queued) throw new Error('not queued');
    const claimed = await claimDueScores(ctx.app.db, { worker: 'crashed', leaseMs: 120_000, limit: 10 });
    expect(claimed.map((c) => c.id)).toContain(queued.id);
    const other = instance('tool-b');
    expect((await processOutbox(other)).claimed).toBe(0);
    expect(await processOutbox(other, { now: new Date(Date.now() + 121_000) })).toMatchObject({ sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
  });

  it('never sends a score twice when two instances drain the outbox at the same time', async () => {
    const learners = [];
    for (let i = 0; i < 8; i++) learners.push(await gradedLearner(`Module ${i}`));
    const postsBefore = platform.scorePosts.length;
    for (const l of learners) await complete(l);
    const a = instance('tool-a');
    const b = instance('tool-b');
    const drain = async (c: OutboxContext) => {
      let sent = 0;
      for (;;) {
        const r = await processOutbox(c, { limit: 3 });
        sent += r.sent;
        if (r.claimed === 0) return sent;
      }
    };
    const [sentA, sentB] = await Promise.all([drain(a), drain(b)]);
    expect(sentA + sentB).toBe(8);
    expect(platform.scorePosts.length - postsBefore).toBe(8);
    for (const l of learners) expect(platform.storedScores(l.lineitem)).toHaveLength(1);
  });
});

describe('access tokens for the score service', () => {
  it('reuses one token for many scores and refreshes it once after the platform revokes it', async () => {
    const fresh = instance('tool-tokens');
    const before = platform.tokenRequests.length;
    const learners = [await gradedLearner(), await gradedLearner(), await gradedLearner()];
    for (const l of learners) await complete(l);
    expect(await processOutbox(fresh)).toMatchObject({ sent: 3 });
    expect(platform.tokenRequests.length - before).toBe(1);

    platform.revokeTokens();
    const l = await gradedLearner();
    await complete(l);
    expect(await processOutbox(fresh)).toMatchObject({ sent: 1 });
    const requests = platform.tokenRequests.slice(before);
    expect(requests).toHaveLength(2);
    expect(requests.every((r) => r.outcome === 'issued')).toBe(true);
    expect(requests.every((r) => r.contentType.startsWith('application/x-www-form-urlencoded'))).toBe(true);
    expect(platform.scorePosts.filter((s) => s.status === 401)).toHaveLength(1);
  });
});

describe('stopping and giving up', () => {
  it('releases, uncounted, the score cut by a stop and the rest of the batch not tried yet', async () => {
    const learners = [await gradedLearner(), await gradedLearner(), await gradedLearner()];
    const ids: string[] = [];
    for (const l of learners) {
      const q = await complete(l);
      if (q.queued) ids.push(q.id);
    }
    const stopping = new AbortController();
    // The first score post hangs until the instance stops (the stop comes while it waits).
    const hanging: typeof fetch = async (input, init) => {
      if (String(input).endsWith('/scores')) {
        stopping.abort();
        return new Promise<Response>((_resolve, reject) => {
          const signal = init?.signal;
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener('abort', () => reject(signal.reason));
        });
      }
      return fetch(input, init);
    };
    const tokens = new AccessTokenService({
      db: ctx.app.db,
      toolKey: async () => key.key,
      fetch: hanging,
      signal: stopping.signal,
    });
    const stopped: OutboxContext = {
      ...instance('tool-stopping'),
      tokens,
      fetch: hanging,
      signal: stopping.signal,
    };
    const r = await processOutbox(stopped);
    expect(r).toMatchObject({ claimed: 3, released: 3, sent: 0, retrying: 0 });
    for (const id of ids) {
      const released = await row(id);
      expect(released).toMatchObject({ status: 'pending', attempts: 0, locked_by: null, locked_until: null });
      expect(released.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now());
    }
    expect(
      logs.lines.some((x) => x.msg === 'score released: this instance is stopping (the attempt is not counted)'),
    ).toBe(true);
    // Another instance sends them at once.
    expect(await processOutbox(instance('tool-next'))).toMatchObject({ sent: 3 });
  });

  it('gives up 7 days into the retry window; an operator retry opens a new window', async () => {
    const l = await gradedLearner();
    const queued = await complete(l);
    if (!queued.queued) throw new Error('not queued');
    await ctx.app.db
      .updateTable('lti_score_outbox')
      .set({ retrying_since: new Date(Date.now() - 8 * 24 * 3600_000), attempts: 600 })
      .where('id', '=', queued.id)
      .execute();
    await platform.setOutage('503');
    expect(await processOutbox(tool)).toMatchObject({ failed: 1 });
    const failed = await row(queued.id);
    expect(failed.status).toBe('failed');
    expect(failed.last_error).toMatch(/^gave up after 601 attempts: .* answered 503/);
    expect(logs.lines.some((x) => x.msg === 'score dropped: still not delivered after 7 days of retries')).toBe(true);
    expect(logs.lines.some((x) => x.msg === 'score dropped: the platform refused it')).toBe(false);

    expect(await requeueScores(ctx.app.db, { ids: [queued.id] })).toBe(1);
    expect(await processOutbox(tool)).toMatchObject({ retrying: 1 });
    expect((await row(queued.id)).status).toBe('pending');
  });
});

describe('migration 0016', () => {
  it('turns scores failed only for an unknown or removed registration back into held pending ones', async () => {
    const l = await gradedLearner();
    const other = await gradedLearner();
    const a = await complete(l);
    const b = await complete(other);
    if (!a.queued || !b.queued) throw new Error('not queued');
    // As an earlier version left them: one failed for its registration, one refused by the platform.
    await holdsMigration.down(ctx.app.db);
    await sql`update lti_score_outbox set status = 'failed', last_error = ${`registration ${p.registrationId} is unknown or removed`} where id = ${a.id}`.execute(
      ctx.app.db,
    );
    await sql`update lti_score_outbox set status = 'failed', last_error = 'scores endpoint answered 404' where id = ${b.id}`.execute(
      ctx.app.db,
    );
    await holdsMigration.up(ctx.app.db);
    const revived = await row(a.id);
    expect(revived).toMatchObject({ status: 'pending', waiting_for_platform: false });
    expect(revived.held_reason).toContain('is unknown or removed');
    expect(await row(b.id)).toMatchObject({ status: 'failed', held_reason: null });
    // The registration is active here: the held score resumes by itself.
    expect(await processOutbox(tool)).toMatchObject({ sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
  });
});

describe('the background worker', () => {
  it('drains what is due when started, and finishes its pass before stopping', async () => {
    const l = await gradedLearner();
    await complete(l);
    const worker = new OutboxWorker(instance('tool-worker'));
    worker.start(3600_000);
    await worker.stop();
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
  });
});

describe('npm run cli -- outbox', () => {
  function cli() {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      ctx: { db: ctx.app.db, out: (t: string) => out.push(t), err: (t: string) => err.push(t) },
    };
  }

  it('lists failed scores with their error, and resends them on demand', async () => {
    const l = await gradedLearner();
    const key = platform.lineItemKey(l.lineitem);
    const item = platform.lineItems.get(key);
    platform.lineItems.delete(key);
    const queued = await complete(l);
    if (!queued.queued) throw new Error('not queued');
    await processOutbox(tool);

    const list = cli();
    expect(await runOutbox(list.ctx, ['list'])).toBe(0);
    const text = list.out.join('');
    expect(text).toMatch(/\d+ pending \(\d+ held for an operator, \d+ claimed\), \d+ failed/);
    expect(text).toContain(queued.id);
    expect(text).toContain('scores endpoint answered 404');
    expect(text).not.toContain(l.sub);

    const json = cli();
    expect(await runOutbox(json.ctx, ['list', '--status', 'failed', '--json'])).toBe(0);
    const rows = JSON.parse(json.out.join('')) as { id: string; user_id?: string }[];
    expect(rows.some((r) => r.id === queued.id)).toBe(true);
    expect(rows.every((r) => r.user_id === undefined)).toBe(true);

    if (item) platform.lineItems.set(key, item);
    const retry = cli();
    expect(await runOutbox(retry.ctx, ['retry', queued.id])).toBe(0);
    expect(retry.out.join('')).toContain('1 score(s)');
    expect(await processOutbox(tool)).toMatchObject({ sent: 1 });
    expect(platform.grade(l.lineitem, l.sub)).toBe(1);
  });

  it('refuses bad arguments with the usage', async () => {
    for (const args of [
      ['list', '--status', 'lost'],
      ['retry'],
      ['retry', 'not-an-id'],
      ['retry', '--failed', 'x'],
      ['frobnicate'],
      ['list', '--limit', '0'],
    ]) {
      const c = cli();
      expect(await runOutbox(c.ctx, args)).toBe(2);
      expect(c.err.join('')).not.toBe('');
    }
  });
});
