import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { createDatabase, migrateToLatest, migrationStatus } from '../../src/db/index.js';
import { PGliteDialect } from '../../src/db/pglite-dialect.js';
import { createTestDatabase } from '../helpers/db.js';

const pgUrl = process.env.TEST_DATABASE_URL;

describe('migrations', () => {
  it('run up from empty on embedded PGlite', async () => {
    const client = new PGlite();
    const db = new Kysely<unknown>({ dialect: new PGliteDialect(client) });
    try {
      const applied = await migrateToLatest(db);
      expect(applied).toEqual(Object.keys(migrations));
      expect(await migrateToLatest(db)).toEqual([]);
      expect((await migrationStatus(db)).pending).toEqual([]);
    } finally {
      await db.destroy();
    }
  });

  it.runIf(pgUrl)('run up from empty on PostgreSQL', async () => {
    const name = `emargement_mig_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const url = new URL(pgUrl as string);
    url.pathname = `/${name}`;
    const handle = await createDatabase({ databaseUrl: url.toString(), poolMax: 2 });
    try {
      expect(await migrateToLatest(handle.db)).toEqual(Object.keys(migrations));
      expect((await migrationStatus(handle.db)).pending).toEqual([]);
    } finally {
      await handle.close();
      await admin.query(`drop database ${name} with (force)`);
      await admin.end();
    }
  });
});

describe('database factory', () => {
  it('closes an embedded PGlite that never ran a statement', async () => {
    const close = vi.spyOn(PGlite.prototype, 'close');
    try {
      const handle = await createDatabase({});
      // PGlite's start-up may close an instance of its own: count only what closing the handle does.
      const before = close.mock.calls.length;
      await handle.close();
      expect(close.mock.calls.length).toBe(before + 1);
      expect((close.mock.contexts.at(-1) as PGlite).closed).toBe(true);
    } finally {
      close.mockRestore();
    }
  });

  it('maps types identically on both dialects', async () => {
    const handle = await createTestDatabase();
    try {
      const { rows } = await sql<{
        n: number;
        d: string;
        num: string;
        ts: Date;
        j: unknown;
      }>`select count(*) as n, date '2026-11-29' as d, 1.50::numeric as num, now() as ts, '{"a":[1]}'::jsonb as j`.execute(
        handle.db,
      );
      const row = rows[0]!;
      expect(row.n).toBe(1);
      expect(row.d).toBe('2026-11-29');
      expect(row.num).toBe('1.50');
      expect(row.ts).toBeInstanceOf(Date);
      expect(row.j).toEqual({ a: [1] });
    } finally {
      await handle.close();
    }
  });

  it('keeps transactions isolated from concurrent statements and rolls back on error', async () => {
    const handle = await createTestDatabase();
    const { db } = handle;
    try {
      await sql`create table t_counter (n int not null)`.execute(db);
      const failing = db.transaction().execute(async (trx) => {
        await sql`insert into t_counter values (1)`.execute(trx);
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('abort');
      });
      const outside = sql`insert into t_counter values (2)`.execute(db);
      await expect(failing).rejects.toThrow('abort');
      await outside;
      const { rows } = await sql<{ n: number }>`select n from t_counter`.execute(db);
      expect(rows.map((r) => r.n)).toEqual([2]);
    } finally {
      await handle.close();
    }
  });

  it('streams large results in chunks through a cursor', async () => {
    const handle = await createTestDatabase();
    try {
      const query = handle.db
        .selectFrom(sql<{ i: number }>`generate_series(1, 2500)`.as('s'))
        .select(sql<number>`s`.as('i'));
      let count = 0;
      let last = 0;
      for await (const row of query.stream(1000)) {
        count++;
        last = row.i;
      }
      expect(count).toBe(2500);
      expect(last).toBe(2500);
      // The connection is usable again afterwards (cursor closed, transaction ended).
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
      expect(rows[0]?.one).toBe(1);
    } finally {
      await handle.close();
    }
  });
});

describe.runIf(pgUrl)('PostgreSQL pool', () => {
  it('survives an idle connection being terminated by the server', async () => {
    const handle = await createTestDatabase();
    try {
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(handle.db);
      const admin = new pg.Client({ connectionString: pgUrl });
      await admin.connect();
      await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
      await admin.end();
      await new Promise((r) => setTimeout(r, 100));
      const again = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
      expect(again.rows[0]?.one).toBe(1);
    } finally {
      await handle.close();
    }
  });
});
