import { sql } from 'kysely';
import type { Db } from '../../db/index.js';
import { settleTracking } from '../inbox/crediting.js';
import { loadCourseRuns } from '../repository/evidence.js';
import { selectCourseTotals, selectModuleTotals } from '../repository/totals.js';
import {
  ALGORITHM,
  BEATS_V2,
  type FocusMark,
  isRegularRun,
  type ModuleFlag,
  PLAUSIBILITY,
  type PresenceSession,
  presenceSessions,
} from '../rules.js';

/** What people see: the credited time per learner and module, presence sessions, device classes. */

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
    params: { ...BEATS_V2, runProfiles: {} },
    creditedSeconds: 0,
    measuredSeconds: 0,
    rejectedItems: 0,
    longDays: [],
    flags: [],
    modules: [],
  };
}

async function timesOf(db: Db, filter: { learnerId?: string; courseId: string }): Promise<LearnerTimes[]> {
  // Read-your-writes: what was acknowledged is credited before it is shown.
  await settleTracking(db, filter);
  const [courses, modules, regular] = await Promise.all([
    selectCourseTotals(db, filter),
    selectModuleTotals(db, filter),
    regularRuns(db, filter),
  ]);
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
  // Plausibility (docs/time-accounting.md): a run that looks scripted is flagged for review, never refused.
  for (const r of regular) {
    const times = out.get(r.learner_id);
    const module = times?.modules.find((m) => m.moduleId === r.module_id);
    if (!times || !module) continue;
    if (!module.flags.includes('regular_beats')) module.flags = [...module.flags, 'regular_beats'];
    if (!times.flags.includes('regular_beats')) times.flags = [...times.flags, 'regular_beats'];
  }
  return [...out.values()];
}

/** Learner runs longer than an hour whose beats look scripted (`isRegularRun`). */
async function regularRuns(db: Db, filter: { learnerId?: string; courseId: string }) {
  let q = db
    .selectFrom('tracking_runs as r')
    .innerJoin('tracking_tabs as t', 't.id', 'r.tab_id')
    .select([
      'r.learner_id',
      'r.module_id',
      'r.started_at',
      'r.last_beat_at',
      'r.beat_count',
      'r.min_step_ms',
      'r.max_step_ms',
      'r.input_beats',
    ])
    .where('r.course_id', '=', filter.courseId)
    .where('t.role', '=', 'learner')
    .where('r.input_beats', '=', 0)
    .where(sql<boolean>`r.last_beat_at - r.started_at > ${PLAUSIBILITY.regularRunMs} * interval '1 millisecond'`);
  if (filter.learnerId) q = q.where('r.learner_id', '=', filter.learnerId);
  const rows = await q.execute();
  return rows.filter((r) =>
    isRegularRun({
      startMs: r.started_at.getTime(),
      endMs: r.last_beat_at.getTime(),
      beatCount: r.beat_count,
      minStepMs: r.min_step_ms,
      maxStepMs: r.max_step_ms,
      inputBeats: r.input_beats,
    }),
  );
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
  await settleTracking(db, { learnerId, courseId });
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
