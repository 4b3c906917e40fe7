import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContentFixture } from './content-fixture.js';
import { type CatalogTestContext, createCatalogTestApp, onboardingForm } from './helpers.js';
import { createProgrammeFixture, FUND_SLUGS } from './programme-fixture.js';

/**
 * "Mon parcours" and the sequence of modules, on the programme as funded (a fixture content directory
 * with 16 modules per learner): a link without custom parameters, view=parcours, a theme link with its
 * "module suivant", the course team's view of a parcours link, and the scope of a session.
 */
let ctx: CatalogTestContext;
let fx: ContentFixture;

beforeAll(async () => {
  fx = await createProgrammeFixture();
  ctx = await createCatalogTestApp({
    env: { CONTENT_DIR: fx.dir },
    components: [{ custom: {} }, { custom: { view: 'parcours' } }, { custom: { theme: 'coeur-de-metier' } }],
  });
});
afterAll(async () => {
  await ctx.close();
  await fx.cleanup();
});

const dom = (body: string) => parseHTML(body).document;

async function post(url: string, form: Record<string, string>) {
  return ctx.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });
}

async function onboard(componentIndex: number, fund: string, extra: Record<string, string> = {}) {
  const component = ctx.fake.components[componentIndex];
  if (!component) throw new Error('no component');
  const launch = await ctx.launch(ctx.fake.createUser({ name: 'Léa Durand' }), component);
  const page = await post('/catalog/onboarding', {
    session_token: launch.sessionToken,
    ...onboardingForm({ fund, ...extra }),
  });
  return { launch, token: launch.sessionToken, page };
}

/** Every block seen and the quiz answered, through the page's JSON API. */
async function complete(token: string, moduleId: string) {
  const progress = await ctx.app.inject({
    method: 'GET',
    url: `/api/catalog/progress?moduleId=${moduleId}`,
    headers: { authorization: `Bearer ${token}` },
  });
  expect(progress.statusCode).toBe(200);
  for (const blockId of ['video-1', 'tuto-1', 'temoignage-1', 'activite-1']) {
    const r = await ctx.app.inject({
      method: 'POST',
      url: '/api/catalog/progress/seen',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ moduleId, blockId }),
    });
    expect(r.statusCode).toBe(200);
  }
  const quiz = await ctx.app.inject({
    method: 'POST',
    url: '/api/catalog/progress/quiz',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ moduleId, answers: [0, 2, 1] }),
  });
  expect(quiz.json().progress.complete).toBe(true);
}

const get = (href: string) => ctx.app.inject({ method: 'GET', url: href });

/** Completion scores queued for the LMS (AGS) after a module's completion. */
async function scores(moduleId: string): Promise<number> {
  const rows = await ctx.app.db.selectFrom('lti_score_outbox').select('id').where('module_id', '=', moduleId).execute();
  return rows.length;
}

describe('Mon parcours from a link without custom parameters', () => {
  it('a learner of each fund sees their 16 modules by week, what to do next and the planned 4 h (no 404)', async () => {
    for (const fund of FUND_SLUGS) {
      const { launch, page } = await onboard(0, fund);
      // The first launch onboards (no "Module indisponible" any more).
      expect(launch.final.status).toBe(200);
      expect(page.statusCode).toBe(200);
      const doc = dom(page.body);
      expect(doc.querySelector('h1')?.textContent).toBe('Mon parcours');
      expect(doc.querySelector('.notice')?.textContent).toBe(
        'Merci, votre profil est enregistré. Voici votre parcours.',
      );
      const weeks = [...doc.querySelectorAll('section.week')];
      expect(weeks.map((w) => w.querySelector('h2')?.textContent?.slice(0, 9))).toEqual([
        'Semaine 1',
        'Semaine 2',
        'Semaine 3',
        'Semaine 4',
      ]);
      expect(weeks.map((w) => w.querySelectorAll('li.parcours-module').length)).toEqual([4, 4, 4, 4]);
      const items = [...doc.querySelectorAll('li.parcours-module')];
      expect(items).toHaveLength(16);
      const ids = items.map((li) => li.getAttribute('data-module-id'));
      expect(ids.filter((id) => id?.startsWith('common-'))).toHaveLength(8);
      expect(ids.filter((id) => id?.startsWith(`${fund}-`))).toHaveLength(8);
      expect(items.every((li) => li.getAttribute('data-status') === 'todo')).toBe(true);
      expect(items[0]?.querySelector('.status')?.textContent).toBe('à faire');
      const summary = doc.querySelector('.parcours-summary')?.textContent ?? '';
      expect(summary).toContain('Modules terminés : 0 sur 16.');
      expect(summary).toContain('sur 4 h prévues');
      const next = doc.querySelector('#parcours-suivant');
      expect(next?.textContent).toBe('Commencer par : Module 1 du thème digitalisation (common)');
      // The certificate: what is missing (the course's default rule: the sector modules).
      expect(doc.querySelector('#certificat')?.parentElement?.textContent).toContain(
        '8 modules de votre secteur à terminer',
      );
    }
  });

  it('view=parcours too; the next button leads module after module, the page shows the status and time', async () => {
    const { token, page } = await onboard(1, 'akto', { idcc: '1979' });
    const doc = dom(page.body);
    expect(doc.querySelectorAll('li.parcours-module')).toHaveLength(16);
    const href = doc.querySelector('#parcours-suivant')?.getAttribute('href') ?? '';
    const first = await get(href);
    expect(first.statusCode).toBe(200);
    const m1 = dom(first.body);
    // "Mon parcours" and "Votre temps de connexion" near the top, before the title.
    const nav = m1.querySelector('nav.module-nav');
    expect([...(nav?.querySelectorAll('a') ?? [])].map((a) => a.textContent)).toEqual([
      'Mon parcours',
      'Votre temps de connexion',
    ]);
    expect(nav?.compareDocumentPosition(m1.querySelector('h1') as never)).toBe(4); // the title follows
    expect(m1.querySelector('.kicker')?.textContent).toContain('(module 1 sur 2)');
    const nextLink = m1.querySelector('p.next a');
    expect(nextLink?.textContent).toBe('Module suivant : Module 2 du thème digitalisation (common)');
    // The activity: checkboxes that stay in the page, the debrief on demand; sources open outside.
    const activity = m1.querySelector('[data-block-type="activity"]');
    expect(activity?.querySelectorAll('input[type="checkbox"]')).toHaveLength(4);
    expect(activity?.querySelector('input[type="checkbox"]')?.closest('form')).toBeNull();
    expect(activity?.querySelector('details.debrief summary')?.textContent).toContain('Voir le corrigé');
    const source = m1.querySelector('section.further a');
    expect(source?.getAttribute('target')).toBe('_blank');
    expect(source?.getAttribute('rel')).toBe('noopener noreferrer');

    await complete(token, 'common-digitalisation');
    // One module of sixteen: the parcours link's line item gets no completion score yet.
    expect(await scores('common-digitalisation')).toBe(0);
    const again = dom((await get(`/catalog/parcours?session_token=${encodeURIComponent(token)}`)).body);
    const item = again.querySelector('li[data-module-id="common-digitalisation"]');
    expect(item?.getAttribute('data-status')).toBe('done');
    expect(item?.querySelector('.status')?.textContent).toContain('terminé');
    expect(again.querySelector('.parcours-summary')?.textContent).toContain('Modules terminés : 1 sur 16.');
    expect(again.querySelector('#parcours-suivant')?.textContent).toBe(
      'Continuer avec : Module 2 du thème digitalisation (common)',
    );
    expect(again.querySelector('.parcours-summary a[href^="/tracking/time"]')?.textContent).toBe(
      'Votre temps de connexion',
    );

    // The session only opens the learner's own modules.
    const foreign = await get(`/catalog/module?module=atlas-visibilite&session_token=${encodeURIComponent(token)}`);
    expect(foreign.statusCode).toBe(404);
    expect(dom(foreign.body).body.textContent).toContain('Ce module ne fait pas partie de votre parcours.');
  });
});

describe('Mon parcours and the certificate', () => {
  it('once the rule is met (the 8 sector modules), the certificate is issued and Mon parcours links its PDF', async () => {
    const { token, page } = await onboard(0, 'atlas');
    const sector = [...dom(page.body).querySelectorAll('li.parcours-module')]
      .map((li) => li.getAttribute('data-module-id') as string)
      .filter((id) => id.startsWith('atlas-'));
    expect(sector).toHaveLength(8);
    for (const id of sector) {
      const opened = await get(`/catalog/module?module=${id}&session_token=${encodeURIComponent(token)}`);
      expect(opened.statusCode).toBe(200);
      await complete(token, id);
    }
    const doc = dom((await get(`/catalog/parcours?session_token=${encodeURIComponent(token)}`)).body);
    expect(doc.querySelector('.parcours-summary')?.textContent).toContain('Modules terminés : 8 sur 16.');
    const pdf = doc.querySelector('#certificat')?.parentElement?.querySelector('a[href*="/pdf"]');
    expect(pdf?.textContent).toBe('Télécharger le certificat (PDF)');
    const download = await get(pdf?.getAttribute('href') ?? '');
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-type']).toContain('application/pdf');
    // What next: the common trunk still to do.
    expect(doc.querySelector('#parcours-suivant')?.textContent).toBe(
      'Continuer avec : Module 1 du thème digitalisation (common)',
    );
  });
});

describe('a theme link: the theme’s modules in sequence', () => {
  it('module 1 leads to module 2 (« module suivant »), module 2 back to Mon parcours', async () => {
    const { page, token } = await onboard(2, 'uniformation');
    const m1 = dom(page.body);
    expect(m1.querySelector('body')?.getAttribute('data-module-id')).toBe('uniformation-coeur-de-metier');
    expect(m1.querySelector('.kicker')?.textContent).toContain('(module 1 sur 2)');
    const next = m1.querySelector('p.next a');
    expect(next?.textContent).toBe('Module suivant : Module 2 du thème coeur-de-metier (uniformation)');
    const m2 = dom((await get(next?.getAttribute('href') ?? '')).body);
    expect(m2.querySelector('body')?.getAttribute('data-module-id')).toBe('uniformation-coeur-de-metier-2');
    expect(m2.querySelector('.kicker')?.textContent).toContain('(module 2 sur 2)');
    // The theme link stops at the end of its theme.
    expect(m2.querySelector('p.next a')?.textContent).toBe('Revenir à Mon parcours');
    expect(m2.querySelector('p.next a')?.getAttribute('href')).toBe(
      `/catalog/parcours?session_token=${encodeURIComponent(token)}`,
    );
    // The theme link's completion score comes with its last module, not its first.
    await complete(token, 'uniformation-coeur-de-metier');
    expect(await scores('uniformation-coeur-de-metier')).toBe(0);
    await complete(token, 'uniformation-coeur-de-metier-2');
    expect(await scores('uniformation-coeur-de-metier-2')).toBe(1);
  });
});

describe('the course team on a parcours link', () => {
  it('sees the programme (16 modules, 4 h), the course’s progress by week and the issuance rule', async () => {
    const component = ctx.fake.components[0];
    if (!component) throw new Error('no component');
    const teacher = await ctx.launch(ctx.fake.createUser({ role: 'instructor' }), component);
    const doc = dom(teacher.final.body);
    expect(doc.querySelector('h1')?.textContent).toBe('Vue de l’équipe pédagogique');
    const text = doc.body.textContent ?? '';
    expect(text).toContain('Ce lien affiche « Mon parcours »');
    expect(text).toContain('16 modules sur 4 semaines, soit 4 h prévues');
    expect(doc.querySelector('#regle-certificat')?.textContent).toContain('tous les modules de son secteur terminés');
    const rows = [...doc.querySelectorAll('table.weeks tbody tr')].map((tr) =>
      [...tr.querySelectorAll('th,td')].map((c) => c.textContent),
    );
    expect(rows).toHaveLength(4);
    // The learners onboarded above: one started week 1 (one module of four done), none finished it.
    expect(rows[0]?.[1]).toBe('0');
    expect(Number(rows[0]?.[2])).toBeGreaterThanOrEqual(1);
    expect(doc.querySelector('table.weeks caption')?.textContent).toContain('apprenants avec un profil');
  });

  it('on a theme link, sees each fund’s modules of the theme in sequence', async () => {
    const component = ctx.fake.components[2];
    if (!component) throw new Error('no component');
    const teacher = await ctx.launch(ctx.fake.createUser({ role: 'instructor' }), component);
    const doc = dom(teacher.final.body);
    const akto = [...doc.querySelectorAll('table.funds tbody tr')].find((tr) =>
      tr.querySelector('th')?.textContent?.startsWith('AKTO'),
    );
    const cell = akto?.querySelectorAll('td')[0]?.textContent ?? '';
    expect(cell).toContain('akto-coeur-de-metier,');
    expect(cell).toContain('puis : Module 2 du thème coeur-de-metier (akto)');
  });
});
