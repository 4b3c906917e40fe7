import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar, decodeJwtPayload } from '../fixtures/openedx/index.js';
import { createLtiTestApp, type LtiTestContext } from './helpers.js';

/** Whole flows through real HTTP: the LMS on 127.0.0.1, the tool on localhost (two sites). */
let ctx: LtiTestContext;
beforeAll(async () => {
  ctx = await createLtiTestApp({
    http: true,
    fake: { component: { custom: { fonds: 'akto', module: 'visibilite' } } },
  });
});
afterAll(() => ctx.close());

describe('launch from the fake Open edX over real HTTP', () => {
  it('a learner gets the tool page, carrying a session token bound to the launch', async () => {
    const user = ctx.fake.createUser({ role: 'student' });
    const result = await ctx.fake.launch({ user, transport: ctx.transport });

    expect(result.login.status).toBe(302);
    expect(result.authUrl?.startsWith(`${ctx.fake.url}/api/lti_consumer/v1/launch/`)).toBe(true);
    expect(result.final.status).toBe(200);
    expect(result.final.headers['content-type']).toContain('text/html');
    expect(result.final.body).toContain('Connexion réussie');
    expect(result.final.body).toContain('apprenant');
    expect(result.final.body).toContain('Transition numérique des TPE-PME - FUN');
    expect(result.sessionToken).toBeTypeOf('string');

    const claims = decodeJwtPayload(result.sessionToken as string);
    expect(claims).toMatchObject({ role: 'learner', aud: 'emargement-session' });
    const launch = await ctx.app.db
      .selectFrom('lti_launches')
      .innerJoin('learners', 'learners.id', 'lti_launches.learner_id')
      .innerJoin('resource_links', 'resource_links.id', 'lti_launches.resource_link_id')
      .select([
        'lti_launches.id',
        'lti_launches.role',
        'lti_launches.message_type',
        'learners.sub',
        'learners.issuer',
        'learners.username',
        'resource_links.custom',
        'resource_links.resource_link_id',
      ])
      .where('lti_launches.id', '=', claims.launchId as string)
      .executeTakeFirstOrThrow();
    expect(launch).toMatchObject({
      role: 'learner',
      message_type: 'LtiResourceLinkRequest',
      sub: user.sub,
      issuer: ctx.fake.issuer,
      username: user.username,
      custom: { fonds: 'akto', module: 'visibilite' },
      resource_link_id: ctx.fake.components[0]?.usageKey,
    });
  });

  it('an instructor gets the tool page as course team', async () => {
    const user = ctx.fake.createUser({ role: 'instructor' });
    const result = await ctx.fake.launch({ user, transport: ctx.transport });
    expect(result.final.status).toBe(200);
    expect(result.final.body).toContain('équipe du cours');
    expect(decodeJwtPayload(result.sessionToken as string).role).toBe('course_team');
  });

  it('a replayed launch POST is refused: the nonce was consumed', async () => {
    const user = ctx.fake.createUser();
    const result = await ctx.fake.launch({ user, transport: ctx.transport });
    expect(result.final.status).toBe(200);
    if (!result.auth?.ok) throw new Error('auth failed');
    const replay = await ctx.fake.postLaunch(ctx.transport, result.auth);
    expect(replay.status).toBe(401);
    expect(replay.body).toContain('Ce lien de connexion a déjà servi.');
    expect(replay.body).toContain('Référence');
    expect(ctx.lastRefusal()).toMatchObject({ stage: 'launch', check: 'nonce_unused' });
  });

  it('works with every cookie dropped between requests (third-party cookies blocked)', async () => {
    const user = ctx.fake.createUser();
    const result = await ctx.fake.launch({ user, transport: ctx.transport, cookies: 'drop' });
    expect(result.login.setCookies.join()).toContain('SameSite=None');
    expect(result.final.status).toBe(200);
    const accepted = ctx.logs.filter((l) => l.msg === 'lti launch accepted').at(-1);
    expect(accepted?.skippedChecks).toContain('state_cookie');
  });

  it('with cookies kept, the state cookie check passes and the cookie is cleared', async () => {
    const jar = new CookieJar();
    const user = ctx.fake.createUser();
    const result = await ctx.fake.launch({ user, transport: ctx.transport, jar });
    expect(result.final.status).toBe(200);
    const accepted = ctx.logs.filter((l) => l.msg === 'lti launch accepted').at(-1);
    expect(accepted?.skippedChecks).not.toContain('state_cookie');
    expect(jar.names().filter((n) => n.startsWith('lti_state_'))).toEqual([]);
  });

  it('serves the tool JWKS with kid, alg and use', async () => {
    const res = await fetch(`${ctx.config.publicUrl}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { keys: Record<string, string>[] };
    expect(body.keys).toHaveLength(1);
    expect(body.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(Object.keys(body.keys[0] ?? {}).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
  });
});
