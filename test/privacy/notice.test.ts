import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.js';
import { type CatalogTestContext, createCatalogTestApp, onboardingForm } from '../catalog/helpers.js';
import type { FakeComponent } from '../fixtures/openedx/index.js';
import { testConfig } from '../helpers/app.js';

/**
 * « Vos données » is linked from every learner page: walked from a real launch through the fake Open edX
 * (onboarding, module, profile, time, certificate, a broken link, an error), each page read through a DOM
 * parser. The notice itself says what the register says. Portal pages (fund staff) do not carry it.
 */

let ctx: CatalogTestContext;
let themeLink: FakeComponent;
let brokenLink: FakeComponent;
const pages = new Map<string, string>();

function noticeLinks(body: string) {
  const { document } = parseHTML(body);
  return [...document.querySelectorAll('a')].filter((a) => a.getAttribute('href') === '/vos-donnees');
}

beforeAll(async () => {
  // The retention policy and the contact are part of the configuration (PRIVACY_* variables).
  ctx = await createCatalogTestApp({
    env: { PRIVACY_CONTACT: 'dpo@organisme-exemple.fr' },
    components: [{ custom: { theme: 'visibilite' } }, { custom: { theme: 'inexistant' } }],
  });
  [themeLink, brokenLink] = ctx.fake.components as [FakeComponent, FakeComponent];
  const user = ctx.fake.createUser({ name: 'Léa Durand' });
  const launch = await ctx.launch(user, themeLink);
  const token = launch.sessionToken;
  pages.set('onboarding', launch.final.body);
  const module = await ctx.app.inject({
    method: 'POST',
    url: '/catalog/onboarding',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ session_token: token, ...onboardingForm({ fund: 'akto' }) }).toString(),
  });
  pages.set('module', module.body);
  const get = async (url: string) =>
    (await ctx.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } })).body;
  pages.set('module (again)', await get(`/catalog/module?session_token=${token}`));
  pages.set('profile', await get(`/catalog/profile?session_token=${token}`));
  pages.set('time', await get(`/tracking/time?session_token=${token}`));
  pages.set('certificate', await get(`/certificates?session_token=${token}`));
  pages.set(
    'broken link',
    (await ctx.fake.launch({ user, transport: ctx.transport, component: brokenLink })).final.body,
  );
  pages.set('expired session', await get('/tracking/time?session_token=invalid'));
  const exported = await ctx.app.inject({
    method: 'POST',
    url: '/privacy/export',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ session_token: token, format: 'html' }).toString(),
  });
  pages.set('downloaded summary', exported.body);
});
afterAll(async () => {
  await ctx.close();
});

describe('the notice « Vos données »', () => {
  it('is linked from every learner page, opening in a new tab', () => {
    expect([...pages.keys()]).toHaveLength(9);
    for (const [name, body] of pages) {
      expect(parseHTML(body).document.querySelector('main'), name).not.toBeNull();
      const links = noticeLinks(body);
      expect(links.length, `${name} links to « Vos données »`).toBeGreaterThanOrEqual(1);
      expect(links[0]?.getAttribute('target')).toBe('_blank');
      expect(links[0]?.getAttribute('rel')).toBe('noopener');
    }
    // The module page really is the learner's module (not an error page that happens to carry the link).
    expect(
      parseHTML(pages.get('module') as string).document.querySelector('#emargement-tracker-config'),
    ).not.toBeNull();
  });

  it('answers at that address without a session, with purposes, legal basis, recipients, retention, rights, contact', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/vos-donnees' });
    expect(res.statusCode).toBe(200);
    const { document } = parseHTML(res.body);
    const headings = [...document.querySelectorAll('h2')].map((h) => h.textContent);
    expect(headings).toEqual([
      'Qui est responsable de vos données ?',
      'Pourquoi ces données ?',
      'Ce qui est enregistré',
      'Qui les reçoit ?',
      'Combien de temps ?',
      'Vos droits',
      'Nous contacter',
    ]);
    const text = document.querySelector('main')?.textContent ?? '';
    expect(text).toContain('Base légale');
    expect(text).toContain('Votre OPCO');
    expect(text).toContain('Organisme de formation EXEMPLE (fictif)');
    expect(text).toContain('6 ans après la fin de la session');
    expect(text).toContain('10 ans');
    expect(document.querySelector('a[href="mailto:dpo@organisme-exemple.fr"]')).not.toBeNull();
    // The notice does not link to itself.
    expect(noticeLinks(res.body)).toEqual([]);
  });

  it('is not put on the funds’ portal pages', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/portal/connexion', headers: { accept: 'text/html' } });
    expect(res.statusCode).toBe(200);
    expect(noticeLinks(res.body)).toEqual([]);
  });
});

describe('the retention policy at start', () => {
  it('a bad value stops the start, naming the variable (the configuration refuses it)', () => {
    expect(() => testConfig({ PRIVACY_RAW_YEARS: 'six' })).toThrow(ConfigError);
    expect(() => testConfig({ PRIVACY_RAW_YEARS: 'six' })).toThrow(/PRIVACY_RAW_YEARS/);
  });
});
