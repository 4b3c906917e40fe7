import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLAIM,
  decodeJwtHeader,
  decodeJwtPayload,
  type FakeComponent,
  type OpenEdxRole,
  type OpenEdxVersion,
} from '../fixtures/openedx/index.js';
import { createLtiTestApp, type LtiTestContext } from './helpers.js';

/** Roles from both Open edX vocabularies, identity (issuer, sub), PII on and off, deep linking on both URLs. */
let ctx: LtiTestContext;
let v11: FakeComponent;
let v9: FakeComponent;
let noPii: FakeComponent;
beforeAll(async () => {
  ctx = await createLtiTestApp({
    fake: { component: { custom: { fonds: 'opco-sante' } } },
    extraComponents: [
      { name: 'v9', version: 'v9' },
      { name: 'no PII', pii: false, ags: 'disabled', nrps: false },
    ],
  });
  [v11, v9, noPii] = ctx.fake.components as [FakeComponent, FakeComponent, FakeComponent];
});
afterAll(() => ctx.close());

async function launchAs(role: OpenEdxRole, component: FakeComponent) {
  const user = ctx.fake.createUser({ role });
  const result = await ctx.fake.launch({ user, transport: ctx.transport, component });
  expect(result.final.status).toBe(200);
  return { user, result, session: decodeJwtPayload(result.sessionToken as string) };
}

describe('roles from both Open edX vocabularies', () => {
  const expectations: [OpenEdxVersion, OpenEdxRole, string][] = [
    ['v11', 'student', 'learner'],
    ['v11', 'guest', 'learner'],
    ['v11', 'community_ta', 'learner'],
    ['v11', 'staff', 'course_team'],
    ['v11', 'instructor', 'course_team'],
    ['v11', 'global_staff', 'staff'],
    ['v9', 'student', 'learner'],
    ['v9', 'instructor', 'course_team'],
    ['v9', 'global_staff', 'staff'],
  ];
  for (const [version, role, expected] of expectations) {
    it(`${version} ${role} → ${expected}`, async () => {
      const { session, result } = await launchAs(role, version === 'v9' ? v9 : v11);
      expect(session.role).toBe(expected);
      const launch = await ctx.app.db
        .selectFrom('lti_launches')
        .select(['role', 'roles'])
        .where('id', '=', session.launchId as string)
        .executeTakeFirstOrThrow();
      expect(launch.role).toBe(expected);
      // The raw roles are kept as evidence, as sent.
      expect(launch.roles).toEqual(result.auth?.ok ? decodeJwtPayload(result.auth.fields.id_token)[CLAIM.roles] : null);
    });
  }

  it('the fake sends v11 roles in random order and v9 with a cty header (sanity of the fixture)', async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const { result } = await launchAs('global_staff', v11);
      if (result.auth?.ok) orders.add(JSON.stringify(decodeJwtPayload(result.auth.fields.id_token)[CLAIM.roles]));
    }
    expect(orders.size).toBeGreaterThan(1);
    const { result } = await launchAs('student', v9);
    if (!result.auth?.ok) throw new Error('auth failed');
    expect(decodeJwtHeader(result.auth.fields.id_token)).toMatchObject({ alg: 'RS256', cty: 'JWT' });
  });
});

describe('learner identity', () => {
  it('is (issuer, sub): the same sub on another issuer is another learner', async () => {
    const { user, session } = await launchAs('student', v11);
    const again = await ctx.fake.launch({ user, transport: ctx.transport, component: v9 });
    expect(decodeJwtPayload(again.sessionToken as string).learnerId).toBe(session.learnerId);
    await ctx.app.db.insertInto('learners').values({ issuer: 'https://lms.other.example', sub: user.sub }).execute();
    const rows = await ctx.app.db.selectFrom('learners').select(['id', 'issuer']).where('sub', '=', user.sub).execute();
    expect(rows).toHaveLength(2);
  });

  it('stores name, email and username when shared, keeps them when a later launch does not share them', async () => {
    const user = ctx.fake.createUser({ name: 'Dominique Dupont', email: 'dominique@example.org', username: 'ddupont' });
    const withPii = await ctx.fake.launch({ user, transport: ctx.transport, component: v11 });
    const learnerId = decodeJwtPayload(withPii.sessionToken as string).learnerId as string;
    const withoutPii = await ctx.fake.launch({ user, transport: ctx.transport, component: noPii });
    expect(withoutPii.final.status).toBe(200);
    if (!withoutPii.auth?.ok) throw new Error('auth failed');
    const claims = decodeJwtPayload(withoutPii.auth.fields.id_token);
    expect(claims).not.toHaveProperty('name');
    expect(claims).not.toHaveProperty('email');
    expect(claims).not.toHaveProperty(CLAIM.ags);
    const row = await ctx.app.db
      .selectFrom('learners')
      .selectAll()
      .where('id', '=', learnerId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ name: 'Dominique Dupont', email: 'dominique@example.org', username: 'ddupont' });
  });

  it('a learner first seen without PII has no name on file', async () => {
    const user = ctx.fake.createUser();
    const res = await ctx.fake.launch({ user, transport: ctx.transport, component: noPii });
    const row = await ctx.app.db
      .selectFrom('learners')
      .selectAll()
      .where('id', '=', decodeJwtPayload(res.sessionToken as string).learnerId as string)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ sub: user.sub, issuer: ctx.fake.issuer, name: null, email: null, username: null });
  });

  it('records course, resource link, custom, AGS and NRPS claims of the launch', async () => {
    const { session } = await launchAs('student', v11);
    const launch = await ctx.app.db
      .selectFrom('lti_launches')
      .innerJoin('courses', 'courses.id', 'lti_launches.course_id')
      .select([
        'courses.context_id',
        'courses.title',
        'lti_launches.custom',
        'lti_launches.ags',
        'lti_launches.nrps',
        'lti_launches.deployment_id',
      ])
      .where('lti_launches.id', '=', session.launchId as string)
      .executeTakeFirstOrThrow();
    expect(launch).toMatchObject({
      context_id: ctx.fake.course.id,
      title: 'Transition numérique des TPE-PME - FUN',
      custom: { fonds: 'opco-sante' },
      deployment_id: '1',
      nrps: { service_versions: ['2.0'] },
    });
    expect((launch.ags as { lineitem?: string }).lineitem).toContain('/lti-ags/');
  });
});

describe('deep linking', () => {
  it('v11: the login targets the deep-linking URL and the launch lands there', async () => {
    const user = ctx.fake.createUser({ role: 'instructor' });
    const result = await ctx.fake.launch({ user, transport: ctx.transport, messageType: 'LtiDeepLinkingRequest' });
    expect(result.authRequest?.get('redirect_uri')).toBe(`${ctx.config.publicUrl}/lti/deep-linking`);
    expect(result.auth?.ok && result.auth.action).toBe(`${ctx.config.publicUrl}/lti/deep-linking`);
    expect(result.final.status).toBe(200);
    expect(result.final.body).toContain('Connexion réussie');
    expect(result.final.body).toContain('choix des contenus');
    const session = decodeJwtPayload(result.sessionToken as string);
    expect(session).toMatchObject({ role: 'course_team', resourceLinkId: null });
    const launch = await ctx.app.db
      .selectFrom('lti_launches')
      .select(['message_type', 'deep_linking'])
      .where('id', '=', session.launchId as string)
      .executeTakeFirstOrThrow();
    expect(launch.message_type).toBe('LtiDeepLinkingRequest');
    expect(launch.deep_linking).toMatchObject({ accept_multiple: true, deep_link_return_url: v11.deepLinkReturnUrl });
  });

  it('a deep-linking launch posted to the launch URL is accepted too', async () => {
    const user = ctx.fake.createUser({ role: 'staff' });
    const result = await ctx.fake.launch({
      user,
      transport: ctx.transport,
      messageType: 'LtiDeepLinkingRequest',
      overrides: { action: `${ctx.config.publicUrl}/lti/launch` },
    });
    expect(result.final.status).toBe(200);
    expect(result.final.body).toContain('choix des contenus');
  });

  it('v9: target_link_uri is the launch URL and the platform posts to the deep-linking URL', async () => {
    const user = ctx.fake.createUser({ role: 'instructor' });
    const result = await ctx.fake.launch({
      user,
      transport: ctx.transport,
      component: v9,
      messageType: 'LtiDeepLinkingRequest',
    });
    expect(result.authRequest?.get('redirect_uri')).toBe(`${ctx.config.publicUrl}/lti/launch`);
    expect(result.auth?.ok && result.auth.action).toBe(`${ctx.config.publicUrl}/lti/deep-linking`);
    expect(result.final.status).toBe(200);
    expect(decodeJwtPayload(result.sessionToken as string)).toMatchObject({ courseId: null });
  });

  it('a resource-link launch posted to the deep-linking URL is accepted', async () => {
    const user = ctx.fake.createUser();
    const result = await ctx.fake.launch({
      user,
      transport: ctx.transport,
      overrides: { action: `${ctx.config.publicUrl}/lti/deep-linking` },
    });
    expect(result.final.status).toBe(200);
    expect(result.final.body).toContain('Vos modules apparaîtront ici.');
  });
});

describe('login initiation', () => {
  it('accepts POST as well as GET, and sends Open edX every parameter it checks', async () => {
    const user = ctx.fake.createUser();
    const init = new URL(ctx.fake.loginInitiationUrl({ user }));
    const res = await ctx.transport.request({
      method: 'POST',
      url: `${ctx.config.publicUrl}/lti/login`,
      form: Object.fromEntries(init.searchParams),
    });
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const auth = new URL(res.location as string);
    expect(Object.fromEntries(auth.searchParams)).toMatchObject({
      scope: 'openid',
      response_type: 'id_token',
      response_mode: 'form_post',
      prompt: 'none',
      client_id: v11.clientId,
      redirect_uri: `${ctx.config.publicUrl}/lti/launch`,
      login_hint: user.sub,
      lti_message_hint: init.searchParams.get('lti_message_hint'),
    });
    expect(auth.searchParams.get('nonce')?.length).toBeGreaterThanOrEqual(32);
    expect(auth.searchParams.get('state')?.split('.')).toHaveLength(3);
    expect(res.setCookies[0]).toMatch(
      /^lti_state_[\w-]+=1; Max-Age=600; Path=\/lti; HttpOnly; Secure; SameSite=None; Partitioned$/,
    );
  });

  it('the fake platform refuses a redirect_uri that is not registered exactly', async () => {
    const user = ctx.fake.createUser();
    const step = await ctx.fake.startLogin({ user, transport: ctx.transport });
    const params = new URLSearchParams(step.authRequest as URLSearchParams);
    params.set('redirect_uri', `${ctx.config.publicUrl}/lti/launch/`);
    const auth = await ctx.fake.authorize(params);
    expect(auth).toMatchObject({ ok: false, status: 400 });
  });
});
