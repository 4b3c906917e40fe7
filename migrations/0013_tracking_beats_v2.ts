import type { Kysely } from 'kysely';

/**
 * beats-v2 (docs/time-accounting.md): a run records the stop beat that ended it (cause, receive time, and the
 * run's end just before it, from which beats-v1 figures can be re-derived from the same evidence), and the
 * counters the plausibility flag on scripted-looking runs reads (shortest and longest step between periodic
 * beats, beats reporting an input). Runs recorded before keep nulls and zero: they were built without stops.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('tracking_runs')
    .addColumn('stop_cause', 'text')
    .addColumn('stop_at', 'timestamptz')
    .addColumn('before_stop_at', 'timestamptz')
    .addColumn('min_step_ms', 'integer')
    .addColumn('max_step_ms', 'integer')
    .addColumn('input_beats', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('tracking_runs')
    .dropColumn('stop_cause')
    .dropColumn('stop_at')
    .dropColumn('before_stop_at')
    .dropColumn('min_step_ms')
    .dropColumn('max_step_ms')
    .dropColumn('input_beats')
    .execute();
}
