import { type Kysely, sql } from 'kysely';

/**
 * Score outbox, second step (docs/score-outbox.md):
 * - `held_reason`: a pending score that waits for an operator (its registration is unknown or was
 *   removed, e.g. replaced by a new client ID) carries the reason here and is not claimed meanwhile;
 * - `waiting_for_platform`: the last attempt could not reach the platform; such rows are released
 *   together as soon as a probe of the platform's token endpoint succeeds;
 * - `retrying_since`: when the current retry window began (queued, or an operator's retry or
 *   re-target); the outbox gives up 7 days after it.
 * Scores that were marked failed only because their registration was unknown or removed were never
 * refused by a platform: they become pending again, held with that reason, for an operator to re-target.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('lti_score_outbox')
    .addColumn('held_reason', 'text')
    .addColumn('waiting_for_platform', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('retrying_since', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`update lti_score_outbox set retrying_since = created_at`.execute(db);
  await sql`
    update lti_score_outbox
    set status = 'pending',
        held_reason = last_error,
        retrying_since = now(),
        next_attempt_at = now(),
        updated_at = now()
    where status = 'failed' and last_error like 'registration % is unknown or removed%'`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('lti_score_outbox')
    .dropColumn('held_reason')
    .dropColumn('waiting_for_platform')
    .dropColumn('retrying_since')
    .execute();
}
