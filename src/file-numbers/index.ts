import type { Db } from '../db/index.js';
import { currentNumber } from './repository.js';
import { checkCompanySiret } from './rules.js';

/**
 * OPCO file numbers (« numéro de dossier de prise en charge »): one per fund × course session × company
 * SIRET, kept by fund staff (their fund) and operators in the portal (/portal/dossiers) and the API
 * (/api/v1/file-numbers). Certificates print the number at issue time and are reissued when it changes;
 * the summary export shows the current one. The only file other capabilities import from here.
 */
export { fileNumberRoutes } from './routes.js';
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
