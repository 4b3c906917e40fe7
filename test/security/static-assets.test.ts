import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Response as InjectResponse } from 'light-my-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptsEncoding, minifyCss } from '../../src/http/assets.js';
import { type CatalogTestContext, createCatalogTestApp, onboardingForm } from '../catalog/helpers.js';
import type { FakeComponent } from '../fixtures/openedx/index.js';
import { attrs, dom } from '../helpers/dom.js';

/**
 * The pages of a learner's flow (onboarding, module page, time page, Mon parcours, the video placeholder)
 * carry no inline script or style, and link their stylesheet and scripts at content-hashed URLs served for
 * good (src/http/assets.ts).
 */
let ctx: CatalogTestContext;
let themeLink: FakeComponent;
let parcoursLink: FakeComponent;

beforeAll(async () => {
  ctx = await createCatalogTestApp({ components: [{ custom: { theme: 'digitalisation' } }, { custom: {} }] });
  [themeLink, parcoursLink] = ctx.fake.components as [FakeComponent, FakeComponent];
});
afterAll(() => ctx.close());

function local(url: string): string {
  return url.startsWith(ctx.publicUrl) ? url.slice(ctx.publicUrl.length) : url;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<InjectResponse> {
  return ctx.app.inject({ method: 'GET', url: local(url), headers });
}

/** The learner's pages, in the order a learner meets them. */
async function learnerPages(): Promise<Array<{ name: string; body: string }>> {
  const user = ctx.fake.createUser({ name: 'Léa Durand' });
  const launch = await ctx.launch(user, themeLink);
  const module = await ctx.app.inject({
    method: 'POST',
    url: '/catalog/onboarding',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      session_token: launch.sessionToken,
      ...onboardingForm({ fund: 'akto' }),
    }).toString(),
  });
  expect(module.statusCode).toBe(200);
  const timeHref = attrs(dom(module.body), 'a[href*="/tracking/time"]', 'href')[0];
  expect(timeHref).toBeDefined();
  const time = await get(timeHref as string);
  expect(time.statusCode).toBe(200);
  const later = await ctx.launch(user, themeLink);
  const parcours = await ctx.launch(user, parcoursLink);
  const placeholder = await get('/assets/video-placeholder.html?titre=Vid%C3%A9o');
  return [
    { name: 'onboarding form', body: launch.final.body },
    { name: 'module page', body: module.body },
    { name: 'time page', body: time.body },
    { name: 'module page, later launch', body: later.final.body },
    { name: 'Mon parcours', body: parcours.final.body },
    { name: 'video placeholder', body: placeholder.body },
  ];
}

describe('the pages of a learner flow', () => {
  it('have no inline script, no <style> and no style attribute; their stylesheet and scripts are cached for good', async () => {
    const pages = await learnerPages();
    const wrong: string[] = [];
    for (const { name, body } of pages) {
      const doc = dom(body);
      const inline = [...doc.querySelectorAll('script:not([src])')].filter(
        (s) => s.getAttribute('type') !== 'application/json',
      );
      if (inline.length > 0) wrong.push(`${name}: ${inline.length} inline script(s)`);
      if (doc.querySelector('style') !== null) wrong.push(`${name}: <style>`);
      if (doc.querySelector('[style]') !== null) wrong.push(`${name}: style attribute`);
      const sheets = attrs(doc, 'link[rel="stylesheet"]', 'href');
      // One stylesheet request a page: the base style and the capability's rules in one file.
      if (sheets.length !== 1) wrong.push(`${name}: ${sheets.length} stylesheets`);
      const sheet = await get(sheets[0] ?? '/static/none.css');
      if (name !== 'video placeholder' && !sheet.body.startsWith(':root{')) wrong.push(`${name}: no base style`);
      for (const href of [...sheets, ...attrs(doc, 'script[src]', 'src')]) {
        const res = await get(href);
        if (res.statusCode !== 200) wrong.push(`${name}: ${href} → ${res.statusCode}`);
        // Every file a page links is at a versioned URL (content hash, or the tracker's version) cached for good.
        if (res.headers['cache-control'] !== 'public, max-age=31536000, immutable') {
          wrong.push(`${name}: ${href} cache-control ${res.headers['cache-control']}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('GET /static/:file', () => {
  it('serves the hashed URL immutable, the plain one with an ETag and a short cache, and 304 on a match', async () => {
    const page = await get('/assets/video-placeholder.html');
    const href = attrs(dom(page.body), 'link[rel="stylesheet"]', 'href')[0] as string;
    expect(href).toMatch(/^\/static\/video-placeholder\.[0-9a-f]{16}\.css$/);

    const hashed = await get(href);
    expect(hashed.statusCode).toBe(200);
    expect(hashed.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(hashed.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(hashed.body).toContain('.big{');

    const plain = await get('/static/video-placeholder.css');
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['cache-control']).toBe('public, max-age=300');
    expect(plain.body).toBe(hashed.body);
    const etag = String(plain.headers.etag);
    expect(etag).toMatch(/^"[0-9a-f]{16}"$/);
    expect(href).toContain(etag.slice(1, -1));

    const again = await get('/static/video-placeholder.css', { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect((await get('/static/nothing.css')).statusCode).toBe(404);
  });

  it('sends each file compressed in the best encoding the browser accepts, the same bytes once decoded', async () => {
    const page = await get('/assets/video-placeholder.html');
    const href = attrs(dom(page.body), 'link[rel="stylesheet"]', 'href')[0] as string;
    const tracker = attrs(dom((await learnerPages())[1]?.body ?? ''), 'script[src*="tracker.js"]', 'src')[0] as string;
    expect(tracker).toBeDefined();
    for (const url of [href, '/static/video-placeholder.css', tracker]) {
      const plain = await ctx.app.inject({
        method: 'GET',
        url: local(url),
        headers: { 'accept-encoding': 'identity' },
      });
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.headers.vary).toBe('accept-encoding');
      const identity = plain.rawPayload;
      // Chrome over http: gzip; over https: br too (preferred).
      const gz = await ctx.app.inject({
        method: 'GET',
        url: local(url),
        headers: { 'accept-encoding': 'gzip, deflate' },
      });
      expect(gz.headers['content-encoding']).toBe('gzip');
      expect(gz.headers.vary).toBe('accept-encoding');
      expect(gunzipSync(gz.rawPayload).equals(identity)).toBe(true);
      expect(gz.rawPayload.length).toBeLessThan(identity.length);
      const br = await ctx.app.inject({
        method: 'GET',
        url: local(url),
        headers: { 'accept-encoding': 'gzip, deflate, br, zstd' },
      });
      expect(br.headers['content-encoding']).toBe('br');
      expect(brotliDecompressSync(br.rawPayload).equals(identity)).toBe(true);
      expect(br.headers['content-type']).toBe(plain.headers['content-type']);
      // A 304 says it varies too, so that a cache keeps the encodings apart.
      const etag = String(plain.headers.etag);
      const again = await ctx.app.inject({
        method: 'GET',
        url: local(url),
        headers: { 'accept-encoding': 'gzip', 'if-none-match': etag },
      });
      expect(again.statusCode).toBe(304);
      expect(again.headers.vary).toBe('accept-encoding');
    }
    // The pages themselves stay uncompressed (they carry the session token: BREACH).
    const timeHref = attrs(
      dom((await learnerPages())[1]?.body ?? ''),
      'a[href*="/tracking/time"]',
      'href',
    )[0] as string;
    for (const url of [timeHref, '/assets/video-placeholder.html']) {
      const res = await get(url, { 'accept-encoding': 'gzip, deflate, br' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
    }
  });

  it.each([
    [undefined, 'gzip', false],
    ['gzip, deflate', 'gzip', true],
    ['gzip, deflate', 'br', false],
    ['GZIP;q=0.5', 'gzip', true],
    ['gzip;q=0, *', 'gzip', false],
    ['*', 'br', true],
    ['*;q=0', 'br', false],
    ['br;q=0.000', 'br', false],
    ['identity', 'gzip', false],
  ] as const)(
    'reads Accept-Encoding as RFC 9110 says (listed or *, q=0 refuses): %s accepts %s → %s',
    (header, coding, accepted) => {
      expect(acceptsEncoding(header, coding)).toBe(accepted);
    },
  );

  it('serves stylesheets compact, comments and layout white space removed', () => {
    expect(
      minifyCss(
        '/* note */\na:hover,\nb {\n  color: red;\n  margin: 0 auto;\n}\n@media (min-width: 48rem) {\n  a {\n    top: 0;\n  }\n}\n',
      ),
    ).toBe('a:hover,b{color:red;margin:0 auto}@media (min-width:48rem){a{top:0}}');
  });
});
