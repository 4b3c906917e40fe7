import { sql, type Transaction } from 'kysely';
import type { Database } from '../../db/index.js';
import type { FocusState } from '../rules.js';
import { date, ms, type Q } from './shared.js';

/** `tracking_learners` (migrations 0004 and 0008): each learner's chain head and focus, locked per batch. */

export interface LearnerRow {
  learnerId: string;
  chainHead: string;
  chainLength: number;
  focus: FocusState;
}

/** Locks every learner's row in id order (one order for all instances: no deadlock), creating missing ones. */
export async function lockLearners(trx: Transaction<Database>, learnerIds: readonly string[]): Promise<LearnerRow[]> {
  const ids = [...new Set(learnerIds)].sort();
  if (ids.length === 0) return [];
  const select = () =>
    trx
      .selectFrom('tracking_learners')
      .selectAll()
      .where('learner_id', 'in', ids)
      .orderBy('learner_id')
      .forNoKeyUpdate()
      .execute();
  let rows = await select();
  if (rows.length < ids.length) {
    // Rows locked so far stay locked; the new ones are inserted in id order, then everything is locked again.
    const have = new Set(rows.map((r) => r.learner_id));
    await trx
      .insertInto('tracking_learners')
      .values(ids.filter((id) => !have.has(id)).map((learner_id) => ({ learner_id })))
      .onConflict((oc) => oc.column('learner_id').doNothing())
      .execute();
    rows = await select();
  }
  return rows.map((r) => ({
    learnerId: r.learner_id,
    chainHead: r.chain_head,
    chainLength: r.chain_length,
    focus: { tabId: r.focus_tab_id, inputMs: ms(r.focus_input_at), lastMarkMs: ms(r.focus_mark_at) },
  }));
}

/** PostgreSQL's clock, read after the locks: one clock for every instance, and monotonic per learner. */
export async function databaseNow(trx: Q): Promise<number> {
  const { rows } = await sql<{
    now: number;
  }>`select floor(extract(epoch from clock_timestamp()) * 1000)::bigint as now`.execute(trx);
  return Number((rows[0] as { now: number }).now);
}

export async function saveLearners(
  trx: Q,
  rows: ReadonlyArray<{ learnerId: string; chainHead: string; chainLength: number; focus: FocusState }>,
): Promise<void> {
  if (rows.length === 0) return;
  await trx
    .insertInto('tracking_learners')
    .values(
      rows.map((r) => ({
        learner_id: r.learnerId,
        chain_head: r.chainHead,
        chain_length: r.chainLength,
        focus_tab_id: r.focus.tabId,
        focus_input_at: date(r.focus.inputMs),
        focus_mark_at: date(r.focus.lastMarkMs),
      })),
    )
    .onConflict((oc) =>
      oc.column('learner_id').doUpdateSet((eb) => ({
        chain_head: eb.ref('excluded.chain_head'),
        chain_length: eb.ref('excluded.chain_length'),
        focus_tab_id: eb.ref('excluded.focus_tab_id'),
        focus_input_at: eb.ref('excluded.focus_input_at'),
        focus_mark_at: eb.ref('excluded.focus_mark_at'),
        updated_at: sql`now()`,
      })),
    )
    .execute();
}
