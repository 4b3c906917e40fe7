import { sql } from 'kysely';
import type { Executor } from './executor.js';
import type { LearnerIdentity } from './launch-context.js';
import { type ProfileColumns, type ProfileRow, profileFromRow } from './profiles.js';
import { CATALOG_STAMP_SQL } from './snapshot.js';

/** What a learner page reads before anything else, in one statement instead of three. */
export interface LearnerPageContext {
  /** The catalogue's version stamp (see `catalogSnapshot`). */
  stamp: string;
  /** The learner as the last launch recorded them (the onboarding form is prefilled with their names). */
  learner: LearnerIdentity | null;
  /** Their profile, as `findProfile` reads it; null until they filled in the onboarding form. */
  profile: ProfileRow | null;
}

/**
 * The context as one JSON value, from `learner` (a relation of at most one row: id, name, given_name,
 * family_name) and the profile with its fund and branch names. A profile counts only with its fund
 * (`findProfile` joins the fund the same way). One definition for both readers: `readLearnerPageContext`
 * and the launch's own statement (the `LaunchRead` of the catalogue's launch handler), where `learner` is the
 * row the launch has just upserted and the profile is as it was before the launch, which writes none.
 * Read back by `pageContextFromJson`.
 */
export const PAGE_CONTEXT_SQL = `json_build_object(
      'stamp', ${CATALOG_STAMP_SQL},
      'learner', (select json_build_object('id', id, 'name', name, 'given_name', given_name, 'family_name', family_name)
                  from learner),
      'profile', (select row_to_json(x) from (
                    select p.*, f.name as fund_name, b.name as branch_name, b.historical_name as branch_historical_name
                    from learner_profiles as p
                    join funds as f on f.slug = p.fund_slug
                    left join branches as b on b.idcc = p.idcc
                    where p.learner_id = (select id from learner)) as x))`;

/**
 * The catalogue's stamp, the learner and their profile in one round trip: every learner page needs the
 * three, and a statement costs the tool more than the rows it returns.
 */
export async function readLearnerPageContext(db: Executor, learnerId: string): Promise<LearnerPageContext> {
  const { rows } = await sql<{ context: unknown }>`
    with learner as (select id, name, given_name, family_name from learners where id = ${learnerId})
    select ${sql.raw(PAGE_CONTEXT_SQL)} as context`.execute(db);
  return pageContextFromJson(rows[0]?.context);
}

type ContextJson = {
  stamp: string;
  learner: { id: string; name: string | null; given_name: string | null; family_name: string | null } | null;
  profile: (Omit<ProfileColumns, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string }) | null;
};

/** `PAGE_CONTEXT_SQL`'s value as a `LearnerPageContext` (JSON has no dates: they are read back). */
export function pageContextFromJson(value: unknown): LearnerPageContext {
  const v = value as ContextJson | null;
  if (!v || typeof v.stamp !== 'string') throw new Error('no learner page context was read');
  const l = v.learner;
  const p = v.profile;
  return {
    stamp: v.stamp,
    learner: l ? { id: l.id, name: l.name, givenName: l.given_name, familyName: l.family_name } : null,
    profile: p
      ? profileFromRow({ ...p, created_at: new Date(p.created_at), updated_at: new Date(p.updated_at) })
      : null,
  };
}
