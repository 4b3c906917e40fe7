/**
 * Takes the README's screenshots of the main pages into docs/screenshots/, with Debian's Chromium
 * (/usr/bin/chromium, through playwright-core; no browser is downloaded) against the service on an in-memory
 * database with the built-in demo LMS:
 *
 *   node --import tsx test/tools/screenshots.ts        (npm run screenshots)
 *
 * Run it again after changing a page: the files are overwritten, the README links stay.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type FrameLocator, type Page } from 'playwright-core';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createDatabase, migrateToLatest } from '../../src/db/index.js';

const OUT = join(process.cwd(), 'docs', 'screenshots');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const database = await createDatabase({});
  await migrateToLatest(database.db);
  const config = loadConfig({
    NODE_ENV: 'development',
    PUBLIC_URL: base,
    APP_SECRET: 'screenshots-secret-0123456789abcdefghijkl',
    MIGRATE_ON_START: 'false',
    SCHEDULED_TASKS: 'false',
    DEMO_LMS: 'true',
    LOG_LEVEL: 'warn',
  });
  const app = await buildApp({ config, database });
  await app.ready();
  await app.listen({ port, host: 'localhost' });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'fr-FR' });
    const page = await context.newPage();
    const shot = async (name: string, p: Page = page) => {
      await p.evaluate(() => window.scrollTo(0, 0));
      await p.screenshot({ path: join(OUT, `${name}.png`) });
      process.stdout.write(`docs/screenshots/${name}.png\n`);
    };
    const tool = (): FrameLocator => page.frameLocator('#lti-frame');

    await page.goto(`${base}/`);
    await shot('landing');
    await page.goto(`${base}/openedx-config`);
    await shot('openedx-config');
    await page.goto(`${base}/demo`);
    await shot('demo');

    await page.locator('#unit').selectOption('visibilite');
    await page.getByRole('button', { name: 'Ouvrir l’unité' }).click();
    await tool().locator('#champ-familyName').waitFor();
    await shot('onboarding');
    await tool().locator('#champ-civility-madame').check();
    await tool().locator('#champ-familyName').fill('Rahmani');
    await tool().locator('#champ-givenName').fill('Nadia');
    await tool().locator('#champ-companyName').fill('Boulangerie du Parc');
    await tool().locator('#champ-siret').fill('732 829 320 00074');
    await tool().locator('#champ-headcountBand-0').check();
    await tool().locator('#champ-fund').selectOption('akto');
    await tool().getByRole('button', { name: 'Enregistrer et commencer' }).click();
    await tool().locator('body[data-module-id]').waitFor();
    await shot('module');
    await tool().getByRole('link', { name: 'Votre temps de connexion' }).click();
    await page.waitForFunction(() =>
      [...document.querySelectorAll('iframe')].some((f) => f.contentWindow?.location.pathname === '/tracking/time'),
    );
    await shot('connection-time');

    await page.goto(`${base}/demo/pick`);
    await tool().locator('input[name="item"]').first().waitFor();
    await shot('deep-linking');
    await page.goto(`${base}/demo`);
    await page.locator('input[name="as"][value="instructor"]').check();
    await page.locator('#unit').selectOption('visibilite');
    await page.getByRole('button', { name: 'Ouvrir l’unité' }).click();
    await tool().locator('h1').first().waitFor();
    await shot('course-team');

    await page.goto(`${base}/portal`);
    await shot('portal');
    await page.goto(`${base}/verify`);
    await shot('verify');
  } finally {
    await browser.close();
    await app.close();
    await database.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
