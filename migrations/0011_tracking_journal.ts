import { type Kysely, sql } from 'kysely';

/**
 * The tracking journal: the ingest's group commit appends ONE row per batch of requests (their items as JSON
 * text, not parsed at append), and answers once that row is committed. The crediting consumer unpacks journal
 * rows into `tracking_inbox` (one row per item, unique on learner × tab × seq) before crediting, so the
 * per-item parsing, de-duplication and indexing leave the acknowledgement path.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tracking_journal')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    // The database clock at insert: the server time of every item of the batch.
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addColumn('item_count', 'integer', (c) => c.notNull())
    // A JSON array of requests, each with its verified facts and its items (format "journal-v1", src/tracking).
    .addColumn('body', 'text', (c) => c.notNull())
    .execute();
  await sql`create index tracking_journal_received_idx on tracking_journal (received_at)`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('tracking_journal').execute();
}
