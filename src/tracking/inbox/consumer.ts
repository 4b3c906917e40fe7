import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/index.js';
import { type CreditReport, creditLearners, pendingLearners } from './crediting.js';
import { unpackJournal } from './unpacking.js';

export interface ConsumerOptions {
  /** Rows younger than this wait (rows of other instances' in-flight inserts become visible meanwhile). */
  settleLagMs?: number;
  /** Learners per transaction. */
  groupSize?: number;
  /** Pause when nothing is pending. */
  idleMs?: number;
  /** Most journal rows one slice unpacks. */
  journalRows?: number;
  /**
   * Whether acknowledgements need the machine now (`Inbox.busy`): the loop then pauses after each slice so
   * that it takes at most `busyShare` of the time, instead of running slices back to back.
   */
  yieldTo?: () => boolean;
  /** Share of the time the loop may take while `yieldTo` says so (default 0.2). */
  busyShare?: number;
  /**
   * Learners per transaction while `yieldTo` says so (default 10): a slice's crediting runs on the event loop
   * in one go, so smaller slices keep acknowledgements from waiting behind it.
   */
  busyGroupSize?: number;
  log?: FastifyBaseLogger;
}

/**
 * Runs in every instance: repeatedly unpacks journal rows into the inbox and credits learners with pending rows
 * older than the credit horizon. Instances share the work through SKIP LOCKED on the journal's and the
 * learners' rows. Each step is one short transaction; between slices the loop yields to the event loop, and
 * while the ingest is busy it pauses long enough to leave most of the machine to acknowledgements (crediting is
 * deferred work: every reader settles what it reads first).
 */
export class TrackingConsumer {
  readonly #db: Db;
  readonly #settleLagMs: number;
  readonly #groupSize: number;
  readonly #idleMs: number;
  readonly #journalRows: number;
  readonly #yieldTo: (() => boolean) | undefined;
  readonly #busyShare: number;
  readonly #busyGroupSize: number;
  readonly #log: FastifyBaseLogger | undefined;
  #running: Promise<void> | null = null;
  #stopping = false;
  #wake: (() => void) | null = null;
  /**
   * Counters (metrics): items unpacked from the journal, journal rows set aside unread (quarantined), items
   * credited, late items, slices, pauses, errors.
   */
  readonly stats = { unpacked: 0, quarantined: 0, items: 0, late: 0, slices: 0, yielded: 0, errors: 0 };

  constructor(db: Db, options: ConsumerOptions = {}) {
    this.#db = db;
    this.#settleLagMs = options.settleLagMs ?? 2000;
    this.#groupSize = options.groupSize ?? 100;
    this.#idleMs = options.idleMs ?? 250;
    this.#journalRows = options.journalRows ?? 50;
    this.#yieldTo = options.yieldTo;
    this.#busyShare = Math.min(1, Math.max(0.01, options.busyShare ?? 0.2));
    this.#busyGroupSize = Math.max(1, Math.min(this.#groupSize, options.busyGroupSize ?? 10));
    this.#log = options.log;
  }

  get running(): boolean {
    return this.#running !== null;
  }

  start(): void {
    if (this.#running) return;
    this.#stopping = false;
    this.#running = this.#loop().finally(() => {
      this.#running = null;
    });
  }

  /** Stops after the current slice (its transaction commits or rolls back; nothing is lost either way). */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
  }

  /**
   * One slice: unpacks up to `journalRows` journal rows, then credits up to `groupSize` learners with rows
   * older than the credit horizon. Returns what it credited (`items` also counts the items it unpacked).
   */
  async slice(): Promise<CreditReport> {
    // While acknowledgements need the machine: smaller steps (shorter statements, shorter event-loop turns).
    const busy = this.#yieldTo?.() ?? false;
    const group = busy ? this.#busyGroupSize : this.#groupSize;
    const journalRows = busy ? Math.min(this.#journalRows, 5) : this.#journalRows;
    const unpacked = await unpackJournal(this.#db, { skipLocked: true, maxRows: journalRows });
    this.stats.unpacked += unpacked.items;
    if (unpacked.quarantined.length > 0) {
      this.stats.quarantined += unpacked.quarantined.length;
      this.#log?.error(
        { journalIds: unpacked.quarantined },
        'tracking journal rows could not be unpacked: set aside in tracking_journal_quarantine, not credited',
      );
    }
    const ids = await pendingLearners(this.#db, { settleLagMs: this.#settleLagMs, limit: group * 20 });
    // Instances start at different places in the list, so that they rarely wait for each other's locks.
    const start = ids.length > group ? Math.floor(Math.random() * (ids.length - group)) : 0;
    const report = await creditLearners(this.#db, ids.slice(start, start + group), {
      skipLocked: true,
      settleLagMs: this.#settleLagMs,
      ...(this.#log ? { log: this.#log } : {}),
    });
    this.stats.items += report.items;
    this.stats.late += report.late;
    this.stats.slices++;
    return { ...report, items: report.items + unpacked.rows };
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let report: CreditReport | null = null;
      const started = performance.now();
      try {
        report = await this.slice();
      } catch (error) {
        this.stats.errors++;
        this.#log?.error({ err: error }, 'tracking consumer slice failed; retrying');
      }
      if (this.#stopping) break;
      if (report && report.items > 0) {
        if (this.#yieldTo?.()) {
          // The slice took `took` ms: pause so that it was `busyShare` of the time.
          const took = performance.now() - started;
          this.stats.yielded++;
          await this.#sleep(Math.min(2000, (took * (1 - this.#busyShare)) / this.#busyShare));
        } else {
          await new Promise((r) => setImmediate(r));
        }
        continue;
      }
      await this.#sleep(this.#idleMs);
    }
  }

  /** Waits `ms`, or less when `stop()` is called. */
  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = null;
  }
}
