import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkAudience,
  checkExp,
  checkIat,
  isAllowedAlgorithm,
  isKeyPublished,
  JWKS_MAX_AGE_MS,
  JWKS_REFETCH_INTERVAL_MS,
  jwksFetchDecision,
  mapRoles,
  normaliseCustom,
  openEdxRegistration,
  parseRegistrationsFile,
  pointsToTool,
  RETIRED_KEY_GRACE_MS,
  toolUrls,
} from '../../src/lti/rules.js';
import { checkStateCookie, randomToken, stateCookieHeader } from '../../src/lti/state.js';
import { type OpenEdxRole, openEdxRoles, ROLE } from '../fixtures/openedx/index.js';

const LIS = 'http://purl.imsglobal.org/vocab/lis/v2/';

describe('mapRoles', () => {
  const table: [OpenEdxRole, 'v11' | 'v9', string][] = [
    ['student', 'v11', 'learner'],
    ['guest', 'v11', 'learner'],
    ['community_ta', 'v11', 'learner'],
    ['staff', 'v11', 'course_team'],
    ['instructor', 'v11', 'course_team'],
    ['global_staff', 'v11', 'staff'],
    ['student', 'v9', 'learner'],
    ['instructor', 'v9', 'course_team'],
    ['staff', 'v9', 'staff'],
    ['global_staff', 'v9', 'staff'],
  ];
  for (const [role, version, expected] of table) {
    it(`Open edX ${version} ${role} → ${expected}, whatever the order`, () => {
      fc.assert(
        fc.property(fc.infiniteStream(fc.double({ min: 0, max: 0.999, noNaN: true })), (stream) => {
          const it = stream[Symbol.iterator]();
          const roles = openEdxRoles(role, version, () => it.next().value as number);
          expect(mapRoles(roles)).toBe(expected);
        }),
        { numRuns: 50 },
      );
    });
  }

  it('knows the spec short forms and sub-roles, and keeps a TA a learner', () => {
    expect(mapRoles(['Instructor'])).toBe('course_team');
    expect(mapRoles(['Learner'])).toBe('learner');
    expect(mapRoles([`${LIS}membership/Instructor#Lecturer`])).toBe('course_team');
    expect(mapRoles([ROLE.teachingAssistant])).toBe('learner');
    expect(mapRoles([`${LIS}system/person#SysAdmin`])).toBe('staff');
    expect(mapRoles([])).toBe('learner');
    expect(mapRoles(['urn:something:else'])).toBe('learner');
    // A context learner who is faculty elsewhere in the institution is a learner here.
    expect(mapRoles([ROLE.learner, ROLE.institutionFaculty])).toBe('learner');
  });
});

describe('algorithms, audience, time', () => {
  it('allows RS*/PS* only', () => {
    for (const alg of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])
      expect(isAllowedAlgorithm(alg)).toBe(true);
    for (const alg of ['none', 'HS256', 'HS512', 'ES256', 'EdDSA', '', undefined, 'rs256'])
      expect(isAllowedAlgorithm(alg)).toBe(false);
  });

  it('checks aud as a string or an array, and azp', () => {
    expect(checkAudience('c', 'c', 'c')).toEqual({ ok: true });
    expect(checkAudience('c', undefined, 'c')).toEqual({ ok: true });
    expect(checkAudience(['c'], undefined, 'c')).toEqual({ ok: true });
    expect(checkAudience(['c', 'd'], 'c', 'c')).toEqual({ ok: true });
    expect(checkAudience(['c', 'd'], undefined, 'c')).toMatchObject({ ok: false, check: 'azp' });
    expect(checkAudience('c', 'd', 'c')).toMatchObject({ ok: false, check: 'azp' });
    expect(checkAudience('d', 'd', 'c')).toMatchObject({ ok: false, check: 'aud' });
    expect(checkAudience([], undefined, 'c')).toMatchObject({ ok: false, check: 'aud' });
    expect(checkAudience([1], undefined, 'c')).toMatchObject({ ok: false, check: 'aud' });
    expect(checkAudience(undefined, undefined, 'c')).toMatchObject({ ok: false, check: 'aud' });
  });

  it('allows 60 s of clock skew on exp and iat, not more', () => {
    expect(checkExp(1000, 1060).ok).toBe(true);
    expect(checkExp(1000, 1061).ok).toBe(false);
    expect(checkExp('1000', 0).ok).toBe(false);
    expect(checkIat(1060, 1000).ok).toBe(true);
    expect(checkIat(1061, 1000).ok).toBe(false);
    expect(checkIat(undefined, 1000).ok).toBe(false);
  });
});

describe('target_link_uri', () => {
  it('must be on our origin, under PUBLIC_URL', () => {
    expect(pointsToTool('https://t.example/lti/launch', 'https://t.example')).toBe(true);
    expect(pointsToTool('https://t.example/app/lti/launch', 'https://t.example/app')).toBe(true);
    expect(pointsToTool('https://t.example/application', 'https://t.example/app')).toBe(false);
    expect(pointsToTool('https://t.example.evil.org/lti/launch', 'https://t.example')).toBe(false);
    expect(pointsToTool('http://t.example/lti/launch', 'https://t.example')).toBe(false);
    expect(pointsToTool('https://user:pw@t.example/lti/launch', 'https://t.example')).toBe(false);
    expect(pointsToTool('not a url', 'https://t.example')).toBe(false);
  });
});

describe('registrations', () => {
  const good = openEdxRegistration('https://lms.fun-mooc.fr/', 'abc', 'FUN');
  it('derives the Open edX URLs from the LMS root and client id', () => {
    expect(good).toEqual({
      name: 'FUN',
      issuer: 'https://lms.fun-mooc.fr',
      clientId: 'abc',
      deploymentIds: ['1'],
      authLoginUrl: 'https://lms.fun-mooc.fr/api/lti_consumer/v1/launch/',
      accessTokenUrl: 'https://lms.fun-mooc.fr/api/lti_consumer/v1/token/abc',
      jwksUrl: 'https://lms.fun-mooc.fr/api/lti_consumer/v1/public_keysets/abc',
    });
  });
  it('accepts an empty file and several client ids of one issuer', () => {
    expect(parseRegistrationsFile([])).toEqual([]);
    expect(parseRegistrationsFile([good, { ...good, clientId: 'def' }])).toHaveLength(2);
  });
  it('the shipped files parse: an empty registrations.json and the example', () => {
    expect(parseRegistrationsFile(JSON.parse(readFileSync('lti-config/registrations.json', 'utf8')))).toEqual([]);
    const example = parseRegistrationsFile(JSON.parse(readFileSync('lti-config/registrations.example.json', 'utf8')), {
      requireHttps: true,
    });
    expect(example[0]).toEqual(
      openEdxRegistration('https://lms.fun-mooc.fr', example[0]?.clientId as string, example[0]?.name as string),
    );
  });
  it('names the entry and field of a problem', () => {
    expect(() => parseRegistrationsFile([good, { ...good, clientId: 'x', authLoginUrl: 'ftp://x' }])).toThrow(
      'entry 2 ("FUN"): authLoginUrl must be an http(s) URL (got "ftp://x")',
    );
    expect(() => parseRegistrationsFile([null])).toThrow('entry 1: (entry) must be an object');
    expect(() => parseRegistrationsFile([good], { requireHttps: true })).not.toThrow();
  });
});

describe('small rules', () => {
  it('custom claim values become strings', () => {
    expect(normaliseCustom({ a: 'x', b: 2, c: true, d: { e: 1 }, f: null })).toEqual({
      a: 'x',
      b: '2',
      c: 'true',
      d: '{"e":1}',
    });
    expect(normaliseCustom(undefined)).toEqual({});
    expect(normaliseCustom(['a'])).toBeNull();
    expect(normaliseCustom('a=b')).toBeNull();
  });

  it('retired keys stay published for the grace period', () => {
    const now = new Date('2026-01-10T00:00:00Z');
    expect(isKeyPublished({ status: 'current', retiredAt: null }, now)).toBe(true);
    expect(
      isKeyPublished({ status: 'retired', retiredAt: new Date(now.getTime() - RETIRED_KEY_GRACE_MS + 1000) }, now),
    ).toBe(true);
    expect(
      isKeyPublished({ status: 'retired', retiredAt: new Date(now.getTime() - RETIRED_KEY_GRACE_MS - 1000) }, now),
    ).toBe(false);
  });

  it('JWKS fetch decision: cache, refetch on unknown kid at most once a minute, refresh stale keys', () => {
    expect(jwksFetchDecision(undefined, false, 0)).toBe('fetch');
    const c = { fetchedAt: 1000, lastAttemptAt: 1000 };
    expect(jwksFetchDecision(c, true, 2000)).toBe('use_cache');
    expect(jwksFetchDecision(c, false, 2000)).toBe('refuse');
    expect(jwksFetchDecision(c, false, 1000 + JWKS_REFETCH_INTERVAL_MS)).toBe('fetch');
    expect(jwksFetchDecision(c, true, 1001 + JWKS_MAX_AGE_MS)).toBe('fetch');
    expect(
      jwksFetchDecision({ fetchedAt: 1000, lastAttemptAt: JWKS_MAX_AGE_MS + 1000 }, true, JWKS_MAX_AGE_MS + 2000),
    ).toBe('use_cache');
  });

  it('state cookie: passes when present, skipped when the browser sends none, fails on another login only', () => {
    expect(checkStateCookie(undefined, 'j1')).toEqual({ outcome: 'skipped' });
    expect(checkStateCookie('other=1', 'j1')).toEqual({ outcome: 'skipped' });
    expect(checkStateCookie('lti_state_j0=1; lti_state_j1=1', 'j1')).toEqual({ outcome: 'passed' });
    expect(checkStateCookie('lti_state_j0=1', 'j1')).toMatchObject({ outcome: 'failed' });
  });

  it('state cookie attributes: cross-site, partitioned, scoped to the LTI routes under PUBLIC_URL', () => {
    expect(stateCookieHeader('j1', 'https://t.example')).toBe(
      'lti_state_j1=1; Max-Age=600; Path=/lti; HttpOnly; Secure; SameSite=None; Partitioned',
    );
    expect(stateCookieHeader('j1', 'https://t.example/emargement/', 0)).toBe(
      'lti_state_j1=; Max-Age=0; Path=/emargement/lti; HttpOnly; Secure; SameSite=None; Partitioned',
    );
  });

  it('random tokens: the asked length, never repeated across pool refills, sizes outside the pool refused', () => {
    const seen = new Set<string>();
    // 3 000 logins' worth (nonce + state id) spans dozens of pool refills.
    for (let i = 0; i < 3000; i++) {
      for (const bytes of [24, 16]) {
        const token = randomToken(bytes);
        expect(Buffer.from(token, 'base64url')).toHaveLength(bytes);
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
        seen.add(token);
      }
    }
    expect(seen.size).toBe(6000);
    expect(randomToken(2048)).toHaveLength(2731);
    for (const bad of [0, -1, 1.5, 2049]) expect(() => randomToken(bad)).toThrow(RangeError);
  });

  it('pointsToTool: the same answer for a PUBLIC_URL seen before (parsed once) and for an unparsable one', () => {
    for (let i = 0; i < 2; i++) {
      expect(pointsToTool('https://t.example/app/x', 'https://t.example/app/')).toBe(true);
      expect(pointsToTool('https://t.example/apps', 'https://t.example/app/')).toBe(false);
      expect(pointsToTool('https://t.example/app', 'not a url')).toBe(false);
    }
  });

  it('tool URLs for Studio', () => {
    expect(toolUrls('https://e.example/')).toEqual({
      launchUrl: 'https://e.example/lti/launch',
      loginUrl: 'https://e.example/lti/login',
      deepLinkingUrl: 'https://e.example/lti/deep-linking',
      keysetUrl: 'https://e.example/.well-known/jwks.json',
      redirectUris: ['https://e.example/lti/launch', 'https://e.example/lti/deep-linking'],
    });
  });
});
