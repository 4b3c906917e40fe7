import { sql } from 'kysely';
import type { App } from '../../src/app.js';
import type { Db } from '../../src/db/index.js';
import { DEFAULT_POLICY, type PrivacyDeps } from '../../src/privacy/index.js';
import { parisDay } from '../../src/tracking/index.js';
import { dailyDigest } from '../../src/tracking/service/maintenance.js';
import { makeFacts, type Person, useFacts } from '../certificates/helpers.js';
import { type TestClock, TestTab } from '../tracking/helpers.js';

export const DAY_MS = 86_400_000;

export function depsOf(app: App): PrivacyDeps {
  return { db: app.db, appSecret: app.config.appSecret, policy: DEFAULT_POLICY };
}

/** A learner's profile (the fund row is created if the content import did not). */
export async function addProfile(db: Db, learnerId: string, names: { given: string; family: string }) {
  await db
    .insertInto('funds')
    .values({ slug: 'akto', name: 'AKTO', sectors: JSON.stringify([]), position: 1, version: 1 })
    .onConflict((oc) => oc.column('slug').doNothing())
    .execute();
  await db
    .insertInto('learner_profiles')
    .values({
      learner_id: learnerId,
      civility: 'madame',
      family_name: names.family,
      given_name: names.given,
      company_name: 'Hôtel du Parc',
      company_siret: '73282932000074',
      headcount_band: '10-49',
      idcc: null,
      fund_slug: 'akto',
      updated_by_role: 'learner',
    })
    .execute();
}

/** A page open and three beats 30 s apart at the clock's time (the clock moves on). */
export async function someBeats(app: App, clock: TestClock, person: Person, courseId: string, moduleId = 'akto-coeur') {
  const tab = new TestTab(app, { learnerId: person.id, courseId, token: person.token, role: 'learner' }, moduleId);
  await tab.open();
  for (let i = 0; i < 3; i++) {
    clock.advance(30_000);
    await tab.beat();
  }
  clock.advance(60_000);
  return tab;
}

/** Issues the learner's certificate from test facts; returns its number. */
export async function issueCertificate(
  app: App,
  facts: ReturnType<typeof useFacts>,
  person: Person,
  courseId: string,
  names: { given: string; family: string } = { given: 'Éloïse', family: 'Lefèvre' },
): Promise<string> {
  facts.set(person.id, makeFacts(person.id, courseId, names));
  const issued = await app.certificates.issue({
    learnerId: person.id,
    courseId,
    kind: 'operator',
    by: null,
    reason: 'test de conservation',
  });
  return issued.number;
}

export async function digestToday(db: Db, at = Date.now()) {
  return dailyDigest(db, parisDay(at));
}

/** Runs `fn` inside a transaction that opens the privacy guards (to play a tampering, in tests only). */
export async function asPrivacy(db: Db, mode: 'purge' | 'redact' | 'erase', fn: (trx: Db) => Promise<unknown>) {
  await db.transaction().execute(async (trx) => {
    await sql`select set_config('emargement.privacy', ${mode}, true)`.execute(trx);
    await fn(trx as unknown as Db);
  });
}

export { makeFacts, useFacts };
