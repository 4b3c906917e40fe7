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

/** Platform URLs read during a request (by the launch's own statement), for that request's page. */
const readDuringRequest = new WeakMap<object, string[]>();

/**
 * Keeps, for the page `request` answers, the active registrations' issuers and authorization endpoints the
 * launch read in its statement: that page's frame policy then needs no statement of its own. Read during the
 * same request, they are as fresh as a read at the page's end.
 */
export function rememberPlatformUrls(request: object, urls: string[]): void {
  readDuringRequest.set(request, urls);
}

/**
 * The origins of the registered platforms (issuer and authorization endpoint of every registration not
 * removed), read at each call so that a registration added or removed anywhere applies at the next page:
 * the pages shown in the LMS iframe may be framed by these origins and by no other (CSP frame-ancestors).
 * For a request that already read them (a launch, see `rememberPlatformUrls`), those are used.
 */
export async function platformOrigins(db: Db, request?: object): Promise<string[]> {
  const known = request ? readDuringRequest.get(request) : undefined;
  const values =
    known ??
    (
      await db
        .selectFrom('lti_registrations')
        .select(['issuer', 'auth_login_url'])
        .where('removed_at', 'is', null)
        .execute()
    ).flatMap((r) => [r.issuer, r.auth_login_url]);
  return originsOf(values);
}

/** The origins of a list of URLs, by the list's text: the same registrations give the same list at every page. */
const originLists = new Map<string, string[]>();
function originsOf(values: readonly string[]): string[] {
  const key = values.join('\u0000');
  const known = originLists.get(key);
  if (known) return [...known];
  const origins = new Set<string>();
  for (const value of values) {
    try {
      const url = new URL(value);
      if (url.protocol === 'https:' || url.protocol === 'http:') origins.add(url.origin);
    } catch {
      // An issuer need not be a URL; it then names no origin.
    }
  }
  const list = [...origins].sort();
  if (originLists.size >= 64) originLists.clear();
  originLists.set(key, list);
  return [...list];
}
