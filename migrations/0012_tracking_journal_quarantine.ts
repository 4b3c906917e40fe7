import { type Kysely, sql } from 'kysely';

/**
 * Journal rows that could not be unpacked into the inbox (a body PostgreSQL cannot read as the journal
 * format: a bug, or a hand edit). They are set aside here, whole and with the database's error, so that
 * one such row never stops the crediting of everyone else; their items are acknowledged, kept, and not
 * credited. `npm run cli -- time verify` reports every row here.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tracking_journal_quarantine')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    // The journal row's id and fields, unchanged (not unique: a row put back and set aside again is kept twice).
    .addColumn('journal_id', 'bigint', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addColumn('item_count', 'integer', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    // SQLSTATE, message and detail of the failed unpacking.
    .addColumn('error', 'text', (c) => c.notNull())
    .addColumn('quarantined_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('tracking_journal_quarantine').execute();
}
