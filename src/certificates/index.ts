import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { registerParcoursSources } from '../catalog/index.js';
import type { CliContext } from '../common/cli-context.js';
import { runPeriodically } from '../common/periodic.js';
import type { Db } from '../db/index.js';
import { lmsEstimateFor } from '../lms/index.js';
import { getCourseTimes, getLearnerTimes } from '../tracking/index.js';
import { certificatesCommand } from './cli.js';
import { loadProviderConfig } from './provider.js';
import { certificateRoutes } from './routes.js';
import { describeIssuanceRule } from './rules.js';
import { CertificateService, type FactsSource } from './service.js';
import { currentSigningKey, signText } from './signing.js';
import { candidatePairs, catalogFactsSource, type TimesPort } from './sources.js';

/**
 * Attendance certificates (certificats de réalisation): issuance rules per course, the signed PDF,
 * public verification, versions and revocation, bulk ZIP downloads. The only file other capabilities
 * import from src/certificates/.
 */
export type { ProviderConfig } from './provider.js';
export { loadProviderConfig, ProviderConfigError } from './provider.js';
export {
  type CertificateData,
  type CertificateFacts,
  type CertificateState,
  canonicalJson,
  formatCertificateNumber,
  type IssuanceRule,
  type PublicSummary,
  parseCertificateNumber,
} from './rules.js';
export type { CertificateService, FactsSource, IssuedCertificate } from './service.js';
export {
  jwkThumbprint,
  type PublishedKey,
  rotateSigningKey,
  verifyText as verifyCertificateSignature,
} from './signing.js';
export type { CertificatesTables } from './tables.js';

declare module 'fastify' {
  interface FastifyInstance {
    certificates: CertificateService;
  }
}

/**
 * Loads and validates the provider file (lti-config/provider.json beside the registrations file: a bad
 * file stops the start, naming each bad field), builds the service and registers the routes. Its
 * `certificates` decoration is shared with the whole app (fastify-plugin) so other capabilities can call
 * the functions below.
 */
async function certificates(app: FastifyInstance): Promise<void> {
  const provider = loadProviderConfig(app.config.providerFile, {
    production: app.config.nodeEnv === 'production',
  });
  if (provider.fictitious) {
    app.log.warn({ file: provider.file }, 'certificates use the FICTITIOUS example provider (development only)');
  }
  const service = new CertificateService({
    db: app.db,
    config: app.config,
    provider,
    log: app.log.child({ capability: 'certificates' }),
    facts: factsFromCatalogAndTracking(app.db),
  });
  app.decorate('certificates', service);
  // The public key is published before the first certificate, so verifiers can fetch it once, early.
  app.addHook('onReady', async () => {
    await currentSigningKey(app.db, app.config.appSecret);
  });
  await app.register(certificateRoutes, { service });
  // "Mon parcours" shows the certificate (its link once issued, or what is missing) and the course-team
  // page states the issuance rule.
  registerParcoursSources(app, {
    certificate: async (learnerId, courseId) => {
      await service.issueIfEligible(learnerId, courseId);
      const records = await service.listForLearner(learnerId, courseId);
      const valid = records.find((r) => r.state === 'valid');
      if (valid) return { number: valid.number, missing: [] };
      const report = await service.eligibility(learnerId, courseId);
      const missing = report.eligibility?.missing ?? [];
      if (report.eligibility?.eligible) missing.push('la demande du certificat, sur la page du certificat');
      return { number: null, missing };
    },
    issuanceRule: async (courseId) => describeIssuanceRule((await service.rule(courseId)).rule),
  });

  // No capability announces completions or credited time as they happen, so automatic issuance also
  // runs as a sweep (the learner's certificate page checks on every visit too), with SCHEDULED_TASKS
  // (off in tests: they call sweepCertificates() when they need it).
  if (app.config.scheduledTasks) {
    runPeriodically(app, { name: 'certificate sweep', everyMs: SWEEP_INTERVAL_MS, task: () => sweepCertificates(app) });
  }
}

const SWEEP_INTERVAL_MS = 5 * 60 * 1000;
const SWEEP_MAX_PAIRS = 500;
const lastSweep = new WeakMap<object, Date>();

/** Facts printed on certificates: the catalog's profile, modules and completions, the tracking's time. */
export function factsFromCatalogAndTracking(db: Db): FactsSource {
  return catalogFactsSource(db, timesWithLmsEstimate);
}

/**
 * In-tool time from the tracking, plus the common-trunk time estimated from the LMS's logs (src/lms: its
 * sessions minus the in-tool time, so the two add up to the union), with the LMS algorithm's parameters.
 */
const timesWithLmsEstimate: TimesPort = async (db, learnerId, courseId) => {
  const times = await getLearnerTimes(db, learnerId, courseId);
  const lms = await lmsEstimateFor(db, learnerId, courseId);
  if (!lms) return { ...times, lmsEstimatedSeconds: null };
  return {
    ...times,
    params: { ...times.params, lms: lms.params },
    lmsEstimatedSeconds: lms.seconds,
    lmsActivity: { firstAt: lms.firstAt, lastAt: lms.lastAt },
  };
};

/**
 * Issues every certificate due since the last sweep (all of them on the first one after a start).
 * Returns the numbers issued. Bounded per run; what is left is picked up by the next one.
 */
export async function sweepCertificates(app: FastifyInstance): Promise<string[]> {
  const service = app.certificates;
  const started = new Date();
  // A margin, so that a completion committed while the previous sweep ran is not missed.
  const since = new Date((lastSweep.get(app.db)?.getTime() ?? 0) - 60_000);
  const pairs = await candidatePairs(app.db, since, getCourseTimes);
  const issued: string[] = [];
  for (const pair of pairs.slice(0, SWEEP_MAX_PAIRS)) {
    try {
      const result = await service.issueIfEligible(pair.learnerId, pair.courseId);
      if (result?.created) issued.push(result.number);
    } catch (err) {
      app.log.warn({ err }, 'automatic issuance failed for one learner');
    }
  }
  if (pairs.length <= SWEEP_MAX_PAIRS) lastSweep.set(app.db, started);
  return issued;
}

/** `npm run cli -- certificates …` */
export function runCertificatesCli(args: string[], cli: CliContext): Promise<number> {
  return certificatesCommand(args, cli, factsFromCatalogAndTracking);
}

export const certificatesPlugin = fp(certificates, {
  name: 'certificates',
  dependencies: ['lti', 'catalog'],
  fastify: '5.x',
});

/**
 * Issues the learner's certificate if the course's rule is met and allows automatic issuance (and the
 * learner never had one here). Idempotent: call it after any progress a learner makes.
 */
export async function issueCertificateIfEligible(app: FastifyInstance, learnerId: string, courseId: string) {
  return app.certificates.issueIfEligible(learnerId, courseId);
}

/** The current number of a learner's valid certificate in a course, for exports and the funnel. */
export async function validCertificateNumber(
  app: FastifyInstance,
  learnerId: string,
  courseId: string,
): Promise<string | null> {
  const records = await app.certificates.listForLearner(learnerId, courseId);
  return records.find((r) => r.state === 'valid')?.number ?? null;
}

/** Replaces where the facts printed on certificates come from (tests; a future data source). */
export function setCertificateFactsSource(app: FastifyInstance, source: FactsSource): void {
  app.certificates.setFactsSource(source);
}

/**
 * A streamed ZIP of certificates (by course and/or fund) for another capability to serve; resolves once
 * archiver is loaded (on first use).
 */
export function certificateArchive(
  app: FastifyInstance,
  filter: { courseId?: string; fundSlug?: string; allStates?: boolean },
) {
  return app.certificates.archive(filter);
}

/**
 * Every certificate version issued to a learner in a course, with the connection-time algorithm it printed
 * (`npm run cli -- time diff-versions` names those issued on an older algorithm; they never change).
 */
export async function issuedCertificatesOf(
  db: Db,
  learnerId: string,
  courseId: string,
): Promise<Array<{ number: string; algorithm: string; state: string }>> {
  return db
    .selectFrom('certificates')
    .select(['number', 'algorithm', 'state'])
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .orderBy('number')
    .orderBy('version')
    .execute();
}

/**
 * Hides the learner's personal data on the public verification page of their certificates once `check`
 * says so (src/privacy registers it: after an erasure only the number, state and figures are shown).
 */
export function registerPersonalDataRedaction(app: FastifyInstance, check: (learnerId: string) => Promise<boolean>) {
  app.certificates.setPersonalDataHidden(check);
}

/**
 * Signs a statement with the current certificate key (Ed25519, published at /verify/keys): the privacy
 * capability seals evidence it reduces or drops this way, so an auditor checks it with the same keys.
 */
export async function signWithCertificateKey(
  db: Db,
  appSecret: string,
  text: string,
): Promise<{ kid: string; signature: string }> {
  const key = await currentSigningKey(db, appSecret);
  return { kid: key.kid, signature: signText(key.privateKey, text) };
}
