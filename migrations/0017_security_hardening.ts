import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/**
 * Security hardening (docs/security.md):
 * - portal_login_counters: sign-in attempts per account and address, per address and per account, in fixed
 *   15-minute windows. One upsert increments and returns a counter before the password is evaluated, so
 *   concurrent attempts (any connection, any instance) can never all read "below the limit".
 * - lti_view_tickets: short-lived, single-use, purpose-bound view tickets. A page redirected to after a
 *   form post (post/redirect/get) carries `?ticket=<random>` instead of the session token; the row holds
 *   the session's claims and the one path it opens; redeeming it is one UPDATE … WHERE used_at IS NULL.
 * - fund_company_names: company names a fund confirmed for a SIRET in a course session (by comparison key).
 *   A file number applies to a learner's certificate only when the name they declared is confirmed, or,
 *   while none is, when every learner of that SIRET declared the same name.
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

  await db.schema
    .createTable('lti_view_tickets')
    .addColumn('id_hash', 'text', (c) => c.primaryKey()) // SHA-256 of the ticket in the URL
    .addColumn('path', 'text', (c) => c.notNull()) // the only path it opens
    .addColumn('claims', 'jsonb', (c) => c.notNull()) // the session's claims (no exp)
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('lti_view_tickets_expires_idx').on('lti_view_tickets').column('expires_at').execute();

  await db.schema
    .createTable('fund_company_names')
    .addColumn('fund_slug', 'text', (c) => c.notNull())
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('company_siret', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull()) // comparison key (no case, accents, punctuation)
    .addColumn('name', 'text', (c) => c.notNull()) // as a learner declared it, when confirmed
    .addColumn('confirmed_by_user_id', 'uuid')
    .addColumn('confirmed_by_username', 'text', (c) => c.notNull())
    .addColumn('confirmed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('fund_company_names_pk', ['fund_slug', 'course_id', 'company_siret', 'name_key'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('fund_company_names').execute();
  await db.schema.dropTable('lti_view_tickets').execute();
  await db.schema.dropTable('portal_login_counters').execute();
}
