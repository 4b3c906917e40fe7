import type { FastifyInstance } from 'fastify';
import { BadRequestError, ForbiddenError, NotFoundError } from '../http/errors.js';
import { actorOf, auditEvent, type Principal } from '../portal/index.js';
import * as repo from './repository.js';
import {
  checkCompanySiret,
  checkFileNumber,
  companyNameKey,
  formatSiret,
  type ImportProblem,
  parseImport,
} from './rules.js';

/**
 * Setting, changing and clearing OPCO file numbers: scope, validation, the write with its history,
 * the audit log, then the reissue of the certificates that print another number.
 */

/** The fund a principal acts on: fund staff only theirs; operators must name one that exists. */
export async function resolveFund(app: FastifyInstance, principal: Principal, requested: string | undefined) {
  if (principal.role !== 'operator') {
    if (requested && requested !== principal.fundSlug) {
      throw new ForbiddenError(
        'fund_out_of_scope',
        'Votre compte ne donne accès qu’aux dossiers de votre fonds.',
        'fund staff asked for another fund',
      );
    }
    return principal.fundSlug as string;
  }
  if (!requested) throw new BadRequestError('fund_required', 'Choisissez un fonds.', 'fund is required for operators');
  if (!(await repo.fundExists(app.db, requested))) throw new NotFoundError('unknown_fund', 'Ce fonds n’existe pas.');
  return requested;
}

export async function requireCourse(app: FastifyInstance, courseId: string) {
  const course = await repo.findCourse(app.db, courseId);
  if (!course) throw new NotFoundError('unknown_course', 'Cette session de cours n’existe pas.');
  return course;
}

/** Who read which fund's company list (SIRETs, names, file numbers): audited like a download. */
async function auditCompanyListRead(
  app: FastifyInstance,
  principal: Principal,
  fund: string,
  courseId: string,
  companies: number,
): Promise<void> {
  await auditEvent(app.db, actorOf(principal), 'file_numbers.read', { fund, courseId, companies });
}

/** The companies of a fund's course session and their file numbers (an audited read). */
export async function readCompanies(
  app: FastifyInstance,
  principal: Principal,
  input: { fund: string | undefined; courseId: string },
): Promise<{ fund: string; companies: repo.CompanyRow[] }> {
  const fund = await resolveFund(app, principal, input.fund);
  await requireCourse(app, input.courseId);
  const companies = await repo.listCompanies(app.db, fund, input.courseId);
  await auditCompanyListRead(app, principal, fund, input.courseId, companies.length);
  return { fund, companies };
}

/** Everything the portal page shows for one fund and course (both optional until chosen). */
export async function pageData(
  app: FastifyInstance,
  principal: Principal,
  query: { fund?: string | undefined; courseId?: string | undefined },
) {
  const operator = principal.role === 'operator';
  const funds = await repo.listFunds(app.db, operator ? null : principal.fundSlug);
  const fund = operator && !query.fund ? null : await resolveFund(app, principal, query.fund || undefined);
  const courses = fund ? await repo.listCourses(app.db, fund) : [];
  let courseId: string | null = null;
  if (fund && query.courseId) {
    const course = await requireCourse(app, query.courseId);
    if (!courses.some((c) => c.id === course.id)) courses.push(course);
    courseId = course.id;
  }
  const [companies, history] =
    fund && courseId
      ? await Promise.all([repo.listCompanies(app.db, fund, courseId), repo.history(app.db, fund, courseId, 20)])
      : [[], []];
  if (fund && courseId) await auditCompanyListRead(app, principal, fund, courseId, companies.length);
  return { funds, fund, courses, courseId, companies, history };
}

export interface ChangeInput {
  fund: string | undefined;
  courseId: string;
  siret: string;
  /** null or empty: clear the number. */
  fileNumber: string | null;
}

export interface ChangeResult {
  fund: string;
  courseId: string;
  siret: string;
  previous: string | null;
  fileNumber: string | null;
  changed: boolean;
  /** Numbers of the certificates issued as new versions. */
  reissued: string[];
  /** Certificates that could not be reissued now (logged; a later change or correction retries). */
  reissueFailed: number;
}

function invalid(field: 'siret' | 'fileNumber', message: string): BadRequestError {
  return new BadRequestError(`invalid_${field === 'siret' ? 'siret' : 'file_number'}`, message, message, { field });
}

export async function changeFileNumber(
  app: FastifyInstance,
  principal: Principal,
  input: ChangeInput,
): Promise<ChangeResult> {
  const fund = await resolveFund(app, principal, input.fund);
  await requireCourse(app, input.courseId);
  const siret = checkCompanySiret(input.siret);
  if (!siret.ok) throw invalid('siret', siret.message);
  let fileNumber: string | null = null;
  if (input.fileNumber !== null && input.fileNumber.trim() !== '') {
    const checked = checkFileNumber(input.fileNumber);
    if (!checked.ok) throw invalid('fileNumber', checked.message);
    fileNumber = checked.value;
  }
  const actor = actorOf(principal);
  const previous = await app.db.transaction().execute((trx) =>
    repo.writeNumber(trx, {
      fundSlug: fund,
      courseId: input.courseId,
      siret: siret.value,
      fileNumber,
      actor: { userId: actor.userId, username: actor.username, via: actor.via },
    }),
  );
  const base = { fund, courseId: input.courseId, siret: siret.value, previous, fileNumber };
  if (previous === fileNumber) return { ...base, changed: false, reissued: [], reissueFailed: 0 };
  await auditEvent(app.db, actor, fileNumber === null ? 'file_number.cleared' : 'file_number.set', {
    fund,
    courseId: input.courseId,
    siret: siret.value,
    previous,
    fileNumber,
  });
  const { reissued, failed } = await reissueCertificates(
    app,
    { fundSlug: fund, courseId: input.courseId, siret: siret.value },
    {
      previous,
      fileNumber,
    },
  );
  return { ...base, changed: true, reissued, reissueFailed: failed };
}

async function reissueCertificates(
  app: FastifyInstance,
  key: { fundSlug: string; courseId: string; siret: string },
  change: { previous: string | null; fileNumber: string | null },
): Promise<{ reissued: string[]; failed: number }> {
  const reason =
    change.fileNumber === null
      ? `N° de dossier OPCO retiré (était ${change.previous}) pour l’entreprise ${formatSiret(key.siret)}.`
      : change.previous === null
        ? `N° de dossier OPCO renseigné : ${change.fileNumber}.`
        : `N° de dossier OPCO modifié : ${change.previous} → ${change.fileNumber}.`;
  const reissued: string[] = [];
  let failed = 0;
  for (const learnerId of await repo.certifiedLearners(app.db, key)) {
    try {
      const issued = await app.certificates.reissueForFileNumber(learnerId, key.courseId, reason);
      if (issued) reissued.push(issued.number);
    } catch (err) {
      failed++;
      app.log.warn({ err, courseId: key.courseId }, 'certificate reissue after a file number change failed');
    }
  }
  return { reissued, failed };
}

export interface ImportResult {
  fund: string;
  courseId: string;
  problems: ImportProblem[];
  set: number;
  unchanged: number;
  reissued: string[];
  reissueFailed: number;
}

/** `SIRET;numéro` lines: all or nothing on format errors, then one change per line (each audited). */
export async function importFileNumbers(
  app: FastifyInstance,
  principal: Principal,
  input: { fund: string | undefined; courseId: string; csv: string },
): Promise<ImportResult> {
  const fund = await resolveFund(app, principal, input.fund);
  await requireCourse(app, input.courseId);
  const parsed = parseImport(input.csv);
  const result: ImportResult = {
    fund,
    courseId: input.courseId,
    problems: parsed.problems,
    set: 0,
    unchanged: 0,
    reissued: [],
    reissueFailed: 0,
  };
  if (parsed.problems.length > 0) return result;
  if (parsed.lines.length === 0) {
    return { ...result, problems: [{ line: 0, message: 'Le fichier ne contient aucune ligne SIRET;numéro.' }] };
  }
  for (const line of parsed.lines) {
    const r = await changeFileNumber(app, principal, {
      fund,
      courseId: input.courseId,
      siret: line.siret,
      fileNumber: line.fileNumber,
    });
    if (r.changed) result.set++;
    else result.unchanged++;
    result.reissued.push(...r.reissued);
    result.reissueFailed += r.reissueFailed;
  }
  return result;
}

export interface ConfirmResult {
  fund: string;
  courseId: string;
  siret: string;
  name: string;
  /** false: that name was already confirmed. */
  confirmed: boolean;
  reissued: string[];
  reissueFailed: number;
}

/**
 * The fund confirms that a name learners declared for a SIRET is that company's: its file number then
 * applies to those learners' certificates (reissued now). Only a name a learner of the session declared
 * can be confirmed. Audited.
 */
export async function confirmCompanyName(
  app: FastifyInstance,
  principal: Principal,
  input: { fund: string | undefined; courseId: string; siret: string; name: string },
): Promise<ConfirmResult> {
  const fund = await resolveFund(app, principal, input.fund);
  await requireCourse(app, input.courseId);
  const siret = checkCompanySiret(input.siret);
  if (!siret.ok) throw invalid('siret', siret.message);
  const key = { fundSlug: fund, courseId: input.courseId, siret: siret.value };
  const wanted = companyNameKey(input.name);
  const declared = (await repo.declaredNames(app.db, key)).find((n) => companyNameKey(n) === wanted);
  if (!declared) {
    throw new NotFoundError(
      'unknown_company_name',
      'Aucun apprenant de ce fonds n’a déclaré ce nom pour ce SIRET dans cette session.',
    );
  }
  const actor = actorOf(principal);
  const confirmed = await repo.confirmName(app.db, key, { key: wanted, name: declared }, actor);
  const base = { fund, courseId: input.courseId, siret: siret.value, name: declared, confirmed };
  if (!confirmed) return { ...base, reissued: [], reissueFailed: 0 };
  await auditEvent(app.db, actor, 'company_name.confirmed', {
    fund,
    courseId: input.courseId,
    siret: siret.value,
    name: declared,
  });
  const number = await repo.currentNumber(app.db, key);
  const { reissued, failed } = number
    ? await reissueCertificates(app, key, { previous: null, fileNumber: number })
    : { reissued: [], failed: 0 };
  return { ...base, reissued, reissueFailed: failed };
}
