import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getLearnerTimes, settleTracking } from '../../src/tracking/index.js';
import { setTrackingProfile } from '../../src/tracking/plugin.js';
import { creditCourse, PROFILES } from '../../src/tracking/rules.js';
import { type CatalogTestContext, createCatalogTestApp, onboardingForm } from '../catalog/helpers.js';
import type { FakeComponent, FakeUser } from '../fixtures/openedx/index.js';
import { describeWithChromium, findToolFrame, launchChromium } from '../helpers/chromium.js';

/**
 * Debian's Chromium, the fake LMS page (http://127.0.0.1:<port>) holding the module page of the tool
 * (http://localhost:<port>) in an iframe: another site. The tracker runs with the `accelerated` profile
 * (the specification's rules at 1/30 of the time scale: beat 1 s, idle 6 s, gap 2.5 s, spacing 666 ms),
 * the server records that profile on each tab and in its totals, and the expectation is computed with the
 * same pure crediting functions.
 *
 * Headless Chromium never reports a page as hidden (no window is ever occluded or minimized, and
 * Playwright keeps every page active on purpose): "hidden" is the one thing simulated here, by overriding
 * `document.visibilityState` in the tool frame and dispatching a real `visibilitychange` event.
 * Everything else is real: trusted mouse input, timers, fetch, sendBeacon on pagehide, the ingest, the database.
 */
const P = PROFILES.accelerated;
let ctx: CatalogTestContext;
let browser: Browser;
let context: BrowserContext;
let user: FakeUser;
let components: FakeComponent[];
let learnerId: string;
let courseId: string;
const beatRequests: number[] = [];
const trackerConsole: string[] = [];

beforeAll(async () => {
  ctx = await createCatalogTestApp({
    http: true,
    components: [{ custom: { theme: 'visibilite' } }, { custom: { theme: 'digitalisation' } }],
    extend: (app) => setTrackingProfile(app, 'accelerated'),
  });
  components = ctx.fake.components;
  user = ctx.fake.createUser({ name: 'Nadia Rahmani' });
  const launch = await ctx.launch(user, components[0]);
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
  const learner = await ctx.app.db
    .selectFrom('learners')
    .select('id')
    .where('sub', '=', user.sub)
    .executeTakeFirstOrThrow();
  learnerId = learner.id;
  const course = await ctx.app.db.selectFrom('courses').select('id').executeTakeFirstOrThrow();
  courseId = course.id;
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1024, height: 800 }, locale: 'fr-FR' });
});

afterAll(async () => {
  await browser?.close();
  await ctx?.close();
});

async function openModule(component: FakeComponent): Promise<{ page: Page; frame: Frame; tabId: string }> {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.location().url.includes('/assets/tracker.js')) trackerConsole.push(m.text());
  });
  page.on('pageerror', (e) => trackerConsole.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (r.url().endsWith('/api/tracking/beats')) beatRequests.push(Date.now());
  });
  await page.goto(ctx.fake.coursePageUrl({ user, component }));
  let frame: Frame | undefined;
  await expect
    .poll(async () => {
      frame = findToolFrame(page, ctx.publicUrl);
      return frame
        ? frame.evaluate(
            () => (window as { emargementTracker?: { tabId(): string } }).emargementTracker?.tabId() ?? null,
          )
        : null;
    })
    .toMatch(/^[0-9a-f-]{36}$/);
  const f = frame as Frame;
  const tabId = (await f.evaluate(() =>
    (window as unknown as { emargementTracker: { tabId(): string } }).emargementTracker.tabId(),
  )) as string;
  return { page, frame: f, tabId };
}

/** Trusted pointer input over the iframe, every 200 ms, for `ms`. */
async function activeFor(page: Page, ms: number): Promise<number> {
  const box = await page.locator('#lti-frame').boundingBox();
  if (!box) throw new Error('no iframe box');
  const end = Date.now() + ms;
  let i = 0;
  while (Date.now() < end) {
    await page.mouse.move(box.x + 100 + (i++ % 2) * 40, box.y + 200);
    await new Promise((r) => setTimeout(r, 200));
  }
  await page.mouse.move(box.x + 160, box.y + 220);
  return Date.now();
}

/** Waits for the next beat request, then `after` ms more: the next change of state then comes mid-interval. */
async function midInterval(after = 750): Promise<number> {
  const seen = beatRequests.length;
  await expect.poll(() => beatRequests.length, { interval: 20 }).toBeGreaterThan(seen);
  const at = (beatRequests[beatRequests.length - 1] as number) + after;
  await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
  return Date.now();
}

/** The tab's row once everything acknowledged so far is credited (read-your-writes). */
async function tab(tabId: string) {
  await settleTracking(ctx.app.db, { learnerId });
  return ctx.app.db.selectFrom('tracking_tabs').selectAll().where('id', '=', tabId).executeTakeFirst();
}

async function creditedMs(): Promise<number> {
  const row = await ctx.app.db
    .selectFrom('time_course_totals')
    .select('credited_ms')
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .executeTakeFirst();
  return row?.credited_ms ?? 0;
}

describeWithChromium('the tracker in Chromium, inside the LMS page (another site)', () => {
  it('credits the visible and active time, not the hidden nor the idle time, within one beat interval', async () => {
    const { page, frame, tabId } = await openModule(components[1] as FakeComponent);
    const moduleId = await frame.evaluate(() => document.body.dataset.moduleId as string);
    // The one simulated signal (see above): document.visibilityState, with a real visibilitychange event.
    await frame.evaluate(() => {
      let hidden = false;
      Object.defineProperty(document, 'visibilityState', {
        configurable: true,
        get: () => (hidden ? 'hidden' : 'visible'),
      });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
      (window as unknown as { setHidden(h: boolean): void }).setHidden = (h: boolean) => {
        hidden = h;
        document.dispatchEvent(new Event('visibilitychange'));
      };
    });
    await expect.poll(async () => (await tab(tabId))?.opened_at ?? null).not.toBeNull();
    const opened = (await tab(tabId))?.opened_at?.getTime() ?? Number.NaN;
    expect((await tab(tabId))?.profile).toBe('accelerated');

    // 1. Visible, with input, for about 8 s.
    await activeFor(page, 7_500);
    const hiddenAt = await midInterval();
    await frame.evaluate(() => (window as unknown as { setHidden(h: boolean): void }).setHidden(true));
    // 2. Hidden for 4 s (longer than the gap): nothing is sent, nothing will be credited.
    const beatsBeforeHidden = beatRequests.length;
    await new Promise((r) => setTimeout(r, 4_000));
    expect(beatRequests.length - beatsBeforeHidden).toBeLessThanOrEqual(1); // only the hidden beat itself
    // 3. Visible again: one input, then the learner stops touching anything.
    const box = await page.locator('#lti-frame').boundingBox();
    // An input as the page comes back (the last one was more than idleMs ago: without it, the page would be
    // idle at once, and beats-v2 rightly credits nothing until the next input).
    await page.mouse.move((box?.x ?? 0) + 130, (box?.y ?? 0) + 250);
    await frame.evaluate(() => (window as unknown as { setHidden(h: boolean): void }).setHidden(false));
    const resumedAt = Date.now();
    const lastInput = await midInterval();
    await page.mouse.move((box?.x ?? 0) + 120, (box?.y ?? 0) + 260);
    // Idle comes idleMs after the last input; then 4 s more with no input and no beat.
    await new Promise((r) => setTimeout(r, P.idleMs + 4_000));
    const beatsAtEnd = beatRequests.length;
    await new Promise((r) => setTimeout(r, 2_000));
    expect(beatRequests.length).toBe(beatsAtEnd);

    const runs = await ctx.app.db
      .selectFrom('tracking_runs')
      .selectAll()
      .where('tab_id', '=', tabId)
      .orderBy('started_at')
      .execute();
    // Each run ended by its stop beat: hidden, then idle.
    expect(runs.map((r) => r.stop_cause)).toEqual(['hidden', 'idle']);
    const expected = creditCourse({
      runs: [
        { runId: 'visible', tabId, moduleId, startMs: opened, endMs: hiddenAt },
        { runId: 'back', tabId, moduleId, startMs: resumedAt, endMs: lastInput + P.idleMs },
      ],
      nominalMinutes: { [moduleId]: 15 },
    });
    const credited = await creditedMs();
    expect(Math.abs(credited - expected.creditedMs)).toBeLessThanOrEqual(P.beatIntervalMs);
    // The totals say which parameters applied.
    const times = await getLearnerTimes(ctx.app.db, learnerId, courseId);
    expect(times.params).toMatchObject({
      algorithm: 'beats-v2',
      runProfiles: { accelerated: { gapMs: 2_500, idleMs: 6_000 } },
    });
    await page.close();
  });

  it('counts two tabs open at once only once, and closes both with sendBeacon', async () => {
    const before = await creditedMs();
    const [a, b] = await Promise.all([
      openModule(components[0] as FakeComponent),
      openModule(components[1] as FakeComponent),
    ]);
    expect(a.tabId).not.toBe(b.tabId);
    await Promise.all([activeFor(a.page, 6_000), activeFor(b.page, 6_000)]);
    // Leaving both pages: pagehide → sendBeacon (the fetch path may already be gone).
    await Promise.all([a.page.goto('about:blank'), b.page.goto('about:blank')]);
    const left = Date.now();
    await expect
      .poll(async () => [(await tab(a.tabId))?.closed_at ?? null, (await tab(b.tabId))?.closed_at ?? null])
      .toEqual([expect.any(Date), expect.any(Date)]);
    const opens = [(await tab(a.tabId))?.opened_at as Date, (await tab(b.tabId))?.opened_at as Date].map((d) =>
      d.getTime(),
    );
    const closes = [(await tab(a.tabId))?.closed_at as Date, (await tab(b.tabId))?.closed_at as Date].map((d) =>
      d.getTime(),
    );
    expect(Math.max(...closes)).toBeLessThanOrEqual(left + 1_000);
    const union = creditCourse({
      runs: [
        { runId: 'a', tabId: a.tabId, moduleId: 'a', startMs: opens[0] as number, endMs: closes[0] as number },
        { runId: 'b', tabId: b.tabId, moduleId: 'b', startMs: opens[1] as number, endMs: closes[1] as number },
      ],
      nominalMinutes: { a: 15, b: 15 },
    });
    const both = (closes[0] as number) - (opens[0] as number) + ((closes[1] as number) - (opens[1] as number));
    const added = (await creditedMs()) - before;
    expect(Math.abs(added - union.creditedMs)).toBeLessThanOrEqual(P.beatIntervalMs);
    expect(added).toBeLessThan(both - 3_000);
    // Close events came from the beacon, and the tracker wrote nothing to the console.
    const closesStored = await ctx.app.db
      .selectFrom('tracking_events')
      .select('tab_id')
      .where('kind', '=', 'close')
      .where('tab_id', 'in', [a.tabId, b.tabId])
      .execute();
    expect(closesStored).toHaveLength(2);
    expect(trackerConsole).toEqual([]);
  });

  it('keeps the beats that failed and sends them again with their own seq: each received once, none missing', async () => {
    const { page, frame, tabId } = await openModule(components[1] as FakeComponent);
    await expect.poll(async () => (await tab(tabId))?.opened_at ?? null).not.toBeNull();
    // The network drops every beat for 3 s while the learner keeps working.
    await page.route('**/api/tracking/beats', (route) => route.abort('internetdisconnected'));
    await activeFor(page, 3_000);
    const pending = () =>
      frame.evaluate(() =>
        (window as unknown as { emargementTracker: { pending(): number } }).emargementTracker.pending(),
      );
    expect(await pending()).toBeGreaterThanOrEqual(2);
    // Kept in sessionStorage too where the browser allows it. This Chromium denies storage to the cross-site
    // frame (third-party storage blocked): the tracker then keeps the items in memory only, as above.
    const stored = await frame.evaluate((id) => {
      try {
        return sessionStorage.getItem(`emargement-tracker:${id}`);
      } catch {
        return 'denied';
      }
    }, tabId);
    if (stored !== 'denied') expect(JSON.parse(stored ?? '{}').items.length).toBeGreaterThanOrEqual(2);
    await page.unroute('**/api/tracking/beats');
    await activeFor(page, 2_500);
    await expect.poll(pending).toBe(0);
    const row = await tab(tabId);
    const runs = await ctx.app.db.selectFrom('tracking_runs').selectAll().where('tab_id', '=', tabId).execute();
    const events = await ctx.app.db
      .selectFrom('tracking_events')
      .select(['seq', 'kind'])
      .where('tab_id', '=', tabId)
      .where('seq', 'is not', null)
      .execute();
    // Every seq the page produced reached the server exactly once: no gap, and beats + kept items = all seqs.
    expect(row?.missing_seqs).toEqual([]);
    const accepted = runs.reduce((n, r) => n + r.beat_count, 0);
    expect(accepted + events.length).toBe((row?.last_seq ?? -1) + 1);
    expect(events.filter((e) => e.kind === 'rejected').length).toBeGreaterThanOrEqual(1);
    await page.close();
  });
});
