import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessTokenService, SCOPES } from '../../src/lti-services/index.js';
import { FakeOpenEdxServices } from '../fixtures/openedx/services.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { type SeededPlatform, seedPlatform, testToolKey } from './seed.js';

/** The fake's own Open edX quirks: the tool's tests are only as good as these. */

let ctx: TestContext;
let platform: FakeOpenEdxServices;
let p: SeededPlatform;
let token: string;

beforeAll(async () => {
  ctx = await createTestApp();
  platform = new FakeOpenEdxServices();
  await platform.start();
  const key = await testToolKey();
  p = await seedPlatform(ctx.app.db, platform, async () => key.jwks);
  token = await new AccessTokenService({ db: ctx.app.db, toolKey: async () => key.key }).getToken(p.registrationId, [
    SCOPES.score,
  ]);
});
afterAll(async () => {
  await platform.stop();
  await ctx.close();
});

async function postScore(
  lineitem: string,
  body: Record<string, unknown>,
  options: { contentType?: string; bearer?: string } = {},
) {
  return fetch(`${lineitem}/scores`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.bearer ?? token}`,
      'content-type': options.contentType ?? 'application/vnd.ims.lis.v1.score+json',
    },
    body: JSON.stringify(body),
  });
}

const score = (over: Record<string, unknown> = {}) => ({
  userId: 'user-1',
  timestamp: new Date().toISOString(),
  scoreGiven: 1,
  scoreMaximum: 1,
  activityProgress: 'Completed',
  gradingProgress: 'FullyGraded',
  ...over,
});

describe('fake Open edX scores endpoint', () => {
  it('stores a zero score but never publishes it to the gradebook', async () => {
    const lineitem = platform.addLineItem(p.configId, { label: 'Zéro', scoreMaximum: 1 });
    expect((await postScore(lineitem, score({ scoreGiven: 0 }))).status).toBe(201);
    expect(platform.storedScores(lineitem)).toHaveLength(1);
    expect(platform.grade(lineitem, 'user-1')).toBeUndefined();
    expect((await postScore(lineitem, score({ gradingProgress: 'Pending' }))).status).toBe(201);
    expect(platform.grade(lineitem, 'user-1')).toBeUndefined();
    expect((await postScore(lineitem, score())).status).toBe(201);
    expect(platform.grade(lineitem, 'user-1')).toBe(1);
  });

  it('answers 400 to a same-or-older timestamp for the same user, not for another user', async () => {
    const lineitem = platform.addLineItem(p.configId, { label: 'Horodatage', scoreMaximum: 1 });
    const at = new Date().toISOString();
    expect((await postScore(lineitem, score({ timestamp: at }))).status).toBe(201);
    expect((await postScore(lineitem, score({ timestamp: at }))).status).toBe(400);
    expect(
      (await postScore(lineitem, score({ timestamp: new Date(Date.parse(at) - 1000).toISOString() }))).status,
    ).toBe(400);
    expect((await postScore(lineitem, score({ userId: 'user-2', timestamp: at }))).status).toBe(201);
  });

  it('answers 500 to a bad enum value, 415 to another media type, 401 without a valid token', async () => {
    const lineitem = platform.addLineItem(p.configId, { label: 'Erreurs', scoreMaximum: 1 });
    expect((await postScore(lineitem, score({ activityProgress: 'Done' }))).status).toBe(500);
    expect((await postScore(lineitem, score({ gradingProgress: 'Graded' }))).status).toBe(500);
    expect((await postScore(lineitem, score(), { contentType: 'application/json' })).status).toBe(415);
    expect((await postScore(lineitem, score(), { bearer: 'forged' })).status).toBe(401);
    expect(platform.storedScores(lineitem)).toHaveLength(0);
  });

  it('answers 503 during an outage, and refuses connections when asked', async () => {
    const lineitem = platform.addLineItem(p.configId, { label: 'Panne', scoreMaximum: 1 });
    await platform.setOutage('503');
    expect((await postScore(lineitem, score())).status).toBe(503);
    await platform.setOutage('refuse');
    await expect(postScore(lineitem, score())).rejects.toThrow();
    await platform.setOutage('none');
    expect((await postScore(lineitem, score())).status).toBe(201);
  });
});

describe('fake Open edX memberships endpoint', () => {
  it('refuses a token without the NRPS scope (paging: see memberships.test.ts)', async () => {
    platform.setMembers(
      p.configId,
      [1, 2, 3].map((n) => ({ user_id: `u${n}`, roles: ['Learner'] })),
    );
    const withoutScope = await fetch(platform.membershipsUrl(p.configId), {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(withoutScope.status).toBe(403);
  });
});
