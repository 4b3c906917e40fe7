import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import type { Db } from '../../db/index.js';
import type { RunProfile } from '../rules.js';
import { appendToJournal, type ReceiveOutcome, type ReceiveRequest } from './journal.js';

/**
 * The acknowledgement queue of the ingest: group commit into the journal, a per-tab limiter and a backlog
 * guard. Nothing here keeps state that correctness depends on: they only shape load.
 */

/** Server time for tests: the instant the inbox stamps on rows instead of the database clock. */
export type InboxClock = () => Promise<number>;

export interface InboxOptions {
  /** Most requests one journal row carries. */
  maxBatch?: number;
  /** INSERT statements in flight at once (each holds one pooled connection for one round trip). */
  maxConcurrent?: number;
  /** Pending items (journal and inbox) above which the ingest answers 503 (the consumer is behind). */
  maxBacklog?: number;
  /** How old the backlog estimate may be before it is read again. */
  backlogCheckMs?: number;
  clock?: InboxClock;
  log?: FastifyBaseLogger;
}

interface Pending {
  request: ReceiveRequest;
  resolve: (o: ReceiveOutcome) => void;
  reject: (e: unknown) => void;
}

/** How long after its last append the ingest counts as busy (the consumer then yields to it). */
const BUSY_WINDOW_MS = 250;

/**
 * Group commit of the ingest: requests wait in a queue; each batch is ONE row of `tracking_journal`, written by
 * one statement in autocommit, and each request is answered after that statement committed
 * (`synchronous_commit` on). A per-tab limiter defers floods, and a backlog guard refuses new items while the
 * consumer is too far behind, so the journal and the inbox cannot grow without bound.
 */
export class Inbox {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #maxConcurrent: number;
  readonly #maxBacklog: number;
  readonly #backlogCheckMs: number;
  readonly #clock: InboxClock | undefined;
  readonly #log: FastifyBaseLogger | undefined;
  #queue: Pending[] = [];
  #running = 0;
  #idle: Array<() => void> = [];
  #limiter = new Map<string, { startMs: number; items: number }>();
  #limiterSweepMs = 0;
  #lastAppendMs = Number.NEGATIVE_INFINITY;
  #backlog: { count: number; atMs: number; reading: Promise<number> | null } = { count: 0, atMs: 0, reading: null };

  constructor(db: Db, options: InboxOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#maxConcurrent = options.maxConcurrent ?? 2;
    this.#maxBacklog = options.maxBacklog ?? 500_000;
    this.#backlogCheckMs = options.backlogCheckMs ?? 1000;
    this.#clock = options.clock;
    this.#log = options.log;
  }

  /** Server time as the limiter sees it (the test clock when one is set). */
  async now(): Promise<number> {
    return this.#clock ? this.#clock() : Date.now();
  }

  /** Whether more items wait than allowed (estimate at most `backlogCheckMs` old). */
  async overloaded(): Promise<boolean> {
    const now = Date.now();
    if (now - this.#backlog.atMs >= this.#backlogCheckMs) {
      this.#backlog.reading ??= countPending(this.#db, this.#maxBacklog + 1).finally(() => {
        this.#backlog.reading = null;
      });
      const count = await this.#backlog.reading;
      this.#backlog = { count, atMs: Date.now(), reading: null };
    }
    return this.#backlog.count > this.#maxBacklog;
  }

  /**
   * Whether the ingest appended within the last moments and the backlog is below half its limit: the
   * instance's consumer then leaves most of the machine to acknowledgements (crediting is deferred work; every
   * reader settles what it reads first). Past half the limit the consumer runs flat out again.
   */
  busy(): boolean {
    return Date.now() - this.#lastAppendMs < BUSY_WINDOW_MS && this.#backlog.count <= this.#maxBacklog / 2;
  }

  /**
   * The per-tab limiter (in process, so per instance): at most the profile's `rateMaxItems` items per
   * `rateWindowMs`; the rest is deferred (not stored: the page sends it again later). Several instances may
   * together let more through: the consumer then keeps the excess as `rate_limited` evidence.
   */
  admit(tabId: string, profile: RunProfile, count: number, now: number): number {
    if (now - this.#limiterSweepMs > 60_000) {
      for (const [id, w] of this.#limiter) if (now - w.startMs > 120_000) this.#limiter.delete(id);
      this.#limiterSweepMs = now;
    }
    let w = this.#limiter.get(tabId);
    if (!w || now - w.startMs >= profile.rateWindowMs) {
      w = { startMs: now, items: 0 };
      this.#limiter.set(tabId, w);
    }
    const admitted = Math.max(0, Math.min(count, profile.rateMaxItems - w.items));
    w.items += admitted;
    return admitted;
  }

  submit(request: ReceiveRequest): Promise<ReceiveOutcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#pump();
    });
  }

  /** Resolves once every submitted request has been answered. */
  async drain(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#running < this.#maxConcurrent && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#running++;
      this.#lastAppendMs = Date.now();
      void this.#run(batch).finally(() => {
        this.#running--;
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) for (const done of this.#idle.splice(0)) done();
      });
    }
  }

  async #run(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await appendToJournal(
        this.#db,
        batch.map((b) => b.request),
        this.#clock ? await this.#clock() : null,
      );
      for (const [i, b] of batch.entries()) b.resolve(outcomes[i] as ReceiveOutcome);
    } catch (error) {
      // The statement failed as a whole: nothing of it was committed, nothing is acknowledged.
      this.#log?.warn({ err: error, size: batch.length }, 'tracking journal append failed');
      for (const b of batch) b.reject(error);
    }
  }
}

/** Items waiting: the inbox's rows (counted up to `limit`) and the items of the journal's rows. */
async function countPending(db: Db, limit: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select (select count(*) from (select 1 from tracking_inbox limit ${limit}) p)
      + (select coalesce(sum(item_count), 0) from tracking_journal) as n`.execute(db);
  return Number(rows[0]?.n ?? 0);
}
