import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestContext } from '../helpers/app.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestApp();
});
afterAll(async () => ctx?.close());

describe('the landing page', () => {
  it('says in French what the service is, its state, and links to Studio values, docs, portal and verify', async () => {
    await ctx.app.db
      .insertInto('lti_registrations')
      .values({
        name: 'FUN',
        issuer: 'https://lms.example.org',
        client_id: 'c1',
        deployment_ids: JSON.stringify(['1']),
        auth_login_url: 'https://lms.example.org/auth',
        access_token_url: 'https://lms.example.org/token',
        jwks_url: 'https://lms.example.org/jwks',
      })
      .execute();
    const res = await ctx.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    const { document } = parseHTML(res.body);
    expect(document.documentElement.getAttribute('lang')).toBe('fr');
    expect(document.querySelector('h1')?.textContent).toBe('Émargement');
    const state = Object.fromEntries(
      [...document.querySelectorAll('#etat dt')].map((dt) => [dt.textContent, dt.nextElementSibling?.textContent]),
    );
    expect(state['Base de données']).toContain(ctx.app.dbKind === 'pg' ? 'PostgreSQL' : 'PGlite');
    if (ctx.app.dbKind === 'pg') expect(state['Base de données']).not.toContain('PGlite');
    expect(state.Migrations).toContain('à jour');
    expect(state['Plateformes enregistrées']).toBe('1');
    const links = [...document.querySelectorAll('a')].map((a) => a.getAttribute('href'));
    for (const href of ['/openedx-config', '/docs', '/portal', '/verify']) expect(links).toContain(href);
    // The demo is off in tests unless asked: no link to it.
    expect(links).not.toContain('/demo');
    expect((await ctx.app.inject({ method: 'GET', url: '/demo' })).statusCode).toBe(404);
  });

  it('shows the Studio values as a page, built from PUBLIC_URL', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/openedx-config' });
    expect(res.statusCode).toBe(200);
    const { document } = parseHTML(res.body);
    const values = Object.fromEntries(
      [...document.querySelectorAll('tr')].map((tr) => [
        tr.querySelector('th')?.textContent,
        tr.querySelector('code')?.textContent,
      ]),
    );
    expect(values['Tool Launch URL']).toBe('http://tool.test/lti/launch');
    expect(values['Tool Initiate Login URL']).toBe('http://tool.test/lti/login');
    expect(values['Tool Keyset URL']).toBe('http://tool.test/.well-known/jwks.json');
    expect(values['Deep Linking Launch URL']).toBe('http://tool.test/lti/deep-linking');
    expect(JSON.parse(values['Registered Redirect URIs'] ?? '[]')).toEqual([
      'http://tool.test/lti/launch',
      'http://tool.test/lti/deep-linking',
    ]);
  });
});

describe('the demo LMS switch', () => {
  it('is refused in production', async () => {
    const { loadConfig } = await import('../../src/config/index.js');
    expect(() =>
      loadConfig({
        NODE_ENV: 'production',
        PUBLIC_URL: 'https://emargement.example.org',
        APP_SECRET: 'x'.repeat(40),
        DEMO_LMS: 'true',
      }),
    ).toThrow(/DEMO_LMS cannot be on in production/);
    expect(
      loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://emargement.example.org', APP_SECRET: 'x'.repeat(40) })
        .demo,
    ).toBe(false);
    expect(loadConfig({ NODE_ENV: 'development', APP_SECRET: 'x'.repeat(40) }).demo).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }).demo).toBe(false);
  });
});
