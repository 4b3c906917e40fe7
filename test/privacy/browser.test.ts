import { readFile } from 'node:fs/promises';
import type { Browser, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LearnerDataExport } from '../../src/privacy/index.js';
import { type CatalogTestContext, createCatalogTestApp, onboardingForm } from '../catalog/helpers.js';
import type { FakeComponent, FakeUser } from '../fixtures/openedx/index.js';
import { describeWithChromium, findToolFrame, launchChromium } from '../helpers/chromium.js';

/**
 * Debian's Chromium, the fake LMS page (http://127.0.0.1:<port>) holding the tool (http://localhost:<port>)
 * in an iframe: another site, so the tool gets no cookie. From the learner's module page: the « Vos données »
 * link opens the notice in a new tab; the time page's POST form downloads the learner's data, the session
 * token travelling in the form body and never in a URL the browser requested.
 */
let ctx: CatalogTestContext;
let browser: Browser;
let user: FakeUser;
let component: FakeComponent;
let learnerId: string;
const requestedUrls: string[] = [];

beforeAll(async () => {
  ctx = await createCatalogTestApp({ http: true, components: [{ custom: { theme: 'visibilite' } }] });
  [component] = ctx.fake.components as [FakeComponent];
  user = ctx.fake.createUser({ name: 'Nadia Rahmani' });
  const launch = await ctx.launch(user, component);
  const onboarded = await ctx.app.inject({
    method: 'POST',
    url: '/catalog/onboarding',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      session_token: launch.sessionToken,
      ...onboardingForm({ fund: 'akto' }),
    }).toString(),
  });
  expect(onboarded.statusCode).toBe(200);
  learnerId = (
    await ctx.app.db.selectFrom('learners').select('id').where('sub', '=', user.sub).executeTakeFirstOrThrow()
  ).id;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await ctx?.close();
});

async function toolFrame(page: Page): Promise<Frame> {
  let frame: Frame | undefined;
  await expect
    .poll(async () => {
      frame = findToolFrame(page, ctx.publicUrl);
      return frame ? frame.locator('main').count() : 0;
    })
    .toBe(1);
  return frame as Frame;
}

describeWithChromium('a learner in the LMS iframe', () => {
  it('opens « Vos données » and downloads their data from the time page', async () => {
    const context = await browser.newContext({
      viewport: { width: 1024, height: 800 },
      locale: 'fr-FR',
      acceptDownloads: true,
    });
    try {
      const page = await context.newPage();
      page.on('request', (r) => requestedUrls.push(r.url()));
      await page.goto(ctx.fake.coursePageUrl({ user, component }));
      let frame = await toolFrame(page);
      await expect.poll(() => frame.locator('#emargement-tracker-config').count()).toBe(1);

      // The notice, from the module page, in a new tab.
      const [notice] = await Promise.all([
        context.waitForEvent('page'),
        frame.locator('a[data-privacy-notice]').click(),
      ]);
      await notice.waitForLoadState('domcontentloaded');
      expect(new URL(notice.url()).pathname).toBe('/vos-donnees');
      expect(await notice.locator('h1').textContent()).toBe('Vos données personnelles');
      await notice.close();

      // The time page, then the JSON download through the POST form.
      await frame.locator('a', { hasText: 'Votre temps de connexion' }).click();
      await expect.poll(() => frame.url()).toContain('/tracking/time');
      frame = await toolFrame(page);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        frame.locator('form[data-privacy-export="json"] button').click(),
      ]);
      expect(download.suggestedFilename()).toMatch(/^mes-donnees-\d{4}-\d{2}-\d{2}\.json$/);
      const data = JSON.parse(await readFile((await download.path()) as string, 'utf8')) as LearnerDataExport;
      expect(data.learner.id).toBe(learnerId);
      expect(data.profile?.familyName).toBe('Durand');
      expect(data.company?.siret).toBe('73282932000074');

      // No URL the browser asked for carried the token toward the export.
      const exportRequests = requestedUrls.filter((u) => u.includes('/privacy/export'));
      expect(exportRequests.length).toBeGreaterThanOrEqual(1);
      for (const u of exportRequests) expect(new URL(u).search).toBe('');
    } finally {
      await context.close();
    }
  });
});
