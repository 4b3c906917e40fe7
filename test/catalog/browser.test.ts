import type { BrowserContext, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeUser } from '../fixtures/openedx/index.js';
import {
  describeWithChromium,
  launchCrossSiteChromium,
  type ProfileBrowser,
  toolFrameOf,
} from '../helpers/chromium.js';
import { type CatalogTestContext, createCatalogTestApp } from './helpers.js';

/**
 * Debian's Chromium, the fake LMS page (http://127.0.0.1:<port>) holding the tool (http://localhost:<port>)
 * in an iframe: another site. The browser profile blocks third-party cookies and, to leave no doubt,
 * every cookie of the tool while it is embedded by the LMS (partitioned ones included, as Safari does).
 * A learner goes through onboarding (with a mistake first) and completes a module.
 */
let ctx: CatalogTestContext;
let browser: BrowserContext;
let profile: ProfileBrowser;
let page: Page;
let user: FakeUser;
const toolSetCookies: string[] = [];

beforeAll(async () => {
  ctx = await createCatalogTestApp({ http: true, components: [{ custom: { theme: 'visibilite' } }] });
  profile = await launchCrossSiteChromium(
    { lms: ctx.fake.url, tool: ctx.publicUrl },
    {
      viewport: { width: 390, height: 844 },
      locale: 'fr-FR',
    },
  );
  browser = profile.context;
  page = await browser.newPage();
  page.on('response', (r) => {
    if (!r.url().startsWith(ctx.publicUrl)) return;
    // headers() leaves Set-Cookie out; headerValue() reads the raw header.
    void r.headerValue('set-cookie').then((c) => {
      if (c) toolSetCookies.push(c);
    });
  });
  user = ctx.fake.createUser({ name: 'Nadia Rahmani' });
});

afterAll(async () => {
  await profile?.close();
  await ctx?.close();
});

const toolFrame = (): Frame => toolFrameOf(page, ctx.publicUrl);

async function noHorizontalScroll(frame: Frame): Promise<boolean> {
  return frame.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1);
}

describeWithChromium('in Chromium, inside the LMS page, third-party cookies blocked', () => {
  it('a learner onboards (a mistake kept and explained first), then completes their fund’s module', async () => {
    await page.goto(ctx.fake.coursePageUrl({ user }));
    const frame = page.frameLocator('#lti-frame');
    await expect.poll(() => frame.getByRole('heading', { level: 1 }).textContent()).toBe('Avant de commencer');

    // Onboarding by labels (what a screen reader announces): names prefilled from Open edX.
    expect(await frame.getByLabel('Prénom').inputValue()).toBe('Nadia');
    expect(await frame.getByLabel('Nom', { exact: true }).inputValue()).toBe('Rahmani');
    await frame.getByLabel('Madame').check();
    await frame.getByLabel('Nom de l’entreprise qui vous emploie').fill('Hôtel des Lilas');
    await frame.getByLabel('Numéro SIRET de l’entreprise').fill('732 829 320 00075');
    await frame.getByLabel('De 10 à 49 salariés').check();
    await frame.getByLabel('Fonds de formation (OPCO) de l’entreprise').selectOption('akto');
    await frame.getByRole('button', { name: 'Enregistrer et commencer' }).click();

    // Refused: the summary gets the focus, every typed value is still there.
    await expect.poll(() => frame.locator('#erreurs').isVisible()).toBe(true);
    await expect.poll(() => toolFrame().evaluate(() => document.activeElement?.id)).toBe('erreurs');
    expect(await frame.locator('#erreurs').textContent()).toContain('Ce numéro SIRET n’existe pas');
    expect(await frame.getByLabel('Nom de l’entreprise qui vous emploie').inputValue()).toBe('Hôtel des Lilas');
    expect(await frame.getByLabel('De 10 à 49 salariés').isChecked()).toBe(true);
    expect(await frame.getByLabel('Fonds de formation (OPCO) de l’entreprise').inputValue()).toBe('akto');
    expect(await frame.getByLabel('Numéro SIRET de l’entreprise').getAttribute('aria-invalid')).toBe('true');

    // The learner follows the link of the summary to the field, corrects it with the keyboard and submits.
    await frame.locator('#erreurs a').first().click();
    await expect.poll(() => toolFrame().evaluate(() => document.activeElement?.id)).toBe('champ-siret');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('732 829 320 00074');
    await page.keyboard.press('Enter');

    // The AKTO module of the theme.
    await expect.poll(() => frame.locator('body').getAttribute('data-module-id')).toBe('akto-visibilite');
    expect(await frame.getByRole('status').first().textContent()).toContain('Merci, votre profil est enregistré.');
    expect(await noHorizontalScroll(toolFrame())).toBe(true);

    // Every part marked as seen through the JSON API (no reload: the page keeps its URL and progress updates).
    const buttons = frame.getByRole('button', { name: 'J’ai terminé cette partie' });
    const parts = await buttons.count();
    expect(parts).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < parts; i++) {
      if (i === 0) {
        // Keyboard: focus the button, press Space.
        await buttons.first().focus();
        await page.keyboard.press('Space');
      } else await buttons.first().click();
      await expect
        .poll(() => frame.locator('#progress-text').textContent())
        .toContain(`${i + 1} partie${i > 0 ? 's terminées' : ' terminée'}`);
      expect(await buttons.count()).toBe(parts - i - 1);
    }
    expect(Number(await frame.locator('#progress-bar').getAttribute('value'))).toBe(parts);

    // The quiz: one radio group per question, each labelled.
    const groups = frame.locator('fieldset.choices');
    const questions = await groups.count();
    for (let q = 0; q < questions; q++) await groups.nth(q).getByRole('radio').first().check();
    await frame.getByRole('button', { name: 'Valider mes réponses' }).click();
    await expect
      .poll(() => frame.locator('#completion').textContent())
      .toContain('Bravo, vous avez terminé ce module.');
    expect(await frame.locator('.quiz-score').textContent()).toMatch(
      /Vous avez \d bonnes? réponses? sur \d\. Le quiz est enregistré\./,
    );
    expect(await frame.locator('.feedback').count()).toBe(questions);

    // Recorded in the database as evidence.
    const learner = await ctx.app.db
      .selectFrom('learners')
      .select('id')
      .where('sub', '=', user.sub)
      .executeTakeFirstOrThrow();
    const row = await ctx.app.db
      .selectFrom('module_progress')
      .select(['module_id', 'completed_at', 'blocks_seen', 'quiz_answers'])
      .where('learner_id', '=', learner.id)
      .executeTakeFirstOrThrow();
    expect(row.module_id).toBe('akto-visibilite');
    expect(row.completed_at).toBeInstanceOf(Date);
    expect(Object.keys(row.blocks_seen)).toHaveLength(parts);
    expect(row.quiz_answers?.total).toBe(questions);

    // And on a small laptop the page still fits.
    await page.setViewportSize({ width: 1280, height: 720 });
    expect(await noHorizontalScroll(toolFrame())).toBe(true);
  });

  it('proves the tool had no cookie: what it set was dropped, and a framed page cannot keep one', async () => {
    // The tool did try (the LTI login's state cookie)…
    expect(toolSetCookies.join('\n')).toMatch(/SameSite=None/);
    // …but the browser kept no cookie of the tool's site.
    const toolHost = new URL(ctx.publicUrl).hostname;
    expect((await browser.cookies()).filter((c) => c.domain.replace(/^\./, '') === toolHost)).toEqual([]);
    // A cookie written by the framed tool page is not kept either.
    const framed = await toolFrame().evaluate(() => {
      // biome-ignore lint/suspicious/noDocumentCookie: the legacy cookie API is what is being probed.
      document.cookie = 'probe=1; SameSite=None; Secure; Path=/';
      // biome-ignore lint/suspicious/noDocumentCookie: same probe, as a partitioned (CHIPS) cookie.
      document.cookie = 'probe2=1; SameSite=None; Secure; Path=/; Partitioned';
      return document.cookie;
    });
    expect(framed).toBe('');
    // Control: the same tool opened as a top-level page keeps cookies, so the probe itself works.
    const top = await browser.newPage();
    await top.goto(`${ctx.publicUrl}/assets/video-placeholder.html`);
    const topLevel = await top.evaluate(() => {
      // biome-ignore lint/suspicious/noDocumentCookie: the legacy cookie API is what is being probed.
      document.cookie = 'probe=1; SameSite=None; Secure; Path=/';
      return document.cookie;
    });
    expect(topLevel).toBe('probe=1');
    await top.close();
  });
});
