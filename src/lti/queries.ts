import { type Expression, expressionBuilder, type SqlBool } from 'kysely';
import type { Database, Db } from '../db/index.js';

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

/**
 * The origins of the registered platforms (issuer and authorization endpoint of every registration not
 * removed), read at each call so that a registration added or removed anywhere applies at the next page:
 * the pages shown in the LMS iframe may be framed by these origins and by no other (CSP frame-ancestors).
 */
export async function platformOrigins(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('lti_registrations')
    .select(['issuer', 'auth_login_url'])
    .where('removed_at', 'is', null)
    .execute();
  const origins = new Set<string>();
  for (const value of rows.flatMap((r) => [r.issuer, r.auth_login_url])) {
    try {
      const url = new URL(value);
      if (url.protocol === 'https:' || url.protocol === 'http:') origins.add(url.origin);
    } catch {
      // An issuer need not be a URL; it then names no origin.
    }
  }
  return [...origins].sort();
}
