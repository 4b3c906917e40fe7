import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type ModulePageContext, registerModulePageFragment, registerParcoursSources } from '../catalog/index.js';
import { runPeriodically } from '../common/periodic.js';
import { deriveKey } from '../config/secrets.js';
import { html, raw, type SafeHtml } from '../http/html.js';
import { registerCourseTeamTimes } from '../lti-services/index.js';
import { Inbox, type InboxOptions } from './inbox/acknowledgement.js';
import { type ConsumerOptions, TrackingConsumer } from './inbox/consumer.js';
import type { CreditReport } from './inbox/crediting.js';
import {
  BEATS_PATH,
  type CommonTrunkEstimate,
  TICKET_PATH,
  TIME_PAGE_PATH,
  TRACKER_PATH,
  TRACKER_VERSION,
  type TrackingRuntime,
  trackingRoutes,
} from './routes.js';
import { completedQuickly, PROFILES, type RunProfile } from './rules.js';
import { digestsDue } from './service/maintenance.js';
import { getCourseTimes, getLearnerTimes as learnerTimes } from './service/times.js';
import { signTicket, unverifiedJwtClaims } from './ticket.js';
import { timeRoutes } from './time-routes.js';

/**
 * The tracking plugin and the functions that act on its runtime (the tracker's markup, the ingest's settings).
 */

declare module 'fastify' {
  interface FastifyInstance {
    trackingRuntime: TrackingRuntime;
  }
}

/**
 * Registers the tracker script (GET /assets/tracker.js), the ingest (POST /api/tracking/beats), the learner's
 * page (GET /tracking/time) and JSON reads (GET /api/tracking/me, GET /api/tracking/course), and adds the
 * tracker to every learner module page of the catalog, its time to "Mon parcours" and to the course-team view
 * (registration hooks of the catalog and lti-services plugins, hence its dependencies).
 */
export const trackingPlugin = fp(
  async function tracking(app: FastifyInstance): Promise<void> {
    const runtime: TrackingRuntime = {
      ticketKey: deriveKey(app.config.appSecret, 'tracking-ticket'),
      inbox: new Inbox(app.db, { log: app.log }),
      // While this instance acknowledges beats, its crediting loop leaves it most of the machine.
      consumer: new TrackingConsumer(app.db, { log: app.log, yieldTo: () => runtime.inbox.busy() }),
      profile: 'standard',
    };
    app.decorate('trackingRuntime', runtime);
    registerModulePageFragment(app, (ctx) => moduleFragment(app, ctx));
    // "Mon parcours" shows the credited time per module and in all, and links to the time page.
    registerParcoursSources(app, {
      timePagePath: TIME_PAGE_PATH,
      times: async (learnerId, courseId) => {
        const t = await learnerTimes(app.db, learnerId, courseId);
        // As on the certificate: the modules' credited time plus the common trunk estimated from the LMS.
        const figure = runtime.commonTrunk
          ? await runtime.commonTrunk(app.db, learnerId, courseId).catch(() => null)
          : null;
        const lms = typeof figure === 'number' || figure === null ? figure : figure.seconds;
        return {
          byModule: new Map(t.modules.map((m) => [m.moduleId, m.creditedSeconds])),
          // The estimate is a number, or a figure that also says which day's logs are awaited.
          totalSeconds: t.creditedSeconds + (lms ?? 0),
        };
      },
    });
    // The course-team view shows each learner's time and the plausibility flags (docs/time-accounting.md).
    registerCourseTeamTimes(app, { times: getCourseTimes, completedQuickly });
    // The crediting loop runs in every instance, from ready to close.
    app.addHook('onReady', async () => runtime.consumer.start());
    // The daily digest of every chain (docs/time-accounting.md, "Evidence"), kept without a cron: each instance
    // checks hourly whether yesterday's is kept (SCHEDULED_TASKS; tests call digestsDue() themselves).
    if (app.config.scheduledTasks) {
      runPeriodically(app, {
        name: 'daily digest',
        everyMs: 60 * 60_000,
        firstAfterMs: 60_000,
        task: async () => {
          const { sealed, digests } = await digestsDue(app.db);
          for (const d of digests) {
            const facts = { day: d.day, digest: d.digest, chains: d.learnerCount, records: d.eventCount, sealed };
            if (d.status === 'mismatch')
              app.log.error(facts, 'daily digest differs from the one kept: evidence changed');
            else app.log.info(facts, `daily digest ${d.status}`);
          }
        },
      });
    }
    // Answer what is already queued (its rows are committed), and stop crediting, before the database goes away.
    // What is left in the inbox is credited by any instance later.
    app.addHook('preClose', async () => {
      await runtime.inbox.drain();
      await runtime.consumer.stop();
    });
    await app.register(trackingRoutes, { runtime });
    await app.register(timeRoutes, { runtime });
  },
  { name: 'tracking', dependencies: ['lti', 'catalog', 'lti-services'], fastify: '5.x' },
);

/**
 * Adds the common-trunk time estimated outside the tool to the learner's "Votre temps de connexion" page
 * (the capability composing the tracking with the LMS estimate calls it; the tracking never imports it).
 */
export function registerCommonTrunkEstimate(app: FastifyInstance, estimate: CommonTrunkEstimate): void {
  app.trackingRuntime.commonTrunk = estimate;
}

/** The tracking's runtime: callers' plugins declare 'tracking' among their dependencies (fastify-plugin checks the order). */
function runtimeOf(app: FastifyInstance): TrackingRuntime {
  return app.trackingRuntime;
}

/**
 * Chooses the run profile sealed into the tickets of pages rendered from now on. `accelerated` (1/30 of the
 * time scale) exists for real-browser tests; the ingest refuses it in production.
 */
export function setTrackingProfile(app: FastifyInstance, profile: RunProfile['name']): void {
  if (profile !== 'standard' && app.config.nodeEnv === 'production') {
    throw new Error('the accelerated tracking profile is for tests only');
  }
  runtimeOf(app).profile = profile;
}

/**
 * Replaces the ingest queue's and the consumer's settings (tests, benchmarks). `consumer: false` stops this
 * instance's crediting loop: items then wait in the inbox until `settleTracking` or another instance credits
 * them. Correctness does not depend on any of these settings.
 */
export async function configureIngest(
  app: FastifyInstance,
  options: Omit<InboxOptions, 'log'> & { consumer?: false | Omit<ConsumerOptions, 'log'> },
): Promise<void> {
  const runtime = runtimeOf(app);
  const { consumer, ...inbox } = options;
  await runtime.inbox.drain();
  runtime.inbox = new Inbox(app.db, { ...inbox, log: app.log });
  const wasRunning = runtime.consumer.running;
  await runtime.consumer.stop();
  runtime.consumer = new TrackingConsumer(app.db, {
    yieldTo: () => runtime.inbox.busy(),
    ...(consumer || {}),
    log: app.log,
  });
  if (consumer !== false && wasRunning) runtime.consumer.start();
}

/** One slice of this instance's crediting loop, run by hand (tests with the loop stopped). */
export async function creditSlice(app: FastifyInstance): Promise<CreditReport> {
  return runtimeOf(app).consumer.slice();
}

/** The crediting loop's counters (items credited, late items, slices, errors). */
export function consumerStats(app: FastifyInstance): TrackingConsumer['stats'] {
  return runtimeOf(app).consumer.stats;
}

export interface TrackerPageContext {
  learnerId: string;
  courseId: string;
  moduleId: string;
  moduleVersion: number | null;
  nominalMinutes: number;
  /** The session token the page already holds (bearer of the beats). */
  sessionToken: string;
}

/**
 * The markup to put at the end of a module page's <body>: the tracker's configuration (a JSON script with a
 * signed ticket binding this page to learner, course and module) and the script itself.
 */
export function trackerScript(app: FastifyInstance, ctx: TrackerPageContext): SafeHtml {
  const runtime = runtimeOf(app);
  const { publicUrl } = app.config;
  // The token was verified by the route rendering this page; its claims only fill the ticket and the renewal time.
  const claims = unverifiedJwtClaims(ctx.sessionToken) ?? {};
  const profile = PROFILES[runtime.profile];
  // The ticket lives as long as the session token the page holds (renewed with it by the tracker).
  const ticket = signTicket(runtime.ticketKey, {
    v: 2,
    exp: typeof claims.exp === 'number' ? claims.exp : 0,
    learnerId: ctx.learnerId,
    courseId: ctx.courseId,
    moduleId: ctx.moduleId,
    moduleVersion: ctx.moduleVersion,
    nominalMinutes: ctx.nominalMinutes,
    role: typeof claims.role === 'string' ? claims.role : 'unknown',
    profile: profile.name,
  });
  const config = {
    endpoint: `${publicUrl}${BEATS_PATH}`,
    renewEndpoint: `${publicUrl}/api/session/renew`,
    ticketEndpoint: `${publicUrl}${TICKET_PATH}`,
    sessionToken: ctx.sessionToken,
    sessionExp: typeof claims.exp === 'number' ? claims.exp : 0,
    ticket,
    // The tracker itself, run as a dedicated worker that sends the beats off the main thread (same origin as the
    // page, as a worker must be; the versioned URL is cached for good, so the worker's copy is not downloaded).
    workerUrl: `${publicUrl}${TRACKER_PATH}?v=${TRACKER_VERSION}`,
    beatMs: profile.beatIntervalMs,
    idleMs: profile.idleMs,
    minSpacingMs: profile.minSpacingMs,
  };
  // Inside <script>, "<" must not appear raw (a "</script>" would end it).
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return html`<script type="application/json" id="emargement-tracker-config">${raw(json)}</script>
<script src="${config.workerUrl}" defer></script>`;
}

/** A link to the learner's "Votre temps de connexion" page (the token is refreshed by the session script). */
export function learnerTimeLink(sessionToken: string): SafeHtml {
  return html`<p class="muted"><a href="${TIME_PAGE_PATH}?session_token=${encodeURIComponent(sessionToken)}">Votre temps de connexion</a></p>`;
}

/** Learner module pages get the tracker; course-team previews are not counted, so they get none. */
function moduleFragment(app: FastifyInstance, ctx: ModulePageContext): { body?: SafeHtml; nav?: SafeHtml } {
  if (ctx.preview || ctx.courseId === null) return {};
  return {
    // Near the top of the page, beside "Mon parcours".
    nav: learnerTimeLink(ctx.sessionToken),
    body: html`${trackerScript(app, {
      learnerId: ctx.learnerId,
      courseId: ctx.courseId,
      moduleId: ctx.moduleId,
      moduleVersion: ctx.moduleVersion,
      nominalMinutes: ctx.nominalMinutes,
      sessionToken: ctx.sessionToken,
    })}`,
  };
}
