import { type Kysely, sql } from 'kysely';

/**
 * LTI 1.3 identity: platform registrations (LTI Core §3.1.3 — one issuer, many client_ids), the tool's
 * own keys, issued nonces, and what launches tell us about learners, courses (contexts) and resource links.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('lti_registrations')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('deployment_ids', 'jsonb', (c) => c.notNull())
    .addColumn('auth_login_url', 'text', (c) => c.notNull())
    .addColumn('access_token_url', 'text', (c) => c.notNull())
    .addColumn('jwks_url', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('file')) // 'file' | 'cli'
    // Launches and resource links keep pointing at a removed registration, so removal is a mark.
    .addColumn('removed_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('lti_registrations_issuer_client_uq', ['issuer', 'client_id'])
    .execute();

  await db.schema
    .createTable('lti_tool_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'jsonb', (c) => c.notNull())
    .addColumn('private_key_sealed', 'text', (c) => c.notNull()) // AES-256-GCM, key derived from APP_SECRET
    .addColumn('status', 'text', (c) => c.notNull()) // 'current' | 'retired'
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('retired_at', 'timestamptz')
    .execute();
  // At most one current signing key, even when two instances start at once.
  await db.schema
    .createIndex('lti_tool_keys_one_current_uq')
    .on('lti_tool_keys')
    .column('status')
    .unique()
    .where(sql.ref('status'), '=', 'current')
    .execute();

  await db.schema
    .createTable('lti_nonces')
    .addColumn('nonce', 'text', (c) => c.primaryKey())
    .addColumn('registration_id', 'uuid', (c) => c.notNull().references('lti_registrations.id').onDelete('cascade'))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('consumed_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('lti_nonces_expires_idx').on('lti_nonces').column('expires_at').execute();

  await db.schema
    .createTable('learners')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('given_name', 'text')
    .addColumn('family_name', 'text')
    .addColumn('email', 'text')
    .addColumn('username', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('learners_issuer_sub_uq', ['issuer', 'sub'])
    .execute();

  await db.schema
    .createTable('courses')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('context_id', 'text', (c) => c.notNull())
    .addColumn('label', 'text')
    .addColumn('title', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('courses_issuer_context_uq', ['issuer', 'context_id'])
    .execute();

  await db.schema
    .createTable('resource_links')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id').onDelete('cascade'))
    .addColumn('registration_id', 'uuid', (c) => c.notNull().references('lti_registrations.id'))
    .addColumn('resource_link_id', 'text', (c) => c.notNull())
    .addColumn('title', 'text')
    .addColumn('custom', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('resource_links_reg_link_uq', ['registration_id', 'resource_link_id'])
    .execute();

  await db.schema
    .createTable('lti_launches')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('registration_id', 'uuid', (c) => c.notNull().references('lti_registrations.id'))
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.references('courses.id'))
    .addColumn('resource_link_id', 'uuid', (c) => c.references('resource_links.id'))
    .addColumn('message_type', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull()) // 'learner' | 'course_team' | 'staff'
    .addColumn('roles', 'jsonb', (c) => c.notNull()) // the raw role URIs, as evidence
    .addColumn('deployment_id', 'text', (c) => c.notNull())
    .addColumn('target_link_uri', 'text', (c) => c.notNull())
    .addColumn('custom', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('ags', 'jsonb') // AGS endpoint claim, when sent
    .addColumn('nrps', 'jsonb') // NRPS claim, when sent
    .addColumn('deep_linking', 'jsonb') // deep_linking_settings, when sent
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('lti_launches_learner_idx')
    .on('lti_launches')
    .columns(['learner_id', 'created_at'])
    .execute();
  await db.schema.createIndex('lti_launches_course_idx').on('lti_launches').column('course_id').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'lti_launches',
    'resource_links',
    'courses',
    'learners',
    'lti_nonces',
    'lti_tool_keys',
    'lti_registrations',
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
