import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuedCertificatesOf } from '../../src/certificates/index.js';
import { getLearnerTimes } from '../../src/tracking/index.js';
import { BEATS_PATH, TICKET_PATH } from '../../src/tracking/routes.js';
import { diffVersions, recomputeTotals } from '../../src/tracking/service/maintenance.js';
import { signTicket, verifyTicket } from '../../src/tracking/ticket.js';
import { certify } from '../exports/seed.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { type Learner, pageConfig, seedCourse, seedLearner, TestClock, TestTab, useClock } from './helpers.js';

let ctx: TestContext;
let courseId: string;
const clock = new TestClock();

beforeAll(async () => {
  ctx = await createTestApp();
  await useClock(ctx.app, clock);
  courseId = await seedCourse(ctx.app.db);
});
afterAll(() => ctx.close());

async function eventsOf(learner: Learner) {
  return ctx.app.db
    .selectFrom('tracking_events')
    .select(['kind', 'reason', 'seq'])
    .where('learner_id', '=', learner.learnerId)
    .orderBy('chain_index')
    .execute();
}

describe('beats-v2 and beats-v1 on the same evidence', () => {
  it('credits a tracker that sends no cause under the v1 rules for that tab', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    const start = clock.advance(1000);
    await tab.open();
    // An old tracker: beats without a cause. Its final beat on hiding (10 s after a beat) is refused for
    // spacing, and the beat 60 s later continues the run across the hidden stretch, as beats-v1 did.
    clock.advance(30_000);
    expect((await tab.beat({ cause: undefined })).body.results[0]).toMatchObject({ status: 'accepted' });
    clock.advance(10_000);
    expect((await tab.beat({ cause: undefined })).body.results[0]).toMatchObject({ reason: 'too_frequent' });
    clock.advance(60_000);
    expect((await tab.beat({ cause: undefined })).body.results[0]).toMatchObject({ status: 'accepted' });
    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    expect(times.algorithm).toBe('beats-v2');
    expect(times.creditedSeconds).toBe((clock.nowMs - start) / 1000);
    expect(times.creditedSeconds).toBe(100);
    // …the same as beats-v1 re-derived from the evidence: no difference to list.
    expect(await diffVersions(ctx.app.db, { learnerId: learner.learnerId })).toEqual([]);
  });

  it('recomputes v1 and v2 from one set of evidence: the hidden minute, and the 8 s before leaving', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    clock.advance(1000);
    await tab.open();
    clock.advance(30_000);
    await tab.beat({ cause: 'periodic' });
    clock.advance(10_000);
    // The hidden beat 10 s after a periodic one: never refused for spacing, it ends the run.
    expect((await tab.beat({ cause: 'hidden', inputAgoMs: 5_000 })).body.results[0]).toEqual({
      seq: 2,
      status: 'accepted',
    });
    clock.advance(60_000);
    // Back after 60 s hidden: a new run starts at once (no spacing wait after a stop).
    expect((await tab.beat({ cause: 'periodic', inputAgoMs: 0 })).body.results[0]).toMatchObject({
      status: 'accepted',
    });
    clock.advance(30_000);
    await tab.beat({ cause: 'periodic' });
    clock.advance(8_000);
    const leave = await tab.send([tab.next('beat', { cause: 'pagehide' }), tab.next('close')]);
    expect(leave.body.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'stored']);

    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    // 40 s, then 38 s: the hidden minute is not credited, the 8 s before leaving are.
    expect(times.creditedSeconds).toBe(40 + 38);
    expect(times.params).toMatchObject({ algorithm: 'beats-v2', capFactor: 3 });
    // v1 on the same evidence: refused both stops (10 s and 8 s after a beat) and bridged the hidden minute.
    const [diff] = await diffVersions(ctx.app.db, { learnerId: learner.learnerId });
    expect(diff).toMatchObject({ v1Seconds: 130, v2Seconds: 78, differenceSeconds: -52 });
    // The stored totals are the v2 recompute; v1 differs and can only be compared, never written.
    const filter = { learnerId: learner.learnerId, courseId };
    expect((await recomputeTotals(ctx.app.db, filter, { write: false })).differing).toEqual([]);
    expect((await recomputeTotals(ctx.app.db, filter, { write: false, algorithm: 'beats-v1' })).differing).toEqual([
      { learnerId: learner.learnerId, courseId },
    ]);
    await expect(recomputeTotals(ctx.app.db, filter, { write: true, algorithm: 'beats-v1' })).rejects.toThrow(
      /compared/,
    );
    // Rebuilding v2 from the evidence changes nothing, to the second.
    await recomputeTotals(ctx.app.db, filter, { write: true });
    expect((await getLearnerTimes(ctx.app.db, learner.learnerId, courseId)).creditedSeconds).toBe(78);
  });

  it('names, for a learner whose versions differ, the certificates issued on beats-v1 (they never change)', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    clock.advance(1000);
    await tab.open();
    clock.advance(30_000);
    await tab.beat({ cause: 'periodic' });
    clock.advance(5_000);
    await tab.beat({ cause: 'hidden' });
    clock.advance(50_000);
    await tab.beat({ cause: 'periodic' });
    await certify(ctx.app.db, learner.learnerId, courseId, {
      number: 'EMG-2026-000777',
      fund: 'akto',
      fileNumber: null,
      issuedAt: new Date('2026-03-20T09:00:00Z'),
    });
    const [diff] = await diffVersions(ctx.app.db, { learnerId: learner.learnerId });
    expect(diff).toMatchObject({ v1Seconds: 85, v2Seconds: 35, differenceSeconds: -50 });
    expect(await issuedCertificatesOf(ctx.app.db, learner.learnerId, courseId)).toEqual([
      { number: 'EMG-2026-000777', algorithm: 'beats-v1', state: 'valid' },
    ]);
  });

  it('rebuilds totals kept under beats-v1 from evidence at the next beat, never adding to them', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    clock.advance(1000);
    await tab.open();
    clock.advance(30_000);
    await tab.beat({ cause: 'periodic' });
    await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    // Totals as a deploy before beats-v2 left them (labelled v1, and here wrong on purpose).
    await ctx.app.db
      .updateTable('time_course_totals')
      .set({ algorithm: 'beats-v1', measured_ms: 999_000 })
      .where('learner_id', '=', learner.learnerId)
      .execute();
    clock.advance(30_000);
    await tab.beat({ cause: 'periodic' });
    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    expect(times).toMatchObject({ algorithm: 'beats-v2', measuredSeconds: 60, creditedSeconds: 60 });
  });
});

describe('plausibility', () => {
  it('flags a run of over an hour of perfectly regular beats reporting no input, and only that', async () => {
    const bot = await seedLearner(ctx.app, courseId);
    const human = await seedLearner(ctx.app, courseId);
    const botTab = new TestTab(ctx.app, bot, 'common-digitalisation', 60);
    const humanTab = new TestTab(ctx.app, human, 'common-digitalisation', 60);
    clock.advance(1000);
    await botTab.send([botTab.next('open')], { raw: true });
    await humanTab.send([humanTab.next('open')], { raw: true });
    for (let i = 1; i <= 125; i++) {
      clock.advance(30_000);
      // The scripted page: exactly 30 s apart, never an input (a video "playing" keeps it active).
      await botTab.send([botTab.next('beat', { cause: 'periodic', media: true, inputAgoMs: 400_000 })], { raw: true });
      // A learner watching too, but scrolling now and then.
      await humanTab.send(
        [humanTab.next('beat', { cause: 'periodic', media: true, inputAgoMs: i % 10 === 0 ? 2_000 : 400_000 })],
        { raw: true },
      );
    }
    const botTimes = await getLearnerTimes(ctx.app.db, bot.learnerId, courseId);
    const humanTimes = await getLearnerTimes(ctx.app.db, human.learnerId, courseId);
    // Flagged for review, never refused: the time is credited all the same.
    expect(botTimes.creditedSeconds).toBe(125 * 30);
    expect(botTimes.flags).toContain('regular_beats');
    expect(botTimes.modules[0]?.flags).toContain('regular_beats');
    expect(humanTimes.creditedSeconds).toBe(125 * 30);
    expect(humanTimes.flags).not.toContain('regular_beats');
  });
});

describe('the ticket lifetime', () => {
  const ticketKey = () => ctx.app.trackingRuntime.ticketKey;

  it('gives the ticket the session’s expiry, and renews a live ticket up to the session’s', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const config = pageConfig(ctx.app, learner, 'common-digitalisation') as { ticket: string; sessionExp?: number };
    const claims = verifyTicket(ticketKey(), config.ticket);
    expect(claims).toMatchObject({ v: 2, learnerId: learner.learnerId });
    const tokenExp = JSON.parse(Buffer.from(learner.token.split('.')[1] as string, 'base64url').toString()).exp;
    expect(claims?.exp).toBe(tokenExp);
    const short = signTicket(ticketKey(), { ...(claims as NonNullable<typeof claims>), exp: tokenExp - 60 });
    const res = await ctx.app.inject({
      method: 'POST',
      url: TICKET_PATH,
      headers: { authorization: `Bearer ${learner.token}` },
      payload: { ticket: short },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().exp).toBe(tokenExp);
    expect(verifyTicket(ticketKey(), res.json().ticket)).toMatchObject({
      exp: tokenExp,
      moduleId: 'common-digitalisation',
    });
  });

  it('refuses to renew an expired, forged or foreign ticket', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const other = await seedLearner(ctx.app, courseId);
    const claims = verifyTicket(ticketKey(), pageConfig(ctx.app, learner, 'common-digitalisation').ticket);
    const base = claims as NonNullable<typeof claims>;
    const post = (ticket: string, token = learner.token) =>
      ctx.app.inject({
        method: 'POST',
        url: TICKET_PATH,
        headers: { authorization: `Bearer ${token}` },
        payload: { ticket },
      });
    const expired = signTicket(ticketKey(), { ...base, exp: Math.floor(Date.now() / 1000) - 10 });
    expect((await post(expired)).json()).toMatchObject({ status: 403, code: 'ticket_expired' });
    expect((await post(`${expired.slice(0, -2)}xx`)).json()).toMatchObject({ status: 400, code: 'ticket_invalid' });
    expect(
      (await post(signTicket(ticketKey(), { ...base, exp: base.exp as number }), other.token)).json(),
    ).toMatchObject({ status: 403, code: 'ticket_mismatch' });
    expect((await post(expired, 'not-a-token')).statusCode).toBe(401);
  });

  it('keeps items sent on an expired ticket as evidence and credits none of them', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const claims = verifyTicket(ticketKey(), pageConfig(ctx.app, learner, 'common-digitalisation').ticket);
    const expired = signTicket(ticketKey(), {
      ...(claims as NonNullable<typeof claims>),
      exp: Math.floor(Date.now() / 1000) - 1,
    });
    const tabId = randomUUID();
    const send = (items: object[]) =>
      ctx.app.inject({
        method: 'POST',
        url: BEATS_PATH,
        headers: { authorization: `Bearer ${learner.token}` },
        payload: { tabId, ticket: expired, items },
      });
    clock.advance(1000);
    expect((await send([{ kind: 'open', seq: 0 }])).statusCode).toBe(200);
    for (let seq = 1; seq <= 3; seq++) {
      clock.advance(30_000);
      const res = await send([{ kind: 'beat', seq, cause: 'periodic', inputAgoMs: 1000 }]);
      expect(res.json().results).toEqual([{ seq, status: 'received' }]);
    }
    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    expect(times.creditedSeconds).toBe(0);
    const rejected = (await eventsOf(learner)).filter((e) => e.kind === 'rejected');
    expect(rejected.map((e) => [e.seq, e.reason])).toEqual([
      [1, 'session_expired'],
      [2, 'session_expired'],
      [3, 'session_expired'],
    ]);
  });
});
