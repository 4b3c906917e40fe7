import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { registerPersonalDataRedaction } from '../certificates/index.js';
import { registerLearnerFragment } from '../common/learner-pages.js';
import { runPeriodically } from '../common/periodic.js';
import { privacyRoutes } from './routes.js';
import { isErased, type PrivacyDeps, purge } from './service.js';
import { type Controller, exportForms } from './views.js';

/**
 * The personal data lifecycle (docs/privacy.md): retention purge and minimisation, the learner's access and
 * portability export, erasure with legal holds, the notice « Vos données ». The only file other
 * capabilities import from src/privacy/.
 */
export { runPrivacyCommand } from './cli.js';
export { type LearnerDataExport, learnerDataExport } from './data-export.js';
export {
  DEFAULT_POLICY,
  isReducedUserAgent,
  isTruncatedIp,
  PolicyError,
  type RetentionPolicy,
  retentionPolicyFromEnv,
} from './rules.js';
export { verifySeals } from './seals.js';
export {
  type ErasureReport,
  eraseLearner,
  isErased,
  markEuCofunded,
  type PrivacyDeps,
  type PurgeReport,
  purge,
  purgeLearner,
} from './service.js';
export type { PrivacyTables } from './tables.js';
export { EXPORT_PATH, exportForms } from './views.js';

/** The daily purge: every instance may run it (each learner is purged under its lock). */
const PURGE_EVERY_MS = 24 * 60 * 60 * 1000;
const PURGE_FIRST_AFTER_MS = 10 * 60 * 1000;

/**
 * Applies the configured retention policy (`config.retention`, validated with the configuration), registers
 * the routes, the « Mes données » forms on learner pages (through the shared learner-page registry), hides erased learners on the
 * public certificate verification, and runs the purge daily with SCHEDULED_TASKS. Register after
 * certificatesPlugin.
 */
async function privacy(app: FastifyInstance): Promise<void> {
  const deps: PrivacyDeps = { db: app.db, appSecret: app.config.appSecret, policy: app.config.retention };
  const controller = (): Controller | null => {
    const p = app.certificates.provider.data;
    return { name: p.name, address: [...p.address.lines, `${p.address.postalCode} ${p.address.city}`] };
  };
  await app.register(privacyRoutes, { deps, controller });
  registerLearnerFragment(app, 'privacy', ({ sessionToken }) => exportForms(sessionToken));
  registerPersonalDataRedaction(app, (learnerId) => isErased(app.db, learnerId));
  if (app.config.scheduledTasks) {
    runPeriodically(app, {
      name: 'privacy purge',
      everyMs: PURGE_EVERY_MS,
      firstAfterMs: PURGE_FIRST_AFTER_MS,
      task: async () => {
        const report = await purge(deps, { apply: true, trigger: 'scheduled' });
        app.log.info({ purge: summarise(report) }, 'privacy purge done');
      },
    });
  }
}

function summarise(r: Awaited<ReturnType<typeof purge>>) {
  return {
    auditLog: r.auditLog,
    loginFailures: r.loginFailures,
    userAgentsReduced: r.userAgentsReduced,
    learnersPurged: r.learners.purged,
    learnersKept: r.learners.kept.length,
    lmsEvents: r.lmsEvents.deleted,
    digestsResealed: r.digestsResealed,
    problems: r.problems.length,
  };
}

export const privacyPlugin = fp(privacy, { name: 'privacy', dependencies: ['certificates'], fastify: '5.x' });
