import formbody from '@fastify/formbody';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions, type RouteOptions } from 'fastify';
import { catalogPlugin } from './catalog/index.js';
import { certificatesPlugin } from './certificates/index.js';
import type { Config } from './config/index.js';
import { createDatabase, type DatabaseHandle, type Db, migrateToLatest, pgliteDirFor } from './db/index.js';
import { demoPlugin } from './demo/index.js';
import { digestPlugin } from './digest/index.js';
import { exportsPlugin } from './exports/index.js';
import { fileNumbersPlugin } from './file-numbers/index.js';
import { healthPlugin } from './health/index.js';
import { homePlugin } from './home/index.js';
import { registerStaticAssets } from './http/assets.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerInputGuard } from './http/input-guard.js';
import { logDestination, loggerOptions, requestIdOptions } from './http/logger.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { lmsPlugin } from './lms/index.js';
import { ltiPlugin, platformOrigins } from './lti/index.js';
import { ltiServicesPlugin } from './lti-services/index.js';
import { metricsPlugin } from './metrics/index.js';
import { portalPlugin, registerAccessAudit } from './portal/index.js';
import { privacyPlugin } from './privacy/index.js';
import { regroupementPlugin } from './regroupement/index.js';
import { trackingPlugin } from './tracking/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    db: Db;
    dbKind: DatabaseHandle['kind'];
  }
}

export interface BuildOptions {
  config: Config;
  /** An open database (tests pass one); otherwise one is created from the config. */
  database?: DatabaseHandle;
  /** Close the database when the app closes: default true when the app created it. */
  closeDatabase?: boolean;
  /** Overrides the config's logger settings (tests capture logs through a stream). */
  logger?: FastifyServerOptions['logger'];
  /** Called for every route as it is registered (tests walk the route table with it). */
  onRoute?: (route: RouteOptions) => void;
}

export type App = FastifyInstance;

const noPool = { total: 0, idle: 0, waiting: 0, max: 0 };

/** Builds the whole application without listening: `server.ts` listens, tests use `app.inject`. */
export async function buildApp(options: BuildOptions): Promise<App> {
  const { config } = options;
  const destination = options.logger ? undefined : logDestination();
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config, destination),
    ...requestIdOptions(),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    // Fastify 5 closes idle keep-alive sockets on close() and lets in-flight requests finish.
    forceCloseConnections: 'idle',
    // Plugins read their registrations and content at start; on a loaded machine that can exceed Fastify's
    // 10 s default, which would stop the start rather than wait for it.
    pluginTimeout: 120_000,
    return503OnClosing: true,
    // Tests: no start-up deadline for plugins (a loaded machine is slow, not broken; the test's limit stays).
    ...(config.nodeEnv === 'test' ? { pluginTimeout: 0 } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const database =
    options.database ??
    (await createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) }));
  app.decorate('config', config);
  app.decorate('db', database.db);
  app.decorate('dbKind', database.kind);
  if (options.closeDatabase ?? !options.database) app.addHook('onClose', async () => database.close());
  // The lines still held by the log destination are written before close() resolves.
  if (destination) {
    app.addHook('onClose', (_instance, done) => destination.flush(() => done()));
  }

  if (config.migrateOnStart) {
    const applied = await migrateToLatest(database.db);
    if (applied.length > 0) app.log.info({ applied }, 'migrations applied');
  }

  // During a graceful stop, answers to in-flight requests end their keep-alive connection, so that
  // close() does not wait for the client's idle timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  if (options.onRoute) {
    const onRoute = options.onRoute;
    app.addHook('onRoute', (route) => onRoute(route as RouteOptions));
  }
  registerErrorHandling(app);
  registerInputGuard(app);
  registerAccessAudit(app);
  await registerSecurityHeaders(app, { platformOrigins: (request) => platformOrigins(database.db, request) });
  registerStaticAssets(app);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(metricsPlugin, database.poolStats ? { poolStats: () => database.poolStats?.() ?? noPool } : {});
  await app.register(healthPlugin);
  await app.register(homePlugin);
  await app.register(ltiPlugin);
  await app.register(catalogPlugin);
  await app.register(ltiServicesPlugin);
  await app.register(trackingPlugin);
  await app.register(lmsPlugin);
  await app.register(portalPlugin);
  await app.register(certificatesPlugin);
  await app.register(exportsPlugin);
  await app.register(fileNumbersPlugin);
  await app.register(digestPlugin);
  await app.register(privacyPlugin);
  // Development only (the configuration refuses DEMO_LMS in production).
  if (config.demo) await app.register(demoPlugin);
  await app.register(regroupementPlugin);

  return app;
}
