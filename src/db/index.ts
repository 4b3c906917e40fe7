import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { PGliteDialect } from './pglite-dialect.js';
import type { Database } from './schema.js';

export { migrateToLatest, migrationStatus } from './migrate.js';
export type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  readonly db: Db;
  readonly kind: 'pg' | 'pglite';
  close(): Promise<void>;
  /** The pg pool's use (PostgreSQL only; PGlite has one connection). Read by /metrics. */
  poolStats?(): { total: number; idle: number; waiting: number; max: number };
}

export interface DatabaseOptions {
  /** PostgreSQL URL; when absent the embedded PGlite is used. */
  databaseUrl?: string | undefined;
  /** PGlite data directory; absent → in memory. */
  pgliteDataDir?: string | undefined;
  /** A PGlite data-dir dump (tar) to start from; tests clone a migrated template this way. */
  pgliteLoadDataDir?: Blob | undefined;
  poolMax?: number;
}

// Both drivers hand back the same JS types, so queries behave alike on either:
// int8 (count(*), bigserial) → number (our values stay far below 2^53); date → 'YYYY-MM-DD' string
// (never a Date at local midnight); numeric → string (exact); timestamptz → Date; json/jsonb → parsed.
const OID = { INT8: 20, NUMERIC: 1700, DATE: 1082 } as const;
const toNumber = (value: string) => Number(value);
const asIs = (value: string) => value;

/** The single factory: one Kysely instance, on pg or on PGlite, with identical type mapping. */
export async function createDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolMax ?? 10,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
          if (oid === OID.INT8) return toNumber;
          if (oid === OID.DATE) return asIs;
          return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid);
        }) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client dies when PostgreSQL restarts or an operator terminates it; without a listener, pg
    // re-emits that as an uncaught error and the process would crash. The pool replaces the client.
    pool.on('error', (error) => {
      process.stderr.write(`PostgreSQL idle connection lost: ${error.message}\n`);
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) });
    const max = options.poolMax ?? 10;
    return {
      db,
      kind: 'pg',
      close: () => db.destroy(),
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max }),
    };
  }

  if (options.pgliteDataDir) mkdirSync(options.pgliteDataDir, { recursive: true });
  // Loaded only when used: the WASM module weighs ~40 MB of memory that a pg deployment should not carry.
  const { PGlite, types: pgliteTypes } = await import('@electric-sql/pglite');
  const client = new PGlite({
    ...(options.pgliteDataDir ? { dataDir: options.pgliteDataDir } : {}),
    ...(options.pgliteLoadDataDir ? { loadDataDir: options.pgliteLoadDataDir } : {}),
    parsers: { [pgliteTypes.INT8]: toNumber, [pgliteTypes.DATE]: asIs, [pgliteTypes.NUMERIC]: asIs },
  });
  await client.waitReady;
  const db = new Kysely<Database>({ dialect: new PGliteDialect(client) });
  return {
    db,
    kind: 'pglite',
    // Kysely destroys a driver only once a query initialised it: a handle closed before its first statement
    // (a CLI command that failed early) still has an open PGlite, closed here.
    close: async () => {
      await db.destroy();
      if (!client.closed) await client.close();
    },
  };
}

export function pgliteDirFor(dataDir: string): string {
  return join(dataDir, 'pglite');
}
