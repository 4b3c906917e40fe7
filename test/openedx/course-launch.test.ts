import { DOMParser, parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/catalog/index.js';
import { olxFiles, parseCourseKey } from '../../src/openedx/index.js';
import type { ContentFixture } from '../catalog/content-fixture.js';
import { type CatalogTestContext, createCatalogTestApp, onboardingForm } from '../catalog/helpers.js';
import { createProgrammeFixture } from '../catalog/programme-fixture.js';

/**
 * The generated course's components, launched: each unit's custom parameters (read back from the OLX)
 * open the module of that unit for the learner's fund, and its completion score follows that module only.
 */
let ctx: CatalogTestContext;
let fx: ContentFixture;
let customOf: Map<string, Record<string, string>>;

beforeAll(async () => {
  fx = await createProgrammeFixture();
  const load = await loadContent(fx.dir);
  const track = load.content?.tracks[0]?.track;
  if (!track) throw new Error('no track in the fixture');
  const files = olxFiles({
    courseKey: parseCourseKey('course-v1:FUN+TPE-PME+2026_S1'),
    track,
    tool: {
      launchUrl: 'http://tool.test/lti/launch',
      loginUrl: 'http://tool.test/lti/login',
      keysetUrl: 'http://tool.test/k',
    },
  });
  customOf = new Map();
  for (const f of files.filter((x) => x.path.startsWith('course/lti_consumer/'))) {
    const el = new DOMParser().parseFromString(String(f.content), 'text/xml').documentElement as unknown as Element;
    const pairs = (JSON.parse(el.getAttribute('custom_parameters') as string) as string[]).map((kv) =>
      kv.split('=', 2),
    );
    customOf.set(f.path.replace(/^course\/lti_consumer\/|\.xml$/g, ''), Object.fromEntries(pairs));
  }
  ctx = await createCatalogTestApp({
    env: { CONTENT_DIR: fx.dir },
    components: [
      { custom: customOf.get('emargement-coeur-de-metier-2') as Record<string, string> },
      { custom: customOf.get('emargement-coeur-de-metier-1') as Record<string, string> },
      { custom: customOf.get('emargement-mon-parcours') as Record<string, string> },
    ],
  });
});
afterAll(async () => {
  await ctx.close();
  await fx.cleanup();
});

async function post(url: string, form: Record<string, string>) {
  return ctx.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });
}

async function complete(token: string, moduleId: string) {
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

const scores = async (moduleId: string) =>
  (await ctx.app.db.selectFrom('lti_score_outbox').select('id').where('module_id', '=', moduleId).execute()).length;

describe('the generated course, launched', () => {
  it('the second unit of a sector theme opens the fund’s second module and scores on it alone', async () => {
    expect(customOf.get('emargement-coeur-de-metier-2')).toEqual({ theme: 'coeur-de-metier', position: '2' });
    expect(customOf.get('emargement-mon-parcours')).toEqual({});
    const user = ctx.fake.createUser({ name: 'Léa Durand' });
    const launch = await ctx.launch(user, ctx.fake.components[0] as never);
    const page = await post('/catalog/onboarding', {
      session_token: launch.sessionToken,
      ...onboardingForm({ fund: 'uniformation' }),
    });
    const moduleId = parseHTML(page.body).document.body.getAttribute('data-module-id');
    expect(moduleId).toBe('uniformation-coeur-de-metier-2');
    await complete(launch.sessionToken, 'uniformation-coeur-de-metier-2');
    // A unit = one module: its score does not wait for the theme's first module.
    expect(await scores('uniformation-coeur-de-metier-2')).toBe(1);

    const first = await ctx.launch(user, ctx.fake.components[1] as never);
    expect(parseHTML(first.final.body).document.body.getAttribute('data-module-id')).toBe(
      'uniformation-coeur-de-metier',
    );

    const parcours = await ctx.launch(user, ctx.fake.components[2] as never);
    expect(parseHTML(parcours.final.body).document.querySelector('h1')?.textContent).toBe('Mon parcours');
  });
});
