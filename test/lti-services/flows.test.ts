import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { listModules } from '../../src/catalog/index.js';
import { processScoreOutbox } from '../../src/lti-services/index.js';
import {
  CLAIM,
  decodeJwtPayload,
  type FakeComponent,
  type FakeUser,
  injectTransport,
  type LaunchOptions,
  parseAutoPostForm,
  ROLE,
  startFakeOpenEdx,
} from '../fixtures/openedx/index.js';
import { attachServices, type FakeOpenEdxServices } from '../fixtures/openedx/services.js';
import { dom, normalise } from '../helpers/dom.js';
import { createLtiTestApp, type LtiTestContext } from '../lti/helpers.js';

/**
 * Whole flows with the full app (every capability) and the fake Open edX with its LTI Advantage
 * services: placing content by Deep Linking, scoring a completed module, the outbox across an outage
 * and a restart, memberships, and the course-team view.
 */

let ctx: LtiTestContext;
let services: FakeOpenEdxServices;
/** The running tool: replaced when the test restarts it. */
let tool: App;
let graded: FakeComponent;

const jwksOfTool = async (): Promise<JSONWebKeySet> =>
  (await tool.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;

beforeAll(async () => {
  ctx = await createLtiTestApp({
    full: true,
    fake: { component: { name: 'Augmenter sa visibilité', custom: { theme: 'visibilite' } } },
  });
  tool = ctx.app;
  services = attachServices(ctx.fake, jwksOfTool);
  graded = ctx.fake.components[0] as FakeComponent;
});
afterAll(async () => {
  await ctx.close();
});

function transport() {
  return injectTransport(tool, ctx.config.publicUrl);
}

async function post(url: string, token: string, form: URLSearchParams | Record<string, unknown>, json = false) {
  if (json) {
    return tool.inject({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${token}` },
      payload: form as Record<string, unknown>,
    });
  }
  const body = new URLSearchParams(form as URLSearchParams);
  body.set('session_token', token);
  return tool.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: body.toString(),
  });
}

async function launch(user: FakeUser, options: Partial<Omit<LaunchOptions, 'user' | 'transport'>> = {}) {
  return ctx.fake.launch({ user, transport: transport(), ...options });
}

/** A learner of the AKTO fund launches the graded component, fills in the profile, and gets the module. */
async function learnerWithModule(name: string): Promise<{ user: FakeUser; token: string }> {
  const user = ctx.fake.createUser({ role: 'student', name });
  const result = await launch(user);
  expect(result.final.status).toBe(200);
  const token = result.sessionToken as string;
  const [givenName, familyName] = name.split(' ');
  const res = await post(
    '/catalog/onboarding',
    token,
    new URLSearchParams({
      civility: 'madame',
      familyName: familyName ?? 'Martin',
      givenName: givenName ?? 'Camille',
      companyName: 'Hôtel du Port',
      siret: '73282932000074',
      headcountBand: '0-9',
      idcc: '',
      fund: 'akto',
    }),
  );
  expect(res.statusCode).toBe(200);
  return { user, token };
}

/** Every block seen and the quiz answered: the catalog records the completion. */
async function completeModule(token: string, moduleId = 'akto-visibilite') {
  const row = await tool.db
    .selectFrom('module_versions')
    .select('manifest')
    .where('module_id', '=', moduleId)
    .orderBy('version', 'desc')
    .executeTakeFirstOrThrow();
  const blocks = (row.manifest as { blocks: { id: string; type: string; questions?: unknown[] }[] }).blocks;
  for (const b of blocks.filter((x) => x.type !== 'quiz')) {
    const r = await post('/api/catalog/progress/seen', token, { moduleId, blockId: b.id }, true);
    expect(r.statusCode).toBe(200);
  }
  const quiz = blocks.find((b) => b.type === 'quiz');
  const r = await post(
    '/api/catalog/progress/quiz',
    token,
    { moduleId, answers: quiz?.questions?.map(() => 0) ?? [] },
    true,
  );
  expect(r.statusCode).toBe(200);
  expect(r.json().progress.complete).toBe(true);
}

const lineItemUrl = () => `${ctx.fake.url}/api/lti_consumer/v1/lti/${graded.configId}/lti-ags/1`;

describe('Deep Linking: an instructor places modules from the catalogue', () => {
  it('shows the French picker on a deep-linking launch, and the platform accepts the signed answer', async () => {
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const result = await launch(instructor, { messageType: 'LtiDeepLinkingRequest' });
    expect(result.final.status).toBe(200);
    const page = result.final.body;
    expect(page).toContain('Ajouter des modules au cours');
    expect(page).toContain('le contenu s’adapte au fonds de l’apprenant');
    expect(page).toContain('value="theme:visibilite"');
    expect(page).toContain('value="module:common-digitalisation"');
    expect(page).toContain('value="module:akto-visibilite"');
    expect(page).toContain('type="checkbox"');

    const form = new URLSearchParams();
    form.append('item', 'theme:visibilite');
    form.append('item', 'module:common-digitalisation');
    form.append('item', 'module:akto-visibilite');
    form.append('action', 'add');
    const answer = await post('/lti-services/deep-linking', result.sessionToken as string, form);
    expect(answer.statusCode).toBe(200);
    const auto = parseAutoPostForm(answer.body);
    expect(auto?.action).toBe(graded.deepLinkReturnUrl);
    expect(auto?.method).toBe('POST');
    const jwt = auto?.fields.JWT as string;

    // The platform verifies the response with the tool's keyset, and creates the components.
    const returned = await fetch(auto?.action as string, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ JWT: jwt }).toString(),
    });
    expect(returned.status).toBe(200);
    const last = services.deepLinkingReturns.at(-1);
    expect(last?.configId).toBe(graded.configId);
    expect(last?.contentItems).toEqual([
      expect.objectContaining({
        type: 'ltiResourceLink',
        title: 'Augmenter sa visibilité',
        url: `${ctx.config.publicUrl}/lti/launch`,
        custom: { theme: 'visibilite' },
        lineItem: {
          label: 'Augmenter sa visibilité',
          scoreMaximum: 1,
          resourceId: 'theme:visibilite',
          tag: 'completion',
        },
      }),
      expect.objectContaining({
        custom: { module: 'common-digitalisation' },
        lineItem: expect.objectContaining({ scoreMaximum: 1 }),
      }),
      expect.objectContaining({ custom: { module: 'akto-visibilite' } }),
    ]);
    const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(await jwksOfTool()), {
      issuer: graded.clientId,
      audience: ctx.fake.issuer,
    });
    expect(protectedHeader).toMatchObject({ alg: 'RS256' });
    expect(payload[CLAIM.messageType]).toBe('LtiDeepLinkingResponse');
    expect(payload[CLAIM.deploymentId]).toBe('1');
    expect(payload).not.toHaveProperty(['https://purl.imsglobal.org/spec/lti-dl/claim/data']);
  });

  it('offers Mon parcours, every theme (common and sector) and every module; places the parcours link', async () => {
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const result = await launch(instructor, { messageType: 'LtiDeepLinkingRequest' });
    const doc = dom(result.final.body);
    const values = [...doc.querySelectorAll('input[name="item"]')].map((i) => i.getAttribute('value'));
    expect(values[0]).toBe('parcours');
    for (const theme of ['digitalisation', 'obligations-protection', 'coeur-de-metier', 'mesurer-optimiser']) {
      expect(values).toContain(`theme:${theme}`);
    }
    const modules = await listModules(ctx.app.db);
    for (const m of modules) expect(values).toContain(`module:${m.id}`);

    const form = new URLSearchParams();
    form.append('item', 'parcours');
    form.append('item', 'theme:digitalisation');
    form.append('action', 'add');
    const answer = await post('/lti-services/deep-linking', result.sessionToken as string, form);
    expect(answer.statusCode).toBe(200);
    const jwt = parseAutoPostForm(answer.body)?.fields.JWT as string;
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(await jwksOfTool()), {
      issuer: graded.clientId,
      audience: ctx.fake.issuer,
    });
    expect(payload['https://purl.imsglobal.org/spec/lti-dl/claim/content_items']).toEqual([
      expect.objectContaining({
        title: 'Mon parcours',
        custom: { view: 'parcours' },
        lineItem: expect.objectContaining({ resourceId: 'parcours', tag: 'completion' }),
      }),
      expect.objectContaining({ custom: { theme: 'digitalisation' } }),
    ]);
  });

  it('accepts a deep-linking launch on the launch URL too, and echoes the platform data', async () => {
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const result = await launch(instructor, {
      messageType: 'LtiDeepLinkingRequest',
      overrides: {
        action: graded.launchUrl,
        claims: (c) => ({
          ...c,
          [CLAIM.deepLinkingSettings]: {
            ...(c[CLAIM.deepLinkingSettings] as object),
            data: 'opaque-42',
            accept_multiple: false,
          },
        }),
      },
    });
    expect(result.final.status).toBe(200);
    expect(result.final.body).toContain('type="radio"');
    const two = new URLSearchParams([
      ['item', 'theme:visibilite'],
      ['item', 'module:common-digitalisation'],
    ]);
    expect((await post('/lti-services/deep-linking', result.sessionToken as string, two)).statusCode).toBe(400);
    const answer = await post(
      '/lti-services/deep-linking',
      result.sessionToken as string,
      new URLSearchParams({ item: 'theme:visibilite' }),
    );
    const jwt = parseAutoPostForm(answer.body)?.fields.JWT as string;
    expect(decodeJwtPayload(jwt)['https://purl.imsglobal.org/spec/lti-dl/claim/data']).toBe('opaque-42');
  });

  it('sends back an empty answer when the instructor adds nothing, and refuses unknown content', async () => {
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const result = await launch(instructor, { messageType: 'LtiDeepLinkingRequest' });
    const token = result.sessionToken as string;
    const unknown = await post(
      '/lti-services/deep-linking',
      token,
      new URLSearchParams({ item: 'module:does-not-exist' }),
    );
    expect(unknown.statusCode).toBe(400);
    expect(unknown.body).toContain('n’existe plus');
    const forged = await post(
      '/lti-services/deep-linking',
      token,
      new URLSearchParams({ item: 'javascript:alert(1)' }),
    );
    expect(forged.statusCode).toBe(400);
    const none = await post('/lti-services/deep-linking', token, new URLSearchParams({ action: 'add' }));
    expect(none.statusCode).toBe(400);
    expect(none.body).toContain('Cochez au moins un contenu');
    const cancel = await post(
      '/lti-services/deep-linking',
      token,
      new URLSearchParams({ action: 'cancel', item: 'theme:visibilite' }),
    );
    const payload = decodeJwtPayload(parseAutoPostForm(cancel.body)?.fields.JWT as string);
    expect(payload['https://purl.imsglobal.org/spec/lti-dl/claim/content_items']).toEqual([]);
  });

  it('never shows the picker to a learner, even in a deep-linking launch', async () => {
    // Open edX itself refuses deep linking to students: forge the roles to test the tool's own check.
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const result = await launch(instructor, {
      messageType: 'LtiDeepLinkingRequest',
      overrides: { claims: (c) => ({ ...c, [CLAIM.roles]: [ROLE.systemNone, ROLE.institutionNone, ROLE.learner] }) },
    });
    expect(result.final.status).toBe(403);
    expect(result.final.body).toContain('réservée à l’équipe du cours');
    expect(result.final.body).not.toContain('Ajouter des modules');
  });

  it('refuses to answer a deep-linking request with a learner session or a resource-link session', async () => {
    const learner = ctx.fake.createUser({ role: 'student' });
    const l = await launch(learner);
    const asLearner = await post(
      '/lti-services/deep-linking',
      l.sessionToken as string,
      new URLSearchParams({ item: 'theme:visibilite' }),
    );
    expect(asLearner.statusCode).toBe(403);
    expect(asLearner.body).toContain('réservée à l’équipe du cours');
    expect(asLearner.body).not.toContain('JWT');
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const i = await launch(instructor);
    const fromLink = await post(
      '/lti-services/deep-linking',
      i.sessionToken as string,
      new URLSearchParams({ item: 'theme:visibilite' }),
    );
    expect(fromLink.statusCode).toBe(403);
    const anonymous = await tool.inject({
      method: 'POST',
      url: '/lti-services/deep-linking',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'item=theme%3Avisibilite',
    });
    expect(anonymous.statusCode).toBe(401);
  });
});

describe('AGS: completing a module puts a score in the Open edX gradebook', () => {
  it('scores the completion on the launch line item, reusing one token', async () => {
    const before = services.tokenRequests.length;
    const a = await learnerWithModule('Alice Durand');
    await completeModule(a.token);
    const b = await learnerWithModule('Bruno Petit');
    await completeModule(b.token);
    const run = await processScoreOutbox(tool);
    expect(run).toMatchObject({ sent: 2 });
    expect(services.grade(lineItemUrl(), a.user.sub)).toBe(1);
    expect(services.grade(lineItemUrl(), b.user.sub)).toBe(1);
    expect(services.tokenRequests.length - before).toBe(1);
    expect(services.storedScores(lineItemUrl()).find((s) => s.userId === a.user.sub)).toMatchObject({
      activityProgress: 'Completed',
      gradingProgress: 'FullyGraded',
      scoreGiven: 1,
      scoreMaximum: 1,
    });
  });

  it('delivers a score queued during an outage after the tool restarts and the platform is back', async () => {
    const c = await learnerWithModule('Chloé Bernard');
    await services.setOutage('refuse');
    await completeModule(c.token);
    expect(await processScoreOutbox(tool)).toMatchObject({ retrying: 1 });
    await services.setOutage('503');
    expect(await processScoreOutbox(tool, { now: new Date(Date.now() + 3600_000) })).toMatchObject({ retrying: 1 });
    expect(services.grade(lineItemUrl(), c.user.sub)).toBeUndefined();

    // Restart: a new instance of the tool on the same database, with nothing in memory.
    await tool.close();
    tool = await buildApp({ config: ctx.config, database: ctx.database, logger: false });
    await tool.ready();
    ctx.app = tool;
    await services.setOutage('none');
    const run = await processScoreOutbox(tool, { now: new Date(Date.now() + 2 * 3600_000) });
    expect(run).toMatchObject({ sent: 1 });
    expect(services.grade(lineItemUrl(), c.user.sub)).toBe(1);
  });
});

describe('course-team view of a link, and memberships', () => {
  it('lists this course’s learners with their progress on the link, and enrolled members who never launched', async () => {
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const opened = await launch(instructor);
    expect(opened.final.status).toBe(200);
    // The catalog's course-team overview leads to it.
    expect(opened.final.body).toContain('/lti-services/course-team?session_token=');
    const token = opened.sessionToken as string;

    const learners = await tool.db
      .selectFrom('learners')
      .innerJoin('lti_launches', 'lti_launches.learner_id', 'learners.id')
      .select(['learners.sub', 'learners.name'])
      .distinct()
      .where('lti_launches.role', '=', 'learner')
      .execute();
    services.setMembers(graded.configId, [
      ...learners.map((l) => ({ user_id: l.sub, roles: [ROLE.learner], name: l.name ?? 'Sans nom' })),
      { user_id: 'never-launched-1', roles: [ROLE.learner], name: 'Denise Jamais' },
      { user_id: 'never-launched-2', roles: [ROLE.learner], name: 'Émile Absent' },
      { user_id: instructor.sub, roles: [ROLE.instructor, ROLE.administrator] },
    ]);

    const view = await tool.inject({
      method: 'GET',
      url: `/lti-services/course-team?session_token=${encodeURIComponent(token)}`,
    });
    expect(view.statusCode).toBe(200);
    expect(view.body).toContain('Suivi des apprenants sur ce lien');
    expect(view.body).toContain('Alice Durand');
    // The module the link opened for Alice (AKTO's visibility module), by its current title.
    const { title } = await tool.db
      .selectFrom('modules')
      .select('title')
      .where('id', '=', 'akto-visibilite')
      .executeTakeFirstOrThrow();
    expect(view.body).toContain(title);
    const document = dom(view.body);
    // A completed module: "Terminé" marked as such, then its date.
    const completedCells = [...document.querySelectorAll('table.learners tbody td')].filter((td) =>
      td.querySelector('span.state-completed'),
    );
    expect(completedCells.length).toBeGreaterThan(0);
    for (const td of completedCells) {
      expect(normalise(td.querySelector('span.state-completed')?.textContent)).toBe('Terminé');
      expect(normalise(td.textContent)).toMatch(/^Terminé le \S/);
    }
    expect(view.body).toContain('Transmise le');
    expect(view.body).toContain('n’a pas encore été lue');
    // Modules completed here with no connection time measured: flagged for review, not refused.
    const headers = [...document.querySelectorAll('table.learners thead th')].map((th) => th.textContent?.trim());
    expect(headers).toContain('Temps de connexion');
    const rows = [...document.querySelectorAll('table.learners tbody tr')];
    const done = rows.filter((tr) => tr.textContent?.includes('Terminé'));
    expect(done.length).toBeGreaterThan(0);
    for (const tr of done) {
      const timeCell = tr.querySelectorAll('td')[3];
      expect(timeCell?.textContent).toContain('Parcouru rapidement');
    }
    for (const tr of rows.filter((r) => !r.textContent?.includes('Terminé'))) {
      expect(tr.textContent).not.toContain('Parcouru rapidement');
    }

    const refreshed = await post('/lti-services/course-team/memberships', token, new URLSearchParams());
    expect(refreshed.statusCode).toBe(200);
    expect(refreshed.body).toContain('Liste des inscrits mise à jour');
    expect(refreshed.body).toContain('2 inscrits n’ont jamais ouvert le cours');
    expect(refreshed.body).toContain('Denise Jamais');
    expect(refreshed.body).toContain('Émile Absent');
    // Several pages were read (two members a page).
    expect(services.memberRequests.filter((r) => r.configId === graded.configId).length).toBeGreaterThan(2);
  });

  it('tells the course team when a score waits for the operator, or was not delivered', async () => {
    const instructor = ctx.fake.createUser({ role: 'instructor' });
    const token = (await launch(instructor)).sessionToken as string;
    const latest = await tool.db
      .selectFrom('lti_score_outbox as o')
      .innerJoin('learners as l', 'l.id', 'o.learner_id')
      .select('o.id')
      .where('l.name', '=', 'Alice Durand')
      .orderBy('o.seq', 'desc')
      .executeTakeFirstOrThrow();
    const aliceScore = async () => {
      const res = await tool.inject({
        method: 'GET',
        url: `/lti-services/course-team?session_token=${encodeURIComponent(token)}`,
      });
      expect(res.statusCode).toBe(200);
      const document = dom(res.body);
      const rowOf = [...document.querySelectorAll('table.learners tbody tr')].find((tr) =>
        tr.querySelector('th')?.textContent?.includes('Alice Durand'),
      );
      // Columns after the learner's name: fund, module, progress, connection time, score in Open edX.
      return rowOf?.querySelectorAll('td')[4]?.textContent?.trim();
    };
    const set = (values: { status: 'pending' | 'failed' | 'sent'; held_reason: string | null }) =>
      tool.db.updateTable('lti_score_outbox').set(values).where('id', '=', latest.id).execute();

    await set({ status: 'pending', held_reason: 'registration … is unknown or removed' });
    expect(await aliceScore()).toBe('En attente : le composant LTI a changé, signalez-le à l’exploitant');
    await set({ status: 'pending', held_reason: null });
    expect(await aliceScore()).toBe('En attente d’envoi');
    await set({ status: 'failed', held_reason: null });
    expect(await aliceScore()).toBe('Non transmise : signalez-le à l’exploitant');
    await set({ status: 'sent', held_reason: null });
    expect(await aliceScore()).toMatch(/^Transmise le /);
  });

  it('never shows the learners of another course', async () => {
    const other = await startFakeOpenEdx({
      toolUrl: ctx.config.publicUrl,
      course: { id: 'course-v1:FUN+AUTRE+2026', name: 'Un autre cours' },
      component: { custom: { theme: 'visibilite' } },
    });
    try {
      const reg = other.registration;
      await tool.db
        .insertInto('lti_registrations')
        .values({
          name: reg.name,
          issuer: reg.issuer,
          client_id: reg.clientId,
          deployment_ids: JSON.stringify(reg.deploymentIds),
          auth_login_url: reg.authLoginUrl,
          access_token_url: reg.accessTokenUrl,
          jwks_url: reg.jwksUrl,
          source: 'cli',
          removed_at: null,
        })
        .execute();
      const stranger = other.createUser({ role: 'student', name: 'Zoé Ailleurs' });
      const launched = await other.launch({ user: stranger, transport: transport() });
      expect(launched.final.status).toBe(200);

      const instructor = ctx.fake.createUser({ role: 'instructor' });
      const token = (await launch(instructor)).sessionToken as string;
      const view = await tool.inject({
        method: 'GET',
        url: `/lti-services/course-team?session_token=${encodeURIComponent(token)}`,
      });
      expect(view.statusCode).toBe(200);
      expect(view.body).toContain('Alice Durand');
      expect(view.body).not.toContain('Zoé Ailleurs');
    } finally {
      await other.close();
    }
  });

  it('refuses the course-team view to a learner', async () => {
    const learner = ctx.fake.createUser({ role: 'student' });
    const token = (await launch(learner)).sessionToken as string;
    const view = await tool.inject({
      method: 'GET',
      url: `/lti-services/course-team?session_token=${encodeURIComponent(token)}`,
    });
    expect(view.statusCode).toBe(403);
    expect(view.headers['content-type']).toContain('text/html');
    expect(view.body).toContain('réservée à l’équipe du cours');
    expect(view.body).not.toContain('Alice Durand');
    const refresh = await post('/lti-services/course-team/memberships', token, new URLSearchParams());
    expect(refresh.statusCode).toBe(403);
    const noSession = await tool.inject({ method: 'GET', url: '/lti-services/course-team' });
    expect(noSession.statusCode).toBe(401);
  });
});
