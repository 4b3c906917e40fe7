import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
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
  finishAttempt,
  hasNewerPendingScore,
  insertScore,
  nextScoreTimestamp,
  type OutboxRow,
} from './repository.js';
import {
  COMPLETION_SCORE_MAXIMUM,
  classifyScoreResponse,
  completionScorePayload,
  invalidCompletionScore,
  MEDIA_TYPES,
  RETRY_GIVE_UP_MS,
  retryAfterMs,
  retryDelayMs,
  SCOPES,
  type ScoreOutcome,
  scoresUrl,
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
}

export interface OutboxRunResult {
  claimed: number;
  sent: number;
  retrying: number;
  failed: number;
  superseded: number;
}

export const OUTBOX_LEASE_MS = 2 * 60_000;
export const OUTBOX_BATCH = 20;

export function workerName(): string {
  return `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

/** Claims and sends what is due, once. Any instance may run it at any time. */
export async function processOutbox(
  ctx: OutboxContext,
  options: { now?: Date; limit?: number } = {},
): Promise<OutboxRunResult> {
  const result: OutboxRunResult = { claimed: 0, sent: 0, retrying: 0, failed: 0, superseded: 0 };
  const rows = await claimDueScores(ctx.db, {
    worker: ctx.worker,
    leaseMs: OUTBOX_LEASE_MS,
    limit: options.limit ?? OUTBOX_BATCH,
    now: options.now,
  });
  result.claimed = rows.length;
  for (const row of rows) {
    const outcome = await deliver(ctx, row, options.now ?? new Date());
    result[outcome]++;
  }
  return result;
}

type Delivery = 'sent' | 'retrying' | 'failed' | 'superseded';

async function deliver(ctx: OutboxContext, row: OutboxRow, now: Date): Promise<Delivery> {
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

  let attempt: Attempt;
  try {
    attempt = await post(ctx, row, false);
    // LTI AGS: a 401 usually means the token expired or was revoked: one fresh token, one more try.
    if (attempt.outcome === 'refresh_token') attempt = await post(ctx, row, true);
  } catch (error) {
    if (!(error instanceof PlatformCallError)) throw error;
    attempt = {
      outcome: error.retryable ? 'retry' : 'drop',
      status: error.status,
      timestamp: row.score_timestamp,
      error: error.message,
      retryAfter: error.retryAfter,
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

  if (attempt.outcome === 'drop' || now.getTime() - row.created_at.getTime() > RETRY_GIVE_UP_MS) {
    const error =
      attempt.outcome === 'drop' ? attempt.error : `gave up after ${row.attempts} attempts: ${attempt.error}`;
    await finishAttempt(ctx.db, {
      id: row.id,
      worker: ctx.worker,
      status: 'failed',
      scoreTimestamp: attempt.timestamp,
      httpStatus: attempt.status,
      error,
    });
    // Operators see it in `npm run cli -- outbox list` and can resend it with `outbox retry`.
    log.error({ status: attempt.status, error }, 'score dropped: the platform refused it');
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
  });
  log.warn({ status: attempt.status, error: attempt.error, retryInMs: delay }, 'score not sent yet: will retry');
  scoreDeliveries.inc({ outcome: 'retry' });
  return 'retrying';
}

interface Attempt {
  outcome: ScoreOutcome;
  status: number | null;
  timestamp: Date | null;
  error: string | null;
  retryAfter: string | null;
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
  const response = await callPlatform(ctx.fetch ?? fetch, scoresUrl(row.lineitem_url), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': MEDIA_TYPES.score },
    body: JSON.stringify(payload),
  });
  let outcome = classifyScoreResponse(response.status);
  if (outcome === 'refresh_token') {
    ctx.tokens.invalidate(row.registration_id, scopes, token);
    if (afterRefresh) outcome = 'retry';
  }
  const excerpt = outcome === 'sent' ? '' : await responseExcerpt(response);
  if (outcome === 'sent') await response.body?.cancel();
  return {
    outcome,
    status: response.status,
    timestamp,
    error: outcome === 'sent' ? null : `scores endpoint answered ${response.status}${excerpt ? `: ${excerpt}` : ''}`,
    retryAfter: response.headers.get('retry-after'),
  };
}

// ─── The background worker ─────────────────────────────────────────────────────────────────────────

/**
 * Polls the outbox on a timer. Nothing lives only in memory: a restarted instance, or another one,
 * picks up whatever is due from the table, including rows whose sender died mid-send (lease expiry).
 */
export class OutboxWorker {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(private readonly ctx: OutboxContext) {}

  start(intervalMs: number): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.kick(), intervalMs);
    this.#timer.unref();
    this.kick();
  }

  /** Runs a pass now unless one is running. */
  kick(): void {
    if (this.#running) return;
    this.#running = this.#drain()
      .catch((error: unknown) => this.ctx.log.error({ err: error }, 'score outbox pass failed'))
      .finally(() => {
        this.#running = undefined;
      });
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  async #drain(): Promise<void> {
    for (let pass = 0; pass < 50 && this.#timer; pass++) {
      const r = await processOutbox(this.ctx);
      if (r.claimed < OUTBOX_BATCH) return;
    }
  }
}
