import type { FastifyBaseLogger } from 'fastify';
import type { PeriodicTask } from '../common/periodic.js';
import type { Db } from '../db/index.js';
import {
  type AccessTokenService,
  callPlatform,
  type FetchLike,
  PlatformCallError,
  responseExcerpt,
  stoppedError,
} from './access-tokens.js';
import {
  acquireLease,
  coursesDueForMembershipSync,
  findNrpsSource,
  recordSyncFailure,
  recordSyncStart,
  releaseLease,
  replaceMemberships,
} from './membership-repository.js';
import {
  isLearnerMembership,
  MEDIA_TYPES,
  MEMBERSHIP_MAX_PAGES,
  MEMBERSHIP_SYNC_EVERY_MS,
  type MemberInput,
  nextPageUrl,
  parseMembershipPage,
  SCOPES,
} from './rules.js';

export interface MembershipContext {
  db: Db;
  tokens: AccessTokenService;
  log: FastifyBaseLogger;
  worker: string;
  fetch?: FetchLike;
  /** The instance's stop: a listing under way is abandoned (nothing stored, nothing recorded). */
  signal?: AbortSignal;
}

export type SyncResult =
  | { synced: true; members: number; learners: number; pages: number; skipped: number }
  | { synced: false; reason: 'no_nrps' };

/**
 * Lists a course's members through NRPS 2.0 (§2.4 paging by `Link: <…>; rel="next"`) and stores the
 * complete list. Nothing is stored unless every page was read: a half list would mark the members
 * of the missing pages as gone.
 */
export async function syncCourseMemberships(ctx: MembershipContext, courseId: string): Promise<SyncResult> {
  const source = await findNrpsSource(ctx.db, courseId);
  if (!source) return { synced: false, reason: 'no_nrps' };
  await recordSyncStart(ctx.db, source, new Date());
  try {
    const { members, pages, skipped } = await readAllPages(ctx, source.registration_id, source.context_memberships_url);
    await replaceMemberships(ctx.db, { courseId, members, isLearner: (m) => isLearnerMembership(m.roles), pages });
    const learners = members.filter((m) => isLearnerMembership(m.roles)).length;
    ctx.log.info({ courseId, members: members.length, learners, pages, skipped }, 'memberships listed');
    return { synced: true, members: members.length, learners, pages, skipped };
  } catch (error) {
    // A stop is not the platform's failure: the next pass of any instance lists the course again.
    if (error instanceof PlatformCallError && error.kind === 'aborted') throw error;
    const message = error instanceof Error ? error.message : String(error);
    await recordSyncFailure(ctx.db, courseId, message);
    throw error;
  }
}

async function readAllPages(
  ctx: MembershipContext,
  registrationId: string,
  firstUrl: string,
): Promise<{ members: MemberInput[]; pages: number; skipped: number }> {
  const byUser = new Map<string, MemberInput>();
  const visited = new Set<string>();
  let skipped = 0;
  let url: string | null = firstUrl;
  while (url !== null) {
    if (visited.has(url)) throw new PlatformCallError('invalid_response', 'memberships paging loops', false);
    if (visited.size >= MEMBERSHIP_MAX_PAGES) {
      throw new PlatformCallError(
        'invalid_response',
        `memberships have more than ${MEMBERSHIP_MAX_PAGES} pages`,
        false,
      );
    }
    visited.add(url);
    const response = await getPage(ctx, registrationId, url);
    const body = await response.json().catch(() => undefined);
    if (ctx.signal?.aborted) throw stoppedError(url);
    const page = parseMembershipPage(body);
    if (typeof page === 'string') throw new PlatformCallError('invalid_response', page, false);
    skipped += page.invalid;
    for (const m of page.members) byUser.set(m.userId, m);
    const next = nextPageUrl(url, response.headers.get('link'));
    if (next instanceof Error) throw new PlatformCallError('invalid_response', next.message, false);
    url = next;
  }
  return { members: [...byUser.values()], pages: visited.size, skipped };
}

async function getPage(ctx: MembershipContext, registrationId: string, url: string): Promise<Response> {
  const scopes = [SCOPES.contextMembershipReadonly];
  for (let attempt = 0; ; attempt++) {
    const token = await ctx.tokens.getToken(registrationId, scopes);
    const response = await callPlatform(
      ctx.fetch ?? fetch,
      url,
      {
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: MEDIA_TYPES.membershipContainer },
      },
      ctx.signal,
    );
    if (response.ok) return response;
    const excerpt = await responseExcerpt(response);
    if (response.status === 401 && attempt === 0) {
      ctx.tokens.invalidate(registrationId, scopes, token);
      continue;
    }
    throw new PlatformCallError(
      'http',
      `memberships endpoint answered ${response.status}${excerpt ? `: ${excerpt}` : ''}`,
      response.status >= 500 || response.status === 429,
      response.status,
    );
  }
}

export const MEMBERSHIP_LEASE = 'nrps-membership-sync';
export const MEMBERSHIP_LEASE_MS = 15 * 60_000;

/**
 * One scheduled pass: under a database lease, so that with several instances one only lists the due
 * courses; a course that fails is logged and tried again at the next pass.
 */
export async function runScheduledMembershipSync(
  ctx: MembershipContext,
  options: { now?: Date; limit?: number } = {},
): Promise<{ ran: boolean; synced: number; failed: number }> {
  const held = await acquireLease(ctx.db, {
    name: MEMBERSHIP_LEASE,
    holder: ctx.worker,
    ttlMs: MEMBERSHIP_LEASE_MS,
    now: options.now,
  });
  if (!held) return { ran: false, synced: 0, failed: 0 };
  let synced = 0;
  let failed = 0;
  try {
    const due = await coursesDueForMembershipSync(ctx.db, {
      everyMs: MEMBERSHIP_SYNC_EVERY_MS,
      limit: options.limit ?? 50,
      now: options.now,
    });
    for (const courseId of due) {
      if (ctx.signal?.aborted) break;
      try {
        const r = await syncCourseMemberships(ctx, courseId);
        if (r.synced) synced++;
      } catch (error) {
        if (error instanceof PlatformCallError && error.kind === 'aborted') break;
        failed++;
        ctx.log.warn({ courseId, err: error }, 'scheduled memberships listing failed');
      }
    }
  } finally {
    await releaseLease(ctx.db, MEMBERSHIP_LEASE, ctx.worker);
  }
  return { ran: true, synced, failed };
}

/** How often the memberships schedule runs. */
export const MEMBERSHIP_SCHEDULE_MS = 10 * 60_000;

/** The memberships schedule, for `runPeriodically`: one scheduled pass every `MEMBERSHIP_SCHEDULE_MS`. */
export function membershipTask(ctx: MembershipContext): PeriodicTask {
  return { name: 'memberships schedule', everyMs: MEMBERSHIP_SCHEDULE_MS, task: () => runScheduledMembershipSync(ctx) };
}
