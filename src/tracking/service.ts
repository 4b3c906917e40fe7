import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
import { canonicalJson, type EvidenceRecord, sha256Hex, verifyChain } from './chain.js';
import {
  applyDelta,
  canApplyIncrementally,
  createTab,
  type ItemResult,
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
  databaseNow,
  insertEvents,
  loadCourseEvidence,
  loadCourseRuns,
  loadLiveRuns,
  loadTabs,
  loadTallies,
  lockLearners,
  pairKey,
  planTotals,
  readBatchState,
  type StoredTally,
  saveLearners,
  saveRuns,
  selectCourseTotals,
  selectModuleTotals,
  serializeTotals,
  TabConflictError,
  totalsRows,
  writeBatch,
  writeTotals,
} from './repository.js';
import {
  ALGORITHM,
  BEATS_V1,
  type CourseTally,
  emptyTally,
  type FocusMark,
  finalizeTally,
  type ModuleFlag,
  nextParisMidnight,
  type PresenceSession,
  presenceSessions,
  type SessionStanding,
  type TrackedItem,
} from './rules.js';

// ───────────────────────────── ingest ─────────────────────────────

export interface IngestRequest {
  learnerId: string;
  meta: TabMeta;
  items: TrackedItem[];
  standing: SessionStanding;
  userAgent: string | null;
  ipPrefix: string | null;
}

export type IngestOutcome =
  | { ok: true; serverTimeMs: number; results: ItemResult[] }
  | { ok: false; reason: 'tab_mismatch' };

export interface IngestorOptions {
  /** Most requests one transaction carries. */
  maxBatch?: number;
  /** Batches in flight at once (each holds one pooled connection). */
  maxConcurrent?: number;
  log?: FastifyBaseLogger;
  /**
   * Server time, read after the learner locks. Defaults to PostgreSQL's clock (one clock for all instances);
   * tests pass a controlled clock so that time-dependent rules can be checked to the millisecond.
   */
  clock?: Clock;
}

export type Clock = (trx: Transaction<Database>) => Promise<number>;

interface Pending {
  request: IngestRequest;
  resolve: (o: IngestOutcome) => void;
  reject: (e: unknown) => void;
}

const RETRYABLE_CODES = new Set(['40001', '40P01', '23505']);
function retryable(error: unknown): boolean {
  if (error instanceof TabConflictError) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/**
 * Group commit: requests wait in a queue; each batch is one transaction and every request of it is answered
 * only after that transaction committed (a durable acknowledgement). Correctness never rests on this queue:
 * each batch locks its learners' rows in the database and reads PostgreSQL's clock, so any number of
 * instances sharing a database credit exactly as one. The queue only buys throughput.
 */
export class Ingestor {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #maxConcurrent: number;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #clock: Clock | undefined;
  #queue: Pending[] = [];
  #running = 0;
  #idle: Array<() => void> = [];

  constructor(db: Db, options: IngestorOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 200;
    this.#maxConcurrent = options.maxConcurrent ?? 2;
    this.#log = options.log;
    this.#clock = options.clock;
  }

  submit(request: IngestRequest): Promise<IngestOutcome> {
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
      const outcomes = await this.#commit(batch.map((b) => b.request));
      for (const [i, b] of batch.entries()) b.resolve(outcomes[i] as IngestOutcome);
    } catch (error) {
      if (batch.length === 1) {
        (batch[0] as Pending).reject(error);
        return;
      }
      // One bad request must not fail its neighbours: each alone in its own transaction.
      this.#log?.warn({ err: error, size: batch.length }, 'tracking batch failed; retrying its requests one by one');
      await Promise.all(
        batch.map(async (b) => {
          try {
            const [outcome] = await this.#commit([b.request]);
            b.resolve(outcome as IngestOutcome);
          } catch (e) {
            b.reject(e);
          }
        }),
      );
    }
  }

  async #commit(requests: IngestRequest[]): Promise<IngestOutcome[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#db.transaction().execute((trx) => ingestBatch(trx, requests, this.#clock));
      } catch (error) {
        if (attempt >= 5 || !retryable(error)) throw error;
        await new Promise((r) => setTimeout(r, 2 ** attempt + Math.random() * 10));
      }
    }
  }
}

const sameTab = (a: TabMeta, b: TabMeta): boolean =>
  a.learnerId === b.learnerId &&
  a.courseId === b.courseId &&
  a.moduleId === b.moduleId &&
  a.profile.name === b.profile.name &&
  a.role === b.role;

/**
 * One transaction in five round trips: BEGIN, lock the learners' rows, read the clock and their live state
 * (one statement, after the locks), write everything back (one statement), COMMIT. A course whose attribution
 * may have changed is then rebuilt from its evidence (more statements, only in that case).
 */
export async function ingestBatch(
  trx: Transaction<Database>,
  requests: readonly IngestRequest[],
  clock?: Clock,
): Promise<IngestOutcome[]> {
  const learners = await lockLearners(
    trx,
    requests.map((r) => r.learnerId),
  );
  const learnerIds = learners.map((l) => l.learnerId);
  const forcedNow = clock ? await clock(trx) : undefined;
  const state = await readBatchState(trx, {
    learnerIds,
    tabIds: requests.map((r) => r.meta.tabId),
    courseIds: requests.map((r) => r.meta.courseId),
    windowMs: RECENT_WINDOW_MS,
    ...(forcedNow !== undefined ? { sinceMs: forcedNow - RECENT_WINDOW_MS } : {}),
  });
  const now = forcedNow ?? state.now;
  const { runs, tabs } = state;
  const works = new Map<string, LearnerWork>(
    learners.map((l) => [
      l.learnerId,
      newLearnerWork({ learnerId: l.learnerId, chainHead: l.chainHead, chainLength: l.chainLength, focus: l.focus }),
    ]),
  );
  for (const [id, run] of runs) works.get(run.learnerId)?.runs.set(id, run);
  for (const [id, tab] of tabs) works.get(tab.meta.learnerId)?.tabs.set(id, tab);
  const lengthBefore = new Map(learners.map((l) => [l.learnerId, l.chainLength]));
  for (const w of works.values()) sealStaleRuns(w, now);

  const outcomes = requests.map((request): IngestOutcome => {
    const work = works.get(request.learnerId) as LearnerWork;
    const known = work.tabs.get(request.meta.tabId) ?? tabs.get(request.meta.tabId);
    if (known && !sameTab(known.meta, request.meta)) return { ok: false, reason: 'tab_mismatch' };
    const tab =
      known ?? createTab(work, request.meta, now, { userAgent: request.userAgent, ipPrefix: request.ipPrefix });
    const results = ingestItems(work, tab, request.items, now, request.standing, randomUUID);
    return { ok: true, serverTimeMs: now, results };
  });

  const all = [...works.values()];
  const { fast, slow } = totalsOf(all, state.tallies, now);
  await writeBatch(trx, {
    tabs: all.flatMap((w) => [...w.tabs.values()].filter((t) => t.changed)),
    runs: all.flatMap((w) => [...w.runs.values()].filter((r) => r.changed)),
    events: all.flatMap((w) => w.events),
    learners: all.filter((w) => w.focusChanged || w.chainLength !== lengthBefore.get(w.learnerId)),
    totals: planTotals(fast),
  });
  if (slow.length > 0) {
    // Rebuilt from evidence, which now includes this batch's writes.
    const writes = [];
    for (const p of slow) {
      const tally = tallyFromEvidence(await loadCourseEvidence(trx, p.learnerId, p.courseId));
      writes.push({ ...p, tally });
    }
    await writeTotals(trx, writes);
  }
  return outcomes;
}

type PairWrite = { learnerId: string; courseId: string; tally: CourseTally; before: StoredTally['snapshot'] | null };

/** Per learner × course the batch touched: the incremental tally when safe, else a rebuild from evidence. */
function totalsOf(
  works: readonly LearnerWork[],
  stored: ReadonlyMap<string, StoredTally>,
  now: number,
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
      if (!w.focusChanged && canApplyIncrementally(delta, courseRuns, now)) {
        applyDelta(base, delta);
        fast.push({ learnerId: w.learnerId, courseId, tally: base, before: s?.snapshot ?? null });
      } else {
        slow.push({ learnerId: w.learnerId, courseId, before: s?.snapshot ?? null });
      }
    }
  }
  return { fast, slow };
}

// ───────────────────────────── recompute, seal, digest, verify ─────────────────────────────

export interface RecomputeReport {
  pairs: number;
  /** Pairs whose stored totals differed from the evidence (rewritten unless checking). */
  differing: Array<{ learnerId: string; courseId: string }>;
}

/**
 * Rebuilds totals from evidence alone (runs, tabs, focus marks, rejected items) with the current algorithm,
 * under each learner's lock. `write: false` only compares.
 */
export async function recomputeTotals(
  db: Db,
  filter: { learnerId?: string; courseId?: string } = {},
  options: { write: boolean } = { write: true },
): Promise<RecomputeReport> {
  let q = db.selectFrom('tracking_tabs').select(['learner_id', 'course_id']).distinct();
  if (filter.learnerId) q = q.where('learner_id', '=', filter.learnerId);
  if (filter.courseId) q = q.where('course_id', '=', filter.courseId);
  const rows = await q.orderBy('learner_id').orderBy('course_id').execute();
  const byLearner = new Map<string, string[]>();
  for (const r of rows) byLearner.set(r.learner_id, [...(byLearner.get(r.learner_id) ?? []), r.course_id]);
  const report: RecomputeReport = { pairs: rows.length, differing: [] };
  for (const [learnerId, courseIds] of byLearner) {
    await db.transaction().execute(async (trx) => {
      await lockLearners(trx, [learnerId]);
      const stored = await loadTallies(
        trx,
        courseIds.map((courseId) => ({ learnerId, courseId })),
      );
      const writes: Array<{
        learnerId: string;
        courseId: string;
        tally: CourseTally;
        before: StoredTally['snapshot'] | null;
      }> = [];
      for (const courseId of courseIds) {
        const tally = tallyFromEvidence(await loadCourseEvidence(trx, learnerId, courseId));
        const before = stored.get(pairKey(learnerId, courseId))?.snapshot ?? null;
        // Only staff or course-team tabs: nothing is credited and no totals exist, by either path.
        if (Object.keys(tally.modules).length === 0 && before === null) continue;
        const after = serializeTotals(totalsRows(learnerId, courseId, { ...finalizeTally(tally), tally }));
        if (!sameTotals(before, after)) report.differing.push({ learnerId, courseId });
        writes.push({ learnerId, courseId, tally, before });
      }
      if (options.write) await writeTotals(trx, writes);
    });
  }
  return report;
}

function sameTotals(a: StoredTally['snapshot'] | null, b: StoredTally['snapshot']): boolean {
  if (!a) return false;
  const same = (x: Map<string, string>, y: Map<string, string>) =>
    x.size === y.size && [...x].every(([k, v]) => y.get(k) === v);
  return a.course === b.course && same(a.modules, b.modules) && same(a.days, b.days);
}

/**
 * Seals every run that can no longer grow, for learners with no recent beat to do it: their final state
 * enters the chain (run daily, before the digest).
 */
export async function sealStale(db: Db): Promise<number> {
  const candidates = await db
    .selectFrom('tracking_runs')
    .select('learner_id')
    .distinct()
    .where('sealed', '=', false)
    .where('last_beat_at', '<', sql<Date>`now() - interval '75 seconds'`)
    .execute();
  let sealed = 0;
  for (const { learner_id: learnerId } of candidates) {
    await db.transaction().execute(async (trx) => {
      const [learner] = await lockLearners(trx, [learnerId]);
      if (!learner) return;
      const now = await databaseNow(trx);
      const runs = await loadLiveRuns(trx, [learnerId], now);
      const tabs = await loadTabs(
        trx,
        [...runs.values()].map((r) => r.tabId),
        runs,
      );
      const work = newLearnerWork(learner);
      for (const [id, r] of runs) work.runs.set(id, r);
      for (const [id, t] of tabs) work.tabs.set(id, t);
      sealStaleRuns(work, now);
      const changed = [...work.runs.values()].filter((r) => r.changed);
      sealed += changed.length;
      await saveRuns(trx, changed);
      await insertEvents(trx, work.events);
      await saveLearners(trx, work.events.length ? [work] : []);
    });
  }
  return sealed;
}

export interface DigestResult {
  day: string;
  digest: string;
  learnerCount: number;
  eventCount: number;
  /** 'stored' the first time; 'same' when an earlier digest of that day matches; 'mismatch' = evidence changed. */
  status: 'stored' | 'same' | 'mismatch';
}

/** Chain heads of every learner at the end of a Paris day (the last record before the next midnight). */
async function headsAt(db: Db, day: string): Promise<Array<[string, number, string]>> {
  const end = nextParisMidnight(Date.parse(`${day}T12:00:00Z`));
  const { rows } = await sql<{ learner_id: string; chain_index: number; hash: string }>`
    select distinct on (learner_id) learner_id, chain_index, hash
    from tracking_events where server_time < ${new Date(end)}
    order by learner_id, chain_index desc`.execute(db);
  return rows.map((r) => [r.learner_id, Number(r.chain_index), r.hash]);
}

export function digestOf(day: string, heads: ReadonlyArray<[string, number, string]>): string {
  return sha256Hex(canonicalJson({ v: 1, day, heads: heads.map((h) => [...h]) }));
}

/** The daily digest of all chains: computed once per day and kept; computing it again checks it. */
export async function dailyDigest(db: Db, day: string): Promise<DigestResult> {
  const heads = await headsAt(db, day);
  const digest = digestOf(day, heads);
  const eventCount = heads.reduce((n, h) => n + h[1], 0);
  const inserted = await db
    .insertInto('tracking_digests')
    .values({ day, digest, learner_count: heads.length, event_count: eventCount, heads: JSON.stringify(heads) })
    .onConflict((oc) => oc.column('day').doNothing())
    .returning('day')
    .execute();
  let status: DigestResult['status'] = 'stored';
  if (inserted.length === 0) {
    const kept = await db
      .selectFrom('tracking_digests')
      .select('digest')
      .where('day', '=', day)
      .executeTakeFirstOrThrow();
    status = kept.digest === digest ? 'same' : 'mismatch';
  }
  return { day, digest, learnerCount: heads.length, eventCount, status };
}

export interface VerifyProblem {
  learnerId?: string;
  day?: string;
  problem: string;
}

/** Walks every chain, checks chain heads, sealed runs against their run_end record, and the kept digests. */
export async function verifyEvidence(db: Db, filter: { learnerId?: string } = {}): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  let lq = db.selectFrom('tracking_learners').selectAll();
  if (filter.learnerId) lq = lq.where('learner_id', '=', filter.learnerId);
  for (const learner of await lq.orderBy('learner_id').execute()) {
    const learnerId = learner.learner_id;
    const events = await db
      .selectFrom('tracking_events')
      .selectAll()
      .where('learner_id', '=', learnerId)
      .orderBy('chain_index')
      .execute();
    const broken = verifyChain(
      events.map((e) => ({
        record: {
          learnerId: e.learner_id,
          index: Number(e.chain_index),
          kind: e.kind,
          courseId: e.course_id,
          moduleId: e.module_id,
          tabId: e.tab_id,
          seq: e.seq,
          at: iso(e.server_time.getTime()),
          clientTime: e.client_time,
          reason: e.reason,
          data: e.data as EvidenceRecord['data'],
        },
        prevHash: e.prev_hash,
        hash: e.hash,
      })),
    );
    if (broken) problems.push({ learnerId, problem: `chain breaks at record ${broken.index} (${broken.problem})` });
    const last = events[events.length - 1];
    if (
      Number(learner.chain_length) !== events.length ||
      (last ? last.hash : learner.chain_head) !== learner.chain_head
    ) {
      problems.push({ learnerId, problem: 'chain head does not match the last record' });
    }
    const ends = new Map(
      events
        .filter((e) => e.kind === 'run_end')
        .map((e) => [(e.data as { runId: string }).runId, e.data as Record<string, unknown>]),
    );
    const runs = await db.selectFrom('tracking_runs').selectAll().where('learner_id', '=', learnerId).execute();
    for (const r of runs) {
      if (!r.sealed) continue;
      const end = ends.get(r.id);
      const expected = {
        runId: r.id,
        startAt: iso(r.started_at.getTime()),
        lastBeatAt: iso(r.last_beat_at.getTime()),
        beatCount: r.beat_count,
        firstSeq: r.first_seq,
        lastSeq: r.last_seq,
        rollingHash: r.rolling_hash,
      };
      if (!end || canonicalJson(end as never) !== canonicalJson(expected)) {
        problems.push({ learnerId, problem: `run ${r.id} differs from its sealed record` });
      }
    }
  }
  if (!filter.learnerId) {
    for (const d of await db.selectFrom('tracking_digests').selectAll().orderBy('day').execute()) {
      const heads = await headsAt(db, d.day);
      if (digestOf(d.day, heads) !== d.digest) problems.push({ day: d.day, problem: 'daily digest no longer matches' });
    }
  }
  return problems;
}

// ───────────────────────────── what people see ─────────────────────────────

export interface ModuleTime {
  moduleId: string;
  nominalMinutes: number;
  /** Credited (after the cap), whole seconds: what certificates and exports state. */
  creditedSeconds: number;
  /** Measured (union share attributed to this module, before the cap). */
  measuredSeconds: number;
  capSeconds: number;
  /** Measured above the cap: kept and flagged, not credited. */
  overCapSeconds: number;
  firstAt: Date | null;
  lastAt: Date | null;
  rejectedItems: number;
  flags: ModuleFlag[];
}

export interface LearnerTimes {
  learnerId: string;
  courseId: string;
  algorithm: string;
  /** The parameters the figures were computed with (crediting and run parameters). */
  params: Record<string, unknown>;
  creditedSeconds: number;
  measuredSeconds: number;
  rejectedItems: number;
  /** Europe/Paris days with more than 4 h measured. */
  longDays: string[];
  flags: ModuleFlag[];
  modules: ModuleTime[];
}

function emptyTimes(learnerId: string, courseId: string): LearnerTimes {
  return {
    learnerId,
    courseId,
    algorithm: ALGORITHM,
    params: { ...BEATS_V1, runProfiles: {} },
    creditedSeconds: 0,
    measuredSeconds: 0,
    rejectedItems: 0,
    longDays: [],
    flags: [],
    modules: [],
  };
}

async function timesOf(db: Db, filter: { learnerId?: string; courseId: string }): Promise<LearnerTimes[]> {
  const [courses, modules] = await Promise.all([selectCourseTotals(db, filter), selectModuleTotals(db, filter)]);
  const out = new Map<string, LearnerTimes>();
  for (const c of courses) {
    out.set(c.learner_id, {
      learnerId: c.learner_id,
      courseId: c.course_id,
      algorithm: c.algorithm,
      params: c.params,
      creditedSeconds: c.credited_seconds,
      measuredSeconds: c.measured_seconds,
      rejectedItems: c.rejected_items,
      longDays: c.long_days,
      flags: c.flags as ModuleFlag[],
      modules: [],
    });
  }
  for (const m of modules) {
    out.get(m.learner_id)?.modules.push({
      moduleId: m.module_id,
      nominalMinutes: m.nominal_minutes,
      creditedSeconds: m.credited_seconds,
      measuredSeconds: m.measured_seconds,
      capSeconds: m.cap_seconds,
      overCapSeconds: m.measured_seconds - m.credited_seconds,
      firstAt: m.first_at,
      lastAt: m.last_at,
      rejectedItems: m.rejected_items,
      flags: m.flags as ModuleFlag[],
    });
  }
  return [...out.values()];
}

/** One learner's credited time in one course, per module and in total (zero when nothing was recorded). */
export async function getLearnerTimes(db: Db, learnerId: string, courseId: string): Promise<LearnerTimes> {
  const [times] = await timesOf(db, { learnerId, courseId });
  return times ?? emptyTimes(learnerId, courseId);
}

/** Every learner's time in a course, per module, with flags: the course team's view. */
export async function getCourseTimes(db: Db, courseId: string): Promise<LearnerTimes[]> {
  return timesOf(db, { courseId });
}

export interface PresenceSessionWithDevices extends PresenceSession {
  /** Device classes of the tabs of this stretch (from their user agents). */
  devices: string[];
}

/**
 * Merged stretches of presence of a learner in a course (the exports' connection log): start, end, measured
 * time, modules visited, beats, tabs and devices.
 */
export async function getPresenceSessions(
  db: Db,
  learnerId: string,
  courseId: string,
): Promise<PresenceSessionWithDevices[]> {
  const [runs, tabs, focus] = await Promise.all([
    loadCourseRuns(db, learnerId, courseId),
    db
      .selectFrom('tracking_tabs')
      .select(['id', 'user_agent', 'role'])
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', courseId)
      .execute(),
    db
      .selectFrom('tracking_events')
      .select(['tab_id', 'data'])
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', courseId)
      .where('kind', '=', 'focus')
      .execute(),
  ]);
  const learnerTabs = new Map(tabs.filter((t) => t.role === 'learner').map((t) => [t.id, t]));
  const marks: FocusMark[] = focus.map((f) => ({
    tabId: f.tab_id as string,
    atMs: Date.parse((f.data as { focusAt: string }).focusAt),
  }));
  return presenceSessions(
    runs.filter((r) => learnerTabs.has(r.tabId)),
    marks,
  ).map((session) => ({
    ...session,
    devices: [...new Set(session.tabIds.map((id) => deviceClass(learnerTabs.get(id)?.user_agent ?? null)))].sort(),
  }));
}

/** A coarse device class from a user agent: enough for an auditor, no fingerprint. */
export function deviceClass(userAgent: string | null): 'mobile' | 'tablet' | 'desktop' | 'unknown' {
  if (!userAgent) return 'unknown';
  if (/iPad|Tablet|Android(?!.*Mobile)/i.test(userAgent)) return 'tablet';
  if (/Mobi|iPhone|Android/i.test(userAgent)) return 'mobile';
  return 'desktop';
}
