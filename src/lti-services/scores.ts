import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import { type PeriodicRun, type PeriodicTask, periodicRun } from '../common/periodic.js';
import type { Db } from '../db/index.js';
import { scoreDeliveries } from '../metrics/index.js';
import {
  type AccessTokenService,
  callPlatform,
  type FetchLike,
  PlatformCallError,
  responseExcerpt,
} from './access-tokens.js';
import {
  claimDueScores,
  findLaunchForScore,
  findRegistrations,
  finishAttempt,
  hasNewerPendingScore,
  insertScore,
  nextScoreTimestamp,
  type OutboxRow,
  platformsAwaited,
  type RegistrationRow,
  releaseAwaitedScores,
  releaseClaims,
} from './repository.js';
import {
  COMPLETION_SCORE_MAXIMUM,
  classifyScoreResponse,
  completionScorePayload,
  invalidCompletionScore,
  isPlatformUnreachable,
  keysetMayBeUnreachable,
  MEDIA_TYPES,
  PROBE_RELEASE_COOLDOWN_MS,
  RELEASE_DELAY_MS,
  retryAfterMs,
  retryDelayMs,
  SCOPES,
  type ScoreOutcome,
  scoresUrl,
  shouldGiveUp,
} from './rules.js';

// ─── Enqueue (LTI AGS 2.0 §3.4) ────────────────────────────────────────────────────────────────────

export interface CompletionScoreInput {
  learnerId: string;
  courseId: string | null;
  /** Our resource_links.id of the link the module was completed through. */
  resourceLinkId: string | null;
  moduleId: string;
  completedAt: Date;
  /** The launch the learner completed the module in, when the caller knows it. */
  launchId?: string | undefined;
}

export type EnqueueResult =
  | { queued: true; id: string; duplicate: boolean }
  | { queued: false; reason: 'no_launch' | 'no_lineitem' | 'no_score_scope' | 'invalid_score' };

interface AgsClaim {
  scope?: unknown;
  lineitem?: unknown;
}

/**
 * Queues the full-mark score of a completed module for the line item of the launch it was completed
 * in. Safe to call more than once for one completion (same learner, link, module and instant) and
 * inside the caller's transaction. Completions from launches without AGS are simply not scored.
 */
export async function enqueueCompletionScore(db: Db, input: CompletionScoreInput): Promise<EnqueueResult> {
  const launch = await findLaunchForScore(db, input);
  if (!launch) return { queued: false, reason: 'no_launch' };
  const ags = (launch.ags ?? {}) as AgsClaim;
  if (typeof ags.lineitem !== 'string' || !/^https?:\/\//.test(ags.lineitem)) {
    return { queued: false, reason: 'no_lineitem' };
  }
  const scopes = Array.isArray(ags.scope) ? ags.scope : [];
  if (!scopes.includes(SCOPES.score)) return { queued: false, reason: 'no_score_scope' };
  const scoreMaximum = COMPLETION_SCORE_MAXIMUM;
  const scoreGiven = COMPLETION_SCORE_MAXIMUM;
  if (invalidCompletionScore(scoreGiven, scoreMaximum)) return { queued: false, reason: 'invalid_score' };
  const resourceLinkId = input.resourceLinkId ?? launch.resource_link_id;
  const { id, created } = await insertScore(db, {
    registrationId: launch.registration_id,
    learnerId: input.learnerId,
    courseId: input.courseId ?? launch.course_id,
    resourceLinkId,
    launchId: launch.id,
    moduleId: input.moduleId,
    lineitemUrl: ags.lineitem,
    userId: launch.sub,
    scoreGiven,
    scoreMaximum,
    occurredAt: input.completedAt,
    idempotencyKey: [
      'completion',
      input.learnerId,
      resourceLinkId ?? input.courseId ?? '-',
      input.moduleId,
      input.completedAt.toISOString(),
    ].join(':'),
  });
  return { queued: true, id, duplicate: !created };
}

// ─── Delivery ───────────────────────────────────────────────────────────────────────────────────────

export interface OutboxContext {
  db: Db;
  tokens: AccessTokenService;
  log: FastifyBaseLogger;
  /** This instance's name in `locked_by`. */
  worker: string;
  fetch?: FetchLike;
  random?: () => number;
  /** The instance's stop: requests under way are aborted and their rows released. */
  signal?: AbortSignal;
  /** When this instance began listening (ms since epoch), or null: see `keysetMayBeUnreachable`. */
  listeningSince?: () => number | null;
  /** When the probe last released each platform's scores (token URL → ms), shared by the passes. */
  probeReleases?: Map<string, number>;
}

export interface OutboxRunResult {
  claimed: number;
  sent: number;
  retrying: number;
  failed: number;
  superseded: number;
  /** Waiting for an operator: the registration is unknown or removed (pending, with the reason). */
  held: number;
  /** Let go without counting the attempt: this instance stopped, or our keyset was not reachable yet. */
  released: number;
  /** Scores made due now because a probe found their platform reachable again. */
  reopened: number;
}

export const OUTBOX_LEASE_MS = 2 * 60_000;
export const OUTBOX_BATCH = 20;

export function workerName(): string {
  return `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Claims and sends what is due, once. Any instance may run it at any time. First probes the platforms
 * that scores wait for after failing to reach them: on the first answer, their backlog is due at once.
 */
export async function processOutbox(
  ctx: OutboxContext,
  options: { now?: Date; limit?: number /** default true */; probe?: boolean } = {},
): Promise<OutboxRunResult> {
  const result: OutboxRunResult = {
    claimed: 0,
    sent: 0,
    retrying: 0,
    failed: 0,
    superseded: 0,
    held: 0,
    released: 0,
    reopened: 0,
  };
  if (ctx.signal?.aborted) return result;
  if (options.probe ?? true) result.reopened = await probeAwaitedPlatforms(ctx, options.now);
  if (ctx.signal?.aborted) return result;
  const rows = await claimDueScores(ctx.db, {
    worker: ctx.worker,
    leaseMs: OUTBOX_LEASE_MS,
    limit: options.limit ?? OUTBOX_BATCH,
    now: options.now,
  });
  result.claimed = rows.length;
  const registrations = await findRegistrations(
    ctx.db,
    rows.map((r) => r.registration_id),
  );
  for (const [i, row] of rows.entries()) {
    if (ctx.signal?.aborted) {
      // Stopping: what this pass claimed and did not try yet goes back at once, uncounted.
      const rest = rows.slice(i).map((r) => r.id);
      result.released += await releaseClaims(ctx.db, {
        ids: rest,
        worker: ctx.worker,
        reason: 'released by a stopping instance before it was tried',
      });
      break;
    }
    const outcome = await deliver(ctx, row, registrations.get(row.registration_id), options.now ?? new Date());
    result[outcome]++;
  }
  return result;
}

/**
 * The probe: for each platform that pending scores wait for (their last attempt could not reach it),
 * one token request now; if it succeeds, every score waiting for that platform is due at once rather
 * than at the end of its own backoff, which after a long outage is up to RETRY_CAP_MS away. Runs at
 * every pass, that is at the outbox's poll interval. Returns the number of scores released.
 */
async function probeAwaitedPlatforms(ctx: OutboxContext, now: Date | undefined): Promise<number> {
  let reopened = 0;
  for (const platform of await platformsAwaited(ctx.db, now)) {
    const releasedAt = ctx.probeReleases?.get(platform.access_token_url);
    if (releasedAt !== undefined && Date.now() - releasedAt < PROBE_RELEASE_COOLDOWN_MS) continue;
    const registrationId = platform.registration_ids[0] as string;
    try {
      await ctx.tokens.probe(registrationId, [SCOPES.score]);
    } catch (error) {
      if (!(error instanceof PlatformCallError)) throw error;
      if (error.kind === 'aborted') return reopened;
      ctx.log.debug({ host: hostOf(platform.access_token_url), error: error.message }, 'platform still unreachable');
      continue;
    }
    const n = await releaseAwaitedScores(ctx.db, platform.registration_ids, now);
    ctx.probeReleases?.set(platform.access_token_url, Date.now());
    reopened += n;
    if (n > 0) {
      ctx.log.info(
        { host: hostOf(platform.access_token_url), released: n },
        'platform reachable again: scores waiting for it are sent now',
      );
    }
  }
  return reopened;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

type Delivery = 'sent' | 'retrying' | 'failed' | 'superseded' | 'held' | 'released';

async function deliver(
  ctx: OutboxContext,
  row: OutboxRow,
  registration: RegistrationRow | undefined,
  now: Date,
): Promise<Delivery> {
  const log = ctx.log.child({ outboxId: row.id, attempt: row.attempts });
  if (await hasNewerPendingScore(ctx.db, row)) {
    await finishAttempt(ctx.db, {
      id: row.id,
      worker: ctx.worker,
      status: 'superseded',
      scoreTimestamp: row.score_timestamp,
      httpStatus: row.last_http_status,
      error: 'superseded by a newer score',
    });
    return 'superseded';
  }

  if (!registration || registration.removed_at) return hold(ctx, row, registration, log);

  let attempt: Attempt;
  try {
    attempt = await post(ctx, row, false);
    // LTI AGS: a 401 usually means the token expired or was revoked: one fresh token, one more try.
    if (attempt.outcome === 'refresh_token') attempt = await post(ctx, row, true);
  } catch (error) {
    if (!(error instanceof PlatformCallError)) throw error;
    // The registration went away between the batch's check and the token request.
    if (error.kind === 'configuration') return hold(ctx, row, undefined, log);
    if (error.kind === 'aborted') {
      await finishAttempt(ctx.db, {
        id: row.id,
        worker: ctx.worker,
        status: 'pending',
        scoreTimestamp: row.score_timestamp,
        httpStatus: null,
        error: `${error.message}: released by a stopping instance`,
        nextAttemptAt: now,
        uncounted: true,
      });
      log.info('score released: this instance is stopping (the attempt is not counted)');
      return 'released';
    }
    const since = ctx.listeningSince?.() ?? null;
    if (
      keysetMayBeUnreachable({
        oauthError: error.oauthError,
        keysetServed: error.keysetServed,
        listeningForMs: since === null ? null : Date.now() - since,
      })
    ) {
      const reason = `${error.message} (this instance started moments ago: the platform may not have reached our keyset yet)`;
      await finishAttempt(ctx.db, {
        id: row.id,
        worker: ctx.worker,
        status: 'pending',
        scoreTimestamp: row.score_timestamp,
        httpStatus: error.status,
        error: reason,
        nextAttemptAt: new Date(now.getTime() + RELEASE_DELAY_MS),
        uncounted: true,
      });
      log.info(
        { status: error.status, retryInMs: RELEASE_DELAY_MS },
        'token refused while our keyset may not be reachable yet: attempt not counted, trying again shortly',
      );
      return 'released';
    }
    attempt = {
      outcome: error.retryable ? 'retry' : 'drop',
      status: error.status,
      timestamp: row.score_timestamp,
      error: error.message,
      retryAfter: error.retryAfter,
      unreachable: isPlatformUnreachable(error.kind, error.status),
    };
  }

  if (attempt.outcome === 'sent') {
    await finishAttempt(ctx.db, {
      id: row.id,
      worker: ctx.worker,
      status: 'sent',
      scoreTimestamp: attempt.timestamp,
      httpStatus: attempt.status,
      error: null,
    });
    log.info({ status: attempt.status }, 'score sent to the platform');
    scoreDeliveries.inc({ outcome: 'sent' });
    return 'sent';
  }

  const givingUp = attempt.outcome !== 'drop' && shouldGiveUp(row.retrying_since, now);
  if (attempt.outcome === 'drop' || givingUp) {
    const error = givingUp ? `gave up after ${row.attempts} attempts: ${attempt.error}` : attempt.error;
    await finishAttempt(ctx.db, {
      id: row.id,
      worker: ctx.worker,
      status: 'failed',
      scoreTimestamp: attempt.timestamp,
      httpStatus: attempt.status,
      error,
    });
    // Operators see it in `npm run cli -- outbox list` and can resend it with `outbox retry`.
    log.error(
      { status: attempt.status, error },
      givingUp
        ? 'score dropped: still not delivered after 7 days of retries'
        : 'score dropped: the platform refused it',
    );
    scoreDeliveries.inc({ outcome: 'failed' });
    return 'failed';
  }

  const delay = retryAfterMs(attempt.retryAfter) ?? retryDelayMs(row.attempts, (ctx.random ?? Math.random)());
  await finishAttempt(ctx.db, {
    id: row.id,
    worker: ctx.worker,
    status: 'pending',
    scoreTimestamp: attempt.timestamp,
    httpStatus: attempt.status,
    error: attempt.error,
    nextAttemptAt: new Date(now.getTime() + delay),
    waitingForPlatform: attempt.unreachable,
  });
  log.warn({ status: attempt.status, error: attempt.error, retryInMs: delay }, 'score not sent yet: will retry');
  scoreDeliveries.inc({ outcome: 'retry' });
  return 'retrying';
}

/**
 * Nothing was sent: the score stays pending, held with the reason, for an operator to re-target it to
 * the registration that replaced its own (or to restore that registration, which resumes it by itself).
 */
async function hold(
  ctx: OutboxContext,
  row: OutboxRow,
  registration: RegistrationRow | undefined,
  log: FastifyBaseLogger,
): Promise<'held'> {
  const which = registration
    ? `registration ${registration.id} (client ID ${registration.client_id})`
    : `registration ${row.registration_id}`;
  const reason =
    `${which} is unknown or removed: nothing was sent; re-target its scores with ` +
    '`npm run cli -- outbox retarget --from <old client ID> --to <new client ID>`';
  await finishAttempt(ctx.db, {
    id: row.id,
    worker: ctx.worker,
    status: 'pending',
    scoreTimestamp: row.score_timestamp,
    httpStatus: null,
    error: reason,
    heldReason: reason,
    uncounted: true,
  });
  log.warn(
    { registrationId: row.registration_id, clientId: registration?.client_id },
    'score held: its registration is unknown or removed, nothing was sent to the platform',
  );
  return 'held';
}

interface Attempt {
  outcome: ScoreOutcome;
  status: number | null;
  timestamp: Date | null;
  error: string | null;
  retryAfter: string | null;
  /** The platform could not be reached (see isPlatformUnreachable). */
  unreachable: boolean;
}

async function post(ctx: OutboxContext, row: OutboxRow, afterRefresh: boolean): Promise<Attempt> {
  const scopes = [SCOPES.score];
  const token = await ctx.tokens.getToken(row.registration_id, scopes);
  // A fresh timestamp per attempt: if an earlier attempt did reach the platform, this one is still
  // strictly later and simply records the same score again.
  const timestamp = await nextScoreTimestamp(ctx.db, row.lineitem_url, row.user_id, row.occurred_at);
  const payload = completionScorePayload({
    userId: row.user_id,
    timestamp,
    scoreGiven: row.score_given,
    scoreMaximum: row.score_maximum,
  });
  const url = scoresUrl(row.lineitem_url);
  const response = await callPlatform(
    ctx.fetch ?? fetch,
    url,
    {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': MEDIA_TYPES.score },
      body: JSON.stringify(payload),
    },
    ctx.signal,
  );
  let outcome = classifyScoreResponse(response.status);
  if (outcome === 'refresh_token') {
    ctx.tokens.invalidate(row.registration_id, scopes, token);
    if (afterRefresh) outcome = 'retry';
  }
  const excerpt = outcome === 'sent' ? '' : await responseExcerpt(response);
  if (outcome === 'sent') await response.body?.cancel().catch(() => undefined);
  return {
    outcome,
    status: response.status,
    timestamp,
    error: outcome === 'sent' ? null : `scores endpoint answered ${response.status}${excerpt ? `: ${excerpt}` : ''}`,
    retryAfter: response.headers.get('retry-after'),
    unreachable: isPlatformUnreachable('http', response.status),
  };
}

// ─── The background worker ─────────────────────────────────────────────────────────────────────────

/** How often the background worker polls the outbox. */
export const OUTBOX_POLL_MS = 5_000;

/**
 * The outbox's background job, for `runPeriodically`: a drain at once, then every `OUTBOX_POLL_MS`.
 * Nothing lives only in memory: a restarted instance, or another one, picks up whatever is due from the
 * table, including rows whose sender died mid-send (lease expiry).
 */
export function outboxTask(ctx: OutboxContext): PeriodicTask {
  return {
    name: 'score outbox',
    everyMs: OUTBOX_POLL_MS,
    firstAfterMs: 0,
    task: (stopping) => drainOutbox(ctx, stopping),
  };
}

/** Passes one after another while each finds a full batch, until `stopping` or the context's signal aborts. */
async function drainOutbox(ctx: OutboxContext, stopping: AbortSignal): Promise<void> {
  for (let pass = 0; pass < 50 && !stopping.aborted && !ctx.signal?.aborted; pass++) {
    // One probe per poll: the passes that follow at once in the same drain do not probe again.
    const r = await processOutbox(ctx, { probe: pass === 0 });
    if (r.claimed < OUTBOX_BATCH) return;
  }
}

/**
 * The outbox job outside an app (the app runs `outboxTask` with `runPeriodically`). `stop()` expects the
 * context's signal to be aborted first: the pass under way then ends within moments, releasing what it
 * holds.
 */
export class OutboxWorker {
  #run: PeriodicRun | undefined;

  constructor(private readonly ctx: OutboxContext) {}

  start(intervalMs: number): void {
    this.#run ??= periodicRun(this.ctx.log, { ...outboxTask(this.ctx), everyMs: intervalMs });
    this.#run.start();
  }

  async stop(): Promise<void> {
    await this.#run?.stop();
  }
}
