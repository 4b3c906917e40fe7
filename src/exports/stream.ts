import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';

/**
 * Planner settings for the export queries, local to their transaction. JIT compilation costs seconds
 * on these one-shot analytical queries for nothing; a larger work_mem lets the aggregates and the final
 * sort stay in memory (one export at a time per connection, so the bound is the pool size × this).
 */
export const EXPORT_SETTINGS = ['jit = off', "work_mem = '64MB'"] as const;

type Message<R> = { kind: 'rows'; rows: R[] } | { kind: 'end' } | { kind: 'error'; error: unknown };

/** Rows handed over at once: few enough to keep memory flat, enough to make the hand-over cheap. */
const BATCH = 250;

/**
 * Streams a cursor query inside a transaction of its own, with `EXPORT_SETTINGS` applied to it.
 * Kysely scopes a transaction to a callback; this hands its rows out in small batches as an async
 * iterable, reading further from the cursor only when the reader asks for more. When the reader stops
 * early the cursor is closed and the transaction ends.
 */
export async function* streamInTransaction<R>(
  db: Db,
  build: (trx: Transaction<Database>) => AsyncIterable<R>,
): AsyncGenerator<R[]> {
  let deliver: ((m: Message<R>) => void) | undefined;
  let next: Promise<Message<R>> = new Promise((resolve) => {
    deliver = resolve;
  });
  let wanted: (() => void) | undefined;
  let stopped = false;
  const post = (m: Message<R>) => {
    const d = deliver;
    next = new Promise((resolve) => {
      deliver = resolve;
    });
    d?.(m);
  };
  const handOver = async (rows: R[]) => {
    const asked = new Promise<void>((resolve) => {
      wanted = resolve;
    });
    post({ kind: 'rows', rows });
    await asked;
  };

  const work = db
    .transaction()
    .execute(async (trx) => {
      for (const setting of EXPORT_SETTINGS) await sql.raw(`set local ${setting}`).execute(trx);
      let batch: R[] = [];
      for await (const row of build(trx)) {
        if (stopped) return;
        batch.push(row);
        if (batch.length >= BATCH) {
          await handOver(batch);
          batch = [];
          if (stopped) return;
        }
      }
      if (batch.length > 0) await handOver(batch);
    })
    .then(
      () => post({ kind: 'end' }),
      (error: unknown) => post({ kind: 'error', error }),
    );

  try {
    for (;;) {
      const m = await next;
      if (m.kind === 'end') return;
      if (m.kind === 'error') throw m.error;
      yield m.rows;
      const w = wanted;
      wanted = undefined;
      w?.();
    }
  } finally {
    stopped = true;
    const w = wanted;
    wanted = undefined;
    w?.();
    await work;
  }
}

/** A one-shot query (a count) under the same settings. */
export async function queryInTransaction<T>(db: Db, run: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    for (const setting of EXPORT_SETTINGS) await sql.raw(`set local ${setting}`).execute(trx);
    return run(trx);
  });
}
