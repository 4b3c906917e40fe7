import { type Kysely, sql } from 'kysely';

/**
 * LTI Advantage services: the durable outbox of AGS scores (posted to the platform by a worker that any
 * instance may run), the per learner × line item clock that keeps score timestamps strictly increasing,
 * NRPS memberships of each context and their sync state, and leases so that one instance only runs a
 * scheduled job.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('lti_score_outbox')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    // Enqueue order: a learner's scores for one line item are sent in this order, never two at once.
    .addColumn('seq', 'bigserial', (c) => c.notNull().unique())
    .addColumn('registration_id', 'uuid', (c) => c.notNull().references('lti_registrations.id'))
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.references('courses.id'))
    .addColumn('resource_link_id', 'uuid', (c) => c.references('resource_links.id'))
    .addColumn('launch_id', 'uuid', (c) => c.references('lti_launches.id'))
    .addColumn('module_id', 'text') // what was completed, for operators
    .addColumn('lineitem_url', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull()) // the platform's `sub`
    .addColumn('score_given', 'double precision', (c) => c.notNull())
    .addColumn('score_maximum', 'double precision', (c) => c.notNull())
    .addColumn('activity_progress', 'text', (c) => c.notNull())
    .addColumn('grading_progress', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull()) // when the learner earned it
    .addColumn('score_timestamp', 'timestamptz') // the `timestamp` of the last attempt
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending')) // pending | sent | failed | superseded
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('locked_by', 'text')
    .addColumn('locked_until', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('last_http_status', 'integer')
    .addColumn('idempotency_key', 'text', (c) => c.unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .addCheckConstraint('lti_score_outbox_status_ck', sql`status in ('pending', 'sent', 'failed', 'superseded')`)
    .execute();
  await db.schema
    .createIndex('lti_score_outbox_due_idx')
    .on('lti_score_outbox')
    .columns(['next_attempt_at'])
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema
    .createIndex('lti_score_outbox_key_idx')
    .on('lti_score_outbox')
    .columns(['lineitem_url', 'user_id', 'seq'])
    .execute();
  await db.schema.createIndex('lti_score_outbox_learner_idx').on('lti_score_outbox').column('learner_id').execute();

  await db.schema
    .createTable('lti_score_clocks')
    .addColumn('lineitem_url', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('last_timestamp', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('lti_score_clocks_pk', ['lineitem_url', 'user_id'])
    .execute();

  await db.schema
    .createTable('lti_membership_syncs')
    .addColumn('course_id', 'uuid', (c) => c.primaryKey().references('courses.id').onDelete('cascade'))
    .addColumn('registration_id', 'uuid', (c) => c.notNull().references('lti_registrations.id'))
    .addColumn('context_memberships_url', 'text', (c) => c.notNull())
    .addColumn('last_started_at', 'timestamptz')
    .addColumn('last_synced_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('member_count', 'integer')
    .addColumn('page_count', 'integer')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('lti_memberships')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull()) // the platform's `sub`, as in learners.sub
    .addColumn('status', 'text', (c) => c.notNull()) // NRPS: Active | Inactive | Deleted
    .addColumn('roles', 'jsonb', (c) => c.notNull())
    .addColumn('is_learner', 'boolean', (c) => c.notNull())
    // Only sent when the course shares PII with the tool.
    .addColumn('name', 'text')
    .addColumn('given_name', 'text')
    .addColumn('family_name', 'text')
    .addColumn('email', 'text')
    .addColumn('first_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('removed_at', 'timestamptz') // absent from the last complete list
    .addUniqueConstraint('lti_memberships_course_user_uq', ['course_id', 'user_id'])
    .execute();

  await db.schema
    .createTable('lti_service_leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'lti_service_leases',
    'lti_memberships',
    'lti_membership_syncs',
    'lti_score_clocks',
    'lti_score_outbox',
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
