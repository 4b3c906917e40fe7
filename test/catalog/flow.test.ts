import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getLearnerProfile,
  listCompletions,
  listFunds,
  listModules,
  type ModuleCompletedEvent,
  registerModuleCompletedListener,
  registerModulePageFragment,
} from '../../src/catalog/index.js';
import { escapeHtml, html } from '../../src/http/html.js';
import { signSession } from '../../src/lti/index.js';
import type { FakeComponent } from '../fixtures/openedx/index.js';
import { attr, attrs, dom, fieldValue, has, normalise, texts } from '../helpers/dom.js';
import { bodyData, type CatalogTestContext, createCatalogTestApp, onboardingForm } from './helpers.js';

/**
 * From the fake Open edX (app.inject transport): the same theme link injects each fund's module, onboarding
 * with eligibility, profile review and correction, progress and completion evidence, the course-team view.
 */
let ctx: CatalogTestContext;
let themeLink: FakeComponent;
let fixedFundLink: FakeComponent;
let brokenThemeLink: FakeComponent;
let brokenModuleLink: FakeComponent;
let coeurLink: FakeComponent;
let commonLink: FakeComponent;
let noPiiLink: FakeComponent;
const fragmentCalls: { moduleId: string; preview: boolean }[] = [];
/** What the catalog published to its completion listeners, and whether the transaction was the caller's. */
const completions: ModuleCompletedEvent[] = [];

beforeAll(async () => {
  ctx = await createCatalogTestApp({
    components: [
      { custom: { theme: 'visibilite' } },
      { custom: { theme: 'visibilite', fund: 'atlas' } },
      { custom: { theme: 'inexistant' } },
      { custom: { module: 'module-retire' } },
      { custom: { theme: 'coeur-de-metier' } },
      { custom: { theme: 'digitalisation' } },
      { custom: { theme: 'visibilite' }, pii: false },
    ],
    extend: (app) =>
      app.register(
        Object.assign(
          async (inner: typeof app) => {
            registerModuleCompletedListener(inner, async (tx, event) => {
              // Inside the completion's transaction: the completion is already visible to it.
              const row = await tx
                .selectFrom('module_progress')
                .select('completed_at')
                .where('learner_id', '=', event.learnerId)
                .where('module_id', '=', event.moduleId)
                .executeTakeFirst();
              if (row?.completed_at?.getTime() !== event.completedAt.getTime())
                throw new Error('not in the transaction');
              completions.push(event);
            });
            registerModulePageFragment(inner, (c) => {
              fragmentCalls.push({ moduleId: c.moduleId, preview: c.preview });
              return {
                body: html`<script src="/assets/tracking/test.js" data-module="${c.moduleId}" data-preview="${String(c.preview)}"></script>`,
              };
            });
          },
          { [Symbol.for('skip-override')]: true },
        ),
      ),
  });
  [themeLink, fixedFundLink, brokenThemeLink, brokenModuleLink, coeurLink, commonLink, noPiiLink] = ctx.fake
    .components as [
    FakeComponent,
    FakeComponent,
    FakeComponent,
    FakeComponent,
    FakeComponent,
    FakeComponent,
    FakeComponent,
  ];
});
afterAll(() => ctx.close());

async function post(url: string, form: Record<string, string>) {
  return ctx.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });
}

async function api(method: 'GET' | 'POST', url: string, token: string | null, body?: unknown) {
  return ctx.app.inject({
    method,
    url,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
}

/** Launch + onboarding of a new learner on a link; returns the module page after onboarding. */
async function onboard(component: FakeComponent, form: Record<string, string>, name = 'Léa Durand') {
  const user = ctx.fake.createUser({ name });
  const launch = await ctx.launch(user, component);
  const page = await post('/catalog/onboarding', { session_token: launch.sessionToken, ...form });
  return { user, token: launch.sessionToken, launch, page };
}

describe('the injection: one theme link, each learner their fund’s module', () => {
  it('five learners of the five funds land on five different modules, each of their own fund', async () => {
    const funds = await listFunds(ctx.app.db);
    expect(funds.map((f) => f.slug).sort()).toEqual(['akto', 'atlas', 'ocapiat', 'opco-sante', 'uniformation']);
    const modules = await listModules(ctx.app.db);
    const served = new Set<string>();
    for (const fund of funds) {
      const { launch, page } = await onboard(themeLink, onboardingForm({ fund: fund.slug }));
      // First launch: onboarding, prefilled from the name Open edX shares.
      expect(launch.final.status).toBe(200);
      expect(launch.final.body).toContain('Avant de commencer');
      const form = dom(launch.final.body);
      expect(attr(form, '#champ-givenName[name="givenName"]', 'value')).toBe('Léa');
      expect(attr(form, '#champ-familyName[name="familyName"]', 'value')).toBe('Durand');

      expect(page.statusCode).toBe(200);
      const expected = modules.find(
        (m) => m.theme === 'visibilite' && m.fundSlug === fund.slug && m.branches.length === 0,
      );
      expect(expected, fund.slug).toBeDefined();
      expect(bodyData(page.body, 'module-id')).toBe(expected?.id);
      expect(page.body).toContain(escapeHtml(expected?.title ?? ''));
      expect(page.body).toContain(escapeHtml(fund.name));
      expect(page.body).toContain('Merci, votre profil est enregistré.');
      served.add(expected?.id as string);
    }
    expect(served.size).toBe(5);
  });

  it('a later launch of the same learner goes straight to their module', async () => {
    const { user } = await onboard(themeLink, onboardingForm({ fund: 'opco-sante' }));
    const again = await ctx.launch(user, themeLink);
    expect(again.final.body).not.toContain('Avant de commencer');
    expect(bodyData(again.final.body, 'module-id')).toBe('opco-sante-visibilite');
  });

  it('custom fund= on the link fixes the fund: the form does not ask for it, and it wins over the profile', async () => {
    const user = ctx.fake.createUser({ name: 'Paul Bernard' });
    const launch = await ctx.launch(user, fixedFundLink);
    expect(launch.final.body).toContain('Ce cours est proposé aux entreprises de ce fonds.');
    expect(launch.final.body).not.toContain('id="champ-fund"');
    const page = await post('/catalog/onboarding', {
      session_token: launch.sessionToken,
      ...onboardingForm({ fund: 'akto' }),
    });
    expect(bodyData(page.body, 'module-id')).toBe('atlas-visibilite');
    expect((await getLearnerProfile(ctx.app.db, bodyFromToken(launch.sessionToken).learnerId))?.fundSlug).toBe('atlas');

    // An AKTO learner (by profile) on the Atlas course run sees the Atlas module.
    const { user: aktoLearner } = await onboard(themeLink, onboardingForm({ fund: 'akto' }));
    const onAtlasRun = await ctx.launch(aktoLearner, fixedFundLink);
    expect(bodyData(onAtlasRun.final.body, 'module-id')).toBe('atlas-visibilite');
  });

  it('the fund follows the branch (IDCC), and a branch variant wins over the fund’s default module', async () => {
    const variants = (await listModules(ctx.app.db)).filter((m) => m.branches.length > 0);
    expect(variants.length).toBeGreaterThan(0);
    const variant = variants[0]!;
    const idcc = variant.branches[0]!;
    const link = variant.theme === 'coeur-de-metier' ? coeurLink : themeLink;
    expect(variant.theme).toBe('coeur-de-metier');

    const { page } = await onboard(link, onboardingForm({ fund: '', idcc }));
    expect(page.statusCode).toBe(200);
    expect(bodyData(page.body, 'module-id')).toBe(variant.id);

    // Same fund, another branch: the default module.
    const { page: other } = await onboard(link, onboardingForm({ fund: variant.fundSlug as string, idcc: '' }));
    expect(bodyData(other.body, 'module-id')).toBe(`${variant.fundSlug}-coeur-de-metier`);
  });

  it('a common-trunk theme shows everyone the same module', async () => {
    const a = await onboard(commonLink, onboardingForm({ fund: 'akto' }));
    const b = await onboard(commonLink, onboardingForm({ fund: 'ocapiat' }));
    expect(bodyData(a.page.body, 'module-id')).toBe('common-digitalisation');
    expect(bodyData(b.page.body, 'module-id')).toBe('common-digitalisation');
    expect(a.page.body).toContain('Tronc commun');
  });

  it('an unknown theme or module: a clear French page for the learner, a log line for the operators', async () => {
    const user = ctx.fake.createUser();
    for (const [link, detail] of [
      [brokenThemeLink, 'unknown theme "inexistant"'],
      [brokenModuleLink, 'unknown module "module-retire"'],
    ] as const) {
      const result = await ctx.fake.launch({ user, transport: ctx.transport, component: link });
      expect(result.final.status).toBe(404);
      const doc = dom(result.final.body);
      expect(attr(doc, 'html', 'lang')).toBe('fr');
      const shown = normalise(doc.body.textContent);
      expect(shown).toContain('Module indisponible');
      expect(shown).toContain('Signalez-le à l’équipe du cours');
      expect(shown).toMatch(/Référence à donner à l’équipe du cours : [0-9a-f-]{36}/);
      expect(texts(doc, 'code').some((c) => /^[0-9a-f-]{36}$/.test(c))).toBe(true);
      const line = ctx.logs.filter((l) => l.msg === 'catalog link cannot be served').at(-1);
      expect(line).toMatchObject({ detail, level: 40 });
    }
  });
});

function bodyFromToken(token: string): { learnerId: string; courseId: string } {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as {
    learnerId: string;
    courseId: string;
  };
}

describe('onboarding: eligibility and validation', () => {
  it('a company of 250 employees or more is refused politely, with the reason, and nothing is stored', async () => {
    const { page, token, user } = await onboard(themeLink, onboardingForm({ fund: 'akto', headcountBand: '250+' }));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Inscription impossible pour cette entreprise');
    expect(page.body).toContain('réservée aux TPE et PME');
    expect(page.body).toContain('moins de 250 salariés');
    // The form is shown again with what was typed, to fix a wrong answer.
    const form = dom(page.body);
    expect(fieldValue(form, 'companyName')).toBe('Hôtel du Parc');
    expect(fieldValue(form, 'headcountBand')).toBe('250+');
    const { learnerId } = bodyFromToken(token);
    expect(await getLearnerProfile(ctx.app.db, learnerId)).toBeNull();
    expect(ctx.logs.filter((l) => l.msg === 'profile refused: not eligible').at(-1)).toMatchObject({
      reason: 'company_too_large',
    });

    // The learner fixes the band: now accepted.
    const fixed = await post('/catalog/onboarding', {
      session_token: token,
      ...onboardingForm({ fund: 'akto', headcountBand: '50-249' }),
    });
    expect(bodyData(fixed.body, 'module-id')).toBe('akto-visibilite');
    // And a refused learner relaunching is asked again, not shown a module.
    const other = await onboard(themeLink, onboardingForm({ fund: 'akto', headcountBand: '250+' }));
    const relaunch = await ctx.launch(other.user, themeLink);
    expect(relaunch.final.body).toContain('Avant de commencer');
    void user;
  });

  it('validation failures keep every typed value and say what is wrong, field by field', async () => {
    const typed = onboardingForm({
      civility: '',
      companyName: 'Boulangerie Léa & Fils "Au bon pain"',
      siret: '732 829 320 00075',
      familyName: 'Dupont-Aignan',
      givenName: '',
      fund: 'uniformation',
      idcc: '1979',
    });
    const { page, token } = await onboard(themeLink, typed);
    expect(page.statusCode).toBe(422);
    expect(page.body).toContain('Le formulaire contient 4 erreurs');
    expect(page.body).toContain('Vos réponses sont conservées');
    const form = dom(page.body);
    expect(fieldValue(form, 'companyName')).toBe(typed.companyName);
    expect(fieldValue(form, 'siret')).toBe('732 829 320 00075');
    expect(fieldValue(form, 'familyName')).toBe('Dupont-Aignan');
    expect(fieldValue(form, 'headcountBand')).toBe('10-49');
    expect(fieldValue(form, 'fund')).toBe('uniformation');
    expect(fieldValue(form, 'idcc')).toBe('1979');
    // Each error is tied to its field, and the summary links to it.
    expect(attr(form, '#champ-siret[name="siret"]', 'aria-invalid')).toBe('true');
    expect(attr(form, '#champ-siret', 'aria-describedby')).toBe('aide-siret erreur-siret');
    expect(has(form, '#erreur-siret')).toBe(true);
    expect(attrs(form, 'a[href^="#champ-"]', 'href')).toEqual(
      expect.arrayContaining(['#champ-siret', '#champ-civility-madame']),
    );
    expect(page.body).toContain('relève de AKTO, pas de Uniformation');
    expect(await getLearnerProfile(ctx.app.db, bodyFromToken(token).learnerId)).toBeNull();
  });

  it('without PII sharing the names are empty, to be typed', async () => {
    const user = ctx.fake.createUser({ name: 'Nom Caché' });
    const launch = await ctx.launch(user, noPiiLink);
    expect(attr(dom(launch.final.body), '#champ-givenName[name="givenName"]', 'value')).toBe('');
    expect(launch.final.body).not.toContain('Caché');
  });

  it('every field has a label, and the page is French with a personal-data notice', async () => {
    const user = ctx.fake.createUser();
    const { final } = await ctx.launch(user, themeLink);
    const doc = dom(final.body);
    expect(attr(doc, 'html', 'lang')).toBe('fr');
    expect(final.body).toContain('Vos données personnelles');
    const fields = [...doc.querySelectorAll('input[id]:not([type="hidden"]), select[id], textarea[id]')];
    expect(fields.length).toBeGreaterThanOrEqual(12);
    for (const field of fields) {
      const id = field.getAttribute('id') as string;
      const labelled = doc.querySelector(`label[for="${id}"]`) !== null || field.closest('label') !== null;
      expect(labelled, id).toBe(true);
    }
  });
});

describe('profile review and correction', () => {
  it('the learner reviews and corrects their profile; a wrong correction keeps what was typed', async () => {
    const { token } = await onboard(themeLink, onboardingForm({ fund: 'akto' }));
    const view = await ctx.app.inject({ method: 'GET', url: `/catalog/profile?session_token=${token}` });
    expect(view.statusCode).toBe(200);
    expect(view.body).toContain('Mon profil');
    expect(view.body).toContain('value="73282932000074"');

    const bad = await post('/catalog/profile', {
      session_token: token,
      ...onboardingForm({ fund: 'akto', siret: '123', companyName: 'Le Relais' }),
    });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('value="Le Relais"');
    const { learnerId } = bodyFromToken(token);
    expect((await getLearnerProfile(ctx.app.db, learnerId))?.companyName).toBe('Hôtel du Parc');

    const ok = await post('/catalog/profile', {
      session_token: token,
      ...onboardingForm({ fund: 'akto', companyName: 'Le Relais' }),
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('Vos modifications sont enregistrées.');
    expect(await getLearnerProfile(ctx.app.db, learnerId)).toMatchObject({
      companyName: 'Le Relais',
      fundName: 'AKTO',
    });
  });

  it('a course-team member lists the learners of their course and corrects a profile', async () => {
    const { token: learnerToken } = await onboard(themeLink, onboardingForm({ fund: 'akto', familyName: 'Martinn' }));
    const { learnerId } = bodyFromToken(learnerToken);
    const teacher = await ctx.launch(ctx.fake.createUser({ role: 'instructor' }), themeLink);
    const list = await ctx.app.inject({
      method: 'GET',
      url: `/catalog/course/learners?session_token=${teacher.sessionToken}`,
    });
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain('Léa Martinn');

    const form = await ctx.app.inject({
      method: 'GET',
      url: `/catalog/course/learners/${learnerId}/profile?session_token=${teacher.sessionToken}`,
    });
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('value="Martinn"');
    const saved = await post(`/catalog/course/learners/${learnerId}/profile`, {
      session_token: teacher.sessionToken,
      ...onboardingForm({ fund: 'akto', familyName: 'Martin' }),
    });
    expect(saved.statusCode).toBe(200);
    expect(saved.body).toContain('Le profil est corrigé.');
    const row = await ctx.app.db
      .selectFrom('learner_profiles')
      .selectAll()
      .where('learner_id', '=', learnerId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      family_name: 'Martin',
      updated_by_role: 'course_team',
      updated_by: bodyFromToken(teacher.sessionToken).learnerId,
    });
  });

  it('refuses a learner correcting someone else, and a course team reaching a learner of another course', async () => {
    const { token } = await onboard(themeLink, onboardingForm({ fund: 'akto' }));
    const victim = bodyFromToken((await onboard(themeLink, onboardingForm({ fund: 'atlas' }))).token).learnerId;
    const asLearner = await post(`/catalog/course/learners/${victim}/profile`, {
      session_token: token,
      ...onboardingForm({ fund: 'akto' }),
    });
    expect(asLearner.statusCode).toBe(403);
    expect(asLearner.body).toContain('<html lang="fr">');

    // A course-team session of another course (minted as the LTI capability would, for a real course row).
    const teacherLaunch = await ctx.launch(ctx.fake.createUser({ role: 'instructor' }), themeLink);
    const t = bodyFromToken(teacherLaunch.sessionToken) as unknown as Record<string, string>;
    const otherCourse = await ctx.app.db
      .insertInto('courses')
      .values({ issuer: ctx.fake.issuer, context_id: 'course-v1:FUN+AUTRE+2025' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const otherToken = await signSession(ctx.app, {
      learnerId: t.learnerId as string,
      courseId: otherCourse.id,
      resourceLinkId: null,
      launchId: t.launchId as string,
      registrationId: t.registrationId as string,
      role: 'course_team',
    });
    const cross = await ctx.app.inject({
      method: 'GET',
      url: `/catalog/course/learners/${victim}/profile?session_token=${otherToken}`,
    });
    expect(cross.statusCode).toBe(404);
    const crossPost = await post(`/catalog/course/learners/${victim}/profile`, {
      session_token: otherToken,
      ...onboardingForm({ fund: 'akto' }),
    });
    expect(crossPost.statusCode).toBe(404);
    expect((await getLearnerProfile(ctx.app.db, victim))?.fundSlug).toBe('atlas');
  });

  it('pages refuse a missing or forged session token', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/catalog/profile' })).statusCode).toBe(401);
    expect((await ctx.app.inject({ method: 'GET', url: '/catalog/module?session_token=abc.def.ghi' })).statusCode).toBe(
      401,
    );
    const page = await post('/catalog/onboarding', { ...onboardingForm(), session_token: 'forged' });
    expect(page.statusCode).toBe(401);
    expect(page.body).toContain('<html lang="fr">');
  });
});

describe('module page, progress and completion evidence', () => {
  it('records each part seen and the quiz, and completes the module once, as evidence', async () => {
    const { token, page } = await onboard(themeLink, onboardingForm({ fund: 'ocapiat' }));
    const moduleId = bodyData(page.body, 'module-id') as string;
    expect(moduleId).toBe('ocapiat-visibilite');
    // The page: progress indicator, one "seen" form per part, the quiz as radio groups, the tracker hook.
    const doc = dom(page.body);
    expect(attr(doc, 'progress#progress-bar', 'value')).toBe('0');
    expect(Number(attr(doc, 'progress#progress-bar', 'max'))).toBeGreaterThan(0);
    expect(page.body).toContain('Progression : 0 partie terminée sur');
    expect(attr(doc, 'meta[name="emargement-session"]', 'content')).toBeTruthy();
    // Videos without a real file show the configured placeholder, with the transcript open below.
    expect(attrs(doc, '[src]', 'src').some((src) => src.startsWith(`${ctx.config.videoPlaceholderUrl}?titre=`))).toBe(
      true,
    );
    expect(has(doc, 'details.transcript[open]')).toBe(true);
    expect(bodyData(page.body, 'course-id')).toBe(bodyFromToken(token).courseId);
    expect(bodyData(page.body, 'preview')).toBe('false');
    const tracker = doc.querySelector('script[src="/assets/tracking/test.js"]');
    expect(tracker?.getAttribute('data-module')).toBe(moduleId);
    expect(tracker?.getAttribute('data-preview')).toBe('false');
    expect(fragmentCalls.at(-1)).toEqual({ moduleId, preview: false });

    let progress = (await api('GET', `/api/catalog/progress?moduleId=${moduleId}`, token)).json();
    // Progress is kept against the module's current version (content updates raise it).
    const moduleVersion = (await listModules(ctx.app.db)).find((m) => m.id === moduleId)?.currentVersion;
    expect(moduleVersion).toBeGreaterThanOrEqual(1);
    expect(progress).toMatchObject({ moduleId, moduleVersion, done: [], complete: false, completedAt: null });
    const blocks = [...doc.querySelectorAll('section.block[id^="bloc-"]')].map((section) => ({
      id: (section.getAttribute('id') as string).slice('bloc-'.length),
      type: section.getAttribute('data-block-type') as string,
    }));
    expect(blocks.length).toBe(progress.total);
    for (const b of blocks.filter((x) => x.type !== 'quiz')) {
      const res = await api('POST', '/api/catalog/progress/seen', token, { moduleId, blockId: b.id });
      expect(res.statusCode).toBe(200);
      progress = res.json();
    }
    expect(progress.complete).toBe(false);
    expect(progress.quizAnswered).toBe(false);

    const questions = doc.querySelectorAll('fieldset.choices[data-question]').length;
    expect(questions).toBeGreaterThanOrEqual(2);
    const quiz = await api('POST', '/api/catalog/progress/quiz', token, {
      moduleId,
      answers: Array(questions).fill(0),
    });
    expect(quiz.statusCode).toBe(200);
    const body = quiz.json();
    expect(body.progress).toMatchObject({ complete: true, quizAnswered: true });
    expect(body.results).toHaveLength(questions);
    expect(body.results[0].explanation.length).toBeGreaterThan(10);
    expect(body.progress.completedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const { learnerId, courseId } = bodyFromToken(token);
    const row = await ctx.app.db
      .selectFrom('module_progress')
      .selectAll()
      .where('learner_id', '=', learnerId)
      .where('module_id', '=', moduleId)
      .executeTakeFirstOrThrow();
    expect(row.completed_at).toBeInstanceOf(Date);
    expect(Object.keys(row.blocks_seen).sort()).toEqual(
      blocks
        .filter((b) => b.type !== 'quiz')
        .map((b) => b.id)
        .sort(),
    );
    expect(row.quiz_answers).toMatchObject({ answers: Array(questions).fill(0), total: questions });
    expect(row.fund_slug).toBe('ocapiat');
    expect(await listCompletions(ctx.app.db, { learnerId, courseId, completedOnly: true })).toMatchObject([
      { moduleId, moduleVersion, theme: 'visibilite', trunk: 'sector', fundSlug: 'ocapiat', nominalMinutes: 15 },
    ]);

    // Answering again keeps the first completion time: the evidence does not move.
    const first = row.completed_at;
    await api('POST', '/api/catalog/progress/quiz', token, { moduleId, answers: Array(questions).fill(1) });
    const after = await ctx.app.db
      .selectFrom('module_progress')
      .select('completed_at')
      .where('id', '=', row.id)
      .executeTakeFirstOrThrow();
    expect(after.completed_at?.toISOString()).toBe(first?.toISOString());
    // Listeners (the LTI services' score) were told once, with the evidence's instant.
    expect(completions.filter((e) => e.learnerId === learnerId && e.moduleId === moduleId)).toEqual([
      { learnerId, courseId, resourceLinkId: expect.any(String), moduleId, completedAt: first },
    ]);

    // The page now says so.
    const reload = await ctx.app.inject({ method: 'GET', url: `/catalog/module?session_token=${token}` });
    expect(reload.body).toContain('Bravo, vous avez terminé ce module.');
    expect(reload.body).toContain(`Module terminé : ${blocks.length} parties sur ${blocks.length}.`);
  });

  it('works without JavaScript: forms post, the page comes back updated', async () => {
    const { token, page } = await onboard(themeLink, onboardingForm({ fund: 'uniformation' }));
    const moduleId = bodyData(page.body, 'module-id') as string;
    const firstBlock = /<form class="seen-form" method="post" action="\/catalog\/module\/seen#bloc-([a-z0-9-]+)"/.exec(
      page.body,
    )?.[1] as string;
    // Each form post redirects (303, post/redirect/get) to the module page with a single-use view ticket.
    const follow = async (res: Awaited<ReturnType<typeof post>>) => {
      expect(res.statusCode).toBe(303);
      return ctx.app.inject({ method: 'GET', url: String(res.headers.location) });
    };
    const seen = await follow(
      await post('/catalog/module/seen', {
        session_token: token,
        module_id: moduleId,
        block_id: firstBlock,
      }),
    );
    expect(seen.statusCode).toBe(200);
    expect(seen.body).toContain('Partie terminée.');
    expect(seen.body).toContain('Progression : 1 partie terminée sur');

    const incomplete = await follow(
      await post('/catalog/module/quiz', { session_token: token, module_id: moduleId, q0: '1' }),
    );
    expect(incomplete.body).toContain('Répondez à toutes les questions avant de valider.');
    const n = dom(page.body).querySelectorAll('fieldset.choices[data-question]').length;
    const answers = Object.fromEntries(Array.from({ length: n }, (_, i) => [`q${i}`, '0']));
    const done = await follow(
      await post('/catalog/module/quiz', { session_token: token, module_id: moduleId, ...answers }),
    );
    expect(done.statusCode).toBe(200);
    const result = dom(done.body);
    expect(texts(result, '.quiz-score')).toEqual([
      expect.stringMatching(/^Vous avez \d bonnes? réponses? sur \d\. Le quiz est enregistré\.$/),
    ]);
    const feedback = texts(result, 'p.feedback strong');
    expect(feedback.length).toBeGreaterThan(0);
    for (const f of feedback) expect(['Bonne réponse.', 'Pas tout à fait.']).toContain(f);
  });

  it('refuses progress for a module not served, an unknown block, bad answers, other roles and no token', async () => {
    const { token, page } = await onboard(themeLink, onboardingForm({ fund: 'atlas' }));
    const moduleId = bodyData(page.body, 'module-id') as string;
    const notServed = await api('POST', '/api/catalog/progress/seen', token, {
      moduleId: 'akto-visibilite',
      blockId: 'video-1',
    });
    expect(notServed.statusCode).toBe(404);
    expect(notServed.json()).toMatchObject({ code: 'module_not_opened' });
    expect(
      (await api('POST', '/api/catalog/progress/seen', token, { moduleId, blockId: 'inexistant' })).json(),
    ).toMatchObject({
      status: 400,
      code: 'unknown_block',
    });
    expect((await api('POST', '/api/catalog/progress/seen', token, { moduleId, blockId: 'quiz' })).statusCode).toBe(
      400,
    );
    expect((await api('POST', '/api/catalog/progress/quiz', token, { moduleId, answers: [0] })).json()).toMatchObject({
      code: 'quiz_incomplete',
    });
    expect((await api('POST', '/api/catalog/progress/quiz', token, { moduleId, answers: [9, 9, 9] })).statusCode).toBe(
      400,
    );
    expect((await api('POST', '/api/catalog/progress/seen', null, { moduleId, blockId: 'video-1' })).statusCode).toBe(
      401,
    );
    expect(
      (await api('POST', '/api/catalog/progress/seen', `${token}x`, { moduleId, blockId: 'video-1' })).statusCode,
    ).toBe(401);
    const teacher = await ctx.launch(ctx.fake.createUser({ role: 'instructor' }), themeLink);
    expect(
      (await api('POST', '/api/catalog/progress/seen', teacher.sessionToken, { moduleId, blockId: 'video-1' }))
        .statusCode,
    ).toBe(403);
  });
});

describe('course team', () => {
  it('the same link shows the course team which module each fund gets, with a preview as any fund', async () => {
    const teacher = await ctx.launch(ctx.fake.createUser({ role: 'instructor' }), themeLink);
    const overview = teacher.final.body;
    expect(overview).toContain('Vue de l’équipe pédagogique');
    expect(overview).toContain('chaque apprenant voit le module de son fonds');
    const modules = await listModules(ctx.app.db);
    const overviewDoc = dom(overview);
    const codes = texts(overviewDoc, 'code');
    const links = attrs(overviewDoc, 'a[href]', 'href');
    for (const fund of await listFunds(ctx.app.db)) {
      const m = modules.find((x) => x.theme === 'visibilite' && x.fundSlug === fund.slug && x.branches.length === 0);
      expect(normalise(overviewDoc.body.textContent)).toContain(fund.name);
      expect(codes).toContain(m?.id);
      expect(links.some((h) => h.startsWith(`/catalog/preview?module=${m?.id}&fund=${fund.slug}&session_token=`))).toBe(
        true,
      );
    }
    expect(
      await ctx.app.db
        .selectFrom('module_progress')
        .select('id')
        .where('learner_id', '=', bodyFromToken(teacher.sessionToken).learnerId)
        .execute(),
    ).toEqual([]);

    const preview = await ctx.app.inject({
      method: 'GET',
      url: `/catalog/preview?module=akto-visibilite&fund=akto&session_token=${teacher.sessionToken}`,
    });
    expect(preview.statusCode).toBe(200);
    expect(preview.body).toContain('Aperçu');
    expect(preview.body).toContain('comme un apprenant de AKTO');
    expect(bodyData(preview.body, 'preview')).toBe('true');
    expect(preview.body).not.toContain('class="seen-form"');
    expect(fragmentCalls.at(-1)).toEqual({ moduleId: 'akto-visibilite', preview: true });

    // A learner cannot use the course-team pages.
    const { token } = await onboard(themeLink, onboardingForm({ fund: 'akto' }));
    expect(
      (await ctx.app.inject({ method: 'GET', url: `/catalog/preview?module=akto-visibilite&session_token=${token}` }))
        .statusCode,
    ).toBe(403);
    expect((await ctx.app.inject({ method: 'GET', url: `/catalog/course?session_token=${token}` })).statusCode).toBe(
      403,
    );
  });

  it('a link with a fixed fund, and a broken link, are explained to the course team', async () => {
    const teacher = ctx.fake.createUser({ role: 'instructor' });
    const fixed = await ctx.launch(teacher, fixedFundLink);
    const fixedDoc = dom(fixed.final.body);
    expect(normalise(fixedDoc.body.textContent)).toContain('Ce lien fixe le fonds (fund=atlas)');
    expect(texts(fixedDoc, 'code')).toContain('atlas-visibilite');
    expect(texts(fixedDoc, 'code')).not.toContain('akto-visibilite');

    const broken = await ctx.launch(teacher, brokenThemeLink);
    const brokenDoc = dom(broken.final.body);
    expect(normalise(brokenDoc.body.textContent)).toContain('Le thème demandé par ce lien n’existe pas.');
    expect(texts(brokenDoc, 'code')).toContain('theme=visibilite');
  });
});

describe('assets', () => {
  it('serves the video placeholder page and the page scripts', async () => {
    const placeholder = await ctx.app.inject({ method: 'GET', url: '/assets/video-placeholder.html' });
    expect(placeholder.statusCode).toBe(200);
    expect(placeholder.headers['content-type']).toContain('text/html');
    expect(placeholder.body).toContain('La vidéo arrive bientôt');
    const js = await ctx.app.inject({ method: 'GET', url: '/assets/catalog/module.js' });
    expect(js.headers['content-type']).toContain('javascript');
    expect(js.body).toContain('/api/catalog/progress/seen');
  });
});
