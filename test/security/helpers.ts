import type { RouteOptions } from 'fastify';
import { type App, buildApp } from '../../src/app.js';
import type { Config } from '../../src/config/index.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { loggerOptions } from '../../src/http/logger.js';
import { testConfig } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface SecurityTestContext {
  app: App;
  config: Config;
  database: DatabaseHandle;
  /** Every log line the app wrote (JSON, after redaction). */
  logs: LogRecord[];
  /** Every route the app registered (method and URL pattern, with its options). */
  routes: RouteOptions[];
  close(): Promise<void>;
}

/** The whole app (every capability) on a database of this file's own, capturing its log lines. */
export async function createSecurityTestApp(
  options: { env?: Record<string, string>; extend?: (app: App) => unknown } = {},
): Promise<SecurityTestContext> {
  const database = await createTestDatabase();
  const config = testConfig(options.env);
  const logs: LogRecord[] = [];
  const logger = {
    ...(loggerOptions({ logLevel: 'info' }) as object),
    stream: { write: (line: string) => void logs.push(JSON.parse(line) as LogRecord) },
  };
  const routes: RouteOptions[] = [];
  const app = await buildApp({ config, database, logger, onRoute: (route) => routes.push(route) });
  await options.extend?.(app);
  await app.ready();
  return {
    app,
    config,
    database,
    logs,
    routes,
    close: async () => {
      await app.close();
      await database.close();
    },
  };
}

/** pino's level number for `error`. */
export const ERROR_LEVEL = 50;
