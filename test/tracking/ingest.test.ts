import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getCourseTimes, getLearnerTimes, getPresenceSessions, parisDay } from '../../src/tracking/index.js';
import { BEATS_PATH, TRACKER_PATH } from '../../src/tracking/routes.js';
import { addDays } from '../../src/tracking/rules.js';
import {
  dailyDigest,
  digestsDue,
  recomputeTotals,
  sealStale,
  verifyEvidence,
} from '../../src/tracking/service/maintenance.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { dom, tableRecords, text, texts } from '../helpers/dom.js';
import { creditedOutcomes, type Learner, seedCourse, seedLearner, TestClock, TestTab, useClock } from './helpers.js';

let ctx: TestContext;
let courseId: string;
const clock = new TestClock();

beforeAll(async () => {
  ctx = await createTestApp();
  await useClock(ctx.app, clock);
  courseId = await seedCourse(ctx.app.db);
});
afterAll(() => ctx.close());

async function events(learner: Learner) {
  return ctx.app.db
    .selectFrom('tracking_events')
    .select(['kind', 'reason', 'seq', 'tab_id'])
    .where('learner_id', '=', learner.learnerId)
    .orderBy('chain_index')
    .execute();
}

describe('POST /api/tracking/beats', () => {
  it('credits a visit: open, a beat every 30 s, the hidden beat, close — acknowledged only once committed', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    const start = clock.advance(1000);
    expect(await tab.open()).toMatchObject({ status: 200, body: { results: [{ seq: 0, status: 'stored' }] } });
    for (let i = 1; i <= 20; i++) {
      clock.advance(30_000);
      const res = await tab.beat();
      expect(res.body.results).toEqual([{ seq: i, status: 'accepted' }]);
      expect(res.body.serverTime).toBe(new Date(clock.nowMs).toISOString());
    }
    clock.advance(25_000);
    const hidden = await tab.send([tab.next('beat', { cause: 'hidden' }), tab.next('close')]);
    expect(hidden.body.results).toEqual([
      { seq: 21, status: 'accepted' },
      { seq: 22, status: 'stored' },
    ]);
    const expectedMs = clock.nowMs - start;
    expect(expectedMs).toBe(625_000);

    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    expect(times).toMatchObject({
      algorithm: 'beats-v2',
      creditedSeconds: 625,
      measuredSeconds: 625,
      flags: [],
      modules: [{ moduleId: 'common-digitalisation', creditedSeconds: 625, capSeconds: 45 * 60, nominalMinutes: 15 }],
    });
    expect(times.params).toMatchObject({
      capFactor: 3,
      longDayMs: 14_400_000,
      timeZone: 'Europe/Paris',
      runProfiles: { standard: { gapMs: 75_000, minSpacingMs: 20_000, beatIntervalMs: 30_000, idleMs: 180_000 } },
    });
    // The run is one row, updated in place; beats are not stored one by one.
    const runs = await ctx.app.db.selectFrom('tracking_runs').selectAll().where('tab_id', '=', tab.tabId).execute();
    expect(runs).toHaveLength(1);
    // The hidden beat ended the run (sealed at once) and is recorded as its stop.
    expect(runs[0]).toMatchObject({ beat_count: 21, first_seq: 1, last_seq: 21, sealed: true, stop_cause: 'hidden' });
    expect((await events(learner)).map((e) => e.kind)).toEqual([
      'tab',
      'open',
      'focus',
      'run_start',
      'run_end',
      'close',
    ]);
    // Beyond a closed tab: kept as evidence, never credited.
    clock.advance(30_000);
    expect((await tab.beat()).body.results).toEqual([{ seq: 23, status: 'rejected', reason: 'tab_closed' }]);
    expect((await getLearnerTimes(ctx.app.db, learner.learnerId, courseId)).creditedSeconds).toBe(625);
  });

  it('changes nothing when beats are replayed or sent twice (idempotent on tabId + seq)', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    clock.advance(1000);
    const open = tab.next('open');
    await tab.send([open]);
    clock.advance(30_000);
    const b1 = tab.next('beat');
    await tab.send([b1]);
    clock.advance(30_000);
    const b2 = tab.next('beat');
    await tab.send([b2]);
    const before = {
      times: await getLearnerTimes(ctx.app.db, learner.learnerId, courseId),
      events: (await events(learner)).length,
    };
    clock.advance(30_000);
    // A re-sent item is `received` again (the journal does not look items up: acknowledgement stays cheap), and
    // crediting drops it: it changes nothing. The same seq twice in one request answers `duplicate`.
    const replay = await tab.send([open, b1, b2, b2], { raw: true });
    expect(replay.body.results.map((r: { status: string }) => r.status)).toEqual([
      'received',
      'received',
      'received',
      'duplicate',
    ]);
    const again = await tab.send([open, b1, b2], { raw: true });
    expect(again.body.results.map((r: { status: string }) => r.status)).toEqual(['received', 'received', 'received']);
    expect(await getLearnerTimes(ctx.app.db, learner.learnerId, courseId)).toEqual(before.times);
    expect((await events(learner)).length).toBe(before.events);
    expect(
      await ctx.app.db.selectFrom('tracking_inbox').where('learner_id', '=', learner.learnerId).selectAll().execute(),
    ).toEqual([]);
    expect(before.times.creditedSeconds).toBe(60);
  });

  it('stores every rejection of the specification as evidence and credits none of them', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-fonctions-numerisables');
    clock.advance(1000);
    await tab.open();
    clock.advance(30_000);
    expect((await tab.beat()).body.results[0].status).toBe('accepted');
    // More than one beat per 20 s.
    clock.advance(5_000);
    expect((await tab.beat()).body.results[0]).toEqual({ seq: 2, status: 'rejected', reason: 'too_frequent' });
    // A seq that skipped ahead leaves a gap; the late one is never credited.
    clock.advance(25_000);
    tab.seq = 5;
    expect((await tab.beat()).body.results[0]).toEqual({ seq: 5, status: 'accepted' });
    clock.advance(30_000);
    expect((await tab.send([{ kind: 'beat', seq: 4 }])).body.results[0]).toEqual({
      seq: 4,
      status: 'rejected',
      reason: 'seq_not_increasing',
    });
    // A genuine token of this learner that has expired.
    const realNow = Date.now();
    const spy = vi.spyOn(Date, 'now').mockReturnValue(realNow + 2 * 3600_000);
    try {
      expect((await tab.send([tab.next('beat')])).body.results[0]).toEqual({
        seq: 6,
        status: 'rejected',
        reason: 'session_expired',
      });
    } finally {
      spy.mockRestore();
    }
    const rejected = (await events(learner)).filter((e) => e.kind === 'rejected');
    expect(rejected.map((e) => [e.seq, e.reason])).toEqual([
      [2, 'too_frequent'],
      [4, 'seq_not_increasing'],
      [6, 'session_expired'],
    ]);
    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    // open → beat 1 (30 s) → beat 5 (30 s later): 60 s, and the rejections are counted as a flag.
    expect(times).toMatchObject({ creditedSeconds: 60, rejectedItems: 3, flags: ['rejected_items'] });
  });

  it('records but never credits course-team and staff sessions ("view as")', async () => {
    for (const role of ['course_team', 'staff'] as const) {
      const viewer = await seedLearner(ctx.app, courseId, { role });
      const tab = new TestTab(ctx.app, viewer, 'common-digitalisation');
      clock.advance(1000);
      await tab.open();
      clock.advance(30_000);
      expect((await tab.beat()).body.results[0]).toEqual({ seq: 1, status: 'rejected', reason: 'not_learner' });
      expect(
        await ctx.app.db.selectFrom('tracking_runs').where('tab_id', '=', tab.tabId).selectAll().execute(),
      ).toEqual([]);
      expect((await getLearnerTimes(ctx.app.db, viewer.learnerId, courseId)).modules).toEqual([]);
    }
  });

  it('accepts the sendBeacon form: text/plain JSON with the token in the body', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    clock.advance(1000);
    await tab.open();
    clock.advance(30_000);
    const res = await ctx.app.inject({
      method: 'POST',
      url: BEATS_PATH,
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      payload: JSON.stringify({
        tabId: tab.tabId,
        ticket: tab.ticket,
        session_token: learner.token,
        items: [tab.next('beat', { cause: 'pagehide' }), tab.next('close')],
      }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().results).toEqual([
      { seq: 1, status: 'received' },
      { seq: 2, status: 'received' },
    ]);
    expect(await creditedOutcomes(ctx.app, learner.learnerId, tab.tabId, res.json().results)).toEqual([
      { seq: 1, status: 'accepted' },
      { seq: 2, status: 'stored' },
    ]);
    expect((await getLearnerTimes(ctx.app.db, learner.learnerId, courseId)).creditedSeconds).toBe(30);
  });

  it('defers a flood per tab without storing it; what another instance let through is kept, never credited', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    clock.advance(1000);
    const res = await tab.send(
      Array.from({ length: 30 }, () => tab.next('beat')),
      { raw: true },
    );
    const statuses = res.body.results.map((r: { status: string }) => r.status);
    // The highest seqs wait, so that the tab's items stay in order.
    expect(statuses).toEqual([...Array(20).fill('received'), ...Array(10).fill('deferred')]);
    const row = await ctx.app.db
      .selectFrom('tracking_tabs')
      .select(['dropped_items', 'last_seq'])
      .where('id', '=', tab.tabId)
      .executeTakeFirst();
    expect(row).toBeUndefined(); // not credited yet: still in the inbox
    expect((await tab.send([{ kind: 'beat', seq: 20 }], { raw: true })).body.results[0].status).toBe('deferred');
    // A fresh limiter (as another instance behind the load balancer would have) lets 5 more through at once:
    // acknowledged, so they are kept as evidence (`rate_limited`), never credited.
    await useClock(ctx.app, clock);
    const more = await tab.send(
      Array.from({ length: 5 }, (_, i) => ({ kind: 'beat' as const, seq: 20 + i })),
      {},
    );
    expect(more.body.results).toEqual(
      Array.from({ length: 5 }, (_, i) => ({ seq: 20 + i, status: 'rejected', reason: 'rate_limited' })),
    );
    const after = await ctx.app.db
      .selectFrom('tracking_tabs')
      .select(['dropped_items', 'last_seq'])
      .where('id', '=', tab.tabId)
      .executeTakeFirstOrThrow();
    expect(after).toEqual({ dropped_items: 5, last_seq: 24 });
  });
});

describe('trust boundaries of the ingest', () => {
  it('refuses a request without a session, with a forged token, or without a valid ticket', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    const body = { tabId: tab.tabId, ticket: tab.ticket, items: [{ kind: 'open', seq: 0 }] };
    const none = await ctx.app.inject({ method: 'POST', url: BEATS_PATH, payload: body });
    expect(none.statusCode).toBe(401);
    const forged = await ctx.app.inject({
      method: 'POST',
      url: BEATS_PATH,
      headers: { authorization: `Bearer ${learner.token.slice(0, -4)}AAAA` },
      payload: body,
    });
    expect(forged.statusCode).toBe(401);
    const [payload] = tab.ticket.split('.') as [string];
    const tampered = Buffer.from(
      Buffer.from(payload, 'base64url').toString().replace('"nominalMinutes":15', '"nominalMinutes":600'),
    ).toString('base64url');
    for (const ticket of [`${tampered}.${tab.ticket.split('.')[1]}`, 'nope', `${payload}.`]) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: BEATS_PATH,
        headers: { authorization: `Bearer ${learner.token}` },
        payload: { ...body, ticket },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('ticket_invalid');
    }
    expect(await ctx.app.db.selectFrom('tracking_tabs').where('id', '=', tab.tabId).selectAll().execute()).toEqual([]);
  });

  it('refuses a ticket of another learner, an expired token of another learner, and a tab id of someone else', async () => {
    const alice = await seedLearner(ctx.app, courseId);
    const bob = await seedLearner(ctx.app, courseId);
    const aliceTab = new TestTab(ctx.app, alice, 'common-digitalisation');
    // Bob's token with Alice's ticket.
    const stolen = await aliceTab.send([aliceTab.next('open')], { token: bob.token });
    expect(stolen).toMatchObject({ status: 403, body: { code: 'ticket_mismatch' } });
    // Bob's expired token with Alice's ticket: not even kept as evidence in Alice's chain.
    const realNow = Date.now();
    const spy = vi.spyOn(Date, 'now').mockReturnValue(realNow + 2 * 3600_000);
    try {
      const res = await aliceTab.send([{ kind: 'beat', seq: 1 }], { token: bob.token });
      expect(res.status).toBe(401);
    } finally {
      spy.mockRestore();
    }
    // Alice's tab exists; Bob's page reuses its id.
    await aliceTab.open();
    const bobTab = new TestTab(ctx.app, bob, 'common-digitalisation');
    const res = await ctx.app.inject({
      method: 'POST',
      url: BEATS_PATH,
      headers: { authorization: `Bearer ${bob.token}` },
      payload: { tabId: aliceTab.tabId, ticket: bobTab.ticket, items: [{ kind: 'beat', seq: 5 }] },
    });
    // Acknowledged (the ingest does not look tabs up), then kept in Bob's chain as rejected and never credited;
    // Alice's tab is untouched.
    expect(res.statusCode).toBe(200);
    const aliceBefore = await getLearnerTimes(ctx.app.db, alice.learnerId, courseId);
    expect((await getLearnerTimes(ctx.app.db, bob.learnerId, courseId)).creditedSeconds).toBe(0);
    expect((await events(bob)).map((e) => [e.kind, e.reason])).toEqual([['rejected', 'tab_mismatch']]);
    const note = await ctx.app.db
      .selectFrom('tracking_events')
      .select('data')
      .where('learner_id', '=', bob.learnerId)
      .executeTakeFirstOrThrow();
    expect(note.data).toMatchObject({ tabId: aliceTab.tabId, seq: 5 });
    expect(await getLearnerTimes(ctx.app.db, alice.learnerId, courseId)).toEqual(aliceBefore);
    const aliceRuns = await ctx.app.db
      .selectFrom('tracking_runs')
      .select(['last_seq'])
      .where('tab_id', '=', aliceTab.tabId)
      .execute();
    expect(aliceRuns.every((r) => r.last_seq < 5)).toBe(true);
  });

  it('validates the body: unknown fields, bad kinds, too many items, a bad tab id', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    const auth = { authorization: `Bearer ${learner.token}` };
    const bad = [
      { tabId: 'not-a-uuid', ticket: tab.ticket, items: [{ kind: 'open', seq: 0 }] },
      { tabId: tab.tabId, ticket: tab.ticket, items: [{ kind: 'teleport', seq: 0 }] },
      { tabId: tab.tabId, ticket: tab.ticket, items: [{ kind: 'beat', seq: -1 }] },
      { tabId: tab.tabId, ticket: tab.ticket, items: [] },
      { tabId: tab.tabId, ticket: tab.ticket, items: Array.from({ length: 51 }, (_, seq) => ({ kind: 'beat', seq })) },
      { tabId: tab.tabId, ticket: tab.ticket, items: [{ kind: 'beat', seq: 1, inputAgoMs: 'recent' }] },
      // The page's clock is kept as evidence: an ISO 8601 time, nothing else (no NUL, no lone surrogate).
      { tabId: tab.tabId, ticket: tab.ticket, items: [{ kind: 'beat', seq: 1, clientTime: '2025-06-02\u0000' }] },
      { tabId: tab.tabId, ticket: tab.ticket, items: [{ kind: 'beat', seq: 1, clientTime: '\ud800' }] },
      { tabId: tab.tabId, ticket: tab.ticket, items: [{ kind: 'beat', seq: 1, clientTime: '<script>' }] },
    ];
    for (const payload of bad) {
      const res = await ctx.app.inject({ method: 'POST', url: BEATS_PATH, headers: auth, payload });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
    // A client cannot set the server time: unknown members are dropped before the handler sees them.
    clock.advance(1000);
    const claimed = await ctx.app.inject({
      method: 'POST',
      url: BEATS_PATH,
      headers: auth,
      payload: {
        tabId: tab.tabId,
        ticket: tab.ticket,
        items: [{ kind: 'open', seq: 0, serverTime: '2020-01-01T00:00:00Z' }],
      },
    });
    expect(claimed.json().serverTime).toBe(new Date(clock.nowMs).toISOString());
    const notJson = await ctx.app.inject({
      method: 'POST',
      url: BEATS_PATH,
      headers: { 'content-type': 'text/plain' },
      payload: '{"tabId":',
    });
    expect(notJson.statusCode).toBe(400);
  });
});

describe('crediting across tabs, caps and flags', () => {
  it('counts two tabs open together once, overlap to the tab with the most recent input', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const a = new TestTab(ctx.app, learner, 'common-digitalisation');
    const b = new TestTab(ctx.app, learner, 'common-obligations-protection');
    const t0 = clock.advance(1000);
    await a.open();
    clock.advance(30_000);
    await a.beat({ inputAgoMs: 1000 });
    clock.advance(10_000); // B opens 40 s in; the learner works in B from now on
    await b.open();
    for (let i = 0; i < 4; i++) {
      clock.advance(20_000);
      await b.beat({ inputAgoMs: 500 });
      await a.beat({ inputAgoMs: 60_000 + i * 20_000 }); // A stays visible, its last input gets older
    }
    const end = clock.nowMs;
    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    expect(times.measuredSeconds).toBe((end - t0) / 1000); // wall-clock, not the sum of both tabs
    const byModule = Object.fromEntries(times.modules.map((m) => [m.moduleId, m.measuredSeconds]));
    // B owns everything from its open (A had no newer input), A the 40 s before.
    expect(byModule).toEqual({ 'common-digitalisation': 40, 'common-obligations-protection': 80 });
    const sessions = await getPresenceSessions(ctx.app.db, learner.learnerId, courseId);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({
      measuredMs: end - t0,
      moduleIds: ['common-digitalisation', 'common-obligations-protection'],
    });
  });

  it('caps a module at 3 × its nominal duration: the rest is kept and flagged', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-autodiagnostic-strategie', 1);
    clock.advance(1000);
    await tab.open();
    for (let i = 0; i < 10; i++) {
      clock.advance(30_000);
      await tab.beat();
    }
    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    expect(times.modules[0]).toMatchObject({
      measuredSeconds: 300,
      creditedSeconds: 180,
      capSeconds: 180,
      overCapSeconds: 120,
      flags: ['over_cap'],
    });
    expect(times).toMatchObject({ creditedSeconds: 180, measuredSeconds: 300, flags: ['over_cap'] });
  });

  it('flags a Paris day with more than 4 h measured', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation', 120);
    clock.advance(1000);
    await tab.open();
    for (let i = 0; i < 4 * 120 + 2; i++) {
      clock.advance(30_000);
      await tab.beat();
    }
    const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
    expect(times.longDays).toHaveLength(1);
    expect(times.flags).toContain('long_day');
    expect(times.modules[0]?.flags).toContain('long_day');
  });
});

describe('evidence, recompute, views', () => {
  it('rebuilds every total from evidence to the same millisecond, and proves the chains', async () => {
    const report = await recomputeTotals(ctx.app.db, {}, { write: false });
    expect(report.pairs).toBeGreaterThan(8);
    expect(report.differing).toEqual([]);
    expect(await verifyEvidence(ctx.app.db)).toEqual([]);
  });

  it('keeps evidence append-only and detects an edited run', async () => {
    await expect(sql`update tracking_events set reason = 'edited'`.execute(ctx.app.db)).rejects.toThrow(/append-only/);
    await expect(sql`delete from tracking_events`.execute(ctx.app.db)).rejects.toThrow(/append-only/);
    const run = await ctx.app.db
      .selectFrom('tracking_runs')
      .select(['id', 'learner_id', 'last_beat_at'])
      .where('sealed', '=', true)
      .executeTakeFirstOrThrow();
    await ctx.app.db
      .updateTable('tracking_runs')
      .set({ last_beat_at: new Date(run.last_beat_at.getTime() + 600_000) })
      .where('id', '=', run.id)
      .execute();
    const problems = await verifyEvidence(ctx.app.db, { learnerId: run.learner_id });
    expect(problems).toEqual([{ learnerId: run.learner_id, problem: `run ${run.id} differs from its sealed record` }]);
    // Totals rebuilt from the edited run differ from the incremental ones: recompute notices.
    expect((await recomputeTotals(ctx.app.db, { learnerId: run.learner_id }, { write: false })).differing).toHaveLength(
      1,
    );
    await ctx.app.db
      .updateTable('tracking_runs')
      .set({ last_beat_at: run.last_beat_at })
      .where('id', '=', run.id)
      .execute();
    expect(await verifyEvidence(ctx.app.db, { learnerId: run.learner_id })).toEqual([]);
  });

  it('shows the learner “Votre temps de connexion”, floored to the minute, and the course team every learner', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    clock.advance(1000);
    await tab.open();
    for (let i = 0; i < 5; i++) {
      clock.advance(23_000);
      await tab.beat();
    }
    // 115 s → "1 min".
    const page = await ctx.app.inject({ method: 'GET', url: `/tracking/time?session_token=${learner.token}` });
    expect(page.statusCode).toBe(200);
    const document = dom(page.body);
    // One <h1>, and a clear way back to the module (the same session token, by GET).
    expect(texts(document, 'h1')).toEqual(['Votre temps de connexion']);
    const back = [...document.querySelectorAll('a')].filter((a) => a.textContent?.includes('Revenir au module'));
    expect(back.length).toBeGreaterThan(0);
    const href = new URL(back[0]?.getAttribute('href') as string, 'http://tool.test');
    expect(href.pathname).toBe('/catalog/module');
    expect(href.searchParams.get('session_token')).toBe(learner.token);
    expect(text(document, 'section.temps-connexion strong')).toBe('1 min');
    expect(tableRecords(document, 'section.temps-connexion table')).toEqual([
      { Module: 'Comprendre la digitalisation de son entreprise', 'Temps compté': '1 min' },
    ]);
    const me = await ctx.app.inject({
      method: 'GET',
      url: '/api/tracking/me',
      headers: { authorization: `Bearer ${learner.token}` },
    });
    expect(me.json()).toMatchObject({ creditedSeconds: 115, modules: [{ creditedSeconds: 115 }] });

    // The course team's view: every learner, per module, with flags; learners may not call it.
    const forbidden = await ctx.app.inject({
      method: 'GET',
      url: '/api/tracking/course',
      headers: { authorization: `Bearer ${learner.token}` },
    });
    expect(forbidden.statusCode).toBe(403);
    const team = await seedLearner(ctx.app, courseId, { role: 'course_team' });
    const course = await ctx.app.inject({
      method: 'GET',
      url: '/api/tracking/course',
      headers: { authorization: `Bearer ${team.token}` },
    });
    expect(course.statusCode).toBe(200);
    const all = await getCourseTimes(ctx.app.db, courseId);
    expect(course.json().learners).toHaveLength(all.length);
    expect(all.find((l) => l.flags.includes('over_cap'))).toBeDefined();
  });

  it('serves the tracker script small, cacheable, and silent', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: TRACKER_PATH });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/javascript');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    const { gzipSync } = await import('node:zlib');
    const gzipped = gzipSync(res.rawPayload, { level: 9 }).length;
    expect(gzipped).toBeLessThan(5 * 1024);
    expect(res.body).not.toMatch(/console\.\w+\(/);
    const etag = res.headers.etag as string;
    const versioned = await ctx.app.inject({ method: 'GET', url: `${TRACKER_PATH}?v=${etag.replaceAll('"', '')}` });
    expect(versioned.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const again = await ctx.app.inject({ method: 'GET', url: TRACKER_PATH, headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
  });

  it('seals finished runs into the chains, keeps a daily digest, and notices a digest that no longer holds', async () => {
    const open = await ctx.app.db.selectFrom('tracking_runs').select('id').where('sealed', '=', false).execute();
    expect(open.length).toBeGreaterThan(0);
    // The test clock lies in the past of the database clock: every open run is finished for `sealStale`.
    expect(await sealStale(ctx.app.db)).toBe(open.length);
    expect(await ctx.app.db.selectFrom('tracking_runs').select('id').where('sealed', '=', false).execute()).toEqual([]);
    const day = parisDay(clock.nowMs);
    const first = await dailyDigest(ctx.app.db, day);
    expect(first).toMatchObject({ day, status: 'stored' });
    expect(first.learnerCount).toBeGreaterThan(5);
    expect((await dailyDigest(ctx.app.db, day)).status).toBe('same');
    expect(await verifyEvidence(ctx.app.db)).toEqual([]);
    await ctx.app.db
      .updateTable('tracking_digests')
      .set({ digest: '0'.repeat(64) })
      .where('day', '=', day)
      .execute();
    expect(await verifyEvidence(ctx.app.db)).toEqual([{ day, problem: 'daily digest no longer matches' }]);
    expect((await dailyDigest(ctx.app.db, day)).status).toBe('mismatch');
  });

  it("keeps, when due, yesterday's digest and those of the days missed since the last kept one", async () => {
    const kept = parisDay(clock.nowMs);
    // Three days later, at noon in Paris: the two days after the last kept one are due (yesterday included).
    const now = Date.parse(`${addDays(kept, 3)}T10:00:00Z`);
    const first = await digestsDue(ctx.app.db, now);
    expect(first.digests.map((d) => [d.day, d.status])).toEqual([
      [addDays(kept, 1), 'stored'],
      [addDays(kept, 2), 'stored'],
    ]);
    // The chains did not move after the clock's day: each later digest is the same set of heads.
    expect(first.digests[0]?.learnerCount).toBeGreaterThan(5);
    expect(first.digests[1]?.digest).not.toBe(first.digests[0]?.digest); // the day is part of the digest
    expect(await digestsDue(ctx.app.db, now)).toEqual({ sealed: 0, digests: [] });
    const days = await ctx.app.db.selectFrom('tracking_digests').select('day').orderBy('day').execute();
    expect(days.map((d) => d.day)).toEqual([kept, addDays(kept, 1), addDays(kept, 2)]);
  });
});
