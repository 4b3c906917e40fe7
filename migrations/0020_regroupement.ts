import { type Kysely, sql } from 'kysely';

/**
 * Closing group sessions (« regroupement », docs/course-team.md §3): sessions a course team schedules per
 * course session and fund, learners' registrations and attendance, and the audit of every change.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('regroupement_sessions')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('fund_slug', 'text', (c) => c.notNull())
    .addColumn('starts_at', 'timestamptz', (c) => c.notNull())
    .addColumn('duration_minutes', 'integer', (c) => c.notNull().check(sql`duration_minutes between 15 and 480`))
    .addColumn('mode', 'text', (c) => c.notNull().check(sql`mode in ('online', 'onsite')`))
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('capacity', 'integer', (c) => c.notNull().check(sql`capacity between 1 and 1000`))
    .addColumn('attendance_code', 'text', (c) => c.notNull())
    .addColumn('created_by', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('cancelled_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('regroupement_sessions_course_idx')
    .on('regroupement_sessions')
    .columns(['course_id', 'fund_slug', 'starts_at'])
    .execute();
  await db.schema
    .createTable('regroupement_registrations')
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('regroupement_sessions.id'))
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('registered_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('attended_minutes', 'integer')
    .addColumn('attendance_source', 'text', (c) => c.check(sql`attendance_source in ('list', 'code')`))
    .addColumn('attendance_recorded_at', 'timestamptz')
    .addPrimaryKeyConstraint('regroupement_registrations_pk', ['session_id', 'learner_id'])
    .execute();
  await db.schema
    .createIndex('regroupement_registrations_learner_idx')
    .on('regroupement_registrations')
    .column('learner_id')
    .execute();
  await db.schema
    .createTable('regroupement_audit')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('regroupement_sessions.id'))
    .addColumn('actor_learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('actor_role', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema
    .createIndex('regroupement_audit_session_idx')
    .on('regroupement_audit')
    .columns(['session_id', 'at'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['regroupement_audit', 'regroupement_registrations', 'regroupement_sessions']) {
    await db.schema.dropTable(t).execute();
  }
}
