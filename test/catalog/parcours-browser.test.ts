import type { BrowserContext, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeUser } from '../fixtures/openedx/index.js';
import {
  describeWithChromium,
  launchCrossSiteChromium,
  type ProfileBrowser,
  toolFrameOf,
} from '../helpers/chromium.js';
import type { ContentFixture } from './content-fixture.js';
import { type CatalogTestContext, createCatalogTestApp, onboardingForm } from './helpers.js';
import { createProgrammeFixture } from './programme-fixture.js';

/**
 * "Mon parcours" in Debian's Chromium, inside the fake LMS page (http://127.0.0.1:<port>) that frames the
 * tool (http://localhost:<port>): another site, third-party cookies blocked and every cookie of the tool
 * refused while framed (as in browser.test.ts). A link without custom parameters, at 375 px and 1280 px:
 * the 16 modules by week, the "what next" button into a module and back through "Mon parcours".
 */
let ctx: CatalogTestContext;
let fx: ContentFixture;
let browser: BrowserContext;
let profile: ProfileBrowser;
let page: Page;
let user: FakeUser;
const pageErrors: string[] = [];

beforeAll(async () => {
  fx = await createProgrammeFixture();
  ctx = await createCatalogTestApp({ http: true, env: { CONTENT_DIR: fx.dir }, components: [{ custom: {} }] });
  user = ctx.fake.createUser({ name: 'Nadia Rahmani' });
  // Onboarded beforehand (browser.test.ts covers the form in the browser).
  const launch = await ctx.launch(user, ctx.fake.components[0]);
  const onboarded = await ctx.app.inject({
    method: 'POST',
    url: '/catalog/onboarding',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      session_token: launch.sessionToken,
      ...onboardingForm({ fund: 'ocapiat' }),
    }).toString(),
  });
  expect(onboarded.statusCode).toBe(200);

  profile = await launchCrossSiteChromium(
    { lms: ctx.fake.url, tool: ctx.publicUrl },
    {
      viewport: { width: 375, height: 812 },
      locale: 'fr-FR',
    },
  );
  browser = profile.context;
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  await profile?.close();
  await ctx?.close();
  await fx?.cleanup();
});

const toolFrame = (): Frame => toolFrameOf(page, ctx.publicUrl);

const noHorizontalScroll = (frame: Frame) =>
  frame.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1);

describeWithChromium('Mon parcours in Chromium, framed by the LMS, cookies blocked', () => {
  it('shows the 16 modules by week at 375 px and 1280 px, and leads into a module and back', async () => {
    await page.goto(ctx.fake.coursePageUrl({ user }));
    const frame = page.frameLocator('#lti-frame');
    await expect.poll(() => frame.getByRole('heading', { level: 1 }).textContent()).toBe('Mon parcours');
    expect(await frame.locator('li.parcours-module').count()).toBe(16);
    expect(await frame.getByRole('heading', { level: 2, name: /^Semaine \d/ }).count()).toBe(4);
    expect(await noHorizontalScroll(toolFrame())).toBe(true);
    // Every module a link, within the frame's width.
    const widths = await toolFrame().evaluate(() =>
      [...document.querySelectorAll('li.parcours-module')].map((li) => li.getBoundingClientRect().right),
    );
    const frameWidth = await toolFrame().evaluate(() => document.documentElement.clientWidth);
    expect(widths.every((w) => w <= frameWidth + 1)).toBe(true);

    await page.setViewportSize({ width: 1280, height: 800 });
    expect(await noHorizontalScroll(toolFrame())).toBe(true);
    expect(await frame.locator('.parcours-summary').textContent()).toContain('Modules terminés : 0 sur 16.');

    // The one "what next" button opens the first module inside the frame (the session travels in the URL).
    await frame.locator('#parcours-suivant').click();
    await expect.poll(() => frame.locator('body').getAttribute('data-module-id')).toBe('common-digitalisation');
    expect(
      await frame.getByRole('navigation', { name: 'Votre formation' }).getByRole('link').allTextContents(),
    ).toEqual(['Mon parcours', 'Votre temps de connexion']);
    expect(await frame.locator('p.next a').textContent()).toBe(
      'Module suivant : Module 2 du thème digitalisation (common)',
    );
    // Ticking the activity changes nothing on the server: the box is only in the page.
    await frame.locator('[data-block-type="activity"] input[type="checkbox"]').first().check();
    expect(await frame.locator('[data-block-type="activity"] input[type="checkbox"]').first().isChecked()).toBe(true);
    await frame.locator('details.debrief summary').click();
    expect(await frame.locator('details.debrief').getAttribute('open')).not.toBeNull();

    await page.setViewportSize({ width: 375, height: 812 });
    expect(await noHorizontalScroll(toolFrame())).toBe(true);
    await frame.getByRole('link', { name: 'Mon parcours' }).click();
    await expect.poll(() => frame.getByRole('heading', { level: 1 }).textContent()).toBe('Mon parcours');
    // The module opened is now "en cours".
    expect(await frame.locator('li[data-module-id="common-digitalisation"]').getAttribute('data-status')).toBe(
      'started',
    );
    expect(await frame.locator('#parcours-suivant').textContent()).toBe(
      'Reprendre : Module 1 du thème digitalisation (common)',
    );
    expect(await noHorizontalScroll(toolFrame())).toBe(true);
    // No cookie of the tool was kept, and no script error.
    const toolHost = new URL(ctx.publicUrl).hostname;
    expect((await browser.cookies()).filter((c) => c.domain.replace(/^\./, '') === toolHost)).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
