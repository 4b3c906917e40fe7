import { type Kysely, sql } from 'kysely';

/**
 * The funds' portal: staff and operator accounts (not LTI users), their server-side sessions, personal
 * API tokens, failed sign-in counters (shared by every instance) and the audit log of downloads.
 * Secrets are never stored: session ids and tokens as SHA-256, passwords as scrypt with their parameters.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('portal_users')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('username', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull()) // 'operator' | 'fund_staff'
    .addColumn('fund_slug', 'text') // required for fund_staff, null for operators
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('must_change_password', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('disabled_at', 'timestamptz')
    .addColumn('password_changed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint(
      'portal_users_role_scope_ck',
      sql`(role = 'operator' and fund_slug is null) or (role = 'fund_staff' and fund_slug is not null)`,
    )
    .execute();

  await db.schema
    .createTable('portal_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey()) // SHA-256 of the cookie value
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('portal_users.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('portal_sessions_user_idx').on('portal_sessions').column('user_id').execute();
  await db.schema.createIndex('portal_sessions_expires_idx').on('portal_sessions').column('expires_at').execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('portal_users.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique()) // SHA-256 of the whole token
    .addColumn('prefix', 'text', (c) => c.notNull()) // first characters, to recognise a token in a list
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('api_tokens_user_idx').on('api_tokens').column('user_id').execute();

  await db.schema
    .createTable('portal_login_failures')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('username', 'text', (c) => c.notNull()) // as typed, normalised; may match no account
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('portal_login_failures_user_ip_idx')
    .on('portal_login_failures')
    .columns(['username', 'ip', 'created_at'])
    .execute();
  await db.schema
    .createIndex('portal_login_failures_ip_idx')
    .on('portal_login_failures')
    .columns(['ip', 'created_at'])
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('actor_user_id', 'uuid', (c) => c.references('portal_users.id'))
    .addColumn('actor_username', 'text', (c) => c.notNull()) // kept as it was at the time
    .addColumn('actor_role', 'text', (c) => c.notNull())
    .addColumn('actor_fund_slug', 'text')
    .addColumn('via', 'text', (c) => c.notNull()) // 'session' | 'token' | 'cli'
    .addColumn('token_id', 'uuid', (c) => c.references('api_tokens.id'))
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`)) // filter, format, target…
    .addColumn('row_count', 'integer')
    .addColumn('expected_rows', 'integer')
    .addColumn('status', 'text', (c) => c.notNull()) // 'started' | 'completed' | 'failed' | 'done'
    .addColumn('finished_at', 'timestamptz')
    .addColumn('progress_ticket', 'text') // the browser's handle to follow a long export
    .execute();
  await db.schema.createIndex('audit_log_at_idx').on('audit_log').column('at').execute();
  await db.schema.createIndex('audit_log_actor_idx').on('audit_log').columns(['actor_user_id', 'at']).execute();
  await db.schema.createIndex('audit_log_ticket_idx').on('audit_log').column('progress_ticket').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['audit_log', 'portal_login_failures', 'api_tokens', 'portal_sessions', 'portal_users']) {
    await db.schema.dropTable(t).execute();
  }
}
