import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLAIM,
  decodeJwtHeader,
  decodeJwtPayload,
  type FakeComponent,
  type FakeOpenEdx,
  parseAutoPostForm,
  startFakeOpenEdx,
  uuid5Dns,
} from '../fixtures/openedx/index.js';

/** The fake Open edX itself: what it serves must match docs/openedx-lti.md, or the LTI tests prove nothing. */
const TOOL = 'http://tool.test';
let fake: FakeOpenEdx;
let v9: FakeComponent;
beforeAll(async () => {
  fake = await startFakeOpenEdx({ toolUrl: TOOL, component: { custom: { fonds: 'akto' } } });
  v9 = fake.addComponent({ version: 'v9' });
});
afterAll(() => fake.close());

/** A well-formed authentication request, as our tool would send it. */
function authParams(
  user = fake.createUser(),
  component = fake.components[0] as FakeComponent,
  messageType?: 'LtiDeepLinkingRequest',
) {
  const init = new URL(fake.loginInitiationUrl({ user, component, ...(messageType ? { messageType } : {}) }));
  return new URLSearchParams({
    scope: 'openid',
    response_type: 'id_token',
    response_mode: 'form_post',
    prompt: 'none',
    client_id: component.clientId,
    redirect_uri: component.launchUrl,
    login_hint: user.sub,
    lti_message_hint: init.searchParams.get('lti_message_hint') as string,
    state: 'the-state',
    nonce: 'the-nonce',
  });
}

describe('registration values', () => {
  it('are those Studio shows, per component, on one issuer', () => {
    const c = fake.components[0] as FakeComponent;
    expect(c.clientId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(fake.registration).toEqual({
      name: expect.any(String),
      issuer: fake.url,
      clientId: c.clientId,
      deploymentIds: ['1'],
      authLoginUrl: `${fake.url}/api/lti_consumer/v1/launch/`,
      accessTokenUrl: `${fake.url}/api/lti_consumer/v1/token/${c.clientId}`,
      jwksUrl: `${fake.url}/api/lti_consumer/v1/public_keysets/${c.clientId}`,
    });
    expect(fake.registrations().map((r) => r.issuer)).toEqual([fake.url, fake.url]);
    expect(new Set(fake.registrations().map((r) => r.clientId)).size).toBe(2);
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('the login initiation carries exactly what Open edX sends', () => {
    const user = fake.createUser();
    const u = new URL(fake.loginInitiationUrl({ user }));
    expect(u.origin + u.pathname).toBe(`${TOOL}/lti/login`);
    expect([...u.searchParams.keys()].sort()).toEqual(
      ['client_id', 'iss', 'login_hint', 'lti_deployment_id', 'lti_message_hint', 'target_link_uri'].sort(),
    );
    expect(u.searchParams.get('lti_message_hint')).toMatch(/^[0-9a-f]{32}$/);
    expect(u.searchParams.get('lti_message_hint')).toBe(
      new URL(fake.loginInitiationUrl({ user })).searchParams.get('lti_message_hint'),
    );
  });
});

describe('JWKS', () => {
  it('v11: kty, n, e, kid, key_ops — no alg, no use; v9: no key_ops', async () => {
    const body = (await (await fetch(fake.registration.jwksUrl)).json()) as { keys: Record<string, unknown>[] };
    expect(Object.keys(body.keys[0] ?? {}).sort()).toEqual(['e', 'key_ops', 'kid', 'kty', 'n']);
    expect(body.keys[0]?.key_ops).toEqual(['verify']);
    const old = (await (await fetch(v9.registration.jwksUrl)).json()) as { keys: Record<string, unknown>[] };
    expect(Object.keys(old.keys[0] ?? {}).sort()).toEqual(['e', 'kid', 'kty', 'n']);
    expect((await fetch(`${fake.url}/api/lti_consumer/v1/public_keysets/unknown`)).status).toBe(404);
  });
});

describe('launch gate', () => {
  it('answers the auto-POST form of lti_1p3_launch.html to redirect_uri', async () => {
    const res = await fetch(`${fake.url}/api/lti_consumer/v1/launch/?${authParams()}`);
    expect(res.status).toBe(200);
    const form = parseAutoPostForm(await res.text());
    expect(form?.action).toBe(`${TOOL}/lti/launch`);
    expect(form?.method).toBe('POST');
    expect(Object.keys(form?.fields ?? {}).sort()).toEqual(['id_token', 'state']);
    expect(form?.fields.state).toBe('the-state');
  });

  const refusals: [string, (p: URLSearchParams) => void][] = [
    ['lti_message_hint missing', (p) => p.delete('lti_message_hint')],
    ['lti_message_hint unknown', (p) => p.set('lti_message_hint', 'f'.repeat(32))],
    ['login_hint missing', (p) => p.delete('login_hint')],
    ['scope', (p) => p.set('scope', 'openid profile')],
    ['response_type', (p) => p.set('response_type', 'code')],
    ['response_mode', (p) => p.set('response_mode', 'query')],
    ['prompt', (p) => p.delete('prompt')],
    ['nonce', (p) => p.delete('nonce')],
    ['state', (p) => p.delete('state')],
    ['redirect_uri not registered', (p) => p.set('redirect_uri', `${TOOL}/elsewhere`)],
    ['redirect_uri not exact', (p) => p.set('redirect_uri', `${TOOL}/lti/launch?x=1`)],
    ['client_id of another component', (p) => p.set('client_id', v9.clientId)],
  ];
  for (const [what, edit] of refusals) {
    it(`refuses: ${what}`, async () => {
      const p = authParams();
      edit(p);
      const res = await fetch(`${fake.url}/api/lti_consumer/v1/launch/`, { method: 'POST', body: p });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('error');
    });
  }

  it('refuses a deep-linking launch by a learner', async () => {
    const result = await fake.authorize(
      authParams(fake.createUser({ role: 'student' }), undefined, 'LtiDeepLinkingRequest'),
    );
    expect(result).toMatchObject({ ok: false, status: 400 });
  });
});

describe('id_token claims', () => {
  it('LtiResourceLinkRequest as docs/openedx-lti.md describes it', async () => {
    const user = fake.createUser({ role: 'student' });
    const result = await fake.authorize(authParams(user));
    if (!result.ok) throw new Error(result.error);
    const header = decodeJwtHeader(result.fields.id_token);
    expect(header).toEqual({ alg: 'RS256', kid: fake.signingKey.kid, typ: 'JWT' });
    const c = decodeJwtPayload(result.fields.id_token);
    const client = (fake.components[0] as FakeComponent).clientId;
    expect(c).toMatchObject({
      iss: fake.url,
      aud: client,
      azp: client,
      sub: user.sub,
      nonce: 'the-nonce',
      name: user.name,
      email: user.email,
      preferred_username: user.username,
      [CLAIM.messageType]: 'LtiResourceLinkRequest',
      [CLAIM.version]: '1.3.0',
      [CLAIM.deploymentId]: '1',
      [CLAIM.targetLinkUri]: `${TOOL}/lti/launch`,
      [CLAIM.launchPresentation]: { document_target: 'iframe' },
      [CLAIM.toolPlatform]: { guid: uuid5Dns('FUN MOOC'), name: 'FUN MOOC' },
      [CLAIM.custom]: { fonds: 'akto' },
      [CLAIM.context]: {
        id: fake.course.id,
        label: fake.course.id,
        title: 'Transition numérique des TPE-PME - FUN',
        type: ['http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering'],
      },
      [CLAIM.nrps]: { service_versions: ['2.0'] },
    });
    expect(c.exp).toBe((c.iat as number) + 3600);
    expect(c[CLAIM.resourceLink]).toEqual({ id: (fake.components[0] as FakeComponent).usageKey });
    expect((c[CLAIM.roles] as string[]).sort()).toEqual(
      [
        'http://purl.imsglobal.org/vocab/lis/v2/institution/person#None',
        'http://purl.imsglobal.org/vocab/lis/v2/membership#Learner',
        'http://purl.imsglobal.org/vocab/lis/v2/system/person#None',
      ].sort(),
    );
    expect(c).not.toHaveProperty('lis');
  });

  it('uuid5 matches Python uuid.uuid5(NAMESPACE_DNS, …)', () => {
    // uuid.uuid5(uuid.NAMESPACE_DNS, 'python.org') — the example of Python's documentation.
    expect(uuid5Dns('python.org')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
  });

  it('LtiDeepLinkingRequest: settings, no launch_presentation, tool_platform, custom, AGS or NRPS', async () => {
    const user = fake.createUser({ role: 'instructor' });
    const p = authParams(user, undefined, 'LtiDeepLinkingRequest');
    const result = await fake.authorize(p);
    if (!result.ok) throw new Error(result.error);
    const c = decodeJwtPayload(result.fields.id_token);
    expect(c[CLAIM.messageType]).toBe('LtiDeepLinkingRequest');
    expect(c[CLAIM.targetLinkUri]).toBe(`${TOOL}/lti/deep-linking`);
    for (const absent of [CLAIM.launchPresentation, CLAIM.toolPlatform, CLAIM.custom, CLAIM.ags, CLAIM.nrps]) {
      expect(c).not.toHaveProperty([absent]);
    }
    expect(c[CLAIM.deepLinkingSettings]).toEqual({
      accept_types: ['ltiResourceLink', 'link', 'html', 'image'],
      accept_presentation_document_targets: ['iframe', 'window', 'embed'],
      accept_multiple: true,
      auto_create: true,
      title: '',
      text: '',
      deep_link_return_url: (fake.components[0] as FakeComponent).deepLinkReturnUrl,
    });
  });

  it('v9 roles and PII off', async () => {
    const quiet = fake.addComponent({ version: 'v9', pii: false });
    const user = fake.createUser({ role: 'global_staff' });
    const p = authParams(user, quiet);
    const result = await fake.authorize(p);
    if (!result.ok) throw new Error(result.error);
    const c = decodeJwtPayload(result.fields.id_token);
    expect((c[CLAIM.roles] as string[]).sort()).toEqual(
      [
        'http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor',
        'http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator',
      ].sort(),
    );
    for (const pii of ['name', 'email', 'preferred_username']) expect(c).not.toHaveProperty(pii);
  });
});

describe('LMS page and extensions', () => {
  it('serves a course page with the component in an iframe of the tool origin', async () => {
    const user = fake.createUser();
    const html = await (await fetch(fake.coursePageUrl({ user }))).text();
    const src = /<iframe id="lti-frame"[^>]*src="([^"]+)"/.exec(html)?.[1]?.replace(/&#38;/g, '&');
    expect(new URL(src as string).origin).toBe(TOOL);
    expect(html).toContain('allow="microphone *; camera *; midi *; geolocation *; encrypted-media *; fullscreen *"');
  });

  it('lets services plug routes in', async () => {
    fake.use((req, res) => {
      if (!req.url?.startsWith('/api/lti_consumer/v1/token/')) return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"access_token":"t"}');
      return true;
    });
    const res = await fetch(fake.registration.accessTokenUrl, { method: 'POST' });
    expect(await res.json()).toEqual({ access_token: 't' });
  });
});
