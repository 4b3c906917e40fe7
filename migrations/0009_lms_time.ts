import { type Kysely, sql } from 'kysely';

/**
 * Common-trunk time estimated from Open edX logs: the imported events (tracking logs and xAPI statements,
 * minimal fields, append-only, one row per distinct event), the import journal, the explicit LMS user →
 * learner mapping, and per learner × course estimated totals with their algorithm and parameters.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('lms_imports')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull()) // tracking-log | xapi | auto
    .addColumn('issuer', 'text')
    .addColumn('lines', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('inserted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('duplicates', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('malformed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('skipped', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('lms_events')
    // SHA-256 of the event as received (the statement id for xAPI): the same event imported twice is one row.
    .addColumn('hash', 'text', (c) => c.primaryKey())
    .addColumn('source', 'text', (c) => c.notNull()) // tracking-log | xapi
    .addColumn('issuer', 'text') // the LMS, when the import named it
    .addColumn('lms_username', 'text', (c) => c.notNull())
    .addColumn('lms_user_id', 'text')
    .addColumn('course_context_id', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('event_source', 'text')
    .addColumn('session_id', 'text')
    .addColumn('import_id', 'uuid', (c) => c.notNull().references('lms_imports.id'))
    .addColumn('imported_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('lms_events_source_ck', sql`source in ('tracking-log', 'xapi')`)
    .execute();
  await db.schema
    .createIndex('lms_events_pair_idx')
    .on('lms_events')
    .columns(['course_context_id', 'lms_username', 'occurred_at'])
    .execute();
  // Evidence: events are never edited or removed by the application.
  await sql`
    create function lms_events_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'lms_events is append-only';
    end $$`.execute(db);
  await sql`
    create trigger lms_events_append_only before update or delete on lms_events
    for each row execute function lms_events_append_only()`.execute(db);

  await db.schema
    .createTable('lms_user_mappings')
    .addColumn('lms_username', 'text', (c) => c.primaryKey())
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('source', 'text', (c) => c.notNull()) // cli | csv:<file>
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('lms_time_totals')
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('lms_usernames', 'jsonb', (c) => c.notNull())
    .addColumn('event_count', 'integer', (c) => c.notNull())
    .addColumn('session_count', 'integer', (c) => c.notNull())
    .addColumn('session_ms', 'bigint', (c) => c.notNull())
    .addColumn('overlap_ms', 'bigint', (c) => c.notNull())
    .addColumn('estimated_ms', 'bigint', (c) => c.notNull())
    .addColumn('estimated_seconds', 'integer', (c) => c.notNull())
    .addColumn('first_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_at', 'timestamptz', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('params', 'jsonb', (c) => c.notNull())
    .addColumn('computed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('lms_time_totals_pk', ['learner_id', 'course_id'])
    .execute();
  await db.schema.createIndex('lms_time_totals_course_idx').on('lms_time_totals').column('course_id').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see above.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('lms_time_totals').execute();
  await db.schema.dropTable('lms_user_mappings').execute();
  await db.schema.dropTable('lms_events').execute();
  await sql`drop function if exists lms_events_append_only()`.execute(db);
  await db.schema.dropTable('lms_imports').execute();
}
