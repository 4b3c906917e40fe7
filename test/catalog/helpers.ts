import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type App, buildApp } from '../../src/app.js';
import type { Config } from '../../src/config/index.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { loggerOptions } from '../../src/http/logger.js';
import {
  type ComponentOptions,
  type FakeComponent,
  type FakeOpenEdx,
  type FakeUser,
  httpTransport,
  injectTransport,
  type LaunchResult,
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

export interface CatalogTestContext {
  app: App;
  fake: FakeOpenEdx;
  config: Config;
  database: DatabaseHandle;
  transport: ToolTransport;
  publicUrl: string;
  logs: LogRecord[];
  /** A launch that must succeed with a page carrying a session token. */
  launch(user: FakeUser, component?: FakeComponent): Promise<LaunchResult & { sessionToken: string }>;
  close(): Promise<void>;
}

/**
 * The whole app (content imported from content/ at ready) with a fake Open edX registered through a
 * registrations file. `http: true` listens on a real port as http://localhost:<port>, the LMS being
 * http://127.0.0.1:<port>: two sites, as in production.
 */
export async function createCatalogTestApp(
  options: {
    http?: boolean;
    components?: ComponentOptions[];
    extend?: (app: App) => unknown;
    env?: Record<string, string>;
  } = {},
): Promise<CatalogTestContext> {
  const port = options.http ? await freePort() : 0;
  const publicUrl = options.http ? `http://localhost:${port}` : 'http://tool.test';
  const [first, ...others] = options.components ?? [{}];
  const fake = await startFakeOpenEdx({ toolUrl: publicUrl, component: first ?? {} });
  for (const c of others) fake.addComponent(c);

  const dir = await mkdtemp(join(tmpdir(), 'emargement-catalog-'));
  const file = join(dir, 'registrations.json');
  await writeFile(file, JSON.stringify(fake.registrations(), null, 2));

  const database = await createTestDatabase();
  const config = testConfig({ PUBLIC_URL: publicUrl, LTI_REGISTRATIONS_FILE: file, ...options.env });
  const logs: LogRecord[] = [];
  const app = await buildApp({
    config,
    database,
    logger: {
      ...(loggerOptions({ logLevel: 'info' }) as object),
      stream: { write: (line: string) => logs.push(JSON.parse(line) as LogRecord) },
    },
  });
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
    publicUrl,
    logs,
    async launch(user, component) {
      const result = await fake.launch({ user, transport, ...(component ? { component } : {}) });
      if (!result.sessionToken) {
        throw new Error(`launch failed: ${result.final.status} ${result.final.body.slice(0, 500)}`);
      }
      return result as LaunchResult & { sessionToken: string };
    },
    async close() {
      await app.close();
      await database.close();
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A valid onboarding form (SIRET with a correct Luhn key). */
export function onboardingForm(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    civility: 'madame',
    familyName: 'Durand',
    givenName: 'Léa',
    companyName: 'Hôtel du Parc',
    siret: '732 829 320 00074',
    headcountBand: '10-49',
    idcc: '',
    fund: '',
    ...overrides,
  };
}

/** The value of the `data-<name>` attribute of <body>. */
export function bodyData(html: string, name: string): string | undefined {
  const body = /<body\b[^>]*>/.exec(html)?.[0] ?? '';
  return new RegExp(`data-${name}="([^"]*)"`).exec(body)?.[1];
}
