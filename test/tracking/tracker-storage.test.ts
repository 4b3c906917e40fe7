import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium } from '../helpers/chromium.js';

/**
 * The tracker's use of sessionStorage, in Debian's Chromium, on a page of its own origin where storage is
 * allowed (the LMS iframe usually has it blocked): the beats' endpoint is answered by the test (page.route),
 * and every Storage write is counted. A beat acknowledged at its first send never touches storage; a send
 * that fails keeps the queue there; pagehide leaves it marked `done` for the next page. Each case runs with the
 * three senders: the page itself (no worker configured), the worker (tracker.js itself, run as a worker), and a
 * worker that fails to load (the page falls back to sending itself).
 */
type Sender = 'page' | 'worker' | 'broken worker';
const SENDERS: Sender[] = ['page', 'worker', 'broken worker'];
const TRACKER = readFileSync(new URL('../../src/tracking/tracker.js', import.meta.url), 'utf8');
const ORIGIN = 'http://tool.test';
let browser: Browser;

beforeAll(async () => {
  if (hasChromium) browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

async function trackedPage(
  answer: { fail: () => boolean },
  sender: Sender,
): Promise<{ page: Page; sends: () => number; items: () => Array<{ seq: number; kind: string }> }> {
  const page = await browser.newPage();
  let sends = 0;
  const items: Array<{ seq: number; kind: string }> = [];
  await page.addInitScript(() => {
    const w = window as unknown as { storageWrites: string[]; workerMessages: number };
    w.storageWrites = [];
    // Counts what a worker posts to the page: each message is a task on the page's main thread.
    w.workerMessages = 0;
    const NativeWorker = window.Worker;
    window.Worker = class extends NativeWorker {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options);
        this.addEventListener('message', () => {
          w.workerMessages++;
        });
      }
    };
    const set = Storage.prototype.setItem;
    const remove = Storage.prototype.removeItem;
    Storage.prototype.setItem = function (k: string, v: string) {
      w.storageWrites.push(`set ${k} ${v}`);
      return set.call(this, k, v);
    };
    Storage.prototype.removeItem = function (k: string) {
      w.storageWrites.push(`remove ${k}`);
      return remove.call(this, k);
    };
  });
  const config = {
    beatMs: 300,
    idleMs: 60_000,
    sessionToken: 'token',
    sessionExp: Math.floor(Date.now() / 1000) + 3600,
    endpoint: `${ORIGIN}/api/tracking/beats`,
    ticket: 'ticket',
    ...(sender === 'worker' ? { workerUrl: `${ORIGIN}/tracker.js` } : {}),
    ...(sender === 'broken worker' ? { workerUrl: `${ORIGIN}/missing-worker.js` } : {}),
  };
  await page.route(`${ORIGIN}/page`, (route) =>
    route.fulfill({
      contentType: 'text/html; charset=utf-8',
      body: `<!doctype html><html><head><script type="application/json" id="emargement-tracker-config">${JSON.stringify(config)}</script><script src="/tracker.js"></script></head><body><p>Module</p></body></html>`,
    }),
  );
  await page.route(`${ORIGIN}/tracker.js`, (route) => route.fulfill({ contentType: 'text/javascript', body: TRACKER }));
  await page.route(`${ORIGIN}/missing-worker.js`, (route) =>
    route.fulfill({ status: 404, contentType: 'text/plain', body: 'absent' }),
  );
  await page.route(`${ORIGIN}/api/tracking/beats`, (route) => {
    sends++;
    const body = JSON.parse(route.request().postData() ?? '{}') as { items?: { seq: number; kind: string }[] };
    for (const it of body.items ?? []) items.push({ seq: it.seq, kind: it.kind });
    if (answer.fail()) return route.abort('internetdisconnected');
    return route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ results: (body.items ?? []).map((i) => ({ seq: i.seq, status: 'received' })) }),
    });
  });
  await page.goto(`${ORIGIN}/page`);
  return { page, sends: () => sends, items: () => items.slice() };
}

const writes = (page: Page) =>
  page.evaluate(() => (window as unknown as { storageWrites: string[] }).storageWrites.slice());
const pending = (page: Page) =>
  page.evaluate(() => (window as unknown as { emargementTracker: { pending(): number } }).emargementTracker.pending());

const senderOf = (page: Page) =>
  page.evaluate(() => (window as unknown as { emargementTracker: { sender(): string } }).emargementTracker.sender());
/** Beats sent by the page itself leave a resource timing entry in its timeline; a worker's, in the worker's. */
const sentByPage = (page: Page) =>
  page.evaluate(
    () => performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/tracking/beats')).length,
  );

describe.skipIf(!hasChromium).each(SENDERS)('the tracker and sessionStorage, sent by the %s', (sender) => {
  it('sends acknowledged beats without writing to storage', async () => {
    const { page, sends, items } = await trackedPage({ fail: () => false }, sender);
    await expect.poll(sends).toBeGreaterThanOrEqual(5);
    expect(await pending(page)).toBeLessThanOrEqual(1);
    expect(await writes(page)).toEqual([]);
    // The worker sends every beat off the main thread; without it (or when it fails) the page does.
    expect(await senderOf(page)).toBe(sender === 'worker' ? 'worker' : 'page');
    if (sender === 'worker') {
      expect(await sentByPage(page)).toBe(0);
      // Acknowledged at their first send, beats cost the page no message at all: the worker's messages are its
      // answer to the new tab and the acknowledgement of the page's `open`, then nothing while beats go on.
      const messages = () => page.evaluate(() => (window as unknown as { workerMessages: number }).workerMessages);
      const seen = await messages();
      expect(seen).toBeLessThanOrEqual(2);
      const sent = sends();
      await expect.poll(sends).toBeGreaterThanOrEqual(sent + 5);
      expect(await messages()).toBe(seen);
    } else {
      expect(await sentByPage(page)).toBeGreaterThanOrEqual(5);
    }
    // Leaving: the beacon's items are numbered above every seq sent before (never a collision with the worker's).
    const before = items();
    expect(new Set(before.map((i) => i.seq)).size).toBe(before.length);
    if (sender !== 'broken worker') expect(before.map((i) => i.seq)).toEqual(before.map((_, n) => n));
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide')));
    await expect.poll(() => items().some((i) => i.kind === 'close')).toBe(true);
    const close = items().find((i) => i.kind === 'close');
    expect(close?.seq).toBeGreaterThan(Math.max(...before.map((i) => i.seq)));
    await page.close();
  }, 30_000);

  it('keeps a queue whose send failed in storage, clears it once acknowledged, and marks it done at pagehide', async () => {
    let failing = true;
    const { page, sends } = await trackedPage({ fail: () => failing }, sender);
    await expect.poll(sends).toBeGreaterThanOrEqual(3);
    const stored = await page.evaluate(() => {
      const k = Object.keys(sessionStorage).find((x) => x.startsWith('emargement-tracker:'));
      return k ? (JSON.parse(sessionStorage.getItem(k) ?? 'null') as { items: unknown[]; done: boolean }) : null;
    });
    expect(stored?.done).toBe(false);
    expect(stored?.items.length).toBeGreaterThanOrEqual(2);
    failing = false;
    await expect.poll(() => pending(page)).toBe(0);
    expect((await writes(page)).at(-1)).toMatch(/^remove emargement-tracker:/);
    expect(await page.evaluate(() => Object.keys(sessionStorage).length)).toBe(0);
    // Leaving the page: the close item and whatever is unsent are stored as done, for the next page.
    failing = true;
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide')));
    const done = await page.evaluate(() => {
      const k = Object.keys(sessionStorage).find((x) => x.startsWith('emargement-tracker:'));
      return k ? (JSON.parse(sessionStorage.getItem(k) ?? 'null') as { done: boolean }).done : null;
    });
    expect(done).toBe(true);
    await page.close();
  }, 30_000);
});
