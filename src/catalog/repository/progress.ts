import { sql } from 'kysely';
import type { QuizAnswersRecord, Trunk } from '../tables.js';
import type { Executor } from './executor.js';

/** module_progress, and the completions other capabilities read. */

export interface ProgressRow {
  id: string;
  learnerId: string;
  courseId: string;
  moduleId: string;
  moduleVersion: number;
  resourceLinkId: string | null;
  fundSlug: string | null;
  blocksSeen: Record<string, string>;
  quiz: QuizAnswersRecord | null;
  startedAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

function toProgress(r: {
  id: string;
  learner_id: string;
  course_id: string;
  module_id: string;
  module_version: number;
  resource_link_id: string | null;
  fund_slug: string | null;
  blocks_seen: Record<string, string>;
  quiz_answers: QuizAnswersRecord | null;
  started_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}): ProgressRow {
  return {
    id: r.id,
    learnerId: r.learner_id,
    courseId: r.course_id,
    moduleId: r.module_id,
    moduleVersion: r.module_version,
    resourceLinkId: r.resource_link_id,
    fundSlug: r.fund_slug,
    blocksSeen: r.blocks_seen,
    quiz: r.quiz_answers,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    completedAt: r.completed_at,
  };
}

export async function findProgress(
  db: Executor,
  key: { learnerId: string; courseId: string; moduleId: string },
  options: { forUpdate?: boolean } = {},
): Promise<ProgressRow | null> {
  let q = db
    .selectFrom('module_progress')
    .selectAll()
    .where('learner_id', '=', key.learnerId)
    .where('course_id', '=', key.courseId)
    .where('module_id', '=', key.moduleId);
  if (options.forUpdate) q = q.forUpdate();
  const r = await q.executeTakeFirst();
  return r ? toProgress(r) : null;
}

/** The progress row of a module the learner opens; created at the module's current version the first time. */
export async function openProgress(
  db: Executor,
  key: { learnerId: string; courseId: string; moduleId: string },
  init: { moduleVersion: number; resourceLinkId: string | null; fundSlug: string | null },
): Promise<ProgressRow> {
  await db
    .insertInto('module_progress')
    .values({
      learner_id: key.learnerId,
      course_id: key.courseId,
      module_id: key.moduleId,
      module_version: init.moduleVersion,
      resource_link_id: init.resourceLinkId,
      fund_slug: init.fundSlug,
    })
    .onConflict((oc) => oc.columns(['learner_id', 'course_id', 'module_id']).doNothing())
    .execute();
  const row = await findProgress(db, key);
  if (!row) throw new Error('module_progress row vanished after insert');
  return row;
}

export async function saveProgress(
  db: Executor,
  id: string,
  update: { blocksSeen?: Record<string, string>; quiz?: QuizAnswersRecord; completedAt?: Date | null },
): Promise<ProgressRow> {
  const r = await db
    .updateTable('module_progress')
    .set({
      ...(update.blocksSeen ? { blocks_seen: JSON.stringify(update.blocksSeen) } : {}),
      ...(update.quiz ? { quiz_answers: JSON.stringify(update.quiz) } : {}),
      ...(update.completedAt ? { completed_at: update.completedAt } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toProgress(r);
}

export interface CompletionRow {
  learnerId: string;
  courseId: string;
  moduleId: string;
  moduleVersion: number;
  trackId: string;
  theme: string;
  trunk: Trunk;
  fundSlug: string | null;
  nominalMinutes: number;
  startedAt: Date;
  completedAt: Date | null;
}

export async function listProgress(
  db: Executor,
  filter: { learnerId?: string | undefined; courseId?: string | undefined; completedOnly?: boolean },
): Promise<CompletionRow[]> {
  let q = db
    .selectFrom('module_progress as p')
    .innerJoin('modules as m', 'm.id', 'p.module_id')
    .innerJoin('themes as t', (j) => j.onRef('t.track_id', '=', 'm.track_id').onRef('t.slug', '=', 'm.theme_slug'))
    .innerJoin('module_versions as v', (j) =>
      j.onRef('v.module_id', '=', 'p.module_id').onRef('v.version', '=', 'p.module_version'),
    )
    .select([
      'p.learner_id',
      'p.course_id',
      'p.module_id',
      'p.module_version',
      'm.track_id',
      'm.theme_slug',
      't.trunk',
      'p.fund_slug',
      sql<number>`(v.manifest->>'nominalMinutes')::int`.as('nominal_minutes'),
      'p.started_at',
      'p.completed_at',
    ])
    .orderBy('p.started_at');
  if (filter.learnerId !== undefined) q = q.where('p.learner_id', '=', filter.learnerId);
  if (filter.courseId !== undefined) q = q.where('p.course_id', '=', filter.courseId);
  if (filter.completedOnly) q = q.where('p.completed_at', 'is not', null);
  const rows = await q.execute();
  return rows.map((r) => ({
    learnerId: r.learner_id,
    courseId: r.course_id,
    moduleId: r.module_id,
    moduleVersion: r.module_version,
    trackId: r.track_id,
    theme: r.theme_slug,
    trunk: r.trunk,
    fundSlug: r.fund_slug,
    nominalMinutes: Number(r.nominal_minutes),
    startedAt: r.started_at,
    completedAt: r.completed_at,
  }));
}
