import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AccessTokenService,
  listMemberships,
  type MembershipContext,
  runScheduledMembershipSync,
  syncCourseMemberships,
} from '../../src/lti-services/index.js';
import { FakeOpenEdxServices, type Member } from '../fixtures/openedx/services.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { capturingLogger, type SeededPlatform, seedLaunch, seedPlatform, testToolKey } from './seed.js';

const LIS = 'http://purl.imsglobal.org/vocab/lis/v2/';
const learner = (n: number): Member => ({
  user_id: `learner-${n}`,
  roles: [`${LIS}membership#Learner`],
  name: `Apprenant ${n}`,
  email: `apprenant${n}@example.org`,
});
const instructor: Member = {
  user_id: 'instructor-1',
  roles: [`${LIS}membership#Instructor`, `${LIS}membership#Administrator`],
};
const ta: Member = {
  user_id: 'ta-1',
  roles: [`${LIS}membership#Learner`, `${LIS}membership/Instructor#TeachingAssistant`],
};

let ctx: TestContext;
let platform: FakeOpenEdxServices;
let key: Awaited<ReturnType<typeof testToolKey>>;
let tool: MembershipContext;

beforeAll(async () => {
  ctx = await createTestApp();
  platform = new FakeOpenEdxServices();
  await platform.start();
  key = await testToolKey();
});
afterAll(async () => {
  await platform.stop();
  await ctx.close();
});
beforeEach(() => {
  platform.memberPageSize = 2;
  platform.nextLinkOverride = null;
  tool = {
    db: ctx.app.db,
    tokens: new AccessTokenService({ db: ctx.app.db, toolKey: async () => key.key }),
    log: capturingLogger().log,
    worker: 'tool-a',
  };
});

/** A course whose launches carried the NRPS claim, as Open edX sends it when NRPS is enabled. */
async function nrpsCourse(members: Member[]): Promise<SeededPlatform> {
  const p = await seedPlatform(ctx.app.db, platform, async () => key.jwks);
  platform.setMembers(p.configId, members);
  await seedLaunch(ctx.app.db, p, { resourceLinkId: null, nrps: platform.nrpsClaim(p.configId) });
  return p;
}

describe('NRPS memberships', () => {
  it('lists every member across Link-header pages and tells learners from the course team', async () => {
    const p = await nrpsCourse([learner(1), instructor, learner(2), ta, learner(3)]);
    const result = await syncCourseMemberships(tool, p.courseId);
    expect(result).toEqual({ synced: true, members: 5, learners: 4, pages: 3, skipped: 0 });
    expect(platform.memberRequests.filter((r) => r.configId === p.configId).map((r) => r.page)).toEqual([1, 2, 3]);
    const stored = await listMemberships(ctx.app.db, p.courseId);
    expect(stored.map((m) => m.user_id).sort()).toEqual(
      ['instructor-1', 'learner-1', 'learner-2', 'learner-3', 'ta-1'].sort(),
    );
    expect(stored.find((m) => m.user_id === 'instructor-1')?.is_learner).toBe(false);
    expect(stored.find((m) => m.user_id === 'ta-1')?.is_learner).toBe(true);
    expect(stored.find((m) => m.user_id === 'learner-2')).toMatchObject({ name: 'Apprenant 2', learner_id: null });
  });

  it('links a member to the learner who launched, and marks who left at the next complete list', async () => {
    const p = await nrpsCourse([learner(1), learner(2), learner(3)]);
    const launched = await seedLaunch(ctx.app.db, p, { resourceLinkId: null, sub: 'learner-1' });
    await syncCourseMemberships(tool, p.courseId);
    platform.setMembers(p.configId, [learner(1), learner(3)]);
    await syncCourseMemberships(tool, p.courseId);
    const stored = await listMemberships(ctx.app.db, p.courseId);
    expect(stored.find((m) => m.user_id === 'learner-1')).toMatchObject({
      learner_id: launched.learnerId,
      removed_at: null,
    });
    expect(stored.find((m) => m.user_id === 'learner-2')?.removed_at).toBeInstanceOf(Date);
  });

  it('refuses a next-page link to another origin (the bearer token would leak) and keeps the last list', async () => {
    const p = await nrpsCourse([learner(1), learner(2), learner(3)]);
    await syncCourseMemberships(tool, p.courseId);
    platform.nextLinkOverride = 'https://attacker.example/steal';
    await expect(syncCourseMemberships(tool, p.courseId)).rejects.toThrow(/leaves the platform origin/);
    const stored = await listMemberships(ctx.app.db, p.courseId);
    expect(stored.filter((m) => m.removed_at === null)).toHaveLength(3);
    const sync = await ctx.app.db
      .selectFrom('lti_membership_syncs')
      .selectAll()
      .where('course_id', '=', p.courseId)
      .executeTakeFirstOrThrow();
    expect(sync.last_error).toMatch(/origin/);
  });

  it('stores nothing from a list cut short by an outage', async () => {
    const p = await nrpsCourse([learner(1), learner(2), learner(3)]);
    await platform.setOutage('503');
    await expect(syncCourseMemberships(tool, p.courseId)).rejects.toThrow(/503/);
    await platform.setOutage('none');
    expect(await listMemberships(ctx.app.db, p.courseId)).toHaveLength(0);
  });

  it('says so for a course launched without NRPS', async () => {
    const p = await seedPlatform(ctx.app.db, platform, async () => key.jwks);
    await seedLaunch(ctx.app.db, p, { resourceLinkId: null });
    expect(await syncCourseMemberships(tool, p.courseId)).toEqual({ synced: false, reason: 'no_nrps' });
  });

  it('reuses its token across pages and syncs, separately from the score token', async () => {
    const p = await nrpsCourse([learner(1), learner(2), learner(3), learner(4), learner(5)]);
    const before = platform.tokenRequests.length;
    await syncCourseMemberships(tool, p.courseId);
    await syncCourseMemberships(tool, p.courseId);
    const requests = platform.tokenRequests.slice(before);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.scope).toBe('https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly');
  });

  it('refreshes a revoked token once and carries on', async () => {
    const p = await nrpsCourse([learner(1), learner(2), learner(3)]);
    await syncCourseMemberships(tool, p.courseId);
    platform.revokeTokens();
    const result = await syncCourseMemberships(tool, p.courseId);
    expect(result).toMatchObject({ synced: true, members: 3 });
  });
});

describe('memberships schedule', () => {
  it('lists due courses under a lease: a second instance does not run at the same time', async () => {
    const p = await nrpsCourse([learner(1), learner(2), learner(3)]);
    const other: MembershipContext = { ...tool, worker: 'tool-b' };
    // tool-b holds the lease (it is running): tool-a's pass does nothing.
    await ctx.app.db
      .insertInto('lti_service_leases')
      .values({ name: 'nrps-membership-sync', holder: other.worker, expires_at: new Date(Date.now() + 60_000) })
      .execute();
    expect(await runScheduledMembershipSync(tool)).toEqual({ ran: false, synced: 0, failed: 0 });
    // Once the lease has expired (tool-b died), tool-a takes over.
    const later = new Date(Date.now() + 61_000);
    const run = await runScheduledMembershipSync(tool, { now: later });
    expect(run.ran).toBe(true);
    expect(run.synced).toBeGreaterThanOrEqual(1);
    expect((await listMemberships(ctx.app.db, p.courseId)).length).toBe(3);
    // Just listed: not due again at the next pass.
    const requests = platform.memberRequests.length;
    await runScheduledMembershipSync(tool, { now: later });
    expect(platform.memberRequests.length).toBe(requests);
    // Due again once the period has passed.
    await runScheduledMembershipSync(tool, { now: new Date(later.getTime() + 7 * 3600_000) });
    expect(platform.memberRequests.length).toBeGreaterThan(requests);
  });
});
