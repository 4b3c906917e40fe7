import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type Selectable, sql, type Transaction } from 'kysely';
import type { Database, Db } from '../../db/index.js';
import { beatsCredited } from '../../metrics/index.js';
import {
  appendNote,
  applyDelta,
  type CourseEvidence,
  canApplyIncrementally,
  createTab,
  ingestItems,
  iso,
  type LearnerWork,
  newLearnerWork,
  RECENT_WINDOW_MS,
  runInterval,
  sealStaleRuns,
  type TabMeta,
  tallyFromEvidence,
} from '../engine.js';
import { planTotals, readBatchState, writeBatch } from '../repository/batch.js';
import { loadCoursesEvidence } from '../repository/evidence.js';
import { profileOf, TabConflictError } from '../repository/runs.js';
import { pairKey, type StoredTally, writeTotals } from '../repository/totals.js';
import { ALGORITHM, type BeatCause, type CourseTally, emptyTally, type TrackedItem } from '../rules.js';
import type { TrackingInboxTable } from '../tables.js';
import { creditHorizon, unpackJournal } from './unpacking.js';

/**
 * Crediting: the consumer credits the inbox's rows with the engine, each row at its own `received_at`, and
 * deletes them in the same transaction; `settleTracking` does the same on demand (read-your-writes).
 */

export const sameTab = (a: TabMeta, b: TabMeta): boolean =>
  a.learnerId === b.learnerId &&
  a.courseId === b.courseId &&
  a.moduleId === b.moduleId &&
  a.profile.name === b.profile.name &&
  a.role === b.role;

type PairWrite = { learnerId: string; courseId: string; tally: CourseTally; before: StoredTally['snapshot'] | null };

/** Per learner × course the batch touched: the incremental tally when safe, else a rebuild from evidence. */
export function totalsOf(
  works: readonly LearnerWork[],
  stored: ReadonlyMap<string, StoredTally>,
): { fast: PairWrite[]; slow: Array<Omit<PairWrite, 'tally'>> } {
  const fast: PairWrite[] = [];
  const slow: Array<Omit<PairWrite, 'tally'>> = [];
  for (const w of works) {
    for (const [courseId, delta] of w.courses) {
      const s = stored.get(pairKey(w.learnerId, courseId));
      const courseRuns = [...w.runs.entries()]
        .filter(([, r]) => r.courseId === courseId)
        .map(([id, r]) => runInterval(id, r));
      // No totals row yet = no creditable evidence yet (the row is written with the pair's first learner tab).
      const base = s?.tally ?? emptyTally();
      // Added to the stored tally only when no second can change owner (new spans, new focus marks).
      // Rows of an older algorithm (totals kept before beats-v2) are rebuilt from evidence, never added to.
      if ((s === undefined || s.algorithm === ALGORITHM) && canApplyIncrementally(delta, courseRuns)) {
        applyDelta(base, delta);
        fast.push({ learnerId: w.learnerId, courseId, tally: base, before: s?.snapshot ?? null });
      } else {
        slow.push({ learnerId: w.learnerId, courseId, before: s?.snapshot ?? null });
      }
    }
  }
  return { fast, slow };
}

export interface CreditReport {
  /** Learners whose rows were credited. */
  learners: number;
  /** Inbox rows consumed (credited, kept as rejected evidence, or dropped as duplicates of credited items). */
  items: number;
  /** Rows received before what was already credited for their learner (credited at that later instant). */
  late: number;
  /** Candidate learners another consumer was crediting (skipped, with SKIP LOCKED). */
  skipped: number;
}

const RETRYABLE_CODES = new Set(['40001', '40P01', '23505']);
function retryable(error: unknown): boolean {
  if (error instanceof TabConflictError) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/** A pending row as the consumer reads it. */
type InboxRow = Omit<Selectable<TrackingInboxTable>, 'kind'> & { kind: 'open' | 'beat' | 'close' };

export interface CreditOptions {
  /** Only rows older than this (ms, by the database clock); undefined = every visible row (read-your-writes). */
  settleLagMs?: number;
  /** Skip learners another consumer holds (the background loop); otherwise wait for them (settling). */
  skipLocked: boolean;
  /** Most inbox rows one transaction reads. */
  maxRows?: number;
  log?: FastifyBaseLogger;
}

/**
 * Credits the pending inbox rows of some learners in one transaction: locks their rows (as the ingest always
 * did), reads their pending rows in (received_at, tab_id, seq) order, feeds each to the engine at its own
 * received_at, writes runs, evidence and totals, deletes the consumed rows, commits. Retried on a deadlock,
 * a serialization failure or a tab-id race.
 */
export async function creditLearners(
  db: Db,
  learnerIds: readonly string[],
  options: CreditOptions,
): Promise<CreditReport> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute((trx) => creditInTransaction(trx, learnerIds, options));
    } catch (error) {
      if (attempt >= 5 || !retryable(error)) throw error;
      await new Promise((r) => setTimeout(r, 2 ** attempt + Math.random() * 10));
    }
  }
}

async function creditInTransaction(
  trx: Transaction<Database>,
  candidates: readonly string[],
  options: CreditOptions,
): Promise<CreditReport> {
  const report: CreditReport = { learners: 0, items: 0, late: 0, skipped: 0 };
  const ids = [...new Set(candidates)].sort();
  if (ids.length === 0) return report;
  await trx
    .insertInto('tracking_learners')
    .values(ids.map((learner_id) => ({ learner_id })))
    .onConflict((oc) => oc.column('learner_id').doNothing())
    .execute();
  let lock = trx
    .selectFrom('tracking_learners')
    .selectAll()
    .where('learner_id', 'in', ids)
    .orderBy('learner_id')
    .forNoKeyUpdate();
  if (options.skipLocked) lock = lock.skipLocked();
  const learners = await lock.execute();
  report.skipped = ids.length - learners.length;
  if (learners.length === 0) return report;
  const locked = learners.map((l) => l.learner_id);
  const cutoff =
    options.settleLagMs === undefined ? sql`true` : sql`received_at < ${creditHorizon(options.settleLagMs)}`;
  const { rows } = await sql<InboxRow>`
    select * from tracking_inbox where learner_id = any(${locked}::uuid[]) and ${cutoff}
    order by learner_id, received_at, tab_id, seq limit ${options.maxRows ?? 5000}`.execute(trx);
  if (rows.length === 0) return report;
  const firstMs = Math.min(...rows.map((r) => r.received_at.getTime()));
  const state = await readBatchState(trx, {
    learnerIds: locked,
    tabIds: rows.map((r) => r.tab_id),
    courseIds: rows.map((r) => r.course_id),
    windowMs: RECENT_WINDOW_MS,
    sinceMs: Math.min(firstMs, ...learners.map((l) => l.credited_until?.getTime() ?? firstMs)) - RECENT_WINDOW_MS,
  });
  const { runs, tabs } = state;
  const works = new Map<string, LearnerWork>(
    learners.map((l) => [
      l.learner_id,
      newLearnerWork({
        learnerId: l.learner_id,
        chainHead: l.chain_head,
        chainLength: Number(l.chain_length),
        focus: {
          tabId: l.focus_tab_id,
          inputMs: l.focus_input_at?.getTime() ?? null,
          lastMarkMs: l.focus_mark_at?.getTime() ?? null,
        },
      }),
    ]),
  );
  for (const [id, run] of runs) works.get(run.learnerId)?.runs.set(id, run);
  for (const [id, tab] of tabs) works.get(tab.meta.learnerId)?.tabs.set(id, tab);
  const lengthBefore = new Map(learners.map((l) => [l.learner_id, Number(l.chain_length)]));
  const until = new Map(learners.map((l) => [l.learner_id, l.credited_until?.getTime() ?? Number.NEGATIVE_INFINITY]));
  const lateBy = new Map<string, number>();

  for (const row of rows) {
    const work = works.get(row.learner_id) as LearnerWork;
    const receivedMs = row.received_at.getTime();
    const last = until.get(row.learner_id) as number;
    // A straggler (received before what this learner already had credited): credited at that later instant,
    // so that one learner's records stay in time order; its own time is kept in a `late` record.
    const atMs = Math.max(receivedMs, last);
    until.set(row.learner_id, atMs);
    if (receivedMs < last) {
      report.late++;
      lateBy.set(row.learner_id, (lateBy.get(row.learner_id) ?? 0) + 1);
      appendNote(work, {
        kind: 'late',
        courseId: row.course_id,
        moduleId: row.module_id,
        atMs,
        reason: null,
        data: { tabId: row.tab_id, seq: row.seq, receivedAt: iso(receivedMs) },
      });
    }
    sealStaleRuns(work, atMs);
    const meta: TabMeta = {
      tabId: row.tab_id,
      learnerId: row.learner_id,
      courseId: row.course_id,
      moduleId: row.module_id,
      moduleVersion: row.module_version,
      nominalMinutes: row.nominal_minutes,
      profile: profileOf(row.profile),
      role: row.role,
    };
    const item: TrackedItem = {
      kind: row.kind,
      seq: row.seq,
      clientTime: row.client_time,
      inputAgoMs: row.input_ago_ms,
      ...(row.media !== null ? { media: row.media } : {}),
      ...(row.cause !== null ? { cause: row.cause as BeatCause } : {}),
    };
    const known = work.tabs.get(row.tab_id) ?? tabs.get(row.tab_id);
    if (known && !sameTab(known.meta, meta)) {
      // A tab id that belongs to another page: kept in this learner's chain, never credited.
      appendNote(work, {
        kind: 'rejected',
        courseId: row.course_id,
        moduleId: row.module_id,
        atMs,
        reason: 'tab_mismatch',
        data: { tabId: row.tab_id, seq: row.seq, item: row.kind },
      });
      continue;
    }
    const tab = known ?? createTab(work, meta, atMs, { userAgent: row.user_agent, ipPrefix: row.ip_prefix });
    ingestItems(work, tab, [item], atMs, { expired: row.token_expired, notLearner: row.not_learner }, randomUUID);
  }
  if (report.late > 0) options.log?.warn({ late: report.late }, 'tracking inbox rows credited late (straggler)');
  beatsCredited.inc(report.items);

  const all = [...works.values()];
  const { fast, slow } = totalsOf(all, state.tallies);
  await writeBatch(trx, {
    tabs: all.flatMap((w) => [...w.tabs.values()].filter((t) => t.changed)),
    runs: all.flatMap((w) => [...w.runs.values()].filter((r) => r.changed)),
    events: all.flatMap((w) => w.events),
    learners: all.filter((w) => w.focusChanged || w.chainLength !== lengthBefore.get(w.learnerId)),
    totals: planTotals(fast),
  });
  if (slow.length > 0) {
    // Rebuilt from evidence, which now includes this slice's writes: all the slice's courses in one read.
    const evidence = await loadCoursesEvidence(trx, slow);
    await writeTotals(
      trx,
      slow.map((p) => ({
        ...p,
        tally: tallyFromEvidence(evidence.get(pairKey(p.learnerId, p.courseId)) as CourseEvidence),
      })),
    );
  }
  const marks = [...new Set(rows.map((r) => r.learner_id))].map((learnerId) => ({
    learner_id: learnerId,
    t: iso(until.get(learnerId) as number),
    n: lateBy.get(learnerId) ?? 0,
  }));
  await sql`
    with del as (delete from tracking_inbox where id = any(${rows.map((r) => r.id)}::bigint[]) returning 1)
    update tracking_learners l set credited_until = v.t, late_items = l.late_items + v.n
    from jsonb_to_recordset(${JSON.stringify(marks)}::jsonb) as v(learner_id uuid, t timestamptz, n integer)
    where l.learner_id = v.learner_id and (select count(*) from del) >= 0`.execute(trx);
  report.learners = marks.length;
  report.items = rows.length;
  return report;
}

/** Learners with pending rows (oldest first), optionally only rows older than the settle lag. */
export async function pendingLearners(
  db: Db,
  filter: { learnerId?: string; courseId?: string; settleLagMs?: number; receivedBy?: Date; limit: number },
): Promise<string[]> {
  const conds = [sql`true`];
  if (filter.learnerId) conds.push(sql`learner_id = ${filter.learnerId}::uuid`);
  if (filter.courseId) conds.push(sql`course_id = ${filter.courseId}::uuid`);
  if (filter.receivedBy) conds.push(sql`received_at <= ${filter.receivedBy}`);
  if (filter.settleLagMs !== undefined) conds.push(sql`received_at < ${creditHorizon(filter.settleLagMs)}`);
  const { rows } = await sql<{ learner_id: string }>`
    select learner_id from tracking_inbox where ${sql.join(conds, sql` and `)}
    order by received_at limit ${filter.limit}`.execute(db);
  return [...new Set(rows.map((r) => r.learner_id))];
}

/**
 * Read-your-writes: credits every pending inbox row of a learner, of a course's learners, or of everyone,
 * waiting for a consumer that is crediting the same learners. Everything that reads time calls it first.
 * `quarantined`: the journal rows it had to set aside unread (ids; see `unpackJournal`).
 */
export async function settleTracking(
  db: Db,
  filter: { learnerId?: string; courseId?: string } = {},
): Promise<CreditReport & { quarantined: string[] }> {
  const total = { learners: 0, items: 0, late: 0, skipped: 0, quarantined: [] as string[] };
  // What was acknowledged before this call (rows arriving meanwhile are left to the consumer).
  const { rows: clock } = await sql<{ now: Date }>`select clock_timestamp() as now`.execute(db);
  const receivedBy = (clock[0] as { now: Date }).now;
  // First the journal rows that may hold items of these learners (all of them without a filter): waiting for a
  // consumer that is unpacking some, so that every item received before this call is in the inbox after.
  const contains = filter.learnerId ?? filter.courseId;
  for (;;) {
    const unpacked = await unpackJournal(db, {
      receivedBy,
      ...(contains ? { contains } : {}),
      skipLocked: false,
      maxRows: 200,
    });
    total.quarantined.push(...unpacked.quarantined);
    if (unpacked.rows === 0) break;
  }
  for (;;) {
    const ids = await pendingLearners(db, { ...filter, receivedBy, limit: 2000 });
    if (ids.length === 0) break;
    for (let i = 0; i < ids.length; i += 50) {
      const r = await creditLearners(db, ids.slice(i, i + 50), { skipLocked: false });
      total.learners += r.learners;
      total.items += r.items;
      total.late += r.late;
    }
  }
  return total;
}
