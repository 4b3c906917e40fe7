import { type Kysely, sql } from 'kysely';

/**
 * Connection time, fast acknowledgement (src/tracking/README.md): the tracking inbox. The ingest appends one row per received
 * item, in autocommit, and answers once that row is committed; a consumer credits the rows later (the existing
 * engine, each row at its own `received_at`) and deletes them in the same transaction. Also the instant up to
 * which each learner's inbox rows were credited (late rows are credited at that instant, never earlier).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tracking_inbox')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    // No foreign keys: the ticket and the session token were verified; the consumer checks the rest.
    .addColumn('learner_id', 'uuid', (c) => c.notNull())
    .addColumn('course_id', 'uuid', (c) => c.notNull())
    .addColumn('tab_id', 'uuid', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull()) // open | beat | close
    // The ticket's verified facts.
    .addColumn('module_id', 'text', (c) => c.notNull())
    .addColumn('module_version', 'integer')
    .addColumn('nominal_minutes', 'integer', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('profile', 'text', (c) => c.notNull())
    // The session's standing: a genuine but expired token; a session that is not a learner's (view as).
    .addColumn('token_expired', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('not_learner', 'boolean', (c) => c.notNull().defaultTo(false))
    // What the page reported (evidence only).
    .addColumn('client_time', 'text')
    .addColumn('input_ago_ms', 'integer')
    .addColumn('media', 'boolean')
    .addColumn('cause', 'text')
    .addColumn('ip_prefix', 'text')
    .addColumn('user_agent', 'text')
    // The database clock at insert: the item's server time.
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .execute();
  // Idempotent on (tabId, seq) per learner: a stranger who guesses a tab id cannot block its owner.
  await sql`create unique index tracking_inbox_item_uq on tracking_inbox (learner_id, tab_id, seq)`.execute(db);
  await sql`create index tracking_inbox_received_idx on tracking_inbox (received_at)`.execute(db);
  await db.schema.alterTable('tracking_learners').addColumn('credited_until', 'timestamptz').execute();
  await db.schema
    .alterTable('tracking_learners')
    .addColumn('late_items', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('tracking_learners').dropColumn('late_items').execute();
  await db.schema.alterTable('tracking_learners').dropColumn('credited_until').execute();
  await db.schema.dropTable('tracking_inbox').execute();
}
