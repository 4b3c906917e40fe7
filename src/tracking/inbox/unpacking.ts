import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../../db/index.js';
import { isJournalV1 } from './journal.js';

/**
 * Unpacking (migrations 0008 and 0012): journal rows become `tracking_inbox` rows, one per item; a row PostgreSQL
 * cannot read is set aside whole in `tracking_journal_quarantine`.
 */

type UnpackOptions = {
  receivedBy?: Date;
  contains?: string;
  /** One journal row only (the row-by-row retry). */
  id?: string;
  skipLocked: boolean;
  maxRows: number;
};

/**
 * Moves journal rows into `tracking_inbox`, one row per item, each at its journal row's `received_at`; a copy of
 * an item already in the inbox is dropped there (unique on learner × tab × seq). One statement: the journal
 * rows are deleted in the same transaction. `skipLocked`: leave rows another consumer is unpacking (the
 * background loop); otherwise wait for it (settling, so that everything received before is in the inbox after).
 * `contains`: only rows whose text holds this id (a learner's or a course's, as the ingest wrote it).
 *
 * A slice that fails on a row PostgreSQL cannot read is taken again row by row, and that row is set aside
 * (`quarantined`, see `unpackRowByRow`).
 */
export async function unpackJournal(
  db: Db,
  options: Omit<UnpackOptions, 'id'>,
): Promise<{ rows: number; items: number; quarantined: string[] }> {
  try {
    return { ...(await unpackTransaction(db, options)), quarantined: [] };
  } catch (error) {
    if (!isUnreadableRow(error)) throw error;
    return unpackRowByRow(db, options);
  }
}

function unpackTransaction(db: Db, options: UnpackOptions): Promise<{ rows: number; items: number }> {
  // PostgreSQL estimates 100 rows per JSON array, so it JIT-compiles this statement: ~20 ms of a ~40 ms
  // statement for 1 000 items (measured). JIT is off for this transaction only.
  return db.transaction().execute(async (trx) => {
    await sql`set local jit = off`.execute(trx);
    return unpackIn(trx, options);
  });
}

/**
 * What PostgreSQL answers for a journal row it cannot read as "journal-v1": a data exception (invalid JSON,
 * UUID or integer…) or a NOT NULL / CHECK constraint of the inbox. Validation at the ingest makes this a bug
 * or a hand edit, never a sender's doing.
 */
function isUnreadableRow(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code === '23502' || code === '23514');
}

/**
 * The slice again, one row per transaction, after it failed on a row PostgreSQL cannot read: the good rows
 * are unpacked, and a row that fails on its own is moved whole to `tracking_journal_quarantine` with the
 * error. So one such row never stops the crediting of everyone else (it would otherwise fail every slice, and
 * hold the credit horizon at its `received_at`).
 */
async function unpackRowByRow(
  db: Db,
  options: Omit<UnpackOptions, 'id'>,
): Promise<{ rows: number; items: number; quarantined: string[] }> {
  const { rows: slice } = await sql<{ id: string }>`${journalSlice(options, sql``)}`.execute(db);
  const total = { rows: 0, items: 0, quarantined: [] as string[] };
  for (const { id } of slice) {
    try {
      const r = await unpackTransaction(db, { ...options, id: String(id) });
      total.rows += r.rows;
      total.items += r.items;
    } catch (error) {
      if (!isUnreadableRow(error)) throw error;
      // Only a row that is itself malformed is set aside. A well-formed row failing means the statement or
      // the schema is at fault (a bug, a deploy half done): every row would fail, so crediting stops loudly
      // and nothing is moved.
      const row = await db
        .selectFrom('tracking_journal')
        .select('body')
        .where('id', '=', String(id))
        .executeTakeFirst();
      if (!row) continue; // unpacked meanwhile by another consumer
      if (isJournalV1(row.body)) throw error;
      const { code, message, detail } = error as { code: string; message: string; detail?: string };
      const lock = rowLock(options.skipLocked);
      const { rows: moved } = await sql<{ journal_id: string }>`
        with j as (
          delete from tracking_journal where id in (select id from tracking_journal where id = ${String(id)} ${lock})
          returning id, received_at, item_count, body
        )
        insert into tracking_journal_quarantine (journal_id, received_at, item_count, body, error)
        select id, received_at, item_count, body, ${`${code}: ${message}${detail ? ` (${detail})` : ''}`} from j
        returning journal_id`.execute(db);
      total.rows += moved.length;
      total.quarantined.push(...moved.map((m) => String(m.journal_id)));
    }
  }
  return total;
}

/** `skipLocked`: leave rows another consumer holds; otherwise wait for them. */
function rowLock(skipLocked: boolean) {
  return skipLocked ? sql`for update skip locked` : sql`for update`;
}

/** The ids of the journal rows a slice takes, oldest first. */
function journalSlice(options: UnpackOptions, lock: ReturnType<typeof sql>) {
  const conds = [sql`true`];
  if (options.receivedBy) conds.push(sql`received_at <= ${options.receivedBy}`);
  if (options.contains) conds.push(sql`strpos(body, ${options.contains.toLowerCase()}) > 0`);
  if (options.id) conds.push(sql`id = ${options.id}`);
  return sql`select id from tracking_journal where ${sql.join(conds, sql` and `)}
    order by received_at, id limit ${options.maxRows} ${lock}`;
}

async function unpackIn(trx: Transaction<Database>, options: UnpackOptions): Promise<{ rows: number; items: number }> {
  const lock = rowLock(options.skipLocked);
  const { rows } = await sql<{ rows: string; items: string }>`
    with j as (
      delete from tracking_journal where id in (${journalSlice(options, lock)})
      returning id, received_at, item_count, body
    ),
    ins as (
      insert into tracking_inbox (learner_id, course_id, tab_id, seq, kind, module_id, module_version,
        nominal_minutes, role, profile, token_expired, not_learner, client_time, input_ago_ms, media, cause,
        ip_prefix, user_agent, received_at)
      select (q.r->>'learner_id')::uuid, (q.r->>'course_id')::uuid, (q.r->>'tab_id')::uuid, (i.x->>'seq')::integer,
        i.x->>'kind', q.r->>'module_id', (q.r->>'module_version')::integer, (q.r->>'nominal_minutes')::integer,
        q.r->>'role', q.r->>'profile', (q.r->>'token_expired')::boolean, (q.r->>'not_learner')::boolean,
        i.x->>'client_time', (i.x->>'input_ago_ms')::integer, (i.x->>'media')::boolean, i.x->>'cause',
        q.r->>'ip_prefix', q.r->>'user_agent', j.received_at
      from j
      cross join lateral jsonb_array_elements(j.body::jsonb) with ordinality as q(r, rn)
      cross join lateral jsonb_array_elements(q.r->'items') with ordinality as i(x, xn)
      order by j.received_at, j.id, q.rn, i.xn
      on conflict (learner_id, tab_id, seq) do nothing
      returning 1
    )
    select (select count(*) from j) as rows, (select count(*) from ins) as items`.execute(trx);
  return { rows: Number(rows[0]?.rows ?? 0), items: Number(rows[0]?.items ?? 0) };
}

/**
 * The instant before which every item has reached the inbox: now minus the settle lag (rows of other
 * instances' in-flight statements become visible meanwhile), and never past a journal row still waiting to be
 * unpacked (another consumer's, or one this slice did not reach), so that a learner's items are always credited
 * in the order they were received, whichever consumer unpacks them.
 */
export function creditHorizon(settleLagMs: number) {
  return sql`least(clock_timestamp() - (${settleLagMs} * interval '1 millisecond'),
    coalesce((select min(received_at) from tracking_journal), 'infinity'::timestamptz))`;
}
