import { type Kysely, sql } from 'kysely';

/**
 * The funds' weekly digest by e-mail: who asked for it (fund staff opt in on the portal), and one row
 * per person and week sent, claimed before sending so that several instances send it once.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('digest_subscriptions')
    .addColumn('user_id', 'uuid', (c) => c.primaryKey().references('portal_users.id').onDelete('cascade'))
    .addColumn('subscribed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('digests_sent')
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('portal_users.id').onDelete('cascade'))
    // The Monday (Paris) of the ISO week the digest covers.
    .addColumn('week_start', 'date', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('claimed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('fund_slug', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('error', 'text')
    .addPrimaryKeyConstraint('digests_sent_pk', ['user_id', 'week_start'])
    .addCheckConstraint('digests_sent_status_ck', sql`status in ('sending', 'sent', 'failed')`)
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('digests_sent').execute();
  await db.schema.dropTable('digest_subscriptions').execute();
}
