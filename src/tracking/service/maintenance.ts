import { sql } from 'kysely';
import type { Db } from '../../db/index.js';
import {
  canonicalJson,
  type EvidenceRecord,
  redactionStatement,
  sha256Hex,
  verifyChain,
  verifyEd25519,
} from '../chain.js';
import { type CourseEvidence, iso, newLearnerWork, sealStaleRuns, tallyFromEvidence } from '../engine.js';
import { settleTracking } from '../inbox/crediting.js';
import { insertEvents, loadCourseEvidence } from '../repository/evidence.js';
import { databaseNow, lockLearners, saveLearners } from '../repository/learners.js';
import { loadLiveRuns, loadTabs, saveRuns } from '../repository/runs.js';
import {
  loadTallies,
  pairKey,
  type StoredTally,
  serializeTotals,
  totalsRows,
  writeTotals,
} from '../repository/totals.js';
import {
  ALGORITHM,
  type Algorithm,
  type CourseTally,
  digestDaysDue,
  finalizeTally,
  nextParisMidnight,
  PARAMS,
  parisDay,
} from '../rules.js';

/** Keeping the evidence and the totals right: recompute, seal stale runs, the daily digest, verification. */

export interface RecomputeReport {
  pairs: number;
  /** Pairs whose stored totals differed from the evidence (rewritten unless checking). */
  differing: Array<{ learnerId: string; courseId: string }>;
}

/**
 * Rebuilds totals from evidence alone (runs, tabs, focus marks, rejected items) under each learner's lock.
 * `write: false` only compares. Totals are kept under the current algorithm only (the ingest adds to them):
 * another `algorithm` can be computed and compared, never written.
 */
export async function recomputeTotals(
  db: Db,
  filter: { learnerId?: string; courseId?: string } = {},
  options: { write: boolean; algorithm?: Algorithm } = { write: true },
): Promise<RecomputeReport> {
  const algorithm = options.algorithm ?? ALGORITHM;
  if (options.write && algorithm !== ALGORITHM) {
    throw new Error(`totals are kept under ${ALGORITHM}; ${algorithm} can be compared (--check), not written`);
  }
  await settleTracking(db, filter);
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
        const tally = tallyFromEvidence(await loadCourseEvidence(trx, learnerId, courseId), algorithm);
        const before = stored.get(pairKey(learnerId, courseId))?.snapshot ?? null;
        // Only staff or course-team tabs: nothing is credited and no totals exist, by either path.
        if (Object.keys(tally.modules).length === 0 && before === null) continue;
        const credit = { ...finalizeTally(tally, PARAMS[algorithm]), tally };
        const after = serializeTotals(totalsRows(learnerId, courseId, credit));
        if (!sameTotals(before, after)) report.differing.push({ learnerId, courseId });
        writes.push({ learnerId, courseId, tally, before });
      }
      if (options.write) await writeTotals(trx, writes);
    });
  }
  return report;
}

export interface VersionDiff {
  learnerId: string;
  courseId: string;
  v1Seconds: number;
  v2Seconds: number;
  /** v2 − v1, seconds (negative: v1 credited more). */
  differenceSeconds: number;
  /**
   * Stop beats beats-v1 refused for spacing (kept as evidence): on evidence recorded before beats-v2, each one
   * is time v1 may have bridged that no kept record can measure (see docs/time-accounting.md, "Migration").
   */
  stopsRefusedByV1: number;
}

/**
 * Credits every learner × course under beats-v1 and beats-v2 from the same evidence and lists the pairs whose
 * credited totals differ (to the second), and those with stop beats v1 refused. Reads only.
 */
export async function diffVersions(
  db: Db,
  filter: { learnerId?: string; courseId?: string } = {},
): Promise<VersionDiff[]> {
  await settleTracking(db, filter);
  let q = db.selectFrom('tracking_tabs').select(['learner_id', 'course_id']).distinct();
  if (filter.learnerId) q = q.where('learner_id', '=', filter.learnerId);
  if (filter.courseId) q = q.where('course_id', '=', filter.courseId);
  const pairs = await q.orderBy('learner_id').orderBy('course_id').execute();
  const out: VersionDiff[] = [];
  for (const { learner_id: learnerId, course_id: courseId } of pairs) {
    const evidence: CourseEvidence = await loadCourseEvidence(db, learnerId, courseId);
    const seconds = (algorithm: Algorithm) =>
      msToSecondsOf(finalizeTally(tallyFromEvidence(evidence, algorithm), PARAMS[algorithm]).creditedMs);
    const v1Seconds = seconds('beats-v1');
    const v2Seconds = seconds('beats-v2');
    const learnerTabs = new Set(evidence.tabs.filter((t) => t.role === 'learner').map((t) => t.tabId));
    const refused = await db
      .selectFrom('tracking_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', courseId)
      .where('kind', '=', 'rejected')
      .where('reason', '=', 'too_frequent')
      .where(sql<boolean>`data->>'cause' in ('hidden', 'idle', 'pagehide')`)
      .where('tab_id', 'in', learnerTabs.size > 0 ? [...learnerTabs] : ['00000000-0000-0000-0000-000000000000'])
      .executeTakeFirst();
    const stopsRefusedByV1 = Number(refused?.n ?? 0);
    if (v1Seconds !== v2Seconds || stopsRefusedByV1 > 0) {
      out.push({
        learnerId,
        courseId,
        v1Seconds,
        v2Seconds,
        differenceSeconds: v2Seconds - v1Seconds,
        stopsRefusedByV1,
      });
    }
  }
  return out;
}

const msToSecondsOf = (ms: number): number => Math.floor(ms / 1000);

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
  await settleTracking(db);
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
  await settleTracking(db);
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

/**
 * The digests due (`digestDaysDue`: yesterday, and the days missed since the last kept one), after sealing
 * as `time digest` does. Safe in several instances at once: a day is stored once, and a second instance
 * computing the same day gets 'same' — or 'mismatch' if the evidence of that day changed.
 */
export async function digestsDue(db: Db, now = Date.now()): Promise<{ sealed: number; digests: DigestResult[] }> {
  const last = await db
    .selectFrom('tracking_digests')
    .select((eb) => eb.fn.max('day').as('day'))
    .executeTakeFirst();
  const days = digestDaysDue(last?.day ?? null, now);
  if (days.length === 0) return { sealed: 0, digests: [] };
  const sealed = await sealStale(db);
  const digests: DigestResult[] = [];
  for (const day of days) digests.push(await dailyDigest(db, day));
  return { sealed, digests };
}

export interface VerifyProblem {
  learnerId?: string;
  day?: string;
  problem: string;
}

/** Walks every chain, checks chain heads, sealed runs against their run_end record, and the kept digests. */
export async function verifyEvidence(db: Db, filter: { learnerId?: string } = {}): Promise<VerifyProblem[]> {
  await settleTracking(db, filter);
  const problems: VerifyProblem[] = [];
  // Signed redactions (docs/privacy.md) are checked with the certificate keys they name.
  const keys = new Map(
    (await db.selectFrom('certificate_signing_keys').select(['kid', 'public_jwk']).execute()).map((k) => [
      k.kid,
      k.public_jwk,
    ]),
  );
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
    const redactions = new Map(
      (await db.selectFrom('tracking_event_redactions').selectAll().where('learner_id', '=', learnerId).execute()).map(
        (r) => [Number(r.chain_index), r],
      ),
    );
    const attested = (r: { record: EvidenceRecord; prevHash: string; hash: string }): boolean => {
      const redaction = redactions.get(r.record.index);
      const jwk = redaction && keys.get(redaction.kid);
      if (!redaction || !jwk) return false;
      const statement = redactionStatement({
        learnerId,
        index: r.record.index,
        prevHash: r.prevHash,
        hash: r.hash,
        record: r.record,
        rule: redaction.rule,
        redactedAt: redaction.redacted_at.toISOString(),
      });
      return verifyEd25519(jwk, statement, redaction.signature);
    };
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
      attested,
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
        // beats-v2 fields: in every record sealed since, and compared whenever the row holds any of them,
        // so that adding a stop to a run sealed before beats-v2 is detected too.
        ...(end && 'stopCause' in end
          ? v2Record(r)
          : r.stop_cause !== null || r.min_step_ms !== null || r.input_beats !== 0
            ? v2Record(r)
            : {}),
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
    // Acknowledged items that were never credited: journal rows PostgreSQL could not read.
    const quarantined = await db.selectFrom('tracking_journal_quarantine').selectAll().orderBy('id').execute();
    for (const q of quarantined) {
      problems.push({
        day: parisDay(q.received_at.getTime()),
        problem: `journal row ${q.journal_id} (${q.item_count} acknowledged items) set aside unread, not credited: ${q.error}`,
      });
    }
  }
  return problems;
}

function v2Record(r: {
  stop_cause: string | null;
  stop_at: Date | null;
  before_stop_at: Date | null;
  min_step_ms: number | null;
  max_step_ms: number | null;
  input_beats: number;
}) {
  return {
    stopCause: r.stop_cause,
    stopAt: r.stop_at ? iso(r.stop_at.getTime()) : null,
    beforeStopAt: r.before_stop_at ? iso(r.before_stop_at.getTime()) : null,
    minStepMs: r.min_step_ms,
    maxStepMs: r.max_step_ms,
    inputBeats: r.input_beats,
  };
}
