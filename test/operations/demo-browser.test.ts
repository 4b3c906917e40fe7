import type { Browser, FrameLocator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { testConfig } from '../helpers/app.js';
import { describeWithChromium, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';

/**
 * The newcomer's path in Debian's Chromium, with no LMS at all: the landing page, the built-in demo LMS
 * (DEMO_LMS=true, as development has it), a new learner's launch through the real OIDC login and form_post,
 * onboarding, the module, the connection-time page; then a returning learner, « Mon parcours », the course
 * team, and a deep-linking pick that becomes a unit of the demo course.
 */
let app: App;
let database: DatabaseHandle;
let browser: Browser;
let page: Page;
let base: string;

beforeAll(async () => {
  const port = await freePort();
  base = `http://localhost:${port}`;
  database = await createTestDatabase();
  app = await buildApp({ config: testConfig({ PUBLIC_URL: base, DEMO_LMS: 'true' }), database });
  await app.ready();
  // Both loopback addresses: the browser and the tool's own JWKS fetch may resolve localhost either way.
  await app.listen({ port, host: 'localhost' });
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'fr-FR' });
  page = await context.newPage();
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await database?.close();
});

const tool = (): FrameLocator => page.frameLocator('#lti-frame');

async function launches(): Promise<{ message_type: string }[]> {
  return app.db.selectFrom('lti_launches').select('message_type').execute();
}

describeWithChromium('the demo LMS in Chromium', () => {
  it('takes a newcomer from the landing page to a module and their connection time', async () => {
    await page.goto(`${base}/`);
    expect(await page.locator('h1').textContent()).toBe('Émargement');
    expect(await page.locator('#etat').textContent()).toContain('Plateformes enregistrées');
    await page.getByRole('link', { name: 'Essayer sans LMS' }).click();
    await page.waitForURL(`${base}/demo`);

    await page.locator('#unit').selectOption('visibilite');
    await page.getByRole('button', { name: 'Ouvrir l’unité' }).click();
    await page.waitForURL(/\/demo\/unit\?.*sub=/);

    // Inside the iframe: login → the demo platform's authentication endpoint → form_post → onboarding.
    const frame = tool();
    await frame.locator('#champ-familyName').waitFor();
    await frame.locator('#champ-civility-madame').check();
    await frame.locator('#champ-familyName').fill('Rahmani');
    await frame.locator('#champ-givenName').fill('Nadia');
    await frame.locator('#champ-companyName').fill('Boulangerie du Parc');
    await frame.locator('#champ-siret').fill('732 829 320 00074');
    await frame.locator('#champ-headcountBand-0').check();
    await frame.locator('#champ-fund').selectOption('akto');
    await frame.getByRole('button', { name: 'Enregistrer et commencer' }).click();

    // The module of the learner's fund for the theme, then their connection time.
    await expect.poll(() => frame.locator('body').getAttribute('data-module-id')).toMatch(/akto/);
    await frame.getByRole('link', { name: 'Votre temps de connexion' }).click();
    await expect
      .poll(async () => {
        const timePage = page.frames().find((f) => new URL(f.url()).pathname === '/tracking/time');
        return timePage ? await timePage.title() : null;
      })
      .toContain('Votre temps de connexion');
    expect((await launches()).filter((l) => l.message_type === 'LtiResourceLinkRequest')).toHaveLength(1);
  });

  it('launches a returning learner straight into a module, and « Mon parcours » without theme or module', async () => {
    await page.goto(`${base}/demo`);
    const returning = page.locator('#sub option').nth(1);
    expect(await returning.textContent()).toContain('déjà venu');
    await page.locator('#sub').selectOption((await returning.getAttribute('value')) as string);
    await page.locator('#unit').selectOption('digitalisation');
    await page.getByRole('button', { name: 'Ouvrir l’unité' }).click();
    await expect.poll(() => tool().locator('body').getAttribute('data-module-id')).toBeTruthy();
    expect(await tool().locator('#champ-familyName').count()).toBe(0);

    const before = (await launches()).length;
    await page.getByRole('link', { name: 'Mon parcours' }).click();
    await expect.poll(async () => (await launches()).length).toBe(before + 1);
    const last = await app.db
      .selectFrom('lti_launches')
      .innerJoin('resource_links', 'resource_links.id', 'lti_launches.resource_link_id')
      .select('resource_links.custom')
      .orderBy('lti_launches.created_at', 'desc')
      .executeTakeFirst();
    expect(last?.custom ?? {}).toEqual({});
  });

  it('launches the course team, and places a module by deep linking as a new unit', async () => {
    await page.goto(`${base}/demo`);
    await page.locator('input[name="as"][value="instructor"]').check();
    await page.locator('#unit').selectOption('visibilite');
    await page.getByRole('button', { name: 'Ouvrir l’unité' }).click();
    expect(await page.locator('nav').textContent()).toContain('équipe pédagogique');
    await expect.poll(() => tool().locator('h1').first().textContent()).toBeTruthy();

    await page.goto(`${base}/demo/pick`);
    const picker = tool();

    await picker.locator('input[name="item"]').first().check();
    const title = (await picker.locator('label.choice').first().locator('span').first().textContent()) ?? '';
    await picker.getByRole('button', { name: 'Ajouter au cours' }).click();
    await expect.poll(() => picker.locator('h1').first().textContent()).toBe('Contenu ajouté au cours');
    await picker.getByRole('link', { name: 'Retour au cours de démonstration' }).click();
    await page.waitForURL(/\/demo\?added=1/);
    const units = await page.locator('#unit option').allTextContents();
    expect(units).toHaveLength(5);
    expect(title.startsWith(units[4] as string)).toBe(true);
    expect((await launches()).some((l) => l.message_type === 'LtiDeepLinkingRequest')).toBe(true);
  });
});
