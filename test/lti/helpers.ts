import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import formbody from '@fastify/formbody';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { type App, buildApp } from '../../src/app.js';
import type { Config } from '../../src/config/index.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { registerStaticAssets } from '../../src/http/assets.js';
import { registerErrorHandling } from '../../src/http/error-handler.js';
import { loggerOptions, requestIdOptions } from '../../src/http/logger.js';
import { ltiPlugin } from '../../src/lti/index.js';
import {
  type ComponentOptions,
  type FakeOpenEdx,
  type FakeOpenEdxOptions,
  httpTransport,
  injectTransport,
  startFakeOpenEdx,
  type ToolTransport,
} from '../fixtures/openedx/index.js';
import { testConfig } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface LtiTestContext {
  app: App;
  fake: FakeOpenEdx;
  config: Config;
  database: DatabaseHandle;
  transport: ToolTransport;
  /** Every log line the app wrote (JSON, after redaction). */
  logs: LogRecord[];
  /** The `check` of the last "lti … refused" log line. */
  lastRefusal(): { check: string; reason: string; stage: string } | undefined;
  close(): Promise<void>;
}

/**
 * The app as buildApp assembles it, but with the LTI plugin alone: launches reach the default handlers
 * (other capabilities register their own handlers in the full app).
 */
export async function buildLtiOnlyApp(options: {
  config: Config;
  database: DatabaseHandle;
  logger: FastifyServerOptions['logger'];
}): Promise<App> {
  const { config, database } = options;
  const app = Fastify({
    logger: options.logger,
    ...requestIdOptions(),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    forceCloseConnections: 'idle',
    // No start-up deadline for plugins, as src/app.ts under NODE_ENV=test: a loaded machine is only slow.
    pluginTimeout: 0,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.decorate('config', config);
  app.decorate('db', database.db);
  app.decorate('dbKind', database.kind);
  registerErrorHandling(app);
  // The pages' scripts and stylesheets (/static/), as the full app serves them.
  registerStaticAssets(app);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(ltiPlugin);
  return app;
}

/**
 * The LTI app on its own database, a fake Open edX whose components are registered through a registrations
 * file (the production path), and log capture. `http: true` listens on a real port: the tool is reached as
 * http://localhost:<port> while the platform is http://127.0.0.1:<port> — two sites, as in production.
 */
export async function createLtiTestApp(
  options: {
    http?: boolean;
    fake?: Omit<FakeOpenEdxOptions, 'toolUrl'>;
    extraComponents?: ComponentOptions[];
    env?: Record<string, string>;
    extend?: (app: App) => unknown;
    /** The whole app (buildApp, every capability) instead of the LTI plugin alone. */
    full?: boolean;
  } = {},
): Promise<LtiTestContext> {
  const port = options.http ? await freePort() : 0;
  const publicUrl = options.http ? `http://localhost:${port}` : 'http://tool.test';
  const fake = await startFakeOpenEdx({ ...options.fake, toolUrl: publicUrl });
  for (const c of options.extraComponents ?? []) fake.addComponent(c);

  const dir = await mkdtemp(join(tmpdir(), 'emargement-lti-'));
  const file = join(dir, 'registrations.json');
  await writeFile(file, JSON.stringify(fake.registrations(), null, 2));

  const database = await createTestDatabase();
  const config = testConfig({ PUBLIC_URL: publicUrl, LTI_REGISTRATIONS_FILE: file, ...options.env });
  const logs: LogRecord[] = [];
  const logger = {
    ...(loggerOptions({ logLevel: 'info' }) as object),
    stream: {
      write: (line: string) => {
        logs.push(JSON.parse(line) as LogRecord);
      },
    },
  };
  const app = options.full
    ? await buildApp({ config, database, logger })
    : await buildLtiOnlyApp({ config, database, logger });
  await options.extend?.(app);
  await app.ready();
  if (options.http) await app.listen({ port, host: '127.0.0.1' });
  const transport = options.http ? httpTransport() : injectTransport(app, publicUrl);

  return {
    app,
    fake,
    config,
    database,
    transport,
    logs,
    lastRefusal() {
      const line = [...logs]
        .reverse()
        .find((l) => typeof l.msg === 'string' && /^lti (login|launch) refused$/.test(l.msg));
      return line ? { check: String(line.check), reason: String(line.reason), stage: String(line.stage) } : undefined;
    },
    async close() {
      await app.close();
      await database.close();
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
