import type { CourseEvidence, NewEvent } from '../engine.js';
import type { FocusMark, RunInterval } from '../rules.js';
import { v2Interval } from './runs.js';
import type { Q } from './shared.js';
import { type PairKey, pairKey } from './totals.js';

/**
 * `tracking_events`, the hash-chained records: appended outside the ingest (sealing), and read for crediting
 * with the runs and tabs they describe.
 */

/** Everything crediting reads about one learner in one course (the slow path and `time recompute`). */
export async function loadCourseEvidence(trx: Q, learnerId: string, courseId: string): Promise<CourseEvidence> {
  const [tabs, runs, focus, rejected] = await Promise.all([
    trx
      .selectFrom('tracking_tabs')
      .select(['id', 'module_id', 'nominal_minutes', 'role', 'profile'])
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', courseId)
      .execute(),
    loadCourseRuns(trx, learnerId, courseId),
    trx
      .selectFrom('tracking_events')
      .select(['tab_id', 'data'])
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', courseId)
      .where('kind', '=', 'focus')
      .execute(),
    trx
      .selectFrom('tracking_events')
      .select(['tab_id'])
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', courseId)
      .where('kind', '=', 'rejected')
      .execute(),
  ]);
  return {
    tabs: tabs.map((t) => ({
      tabId: t.id,
      moduleId: t.module_id,
      nominalMinutes: t.nominal_minutes,
      role: t.role,
      profile: t.profile,
    })),
    runs,
    focus: focus.map(
      (f): FocusMark => ({ tabId: f.tab_id as string, atMs: Date.parse((f.data as { focusAt: string }).focusAt) }),
    ),
    rejected: rejected.map((r) => ({ tabId: r.tab_id as string })),
  };
}

/**
 * `loadCourseEvidence` for many learner × course pairs in four statements (the consumer's slow path: a
 * slice of page opens rebuilds many courses at once). Same rows, keyed by `pairKey`.
 */
export async function loadCoursesEvidence(
  trx: Q,
  pairs: ReadonlyArray<{ learnerId: string; courseId: string }>,
): Promise<Map<PairKey, CourseEvidence>> {
  const out = new Map<PairKey, CourseEvidence>();
  if (pairs.length === 0) return out;
  for (const p of pairs) out.set(pairKey(p.learnerId, p.courseId), { tabs: [], runs: [], focus: [], rejected: [] });
  const learners = [...new Set(pairs.map((p) => p.learnerId))];
  const courses = [...new Set(pairs.map((p) => p.courseId))];
  const of = (learnerId: string, courseId: string) =>
    out.get(pairKey(learnerId, courseId)) as
      | { tabs: unknown[]; runs: unknown[]; focus: unknown[]; rejected: unknown[] }
      | undefined;
  const [tabs, runs, events] = await Promise.all([
    trx
      .selectFrom('tracking_tabs')
      .select(['learner_id', 'course_id', 'id', 'module_id', 'nominal_minutes', 'role', 'profile'])
      .where('learner_id', 'in', learners)
      .where('course_id', 'in', courses)
      .execute(),
    trx
      .selectFrom('tracking_runs')
      .select(['learner_id', 'course_id', ...RUN_INTERVAL_COLUMNS])
      .where('learner_id', 'in', learners)
      .where('course_id', 'in', courses)
      .execute(),
    trx
      .selectFrom('tracking_events')
      .select(['learner_id', 'course_id', 'kind', 'tab_id', 'data'])
      .where('learner_id', 'in', learners)
      .where('course_id', 'in', courses)
      .where('kind', 'in', ['focus', 'rejected'])
      .execute(),
  ]);
  for (const t of tabs) {
    of(t.learner_id, t.course_id)?.tabs.push({
      tabId: t.id,
      moduleId: t.module_id,
      nominalMinutes: t.nominal_minutes,
      role: t.role,
      profile: t.profile,
    });
  }
  for (const r of runs) {
    of(r.learner_id, r.course_id)?.runs.push(runInterval(r));
  }
  for (const e of events) {
    const target = of(e.learner_id, e.course_id as string);
    if (!target) continue;
    if (e.kind === 'focus') {
      target.focus.push({ tabId: e.tab_id as string, atMs: Date.parse((e.data as { focusAt: string }).focusAt) });
    } else target.rejected.push({ tabId: e.tab_id as string });
  }
  return out;
}

/** The columns of a run the crediting reads, and the interval it makes of them. */
const RUN_INTERVAL_COLUMNS = [
  'id',
  'tab_id',
  'module_id',
  'started_at',
  'last_beat_at',
  'beat_count',
  'stop_cause',
  'stop_at',
  'before_stop_at',
] as const;

function runInterval(r: {
  id: string;
  tab_id: string;
  module_id: string;
  started_at: Date;
  last_beat_at: Date;
  beat_count: number;
  stop_cause: string | null;
  stop_at: Date | null;
  before_stop_at: Date | null;
}): RunInterval {
  return {
    runId: r.id,
    tabId: r.tab_id,
    moduleId: r.module_id,
    startMs: r.started_at.getTime(),
    endMs: r.last_beat_at.getTime(),
    beatCount: r.beat_count,
    ...v2Interval(r),
  };
}

export async function loadCourseRuns(trx: Q, learnerId: string, courseId: string): Promise<RunInterval[]> {
  const rows = await trx
    .selectFrom('tracking_runs')
    .select(RUN_INTERVAL_COLUMNS)
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .execute();
  return rows.map(runInterval);
}

export async function insertEvents(trx: Q, events: readonly NewEvent[]): Promise<void> {
  // Chunks keep each statement under PostgreSQL's 65 535 parameters.
  for (let i = 0; i < events.length; i += 2000) {
    await trx
      .insertInto('tracking_events')
      .values(
        events.slice(i, i + 2000).map((e) => ({
          learner_id: e.learnerId,
          chain_index: e.index,
          kind: e.kind,
          course_id: e.courseId,
          module_id: e.moduleId,
          tab_id: e.tabId,
          seq: e.seq,
          server_time: new Date(e.atMs),
          client_time: e.clientTime,
          reason: e.reason,
          data: JSON.stringify(e.data),
          prev_hash: e.prevHash,
          hash: e.hash,
        })),
      )
      .execute();
  }
}
