import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PlatformKeyCache } from '../../src/lti/platform-keys.js';
import { type FakeComponent, generateSigningKey, signJwt } from '../fixtures/openedx/index.js';
import { createLtiTestApp, type LtiTestContext } from './helpers.js';

/** Security Framework §6.3 and docs/openedx-lti.md pitfall 3: the platform JWKS is fetched once, not per launch. */
let ctx: LtiTestContext;
let main: FakeComponent;
let v9: FakeComponent;
beforeAll(async () => {
  ctx = await createLtiTestApp({ extraComponents: [{ name: 'old Open edX', version: 'v9' }] });
  main = ctx.fake.components[0] as FakeComponent;
  v9 = ctx.fake.components[1] as FakeComponent;
});
afterAll(() => ctx.close());
afterEach(() => {
  vi.useRealTimers();
});

describe('platform JWKS cache', () => {
  it('fetches the JWKS once for many launches', async () => {
    ctx.fake.stats.reset();
    for (let i = 0; i < 6; i++) {
      const user = ctx.fake.createUser({ role: i % 2 ? 'instructor' : 'student' });
      const res = await ctx.fake.launch({ user, transport: ctx.transport });
      expect(res.final.status).toBe(200);
    }
    expect(ctx.fake.stats.jwksFetches).toBe(1);
    expect(ctx.fake.stats.jwksFetchesByConfig[main.configId]).toBe(1);
  });

  it('also reads the v9 JWKS (no key_ops, cty header) once', async () => {
    ctx.fake.stats.reset();
    for (let i = 0; i < 3; i++) {
      const res = await ctx.fake.launch({ user: ctx.fake.createUser(), transport: ctx.transport, component: v9 });
      expect(res.final.status).toBe(200);
    }
    expect(ctx.fake.stats.jwksFetchesByConfig[v9.configId]).toBe(1);
  });

  it('refetches on an unknown kid after a platform key rotation, at most once a minute', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 10 * 60_000);
    ctx.fake.stats.reset();
    await ctx.fake.rotateKey();
    const user = ctx.fake.createUser();

    // New platform key: one refetch, the launch goes through.
    expect((await ctx.fake.launch({ user, transport: ctx.transport })).final.status).toBe(200);
    expect(ctx.fake.stats.jwksFetches).toBe(1);
    expect((await ctx.fake.launch({ user, transport: ctx.transport })).final.status).toBe(200);
    expect(ctx.fake.stats.jwksFetches).toBe(1);

    // A flood of forged kids right after: refused without hitting the platform.
    const forger = await generateSigningKey('forged-kid');
    for (let i = 0; i < 5; i++) {
      const res = await ctx.fake.launch({
        user,
        transport: ctx.transport,
        overrides: { sign: (c) => signJwt({ alg: 'RS256', kid: `forged-${i}` }, c, forger.privateKey) },
      });
      expect(res.final.status).toBe(401);
      expect(ctx.lastRefusal()).toMatchObject({ check: 'kid' });
    }
    expect(ctx.fake.stats.jwksFetches).toBe(1);

    // A minute later an unknown kid may trigger one refetch again.
    vi.setSystemTime(Date.now() + 61_000);
    const res = await ctx.fake.launch({
      user,
      transport: ctx.transport,
      overrides: { sign: (c) => signJwt({ alg: 'RS256', kid: 'forged-late' }, c, forger.privateKey) },
    });
    expect(res.final.status).toBe(401);
    expect(ctx.fake.stats.jwksFetches).toBe(2);
  });
});

describe('PlatformKeyCache (unit)', () => {
  const jwks = async () => {
    const key = await generateSigningKey('k1');
    return {
      key,
      body: { keys: [{ kty: 'RSA', key_ops: ['verify'], n: key.publicJwk.n, e: key.publicJwk.e, kid: 'k1' }] },
    };
  };

  it('shares one fetch between concurrent lookups of a cold cache', async () => {
    const { body } = await jwks();
    let fetches = 0;
    const cache = new PlatformKeyCache(async () => {
      fetches += 1;
      await new Promise((r) => setTimeout(r, 20));
      return body;
    });
    const results = await Promise.all(Array.from({ length: 10 }, () => cache.key('https://lms/jwks', 'k1', 'RS256')));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(fetches).toBe(1);
  });

  it('keeps serving cached keys when a later refetch fails, and reports an unreachable JWKS', async () => {
    const { body } = await jwks();
    let now = 0;
    let down = false;
    const cache = new PlatformKeyCache(
      async () => {
        if (down) throw new Error('connect ECONNREFUSED');
        return body;
      },
      () => now,
    );
    expect((await cache.key('u', 'k1', 'RS256')).ok).toBe(true);
    down = true;
    now = 13 * 3600_000; // past the max age: a refetch is attempted and fails
    expect((await cache.key('u', 'k1', 'RS256')).ok).toBe(true);
    expect(await cache.key('u', 'other', 'RS256')).toMatchObject({ ok: false, check: 'jwks' });
    const cold = new PlatformKeyCache(async () => {
      throw new Error('HTTP 503');
    });
    expect(await cold.key('u', 'k1', 'RS256')).toMatchObject({ ok: false, check: 'jwks' });
  });

  it('refuses a JWKS key that is not RSA', async () => {
    const cache = new PlatformKeyCache(async () => ({ keys: [{ kty: 'EC', kid: 'e', crv: 'P-256', x: 'a', y: 'b' }] }));
    expect(await cache.key('u', 'e', 'RS256')).toMatchObject({ ok: false, check: 'kid' });
  });
});
