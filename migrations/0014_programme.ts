import type { Kysely } from 'kysely';

/**
 * The programme as funded (docs/programme.md): a theme holds several modules in order, and the track
 * states its pacing (the week of each theme, how many modules each theme holds, the planned duration).
 * Existing rows keep their meaning: every module already imported is its theme's module 1. A branch may
 * also name its own OPCA of 2017 when it was not its fund's.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('modules')
    .addColumn('position', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema.alterTable('themes').addColumn('week', 'integer').execute();
  await db.schema
    .alterTable('themes')
    .addColumn('module_count', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema.alterTable('tracks').addColumn('planned_minutes', 'integer').execute();
  await db.schema.alterTable('tracks').addColumn('weeks', 'jsonb').execute();
  // A branch whose OPCA in 2017 was not its fund's (funds.json `branches[].historicalName`).
  await db.schema.alterTable('branches').addColumn('historical_name', 'text').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('branches').dropColumn('historical_name').execute();
  await db.schema.alterTable('tracks').dropColumn('weeks').dropColumn('planned_minutes').execute();
  await db.schema.alterTable('themes').dropColumn('module_count').dropColumn('week').execute();
  await db.schema.alterTable('modules').dropColumn('position').execute();
}
