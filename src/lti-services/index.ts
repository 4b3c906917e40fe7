import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { registerModuleCompletedListener } from '../catalog/index.js';
import { listeningSince, whenListening } from '../common/background.js';
import type { CliContext } from '../common/cli-context.js';
import { runPeriodically } from '../common/periodic.js';
import { getCurrentToolKey, registerLaunchHandler, toolUrls } from '../lti/index.js';
import { AccessTokenService, type FetchLike, type KeysetWatch } from './access-tokens.js';
import { outboxCommand } from './cli.js';
import type { CourseTeamTimes } from './course-team.js';

export type { CourseTeamTimes } from './course-team.js';

import {
  type MembershipContext,
  membershipTask,
  runScheduledMembershipSync,
  type SyncResult,
  syncCourseMemberships,
} from './memberships.js';
import { createServicePages, servicesRoutes } from './routes.js';
import {
  enqueueCompletionScore,
  type OutboxContext,
  type OutboxRunResult,
  outboxTask,
  processOutbox,
  workerName,
} from './scores.js';

/**
 * LTI Advantage for course teams: Deep Linking 2.0 (placing modules and themes), Assignment and Grade
 * Services 2.0 (a completed module's score, through a durable outbox), Names and Role Provisioning
 * Services 2.0 (who is enrolled), on OAuth 2.0 client-credentials tokens (IMS Security Framework §4).
 * The only file other capabilities import from src/lti-services/.
 */

export {
  AccessTokenService,
  type FetchLike,
  type KeysetWatch,
  PLATFORM_TIMEOUT_MS,
  PlatformCallError,
  type ToolKeySource,
  type ToolSigningKey,
} from './access-tokens.js';
export { type OutboxCliContext, runOutbox } from './cli.js';
export { listMemberships, type MembershipView } from './membership-repository.js';
export {
  type MembershipContext,
  runScheduledMembershipSync,
  type SyncResult,
  syncCourseMemberships,
} from './memberships.js';
export {
  claimDueScores,
  listOutbox,
  type OutboxRow,
  requeueScores,
  retargetScores,
} from './repository.js';
export { KEYSET_WARMUP_MS, keysetMayBeUnreachable, RELEASE_DELAY_MS, SCOPES } from './rules.js';
export {
  type CompletionScoreInput,
  type EnqueueResult,
  enqueueCompletionScore,
  type OutboxContext,
  type OutboxRunResult,
  OutboxWorker,
  processOutbox,
} from './scores.js';
export type { LtiServicesTables } from './tables.js';

export interface LtiServicesOptions {
  /**
   * Background jobs (outbox worker, memberships schedule), started once the server listens (or by
   * `startBackgroundWork`): as `SCHEDULED_TASKS` says unless given.
   */
  backgroundJobs?: boolean;
  /** How the services reach the platform (tests may count or break calls). */
  fetch?: FetchLike;
}

export interface LtiServicesRuntime {
  tokens: AccessTokenService;
  worker: string;
  fetch: FetchLike | undefined;
  /** Aborted when the app starts closing: every platform request under way is cut. */
  stopping: AbortController;
  /** How many times this instance served its public keyset. */
  keysetServed: number;
  /** When the outbox probe last released each platform's scores (token URL → ms). */
  probeReleases: Map<string, number>;
  /** Connection time for the course-team view, registered by the tracking (`registerCourseTeamTimes`). */
  courseTeamTimes?: CourseTeamTimes;
}

/**
 * Gives the course-team view the learners' connection time and the plausibility rule (the tracking calls
 * it when it registers; this capability never imports the tracking).
 */
export function registerCourseTeamTimes(app: FastifyInstance, source: CourseTeamTimes): void {
  app.ltiServices.courseTeamTimes = source;
}

declare module 'fastify' {
  interface FastifyInstance {
    ltiServices: LtiServicesRuntime;
  }
}

export { MEMBERSHIP_SCHEDULE_MS } from './memberships.js';
export { OUTBOX_POLL_MS } from './scores.js';

/**
 * Registers the services after `ltiPlugin` (it needs the tool key) and `catalogPlugin` (it listens for
 * completed modules). The runtime is shared with the whole app (fastify-plugin) so that the public
 * functions below work from the root instance.
 */
export const ltiServicesPlugin = fp(
  async function ltiServices(app: FastifyInstance, options: LtiServicesOptions): Promise<void> {
    const stopping = new AbortController();
    const keyset: KeysetWatch = { served: () => runtime.keysetServed };
    const runtime: LtiServicesRuntime = {
      tokens: new AccessTokenService({
        db: app.db,
        toolKey: () => getCurrentToolKey(app),
        ...(options.fetch ? { fetch: options.fetch } : {}),
        signal: stopping.signal,
        keyset,
      }),
      worker: workerName(),
      fetch: options.fetch,
      stopping,
      keysetServed: 0,
      probeReleases: new Map(),
    };
    app.decorate('ltiServices', runtime);

    // Whether the platform read our keyset while it checked a token request (see keysetMayBeUnreachable):
    // every successful answer of the keyset route (src/lti) is counted.
    const keysetPath = new URL(toolUrls(app.config.publicUrl).keysetUrl).pathname;
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url;
      if (route !== undefined && route.length > 1 && reply.statusCode === 200 && keysetPath.endsWith(route)) {
        runtime.keysetServed++;
      }
      done();
    });

    const pages = createServicePages(app);
    registerLaunchHandler(app, 'LtiDeepLinkingRequest', pages.deepLinkingHandler);
    // AGS score for the completed link's line item, queued in the completion's own transaction.
    registerModuleCompletedListener(app, (tx, completion) => enqueueCompletionScore(tx, completion));
    // Routes live in their own encapsulated context.
    await app.register(servicesRoutes, { syncMemberships: (courseId: string) => syncMemberships(app, courseId) });

    // A stop cuts every platform request under way (PLATFORM_TIMEOUT_MS bounds them anyway): registered
    // before the jobs' own close hooks, so that the worker releases what it holds, uncounted, before the
    // database closes.
    app.addHook('preClose', async () => {
      stopping.abort();
    });
    // Not at ready: the platform checks our token requests against our keyset, served by this very
    // server (docs/score-outbox.md, "Start"). runPeriodically starts them once the server listens.
    // Scheduled or not, the instance notes when it starts listening: until our keyset has had time to be
    // reached, an invalid_client is not counted against a score (keysetMayBeUnreachable).
    whenListening(app, () => {});
    if (options.backgroundJobs ?? app.config.scheduledTasks) {
      runPeriodically(app, outboxTask(outboxContext(app)));
      runPeriodically(app, membershipTask(membershipContext(app)));
    }
  },
  { name: 'lti-services', dependencies: ['lti', 'catalog'], fastify: '5.x' },
);

function runtimeOf(app: FastifyInstance): LtiServicesRuntime {
  return app.ltiServices;
}

function outboxContext(app: FastifyInstance): OutboxContext {
  const r = runtimeOf(app);
  return {
    db: app.db,
    tokens: r.tokens,
    log: app.log.child({ component: 'score-outbox' }),
    worker: r.worker,
    ...(r.fetch ? { fetch: r.fetch } : {}),
    signal: r.stopping.signal,
    listeningSince: () => listeningSince(app),
    probeReleases: r.probeReleases,
  };
}

function membershipContext(app: FastifyInstance): MembershipContext {
  const r = runtimeOf(app);
  return {
    db: app.db,
    tokens: r.tokens,
    log: app.log.child({ component: 'nrps' }),
    worker: r.worker,
    ...(r.fetch ? { fetch: r.fetch } : {}),
    signal: r.stopping.signal,
  };
}

/** One outbox pass now (what the background worker does every few seconds). */
export function processScoreOutbox(
  app: FastifyInstance,
  options: { now?: Date; limit?: number } = {},
): Promise<OutboxRunResult> {
  return processOutbox(outboxContext(app), options);
}

/** Lists a course's members now (NRPS), as the course-team view's button does. */
export function syncMemberships(app: FastifyInstance, courseId: string): Promise<SyncResult> {
  return syncCourseMemberships(membershipContext(app), courseId);
}

/** One pass of the memberships schedule (under the database lease). */
export function runMembershipSchedule(app: FastifyInstance, options: { now?: Date } = {}) {
  return runScheduledMembershipSync(membershipContext(app), options);
}

/** Adds `npm run cli -- outbox list|retry|retarget`. */
export function registerLtiServicesCommands(
  register: (name: string, summary: string, run: (args: string[], cli: CliContext) => Promise<number>) => void,
): void {
  register('outbox', 'AGS score outbox: list | retry | retarget', outboxCommand);
}
