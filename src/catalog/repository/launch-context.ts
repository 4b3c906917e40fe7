import { launchedAsLearnerIn } from '../../lti/index.js';
import type { Executor } from './executor.js';

/** Tables of the LTI capability (launches, learners, courses), read only. */

/** The custom parameters of a learner's latest launch of a resource link. */
export async function findLinkCustom(
  db: Executor,
  learnerId: string,
  resourceLinkId: string,
): Promise<Record<string, string> | null> {
  const r = await db
    .selectFrom('lti_launches')
    .select('custom')
    .where('learner_id', '=', learnerId)
    .where('resource_link_id', '=', resourceLinkId)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return r ? r.custom : null;
}

export async function findLaunchCustom(db: Executor, launchId: string): Promise<Record<string, string> | null> {
  const r = await db.selectFrom('lti_launches').select('custom').where('id', '=', launchId).executeTakeFirst();
  return r ? r.custom : null;
}

export interface LearnerIdentity {
  id: string;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
}

export async function findLearner(db: Executor, learnerId: string): Promise<LearnerIdentity | null> {
  const r = await db
    .selectFrom('learners')
    .select(['id', 'name', 'given_name', 'family_name'])
    .where('id', '=', learnerId)
    .executeTakeFirst();
  return r ? { id: r.id, name: r.name, givenName: r.given_name, familyName: r.family_name } : null;
}

export async function findCourse(
  db: Executor,
  courseId: string,
): Promise<{ id: string; title: string | null; label: string | null } | null> {
  const r = await db
    .selectFrom('courses')
    .select(['id', 'title', 'label'])
    .where('id', '=', courseId)
    .executeTakeFirst();
  return r ?? null;
}

/** A learner "of a course": launched something in it, or has progress in it. */
export async function isLearnerOfCourse(db: Executor, learnerId: string, courseId: string): Promise<boolean> {
  const r = await db
    .selectFrom('lti_launches')
    .select('id')
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .where('role', '=', 'learner')
    .limit(1)
    .executeTakeFirst();
  return r !== undefined;
}

export interface CourseLearnerRow {
  learnerId: string;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  profile: { givenName: string; familyName: string; companyName: string; fundName: string } | null;
  started: number;
  completed: number;
}

export async function listCourseLearners(db: Executor, courseId: string): Promise<CourseLearnerRow[]> {
  const rows = await db
    .selectFrom('learners')
    .leftJoin('learner_profiles', 'learner_profiles.learner_id', 'learners.id')
    .leftJoin('funds', 'funds.slug', 'learner_profiles.fund_slug')
    .select((eb) => [
      'learners.id',
      'learners.name',
      'learners.given_name',
      'learners.family_name',
      'learner_profiles.given_name as p_given_name',
      'learner_profiles.family_name as p_family_name',
      'learner_profiles.company_name',
      'funds.name as fund_name',
      eb
        .selectFrom('module_progress')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('module_progress.learner_id', '=', 'learners.id')
        .where('module_progress.course_id', '=', courseId)
        .as('started'),
      eb
        .selectFrom('module_progress')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('module_progress.learner_id', '=', 'learners.id')
        .where('module_progress.course_id', '=', courseId)
        .where('module_progress.completed_at', 'is not', null)
        .as('completed'),
    ])
    .where(launchedAsLearnerIn(courseId))
    .orderBy('learner_profiles.family_name')
    .orderBy('learners.name')
    .execute();
  return rows.map((r) => ({
    learnerId: r.id,
    name: r.name,
    givenName: r.given_name,
    familyName: r.family_name,
    profile:
      r.company_name !== null && r.p_given_name !== null && r.p_family_name !== null
        ? {
            givenName: r.p_given_name,
            familyName: r.p_family_name,
            companyName: r.company_name,
            fundName: r.fund_name ?? '',
          }
        : null,
    started: Number(r.started ?? 0),
    completed: Number(r.completed ?? 0),
  }));
}
