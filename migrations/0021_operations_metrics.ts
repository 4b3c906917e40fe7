import { type Kysely, sql } from 'kysely';

/**
 * `/metrics` reads the score outbox's failed rows at every scrape: a partial index keeps that count off the
 * table's sent rows, which grow with every score ever delivered (the pending rows already have one).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index lti_score_outbox_failed_idx on lti_score_outbox (updated_at) where status = 'failed'`.execute(
    db,
  );
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists lti_score_outbox_failed_idx`.execute(db);
}
