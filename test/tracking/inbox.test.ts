import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { createDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { Inbox } from '../../src/tracking/inbox/acknowledgement.js';
import { TrackingConsumer } from '../../src/tracking/inbox/consumer.js';
import { creditLearners } from '../../src/tracking/inbox/crediting.js';
import { unpackJournal } from '../../src/tracking/inbox/unpacking.js';
import { getLearnerTimes, settleTracking } from '../../src/tracking/index.js';
import { PROFILES } from '../../src/tracking/rules.js';
import { recomputeTotals, verifyEvidence } from '../../src/tracking/service/maintenance.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { withDatabase } from '../helpers/global-setup.js';
import { pendingItems, seedCourse, seedLearner, TestClock, TestTab, useClock } from './helpers.js';

/**
 * The inbox between acknowledgement and crediting: what is acknowledged survives a crash, a late row is
 * credited at its learner's last credited instant, the backlog guard, and consumers that never credit one
 * learner twice.
 */

let ctx: TestContext;
let courseId: string;
const clock = new TestClock();

/** Another instance on the same database (its own pool on PostgreSQL). */
async function anotherInstance(): Promise<{ app: App; db: DatabaseHandle | null }> {
  const target = inject('testDb');
  let db: DatabaseHandle | null = null;
  if (target.kind === 'pg') {
    const { rows } = await sql<{ db: string }>`select current_database() as db`.execute(ctx.app.db);
    db = await createDatabase({ databaseUrl: withDatabase(target.url, (rows[0] as { db: string }).db), poolMax: 5 });
  }
  const app = await buildApp({ config: ctx.config, database: db ?? ctx.database, closeDatabase: false });
  await app.ready();
  return { app, db };
}

const pending = (learnerId: string) => pendingItems(ctx.app.db, learnerId);

beforeAll(async () => {
  ctx = await createTestApp();
  await useClock(ctx.app, clock);
  courseId = await seedCourse(ctx.app.db);
});
afterAll(() => ctx.close());

describe('the tracking inbox', () => {
  it('keeps what was acknowledged through a crash before crediting: another instance credits it', async () => {
    const other = await anotherInstance();
    let closed = false;
    try {
      await useClock(other.app, clock); // its crediting loop stopped: nothing is credited by it
      const learner = await seedLearner(ctx.app, courseId);
      const tab = new TestTab(other.app, learner, 'common-digitalisation');
      const start = clock.advance(1000);
      const acks = [await tab.send([tab.next('open')], { raw: true })];
      for (let i = 0; i < 4; i++) {
        clock.advance(30_000);
        acks.push(await tab.send([tab.next('beat')], { raw: true }));
      }
      expect(acks.map((a) => a.body.results[0].status)).toEqual(Array(5).fill('received'));
      expect(await pending(learner.learnerId)).toHaveLength(5);
      // The instance stops before crediting anything (as after a crash: the inbox rows are already committed).
      await other.app.close();
      await other.db?.close();
      closed = true;
      expect(await pending(learner.learnerId)).toHaveLength(5);
      // Any instance credits them, at their own received times; reading time settles first.
      const times = await getLearnerTimes(ctx.app.db, learner.learnerId, courseId);
      expect(times.creditedSeconds).toBe((clock.nowMs - start) / 1000);
      expect(await pending(learner.learnerId)).toEqual([]);
      const run = await ctx.app.db
        .selectFrom('tracking_runs')
        .selectAll()
        .where('tab_id', '=', tab.tabId)
        .executeTakeFirstOrThrow();
      expect(run).toMatchObject({ beat_count: 4, first_seq: 1, last_seq: 4 });
      expect(run.started_at.getTime()).toBe(start);
      expect(run.last_beat_at.getTime()).toBe(clock.nowMs);
    } finally {
      if (!closed) {
        await other.app.close();
        await other.db?.close();
      }
    }
  });

  it('credits a late row at its learner’s last credited instant, keeps its own time, and counts it', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const a = new TestTab(ctx.app, learner, 'common-digitalisation');
    const b = new TestTab(ctx.app, learner, 'common-obligations-protection');
    clock.advance(1000);
    await a.open();
    const late = clock.nowMs + 10_000; // a row another instance stamped earlier but committed after the credit
    clock.advance(30_000);
    await a.beat(); // credited at clock.nowMs
    const creditedAt = clock.nowMs;
    const saved = clock.nowMs;
    clock.nowMs = late;
    const res = await b.send([b.next('open')], { raw: true });
    clock.nowMs = saved;
    expect(res.body.results[0].status).toBe('received');
    await settleTracking(ctx.app.db, { learnerId: learner.learnerId });
    const events = await ctx.app.db
      .selectFrom('tracking_events')
      .select(['kind', 'server_time', 'data', 'tab_id', 'seq'])
      .where('learner_id', '=', learner.learnerId)
      .orderBy('chain_index')
      .execute();
    const note = events.find((e) => e.kind === 'late');
    expect(note?.server_time.getTime()).toBe(creditedAt);
    expect(note?.data).toEqual({ tabId: b.tabId, seq: 0, receivedAt: new Date(late).toISOString() });
    // The open itself is recorded at the clamped instant, after the note.
    const open = events.find((e) => e.kind === 'open' && e.tab_id === b.tabId);
    expect(open?.server_time.getTime()).toBe(creditedAt);
    expect(events.indexOf(note as never)).toBeLessThan(events.indexOf(open as never));
    const row = await ctx.app.db
      .selectFrom('tracking_learners')
      .select(['late_items', 'credited_until'])
      .where('learner_id', '=', learner.learnerId)
      .executeTakeFirstOrThrow();
    expect(row.late_items).toBe(1);
    expect(row.credited_until?.getTime()).toBe(creditedAt);
    expect(await verifyEvidence(ctx.app.db, { learnerId: learner.learnerId })).toEqual([]);
  });

  it('refuses new items with 503 and Retry-After while the backlog is above its limit, and takes them after', async () => {
    await useClock(ctx.app, clock, { maxBacklog: 3, backlogCheckMs: 0 });
    try {
      await settleTracking(ctx.app.db);
      const learner = await seedLearner(ctx.app, courseId);
      const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
      clock.advance(1000);
      const first = await tab.send([tab.next('open'), tab.next('beat'), tab.next('beat'), tab.next('beat')], {
        raw: true,
      });
      expect(first.status).toBe(200);
      const refused = await ctx.app.inject({
        method: 'POST',
        url: '/api/tracking/beats',
        headers: { authorization: `Bearer ${learner.token}` },
        payload: { tabId: tab.tabId, ticket: tab.ticket, items: [tab.next('beat')] },
      });
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(refused.json()).toMatchObject({ status: 503, code: 'tracking_busy' });
      expect(await pending(learner.learnerId)).toHaveLength(4);
      await settleTracking(ctx.app.db);
      clock.advance(30_000);
      const accepted = await tab.send([{ kind: 'beat', seq: 4 }]);
      expect(accepted.body.results).toEqual([{ seq: 4, status: 'accepted' }]);
    } finally {
      await useClock(ctx.app, clock);
    }
  });

  it('never credits one learner twice when consumers of two instances run at once', async () => {
    const other = await anotherInstance();
    try {
      await useClock(other.app, clock);
      const learners = await Promise.all(Array.from({ length: 12 }, () => seedLearner(ctx.app, courseId)));
      const tabs = learners.map((l) => new TestTab(ctx.app, l, 'common-digitalisation'));
      const start = clock.advance(1000);
      for (let step = 0; step < 6; step++) {
        await Promise.all(
          tabs.map((t, i) =>
            t.send([t.next(step === 0 ? 'open' : 'beat')], { raw: true, app: i % 2 ? other.app : ctx.app }),
          ),
        );
        clock.advance(30_000);
      }
      const end = clock.nowMs - 30_000;
      const ids = learners.map((l) => l.learnerId);
      const otherDb = other.db?.db ?? ctx.app.db;
      // Two consumers (and a settle) over the same learners at once: each row is credited once.
      const reports = await Promise.all([
        creditLearners(ctx.app.db, ids, { skipLocked: true }),
        creditLearners(otherDb, [...ids].reverse(), { skipLocked: true }),
        creditLearners(otherDb, ids.slice(3, 9), { skipLocked: true }),
      ]);
      await settleTracking(ctx.app.db);
      const credited = reports.reduce((n, r) => n + r.items, 0);
      expect(credited).toBeLessThanOrEqual(12 * 6);
      for (const l of learners) {
        expect(await pending(l.learnerId)).toEqual([]);
        const times = await getLearnerTimes(ctx.app.db, l.learnerId, courseId);
        expect(times.creditedSeconds).toBe((end - start) / 1000);
      }
      const runs = await ctx.app.db
        .selectFrom('tracking_runs')
        .select(['beat_count', 'first_seq', 'last_seq'])
        .where(
          'tab_id',
          'in',
          tabs.map((t) => t.tabId),
        )
        .execute();
      expect(runs).toEqual(Array(12).fill({ beat_count: 5, first_seq: 1, last_seq: 5 }));
      expect((await recomputeTotals(ctx.app.db, {}, { write: false })).differing).toEqual([]);
      expect(await verifyEvidence(ctx.app.db)).toEqual([]);
    } finally {
      await other.app.close();
      await other.db?.close();
    }
  });

  it('leaves most of the time to acknowledgements while the ingest is busy, and still credits everything', async () => {
    const learners = await Promise.all(Array.from({ length: 6 }, () => seedLearner(ctx.app, courseId)));
    const tabs = learners.map((l) => new TestTab(ctx.app, l, 'common-digitalisation'));
    const start = clock.advance(1000);
    for (let step = 0; step < 3; step++) {
      await Promise.all(tabs.map((t) => t.send([t.next(step === 0 ? 'open' : 'beat')], { raw: true })));
      clock.advance(30_000);
    }
    // The ingest says it is busy all along: small slices, each followed by a pause.
    const consumer = new TrackingConsumer(ctx.app.db, {
      settleLagMs: 0,
      idleMs: 10,
      yieldTo: () => true,
      busyShare: 0.5,
      busyGroupSize: 2,
    });
    consumer.start();
    try {
      // Until every item is credited: no deadline but the test's limit (the consumer's pace is not asserted).
      while ((await Promise.all(learners.map((l) => pending(l.learnerId)))).some((p) => p.length > 0)) {
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await consumer.stop();
    }
    expect(consumer.stats.slices).toBeGreaterThanOrEqual(3); // 6 learners, 2 per slice
    expect(consumer.stats.yielded).toBeGreaterThanOrEqual(3);
    expect(consumer.stats.errors).toBe(0);
    for (const l of learners) {
      expect((await getLearnerTimes(ctx.app.db, l.learnerId, courseId)).creditedSeconds).toBe(
        (clock.nowMs - 30_000 - start) / 1000,
      );
    }
  });

  it('counts the ingest busy for a moment after each append, and never past half the backlog limit', async () => {
    const inbox = new Inbox(ctx.app.db, { clock: clock.read, maxBacklog: 10, backlogCheckMs: 0 });
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    expect(inbox.busy()).toBe(false);
    clock.advance(1000);
    const request = (seq: number) => ({
      learnerId: learner.learnerId,
      meta: {
        tabId: tab.tabId,
        learnerId: learner.learnerId,
        courseId,
        moduleId: 'common-digitalisation',
        moduleVersion: 1,
        nominalMinutes: 15,
        profile: PROFILES.standard,
        role: 'learner',
      },
      items: [{ kind: seq === 0 ? ('open' as const) : ('beat' as const), seq }],
      standing: { expired: false, notLearner: false },
      userAgent: null,
      ipPrefix: null,
    });
    await inbox.submit(request(0));
    expect(inbox.busy()).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(inbox.busy()).toBe(false);
    // More than half the limit waiting: crediting must not hold back any more.
    await settleTracking(ctx.app.db);
    for (let seq = 1; seq <= 6; seq++) await inbox.submit(request(seq));
    expect(await inbox.overloaded()).toBe(false);
    expect(inbox.busy()).toBe(false);
    await settleTracking(ctx.app.db, { learnerId: learner.learnerId });
  });

  it('credits no learner past a journal row still waiting to be unpacked, whoever holds it', async () => {
    const early = await seedLearner(ctx.app, courseId);
    const later = await seedLearner(ctx.app, courseId);
    const e = new TestTab(ctx.app, early, 'common-digitalisation');
    const l = new TestTab(ctx.app, later, 'common-digitalisation');
    clock.advance(1000);
    await e.send([e.next('open')], { raw: true }); // a journal row another consumer would be unpacking
    clock.advance(1000);
    await l.send([l.next('open')], { raw: true });
    // Only the later learner's row reaches the inbox.
    expect(await unpackJournal(ctx.app.db, { contains: later.learnerId, skipLocked: true, maxRows: 10 })).toEqual({
      rows: 1,
      items: 1,
      quarantined: [],
    });
    const stalled = new TrackingConsumer(ctx.app.db, { settleLagMs: 0, journalRows: 0 });
    expect((await stalled.slice()).items).toBe(0);
    expect(await pending(later.learnerId)).toHaveLength(1);
    // Once the earlier row is unpacked, both are credited, each at its own time.
    const consumer = new TrackingConsumer(ctx.app.db, { settleLagMs: 0 });
    await consumer.slice();
    await consumer.slice();
    expect(await pending(early.learnerId)).toEqual([]);
    expect(await pending(later.learnerId)).toEqual([]);
    expect(consumer.stats).toMatchObject({ unpacked: 1, late: 0 });
    const opens = await ctx.app.db
      .selectFrom('tracking_events')
      .select(['learner_id', 'server_time'])
      .where('kind', '=', 'open')
      .where('learner_id', 'in', [early.learnerId, later.learnerId])
      .execute();
    expect(opens.map((o) => [o.learner_id, o.server_time.getTime()]).sort()).toEqual(
      [
        [early.learnerId, clock.nowMs - 1000],
        [later.learnerId, clock.nowMs],
      ].sort(),
    );
  });

  it('sets aside a journal row PostgreSQL cannot read, and still credits every row around it', async () => {
    const a = await seedLearner(ctx.app, courseId);
    const b = await seedLearner(ctx.app, courseId);
    const ta = new TestTab(ctx.app, a, 'common-digitalisation');
    const tb = new TestTab(ctx.app, b, 'common-digitalisation');
    clock.advance(1000);
    await ta.send([ta.next('open')], { raw: true });
    // Rows no ingest writes (a bug, or a hand edit), between the two learners' rows: cut JSON, and a
    // request whose learner is not a UUID.
    const bad = (body: string, at: number) => sql`
      insert into tracking_journal (item_count, body, received_at) values (1, ${body}, ${new Date(at)})`;
    await bad('[{"learner_id": "cut sh', clock.nowMs + 100).execute(ctx.app.db);
    await bad(JSON.stringify([{ learner_id: 'zz', items: [{ seq: 0, kind: 'open' }] }]), clock.nowMs + 200).execute(
      ctx.app.db,
    );
    clock.advance(1000);
    await tb.send([tb.next('open')], { raw: true });

    const errors: unknown[] = [];
    const log = { error: (...args: unknown[]) => errors.push(args) } as never;
    const consumer = new TrackingConsumer(ctx.app.db, { settleLagMs: 0, log });
    for (
      let i = 0;
      i < 10 && ((await pending(a.learnerId)).length > 0 || (await pending(b.learnerId)).length > 0);
      i++
    ) {
      await consumer.slice();
    }
    expect(await pending(a.learnerId)).toEqual([]);
    expect(await pending(b.learnerId)).toEqual([]);
    expect(consumer.stats).toMatchObject({ quarantined: 2, errors: 0 });
    expect(errors).toHaveLength(1);
    expect((errors[0] as [{ journalIds: string[] }])[0].journalIds).toHaveLength(2);
    const setAside = await ctx.app.db
      .selectFrom('tracking_journal_quarantine')
      .select(['item_count', 'body', 'error'])
      .orderBy('id')
      .execute();
    expect(setAside.map((q) => q.error.slice(0, 6))).toEqual(['22P02:', '22P02:']);
    expect(setAside[0]?.body).toBe('[{"learner_id": "cut sh');
    expect(await ctx.app.db.selectFrom('tracking_journal').select('id').execute()).toEqual([]);

    // Settling (what every reader does first) sets one aside too, instead of failing.
    await bad('not json', clock.nowMs).execute(ctx.app.db);
    clock.advance(30_000);
    await tb.send([tb.next('beat')], { raw: true });
    const settled = await settleTracking(ctx.app.db);
    expect(settled).toMatchObject({ items: 1 });
    expect(settled.quarantined).toHaveLength(1);
    expect(await pending(b.learnerId)).toEqual([]);
    // The audit names every row set aside: acknowledged items that were never credited.
    const problems = (await verifyEvidence(ctx.app.db)).filter((p) => p.problem.includes('set aside unread'));
    expect(problems).toHaveLength(3);
    expect(problems[0]?.problem).toMatch(
      /^journal row \d+ \(1 acknowledged items\) set aside unread, not credited: 22P02/,
    );
  });

  it('stops loudly, setting nothing aside, when well-formed rows fail (the statement or the schema is at fault)', async () => {
    const learner = await seedLearner(ctx.app, courseId);
    const tab = new TestTab(ctx.app, learner, 'common-digitalisation');
    const before = await ctx.app.db.selectFrom('tracking_journal_quarantine').select('id').execute();
    // A deploy half done: the inbox refuses what the journal holds.
    await sql`alter table tracking_inbox add constraint test_no_open check (kind <> 'open')`.execute(ctx.app.db);
    try {
      clock.advance(1000);
      await tab.send([tab.next('open')], { raw: true });
      const consumer = new TrackingConsumer(ctx.app.db, { settleLagMs: 0 });
      await expect(consumer.slice()).rejects.toMatchObject({ code: '23514' });
      expect(await ctx.app.db.selectFrom('tracking_journal_quarantine').select('id').execute()).toEqual(before);
      expect(await pending(learner.learnerId)).toHaveLength(1); // still in the journal
    } finally {
      await sql`alter table tracking_inbox drop constraint test_no_open`.execute(ctx.app.db);
    }
    await settleTracking(ctx.app.db, { learnerId: learner.learnerId });
    expect(await pending(learner.learnerId)).toEqual([]);
  });
});
