import type { Response as InjectResponse } from 'light-my-request';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentSecurityPolicy, framePolicyFor } from '../../src/http/security-headers.js';
import { seedCourse } from '../certificates/helpers.js';
import { addUser, cookieHeader, insertFund, signIn } from '../portal/helpers.js';
import { createSecurityTestApp, type SecurityTestContext } from './helpers.js';

let ctx: SecurityTestContext;
let learnerToken: string;
let teamToken: string;
let portalCookie: string;

beforeAll(async () => {
  ctx = await createSecurityTestApp();
  await insertFund(ctx.app.db, 'akto', 'AKTO');
  // seedCourse registers https://lms.test (authorization endpoint on the same origin).
  const course = await seedCourse(ctx.app, { people: [{ role: 'learner' }, { role: 'course_team' }] });
  learnerToken = course.people[0]!.token;
  teamToken = course.people[1]!.token;
  await ctx.app.db
    .updateTable('lti_registrations')
    .set({ auth_login_url: 'https://auth.lms.test/authorize' })
    .where('issuer', '=', 'https://lms.test')
    .execute();
  await addUser(ctx.app.db, 'ops@fun.test', 'operator', null);
  portalCookie = cookieHeader((await signIn(ctx.app, 'ops@fun.test')).cookies);
});
afterAll(() => ctx.close());

/** Pages shown inside the LMS iframe (and the video placeholder, framed by the module page). */
const FRAMED = [/^\/lti\//, /^\/catalog(\/|$)/, /^\/certificates(\/|$)/, /^\/tracking\//, /^\/lti-services\//];
const FRAMED_BY_US = ['/assets/video-placeholder.html'];

function directives(res: InjectResponse): Map<string, string[]> {
  const csp = String(res.headers['content-security-policy'] ?? '');
  const out = new Map<string, string[]>();
  for (const part of csp.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out.set(name, values);
  }
  return out;
}

function concrete(url: string): string {
  return url
    .replace(':number', 'EMG-2026-000001-A')
    .replace(':learnerId', '00000000-0000-4000-8000-000000000000')
    .replace(':ticket', 'a'.repeat(43))
    .replace(':id', '00000000-0000-4000-8000-000000000000')
    .replace(/\*$/, 'index.html')
    .replace(/:[A-Za-z]+/g, 'x');
}

function isHtml(res: InjectResponse): boolean {
  return String(res.headers['content-type'] ?? '').startsWith('text/html');
}

/** Every route of the app, as requests a browser could make: anonymous, with an LTI session, signed in. */
async function htmlAnswers(): Promise<Array<{ route: string; res: InjectResponse }>> {
  const out: Array<{ route: string; res: InjectResponse }> = [];
  const seen = new Set<string>();
  for (const route of ctx.routes) {
    for (const method of [route.method].flat()) {
      if (method !== 'GET' && method !== 'POST') continue;
      const key = `${method} ${route.url}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const url = concrete(route.url);
      const variants: Array<Record<string, string>> = [
        { accept: 'text/html' },
        { accept: 'text/html', authorization: `Bearer ${learnerToken}` },
        { accept: 'text/html', authorization: `Bearer ${teamToken}` },
        { accept: 'text/html', cookie: portalCookie },
      ];
      for (const headers of variants) {
        const res = await ctx.app.inject({
          method,
          url,
          headers: method === 'POST' ? { ...headers, 'content-type': 'application/x-www-form-urlencoded' } : headers,
          ...(method === 'POST' ? { payload: '' } : {}),
        });
        if (isHtml(res)) out.push({ route: `${key} (${Object.keys(headers).join('+')})`, res });
      }
    }
  }
  return out;
}

describe('frame policy of every HTML page', () => {
  it('LTI pages may be framed by exactly the registered platforms; every other page by nobody', async () => {
    const answers = await htmlAnswers();
    expect(answers.length).toBeGreaterThan(30);
    const wrong: string[] = [];
    for (const { route, res } of answers) {
      const path = route.split(' ')[1] as string;
      const ancestors = directives(res).get('frame-ancestors');
      let expected: string[];
      if (FRAMED.some((re) => re.test(path))) expected = ['https://auth.lms.test', 'https://lms.test'];
      else if (FRAMED_BY_US.includes(path)) expected = ["'self'", 'https://auth.lms.test', 'https://lms.test'];
      else expected = ["'none'"];
      if (JSON.stringify([...(ancestors ?? [])].sort()) !== JSON.stringify([...expected].sort())) {
        wrong.push(`${route} → ${res.statusCode} frame-ancestors ${ancestors?.join(' ') ?? '(none)'}`);
      }
      if (expected[0] === "'none'" && res.headers['x-frame-options'] !== 'DENY')
        wrong.push(`${route}: no X-Frame-Options DENY`);
      if (expected[0] !== "'none'" && res.headers['x-frame-options'] !== undefined) {
        wrong.push(`${route}: X-Frame-Options ${res.headers['x-frame-options']} on a framed page`);
      }
      if (res.headers['x-content-type-options'] !== 'nosniff') wrong.push(`${route}: no nosniff`);
    }
    expect(wrong).toEqual([]);
  });

  it('script-src and style-src are self only, and no page carries an inline script or style', async () => {
    const wrong: string[] = [];
    for (const { route, res } of await htmlAnswers()) {
      const scriptSrc = directives(res).get('script-src') ?? [];
      const styleSrc = directives(res).get('style-src') ?? [];
      if (JSON.stringify(scriptSrc) !== JSON.stringify(["'self'"]))
        wrong.push(`${route}: script-src ${scriptSrc.join(' ')}`);
      if (JSON.stringify(styleSrc) !== JSON.stringify(["'self'"]))
        wrong.push(`${route}: style-src ${styleSrc.join(' ')}`);
      const { document } = parseHTML(res.body);
      const inline = [...document.querySelectorAll('script:not([src])')].filter(
        (s) => (s.getAttribute('type') ?? 'text/javascript') !== 'application/json',
      );
      if (inline.length > 0) wrong.push(`${route}: inline script`);
      if (document.querySelector('style') !== null) wrong.push(`${route}: <style> element`);
      if (document.querySelector('[style]') !== null) wrong.push(`${route}: style attribute`);
    }
    expect(wrong).toEqual([]);
  });

  it('follows the registrations: a new platform is allowed at once, a removed one no longer', async () => {
    await ctx.app.db
      .insertInto('lti_registrations')
      .values({
        name: 'Autre plateforme',
        issuer: 'https://autre.example',
        client_id: 'c2',
        deployment_ids: JSON.stringify(['d']),
        auth_login_url: 'https://autre.example/auth',
        access_token_url: 'https://autre.example/token',
        jwks_url: 'https://autre.example/jwks',
      })
      .execute();
    const page = () => ctx.app.inject({ method: 'GET', url: '/catalog/module', headers: { accept: 'text/html' } });
    expect(directives(await page()).get('frame-ancestors')).toContain('https://autre.example');
    await ctx.app.db
      .updateTable('lti_registrations')
      .set({ removed_at: new Date() })
      .where('issuer', '=', 'https://autre.example')
      .execute();
    expect(directives(await page()).get('frame-ancestors')).not.toContain('https://autre.example');
  });
});

describe('the policy rule', () => {
  it('no registered platform (or none readable): LTI pages may be framed by nobody', () => {
    expect(framePolicyFor('/catalog/module')).toBe('lti');
    expect(contentSecurityPolicy('/catalog/module', [])).toContain("frame-ancestors 'none'");
    expect(contentSecurityPolicy('/portal/journal', ['https://lms.test'])).toContain("frame-ancestors 'none'");
  });

  it('the demo LMS of development: its pages (its authentication endpoint inside its unit iframe) are framed by this origin only', () => {
    expect(framePolicyFor('/demo/authorize')).toBe('lti-child');
    expect(contentSecurityPolicy('/demo/authorize', [])).toContain("frame-ancestors 'self'");
    expect(framePolicyFor('/demonstration')).toBe('none');
  });
});
