import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { runPeriodically } from '../common/periodic.js';
import type { Db } from '../db/index.js';
import { parisDay, registerCommonTrunkEstimate } from '../tracking/index.js';
import { type LrsOptions, lrsRoutes } from './routes.js';
import { commonTrunkFigureFor, type RecomputeReport, recomputeLmsTotals } from './service.js';

/**
 * Common-trunk time estimated from Open edX logs (docs/lms-estimate.md): import of
 * tracking logs and xAPI statements, LMS user → learner mapping, sessionization `lms-sessions-v1` minus
 * the time the tool measured itself. The only file other capabilities import from src/lms/.
 */
export { lmsCommand, runLmsCommand } from './cli.js';
export {
  addCredential,
  CredentialError,
  hashSecret,
  listCredentials,
  revokeCredential,
  storeStatements,
  verifySecret,
} from './lrs.js';
export { basicCredentials, type LrsOptions, lrsRoutes, STATEMENTS_PATH, XAPI_VERSION } from './routes.js';
export {
  CourseFilter,
  courseKeyIn,
  courseKeyInBytes,
  detectFormat,
  distinctEventCount,
  estimateLmsTime,
  type Interval,
  LMS_ALGORITHM,
  LMS_SESSIONS_V1,
  type LmsEstimate,
  type LmsEvent,
  type LmsParams,
  type LmsSession,
  lmsParamsRecord,
  overlapMs,
  parseLmsTime,
  parseMappingCsv,
  readLine,
  StatementSplitter,
  sessionize,
  startsDocument,
  statementProblem,
  totalMs,
  unionIntervals,
  unwrapLine,
} from './rules.js';
export {
  type CommonTrunkFigure,
  commonTrunkFigureFor,
  frenchDay,
  type ImportReport,
  importLmsFile,
  importMappingFile,
  type LmsEstimateView,
  lmsEstimateFor,
  MappingError,
  mapLmsUser,
  type RecomputeReport,
  recomputeLmsTotals,
  summariseUnmatched,
  type Unmatched,
  type UnmatchedSummary,
  unmapLmsUser,
} from './service.js';
export type { LmsTables } from './tables.js';

/**
 * Rebuilds every stored estimate at most once per Europe/Paris day in this process (the first call of
 * each day does it; the others answer null). The stored estimates feed the summary export: rebuilt daily,
 * they follow the time the tool measured since, which the estimate leaves out.
 */
export function dailyLmsRebuild(db: Db): (now?: number) => Promise<RecomputeReport | null> {
  let lastDay: string | null = null;
  return async (now = Date.now()) => {
    const today = parisDay(now);
    if (lastDay === today) return null;
    const report = await recomputeLmsTotals(db);
    lastDay = today;
    return report;
  };
}

/**
 * Gives the learner's "Votre temps de connexion" page the common-trunk estimate (the figure the
 * certificate prints, or that the platform's logs are awaited), serves the xAPI statements endpoint
 * platforms push to, and with SCHEDULED_TASKS rebuilds the stored estimates daily (checked hourly).
 * Register after trackingPlugin.
 */
async function lms(app: FastifyInstance, options: { lrs?: LrsOptions }): Promise<void> {
  registerCommonTrunkEstimate(app, (db, learnerId, courseId) => commonTrunkFigureFor(db, learnerId, courseId));
  // The xAPI statements endpoint, in its own context (its rate limit and hooks stay there).
  await app.register(lrsRoutes, options.lrs ?? {});
  if (app.config.scheduledTasks) {
    const rebuild = dailyLmsRebuild(app.db);
    runPeriodically(app, {
      name: 'LMS estimates',
      everyMs: 60 * 60_000,
      firstAfterMs: 2 * 60_000,
      task: async () => {
        const report = await rebuild();
        if (report) {
          const { totals, matchedUsers, unmatched } = report;
          app.log.info({ totals, matchedUsers, unmatched: unmatched.length }, 'LMS estimates rebuilt');
        }
      },
    });
  }
}

export const lmsPlugin = fp(lms, { name: 'lms', dependencies: ['tracking'], fastify: '5.x' });
