// One file (~590 lines): all SQL of the privacy capability; its writes go through the append-only guards opened by privacyMode below.
import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
import type { CertificateHoldInput, CourseActivity } from './rules.js';
import type { ErasureHold } from './tables.js';

/** All SQL of the privacy capability (docs/privacy.md). */

export type Q = Db | Transaction<Database>;
export type Trx = Transaction<Database>;

/**
 * Opens the narrow way through the append-only guards (migration 0018), for this transaction only:
 * `purge` deletes, `redact` changes an evidence record's data, `erase` changes an LMS event's username.
 */
export async function privacyMode(trx: Trx, mode: 'purge' | 'redact' | 'erase'): Promise<void> {
  await sql`select set_config('emargement.privacy', ${mode}, true)`.execute(trx);
}

/** Serialises purge and erasure transactions across instances (released at commit or rollback). */
export async function lockPrivacy(trx: Trx): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('emargement.privacy'))`.execute(trx);
}

export async function databaseNow(db: Q): Promise<Date> {
  const { rows } = await sql<{ now: Date }>`select now() as now`.execute(db);
  return (rows[0] as { now: Date }).now;
}

// ───────────────────────────── learners ─────────────────────────────

export interface LearnerRow {
  id: string;
  issuer: string;
  sub: string;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  email: string | null;
  username: string | null;
  created_at: Date;
  updated_at: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A learner by id, LTI `sub`, e-mail or LMS username; several matches are an error for the caller. */
export async function findLearners(db: Q, ref: string): Promise<LearnerRow[]> {
  const value = ref.trim();
  let q = db.selectFrom('learners').selectAll();
  q = UUID.test(value)
    ? q.where((eb) => eb.or([eb('id', '=', value), eb('sub', '=', value)]))
    : q.where((eb) =>
        eb.or([
          eb('sub', '=', value),
          eb(eb.fn('lower', ['email']), '=', value.toLowerCase()),
          eb('username', '=', value),
          eb('id', 'in', eb.selectFrom('lms_user_mappings').select('learner_id').where('lms_username', '=', value)),
        ]),
      );
  return q.orderBy('created_at').limit(5).execute();
}

export async function learnerById(db: Q, learnerId: string): Promise<LearnerRow | undefined> {
  return db.selectFrom('learners').selectAll().where('id', '=', learnerId).executeTakeFirst();
}

/** Locks the learner's row (a purge and an erasure of one learner never interleave). */
export async function lockLearner(trx: Trx, learnerId: string): Promise<LearnerRow | undefined> {
  return trx.selectFrom('learners').selectAll().where('id', '=', learnerId).forUpdate().executeTakeFirst();
}

export interface RetentionFacts {
  learner: LearnerRow;
  hasProfile: boolean;
  lastLaunchAt: Date | null;
  courses: CourseActivity[];
  certificates: Array<CertificateHoldInput & { courseId: string }>;
}

/** Everything the retention rule needs to know about one learner. */
export async function retentionFacts(db: Q, learner: LearnerRow): Promise<RetentionFacts> {
  const id = learner.id;
  const [profile, lastLaunch, activity, certificates] = await Promise.all([
    db.selectFrom('learner_profiles').select('learner_id').where('learner_id', '=', id).executeTakeFirst(),
    db
      .selectFrom('lti_launches')
      .select((eb) => eb.fn.max('created_at').as('at'))
      .where('learner_id', '=', id)
      .executeTakeFirst(),
    sql<{
      course_id: string;
      title: string | null;
      session_end: string | null;
      eu: boolean | null;
      last_at: Date | null;
      evidence: boolean;
    }>`
      with acts as (
        select course_id, max(created_at) as at, false as evidence from lti_launches
          where learner_id = ${id} and course_id is not null group by course_id
        union all select course_id, max(updated_at), true from module_progress where learner_id = ${id} group by course_id
        union all select course_id, max(created_at), true from tracking_tabs where learner_id = ${id} group by course_id
        union all select course_id, max(last_beat_at), true from tracking_runs where learner_id = ${id} group by course_id
        union all select course_id, max(last_at), true from lms_time_totals where learner_id = ${id} group by course_id
      )
      select a.course_id, c.title, r.session_end, s.eu_cofunded as eu, max(a.at) as last_at, bool_or(a.evidence) as evidence
      from acts a
      join courses c on c.id = a.course_id
      left join certificate_rules r on r.course_id = a.course_id
      left join privacy_course_sessions s on s.course_id = a.course_id
      group by a.course_id, c.title, r.session_end, s.eu_cofunded
      order by a.course_id`.execute(db),
    db
      .selectFrom('certificates as c')
      .leftJoin('privacy_course_sessions as s', 's.course_id', 'c.course_id')
      .select(['c.number', 'c.issued_at', 'c.course_id', 's.eu_cofunded'])
      .where('c.learner_id', '=', id)
      .orderBy('c.issued_at')
      .execute(),
  ]);
  return {
    learner,
    hasProfile: profile !== undefined,
    lastLaunchAt: lastLaunch?.at ? new Date(lastLaunch.at as unknown as string) : null,
    courses: activity.rows.map((r) => ({
      courseId: r.course_id,
      courseTitle: r.title,
      sessionEnd: r.session_end,
      lastActivity: r.last_at ? new Date(r.last_at) : null,
      euCofunded: r.eu === true,
      hasEvidence: r.evidence,
    })),
    certificates: certificates.map((c) => ({
      number: c.number,
      issuedAt: c.issued_at,
      courseId: c.course_id,
      euCofunded: c.eu_cofunded === true,
    })),
  };
}

/**
 * Learners that may be past every retention date, in id order after `after`: no launch since `quietSince`
 * (every kind of activity starts with a launch, so the last one bounds it) and created before it.
 */
export async function quietLearners(
  db: Q,
  quietSince: Date,
  after: string | null,
  limit: number,
): Promise<LearnerRow[]> {
  let q = db
    .selectFrom('learners as l')
    .selectAll('l')
    .where('l.created_at', '<', quietSince)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('lti_launches as x')
            .select('x.id')
            .whereRef('x.learner_id', '=', 'l.id')
            .where('x.created_at', '>=', quietSince),
        ),
      ),
    );
  if (after) q = q.where('l.id', '>', after);
  return q.orderBy('l.id').limit(limit).execute();
}

// ───────────────────────────── evidence ─────────────────────────────

export interface ChainState {
  chainLength: number;
  chainHead: string;
}

export async function lockChain(trx: Trx, learnerId: string): Promise<ChainState | null> {
  const row = await trx
    .selectFrom('tracking_learners')
    .select(['chain_length', 'chain_head'])
    .where('learner_id', '=', learnerId)
    .forUpdate()
    .executeTakeFirst();
  return row ? { chainLength: Number(row.chain_length), chainHead: row.chain_head } : null;
}

export interface TabEventRow {
  id: string;
  learner_id: string;
  chain_index: number;
  kind: string;
  course_id: string | null;
  module_id: string | null;
  tab_id: string | null;
  seq: number | null;
  server_time: Date;
  client_time: string | null;
  reason: string | null;
  data: unknown;
  prev_hash: string;
  hash: string;
}

/** The `tab` records of these tabs (the only evidence records with personal fields). */
export async function tabEvents(db: Q, learnerId: string, tabIds: readonly string[]): Promise<TabEventRow[]> {
  if (tabIds.length === 0) return [];
  const rows = await db
    .selectFrom('tracking_events')
    .selectAll()
    .where('learner_id', '=', learnerId)
    .where('kind', '=', 'tab')
    .where('tab_id', 'in', tabIds)
    .orderBy('chain_index')
    .execute();
  return rows.map((r) => ({ ...r, chain_index: Number(r.chain_index) }));
}

export async function redactionOf(db: Q, learnerId: string, index: number) {
  return db
    .selectFrom('tracking_event_redactions')
    .selectAll()
    .where('learner_id', '=', learnerId)
    .where('chain_index', '=', index)
    .executeTakeFirst();
}

export async function saveRedaction(
  trx: Trx,
  row: {
    learnerId: string;
    index: number;
    rule: string;
    redactedAt: Date;
    kid: string;
    signature: string;
    data: unknown;
  },
): Promise<void> {
  await privacyMode(trx, 'redact');
  await trx
    .updateTable('tracking_events')
    .set({ data: JSON.stringify(row.data) })
    .where('learner_id', '=', row.learnerId)
    .where('chain_index', '=', row.index)
    .execute();
  const values = { rule: row.rule, redacted_at: row.redactedAt, kid: row.kid, signature: row.signature };
  await trx
    .insertInto('tracking_event_redactions')
    .values({ learner_id: row.learnerId, chain_index: row.index, ...values })
    .onConflict((oc) => oc.columns(['learner_id', 'chain_index']).doUpdateSet(values))
    .execute();
}

/** Learners with tabs older than `before` whose user agent is still whole, in id order after `after`. */
export async function learnersWithWholeUserAgents(
  db: Q,
  before: Date,
  after: string | null,
  limit: number,
): Promise<string[]> {
  let q = db
    .selectFrom('tracking_tabs')
    .select('learner_id')
    .distinct()
    .where('created_at', '<', before)
    .where('user_agent', 'is not', null)
    .where('user_agent', 'not like', 'device:%');
  if (after) q = q.where('learner_id', '>', after);
  return (await q.orderBy('learner_id').limit(limit).execute()).map((r) => r.learner_id);
}

export async function countWholeUserAgents(db: Q, before: Date): Promise<number> {
  const row = await db
    .selectFrom('tracking_tabs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('created_at', '<', before)
    .where('user_agent', 'is not', null)
    .where('user_agent', 'not like', 'device:%')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function tabsOf(
  db: Q,
  learnerId: string,
  filter: { before?: Date; wholeUserAgentOnly?: boolean } = {},
): Promise<Array<{ id: string; user_agent: string | null; ip_prefix: string | null }>> {
  let q = db.selectFrom('tracking_tabs').select(['id', 'user_agent', 'ip_prefix']).where('learner_id', '=', learnerId);
  if (filter.before) q = q.where('created_at', '<', filter.before);
  if (filter.wholeUserAgentOnly) q = q.where('user_agent', 'is not', null).where('user_agent', 'not like', 'device:%');
  return q.orderBy('id').execute();
}

export async function updateTabContext(
  trx: Trx,
  tabId: string,
  values: { user_agent: string | null; ip_prefix?: string | null },
): Promise<void> {
  await trx.updateTable('tracking_tabs').set(values).where('id', '=', tabId).execute();
}

// ───────────────────────────── daily digests ─────────────────────────────

export async function digestsHolding(db: Q, learnerIds: readonly string[]) {
  if (learnerIds.length === 0) return [];
  const { rows } = await sql<{
    day: string;
    digest: string;
    heads: Array<[string, number, string]>;
  }>`select d.day, d.digest, d.heads from tracking_digests d
     where exists (select 1 from jsonb_array_elements(d.heads) h where h->>0 = any(${[...learnerIds]}::text[]))
     order by d.day`.execute(db);
  return rows;
}

/** Learners whose chains were purged and still appear in a kept digest (a digest computed during a purge). */
export async function purgedLearnersInDigests(db: Q): Promise<string[]> {
  const { rows } = await sql<{ learner_id: string }>`
    select distinct p.learner_id from privacy_purged_chains p
    where exists (select 1 from tracking_digests d, jsonb_array_elements(d.heads) h where h->>0 = p.learner_id::text)
    order by p.learner_id limit 1000`.execute(db);
  return rows.map((r) => r.learner_id);
}

export async function rewriteDigest(
  trx: Trx,
  day: string,
  digest: string,
  heads: ReadonlyArray<[string, number, string]>,
): Promise<void> {
  await trx
    .updateTable('tracking_digests')
    .set({
      digest,
      heads: JSON.stringify(heads),
      learner_count: heads.length,
      event_count: heads.reduce((n, h) => n + Number(h[1]), 0),
    })
    .where('day', '=', day)
    .execute();
}

// ───────────────────────────── deletions ─────────────────────────────

/** Deletes at most `limit` rows of a table older than `before` on a timestamp column; returns the count. */
export async function deleteOlder(
  trx: Q,
  table: 'audit_log' | 'portal_login_failures',
  column: 'at' | 'created_at',
  before: Date,
  limit: number,
): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    with gone as (
      delete from ${sql.table(table)} where id in (
        select id from ${sql.table(table)} where ${sql.ref(column)} < ${before} order by ${sql.ref(column)} limit ${limit})
      returning 1)
    select count(*)::int as n from gone`.execute(trx);
  return Number(rows[0]?.n ?? 0);
}

export async function countOlder(
  db: Q,
  table: 'audit_log' | 'portal_login_failures' | 'tracking_journal_quarantine',
  column: 'at' | 'created_at' | 'received_at',
  before: Date,
): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from ${sql.table(table)} where ${sql.ref(column)} < ${before}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

export async function deleteQuarantineOlder(trx: Q, before: Date, limit: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    with gone as (
      delete from tracking_journal_quarantine where id in (
        select id from tracking_journal_quarantine where received_at < ${before} order by id limit ${limit})
      returning 1)
    select count(*)::int as n from gone`.execute(trx);
  return Number(rows[0]?.n ?? 0);
}

/** The LMS usernames that are this learner's: the mapped ones, and the LMS username the platform sent. */
export async function lmsUsernamesOf(db: Q, learner: LearnerRow): Promise<string[]> {
  const mapped = await db
    .selectFrom('lms_user_mappings')
    .select('lms_username')
    .where('learner_id', '=', learner.id)
    .orderBy('lms_username')
    .execute();
  const names = mapped.map((m) => m.lms_username);
  if (learner.username && !names.includes(learner.username)) names.unshift(learner.username);
  else if (learner.username) names.sort((a, b) => (a === learner.username ? -1 : b === learner.username ? 1 : 0));
  return names;
}

/** Deletes everything of one learner (retention over): evidence, time, LMS data, certificates, the person. */
export async function deleteLearnerEverywhere(trx: Trx, learner: LearnerRow, usernames: readonly string[]) {
  const id = learner.id;
  await privacyMode(trx, 'purge');
  const counts: Record<string, number> = {};
  const del = async (name: string, query: { execute(): Promise<Array<{ numDeletedRows: bigint }>> }) => {
    const [r] = await query.execute();
    counts[name] = Number(r?.numDeletedRows ?? 0);
  };
  await del('evidenceRedactions', trx.deleteFrom('tracking_event_redactions').where('learner_id', '=', id));
  await del('evidenceRecords', trx.deleteFrom('tracking_events').where('learner_id', '=', id));
  await del('runs', trx.deleteFrom('tracking_runs').where('learner_id', '=', id));
  await del('tabs', trx.deleteFrom('tracking_tabs').where('learner_id', '=', id));
  await del('inbox', trx.deleteFrom('tracking_inbox').where('learner_id', '=', id));
  await trx.deleteFrom('time_day_totals').where('learner_id', '=', id).execute();
  await trx.deleteFrom('time_totals').where('learner_id', '=', id).execute();
  await trx.deleteFrom('time_course_totals').where('learner_id', '=', id).execute();
  await trx.deleteFrom('tracking_learners').where('learner_id', '=', id).execute();
  await trx.deleteFrom('lms_time_totals').where('learner_id', '=', id).execute();
  if (usernames.length > 0) {
    await del('lmsEvents', trx.deleteFrom('lms_events').where('lms_username', 'in', [...usernames]));
  }
  await trx.deleteFrom('lms_user_mappings').where('learner_id', '=', id).execute();
  await del('certificates', trx.deleteFrom('certificates').where('learner_id', '=', id));
  await trx.updateTable('certificate_rules').set({ updated_by: null }).where('updated_by', '=', id).execute();
  await trx.updateTable('learner_profiles').set({ updated_by: null }).where('updated_by', '=', id).execute();
  await trx.deleteFrom('lti_score_outbox').where('learner_id', '=', id).execute();
  await trx.deleteFrom('lti_memberships').where('user_id', '=', learner.sub).execute();
  await del('launches', trx.deleteFrom('lti_launches').where('learner_id', '=', id));
  // learner_profiles and module_progress go with the learner (on delete cascade).
  await trx.deleteFrom('privacy_erasures').where('learner_id', '=', id).execute();
  await trx.deleteFrom('learners').where('id', '=', id).execute();
  return counts;
}

// ───────────────────────────── LMS events per course ─────────────────────────────

export interface LmsCourseRow {
  context_id: string;
  last_event_at: Date;
  events: number;
  session_end: string | null;
  eu: boolean | null;
  last_certificate_at: Date | null;
  known: boolean;
}

/** Each course's LMS events: when the last one happened, the session's end, co-funding, last certificate. */
export async function lmsCourses(db: Q): Promise<LmsCourseRow[]> {
  const { rows } = await sql<LmsCourseRow>`
    select e.course_context_id as context_id, max(e.occurred_at) as last_event_at, count(*)::int as events,
      (select max(r.session_end) from courses c join certificate_rules r on r.course_id = c.id
        where c.context_id = e.course_context_id) as session_end,
      (select bool_or(s.eu_cofunded) from courses c join privacy_course_sessions s on s.course_id = c.id
        where c.context_id = e.course_context_id) as eu,
      (select max(x.issued_at) from courses c join certificates x on x.course_id = c.id
        where c.context_id = e.course_context_id) as last_certificate_at,
      exists (select 1 from courses c where c.context_id = e.course_context_id) as known
    from lms_events e group by e.course_context_id order by e.course_context_id`.execute(db);
  return rows.map((r) => ({
    ...r,
    last_event_at: new Date(r.last_event_at),
    last_certificate_at: r.last_certificate_at ? new Date(r.last_certificate_at) : null,
  }));
}

export async function deleteLmsEvents(
  trx: Trx,
  filter: { contextId: string; before?: Date },
  limit: number,
): Promise<number> {
  await privacyMode(trx, 'purge');
  const { rows } = await sql<{ n: number }>`
    with gone as (
      delete from lms_events where hash in (
        select hash from lms_events where course_context_id = ${filter.contextId}
          ${filter.before ? sql`and occurred_at < ${filter.before}` : sql``}
        limit ${limit})
      returning 1)
    select count(*)::int as n from gone`.execute(trx);
  return Number(rows[0]?.n ?? 0);
}

// ───────────────────────────── erasure ─────────────────────────────

export async function erasureOf(db: Q, learnerId: string) {
  return db.selectFrom('privacy_erasures').selectAll().where('learner_id', '=', learnerId).executeTakeFirst();
}

export async function saveErasure(trx: Trx, learnerId: string, pseudonym: string, holds: ErasureHold[]) {
  const values = { pseudonym, holds: JSON.stringify(holds), erased_at: new Date() };
  await trx
    .insertInto('privacy_erasures')
    .values({ learner_id: learnerId, ...values })
    .onConflict((oc) => oc.column('learner_id').doUpdateSet(values))
    .execute();
}

/** Pseudonymises the person's identity fields (the LTI identity, the profile, the course rosters). */
export async function pseudonymiseIdentity(trx: Trx, learner: LearnerRow, pseudonym: string): Promise<void> {
  await trx
    .updateTable('learners')
    .set({ name: null, given_name: null, family_name: null, email: null, username: pseudonym, updated_at: new Date() })
    .where('id', '=', learner.id)
    .execute();
  await trx
    .updateTable('learner_profiles')
    .set({ family_name: pseudonym, given_name: '', civility: 'non_precise', updated_at: new Date() })
    .where('learner_id', '=', learner.id)
    .execute();
  await trx
    .updateTable('lti_memberships')
    .set({ name: null, given_name: null, family_name: null, email: null })
    .where('user_id', '=', learner.sub)
    .execute();
}

/** Replaces an LMS username by its pseudonym in the events, the mapping and the estimates. */
export async function pseudonymiseLmsUsername(trx: Trx, learnerId: string, from: string, to: string): Promise<number> {
  await privacyMode(trx, 'erase');
  const [events] = await trx
    .updateTable('lms_events')
    .set({ lms_username: to })
    .where('lms_username', '=', from)
    .execute();
  await trx
    .updateTable('lms_user_mappings')
    .set({ lms_username: to, updated_at: new Date() })
    .where('lms_username', '=', from)
    .where('learner_id', '=', learnerId)
    .execute();
  const totals = await trx
    .selectFrom('lms_time_totals')
    .select(['course_id', 'lms_usernames'])
    .where('learner_id', '=', learnerId)
    .execute();
  for (const t of totals) {
    if (!t.lms_usernames.includes(from)) continue;
    await trx
      .updateTable('lms_time_totals')
      .set({ lms_usernames: JSON.stringify(t.lms_usernames.map((u) => (u === from ? to : u))) })
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', t.course_id)
      .execute();
  }
  return Number(events?.numUpdatedRows ?? 0);
}

// ───────────────────────────── course sessions ─────────────────────────────

export async function findCourses(db: Q, ref: string) {
  const value = ref.trim();
  return db
    .selectFrom('courses')
    .select(['id', 'context_id', 'title', 'issuer'])
    .where((eb) => (UUID.test(value) ? eb('id', '=', value) : eb('context_id', '=', value)))
    .execute();
}

export async function setEuCofunded(db: Q, courseId: string, on: boolean): Promise<void> {
  await db
    .insertInto('privacy_course_sessions')
    .values({ course_id: courseId, eu_cofunded: on })
    .onConflict((oc) => oc.column('course_id').doUpdateSet({ eu_cofunded: on, updated_at: new Date() }))
    .execute();
}

export async function listCourseSessions(db: Q) {
  return db
    .selectFrom('courses as c')
    .leftJoin('privacy_course_sessions as s', 's.course_id', 'c.id')
    .leftJoin('certificate_rules as r', 'r.course_id', 'c.id')
    .select(['c.id', 'c.context_id', 'c.title', 's.eu_cofunded', 'r.session_start', 'r.session_end'])
    .orderBy('c.context_id')
    .execute();
}

// ───────────────────────────── purge runs ─────────────────────────────

export async function startRun(db: Q, mode: 'dry-run' | 'apply', trigger: 'cli' | 'scheduled', at: Date) {
  const row = await db
    .insertInto('privacy_purge_runs')
    .values({ started_at: at, mode, trigger })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function finishRun(db: Q, id: string, report: unknown): Promise<void> {
  await db
    .updateTable('privacy_purge_runs')
    .set({ finished_at: new Date(), report: JSON.stringify(report) })
    .where('id', '=', id)
    .execute();
}
