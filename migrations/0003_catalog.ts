import { type Kysely, sql } from 'kysely';

/**
 * Catalog: funds (OPCO) and the branches (IDCC) they cover, tracks and themes, versioned module
 * packages, learner profiles (onboarding) and per-module progress kept as completion evidence.
 * Content rows are loaded from `content/` by `npm run content -- import` (or at start).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('funds')
    .addColumn('slug', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('historical_name', 'text')
    .addColumn('sectors', 'jsonb', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    // Version of funds.json that last wrote this row; a fund dropped from the file stays, inactive,
    // because profiles and evidence refer to it.
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('branches')
    .addColumn('idcc', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('fund_slug', 'text', (c) => c.notNull().references('funds.slug'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('branches_fund_idx').on('branches').column('fund_slug').execute();

  await db.schema
    .createTable('tracks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('themes')
    .addColumn('track_id', 'text', (c) => c.notNull().references('tracks.id'))
    .addColumn('slug', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('trunk', 'text', (c) => c.notNull()) // 'common' | 'sector'
    .addColumn('position', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('themes_pk', ['track_id', 'slug'])
    .execute();

  await db.schema
    .createTable('modules')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('track_id', 'text', (c) => c.notNull())
    .addColumn('theme_slug', 'text', (c) => c.notNull())
    .addColumn('fund_slug', 'text', (c) => c.references('funds.slug')) // null: common trunk
    .addColumn('branches', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`)) // IDCC codes of a variant
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('nominal_minutes', 'integer', (c) => c.notNull())
    .addColumn('current_version', 'integer', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addForeignKeyConstraint('modules_theme_fk', ['track_id', 'theme_slug'], 'themes', ['track_id', 'slug'])
    .execute();
  await db.schema.createIndex('modules_theme_idx').on('modules').columns(['track_id', 'theme_slug']).execute();

  await db.schema
    .createTable('module_versions')
    .addColumn('module_id', 'text', (c) => c.notNull().references('modules.id'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('manifest', 'jsonb', (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('source_path', 'text', (c) => c.notNull())
    .addColumn('imported_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('module_versions_pk', ['module_id', 'version'])
    .execute();

  await db.schema
    .createTable('learner_profiles')
    .addColumn('learner_id', 'uuid', (c) => c.primaryKey().references('learners.id').onDelete('cascade'))
    .addColumn('civility', 'text', (c) => c.notNull()) // 'madame' | 'monsieur' | 'non_precise'
    .addColumn('family_name', 'text', (c) => c.notNull())
    .addColumn('given_name', 'text', (c) => c.notNull())
    .addColumn('company_name', 'text', (c) => c.notNull())
    .addColumn('company_siret', 'text', (c) => c.notNull())
    .addColumn('headcount_band', 'text', (c) => c.notNull())
    .addColumn('idcc', 'text') // the company's branch, when the learner knows it
    .addColumn('fund_slug', 'text', (c) => c.notNull().references('funds.slug'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // Who wrote the current values: the learner, or a course-team member correcting them.
    .addColumn('updated_by', 'uuid', (c) => c.references('learners.id'))
    .addColumn('updated_by_role', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('learner_profiles_fund_idx').on('learner_profiles').column('fund_slug').execute();

  await db.schema
    .createTable('module_progress')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id').onDelete('cascade'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id').onDelete('cascade'))
    .addColumn('module_id', 'text', (c) => c.notNull())
    // The version the learner started: a later import does not move them to new content mid-way.
    .addColumn('module_version', 'integer', (c) => c.notNull())
    .addColumn('resource_link_id', 'uuid', (c) => c.references('resource_links.id').onDelete('set null'))
    .addColumn('fund_slug', 'text') // the fund the module was served for (null: common trunk)
    .addColumn('blocks_seen', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`)) // blockId → ISO time
    .addColumn('quiz_answers', 'jsonb') // { answers, correct, total, answeredAt }
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('completed_at', 'timestamptz')
    .addForeignKeyConstraint('module_progress_version_fk', ['module_id', 'module_version'], 'module_versions', [
      'module_id',
      'version',
    ])
    .addUniqueConstraint('module_progress_learner_course_module_uq', ['learner_id', 'course_id', 'module_id'])
    .execute();
  await db.schema
    .createIndex('module_progress_course_idx')
    .on('module_progress')
    .columns(['course_id', 'completed_at'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'module_progress',
    'learner_profiles',
    'module_versions',
    'modules',
    'themes',
    'tracks',
    'branches',
    'funds',
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
