import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessTokenService, PlatformCallError, SCOPES } from '../../src/lti-services/index.js';
import { FakeOpenEdxServices } from '../fixtures/openedx/services.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { type SeededPlatform, seedPlatform, testToolKey } from './seed.js';

let ctx: TestContext;
let platform: FakeOpenEdxServices;
let key: Awaited<ReturnType<typeof testToolKey>>;
let p: SeededPlatform;

beforeAll(async () => {
  ctx = await createTestApp();
  platform = new FakeOpenEdxServices();
  await platform.start();
  key = await testToolKey();
  p = await seedPlatform(ctx.app.db, platform, async () => key.jwks);
});
afterAll(async () => {
  await platform.stop();
  await ctx.close();
});

async function assertion(claims: Record<string, unknown>, signWith = key.key) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signWith.kid }).sign(signWith.privateKey);
}

function validClaims() {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: p.clientId,
    sub: p.clientId,
    aud: platform.tokenUrl(p.configId),
    iat: now,
    exp: now + 300,
    jti: randomUUID(),
  };
}

async function tokenRequest(form: Record<string, string>) {
  return fetch(platform.tokenUrl(p.configId), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

const grant = {
  grant_type: 'client_credentials',
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  scope: SCOPES.score,
};

describe('the fake Open edX token endpoint (what our client is held to)', () => {
  it('grants a token for a client assertion signed with the tool key', async () => {
    const res = await tokenRequest({ ...grant, client_assertion: await assertion(validClaims()) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token_type: 'bearer', expires_in: 3600, scope: SCOPES.score });
  });

  it('refuses a JSON body, as Open edX does', async () => {
    const res = await fetch(platform.tokenUrl(p.configId), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...grant, client_assertion: await assertion(validClaims()) }),
    });
    expect(res.status).toBe(400);
  });

  it('refuses an assertion signed by another key, for another audience, or replayed', async () => {
    const stranger = await testToolKey();
    const forged = await tokenRequest({ ...grant, client_assertion: await assertion(validClaims(), stranger.key) });
    expect(forged.status).toBe(400);
    const wrongAud = await tokenRequest({
      ...grant,
      client_assertion: await assertion({ ...validClaims(), aud: 'https://lms.example/other' }),
    });
    expect(wrongAud.status).toBe(400);
    const wrongIss = await tokenRequest({
      ...grant,
      client_assertion: await assertion({ ...validClaims(), iss: 'someone-else' }),
    });
    expect(wrongIss.status).toBe(400);
    const once = await assertion(validClaims());
    expect((await tokenRequest({ ...grant, client_assertion: once })).status).toBe(200);
    expect((await tokenRequest({ ...grant, client_assertion: once })).status).toBe(400);
  });
});

describe('AccessTokenService (IMS Security Framework §4.1 client credentials)', () => {
  it('sends a form-urlencoded grant with iss = sub = client_id, aud = token URL, short exp, unique jti', async () => {
    const seen: { body: URLSearchParams; contentType: string }[] = [];
    const tokens = new AccessTokenService({
      db: ctx.app.db,
      toolKey: async () => key.key,
      fetch: async (url, init) => {
        seen.push({
          body: new URLSearchParams(String(init.body)),
          contentType: String((init.headers as Record<string, string>)['content-type']),
        });
        return fetch(url, init);
      },
    });
    await tokens.getToken(p.registrationId, [SCOPES.score]);
    await tokens.getToken(p.registrationId, [SCOPES.contextMembershipReadonly]);
    expect(seen).toHaveLength(2);
    const claims = seen.map((s) =>
      JSON.parse(Buffer.from(s.body.get('client_assertion')?.split('.')[1] as string, 'base64url').toString()),
    );
    for (const [i, c] of claims.entries()) {
      expect(seen[i]?.contentType).toBe('application/x-www-form-urlencoded');
      expect(seen[i]?.body.get('grant_type')).toBe('client_credentials');
      expect(c).toMatchObject({ iss: p.clientId, sub: p.clientId, aud: platform.tokenUrl(p.configId) });
      expect(c.exp - c.iat).toBeLessThanOrEqual(300);
    }
    expect(claims[0].jti).not.toBe(claims[1].jti);
  });

  it('caches per registration and scope, shares one request between concurrent callers', async () => {
    const tokens = new AccessTokenService({ db: ctx.app.db, toolKey: async () => key.key });
    const before = platform.tokenRequests.length;
    const [a, b, c] = await Promise.all([
      tokens.getToken(p.registrationId, [SCOPES.score]),
      tokens.getToken(p.registrationId, [SCOPES.score]),
      tokens.getToken(p.registrationId, [SCOPES.score]),
    ]);
    expect(a).toBe(b);
    expect(b).toBe(c);
    expect(await tokens.getToken(p.registrationId, [SCOPES.score])).toBe(a);
    const nrps = await tokens.getToken(p.registrationId, [SCOPES.contextMembershipReadonly]);
    expect(nrps).not.toBe(a);
    expect(platform.tokenRequests.length - before).toBe(2);
  });

  it('asks for a new token shortly before the cached one expires', async () => {
    let now = Date.now();
    platform.tokenLifetimeSeconds = 600;
    try {
      const tokens = new AccessTokenService({ db: ctx.app.db, toolKey: async () => key.key, nowMs: () => now });
      const first = await tokens.getToken(p.registrationId, [SCOPES.score]);
      now += 500_000; // 100 s of life left: still used
      expect(await tokens.getToken(p.registrationId, [SCOPES.score])).toBe(first);
      now += 50_000; // 50 s left: within the refresh margin
      expect(await tokens.getToken(p.registrationId, [SCOPES.score])).not.toBe(first);
    } finally {
      platform.tokenLifetimeSeconds = 3600;
    }
  });

  it('reports a refused grant as a retryable platform error, never caching it', async () => {
    const tokens = new AccessTokenService({ db: ctx.app.db, toolKey: async () => (await testToolKey()).key });
    const error = await tokens.getToken(p.registrationId, [SCOPES.score]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlatformCallError);
    expect(error).toMatchObject({ kind: 'http', status: 400, retryable: true });
    expect(String((error as Error).message)).not.toMatch(/eyJ/); // no assertion in messages
  });

  it('refuses to get a token for an unknown registration', async () => {
    const tokens = new AccessTokenService({ db: ctx.app.db, toolKey: async () => key.key });
    await expect(tokens.getToken(randomUUID(), [SCOPES.score])).rejects.toMatchObject({ kind: 'configuration' });
  });
});
