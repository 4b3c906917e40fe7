import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  chromium,
  type Frame,
  type LaunchOptions,
  type Page,
} from 'playwright-core';
import { describe } from 'vitest';

/**
 * Debian's Chromium for the real-browser tests (never a downloaded browser; `.ci/run` installs the
 * package). Where it is absent the tests are skipped, not failed: wrap them in `describeWithChromium`
 * (a file whose tests are all skipped runs none of its hooks either, so nothing is launched).
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM_PATH);
export const describeWithChromium = describe.skipIf(!hasChromium);
if (!hasChromium) process.stderr.write(`${CHROMIUM_PATH} is absent: the real-browser tests are skipped.\n`);

/** Headless, no sandbox (containers), and nothing the browser would fetch or update on its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * No clock deadline inside the browser either: Playwright's waits (locators, navigations, events) end on
 * what they wait for, and only the test's own limit (vitest.config.ts) ends one that would hang. Its
 * default of 30 s fails a step that is merely slow on a loaded machine.
 */
function withoutDeadlines(context: BrowserContext): BrowserContext {
  context.setDefaultTimeout(0);
  context.setDefaultNavigationTimeout(0);
  return context;
}

/** Chromium; its contexts (and `newPage()`'s) wait without a clock deadline. */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, ...options });
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (contextOptions) => withoutDeadlines(await newContext(contextOptions));
  return browser;
}

/** A persistent profile of its own, removed by `close()`. */
export interface ProfileBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Chromium on a fresh profile whose preferences are `profile` (the Preferences file's "profile" key),
 * for the cookie settings a launch option cannot give.
 */
export async function launchChromiumProfile(
  profile: Record<string, unknown>,
  options: BrowserContextOptions = {},
): Promise<ProfileBrowser> {
  const dir = await mkdtemp(join(tmpdir(), 'emargement-chromium-'));
  await mkdir(join(dir, 'Default'));
  await writeFile(join(dir, 'Default', 'Preferences'), JSON.stringify({ profile }));
  try {
    const context = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
      headless: true,
      ...options,
    });
    withoutDeadlines(context);
    return {
      context,
      close: async () => {
        await context.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * The LMS page (`lms`, e.g. http://127.0.0.1:<port>) framing the tool (`tool`, http://localhost:<port>):
 * another site. Third-party cookies are blocked (chrome://settings/cookies → "Block third-party cookies")
 * and, to leave no doubt, every cookie of the tool while the LMS embeds it (partitioned CHIPS cookies
 * included, as Safari does).
 */
export function launchCrossSiteChromium(
  sites: { lms: string; tool: string },
  options: BrowserContextOptions = {},
): Promise<ProfileBrowser> {
  const lms = new URL(sites.lms).origin;
  const tool = new URL(sites.tool).origin;
  return launchChromiumProfile(
    {
      block_third_party_cookies: true,
      cookie_controls_mode: 1,
      content_settings: { exceptions: { cookies: { [`${tool},${lms}`]: { setting: 2 } } } },
    },
    options,
  );
}

/** The tool's iframe in the LMS page: the child frame of the main frame on the tool's origin, if loaded. */
export function findToolFrame(page: Page, toolUrl: string): Frame | undefined {
  return page.frames().find((f) => f.url().startsWith(toolUrl) && f.parentFrame() === page.mainFrame());
}

/** As findToolFrame, for a page already showing it. */
export function toolFrameOf(page: Page, toolUrl: string): Frame {
  const frame = findToolFrame(page, toolUrl);
  if (!frame) throw new Error('tool frame not found');
  return frame;
}
