import { type Kysely, sql } from 'kysely';

/**
 * Common-trunk time from real platforms: credentials of the xAPI statements endpoint (one or more per
 * LMS, secret stored as an scrypt hash, revocable), and on the import journal the LRS credential a batch
 * came through and the per-course counts of the events left out (courses this tool does not serve).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('lms_lrs_credentials')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('key', 'text', (c) => c.notNull().unique()) // the Basic auth user name
    .addColumn('secret_hash', 'text', (c) => c.notNull()) // scrypt$N$r$p$salt$hash (base64url)
    .addColumn('issuer', 'text', (c) => c.notNull()) // the LMS whose statements it carries
    .addColumn('label', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema
    .alterTable('lms_imports')
    .addColumn('credential_id', 'uuid', (c) => c.references('lms_lrs_credentials.id'))
    .execute();
  await db.schema
    .alterTable('lms_imports')
    .addColumn('other_courses', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see above.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('lms_imports').dropColumn('other_courses').execute();
  await db.schema.alterTable('lms_imports').dropColumn('credential_id').execute();
  await db.schema.dropTable('lms_lrs_credentials').execute();
}
