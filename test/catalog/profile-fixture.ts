import type { Db } from '../../src/db/index.js';

/** Stores an AKTO learner's profile straight in the table (as the onboarding form would): Léa Durand, IDCC 1979. */
export async function insertLearnerProfile(db: Db, learnerId: string): Promise<void> {
  await db
    .insertInto('learner_profiles')
    .values({
      learner_id: learnerId,
      civility: 'madame',
      family_name: 'Durand',
      given_name: 'Léa',
      company_name: 'Hôtel du Parc',
      company_siret: '73282932000074',
      headcount_band: '10-49',
      idcc: '1979',
      fund_slug: 'akto',
      updated_by_role: 'learner',
    })
    .execute();
}
