import { type Selectable, sql } from 'kysely';
import type { Civility, HeadcountBand, LearnerProfileTable, ProfileAuthorRole } from '../tables.js';
import type { Executor } from './executor.js';

/** learner_profiles. */

export interface ProfileRow {
  learnerId: string;
  civility: Civility;
  familyName: string;
  givenName: string;
  companyName: string;
  companySiret: string;
  headcountBand: HeadcountBand;
  idcc: string | null;
  fundSlug: string;
  fundName: string;
  branchName: string | null;
  /** The branch's own OPCA of 2017 when it was not its fund's (funds.json); null otherwise. */
  branchHistoricalName: string | null;
  createdAt: Date;
  updatedAt: Date;
  updatedBy: string | null;
  updatedByRole: ProfileAuthorRole;
}

/** A profile row with its fund's and its branch's names, as `findProfile` selects it. */
export type ProfileColumns = Selectable<LearnerProfileTable> & {
  fund_name: string;
  branch_name: string | null;
  branch_historical_name: string | null;
};

export async function findProfile(db: Executor, learnerId: string): Promise<ProfileRow | null> {
  const r = await db
    .selectFrom('learner_profiles as p')
    .innerJoin('funds as f', 'f.slug', 'p.fund_slug')
    .leftJoin('branches as b', 'b.idcc', 'p.idcc')
    .selectAll('p')
    .select(['f.name as fund_name', 'b.name as branch_name', 'b.historical_name as branch_historical_name'])
    .where('p.learner_id', '=', learnerId)
    .executeTakeFirst();
  return r ? profileFromRow(r) : null;
}

/** The columns `findProfile` selects (the profile, its fund's and its branch's names), as a `ProfileRow`. */
export function profileFromRow(r: ProfileColumns): ProfileRow {
  return {
    learnerId: r.learner_id,
    civility: r.civility,
    familyName: r.family_name,
    givenName: r.given_name,
    companyName: r.company_name,
    companySiret: r.company_siret,
    headcountBand: r.headcount_band,
    idcc: r.idcc,
    fundSlug: r.fund_slug,
    fundName: r.fund_name,
    branchName: r.branch_name,
    branchHistoricalName: r.branch_historical_name,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
    updatedByRole: r.updated_by_role,
  };
}

export async function upsertProfile(
  db: Executor,
  learnerId: string,
  p: {
    civility: Civility;
    familyName: string;
    givenName: string;
    companyName: string;
    siret: string;
    headcountBand: HeadcountBand;
    idcc: string | null;
    fundSlug: string;
  },
  author: { learnerId: string; role: ProfileAuthorRole },
): Promise<void> {
  const values = {
    civility: p.civility,
    family_name: p.familyName,
    given_name: p.givenName,
    company_name: p.companyName,
    company_siret: p.siret,
    headcount_band: p.headcountBand,
    idcc: p.idcc,
    fund_slug: p.fundSlug,
    updated_by: author.learnerId,
    updated_by_role: author.role,
  };
  await db
    .insertInto('learner_profiles')
    .values({ learner_id: learnerId, ...values })
    .onConflict((oc) => oc.column('learner_id').doUpdateSet({ ...values, updated_at: sql`now()` }))
    .execute();
}
