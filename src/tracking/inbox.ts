import { randomUUID } from 'node:crypto';
import { type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { FastifyBaseLogger } from 'fastify';
import { type Selectable, sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
import { beatsCredited } from '../metrics/index.js';
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
import { ALGORITHM, type BeatCause, type CourseTally, emptyTally, type RunProfile, type TrackedItem } from './rules.js';
import type { TrackingInboxTable } from './tables.js';

/**
 * The tracking inbox (migration 0008): the ingest appends each received item as one row, in autocommit, and
 * answers once the row is committed; the consumer credits the rows later with the existing engine, each row at
 * its own `received_at`, and deletes them in the same transaction. Nothing here keeps state that correctness
 * depends on: the limiter, the backlog estimate and the queue only shape load.
 */

// ───────────────────────────── append (the ingest) ─────────────────────────────

/**
 * received: committed to the journal (it will be credited, or kept as rejected evidence; a copy of an item
 * already received is credited once); duplicate: the same seq twice in one request; deferred: not stored.
 */
export type ReceiveStatus = 'received' | 'duplicate' | 'deferred';

export interface ReceiveRequest {
  learnerId: string;
  meta: Omit<TabMeta, 'profile'> & { profile: RunProfile };
  items: TrackedItem[];
  standing: { expired: boolean; notLearner: boolean };
  userAgent: string | null;
  ipPrefix: string | null;
}

export interface ReceiveOutcome {
  serverTimeMs: number;
  results: Array<{ seq: number; status: ReceiveStatus }>;
}

/** Server time for tests: the instant the inbox stamps on rows instead of the database clock. */
export type InboxClock = () => Promise<number>;

export interface InboxOptions {
  /** Most requests one journal row carries. */
  maxBatch?: number;
  /** INSERT statements in flight at once (each holds one pooled connection for one round trip). */
  maxConcurrent?: number;
  /** Pending items (journal and inbox) above which the ingest answers 503 (the consumer is behind). */
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

/** How long after its last append the ingest counts as busy (the consumer then yields to it). */
const BUSY_WINDOW_MS = 250;

/**
 * Group commit of the ingest: requests wait in a queue; each batch is ONE row of `tracking_journal`, written by
 * one statement in autocommit, and each request is answered after that statement committed
 * (`synchronous_commit` on). A per-tab limiter defers floods, and a backlog guard refuses new items while the
 * consumer is too far behind, so the journal and the inbox cannot grow without bound.
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
  #lastAppendMs = Number.NEGATIVE_INFINITY;
  #backlog: { count: number; atMs: number; reading: Promise<number> | null } = { count: 0, atMs: 0, reading: null };

  constructor(db: Db, options: InboxOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#maxConcurrent = options.maxConcurrent ?? 2;
    this.#maxBacklog = options.maxBacklog ?? 500_000;
    this.#backlogCheckMs = options.backlogCheckMs ?? 1000;
    this.#clock = options.clock;
    this.#log = options.log;
  }

  /** Server time as the limiter sees it (the test clock when one is set). */
  async now(): Promise<number> {
    return this.#clock ? this.#clock() : Date.now();
  }

  /** Whether more items wait than allowed (estimate at most `backlogCheckMs` old). */
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
   * Whether the ingest appended within the last moments and the backlog is below half its limit: the
   * instance's consumer then leaves most of the machine to acknowledgements (crediting is deferred work; every
   * reader settles what it reads first). Past half the limit the consumer runs flat out again.
   */
  busy(): boolean {
    return Date.now() - this.#lastAppendMs < BUSY_WINDOW_MS && this.#backlog.count <= this.#maxBacklog / 2;
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
      this.#lastAppendMs = Date.now();
      void this.#run(batch).finally(() => {
        this.#running--;
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) for (const done of this.#idle.splice(0)) done();
      });
    }
  }

  async #run(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await appendToJournal(
        this.#db,
        batch.map((b) => b.request),
        this.#clock ? await this.#clock() : null,
      );
      for (const [i, b] of batch.entries()) b.resolve(outcomes[i] as ReceiveOutcome);
    } catch (error) {
      // The statement failed as a whole: nothing of it was committed, nothing is acknowledged.
      this.#log?.warn({ err: error, size: batch.length }, 'tracking journal append failed');
      for (const b of batch) b.reject(error);
    }
  }
}

/** Items waiting: the inbox's rows (counted up to `limit`) and the items of the journal's rows. */
async function countPending(db: Db, limit: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select (select count(*) from (select 1 from tracking_inbox limit ${limit}) p)
      + (select coalesce(sum(item_count), 0) from tracking_journal) as n`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/**
 * One request as a journal row keeps it (format "journal-v1"): the ticket's verified facts, the session's
 * standing, and the items, with the names of `tracking_inbox`'s columns.
 */
type InboxColumns = Selectable<TrackingInboxTable>;
/** Per request: the columns of `tracking_inbox` shared by its items. */
type RequestColumns =
  | 'learner_id'
  | 'course_id'
  | 'tab_id'
  | 'module_id'
  | 'module_version'
  | 'nominal_minutes'
  | 'role'
  | 'profile'
  | 'token_expired'
  | 'not_learner'
  | 'ip_prefix'
  | 'user_agent';
export type JournalRequest = Pick<InboxColumns, RequestColumns> & {
  items: Array<
    Pick<InboxColumns, 'seq' | 'client_time' | 'input_ago_ms' | 'media' | 'cause'> & { kind: TrackedItem['kind'] }
  >;
};

const Int32 = Type.Integer({ minimum: -2_147_483_648, maximum: 2_147_483_647 });
const UuidText = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
});
const OrNull = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** The journal format "journal-v1", as `unpackIn` reads it into the inbox's columns. */
const JournalV1 = Type.Array(
  Type.Object({
    learner_id: UuidText,
    course_id: UuidText,
    tab_id: UuidText,
    module_id: Type.String(),
    module_version: OrNull(Int32),
    nominal_minutes: Int32,
    role: Type.String(),
    profile: Type.String(),
    token_expired: Type.Boolean(),
    not_learner: Type.Boolean(),
    ip_prefix: OrNull(Type.String()),
    user_agent: OrNull(Type.String()),
    items: Type.Array(
      Type.Object({
        seq: Int32,
        kind: Type.String(),
        client_time: OrNull(Type.String()),
        input_ago_ms: OrNull(Int32),
        media: OrNull(Type.Boolean()),
        cause: OrNull(Type.String()),
      }),
    ),
  }),
);

/**
 * Whether a journal row's text is "journal-v1" as the inbox can take it: JSON of the right shape, integers
 * that fit, and strings PostgreSQL's jsonb accepts (no NUL, no lone surrogate). What decides, when
 * PostgreSQL fails on a row, whether the row is at fault (set it aside) or the database is (stop loudly).
 */
export function isJournalV1(body: string): boolean {
  let textOk = true;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body, (_key, value: unknown) => {
      if (typeof value === 'string' && (value.includes('\u0000') || LONE_SURROGATE.test(value))) textOk = false;
      return value;
    });
  } catch {
    return false;
  }
  return textOk && Value.Check(JournalV1, parsed);
}
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * One statement in autocommit: the batch's requests as ONE journal row (JSON text, not parsed here: the
 * consumer unpacks it). Every item of the batch gets the row's `received_at` as its server time. Only a seq
 * repeated within one request is answered `duplicate` here; copies across requests are credited once by the
 * consumer (the inbox is unique on learner × tab × seq, and the engine ignores what a run already holds).
 * `fixedNow` replaces the database clock (tests).
 */
export async function appendToJournal(
  db: Db,
  requests: readonly ReceiveRequest[],
  fixedNow: number | null,
): Promise<ReceiveOutcome[]> {
  let count = 0;
  const results: ReceiveOutcome['results'][] = [];
  const body: JournalRequest[] = requests.map((r) => {
    const seen = new Set<number>();
    const answers: ReceiveOutcome['results'] = [];
    const items: JournalRequest['items'] = [];
    for (const item of r.items) {
      if (seen.has(item.seq)) {
        answers.push({ seq: item.seq, status: 'duplicate' });
        continue;
      }
      seen.add(item.seq);
      answers.push({ seq: item.seq, status: 'received' });
      items.push({
        seq: item.seq,
        kind: item.kind,
        client_time: item.clientTime ?? null,
        input_ago_ms: item.inputAgoMs ?? null,
        media: item.media ?? null,
        cause: item.cause ?? null,
      });
    }
    count += items.length;
    results.push(answers);
    return {
      learner_id: r.learnerId,
      course_id: r.meta.courseId,
      tab_id: r.meta.tabId,
      module_id: r.meta.moduleId,
      module_version: r.meta.moduleVersion,
      nominal_minutes: r.meta.nominalMinutes,
      role: r.meta.role,
      profile: r.meta.profile.name,
      token_expired: r.standing.expired,
      not_learner: r.standing.notLearner,
      ip_prefix: r.ipPrefix,
      user_agent: r.userAgent,
      items,
    };
  });
  const at = fixedNow === null ? null : new Date(fixedNow).toISOString();
  const { rows } = await sql<{ received_at: Date }>`
    insert into tracking_journal (item_count, body, received_at)
    values (${count}, ${JSON.stringify(body)}, coalesce(${at}::timestamptz, clock_timestamp()))
    returning received_at`.execute(db);
  const serverTimeMs = (rows[0] as { received_at: Date }).received_at.getTime();
  return results.map((r) => ({ serverTimeMs, results: r }));
}

type UnpackOptions = {
  receivedBy?: Date;
  contains?: string;
  /** One journal row only (the row-by-row retry). */
  id?: string;
  skipLocked: boolean;
  maxRows: number;
};

/**
 * Moves journal rows into `tracking_inbox`, one row per item, each at its journal row's `received_at`; a copy of
 * an item already in the inbox is dropped there (unique on learner × tab × seq). One statement: the journal
 * rows are deleted in the same transaction. `skipLocked`: leave rows another consumer is unpacking (the
 * background loop); otherwise wait for it (settling, so that everything received before is in the inbox after).
 * `contains`: only rows whose text holds this id (a learner's or a course's, as the ingest wrote it).
 *
 * A slice that fails on a row PostgreSQL cannot read is taken again row by row, and that row is set aside
 * (`quarantined`, see `unpackRowByRow`).
 */
export async function unpackJournal(
  db: Db,
  options: Omit<UnpackOptions, 'id'>,
): Promise<{ rows: number; items: number; quarantined: string[] }> {
  try {
    return { ...(await unpackTransaction(db, options)), quarantined: [] };
  } catch (error) {
    if (!isUnreadableRow(error)) throw error;
    return unpackRowByRow(db, options);
  }
}

function unpackTransaction(db: Db, options: UnpackOptions): Promise<{ rows: number; items: number }> {
  // PostgreSQL estimates 100 rows per JSON array, so it JIT-compiles this statement: ~20 ms of a ~40 ms
  // statement for 1 000 items (measured). JIT is off for this transaction only.
  return db.transaction().execute(async (trx) => {
    await sql`set local jit = off`.execute(trx);
    return unpackIn(trx, options);
  });
}

/**
 * What PostgreSQL answers for a journal row it cannot read as "journal-v1": a data exception (invalid JSON,
 * UUID or integer…) or a NOT NULL / CHECK constraint of the inbox. Validation at the ingest makes this a bug
 * or a hand edit, never a sender's doing.
 */
function isUnreadableRow(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code === '23502' || code === '23514');
}

/**
 * The slice again, one row per transaction, after it failed on a row PostgreSQL cannot read: the good rows
 * are unpacked, and a row that fails on its own is moved whole to `tracking_journal_quarantine` with the
 * error. So one such row never stops the crediting of everyone else (it would otherwise fail every slice, and
 * hold the credit horizon at its `received_at`).
 */
async function unpackRowByRow(
  db: Db,
  options: Omit<UnpackOptions, 'id'>,
): Promise<{ rows: number; items: number; quarantined: string[] }> {
  const { rows: slice } = await sql<{ id: string }>`${journalSlice(options, sql``)}`.execute(db);
  const total = { rows: 0, items: 0, quarantined: [] as string[] };
  for (const { id } of slice) {
    try {
      const r = await unpackTransaction(db, { ...options, id: String(id) });
      total.rows += r.rows;
      total.items += r.items;
    } catch (error) {
      if (!isUnreadableRow(error)) throw error;
      // Only a row that is itself malformed is set aside. A well-formed row failing means the statement or
      // the schema is at fault (a bug, a deploy half done): every row would fail, so crediting stops loudly
      // and nothing is moved.
      const row = await db
        .selectFrom('tracking_journal')
        .select('body')
        .where('id', '=', String(id))
        .executeTakeFirst();
      if (!row) continue; // unpacked meanwhile by another consumer
      if (isJournalV1(row.body)) throw error;
      const { code, message, detail } = error as { code: string; message: string; detail?: string };
      const lock = rowLock(options.skipLocked);
      const { rows: moved } = await sql<{ journal_id: string }>`
        with j as (
          delete from tracking_journal where id in (select id from tracking_journal where id = ${String(id)} ${lock})
          returning id, received_at, item_count, body
        )
        insert into tracking_journal_quarantine (journal_id, received_at, item_count, body, error)
        select id, received_at, item_count, body, ${`${code}: ${message}${detail ? ` (${detail})` : ''}`} from j
        returning journal_id`.execute(db);
      total.rows += moved.length;
      total.quarantined.push(...moved.map((m) => String(m.journal_id)));
    }
  }
  return total;
}

/** `skipLocked`: leave rows another consumer holds; otherwise wait for them. */
function rowLock(skipLocked: boolean) {
  return skipLocked ? sql`for update skip locked` : sql`for update`;
}

/** The ids of the journal rows a slice takes, oldest first. */
function journalSlice(options: UnpackOptions, lock: ReturnType<typeof sql>) {
  const conds = [sql`true`];
  if (options.receivedBy) conds.push(sql`received_at <= ${options.receivedBy}`);
  if (options.contains) conds.push(sql`strpos(body, ${options.contains.toLowerCase()}) > 0`);
  if (options.id) conds.push(sql`id = ${options.id}`);
  return sql`select id from tracking_journal where ${sql.join(conds, sql` and `)}
    order by received_at, id limit ${options.maxRows} ${lock}`;
}

async function unpackIn(trx: Transaction<Database>, options: UnpackOptions): Promise<{ rows: number; items: number }> {
  const lock = rowLock(options.skipLocked);
  const { rows } = await sql<{ rows: string; items: string }>`
    with j as (
      delete from tracking_journal where id in (${journalSlice(options, lock)})
      returning id, received_at, item_count, body
    ),
    ins as (
      insert into tracking_inbox (learner_id, course_id, tab_id, seq, kind, module_id, module_version,
        nominal_minutes, role, profile, token_expired, not_learner, client_time, input_ago_ms, media, cause,
        ip_prefix, user_agent, received_at)
      select (q.r->>'learner_id')::uuid, (q.r->>'course_id')::uuid, (q.r->>'tab_id')::uuid, (i.x->>'seq')::integer,
        i.x->>'kind', q.r->>'module_id', (q.r->>'module_version')::integer, (q.r->>'nominal_minutes')::integer,
        q.r->>'role', q.r->>'profile', (q.r->>'token_expired')::boolean, (q.r->>'not_learner')::boolean,
        i.x->>'client_time', (i.x->>'input_ago_ms')::integer, (i.x->>'media')::boolean, i.x->>'cause',
        q.r->>'ip_prefix', q.r->>'user_agent', j.received_at
      from j
      cross join lateral jsonb_array_elements(j.body::jsonb) with ordinality as q(r, rn)
      cross join lateral jsonb_array_elements(q.r->'items') with ordinality as i(x, xn)
      order by j.received_at, j.id, q.rn, i.xn
      on conflict (learner_id, tab_id, seq) do nothing
      returning 1
    )
    select (select count(*) from j) as rows, (select count(*) from ins) as items`.execute(trx);
  return { rows: Number(rows[0]?.rows ?? 0), items: Number(rows[0]?.items ?? 0) };
}

/**
 * The instant before which every item has reached the inbox: now minus the settle lag (rows of other
 * instances' in-flight statements become visible meanwhile), and never past a journal row still waiting to be
 * unpacked (another consumer's, or one this slice did not reach), so that a learner's items are always credited
 * in the order they were received, whichever consumer unpacks them.
 */
function creditHorizon(settleLagMs: number) {
  return sql`least(clock_timestamp() - (${settleLagMs} * interval '1 millisecond'),
    coalesce((select min(received_at) from tracking_journal), 'infinity'::timestamptz))`;
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
async function pendingLearners(
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

// ───────────────────────────── the background loop ─────────────────────────────

export interface ConsumerOptions {
  /** Rows younger than this wait (rows of other instances' in-flight inserts become visible meanwhile). */
  settleLagMs?: number;
  /** Learners per transaction. */
  groupSize?: number;
  /** Pause when nothing is pending. */
  idleMs?: number;
  /** Most journal rows one slice unpacks. */
  journalRows?: number;
  /**
   * Whether acknowledgements need the machine now (`Inbox.busy`): the loop then pauses after each slice so
   * that it takes at most `busyShare` of the time, instead of running slices back to back.
   */
  yieldTo?: () => boolean;
  /** Share of the time the loop may take while `yieldTo` says so (default 0.2). */
  busyShare?: number;
  /**
   * Learners per transaction while `yieldTo` says so (default 10): a slice's crediting runs on the event loop
   * in one go, so smaller slices keep acknowledgements from waiting behind it.
   */
  busyGroupSize?: number;
  log?: FastifyBaseLogger;
}

/**
 * Runs in every instance: repeatedly unpacks journal rows into the inbox and credits learners with pending rows
 * older than the credit horizon. Instances share the work through SKIP LOCKED on the journal's and the
 * learners' rows. Each step is one short transaction; between slices the loop yields to the event loop, and
 * while the ingest is busy it pauses long enough to leave most of the machine to acknowledgements (crediting is
 * deferred work: every reader settles what it reads first).
 */
export class TrackingConsumer {
  readonly #db: Db;
  readonly #settleLagMs: number;
  readonly #groupSize: number;
  readonly #idleMs: number;
  readonly #journalRows: number;
  readonly #yieldTo: (() => boolean) | undefined;
  readonly #busyShare: number;
  readonly #busyGroupSize: number;
  readonly #log: FastifyBaseLogger | undefined;
  #running: Promise<void> | null = null;
  #stopping = false;
  #wake: (() => void) | null = null;
  /**
   * Counters (metrics): items unpacked from the journal, journal rows set aside unread (quarantined), items
   * credited, late items, slices, pauses, errors.
   */
  readonly stats = { unpacked: 0, quarantined: 0, items: 0, late: 0, slices: 0, yielded: 0, errors: 0 };

  constructor(db: Db, options: ConsumerOptions = {}) {
    this.#db = db;
    this.#settleLagMs = options.settleLagMs ?? 2000;
    this.#groupSize = options.groupSize ?? 100;
    this.#idleMs = options.idleMs ?? 250;
    this.#journalRows = options.journalRows ?? 50;
    this.#yieldTo = options.yieldTo;
    this.#busyShare = Math.min(1, Math.max(0.01, options.busyShare ?? 0.2));
    this.#busyGroupSize = Math.max(1, Math.min(this.#groupSize, options.busyGroupSize ?? 10));
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

  /**
   * One slice: unpacks up to `journalRows` journal rows, then credits up to `groupSize` learners with rows
   * older than the credit horizon. Returns what it credited (`items` also counts the items it unpacked).
   */
  async slice(): Promise<CreditReport> {
    // While acknowledgements need the machine: smaller steps (shorter statements, shorter event-loop turns).
    const busy = this.#yieldTo?.() ?? false;
    const group = busy ? this.#busyGroupSize : this.#groupSize;
    const journalRows = busy ? Math.min(this.#journalRows, 5) : this.#journalRows;
    const unpacked = await unpackJournal(this.#db, { skipLocked: true, maxRows: journalRows });
    this.stats.unpacked += unpacked.items;
    if (unpacked.quarantined.length > 0) {
      this.stats.quarantined += unpacked.quarantined.length;
      this.#log?.error(
        { journalIds: unpacked.quarantined },
        'tracking journal rows could not be unpacked: set aside in tracking_journal_quarantine, not credited',
      );
    }
    const ids = await pendingLearners(this.#db, { settleLagMs: this.#settleLagMs, limit: group * 20 });
    // Instances start at different places in the list, so that they rarely wait for each other's locks.
    const start = ids.length > group ? Math.floor(Math.random() * (ids.length - group)) : 0;
    const report = await creditLearners(this.#db, ids.slice(start, start + group), {
      skipLocked: true,
      settleLagMs: this.#settleLagMs,
      ...(this.#log ? { log: this.#log } : {}),
    });
    this.stats.items += report.items;
    this.stats.late += report.late;
    this.stats.slices++;
    return { ...report, items: report.items + unpacked.rows };
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let report: CreditReport | null = null;
      const started = performance.now();
      try {
        report = await this.slice();
      } catch (error) {
        this.stats.errors++;
        this.#log?.error({ err: error }, 'tracking consumer slice failed; retrying');
      }
      if (this.#stopping) break;
      if (report && report.items > 0) {
        if (this.#yieldTo?.()) {
          // The slice took `took` ms: pause so that it was `busyShare` of the time.
          const took = performance.now() - started;
          this.stats.yielded++;
          await this.#sleep(Math.min(2000, (took * (1 - this.#busyShare)) / this.#busyShare));
        } else {
          await new Promise((r) => setImmediate(r));
        }
        continue;
      }
      await this.#sleep(this.#idleMs);
    }
  }

  /** Waits `ms`, or less when `stop()` is called. */
  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = null;
  }
}
