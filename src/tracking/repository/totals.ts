import { type Insertable, sql } from 'kysely';
import { largestRemainder } from '../../common/rounding.js';
import type { Database, Db } from '../../db/index.js';
import { type CourseCredit, type CourseTally, emptyTally, finalizeTally, msToSeconds } from '../rules.js';
import { date, ms, type Q } from './shared.js';

/** `time_totals`, `time_course_totals` and `time_day_totals` (migration 0004): the credited time. */

export interface StoredTally {
  tally: CourseTally;
  /** The algorithm the stored rows were computed with: rows of an older one are rebuilt, never added to. */
  algorithm: string;
  /** Serialized rows as loaded, to write only what changed. */
  snapshot: TotalsRows;
}

export interface TotalsRows {
  modules: Map<string, string>;
  days: Map<string, string>;
  course: string | null;
}

export type PairKey = `${string}|${string}`;
export const pairKey = (learnerId: string, courseId: string): PairKey => `${learnerId}|${courseId}`;

/** The stored tallies of these learner × course pairs (absent: never totalled). */
export async function loadTallies(
  trx: Q,
  pairs: ReadonlyArray<{ learnerId: string; courseId: string }>,
): Promise<Map<PairKey, StoredTally>> {
  const out = new Map<PairKey, StoredTally>();
  if (pairs.length === 0) return out;
  const learnerIds = [...new Set(pairs.map((p) => p.learnerId))];
  const wanted = new Set(pairs.map((p) => pairKey(p.learnerId, p.courseId)));
  const [courses, modules, days] = await Promise.all([
    trx.selectFrom('time_course_totals').selectAll().where('learner_id', 'in', learnerIds).execute(),
    trx.selectFrom('time_totals').selectAll().where('learner_id', 'in', learnerIds).execute(),
    trx.selectFrom('time_day_totals').selectAll().where('learner_id', 'in', learnerIds).execute(),
  ]);
  for (const c of courses) {
    const key = pairKey(c.learner_id, c.course_id);
    if (!wanted.has(key)) continue;
    const tally = emptyTally();
    tally.measuredMs = c.measured_ms;
    tally.profiles = Object.keys((c.params as { runProfiles?: Record<string, unknown> }).runProfiles ?? {}).sort();
    out.set(key, { tally, algorithm: c.algorithm, snapshot: { modules: new Map(), days: new Map(), course: null } });
  }
  for (const m of modules) {
    const stored = out.get(pairKey(m.learner_id, m.course_id));
    if (!stored) continue;
    stored.tally.modules[m.module_id] = {
      nominalMinutes: m.nominal_minutes,
      measuredMs: m.measured_ms,
      firstMs: ms(m.first_at),
      lastMs: ms(m.last_at),
      rejectedItems: m.rejected_items,
    };
  }
  for (const d of days) {
    const stored = out.get(pairKey(d.learner_id, d.course_id));
    if (!stored) continue;
    stored.tally.days[d.day] = { measuredMs: d.measured_ms, modules: d.modules };
  }
  for (const [key, stored] of out) {
    const [learnerId, courseId] = key.split('|') as [string, string];
    stored.snapshot = serializeTotals(totalsRows(learnerId, courseId, finalizeFor(stored.tally)));
  }
  return out;
}

export const finalizeFor = (tally: CourseTally): CourseCredit & { tally: CourseTally } => ({
  ...finalizeTally(tally),
  tally,
});

interface RowsOfPair {
  modules: Array<Insertable<Database['time_totals']>>;
  days: Array<Insertable<Database['time_day_totals']>>;
  course: Insertable<Database['time_course_totals']>;
}

function paramsOf(credit: CourseCredit, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...credit.params, ...extra, runProfiles: credit.runProfiles };
}

/** The rows that store a credit: per module, per Paris day, per course; algorithm and parameters beside each. */
export function totalsRows(
  learnerId: string,
  courseId: string,
  credit: CourseCredit & { tally: CourseTally },
): RowsOfPair {
  // Per-module seconds add up to the course's (largest remainder over the modules' milliseconds): every
  // figure printed from these rows sums to the total printed beside it (docs/time-accounting.md).
  const moduleSeconds = largestRemainder(
    credit.modules.map((m) => m.creditedMs),
    1000,
  );
  return {
    modules: credit.modules.map((m, i) => ({
      learner_id: learnerId,
      course_id: courseId,
      module_id: m.moduleId,
      nominal_minutes: m.nominalMinutes,
      measured_ms: m.measuredMs,
      credited_ms: m.creditedMs,
      measured_seconds: msToSeconds(m.measuredMs),
      credited_seconds: moduleSeconds[i] as number,
      cap_seconds: msToSeconds(m.capMs),
      first_at: date(m.firstMs),
      last_at: date(m.lastMs),
      rejected_items: m.rejectedItems,
      flags: JSON.stringify(m.flags),
      algorithm: credit.algorithm,
      params: JSON.stringify(paramsOf(credit, { nominalMinutes: m.nominalMinutes, capMs: m.capMs })),
    })),
    days: credit.days.map((d) => ({
      learner_id: learnerId,
      course_id: courseId,
      day: d.day,
      measured_ms: d.measuredMs,
      modules: JSON.stringify(d.modules),
      long_day: d.longDay,
    })),
    course: {
      learner_id: learnerId,
      course_id: courseId,
      measured_ms: credit.measuredMs,
      credited_ms: credit.creditedMs,
      measured_seconds: msToSeconds(credit.measuredMs),
      credited_seconds: msToSeconds(credit.creditedMs),
      rejected_items: credit.rejectedItems,
      long_days: JSON.stringify(credit.days.filter((d) => d.longDay).map((d) => d.day)),
      flags: JSON.stringify(credit.flags),
      algorithm: credit.algorithm,
      params: JSON.stringify(paramsOf(credit)),
    },
  };
}

export const stable = (row: object): string =>
  JSON.stringify(row, (_k, v) => (v instanceof Date ? v.toISOString() : v));

export function serializeTotals(rows: RowsOfPair): TotalsRows {
  return {
    modules: new Map(rows.modules.map((r) => [r.module_id, stable(r)])),
    days: new Map(rows.days.map((r) => [r.day, stable(r)])),
    course: stable(rows.course),
  };
}

/**
 * Writes, for every pair, the rows of its credit that differ from `before` (three bulk upserts for the whole
 * batch), and removes stored rows a credit no longer has. Returns how many pairs changed.
 */
export async function writeTotals(
  trx: Q,
  pairs: ReadonlyArray<{ learnerId: string; courseId: string; tally: CourseTally; before: TotalsRows | null }>,
): Promise<number> {
  const modules: RowsOfPair['modules'] = [];
  const days: RowsOfPair['days'] = [];
  const courses: Array<RowsOfPair['course']> = [];
  let changedPairs = 0;
  for (const { learnerId, courseId, tally, before } of pairs) {
    const rows = totalsRows(learnerId, courseId, finalizeFor(tally));
    const after = serializeTotals(rows);
    const m = rows.modules.filter((r) => before?.modules.get(r.module_id) !== after.modules.get(r.module_id));
    const d = rows.days.filter((r) => before?.days.get(r.day) !== after.days.get(r.day));
    const staleModules = before ? [...before.modules.keys()].filter((k) => !after.modules.has(k)) : [];
    const staleDays = before ? [...before.days.keys()].filter((k) => !after.days.has(k)) : [];
    const courseChanged = before?.course !== after.course;
    modules.push(...m);
    days.push(...d);
    if (courseChanged) courses.push(rows.course);
    if (m.length + d.length + staleModules.length + staleDays.length > 0 || courseChanged) changedPairs++;
    if (staleModules.length > 0) {
      await trx
        .deleteFrom('time_totals')
        .where('learner_id', '=', learnerId)
        .where('course_id', '=', courseId)
        .where('module_id', 'in', staleModules)
        .execute();
    }
    if (staleDays.length > 0) {
      await trx
        .deleteFrom('time_day_totals')
        .where('learner_id', '=', learnerId)
        .where('course_id', '=', courseId)
        .where('day', 'in', staleDays)
        .execute();
    }
  }
  if (modules.length > 0) {
    await trx
      .insertInto('time_totals')
      .values(modules)
      .onConflict((oc) =>
        oc.columns(['learner_id', 'course_id', 'module_id']).doUpdateSet((eb) => ({
          nominal_minutes: eb.ref('excluded.nominal_minutes'),
          measured_ms: eb.ref('excluded.measured_ms'),
          credited_ms: eb.ref('excluded.credited_ms'),
          measured_seconds: eb.ref('excluded.measured_seconds'),
          credited_seconds: eb.ref('excluded.credited_seconds'),
          cap_seconds: eb.ref('excluded.cap_seconds'),
          first_at: eb.ref('excluded.first_at'),
          last_at: eb.ref('excluded.last_at'),
          rejected_items: eb.ref('excluded.rejected_items'),
          flags: eb.ref('excluded.flags'),
          algorithm: eb.ref('excluded.algorithm'),
          params: eb.ref('excluded.params'),
          updated_at: sql`now()`,
        })),
      )
      .execute();
  }
  if (days.length > 0) {
    await trx
      .insertInto('time_day_totals')
      .values(days)
      .onConflict((oc) =>
        oc.columns(['learner_id', 'course_id', 'day']).doUpdateSet((eb) => ({
          measured_ms: eb.ref('excluded.measured_ms'),
          modules: eb.ref('excluded.modules'),
          long_day: eb.ref('excluded.long_day'),
        })),
      )
      .execute();
  }
  if (courses.length > 0) {
    await trx
      .insertInto('time_course_totals')
      .values(courses)
      .onConflict((oc) =>
        oc.columns(['learner_id', 'course_id']).doUpdateSet((eb) => ({
          measured_ms: eb.ref('excluded.measured_ms'),
          credited_ms: eb.ref('excluded.credited_ms'),
          measured_seconds: eb.ref('excluded.measured_seconds'),
          credited_seconds: eb.ref('excluded.credited_seconds'),
          rejected_items: eb.ref('excluded.rejected_items'),
          long_days: eb.ref('excluded.long_days'),
          flags: eb.ref('excluded.flags'),
          algorithm: eb.ref('excluded.algorithm'),
          params: eb.ref('excluded.params'),
          updated_at: sql`now()`,
        })),
      )
      .execute();
  }
  return changedPairs;
}

// ───────────────────────────── reads for pages, certificates, exports ─────────────────────────────

export async function selectModuleTotals(db: Db, filter: { learnerId?: string; courseId: string }) {
  let q = db.selectFrom('time_totals').selectAll().where('course_id', '=', filter.courseId);
  if (filter.learnerId) q = q.where('learner_id', '=', filter.learnerId);
  return q.orderBy('learner_id').orderBy('module_id').execute();
}

export async function selectCourseTotals(db: Db, filter: { learnerId?: string; courseId: string }) {
  let q = db.selectFrom('time_course_totals').selectAll().where('course_id', '=', filter.courseId);
  if (filter.learnerId) q = q.where('learner_id', '=', filter.learnerId);
  return q.orderBy('learner_id').execute();
}
