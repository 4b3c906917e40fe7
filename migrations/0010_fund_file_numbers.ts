import { type Kysely, sql } from 'kysely';

/**
 * OPCO file numbers (« numéro de dossier de prise en charge »): one per fund × course session × company
 * SIRET, with who set it and when. Every change is also written to the audit log (0006_portal); this
 * table keeps the history of values too, append-only.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('fund_file_numbers')
    .addColumn('fund_slug', 'text', (c) => c.notNull().references('funds.slug'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('company_siret', 'text', (c) => c.notNull())
    .addColumn('file_number', 'text', (c) => c.notNull())
    .addColumn('set_by_user_id', 'uuid', (c) => c.references('portal_users.id'))
    .addColumn('set_by_username', 'text', (c) => c.notNull())
    .addColumn('set_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('fund_file_numbers_pk', ['fund_slug', 'course_id', 'company_siret'])
    .addCheckConstraint('fund_file_numbers_siret_ck', sql`company_siret ~ '^[0-9]{14}$'`)
    .addCheckConstraint(
      'fund_file_numbers_number_ck',
      sql`length(file_number) between 1 and 50 and file_number = btrim(file_number)`,
    )
    .execute();
  await db.schema
    .createIndex('fund_file_numbers_course_idx')
    .on('fund_file_numbers')
    .columns(['course_id', 'company_siret'])
    .execute();

  await db.schema
    .createTable('fund_file_number_history')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('fund_slug', 'text', (c) => c.notNull())
    .addColumn('course_id', 'uuid', (c) => c.notNull())
    .addColumn('company_siret', 'text', (c) => c.notNull())
    .addColumn('previous_number', 'text')
    // null: the number was cleared.
    .addColumn('file_number', 'text')
    .addColumn('set_by_user_id', 'uuid')
    .addColumn('set_by_username', 'text', (c) => c.notNull())
    .addColumn('via', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('fund_file_number_history_key_idx')
    .on('fund_file_number_history')
    .columns(['fund_slug', 'course_id', 'company_siret', 'at'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('fund_file_number_history').execute();
  await db.schema.dropTable('fund_file_numbers').execute();
}
