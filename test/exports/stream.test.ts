import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/index.js';
import { streamInTransaction } from '../../src/exports/stream.js';
import { createTestDatabase } from '../helpers/db.js';

let handle: DatabaseHandle;
beforeAll(async () => {
  handle = await createTestDatabase();
});
afterAll(() => handle.close());

const numbers = (n: number) =>
  streamInTransaction(handle.db, (trx) =>
    trx
      .selectFrom(sql<{ n: number }>`(select generate_series(1, ${n}) as n)`.as('s'))
      .select('s.n')
      .orderBy('s.n')
      .stream(100),
  );

describe('streaming a cursor inside a transaction of its own', () => {
  it('hands every row over, in order, in small batches', async () => {
    const seen: number[] = [];
    let batches = 0;
    for await (const batch of numbers(1234)) {
      batches++;
      expect(batch.length).toBeLessThanOrEqual(250);
      for (const row of batch) seen.push(Number(row.n));
    }
    expect(seen).toEqual(Array.from({ length: 1234 }, (_, i) => i + 1));
    expect(batches).toBe(5);
  });

  it('applies the export settings to its own transaction only', async () => {
    const inside: string[] = [];
    for await (const batch of streamInTransaction(handle.db, (trx) =>
      trx.selectFrom(sql<{ w: string }>`(select current_setting('work_mem') as w)`.as('s')).select('s.w').stream(10),
    )) {
      for (const row of batch) inside.push(row.w);
    }
    expect(inside).toEqual(['64MB']);
    const outside = await sql<{ w: string }>`select current_setting('work_mem') as w`.execute(handle.db);
    expect(outside.rows[0]?.w).not.toBe('64MB');
  });

  it('closes the cursor and ends the transaction when the reader stops early', async () => {
    for await (const _batch of numbers(100_000)) break;
    // On the embedded database a transaction left open would hold its single connection: this would hang.
    const after = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
    expect(after.rows[0]?.one).toBe(1);
    const open = await sql<{ n: number }>`select count(*) as n from pg_cursors where name <> ''`.execute(handle.db);
    expect(Number(open.rows[0]?.n)).toBe(0);
    if (handle.kind === 'pg') {
      // On PostgreSQL the stream had a pooled connection of its own: it must not be left in a transaction.
      const stuck = await sql<{ n: number }>`select count(*) as n from pg_stat_activity
        where datname = current_database() and state like 'idle in transaction%'`.execute(handle.db);
      expect(Number(stuck.rows[0]?.n)).toBe(0);
    }
  });

  it('passes a failing query on to the reader', async () => {
    const failing = streamInTransaction(handle.db, (trx) =>
      trx.selectFrom(sql<{ x: number }>`(select 1 / 0 as x)`.as('s')).select('s.x').stream(10),
    );
    await expect(async () => {
      for await (const _batch of failing) {
        // nothing: the query fails before its first row
      }
    }).rejects.toThrow(/division by zero/);
    const after = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
    expect(after.rows[0]?.one).toBe(1);
  });
});
