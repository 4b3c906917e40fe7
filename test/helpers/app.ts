import { type App, buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config/index.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { createTestDatabase } from './db.js';

export interface TestContext {
  app: App;
  database: DatabaseHandle;
  config: Config;
  close(): Promise<void>;
}

/** Test configuration: the real loader over a test environment, so validation runs here too. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    PUBLIC_URL: 'http://tool.test',
    APP_SECRET: 'test-app-secret-0123456789-abcdefghijklmnop',
    MIGRATE_ON_START: 'false',
    DATA_DIR: '/tmp/emargement-test-data',
    ...env,
  });
}

/** The whole app on a fresh database of this file's own; call close() in afterAll. */
export async function createTestApp(
  options: { env?: Record<string, string>; extend?: (app: App) => unknown } = {},
): Promise<TestContext> {
  const database = await createTestDatabase();
  const config = testConfig(options.env);
  const app = await buildApp({ config, database });
  await options.extend?.(app);
  await app.ready();
  return {
    app,
    database,
    config,
    close: async () => {
      await app.close();
      await database.close();
    },
  };
}
