import { KeyObject, randomBytes, randomUUID, sign } from 'node:crypto';
import { generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signState, stateKey } from '../../src/lti/state.js';
import {
  type AuthorizeOverrides,
  CLAIM,
  CookieJar,
  type FakeComponent,
  type FakeUser,
  generateSigningKey,
  hs256WithPublicKey,
  type LtiMessageType,
  privateKeyFor,
  signJwt,
  type ToolResponse,
  unsecuredJwt,
} from '../fixtures/openedx/index.js';
import { createLtiTestApp, type LtiTestContext } from './helpers.js';

/**
 * Forged and malformed launches, each refused for the right reason: the name of the failed check is read
 * from the log line the tool writes ("lti launch refused" / "lti login refused").
 */
let ctx: LtiTestContext;
let student: FakeUser;
let instructor: FakeUser;
let main: FakeComponent;
let spare: FakeComponent;

beforeAll(async () => {
  ctx = await createLtiTestApp({ extraComponents: [{ name: 'spare' }] });
  student = ctx.fake.createUser({ role: 'student' });
  instructor = ctx.fake.createUser({ role: 'instructor' });
  main = ctx.fake.components[0] as FakeComponent;
  spare = ctx.fake.components[1] as FakeComponent;
  // Warm the JWKS cache of the main component with one good launch.
  const ok = await ctx.fake.launch({ user: student, transport: ctx.transport });
  expect(ok.final.status).toBe(200);
});
afterAll(() => ctx.close());

const now = () => Math.floor(Date.now() / 1000);

async function launchWith(
  overrides: AuthorizeOverrides,
  options: { user?: FakeUser; messageType?: LtiMessageType; component?: FakeComponent } = {},
): Promise<ToolResponse> {
  const result = await ctx.fake.launch({
    user: options.user ?? student,
    transport: ctx.transport,
    overrides,
    ...(options.messageType ? { messageType: options.messageType } : {}),
    ...(options.component ? { component: options.component } : {}),
  });
  return result.final;
}

/** An RS256 JWS whose protected header is exactly `header` (jose refuses to sign unknown `crit` members). */
function signWithHeader(header: Record<string, unknown>, claims: Record<string, unknown>, key: CryptoKey): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), KeyObject.from(key)).toString('base64url')}`;
}

/** Signs with the platform key and `alg`, then swaps the protected header for one that says RS256. */
const signedWithUnderRs256Header =
  (alg: string): AuthorizeOverrides['sign'] =>
  async (c, key) => {
    const [, payload, sig] = (await signJwt({ alg, kid: key.kid }, c, await privateKeyFor(key, alg))).split('.');
    return `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: key.kid })).toString('base64url')}.${payload}.${sig}`;
  };

const mutate =
  (f: (c: Record<string, unknown>) => void): AuthorizeOverrides['claims'] =>
  (c) => {
    f(c);
    return c;
  };

/** A login whose authentication request we keep, to build mismatched launches by hand. */
async function login(user: FakeUser = student, component: FakeComponent = main) {
  const step = await ctx.fake.startLogin({ user, transport: ctx.transport, component, cookies: 'drop' });
  if (!step.authRequest) throw new Error(`login refused: ${step.login.status}`);
  return step.authRequest;
}

async function post(fields: Record<string, string>, path = '/lti/launch', cookie?: string): Promise<ToolResponse> {
  return ctx.transport.request({
    method: 'POST',
    url: `${ctx.config.publicUrl}${path}`,
    form: fields,
    headers: cookie ? { cookie } : {},
  });
}

async function loginRequest(params: Record<string, string>): Promise<ToolResponse> {
  return ctx.transport.request({
    method: 'GET',
    url: `${ctx.config.publicUrl}/lti/login?${new URLSearchParams(params)}`,
  });
}

function loginParams(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    iss: ctx.fake.issuer,
    client_id: main.clientId,
    lti_deployment_id: '1',
    target_link_uri: main.launchUrl,
    login_hint: student.sub,
    lti_message_hint: 'a'.repeat(32),
    ...overrides,
  };
  return Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
}

interface Case {
  name: string;
  check: string;
  stage?: 'login' | 'launch';
  status?: number;
  run: () => Promise<ToolResponse>;
}

const cases: Case[] = [
  // --- signature and key ---
  {
    name: 'alg none',
    check: 'alg',
    run: () => launchWith({ sign: async (c, key) => unsecuredJwt(c, { kid: key.kid }) }),
  },
  {
    name: 'HS256 signed with the platform public key',
    check: 'alg',
    run: () => launchWith({ sign: (c, key) => hs256WithPublicKey(c, key.publicPem, { kid: key.kid }) }),
  },
  {
    name: 'ES256 (asymmetric but not in the allow-list)',
    check: 'alg',
    run: () =>
      launchWith({
        sign: async (c, key) => {
          const ec = await generateKeyPair('ES256');
          return signJwt({ alg: 'ES256', kid: key.kid }, c, ec.privateKey);
        },
      }),
  },
  {
    name: 'signed with another key under the platform kid',
    check: 'signature',
    run: () =>
      launchWith({
        sign: async (c, key) => signJwt({ alg: 'RS256', kid: key.kid }, c, (await generateSigningKey()).privateKey),
      }),
  },
  {
    name: 'RS256 header but PS256 signature bytes',
    check: 'signature',
    run: () => launchWith({ sign: signedWithUnderRs256Header('PS256') }),
  },
  {
    name: 'claims changed after signing',
    check: 'signature',
    run: () =>
      launchWith({
        sign: async (c, key) => {
          const [header, , sig] = (await signJwt({ alg: 'RS256', kid: key.kid }, c, key.privateKey)).split('.');
          const changed = Buffer.from(JSON.stringify({ ...c, sub: 'someone-else' })).toString('base64url');
          return `${header}.${changed}.${sig}`;
        },
      }),
  },
  {
    name: 'RS256 header over an RS512 signature',
    check: 'signature',
    run: () => launchWith({ sign: signedWithUnderRs256Header('RS512') }),
  },
  {
    name: 'crit header (a JWS extension the tool does not understand), validly signed',
    check: 'token_format',
    status: 400,
    run: () =>
      launchWith({
        sign: async (c, key) =>
          signWithHeader({ alg: 'RS256', kid: key.kid, crit: ['exp'], exp: now() + 60 }, c, key.privateKey),
      }),
  },
  {
    name: 'b64 false header (unencoded payload), validly signed',
    check: 'token_format',
    status: 400,
    run: () =>
      launchWith({
        sign: async (c, key) => signWithHeader({ alg: 'RS256', kid: key.kid, b64: false }, c, key.privateKey),
      }),
  },
  {
    name: 'unknown kid',
    check: 'kid',
    run: () =>
      launchWith({
        sign: async (c) =>
          signJwt({ alg: 'RS256', kid: 'not-a-platform-key' }, c, (await generateSigningKey()).privateKey),
      }),
  },
  {
    name: 'no kid in the header',
    check: 'kid',
    run: () => launchWith({ sign: (c, key) => signJwt({ alg: 'RS256' }, c, key.privateKey) }),
  },
  // --- time ---
  {
    name: 'expired id_token',
    check: 'exp',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { iat: now() - 3800, exp: now() - 200 })) }),
  },
  {
    name: 'id_token without exp',
    check: 'exp',
    run: () => launchWith({ claims: mutate((c) => delete c.exp) }),
  },
  {
    name: 'iat in the future (beyond the 60 s skew)',
    check: 'iat',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { iat: now() + 300, exp: now() + 3900 })) }),
  },
  // --- issuer and audience ---
  {
    name: 'wrong iss',
    check: 'iss',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { iss: 'https://lms.evil.example' })) }),
  },
  {
    name: 'wrong aud',
    check: 'aud',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { aud: randomUUID(), azp: randomUUID() })) }),
  },
  {
    name: 'aud array without our client_id',
    check: 'aud',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { aud: [randomUUID(), randomUUID()] })) }),
  },
  {
    name: 'aud array with several values and no azp',
    check: 'azp',
    run: () =>
      launchWith({
        claims: mutate((c) => {
          c.aud = [main.clientId, randomUUID()];
          delete c.azp;
        }),
      }),
  },
  {
    name: 'azp mismatch',
    check: 'azp',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { azp: randomUUID() })) }),
  },
  // --- nonce and state ---
  {
    name: 'missing nonce',
    check: 'nonce_claim',
    run: () => launchWith({ claims: mutate((c) => delete c.nonce) }),
  },
  {
    name: 'nonce other than the one of this login',
    check: 'state_binding',
    run: () =>
      launchWith({ claims: mutate((c) => Object.assign(c, { nonce: randomBytes(24).toString('base64url') })) }),
  },
  {
    name: 'nonce never issued (state validly signed around it)',
    check: 'nonce_issued',
    run: async () => {
      const params = await login();
      const nonce = randomBytes(24).toString('base64url');
      const state = await signState(stateKey(ctx.config.appSecret), ctx.config.publicUrl, {
        reg: (await registrationId(main)) as string,
        nonce,
        tlu: main.launchUrl,
      });
      params.set('nonce', nonce);
      params.set('state', state.token);
      const auth = await ctx.fake.authorize(params);
      if (!auth.ok) throw new Error(auth.error);
      return post(auth.fields);
    },
  },
  {
    name: 'state from another login',
    check: 'state_binding',
    run: async () => {
      const first = await login();
      const second = await login();
      const auth = await ctx.fake.authorize(second);
      if (!auth.ok) throw new Error(auth.error);
      return post({ ...auth.fields, state: first.get('state') as string });
    },
  },
  {
    name: 'state forged (signed with another secret)',
    check: 'state_signature',
    run: async () => {
      const params = await login();
      const forged = await signState(stateKey('another-secret-0123456789-abcdefghijklmnop'), ctx.config.publicUrl, {
        reg: (await registrationId(main)) as string,
        nonce: params.get('nonce') as string,
        tlu: main.launchUrl,
      });
      const auth = await ctx.fake.authorize(params);
      if (!auth.ok) throw new Error(auth.error);
      return post({ ...auth.fields, state: forged.token });
    },
  },
  {
    name: 'state tampered (payload edited)',
    check: 'state_signature',
    run: async () => {
      const params = await login();
      const auth = await ctx.fake.authorize(params);
      if (!auth.ok) throw new Error(auth.error);
      const [h, p, s] = auth.fields.state.split('.');
      const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString()) as Record<string, unknown>;
      claims.reg = randomUUID();
      return post({ ...auth.fields, state: `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}` });
    },
  },
  {
    name: 'state expired',
    check: 'state_expiry',
    run: async () => {
      const params = await login();
      const old = await signState(
        stateKey(ctx.config.appSecret),
        ctx.config.publicUrl,
        { reg: (await registrationId(main)) as string, nonce: params.get('nonce') as string, tlu: main.launchUrl },
        now() - 700,
      );
      const auth = await ctx.fake.authorize(params);
      if (!auth.ok) throw new Error(auth.error);
      return post({ ...auth.fields, state: old.token });
    },
  },
  {
    name: 'state missing',
    check: 'request',
    status: 400,
    run: async () => {
      const auth = await ctx.fake.authorize(await login());
      if (!auth.ok) throw new Error(auth.error);
      return post({ id_token: auth.fields.id_token });
    },
  },
  {
    name: 'id_token missing',
    check: 'request',
    status: 400,
    run: async () => post({ state: (await login()).get('state') as string }),
  },
  {
    name: 'browser holds the state cookie of another login only (login CSRF)',
    check: 'state_cookie',
    run: async () => {
      const jar = new CookieJar();
      await ctx.fake.startLogin({ user: student, transport: ctx.transport, jar });
      const auth = await ctx.fake.authorize(await login());
      if (!auth.ok) throw new Error(auth.error);
      return ctx.fake.postLaunch(ctx.transport, auth, jar);
    },
  },
  {
    name: 'platform reports an authentication error',
    check: 'platform_error',
    run: async () => post({ error: 'login_required', state: (await login()).get('state') as string }),
  },
  // --- LTI claims ---
  {
    name: 'unknown deployment_id in the id_token',
    check: 'deployment_id',
    status: 400,
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { [CLAIM.deploymentId]: '2' })) }),
  },
  {
    name: 'wrong LTI version',
    check: 'version',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { [CLAIM.version]: '1.1.0' })) }),
  },
  {
    name: 'unsupported message type',
    check: 'message_type',
    run: () =>
      launchWith({ claims: mutate((c) => Object.assign(c, { [CLAIM.messageType]: 'LtiSubmissionReviewRequest' })) }),
  },
  {
    name: 'missing sub (anonymous launch)',
    check: 'sub',
    run: () => launchWith({ claims: mutate((c) => delete c.sub) }),
  },
  {
    name: 'missing roles claim',
    check: 'roles',
    run: () => launchWith({ claims: mutate((c) => delete c[CLAIM.roles]) }),
  },
  {
    name: 'missing resource_link',
    check: 'resource_link',
    run: () => launchWith({ claims: mutate((c) => delete c[CLAIM.resourceLink]) }),
  },
  {
    name: 'resource_link without id',
    check: 'resource_link',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { [CLAIM.resourceLink]: { title: 'x' } })) }),
  },
  {
    name: 'resource link launch without context',
    check: 'context',
    run: () => launchWith({ claims: mutate((c) => delete c[CLAIM.context]) }),
  },
  {
    name: 'deep-linking launch without deep_linking_settings',
    check: 'deep_linking_settings',
    run: () =>
      launchWith(
        { claims: mutate((c) => delete c[CLAIM.deepLinkingSettings]) },
        { user: instructor, messageType: 'LtiDeepLinkingRequest' },
      ),
  },
  {
    name: 'target_link_uri elsewhere (id_token)',
    check: 'target_link_uri',
    run: () =>
      launchWith({
        claims: mutate((c) => Object.assign(c, { [CLAIM.targetLinkUri]: 'https://evil.example/lti/launch' })),
      }),
  },
  {
    name: 'custom claim that is not an object',
    check: 'custom',
    run: () => launchWith({ claims: mutate((c) => Object.assign(c, { [CLAIM.custom]: ['fonds=akto'] })) }),
  },
  // --- shape ---
  {
    name: 'oversize id_token',
    check: 'token_size',
    status: 400,
    run: () =>
      launchWith({ claims: mutate((c) => Object.assign(c, { [CLAIM.custom]: { blob: 'x'.repeat(40_000) } })) }),
  },
  {
    name: 'malformed JWT (not base64url)',
    check: 'token_format',
    status: 400,
    run: async () => {
      const auth = await ctx.fake.authorize(await login());
      if (!auth.ok) throw new Error(auth.error);
      return post({ ...auth.fields, id_token: 'not a jwt!.at all.really' });
    },
  },
  {
    name: 'JWT with two parts',
    check: 'token_format',
    status: 400,
    run: async () => {
      const auth = await ctx.fake.authorize(await login());
      if (!auth.ok) throw new Error(auth.error);
      return post({ ...auth.fields, id_token: auth.fields.id_token.split('.').slice(0, 2).join('.') });
    },
  },
  {
    name: 'signed payload that is not JSON',
    check: 'token_format',
    status: 400,
    run: () =>
      launchWith({
        sign: (_c, key) => signJwt({ alg: 'RS256', kid: key.kid }, 'plain text, not JSON', key.privateKey),
      }),
  },
  // --- login initiation ---
  {
    name: 'login: unknown client_id',
    check: 'registration',
    stage: 'login',
    status: 400,
    run: () => loginRequest(loginParams({ client_id: randomUUID() })),
  },
  {
    name: 'login: unknown issuer',
    check: 'registration',
    stage: 'login',
    status: 400,
    run: () => loginRequest(loginParams({ iss: 'https://lms.unknown.example' })),
  },
  {
    name: 'login: no client_id while the issuer has several registrations',
    check: 'registration',
    stage: 'login',
    status: 400,
    run: () => loginRequest(loginParams({ client_id: undefined })),
  },
  {
    name: 'login: unknown lti_deployment_id',
    check: 'deployment_id',
    stage: 'login',
    status: 400,
    run: () => loginRequest(loginParams({ lti_deployment_id: '7' })),
  },
  {
    name: 'login: target_link_uri elsewhere',
    check: 'target_link_uri',
    stage: 'login',
    run: () => loginRequest(loginParams({ target_link_uri: 'https://evil.example/lti/launch' })),
  },
  {
    name: 'login: target_link_uri on a look-alike host',
    check: 'target_link_uri',
    stage: 'login',
    run: () => loginRequest(loginParams({ target_link_uri: `${ctx.config.publicUrl}.evil.example/lti/launch` })),
  },
  {
    name: 'login: missing login_hint',
    check: 'login_request',
    stage: 'login',
    status: 400,
    run: () => loginRequest(loginParams({ login_hint: undefined })),
  },
  {
    name: 'login: missing iss',
    check: 'login_request',
    stage: 'login',
    status: 400,
    run: () => loginRequest(loginParams({ iss: undefined })),
  },
];

async function registrationId(component: FakeComponent): Promise<string | undefined> {
  const row = await ctx.app.db
    .selectFrom('lti_registrations')
    .select('id')
    .where('client_id', '=', component.clientId)
    .executeTakeFirst();
  return row?.id;
}

describe('negative matrix', () => {
  it('has at least 25 distinct cases', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  for (const c of cases) {
    it(`refuses: ${c.name} → ${c.check}`, async () => {
      const before = ctx.logs.length;
      const res = await c.run();
      expect(res.status).toBe(c.status ?? 401);
      expect(res.headers['content-type']).toContain('text/html');
      expect(res.body).toContain('<html lang="fr">');
      expect(res.body).toContain('Référence');
      expect(res.body).not.toMatch(/at .*\.ts:\d+/);
      const refusals = ctx.logs.slice(before).filter((l) => /^lti (login|launch) refused$/.test(String(l.msg)));
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toMatchObject({ check: c.check, stage: c.stage ?? 'launch' });
      // The reference shown to the learner is the request id of the logged refusal.
      expect(res.body).toContain(String((refusals[0]?.req as { id?: string } | undefined)?.id ?? refusals[0]?.reqId));
    });
  }
});

describe('replay and concurrency', () => {
  it('refuses a replayed launch POST (nonce_unused)', async () => {
    const auth = await ctx.fake.authorize(await login());
    if (!auth.ok) throw new Error(auth.error);
    expect((await post(auth.fields)).status).toBe(200);
    const before = ctx.logs.length;
    expect((await post(auth.fields)).status).toBe(401);
    expect(ctx.logs.slice(before).find((l) => l.msg === 'lti launch refused')).toMatchObject({ check: 'nonce_unused' });
  });

  it('of two concurrent uses of one nonce, exactly one succeeds', async () => {
    for (let round = 0; round < 5; round++) {
      const auth = await ctx.fake.authorize(await login());
      if (!auth.ok) throw new Error(auth.error);
      const before = ctx.logs.length;
      const results = await Promise.all([post(auth.fields), post(auth.fields), post(auth.fields, '/lti/deep-linking')]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401]);
      const refused = ctx.logs.slice(before).filter((l) => l.msg === 'lti launch refused');
      expect(refused.map((l) => l.check)).toEqual(['nonce_unused', 'nonce_unused']);
    }
  });
});

describe('other refusals', () => {
  it('refuses a body over the size limit with a French page (413)', async () => {
    const res = await post({ id_token: 'x'.repeat(70 * 1024), state: 'y' });
    expect(res.status).toBe(413);
    expect(res.body).toContain('Envoi trop volumineux');
  });

  it('answers 503 when the platform JWKS cannot be fetched, then recovers', async () => {
    ctx.fake.setJwksDown(true);
    try {
      const res = await launchWith({}, { component: spare });
      expect(res.status).toBe(503);
      expect(ctx.lastRefusal()).toMatchObject({ check: 'jwks' });
      expect(res.body).toContain('ne répond pas');
    } finally {
      ctx.fake.setJwksDown(false);
    }
  });

  it('refuses the launch of a registration removed between login and launch', async () => {
    const params = await login(student, spare);
    const auth = await ctx.fake.authorize(params);
    if (!auth.ok) throw new Error(auth.error);
    const id = (await registrationId(spare)) as string;
    await ctx.app.db.updateTable('lti_registrations').set({ removed_at: new Date() }).where('id', '=', id).execute();
    try {
      const res = await post(auth.fields);
      expect(res.status).toBe(400);
      expect(ctx.lastRefusal()).toMatchObject({ check: 'registration', stage: 'launch' });
    } finally {
      await ctx.app.db.updateTable('lti_registrations').set({ removed_at: null }).where('id', '=', id).execute();
    }
  });

  it.each(['PS256', 'RS384', 'RS512', 'PS384', 'PS512'])(
    'accepts a %s signature by the platform key (allow-list is not RS256 only)',
    async (alg) => {
      const res = await launchWith({
        sign: async (c, key) => signJwt({ alg, kid: key.kid }, c, await privateKeyFor(key, alg)),
      });
      expect(res.status).toBe(200);
    },
  );

  it('never logs tokens, nonces or personal data', () => {
    const text = JSON.stringify(ctx.logs);
    for (const secret of [student.email, student.name, instructor.email, student.sub])
      expect(text).not.toContain(secret);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
  });
});
