import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/**
 * Security hardening (docs/security.md):
 * - portal_login_counters: sign-in attempts per account and address, per address and per account, in fixed
 *   15-minute windows. One upsert increments and returns a counter before the password is evaluated, so
 *   concurrent attempts (any connection, any instance) can never all read "below the limit".
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('portal_login_counters')
    .addColumn('key', 'text', (c) => c.primaryKey()) // 'ip <addr>', 'user <name>', 'user-ip <name> <addr>'
    .addColumn('window_start', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('count', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('portal_login_counters_window_idx')
    .on('portal_login_counters')
    .column('window_start')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('portal_login_counters').execute();
}
