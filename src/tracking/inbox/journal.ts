import { type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Selectable, sql } from 'kysely';
import type { Db } from '../../db/index.js';
import type { TabMeta } from '../engine.js';
import type { RunProfile, TrackedItem } from '../rules.js';
import type { TrackingInboxTable } from '../tables.js';

/**
 * The journal (migration 0011): what the ingest acknowledges. Each batch of received requests is ONE row of
 * `tracking_journal` (format "journal-v1"), written in autocommit; the consumer unpacks it later.
 */

/**
 * received: committed to the journal (it will be credited, or kept as rejected evidence; a copy of an item
 * already received is credited once); duplicate: the same seq twice in one request; deferred: not stored.
 */
export type ReceiveStatus = 'received' | 'duplicate' | 'deferred';

export interface ReceiveRequest {
  learnerId: string;
  meta: Omit<TabMeta, 'profile'> & { profile: RunProfile };
  items: TrackedItem[];
  standing: { expired: boolean; notLearner: boolean };
  userAgent: string | null;
  ipPrefix: string | null;
}

export interface ReceiveOutcome {
  serverTimeMs: number;
  results: Array<{ seq: number; status: ReceiveStatus }>;
}
/**
 * One request as a journal row keeps it (format "journal-v1"): the ticket's verified facts, the session's
 * standing, and the items, with the names of `tracking_inbox`'s columns.
 */
type InboxColumns = Selectable<TrackingInboxTable>;
/** Per request: the columns of `tracking_inbox` shared by its items. */
type RequestColumns =
  | 'learner_id'
  | 'course_id'
  | 'tab_id'
  | 'module_id'
  | 'module_version'
  | 'nominal_minutes'
  | 'role'
  | 'profile'
  | 'token_expired'
  | 'not_learner'
  | 'ip_prefix'
  | 'user_agent';
export type JournalRequest = Pick<InboxColumns, RequestColumns> & {
  items: Array<
    Pick<InboxColumns, 'seq' | 'client_time' | 'input_ago_ms' | 'media' | 'cause'> & { kind: TrackedItem['kind'] }
  >;
};

const Int32 = Type.Integer({ minimum: -2_147_483_648, maximum: 2_147_483_647 });
const UuidText = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
});
const OrNull = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** The journal format "journal-v1", as `unpackIn` reads it into the inbox's columns. */
const JournalV1 = Type.Array(
  Type.Object({
    learner_id: UuidText,
    course_id: UuidText,
    tab_id: UuidText,
    module_id: Type.String(),
    module_version: OrNull(Int32),
    nominal_minutes: Int32,
    role: Type.String(),
    profile: Type.String(),
    token_expired: Type.Boolean(),
    not_learner: Type.Boolean(),
    ip_prefix: OrNull(Type.String()),
    user_agent: OrNull(Type.String()),
    items: Type.Array(
      Type.Object({
        seq: Int32,
        kind: Type.String(),
        client_time: OrNull(Type.String()),
        input_ago_ms: OrNull(Int32),
        media: OrNull(Type.Boolean()),
        cause: OrNull(Type.String()),
      }),
    ),
  }),
);

/**
 * Whether a journal row's text is "journal-v1" as the inbox can take it: JSON of the right shape, integers
 * that fit, and strings PostgreSQL's jsonb accepts (no NUL, no lone surrogate). What decides, when
 * PostgreSQL fails on a row, whether the row is at fault (set it aside) or the database is (stop loudly).
 */
export function isJournalV1(body: string): boolean {
  let textOk = true;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body, (_key, value: unknown) => {
      if (typeof value === 'string' && (value.includes('\u0000') || LONE_SURROGATE.test(value))) textOk = false;
      return value;
    });
  } catch {
    return false;
  }
  return textOk && Value.Check(JournalV1, parsed);
}
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * One statement in autocommit: the batch's requests as ONE journal row (JSON text, not parsed here: the
 * consumer unpacks it). Every item of the batch gets the row's `received_at` as its server time. Only a seq
 * repeated within one request is answered `duplicate` here; copies across requests are credited once by the
 * consumer (the inbox is unique on learner × tab × seq, and the engine ignores what a run already holds).
 * `fixedNow` replaces the database clock (tests).
 */
export async function appendToJournal(
  db: Db,
  requests: readonly ReceiveRequest[],
  fixedNow: number | null,
): Promise<ReceiveOutcome[]> {
  let count = 0;
  const results: ReceiveOutcome['results'][] = [];
  const body: JournalRequest[] = requests.map((r) => {
    const seen = new Set<number>();
    const answers: ReceiveOutcome['results'] = [];
    const items: JournalRequest['items'] = [];
    for (const item of r.items) {
      if (seen.has(item.seq)) {
        answers.push({ seq: item.seq, status: 'duplicate' });
        continue;
      }
      seen.add(item.seq);
      answers.push({ seq: item.seq, status: 'received' });
      items.push({
        seq: item.seq,
        kind: item.kind,
        client_time: item.clientTime ?? null,
        input_ago_ms: item.inputAgoMs ?? null,
        media: item.media ?? null,
        cause: item.cause ?? null,
      });
    }
    count += items.length;
    results.push(answers);
    return {
      learner_id: r.learnerId,
      course_id: r.meta.courseId,
      tab_id: r.meta.tabId,
      module_id: r.meta.moduleId,
      module_version: r.meta.moduleVersion,
      nominal_minutes: r.meta.nominalMinutes,
      role: r.meta.role,
      profile: r.meta.profile.name,
      token_expired: r.standing.expired,
      not_learner: r.standing.notLearner,
      ip_prefix: r.ipPrefix,
      user_agent: r.userAgent,
      items,
    };
  });
  const at = fixedNow === null ? null : new Date(fixedNow).toISOString();
  const { rows } = await sql<{ received_at: Date }>`
    insert into tracking_journal (item_count, body, received_at)
    values (${count}, ${JSON.stringify(body)}, coalesce(${at}::timestamptz, clock_timestamp()))
    returning received_at`.execute(db);
  const serverTimeMs = (rows[0] as { received_at: Date }).received_at.getTime();
  return results.map((r) => ({ serverTimeMs, results: r }));
}
