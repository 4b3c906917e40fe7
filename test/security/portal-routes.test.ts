import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, type Browser, csrfOf, get, insertFund, post, signIn } from '../portal/helpers.js';
import { createSecurityTestApp, ERROR_LEVEL, type SecurityTestContext } from './helpers.js';

let ctx: SecurityTestContext;
let operator: Browser;
let staff: Browser;
beforeAll(async () => {
  ctx = await createSecurityTestApp();
  await insertFund(ctx.app.db, 'akto', 'AKTO');
  await addUser(ctx.app.db, 'ops@fun.test', 'operator', null);
  await addUser(ctx.app.db, 'staff@akto.test', 'fund_staff', 'akto');
  operator = await signIn(ctx.app, 'ops@fun.test');
  staff = await signIn(ctx.app, 'staff@akto.test');
});
afterAll(() => ctx.close());

/** Values for the path parameters of portal routes: well-formed, so the route itself answers. */
function concrete(url: string): string {
  return url
    .replace(':ticket', 'a'.repeat(43))
    .replace(':id', '00000000-0000-4000-8000-000000000000')
    .replace(/:[A-Za-z]+/g, 'x');
}

function portalRoutes(method: string) {
  const seen = new Set<string>();
  return ctx.routes
    .filter((r) => r.url.startsWith('/portal') && [r.method].flat().includes(method as never))
    .map((r) => r.url)
    .filter((u) => !seen.has(u) && seen.add(u) !== undefined)
    .sort();
}

describe('every portal route works with a real signed-in session', () => {
  it('the portal has the routes this walk expects to find', () => {
    const gets = portalRoutes('GET');
    expect(gets).toContain('/portal/certificats.zip');
    expect(gets).toContain('/portal/dossiers');
    expect(gets).toContain('/portal/journal');
    expect(portalRoutes('POST').length).toBeGreaterThan(3);
  });

  for (const who of ['operator', 'staff'] as const) {
    it(`GET: no route sends a signed-in ${who} back to the sign-in page`, async () => {
      const browser = who === 'operator' ? operator : staff;
      const failures: string[] = [];
      for (const url of portalRoutes('GET')) {
        if (url === '/portal/connexion') continue;
        const res = await get(ctx.app, browser, concrete(url));
        const location = String(res.headers.location ?? '');
        if (location.startsWith('/portal/connexion') || res.statusCode >= 500 || res.statusCode === 401) {
          failures.push(`${url} → ${res.statusCode} ${location}`);
        }
      }
      expect(failures).toEqual([]);
    });
  }

  it('the certificates ZIP downloads for a signed-in operator (no redirect loop)', async () => {
    const res = await get(ctx.app, operator, '/portal/certificats.zip');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/zip');
  });

  it('POST: no route sends a signed-in operator with a valid form token back to the sign-in page', async () => {
    const csrf = await csrfOf(ctx.app, operator);
    const failures: string[] = [];
    for (const url of portalRoutes('POST')) {
      if (url === '/portal/connexion' || url === '/portal/deconnexion') continue;
      const res = await post(ctx.app, operator, concrete(url), { _csrf: csrf });
      const location = String(res.headers.location ?? '');
      if (location.startsWith('/portal/connexion') || res.statusCode >= 500 || res.statusCode === 401) {
        failures.push(`${url} → ${res.statusCode} ${location}`);
      }
    }
    expect(failures).toEqual([]);
    expect(ctx.logs.filter((l) => l.level >= ERROR_LEVEL)).toEqual([]);
  });

  it('without a session, every GET page of the portal except sign-in redirects there once', async () => {
    for (const url of portalRoutes('GET')) {
      if (url === '/portal/connexion' || url.startsWith('/portal/assets')) continue;
      const res = await get(ctx.app, null, concrete(url));
      expect([303, 400, 401, 404], url).toContain(res.statusCode);
    }
  });
});
