import { type Expression, expressionBuilder, type SqlBool } from 'kysely';
import type { Database } from '../db/index.js';

/**
 * `exists (a learner launch of this learner in this course)`, as a Kysely expression for queries over
 * `learners`: the learners who launched the tool as learners in a course session. Use it in `.where(…)`
 * of a query whose `from` includes the `learners` table.
 */
export function launchedAsLearnerIn(courseId: string): Expression<SqlBool> {
  const eb = expressionBuilder<Database, 'learners'>();
  return eb.exists(
    eb
      .selectFrom('lti_launches')
      .select('lti_launches.id')
      .whereRef('lti_launches.learner_id', '=', 'learners.id')
      .where('lti_launches.course_id', '=', courseId)
      .where('lti_launches.role', '=', 'learner'),
  );
}
