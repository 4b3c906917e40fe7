import { sql } from 'kysely';
import type { Executor } from './executor.js';
import type { LearnerIdentity } from './launch-context.js';
import { type ProfileColumns, type ProfileRow, profileFromRow } from './profiles.js';
import { CATALOG_STAMP_SQL, catalogStampSql } from './snapshot.js';

/** What a learner page reads before anything else, in one statement instead of three. */
export interface LearnerPageContext {
  /** The catalogue's version stamp (see `catalogSnapshot`). */
  stamp: string;
  /** The learner as the last launch recorded them (the onboarding form is prefilled with their names). */
  learner: LearnerIdentity | null;
  /** Their profile, as `findProfile` reads it; null until they filled in the onboarding form. */
  profile: ProfileRow | null;
}

/** The statement's one row: the learner's columns prefixed `l_`; the profile's all null without a profile. */
type ContextRow = {
  stamp: string;
  l_id: string | null;
  l_name: string | null;
  l_given_name: string | null;
  l_family_name: string | null;
} & { [K in keyof ProfileColumns]: ProfileColumns[K] | null };

/**
 * The catalogue's stamp, the learner and their profile in one round trip: every learner page needs the
 * three, and the launch page is the hot path (a statement costs the tool more than the rows it returns).
 * The profile counts only with its fund (`findProfile` joins the fund the same way).
 */
export async function readLearnerPageContext(db: Executor, learnerId: string): Promise<LearnerPageContext> {
  const { rows } = await sql<ContextRow>`
    select ${catalogStampSql} as stamp,
      l.id as l_id, l.name as l_name, l.given_name as l_given_name, l.family_name as l_family_name,
      p.*, f.name as fund_name, b.name as branch_name, b.historical_name as branch_historical_name
    from (select 1) as one
    left join learners as l on l.id = ${learnerId}
    left join (learner_profiles as p join funds as f on f.slug = p.fund_slug) on p.learner_id = ${learnerId}
    left join branches as b on b.idcc = p.idcc`.execute(db);
  const r = rows[0];
  if (!r) throw new Error('the learner page context statement returned no row');
  const learner =
    r.l_id === null ? null : { id: r.l_id, name: r.l_name, givenName: r.l_given_name, familyName: r.l_family_name };
  // The profile joins its fund inside the outer join: a profile without its fund reads as none, as in findProfile.
  const profile = r.learner_id === null ? null : profileFromRow(r as ProfileColumns);
  return { stamp: r.stamp, learner, profile };
}

/**
 * The same context, read by the launch's own statement (the `LaunchRead` of the catalogue's launch handler):
 * one JSON value built after the launch recorded the learner, from `learner` (that row: id and the names as
 * the launch left them) and the profile and its fund and branch as they were before the launch — a launch
 * writes neither. Read back by `pageContextFromLaunch`.
 */
export const LAUNCH_PAGE_CONTEXT_SQL = `json_build_object(
      'stamp', ${CATALOG_STAMP_SQL},
      'learner', (select json_build_object('id', id, 'name', name, 'given_name', given_name, 'family_name', family_name)
                  from learner),
      'profile', (select row_to_json(x) from (
                    select p.*, f.name as fund_name, b.name as branch_name, b.historical_name as branch_historical_name
                    from learner_profiles as p
                    join funds as f on f.slug = p.fund_slug
                    left join branches as b on b.idcc = p.idcc
                    where p.learner_id = (select id from learner)) as x))`;

type LaunchContextJson = {
  stamp: string;
  learner: { id: string; name: string | null; given_name: string | null; family_name: string | null } | null;
  profile: (Omit<ProfileColumns, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string }) | null;
};

/** `LAUNCH_PAGE_CONTEXT_SQL`'s value as `readLearnerPageContext` returns it (JSON has no dates: they are read back). */
export function pageContextFromLaunch(value: unknown): LearnerPageContext {
  const v = value as LaunchContextJson | null;
  if (!v || typeof v.stamp !== 'string') throw new Error('the launch returned no learner page context');
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
