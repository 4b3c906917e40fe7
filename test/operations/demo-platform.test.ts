import { generateKeyPair, SignJWT } from 'jose';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { freePort } from '../helpers/ports.js';

/**
 * The demo platform's trust boundaries, without a browser: its authentication endpoint answers only a
 * well-formed OIDC authentication request for a launch it initiated itself, and its deep-linking return
 * accepts only a response signed by the tool.
 */
let ctx: TestContext;
let base: string;
beforeAll(async () => {
  const port = await freePort();
  base = `http://localhost:${port}`;
  ctx = await createTestApp({ env: { DEMO_LMS: 'true', PUBLIC_URL: base } });
  // Listening: the demo fetches the tool's JWKS over HTTP, as a real platform does.
  await ctx.app.listen({ port, host: 'localhost' });
});
afterAll(async () => ctx?.close());

/** The iframe src of a unit page, as the browser would follow it. */
async function loginUrl(query: string): Promise<URL> {
  const page = await ctx.app.inject({ method: 'GET', url: `/demo/unit?${query}` });
  expect(page.statusCode).toBe(200);
  const src = parseHTML(page.body).document.querySelector('#lti-frame')?.getAttribute('src');
  return new URL(src as string);
}

function authRequest(login: URL, overrides: Record<string, string> = {}): URLSearchParams {
  return new URLSearchParams({
    scope: 'openid',
    response_type: 'id_token',
    response_mode: 'form_post',
    prompt: 'none',
    client_id: login.searchParams.get('client_id') as string,
    redirect_uri: `${base}/lti/launch`,
    login_hint: login.searchParams.get('login_hint') as string,
    lti_message_hint: login.searchParams.get('lti_message_hint') as string,
    nonce: 'n-123',
    state: 's-123',
    ...overrides,
  });
}

const authorize = (params: URLSearchParams) => ctx.app.inject({ method: 'GET', url: `/demo/lti/authorize?${params}` });

describe('the demo platform', () => {
  it('registers itself as a platform at start', async () => {
    const reg = await ctx.app.db
      .selectFrom('lti_registrations')
      .select(['issuer', 'client_id', 'source', 'removed_at'])
      .where('issuer', '=', `${base}/demo`)
      .executeTakeFirstOrThrow();
    expect(reg).toMatchObject({ client_id: 'emargement-demo', source: 'cli', removed_at: null });
  });

  it('answers a well-formed authentication request with an auto-posted id_token and the state', async () => {
    const login = await loginUrl('unit=visibilite&as=learner&sub=abc-123');
    expect(login.pathname).toBe('/lti/login');
    expect(login.searchParams.get('iss')).toBe(`${base}/demo`);
    const res = await authorize(authRequest(login));
    expect(res.statusCode).toBe(200);
    const form = parseHTML(res.body).document.querySelector('form#lti-launch');
    expect(form?.getAttribute('action')).toBe(`${base}/lti/launch`);
    const fields = Object.fromEntries(
      [...(form?.querySelectorAll('input') ?? [])].map((i) => [i.getAttribute('name'), i.getAttribute('value')]),
    );
    expect(fields.state).toBe('s-123');
    const claims = JSON.parse(Buffer.from((fields.id_token as string).split('.')[1] as string, 'base64url').toString());
    expect(claims).toMatchObject({
      iss: `${base}/demo`,
      aud: 'emargement-demo',
      sub: 'abc-123',
      nonce: 'n-123',
      'https://purl.imsglobal.org/spec/lti/claim/custom': { theme: 'visibilite' },
    });
  });

  it('refuses a request that is not the launch it initiated, or not the OIDC form LTI requires', async () => {
    const login = await loginUrl('unit=visibilite&as=learner&sub=abc-123');
    const cases: Record<string, string>[] = [
      { scope: 'profile' },
      { response_mode: 'query' },
      { prompt: 'login' },
      { client_id: 'someone-else' },
      { redirect_uri: 'https://attacker.example/steal' },
      { login_hint: 'another-user' },
      { lti_message_hint: 'forged' },
      { nonce: '' },
    ];
    for (const overrides of cases) {
      const res = await authorize(authRequest(login, overrides));
      expect(res.statusCode, JSON.stringify(overrides)).toBe(400);
      expect(res.body).not.toContain('id_token');
    }
  });

  it('lets only the course team start a deep-linking pick', async () => {
    const pick = await ctx.app.inject({ method: 'GET', url: '/demo/pick' });
    const src = new URL(parseHTML(pick.body).document.querySelector('#lti-frame')?.getAttribute('src') as string);
    expect(src.searchParams.get('target_link_uri')).toBe(`${base}/lti/deep-linking`);
    const ok = await authorize(authRequest(src, { redirect_uri: `${base}/lti/deep-linking` }));
    expect(ok.statusCode).toBe(200);
  });

  it('refuses a deep-linking response not signed by the tool', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({
      'https://purl.imsglobal.org/spec/lti/claim/message_type': 'LtiDeepLinkingResponse',
      'https://purl.imsglobal.org/spec/lti-dl/claim/content_items': [
        { type: 'ltiResourceLink', title: 'Piège', custom: { module: 'x' } },
      ],
    })
      .setProtectedHeader({ alg: 'RS256', kid: 'not-the-tool' })
      .setIssuer('emargement-demo')
      .setAudience(`${base}/demo`)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/demo/lti/deep-linking-return',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ JWT: forged }).toString(),
    });
    expect(res.statusCode).toBe(400);
    const demo = await ctx.app.inject({ method: 'GET', url: '/demo' });
    expect(demo.body).not.toContain('Piège');
  });
});
