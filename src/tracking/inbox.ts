import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type Selectable, sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
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
} from './engine.js';
import {
  loadCoursesEvidence,
  pairKey,
  planTotals,
  profileOf,
  readBatchState,
  type StoredTally,
  TabConflictError,
  writeBatch,
  writeTotals,
} from './repository.js';
import { type BeatCause, type CourseTally, emptyTally, type RunProfile, type TrackedItem } from './rules.js';
import type { TrackingInboxTable } from './tables.js';

/**
 * The tracking inbox (migration 0008): the ingest appends each received item as one row, in autocommit, and
 * answers once the row is committed; the consumer credits the rows later with the existing engine, each row at
 * its own `received_at`, and deletes them in the same transaction. Nothing here keeps state that correctness
 * depends on: the limiter, the backlog estimate and the queue only shape load.
 */

// ───────────────────────────── append (the ingest) ─────────────────────────────

export type ReceiveStatus = 'received' | 'duplicate' | 'deferred';

export interface ReceiveRequest {
  learnerId: string;
  meta: Omit<TabMeta, 'profile'> & { profile: RunProfile };
  items: TrackedItem[];
  standing: { expired: boolean; notLearner: boolean };
  userAgent: string | null;
  ipPrefix: string | null;
}

export type ReceiveOutcome =
  | { ok: true; serverTimeMs: number; results: Array<{ seq: number; status: ReceiveStatus }> }
  | { ok: false; reason: 'tab_mismatch' };

/** Server time for tests: the instant the inbox stamps on rows instead of the database clock. */
export type InboxClock = () => Promise<number>;

export interface InboxOptions {
  /** Most requests one INSERT statement carries. */
  maxBatch?: number;
  /** INSERT statements in flight at once (each holds one pooled connection for one round trip). */
  maxConcurrent?: number;
  /** Pending inbox rows above which the ingest answers 503 (the consumer is behind). */
  maxBacklog?: number;
  /** How old the backlog estimate may be before it is read again. */
  backlogCheckMs?: number;
  clock?: InboxClock;
  log?: FastifyBaseLogger;
}

interface Pending {
  request: ReceiveRequest;
  resolve: (o: ReceiveOutcome) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit of the ingest: requests wait in a queue; each batch is ONE statement in autocommit
 * (`INSERT … SELECT … FROM jsonb_to_recordset($1) ON CONFLICT DO NOTHING RETURNING …`), and each request is
 * answered after that statement committed (`synchronous_commit` on). A per-tab limiter defers floods, and a
 * backlog guard refuses new items while the consumer is too far behind, so the inbox cannot grow without bound.
 */
export class Inbox {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #maxConcurrent: number;
  readonly #maxBacklog: number;
  readonly #backlogCheckMs: number;
  readonly #clock: InboxClock | undefined;
  readonly #log: FastifyBaseLogger | undefined;
  #queue: Pending[] = [];
  #running = 0;
  #idle: Array<() => void> = [];
  #limiter = new Map<string, { startMs: number; items: number }>();
  #limiterSweepMs = 0;
  #backlog: { count: number; atMs: number; reading: Promise<number> | null } = { count: 0, atMs: 0, reading: null };

  constructor(db: Db, options: InboxOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#maxConcurrent = options.maxConcurrent ?? 4;
    this.#maxBacklog = options.maxBacklog ?? 200_000;
    this.#backlogCheckMs = options.backlogCheckMs ?? 1000;
    this.#clock = options.clock;
    this.#log = options.log;
  }

  /** Server time as the limiter sees it (the test clock when one is set). */
  async now(): Promise<number> {
    return this.#clock ? this.#clock() : Date.now();
  }

  /** Whether the inbox holds more pending rows than allowed (estimate at most `backlogCheckMs` old). */
  async overloaded(): Promise<boolean> {
    const now = Date.now();
    if (now - this.#backlog.atMs >= this.#backlogCheckMs) {
      this.#backlog.reading ??= countPending(this.#db, this.#maxBacklog + 1).finally(() => {
        this.#backlog.reading = null;
      });
      const count = await this.#backlog.reading;
      this.#backlog = { count, atMs: Date.now(), reading: null };
    }
    return this.#backlog.count > this.#maxBacklog;
  }

  /**
   * The per-tab limiter (in process, so per instance): at most the profile's `rateMaxItems` items per
   * `rateWindowMs`; the rest is deferred (not stored: the page sends it again later). Several instances may
   * together let more through: the consumer then keeps the excess as `rate_limited` evidence.
   */
  admit(tabId: string, profile: RunProfile, count: number, now: number): number {
    if (now - this.#limiterSweepMs > 60_000) {
      for (const [id, w] of this.#limiter) if (now - w.startMs > 120_000) this.#limiter.delete(id);
      this.#limiterSweepMs = now;
    }
    let w = this.#limiter.get(tabId);
    if (!w || now - w.startMs >= profile.rateWindowMs) {
      w = { startMs: now, items: 0 };
      this.#limiter.set(tabId, w);
    }
    const admitted = Math.max(0, Math.min(count, profile.rateMaxItems - w.items));
    w.items += admitted;
    return admitted;
  }

  submit(request: ReceiveRequest): Promise<ReceiveOutcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#pump();
    });
  }

  /** Resolves once every submitted request has been answered. */
  async drain(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#running < this.#maxConcurrent && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#running++;
      void this.#run(batch).finally(() => {
        this.#running--;
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) for (const done of this.#idle.splice(0)) done();
      });
    }
  }

  async #run(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await appendToInbox(
        this.#db,
        batch.map((b) => b.request),
        this.#clock ? await this.#clock() : null,
      );
      for (const [i, b] of batch.entries()) b.resolve(outcomes[i] as ReceiveOutcome);
    } catch (error) {
      // The statement failed as a whole: nothing of it was committed, nothing is acknowledged.
      this.#log?.warn({ err: error, size: batch.length }, 'tracking inbox append failed');
      for (const b of batch) b.reject(error);
    }
  }
}

async function countPending(db: Db, limit: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from (select 1 from tracking_inbox limit ${limit}) p`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/**
 * One statement in autocommit: the items of every request, except those of a tab id that already belongs to
 * another learner, inserted once per (learner, tab, seq). `fixedNow` replaces the database clock (tests).
 */
export async function appendToInbox(
  db: Db,
  requests: readonly ReceiveRequest[],
  fixedNow: number | null,
): Promise<ReceiveOutcome[]> {
  let n = 0;
  const rows = requests.flatMap((r) =>
    [...r.items]
      .sort((a, b) => a.seq - b.seq)
      .map((item) => ({
        learner_id: r.learnerId,
        course_id: r.meta.courseId,
        tab_id: r.meta.tabId,
        seq: item.seq,
        kind: item.kind,
        module_id: r.meta.moduleId,
        module_version: r.meta.moduleVersion,
        nominal_minutes: r.meta.nominalMinutes,
        role: r.meta.role,
        profile: r.meta.profile.name,
        token_expired: r.standing.expired,
        not_learner: r.standing.notLearner,
        client_time: item.clientTime ?? null,
        input_ago_ms: item.inputAgoMs ?? null,
        media: item.media ?? null,
        cause: item.cause ?? null,
        ip_prefix: r.ipPrefix,
        user_agent: r.userAgent,
        n: n++,
      })),
  );
  const at = fixedNow === null ? null : new Date(fixedNow).toISOString();
  const { rows: out } = await sql<{
    k: string;
    learner_id: string | null;
    tab_id: string;
    seq: number | null;
    at: Date;
  }>`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(
        learner_id uuid, course_id uuid, tab_id uuid, seq integer, kind text, module_id text, module_version integer,
        nominal_minutes integer, role text, profile text, token_expired boolean, not_learner boolean,
        client_time text, input_ago_ms integer, media boolean, cause text, ip_prefix text, user_agent text, n bigint)
    ),
    foreign_tabs as (
      select distinct t.id from tracking_tabs t join input i on t.id = i.tab_id and t.learner_id <> i.learner_id
    ),
    ins as (
      insert into tracking_inbox (learner_id, course_id, tab_id, seq, kind, module_id, module_version,
        nominal_minutes, role, profile, token_expired, not_learner, client_time, input_ago_ms, media, cause,
        ip_prefix, user_agent, received_at)
      select learner_id, course_id, tab_id, seq, kind, module_id, module_version, nominal_minutes, role, profile,
        token_expired, not_learner, client_time, input_ago_ms, media, cause, ip_prefix, user_agent,
        coalesce(${at}::timestamptz, clock_timestamp())
      from input where tab_id not in (select id from foreign_tabs)
      order by n
      on conflict (learner_id, tab_id, seq) do nothing
      returning learner_id, tab_id, seq, received_at
    )
    select 'ins' as k, learner_id, tab_id, seq, received_at as at from ins
    union all select 'foreign', null, id, null, null from foreign_tabs
    union all select 'now', null, null, null, coalesce(${at}::timestamptz, clock_timestamp())`.execute(db);
  const inserted = new Map<string, number>();
  const foreign = new Set<string>();
  let now = fixedNow ?? Date.now();
  for (const r of out) {
    if (r.k === 'ins') inserted.set(`${r.learner_id}|${r.tab_id}|${r.seq}`, new Date(r.at).getTime());
    else if (r.k === 'foreign') foreign.add(r.tab_id);
    else now = new Date(r.at).getTime();
  }
  return requests.map((r): ReceiveOutcome => {
    if (foreign.has(r.meta.tabId)) return { ok: false, reason: 'tab_mismatch' };
    let serverTimeMs = 0;
    const results = r.items.map((item) => {
      const key = `${r.learnerId}|${r.meta.tabId}|${item.seq}`;
      const t = inserted.get(key);
      // The first request of the batch holding a key takes its row; a copy in the same batch is a duplicate.
      if (t === undefined) return { seq: item.seq, status: 'duplicate' as const };
      inserted.delete(key);
      serverTimeMs = Math.max(serverTimeMs, t);
      return { seq: item.seq, status: 'received' as const };
    });
    return { ok: true, serverTimeMs: serverTimeMs || now, results };
  });
}

// ───────────────────────────── credit (the consumer) ─────────────────────────────

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
  nowOf: (learnerId: string) => number,
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
      // A new focus mark can move the owner of seconds already credited: rebuild from evidence then.
      if (!w.focusChanged && canApplyIncrementally(delta, courseRuns, nowOf(w.learnerId))) {
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
    options.settleLagMs === undefined
      ? sql`true`
      : sql`received_at < clock_timestamp() - (${options.settleLagMs} * interval '1 millisecond')`;
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
    ingestItems(
      work,
      tab,
      [item],
      atMs,
      { expired: row.token_expired, notLearner: row.not_learner },
      randomUUID,
      'reject',
    );
  }
  if (report.late > 0) options.log?.warn({ late: report.late }, 'tracking inbox rows credited late (straggler)');

  const all = [...works.values()];
  const { fast, slow } = totalsOf(all, state.tallies, (learnerId) => until.get(learnerId) as number);
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
async function pendingLearners(
  db: Db,
  filter: { learnerId?: string; courseId?: string; settleLagMs?: number; receivedBy?: Date; limit: number },
): Promise<string[]> {
  const conds = [sql`true`];
  if (filter.learnerId) conds.push(sql`learner_id = ${filter.learnerId}::uuid`);
  if (filter.courseId) conds.push(sql`course_id = ${filter.courseId}::uuid`);
  if (filter.receivedBy) conds.push(sql`received_at <= ${filter.receivedBy}`);
  if (filter.settleLagMs !== undefined)
    conds.push(sql`received_at < clock_timestamp() - (${filter.settleLagMs} * interval '1 millisecond')`);
  const { rows } = await sql<{ learner_id: string }>`
    select learner_id from tracking_inbox where ${sql.join(conds, sql` and `)}
    order by received_at limit ${filter.limit}`.execute(db);
  return [...new Set(rows.map((r) => r.learner_id))];
}

/**
 * Read-your-writes: credits every pending inbox row of a learner, of a course's learners, or of everyone,
 * waiting for a consumer that is crediting the same learners. Everything that reads time calls it first.
 */
export async function settleTracking(
  db: Db,
  filter: { learnerId?: string; courseId?: string } = {},
): Promise<CreditReport> {
  const total: CreditReport = { learners: 0, items: 0, late: 0, skipped: 0 };
  // What was acknowledged before this call (rows arriving meanwhile are left to the consumer).
  const { rows: clock } = await sql<{ now: Date }>`select clock_timestamp() as now`.execute(db);
  const receivedBy = (clock[0] as { now: Date }).now;
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

// ───────────────────────────── the background loop ─────────────────────────────

export interface ConsumerOptions {
  /** Rows younger than this wait (rows of other instances' in-flight inserts become visible meanwhile). */
  settleLagMs?: number;
  /** Learners per transaction. */
  groupSize?: number;
  /** Pause when nothing is pending. */
  idleMs?: number;
  log?: FastifyBaseLogger;
}

/**
 * Runs in every instance: repeatedly credits learners with pending rows older than the settle lag. Instances
 * share the work through SKIP LOCKED on the learners' rows. Each slice is one short transaction, and the loop
 * yields to the event loop between slices so that acknowledgements are not delayed.
 */
export class TrackingConsumer {
  readonly #db: Db;
  readonly #settleLagMs: number;
  readonly #groupSize: number;
  readonly #idleMs: number;
  readonly #log: FastifyBaseLogger | undefined;
  #running: Promise<void> | null = null;
  #stopping = false;
  #wake: (() => void) | null = null;
  /** Counters (metrics): items credited, late items, slices, errors. */
  readonly stats = { items: 0, late: 0, slices: 0, errors: 0 };

  constructor(db: Db, options: ConsumerOptions = {}) {
    this.#db = db;
    this.#settleLagMs = options.settleLagMs ?? 2000;
    this.#groupSize = options.groupSize ?? 100;
    this.#idleMs = options.idleMs ?? 250;
    this.#log = options.log;
  }

  get running(): boolean {
    return this.#running !== null;
  }

  start(): void {
    if (this.#running) return;
    this.#stopping = false;
    this.#running = this.#loop().finally(() => {
      this.#running = null;
    });
  }

  /** Stops after the current slice (its transaction commits or rolls back; nothing is lost either way). */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
  }

  /** One slice: credits up to `groupSize` learners with rows older than the lag. Returns what it did. */
  async slice(): Promise<CreditReport> {
    const ids = await pendingLearners(this.#db, { settleLagMs: this.#settleLagMs, limit: this.#groupSize * 20 });
    // Instances start at different places in the list, so that they rarely wait for each other's locks.
    const start = ids.length > this.#groupSize ? Math.floor(Math.random() * (ids.length - this.#groupSize)) : 0;
    const report = await creditLearners(this.#db, ids.slice(start, start + this.#groupSize), {
      skipLocked: true,
      settleLagMs: this.#settleLagMs,
      ...(this.#log ? { log: this.#log } : {}),
    });
    this.stats.items += report.items;
    this.stats.late += report.late;
    this.stats.slices++;
    return report;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let report: CreditReport | null = null;
      try {
        report = await this.slice();
      } catch (error) {
        this.stats.errors++;
        this.#log?.error({ err: error }, 'tracking consumer slice failed; retrying');
      }
      if (this.#stopping) break;
      if (report && report.items > 0) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#idleMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }
}
