import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertFund } from '../portal/helpers.js';
import { createSecurityTestApp, ERROR_LEVEL, type SecurityTestContext } from './helpers.js';

let ctx: SecurityTestContext;
beforeAll(async () => {
  ctx = await createSecurityTestApp();
  await insertFund(ctx.app.db, 'akto', 'AKTO');
});
afterAll(() => ctx.close());

function noErrorLogged(): void {
  expect(ctx.logs.filter((l) => l.level >= ERROR_LEVEL)).toEqual([]);
}

describe('NUL bytes and unencodable text are refused at the edge', () => {
  for (const field of ['iss', 'client_id', 'lti_deployment_id', 'login_hint']) {
    it(`GET /lti/login with %00 in ${field}: 400, French page, nothing logged as an error`, async () => {
      const params = new URLSearchParams({
        iss: 'https://lms.test',
        client_id: 'client-1',
        lti_deployment_id: 'd1',
        login_hint: 'x',
        target_link_uri: 'http://tool.test/lti/launch',
      });
      params.set(field, `abc\u0000def`);
      const res = await ctx.app.inject({ method: 'GET', url: `/lti/login?${params}` });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('text/html');
      const { document } = parseHTML(res.body);
      expect(document.querySelector('h1')?.textContent).toBe('Demande incorrecte');
      noErrorLogged();
    });
  }

  it('POST /lti/login with a NUL in the form body: 400 page', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/lti/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'iss=https%3A%2F%2Flms.test%00&client_id=c&login_hint=x&target_link_uri=http%3A%2F%2Ftool.test%2F',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('text/html');
    noErrorLogged();
  });

  it('the portal username with a NUL: 400 page, not a 500', async () => {
    const page = await ctx.app.inject({ method: 'GET', url: '/portal/connexion' });
    const cookie = page.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = parseHTML(page.body).document.querySelector('input[name="_csrf"]')?.getAttribute('value') ?? '';
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/portal/connexion',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ identifiant: 'staff\u0000@akto.test', mot_de_passe: 'x', _csrf: csrf }).toString(),
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('text/html');
    noErrorLogged();
  });

  it('a lone surrogate in a JSON body: 400 problem+json', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/verify/signature',
      headers: { 'content-type': 'application/json' },
      payload: '{"data":"{\\"a\\":\\"\\ud800\\"}","signature":"x"}',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 400, code: 'unencodable_input' });
    noErrorLogged();
  });

  it('a NUL in a JSON key or a nested value and in a path parameter: 400', async () => {
    const nested = await ctx.app.inject({
      method: 'POST',
      url: '/verify/signature',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ data: 'ab', signature: 'x', extra: [{ 'k\u0000': 'v' }] }),
    });
    expect(nested.statusCode).toBe(400);
    expect(nested.json()).toMatchObject({ code: 'unencodable_input' });
    const param = await ctx.app.inject({
      method: 'GET',
      url: '/verify/EMG%00-1',
      headers: { accept: 'application/json' },
    });
    expect(param.statusCode).toBe(400);
    expect(param.json()).toMatchObject({ code: 'unencodable_input' });
    noErrorLogged();
  });

  it('ordinary accented text still passes', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: `/verify?numero=${encodeURIComponent('Élève 😀')}` });
    expect(res.statusCode).toBe(200);
  });
});
