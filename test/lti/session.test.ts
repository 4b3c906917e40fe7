import { Type } from '@sinclair/typebox';
import { compactVerify, createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { deriveKey } from '../../src/config/secrets.js';
import {
  getCurrentToolKey,
  type LaunchSession,
  registerLaunchHandler,
  requireRole,
  requireSession,
  signSession,
  type ValidatedLaunch,
} from '../../src/lti/index.js';
import { decodeJwtPayload } from '../fixtures/openedx/index.js';
import { createLtiTestApp, type LtiTestContext } from './helpers.js';

/** The cookie-free session: a bearer token the page holds, renewable while the page is open. */
let ctx: LtiTestContext;
const seen: ValidatedLaunch[] = [];
beforeAll(async () => {
  ctx = await createLtiTestApp({
    fake: { component: { custom: { fonds: 'akto' } } },
    extend: (app) =>
      app.register(async (scope) => {
        // Another capability's handler for deep-linking launches, registered from its own plugin scope.
        registerLaunchHandler(scope, 'LtiDeepLinkingRequest', async (launch, _request, reply) => {
          seen.push(launch);
          return reply.type('text/html; charset=utf-8').send(`<p>picker for ${launch.claims.context?.id}</p>`);
        });
        scope.get(
          '/t/whoami',
          { schema: { querystring: Type.Object({ session_token: Type.Optional(Type.String()) }) } },
          async (request) => {
            const s = await requireSession(request);
            return { learnerId: s.learnerId, role: s.role };
          },
        );
        scope.post('/t/form', async (request) => (await requireSession(request)).launchId);
        scope.get(
          '/t/staff-only',
          async (request) => requireRole(await requireSession(request), 'staff', 'course_team').role,
        );
      }),
  });
});
afterAll(() => ctx.close());
afterEach(() => {
  vi.useRealTimers();
});

async function learnerSession(role: 'student' | 'instructor' = 'student') {
  const user = ctx.fake.createUser({ role });
  const result = await ctx.fake.launch({ user, transport: ctx.transport });
  expect(result.final.status).toBe(200);
  return { token: result.sessionToken as string, claims: decodeJwtPayload(result.sessionToken as string), user };
}

const get = (url: string, headers: Record<string, string> = {}) => ctx.app.inject({ method: 'GET', url, headers });

describe('requireSession', () => {
  it('reads a bearer token, a session_token form field and a session_token query parameter', async () => {
    const { token, claims } = await learnerSession();
    const bearer = await get('/t/whoami', { authorization: `Bearer ${token}` });
    expect(bearer.statusCode).toBe(200);
    expect(bearer.json()).toEqual({ learnerId: claims.learnerId, role: 'learner' });
    expect((await get(`/t/whoami?session_token=${token}`)).json()).toMatchObject({ role: 'learner' });
    const form = await ctx.app.inject({
      method: 'POST',
      url: '/t/form',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `session_token=${token}`,
    });
    expect(form.body).toBe(claims.launchId);
  });

  it('carries learner, course, resource link, launch and registration, and expires in about an hour', async () => {
    const { claims } = await learnerSession();
    const launch = await ctx.app.db
      .selectFrom('lti_launches')
      .selectAll()
      .where('id', '=', claims.launchId as string)
      .executeTakeFirstOrThrow();
    expect(claims).toMatchObject({
      learnerId: launch.learner_id,
      courseId: launch.course_id,
      resourceLinkId: launch.resource_link_id,
      registrationId: launch.registration_id,
      role: 'learner',
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
  });

  it('refuses a missing, forged, expired or foreign token (401, problem details)', async () => {
    const { token } = await learnerSession();
    const missing = await get('/t/whoami');
    expect(missing.statusCode).toBe(401);
    expect(missing.json()).toMatchObject({ code: 'session_missing' });

    const forged = await new SignJWT({ ...decodeJwtPayload(token) })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new Uint8Array(deriveKey('another-secret-0123456789-abcdefghijklmnop', 'session-token')));
    expect((await get('/t/whoami', { authorization: `Bearer ${forged}` })).json()).toMatchObject({
      code: 'session_invalid',
    });

    // Signed with the right key but not a session token (no audience): refused.
    const noAud = await new SignJWT({ learnerId: 'x' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new Uint8Array(deriveKey(ctx.config.appSecret, 'session-token')));
    expect((await get('/t/whoami', { authorization: `Bearer ${noAud}` })).statusCode).toBe(401);

    // The OIDC state is signed by the tool too, with another key: never a session.
    const step = await ctx.fake.startLogin({ user: ctx.fake.createUser(), transport: ctx.transport });
    const state = step.authRequest?.get('state') as string;
    expect((await get('/t/whoami', { authorization: `Bearer ${state}` })).statusCode).toBe(401);

    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61 * 60_000);
    expect((await get('/t/whoami', { authorization: `Bearer ${token}` })).json()).toMatchObject({
      code: 'session_expired',
    });
  });

  it('remembers a verified token only until it expires, and only that exact token', async () => {
    const { token } = await learnerSession();
    const auth = { authorization: `Bearer ${token}` };
    expect((await get('/t/whoami', auth)).statusCode).toBe(200);
    expect((await get('/t/whoami', auth)).statusCode).toBe(200); // from the memo
    // The same claims under a signature one character off: not the remembered token, so verified, and refused.
    const at = token.lastIndexOf('.') + 1; // the signature's first character: all six bits count
    const altered = `${token.slice(0, at)}${token[at] === 'A' ? 'Q' : 'A'}${token.slice(at + 1)}`;
    expect((await get('/t/whoami', { authorization: `Bearer ${altered}` })).json()).toMatchObject({
      code: 'session_invalid',
    });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61 * 60_000);
    expect((await get('/t/whoami', auth)).json()).toMatchObject({ code: 'session_expired' });
  });

  it('requireRole: 403 for a learner, allowed for the course team', async () => {
    const learner = await learnerSession('student');
    const teacher = await learnerSession('instructor');
    expect((await get('/t/staff-only', { authorization: `Bearer ${learner.token}` })).statusCode).toBe(403);
    const ok = await get('/t/staff-only', { authorization: `Bearer ${teacher.token}` });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('course_team');
  });
});

describe('POST /api/session/renew', () => {
  const renew = (token?: string) =>
    ctx.app.inject({
      method: 'POST',
      url: '/api/session/renew',
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  it('gives a fresh token with the same claims while the current one is valid', async () => {
    const { token, claims } = await learnerSession();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 50 * 60_000);
    const res = await renew(token);
    expect(res.statusCode).toBe(200);
    const body = res.json() as { token: string; exp: number };
    const fresh = decodeJwtPayload(body.token);
    expect(body.exp).toBe(fresh.exp);
    expect(body.exp).toBeGreaterThan(claims.exp as number);
    for (const k of ['learnerId', 'courseId', 'resourceLinkId', 'launchId', 'registrationId', 'role']) {
      expect(fresh[k]).toEqual(claims[k]);
    }
  });

  it('refuses an expired token, and no token', async () => {
    const { token } = await learnerSession();
    expect((await renew()).statusCode).toBe(401);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61 * 60_000);
    expect((await renew(token)).json()).toMatchObject({ status: 401, code: 'session_expired' });
  });

  it('stops renewing twelve hours after the launch', async () => {
    const { claims } = await learnerSession();
    await ctx.app.db
      .updateTable('lti_launches')
      .set({ created_at: new Date(Date.now() - 13 * 3600_000) })
      .where('id', '=', claims.launchId as string)
      .execute();
    const { exp: _exp, iat: _iat, aud: _aud, ...rest } = claims;
    const token = await signSession(ctx.app, rest as Omit<LaunchSession, 'exp'>);
    expect((await renew(token)).json()).toMatchObject({ status: 401, code: 'session_too_old' });
  });

  it('the tool page embeds the token and the renewal script', async () => {
    const user = ctx.fake.createUser();
    const result = await ctx.fake.launch({ user, transport: ctx.transport });
    expect(result.final.body).toContain('<meta name="emargement-session"');
    expect(result.final.body).toContain(`${ctx.config.publicUrl}/api/session/renew`);
    expect(result.final.headers['referrer-policy']).toBe('no-referrer');
    expect(result.final.headers['cache-control']).toBe('no-store');
  });
});

describe('registerLaunchHandler', () => {
  it('hands a validated deep-linking launch to the registered handler', async () => {
    const user = ctx.fake.createUser({ role: 'instructor' });
    const result = await ctx.fake.launch({ user, transport: ctx.transport, messageType: 'LtiDeepLinkingRequest' });
    expect(result.final.status).toBe(200);
    expect(result.final.body).toBe(`<p>picker for ${ctx.fake.course.id}</p>`);
    const launch = seen.at(-1) as ValidatedLaunch;
    expect(launch.messageType).toBe('LtiDeepLinkingRequest');
    expect(launch.registration).toEqual({
      id: launch.session.registrationId,
      ...ctx.fake.registration,
      deploymentIds: undefined,
    });
    expect(launch.claims).toMatchObject({
      sub: user.sub,
      name: user.name,
      email: user.email,
      preferred_username: user.username,
      deploymentId: '1',
      targetLinkUri: `${ctx.config.publicUrl}/lti/deep-linking`,
      deepLinkingSettings: { deep_link_return_url: ctx.fake.components[0]?.deepLinkReturnUrl, accept_multiple: true },
    });
    expect(launch.session.role).toBe('course_team');
    expect(decodeJwtPayload(launch.sessionToken).launchId).toBe(launch.session.launchId);
  });

  it('keeps the default page for resource-link launches when no handler is registered', async () => {
    const { token } = await learnerSession();
    expect(token).toBeTypeOf('string');
  });

  it('refuses a second handler for the same message type', () => {
    expect(() => registerLaunchHandler(ctx.app, 'LtiDeepLinkingRequest', async () => undefined)).toThrow(
      /already registered/,
    );
  });
});

describe('getCurrentToolKey', () => {
  it('signs with the key published in the JWKS', async () => {
    const key = await getCurrentToolKey(ctx.app);
    expect(key.alg).toBe('RS256');
    const token = await new SignJWT({ hello: 'platform' })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .sign(key.privateKey);
    const jwks = (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks));
    expect(payload.hello).toBe('platform');
    await expect(compactVerify(token, createLocalJWKSet({ keys: [] }))).rejects.toThrow();
  });
});
