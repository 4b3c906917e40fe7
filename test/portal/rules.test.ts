import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  cookieOptions,
  csrfToken,
  encodePasswordHash,
  isApiTokenShape,
  loginThrottled,
  needsRehash,
  normaliseUsername,
  parseBearer,
  parsePasswordHash,
  passwordProblems,
  SCRYPT_PARAMS,
  safeNext,
  scopedFund,
  sessionCookieName,
  sessionState,
  verifyCsrfToken,
} from '../../src/portal/rules.js';
import { hashPassword, verifyPassword } from '../../src/portal/service.js';

describe('password hashing (scrypt)', () => {
  it('stores the parameters with the hash and verifies only the right password', async () => {
    const stored = await hashPassword('correct horse battery staple');
    expect(stored).toMatch(/^scrypt\$N=131072,r=8,p=1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(await verifyPassword('correct horse battery staple', stored)).toEqual({ ok: true, rehash: false });
    expect((await verifyPassword('correct horse battery stapl', stored)).ok).toBe(false);
    // A fresh salt every time: the same password never gives the same hash.
    expect(await hashPassword('correct horse battery staple')).not.toBe(stored);
  });

  it('verifies a hash made with older, weaker parameters and asks for a rehash', async () => {
    const weak = await hashPassword('another long password', { N: 2 ** 10, r: 8, p: 1, keyLength: 32 });
    expect(await verifyPassword('another long password', weak)).toEqual({ ok: true, rehash: true });
  });

  it('refuses malformed or abusive stored parameters instead of hashing with them', async () => {
    const salt = randomBytes(16);
    const hash = randomBytes(32);
    expect(parsePasswordHash(encodePasswordHash({ N: 2 ** 24, r: 8, p: 1, keyLength: 32 }, salt, hash))).toBeNull();
    expect(parsePasswordHash(encodePasswordHash({ N: 1000, r: 8, p: 1, keyLength: 32 }, salt, hash))).toBeNull();
    expect(parsePasswordHash('plain-text')).toBeNull();
    expect((await verifyPassword('x', 'md5$abc')).ok).toBe(false);
    const parsed = parsePasswordHash(encodePasswordHash(SCRYPT_PARAMS, salt, hash));
    expect(parsed && needsRehash(parsed)).toBe(false);
  });

  it('asks for long, non-repetitive passwords that do not contain the username', () => {
    expect(passwordProblems('court', 'marie')).not.toEqual([]);
    expect(passwordProblems('aaaaaaaaaaaaaaaa', 'marie')).not.toEqual([]);
    expect(passwordProblems('marie-2026-portail', 'marie')).not.toEqual([]);
    expect(passwordProblems('une phrase de passe assez longue', 'marie')).toEqual([]);
  });
});

describe('usernames, bearer tokens, redirections', () => {
  it('normalises usernames to one case-insensitive form', () => {
    expect(normaliseUsername('  Marie.Dupont@Akto.FR ')).toBe('marie.dupont@akto.fr');
  });

  it('reads only well-formed bearer headers', () => {
    expect(parseBearer('Bearer abc')).toBe('abc');
    expect(parseBearer('bearer abc')).toBe('abc');
    expect(parseBearer('Basic abc')).toBeNull();
    expect(parseBearer('Bearer')).toBeNull();
    expect(parseBearer(undefined)).toBeNull();
    expect(isApiTokenShape(`emt_${randomBytes(32).toString('base64url')}`)).toBe(true);
    expect(isApiTokenShape('emt_short')).toBe(false);
  });

  it('redirects after sign-in only to portal pages (no open redirect)', () => {
    expect(safeNext('/portal/exports?cours=1')).toBe('/portal/exports?cours=1');
    expect(safeNext('https://evil.example/portal')).toBe('/portal/');
    expect(safeNext('//evil.example/portal')).toBe('/portal/');
    expect(safeNext('/portal//evil.example')).toBe('/portal/');
    expect(safeNext('/portal\\..\\x')).toBe('/portal/');
    expect(safeNext('/lti/launch')).toBe('/portal/');
    expect(safeNext(undefined)).toBe('/portal/');
  });
});

describe('sessions and cookies', () => {
  it('ends a session after 2 h idle or 12 h in all', () => {
    const now = new Date('2026-11-29T12:00:00Z');
    const expiresAt = new Date('2026-11-29T20:00:00Z');
    expect(sessionState({ lastSeenAt: new Date('2026-11-29T11:00:00Z'), expiresAt }, now)).toBe('valid');
    expect(sessionState({ lastSeenAt: new Date('2026-11-29T09:59:00Z'), expiresAt }, now)).toBe('idle_expired');
    expect(sessionState({ lastSeenAt: now, expiresAt: new Date('2026-11-29T12:00:00Z') }, now)).toBe('expired');
  });

  it('sets HttpOnly, SameSite=Lax cookies limited to the portal, Secure and __Secure- in production', () => {
    expect(cookieOptions(true)).toMatchObject({ httpOnly: true, secure: true, sameSite: 'lax', path: '/portal' });
    expect(cookieOptions(false)).toMatchObject({ httpOnly: true, secure: false, sameSite: 'lax' });
    expect(sessionCookieName(true)).toMatch(/^__Secure-/);
  });
});

describe('CSRF tokens', () => {
  const key = randomBytes(32);
  it('accept the token of this binding only', () => {
    const token = csrfToken(key, 'session:abc');
    expect(verifyCsrfToken(key, 'session:abc', token)).toBe(true);
    expect(verifyCsrfToken(key, 'session:abd', token)).toBe(false);
    expect(verifyCsrfToken(randomBytes(32), 'session:abc', token)).toBe(false);
    expect(verifyCsrfToken(key, 'session:abc', undefined)).toBe(false);
    expect(verifyCsrfToken(key, 'session:abc', '')).toBe(false);
    expect(verifyCsrfToken(key, 'session:abc', `${token}x`)).toBe(false);
  });
});

describe('sign-in throttle and scope', () => {
  it('throttles past 5 attempts per account and address, 30 per address (counts include this attempt)', () => {
    expect(loginThrottled({ accountIp: 5, ip: 5, account: 5 })).toBe(false);
    expect(loginThrottled({ accountIp: 6, ip: 6, account: 6 })).toBe(true);
    expect(loginThrottled({ accountIp: 1, ip: 31, account: 1 })).toBe(true);
  });

  it('keeps fund staff inside their fund and refuses another one', () => {
    const staff = { role: 'fund_staff' as const, fundSlug: 'akto' };
    expect(scopedFund(staff, undefined)).toEqual({ ok: true, fund: 'akto' });
    expect(scopedFund(staff, 'akto')).toEqual({ ok: true, fund: 'akto' });
    expect(scopedFund(staff, 'atlas')).toEqual({ ok: false });
    expect(scopedFund({ role: 'operator', fundSlug: null }, 'atlas')).toEqual({ ok: true, fund: 'atlas' });
    expect(scopedFund({ role: 'operator', fundSlug: null }, undefined)).toEqual({ ok: true, fund: null });
  });
});

describe('cookies as sent in production', () => {
  it('are Secure, HttpOnly, SameSite=Lax, limited to /portal and named __Secure-', async () => {
    const Fastify = (await import('fastify')).default;
    const { registerPortalCookies } = await import('../../src/portal/index.js');
    const { setSessionCookie } = await import('../../src/portal/auth.js');
    const { testConfig } = await import('../helpers/app.js');
    const app = Fastify();
    app.decorate('config', { ...testConfig(), nodeEnv: 'production' });
    await registerPortalCookies(app);
    app.get('/portal/t', async (request, reply) => {
      setSessionCookie(request, reply, 'x'.repeat(43));
      return 'ok';
    });
    const res = await app.inject({ method: 'GET', url: '/portal/t' });
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^__Secure-emargement_portal=x{43};/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Path=\/portal/);
    await app.close();
  });
});
