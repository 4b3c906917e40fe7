import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../db/index.js';
import { confirmedNames, currentNumber, declaredNames } from './repository.js';
import { fileNumberRoutes } from './routes.js';
import { checkCompanySiret, companyNameKey, fileNumberApplies } from './rules.js';

/**
 * OPCO file numbers (« numéro de dossier de prise en charge »): one per fund × course session × company
 * SIRET, kept by fund staff (their fund) and operators in the portal (/portal/dossiers) and the API
 * (/api/v1/file-numbers). Certificates print the number at issue time and are reissued when it changes;
 * the summary export shows the current one. The only file other capabilities import from here.
 */

/**
 * The portal page and the API. Its API joins the description at /docs (src/exports, registered first);
 * changes reissue certificates (the `certificates` decoration).
 */
export const fileNumbersPlugin = fp(
  async function fileNumbers(app: FastifyInstance): Promise<void> {
    await app.register(fileNumberRoutes);
  },
  { name: 'file-numbers', dependencies: ['certificates', 'exports'], fastify: '5.x' },
);

export { checkCompanySiret, checkFileNumber, parseImport } from './rules.js';
export type { FileNumbersTables } from './tables.js';

/** The current number for a learner's company (SIRET as typed: spaces allowed), or null. */
export async function fileNumberFor(
  db: Db,
  key: { fundSlug: string; courseId: string; siret: string },
): Promise<string | null> {
  const siret = checkCompanySiret(key.siret);
  if (!siret.ok) return null;
  return currentNumber(db, { ...key, siret: siret.value });
}

/**
 * The number for one learner's certificate: it applies only when the fund confirmed the company name this
 * learner declared, or, while none is confirmed, when every learner of that SIRET declared the same name
 * (src/file-numbers/rules.ts, fileNumberApplies). Otherwise `toConfirm`: the certificate says so.
 */
export async function fileNumberForLearner(
  db: Db,
  key: { fundSlug: string; courseId: string; siret: string; companyName: string },
): Promise<{ fileNumber: string | null; toConfirm: boolean }> {
  const siret = checkCompanySiret(key.siret);
  if (!siret.ok) return { fileNumber: null, toConfirm: false };
  const scoped = { fundSlug: key.fundSlug, courseId: key.courseId, siret: siret.value };
  const number = await currentNumber(db, scoped);
  if (number === null) return { fileNumber: null, toConfirm: false };
  const [declared, confirmed] = await Promise.all([declaredNames(db, scoped), confirmedNames(db, scoped)]);
  const applies = fileNumberApplies({
    declaredKey: companyNameKey(key.companyName),
    declaredKeys: declared.map(companyNameKey),
    confirmedKeys: confirmed.map((c) => c.name_key),
  });
  return applies ? { fileNumber: number, toConfirm: false } : { fileNumber: null, toConfirm: true };
}
