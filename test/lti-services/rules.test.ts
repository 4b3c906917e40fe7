import { describe, expect, it } from 'vitest';
import { BACKGROUND_STOP_WAIT_MS, GRACEFUL_STOP_MS } from '../../src/common/background.js';
import { oauthErrorCode, PLATFORM_TIMEOUT_MS } from '../../src/lti-services/access-tokens.js';
import {
  classifyScoreResponse,
  clientAssertionClaims,
  completionScorePayload,
  deepLinkingResponseClaims,
  invalidCompletionScore,
  isCourseTeam,
  isLearnerMembership,
  isPlatformUnreachable,
  KEYSET_WARMUP_MS,
  keysetMayBeUnreachable,
  nextPageUrl,
  parseLinkHeader,
  parseMembershipPage,
  parseSelection,
  parseTokenResponse,
  RETRY_BASE_MS,
  RETRY_CAP_MS,
  RETRY_GIVE_UP_MS,
  resourceLinkItem,
  retryAfterMs,
  retryDelayMs,
  SCOPES,
  scoresUrl,
  shouldGiveUp,
  tokenCacheKey,
  tokenUsableUntil,
} from '../../src/lti-services/rules.js';

describe('client assertion and token rules', () => {
  it('builds iss = sub = client_id, aud = token URL, a short life and the given jti', () => {
    const c = clientAssertionClaims({
      clientId: 'cid',
      tokenUrl: 'https://lms/token/1',
      nowSeconds: 1000.7,
      jti: 'j1',
    });
    expect(c).toEqual({ iss: 'cid', sub: 'cid', aud: 'https://lms/token/1', iat: 1000, exp: 1300, jti: 'j1' });
  });

  it('keys the cache on the scope set, not its order', () => {
    expect(tokenCacheKey('r', [SCOPES.score, SCOPES.lineitem])).toBe(
      tokenCacheKey('r', [SCOPES.lineitem, SCOPES.score, SCOPES.score]),
    );
    expect(tokenCacheKey('r', [SCOPES.score])).not.toBe(tokenCacheKey('r2', [SCOPES.score]));
  });

  it('stops using a token a minute before it expires, or halfway through a short one', () => {
    expect(tokenUsableUntil(0, 3600)).toBe(3540_000);
    expect(tokenUsableUntil(0, 60)).toBe(30_000);
  });

  it('reads a token response and refuses one missing a requested scope', () => {
    expect(
      parseTokenResponse({ access_token: 't', token_type: 'Bearer', expires_in: 3600, scope: SCOPES.score }, [
        SCOPES.score,
      ]),
    ).toEqual({
      accessToken: 't',
      expiresIn: 3600,
      scopes: [SCOPES.score],
    });
    expect(parseTokenResponse({ access_token: 't', token_type: 'bearer' }, [SCOPES.score])).toMatchObject({
      expiresIn: 3600,
    });
    expect(
      parseTokenResponse({ access_token: 't', token_type: 'bearer', scope: SCOPES.lineitem }, [SCOPES.score]),
    ).toMatch(/did not grant/);
    expect(parseTokenResponse({ token_type: 'bearer' }, [SCOPES.score])).toMatch(/access_token/);
    expect(parseTokenResponse({ access_token: 't', token_type: 'mac' }, [SCOPES.score])).toMatch(/bearer/);
    expect(parseTokenResponse('nope', [SCOPES.score])).toMatch(/JSON object/);
  });
});

describe('score rules', () => {
  it('builds a Completed / FullyGraded payload with an ISO timestamp', () => {
    expect(completionScorePayload({ userId: 'u', timestamp: new Date(0), scoreGiven: 1, scoreMaximum: 1 })).toEqual({
      userId: 'u',
      timestamp: '1970-01-01T00:00:00.000Z',
      scoreGiven: 1,
      scoreMaximum: 1,
      activityProgress: 'Completed',
      gradingProgress: 'FullyGraded',
    });
  });

  it('refuses a zero score (Open edX never publishes it) and impossible ones', () => {
    expect(invalidCompletionScore(1, 1)).toBeNull();
    expect(invalidCompletionScore(0, 1)).toMatch(/greater than 0/);
    expect(invalidCompletionScore(2, 1)).toMatch(/exceed/);
    expect(invalidCompletionScore(1, 0)).toMatch(/positive/);
    expect(invalidCompletionScore(Number.NaN, 1)).not.toBeNull();
  });

  it('appends /scores to the line item path, before its query', () => {
    expect(scoresUrl('https://lms/api/lti-ags/7')).toBe('https://lms/api/lti-ags/7/scores');
    expect(scoresUrl('https://lms/api/lti-ags/7/?type=x')).toBe('https://lms/api/lti-ags/7/scores?type=x');
  });

  it('classifies answers: refresh on 401, retry on transient ones, drop other 4xx', () => {
    expect(classifyScoreResponse(200)).toBe('sent');
    expect(classifyScoreResponse(201)).toBe('sent');
    expect(classifyScoreResponse(204)).toBe('sent');
    expect(classifyScoreResponse(401)).toBe('refresh_token');
    for (const s of [408, 429, 500, 502, 503]) expect(classifyScoreResponse(s)).toBe('retry');
    for (const s of [400, 403, 404, 409, 415, 422]) expect(classifyScoreResponse(s)).toBe('drop');
  });

  it('backs off exponentially with jitter, within a cap', () => {
    expect(retryDelayMs(1, 0)).toBe(RETRY_BASE_MS / 2);
    expect(retryDelayMs(1, 1)).toBe(RETRY_BASE_MS);
    expect(retryDelayMs(3, 1)).toBe(RETRY_BASE_MS * 4);
    expect(retryDelayMs(50, 1)).toBe(RETRY_CAP_MS);
    expect(retryDelayMs(50, 0)).toBe(RETRY_CAP_MS / 2);
    for (let a = 1; a < 30; a++) expect(retryDelayMs(a + 1, 1)).toBeGreaterThanOrEqual(retryDelayMs(a, 1));
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT')).toBeNull();
    expect(retryAfterMs('999999')).toBe(RETRY_CAP_MS);
  });
});

describe('membership rules', () => {
  it('parses Link headers with several relations', () => {
    expect(parseLinkHeader('<https://a/m?p=2>; rel="next", <https://a/m?p=9>; rel="last"')).toEqual({
      next: 'https://a/m?p=2',
      last: 'https://a/m?p=9',
    });
    expect(parseLinkHeader('<https://a/d>; rel=differences')).toEqual({ differences: 'https://a/d' });
    expect(parseLinkHeader(null)).toEqual({});
  });

  it('follows next pages on the same origin only', () => {
    expect(nextPageUrl('https://lms/m', '</m?page=2>; rel="next"')).toBe('https://lms/m?page=2');
    expect(nextPageUrl('https://lms/m', null)).toBeNull();
    expect(nextPageUrl('https://lms/m', '<https://evil/m>; rel="next"')).toBeInstanceOf(Error);
    expect(nextPageUrl('https://lms/m', '<http://lms/m?page=2>; rel="next"')).toBeInstanceOf(Error);
  });

  it('tells learners from the course team, both vocabularies', () => {
    const LIS = 'http://purl.imsglobal.org/vocab/lis/v2/';
    expect(isLearnerMembership([`${LIS}membership#Learner`])).toBe(true);
    expect(isLearnerMembership(['Learner'])).toBe(true);
    expect(isLearnerMembership([`${LIS}institution/person#Student`])).toBe(true);
    expect(isLearnerMembership([`${LIS}membership#Instructor`])).toBe(false);
    expect(isLearnerMembership([`${LIS}membership#Learner`, `${LIS}membership#Administrator`])).toBe(false);
    expect(isLearnerMembership([`${LIS}membership#Learner`, `${LIS}membership/Instructor#TeachingAssistant`])).toBe(
      true,
    );
    expect(isLearnerMembership([])).toBe(false);
  });

  it('reads members, defaulting status to Active and counting unreadable entries', () => {
    const page = parseMembershipPage({
      members: [
        { user_id: 'a', roles: ['Learner'] },
        { user_id: 'b', status: 'Inactive', roles: [], email: ' x@y ' },
        { roles: [] },
        3,
      ],
    });
    expect(page).toEqual({
      members: [
        {
          userId: 'a',
          status: 'Active',
          roles: ['Learner'],
          name: null,
          givenName: null,
          familyName: null,
          email: null,
        },
        { userId: 'b', status: 'Inactive', roles: [], name: null, givenName: null, familyName: null, email: 'x@y' },
      ],
      invalid: 2,
    });
    expect(parseMembershipPage({})).toMatch(/members array/);
  });
});

describe('deep linking rules', () => {
  it('accepts only known selection shapes', () => {
    expect(parseSelection('module:akto-visibilite')).toEqual({ kind: 'module', id: 'akto-visibilite' });
    expect(parseSelection('theme:visibilite')).toEqual({ kind: 'theme', slug: 'visibilite', track: null });
    expect(parseSelection('theme:visibilite@transition-numerique')).toEqual({
      kind: 'theme',
      slug: 'visibilite',
      track: 'transition-numerique',
    });
    expect(parseSelection('parcours')).toEqual({ kind: 'parcours', track: null });
    expect(parseSelection('parcours@transition-numerique')).toEqual({
      kind: 'parcours',
      track: 'transition-numerique',
    });
    for (const bad of [
      'parcours:',
      'parcours@',
      'module:',
      'theme:Visibilite',
      'fund:akto',
      'module:a b',
      'module:../x',
      'module:a@b',
      'theme:a@',
    ]) {
      expect(parseSelection(bad)).toBeNull();
    }
  });

  it('makes an ltiResourceLink with custom and a lineItem', () => {
    expect(
      resourceLinkItem({
        selection: { kind: 'theme', slug: 'visibilite', track: null },
        title: 'Visibilité',
        launchUrl: 'https://tool/lti/launch',
      }),
    ).toEqual({
      type: 'ltiResourceLink',
      title: 'Visibilité',
      url: 'https://tool/lti/launch',
      custom: { theme: 'visibilite' },
      lineItem: { label: 'Visibilité', scoreMaximum: 1, resourceId: 'theme:visibilite', tag: 'completion' },
    });
  });

  it('names the track of a theme only when asked to', () => {
    const item = resourceLinkItem({
      selection: { kind: 'theme', slug: 'visibilite', track: 'autre-parcours' },
      title: 'Visibilité',
      launchUrl: 'https://tool/lti/launch',
    });
    expect(item.custom).toEqual({ theme: 'visibilite', track: 'autre-parcours' });
    expect(item.lineItem.resourceId).toBe('theme:visibilite@autre-parcours');
    const mod = resourceLinkItem({ selection: { kind: 'module', id: 'akto-visibilite' }, title: 'M', launchUrl: 'u' });
    expect(mod.custom).toEqual({ module: 'akto-visibilite' });
    const parcours = resourceLinkItem({ selection: { kind: 'parcours', track: null }, title: 'P', launchUrl: 'u' });
    expect(parcours.custom).toEqual({ view: 'parcours' });
    expect(parcours.lineItem.resourceId).toBe('parcours');
  });

  it('signs as the client for the platform, and echoes data only when sent', () => {
    const base = {
      clientId: 'cid',
      platformIssuer: 'https://lms',
      deploymentId: '1',
      nowSeconds: 10,
      nonce: 'n',
      items: [],
    };
    const claims = deepLinkingResponseClaims(base);
    expect(claims).toMatchObject({
      iss: 'cid',
      aud: 'https://lms',
      iat: 10,
      exp: 610,
      'https://purl.imsglobal.org/spec/lti/claim/message_type': 'LtiDeepLinkingResponse',
      'https://purl.imsglobal.org/spec/lti/claim/version': '1.3.0',
      'https://purl.imsglobal.org/spec/lti/claim/deployment_id': '1',
    });
    expect(claims).not.toHaveProperty(['https://purl.imsglobal.org/spec/lti-dl/claim/data']);
    expect(deepLinkingResponseClaims({ ...base, data: 'opaque' })).toHaveProperty(
      ['https://purl.imsglobal.org/spec/lti-dl/claim/data'],
      'opaque',
    );
  });

  it('lets only the course team and staff place content', () => {
    expect(isCourseTeam('course_team')).toBe(true);
    expect(isCourseTeam('staff')).toBe(true);
    expect(isCourseTeam('learner')).toBe(false);
  });
});

describe('outbox lifecycle rules', () => {
  it('bounds one platform request below the graceful stop, with room to release claims and close', () => {
    expect(PLATFORM_TIMEOUT_MS).toBeLessThan(GRACEFUL_STOP_MS);
    expect(GRACEFUL_STOP_MS - PLATFORM_TIMEOUT_MS).toBeGreaterThanOrEqual(2_000);
    expect(BACKGROUND_STOP_WAIT_MS).toBeLessThan(GRACEFUL_STOP_MS);
  });

  it('reads the RFC 6749 error code of a refused token request, and nothing else', () => {
    expect(oauthErrorCode('{"error": "invalid_client"}')).toBe('invalid_client');
    expect(oauthErrorCode('{"error": "invalid_scope", "error_description": "x"}')).toBe('invalid_scope');
    expect(oauthErrorCode('<html>Bad Request</html>')).toBeNull();
    expect(oauthErrorCode('{"error": 400}')).toBeNull();
    expect(oauthErrorCode('{"detail": "invalid_client"}')).toBeNull();
  });

  it('does not count invalid_client only while our keyset may have been unreachable', () => {
    const base = { oauthError: 'invalid_client', keysetServed: false, listeningForMs: 1_000 };
    expect(keysetMayBeUnreachable(base)).toBe(true);
    // Nobody watched the keyset route: the time window alone decides.
    expect(keysetMayBeUnreachable({ ...base, keysetServed: null })).toBe(true);
    // The platform read our keyset during the request and still refused: a real refusal.
    expect(keysetMayBeUnreachable({ ...base, keysetServed: true })).toBe(false);
    // Long after start, or with no server listening at all (nothing to reach), it counts.
    expect(keysetMayBeUnreachable({ ...base, listeningForMs: KEYSET_WARMUP_MS })).toBe(false);
    expect(keysetMayBeUnreachable({ ...base, listeningForMs: null })).toBe(false);
    expect(keysetMayBeUnreachable({ ...base, listeningForMs: -5 })).toBe(false);
    // Other refusals are about the request, not about our keys.
    for (const oauthError of ['invalid_scope', 'invalid_request', 'unsupported_grant_type', null]) {
      expect(keysetMayBeUnreachable({ ...base, oauthError })).toBe(false);
    }
  });

  it('calls a platform unreachable on a connection failure or a gateway error only', () => {
    expect(isPlatformUnreachable('network', null)).toBe(true);
    for (const status of [502, 503, 504]) expect(isPlatformUnreachable('http', status)).toBe(true);
    for (const status of [400, 401, 404, 429, 500]) expect(isPlatformUnreachable('http', status)).toBe(false);
    expect(isPlatformUnreachable('invalid_response', 200)).toBe(false);
  });

  it('gives up 7 days after the retry window began, not before', () => {
    const since = new Date('2026-03-01T08:00:00Z');
    expect(shouldGiveUp(since, new Date(since.getTime() + RETRY_GIVE_UP_MS))).toBe(false);
    expect(shouldGiveUp(since, new Date(since.getTime() + RETRY_GIVE_UP_MS + 1))).toBe(true);
  });
});
