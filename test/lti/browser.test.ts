import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeWithChromium,
  launchChromium,
  launchChromiumProfile,
  type ProfileBrowser,
} from '../helpers/chromium.js';
import { createLtiTestApp, type LtiTestContext } from './helpers.js';

/**
 * A real browser: the LMS course page on http://127.0.0.1:<port>, the tool in its iframe on
 * http://localhost:<port> — another site, so every tool cookie is a third-party cookie.
 */
let ctx: LtiTestContext;
let browser: Browser;
const profiles: ProfileBrowser[] = [];
beforeAll(async () => {
  ctx = await createLtiTestApp({ http: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  for (const profile of profiles) await profile.close();
  await ctx?.close();
});

/** A Chromium profile whose content settings block every cookie of every site (stricter than Safari). */
async function cookielessContext(): Promise<BrowserContext> {
  const profile = await launchChromiumProfile({
    default_content_setting_values: { cookies: 2 },
    block_third_party_cookies: true,
  });
  profiles.push(profile);
  return profile.context;
}

async function openCourse(options: { dropToolCookies: boolean }) {
  const context = options.dropToolCookies ? await cookielessContext() : await browser.newContext();
  const page = await context.newPage();
  const user = ctx.fake.createUser();
  await page.goto(ctx.fake.coursePageUrl({ user }));
  const frame = page.frameLocator('#lti-frame');
  await frame.getByRole('heading', { name: 'Connexion réussie' }).waitFor();
  return { context, page, user };
}

describeWithChromium('launch inside the LMS iframe (Chromium)', () => {
  it('shows the tool page and renews the session from inside the iframe', async () => {
    const { context, page } = await openCourse({ dropToolCookies: false });
    const toolFrame = page.frames().find((f) => f.url().startsWith(ctx.config.publicUrl));
    expect(toolFrame?.url()).toBe(`${ctx.config.publicUrl}/lti/launch`);
    const renewed = await toolFrame?.evaluate(async () => {
      const w = window as unknown as {
        emargementSession: { token(): string; fetch(u: string, i?: RequestInit): Promise<Response> };
      };
      const before = w.emargementSession.token();
      const res = await w.emargementSession.fetch('/api/session/renew', { method: 'POST' });
      const body = (await res.json()) as { token: string };
      const claims = (t: string) => JSON.parse(atob(t.split('.')[1]?.replace(/-/g, '+').replace(/_/g, '/') ?? ''));
      return { status: res.status, same: claims(body.token).launchId === claims(before).launchId };
    });
    expect(renewed).toEqual({ status: 200, same: true });
    // A default profile keeps the partitioned (CHIPS) state cookie of the iframe: the extra check ran.
    const accepted = ctx.logs.filter((l) => l.msg === 'lti launch accepted').at(-1);
    expect(accepted?.skippedChecks).toEqual([]);
    await context.close();
  });

  it('works with every cookie blocked', async () => {
    const { context, page } = await openCourse({ dropToolCookies: true });
    await expect(page.frameLocator('#lti-frame').getByText('apprenant').count()).resolves.toBeGreaterThan(0);
    const accepted = ctx.logs.filter((l) => l.msg === 'lti launch accepted').at(-1);
    expect(accepted?.skippedChecks).toContain('state_cookie');
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });
});
