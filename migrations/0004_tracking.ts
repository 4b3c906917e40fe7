import { type Kysely, sql } from 'kysely';

/**
 * Connection time (docs/time-accounting.md): tabs (one page load each), runs updated in place, the hash-chained
 * evidence of everything else, per-learner chain heads, daily digests, and totals kept incrementally.
 * Times are server times (PostgreSQL's clock), stored to the millisecond.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  // One row per learner: the head of their evidence chain, and which tab had their latest input. Every
  // ingest locks this row first, so one learner's records are written by one transaction at a time.
  await db.schema
    .createTable('tracking_learners')
    .addColumn('learner_id', 'uuid', (c) => c.primaryKey().references('learners.id').onDelete('restrict'))
    .addColumn('chain_length', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('chain_head', 'text', (c) => c.notNull().defaultTo('0'.repeat(64)))
    .addColumn('focus_tab_id', 'uuid')
    .addColumn('focus_input_at', 'timestamptz')
    .addColumn('focus_mark_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('tracking_tabs')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`)) // the page's tabId
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('module_id', 'text', (c) => c.notNull())
    .addColumn('module_version', 'integer')
    .addColumn('nominal_minutes', 'integer', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('profile', 'text', (c) => c.notNull()) // 'standard' | 'accelerated'
    .addColumn('params', 'jsonb', (c) => c.notNull()) // the run parameters that applied
    .addColumn('user_agent', 'text') // access-restricted evidence
    .addColumn('ip_prefix', 'text') // truncated: /24 (IPv4) or /48 (IPv6)
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('opened_at', 'timestamptz')
    .addColumn('closed_at', 'timestamptz')
    .addColumn('last_seq', 'integer')
    .addColumn('missing_seqs', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('last_accepted_beat_at', 'timestamptz')
    .addColumn('current_run_id', 'uuid')
    .addColumn('rate_window_start', 'timestamptz')
    .addColumn('rate_window_items', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('dropped_items', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('tracking_tabs_learner_course_idx')
    .on('tracking_tabs')
    .columns(['learner_id', 'course_id'])
    .execute();

  // A run: beats of one tab at most gapMs apart, kept as one row updated in place.
  await db.schema
    .createTable('tracking_runs')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tab_id', 'uuid', (c) => c.notNull().references('tracking_tabs.id'))
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('module_id', 'text', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_beat_at', 'timestamptz', (c) => c.notNull())
    .addColumn('beat_count', 'integer', (c) => c.notNull())
    .addColumn('first_seq', 'integer', (c) => c.notNull())
    .addColumn('last_seq', 'integer', (c) => c.notNull())
    .addColumn('rolling_hash', 'text', (c) => c.notNull())
    .addColumn('sealed', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // last_beat_at is left out of every index so that the update of each beat can stay a HOT update.
  await db.schema
    .createIndex('tracking_runs_learner_course_idx')
    .on('tracking_runs')
    .columns(['learner_id', 'course_id'])
    .execute();
  await db.schema.createIndex('tracking_runs_tab_idx').on('tracking_runs').column('tab_id').execute();
  await sql`create index tracking_runs_unsealed_idx on tracking_runs (learner_id) where not sealed`.execute(db);

  // Append-only evidence, hash-chained per learner: hash = SHA-256(prev_hash || canonical JSON of the record).
  await db.schema
    .createTable('tracking_events')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('chain_index', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull()) // tab | open | close | rejected | run_start | run_end | focus
    .addColumn('course_id', 'uuid')
    .addColumn('module_id', 'text')
    .addColumn('tab_id', 'uuid')
    .addColumn('seq', 'integer')
    .addColumn('server_time', 'timestamptz', (c) => c.notNull())
    .addColumn('client_time', 'text')
    .addColumn('reason', 'text')
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addUniqueConstraint('tracking_events_chain_uq', ['learner_id', 'chain_index'])
    .execute();
  // Exactly once per (tab, seq): the database refuses a second record of the same item whatever the caller.
  await sql`create unique index tracking_events_tab_seq_uq on tracking_events (tab_id, seq) where seq is not null`.execute(
    db,
  );
  await db.schema
    .createIndex('tracking_events_learner_course_kind_idx')
    .on('tracking_events')
    .columns(['learner_id', 'course_id', 'kind'])
    .execute();
  await db.schema.createIndex('tracking_events_time_idx').on('tracking_events').column('server_time').execute();
  await sql`create function tracking_events_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'tracking_events is append-only (evidence)';
end $$`.execute(db);
  await sql`create trigger tracking_events_no_change before update or delete on tracking_events
for each row execute function tracking_events_append_only()`.execute(db);

  // A digest per Paris day of every learner's chain head at the end of that day.
  await db.schema
    .createTable('tracking_digests')
    .addColumn('day', 'date', (c) => c.primaryKey())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('learner_count', 'integer', (c) => c.notNull())
    .addColumn('event_count', 'bigint', (c) => c.notNull())
    .addColumn('heads', 'jsonb', (c) => c.notNull())
    .addColumn('computed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // Totals, maintained by the ingest and rebuilt by `time recompute`; algorithm and parameters beside each.
  await db.schema
    .createTable('time_totals')
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('module_id', 'text', (c) => c.notNull())
    .addColumn('nominal_minutes', 'integer', (c) => c.notNull())
    .addColumn('measured_ms', 'bigint', (c) => c.notNull())
    .addColumn('credited_ms', 'bigint', (c) => c.notNull())
    .addColumn('measured_seconds', 'integer', (c) => c.notNull())
    .addColumn('credited_seconds', 'integer', (c) => c.notNull())
    .addColumn('cap_seconds', 'integer', (c) => c.notNull())
    .addColumn('first_at', 'timestamptz')
    .addColumn('last_at', 'timestamptz')
    .addColumn('rejected_items', 'integer', (c) => c.notNull())
    .addColumn('flags', 'jsonb', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('params', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('time_totals_pk', ['learner_id', 'course_id', 'module_id'])
    .execute();
  await db.schema
    .createIndex('time_totals_course_idx')
    .on('time_totals')
    .columns(['course_id', 'learner_id'])
    .execute();

  await db.schema
    .createTable('time_course_totals')
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('measured_ms', 'bigint', (c) => c.notNull())
    .addColumn('credited_ms', 'bigint', (c) => c.notNull())
    .addColumn('measured_seconds', 'integer', (c) => c.notNull())
    .addColumn('credited_seconds', 'integer', (c) => c.notNull())
    .addColumn('rejected_items', 'integer', (c) => c.notNull())
    .addColumn('long_days', 'jsonb', (c) => c.notNull())
    .addColumn('flags', 'jsonb', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('params', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('time_course_totals_pk', ['learner_id', 'course_id'])
    .execute();
  await db.schema.createIndex('time_course_totals_course_idx').on('time_course_totals').column('course_id').execute();

  await db.schema
    .createTable('time_day_totals')
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('day', 'date', (c) => c.notNull()) // Europe/Paris
    .addColumn('measured_ms', 'bigint', (c) => c.notNull())
    .addColumn('modules', 'jsonb', (c) => c.notNull()) // module id → ms attributed that day
    .addColumn('long_day', 'boolean', (c) => c.notNull())
    .addPrimaryKeyConstraint('time_day_totals_pk', ['learner_id', 'course_id', 'day'])
    .execute();

  // Rows updated in place at every beat: room on each page keeps those updates HOT (no index writes).
  for (const t of [
    'tracking_learners',
    'tracking_tabs',
    'tracking_runs',
    'time_totals',
    'time_course_totals',
    'time_day_totals',
  ]) {
    await sql`alter table ${sql.table(t)} set (fillfactor = 70)`.execute(db);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'time_day_totals',
    'time_course_totals',
    'time_totals',
    'tracking_digests',
    'tracking_events',
    'tracking_runs',
    'tracking_tabs',
    'tracking_learners',
  ]) {
    await db.schema.dropTable(t).execute();
  }
  await sql`drop function if exists tracking_events_append_only()`.execute(db);
}
