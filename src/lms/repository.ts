// One file (~520 lines): all SQL of the LMS capability, its sections (import, events, totals, LRS credentials) marked below.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/index.js';
import type { LmsEvent } from './rules.js';
import type { LmsSource } from './tables.js';

/** All SQL of the LMS capability. */

export async function startImport(
  db: Db,
  input: { fileName: string; format: LmsSource | 'auto'; issuer: string | null; credentialId?: string | null },
): Promise<string> {
  const row = await db
    .insertInto('lms_imports')
    .values({
      file_name: input.fileName,
      format: input.format,
      issuer: input.issuer,
      credential_id: input.credentialId ?? null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function finishImport(
  db: Db,
  id: string,
  counts: {
    lines: number;
    inserted: number;
    duplicates: number;
    malformed: number;
    skipped: number;
    otherCourses: Record<string, number>;
  },
): Promise<void> {
  const { otherCourses, ...rest } = counts;
  await db
    .updateTable('lms_imports')
    .set({ ...rest, other_courses: JSON.stringify(otherCourses), finished_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute();
}

/** Inserts events not seen before (by hash). Returns how many were new. */
export async function insertEvents(
  db: Db,
  importId: string,
  issuer: string | null,
  events: readonly LmsEvent[],
): Promise<number> {
  if (events.length === 0) return 0;
  const rows = await db
    .insertInto('lms_events')
    .values(
      events.map((e) => ({
        hash: e.hash,
        source: e.source,
        issuer,
        lms_username: e.lmsUsername,
        lms_user_id: e.lmsUserId,
        course_context_id: e.courseContextId,
        occurred_at: e.occurredAt,
        event_type: e.eventType,
        event_source: e.eventSource,
        session_id: e.sessionId,
        import_id: importId,
      })),
    )
    .onConflict((oc) => oc.column('hash').doNothing())
    .returning('hash')
    .execute();
  return rows.length;
}

/**
 * One pushed batch, in a single statement (so all of it or nothing, with one round trip): its events,
 * those already stored left as they are, and its row in the import journal with the counts. The journal
 * row and its events go in together: the foreign key is checked at the end of the statement.
 */
export async function storePushedBatch(
  db: Db,
  batch: {
    credentialId: string;
    credentialKey: string;
    issuer: string;
    statements: number;
    notKept: number;
    otherCourses: Record<string, number>;
    events: readonly LmsEvent[];
  },
): Promise<{ inserted: number }> {
  const importId = randomUUID();
  const importRow = (inserted: ReturnType<typeof sql>) => sql`
    insert into lms_imports (id, file_name, format, issuer, credential_id, lines, inserted, duplicates, malformed,
      skipped, other_courses, finished_at)
    select ${importId}::uuid, ${`lrs:${batch.credentialKey}`}, 'xapi', ${batch.issuer}, ${batch.credentialId}::uuid,
      ${batch.statements}::int, n, ${batch.events.length}::int - n, 0, ${batch.notKept}::int,
      ${JSON.stringify(batch.otherCourses)}::jsonb, now()
    from (${inserted}) as counted(n)
    returning inserted`;
  if (batch.events.length === 0) {
    await importRow(sql`select 0`).execute(db);
    return { inserted: 0 };
  }
  const values = sql.join(
    batch.events.map(
      (e) => sql`(${e.hash}, ${e.source}, ${batch.issuer}, ${e.lmsUsername}, ${e.lmsUserId}, ${e.courseContextId},
        ${e.occurredAt.toISOString()}::timestamptz, ${e.eventType}, ${e.eventSource}, ${e.sessionId}, ${importId}::uuid)`,
    ),
  );
  const result = await sql<{ inserted: number }>`
    with ins as (
      insert into lms_events (hash, source, issuer, lms_username, lms_user_id, course_context_id, occurred_at,
        event_type, event_source, session_id, import_id)
      values ${values}
      on conflict (hash) do nothing
      returning 1
    )
    ${importRow(sql`select count(*)::int from ins`)}`.execute(db);
  return { inserted: Number(result.rows[0]?.inserted ?? 0) };
}

/** The credential of this key, if active, with the course keys the tool knows on its LMS (one query). */
export async function activeCredentialWithCourses(
  db: Db,
  key: string,
): Promise<{ credential: CredentialRow; courses: string[] } | undefined> {
  const row = await db
    .selectFrom('lms_lrs_credentials as c')
    .selectAll('c')
    .select(
      sql<
        string[]
      >`(select coalesce(json_agg(distinct k.context_id), '[]'::json) from courses k where k.issuer = c.issuer)`.as(
        'courses',
      ),
    )
    .where('c.key', '=', key)
    .where('c.revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) return undefined;
  const { courses, ...credential } = row;
  return { credential: credentialRow(credential), courses: courses ?? [] };
}

/** Every (LMS user, course, issuer) present in the events, with their event count. */
export async function eventGroups(
  db: Db,
): Promise<Array<{ lmsUsername: string; courseContextId: string; issuer: string | null; events: number }>> {
  const rows = await db
    .selectFrom('lms_events')
    .select(['lms_username', 'course_context_id', 'issuer', sql<number>`count(*)::int`.as('events')])
    .groupBy(['lms_username', 'course_context_id', 'issuer'])
    .orderBy('lms_username')
    .orderBy('course_context_id')
    .execute();
  return rows.map((r) => ({
    lmsUsername: r.lms_username,
    courseContextId: r.course_context_id,
    issuer: r.issuer,
    events: r.events,
  }));
}

/** Course keys (LTI context ids) of the courses the tool knows, of one platform when named. */
export async function knownContextIds(db: Db, issuer: string | null): Promise<string[]> {
  let query = db.selectFrom('courses').select('context_id').distinct();
  if (issuer) query = query.where('issuer', '=', issuer);
  return (await query.execute()).map((r) => r.context_id);
}

export interface CourseRow {
  id: string;
  issuer: string;
  contextId: string;
}

export async function coursesByContext(db: Db, contextIds: readonly string[]): Promise<CourseRow[]> {
  if (contextIds.length === 0) return [];
  const rows = await db
    .selectFrom('courses')
    .select(['id', 'issuer', 'context_id'])
    .where('context_id', 'in', [...contextIds])
    .execute();
  return rows.map((r) => ({ id: r.id, issuer: r.issuer, contextId: r.context_id }));
}

export async function courseById(db: Db, id: string): Promise<CourseRow | undefined> {
  const r = await db
    .selectFrom('courses')
    .select(['id', 'issuer', 'context_id'])
    .where('id', '=', id)
    .executeTakeFirst();
  return r ? { id: r.id, issuer: r.issuer, contextId: r.context_id } : undefined;
}

export interface LearnerIdentity {
  id: string;
  issuer: string;
  sub: string;
  username: string | null;
  email: string | null;
}

/**
 * Learners an LMS user name may designate: by `preferred_username` (sent with PII sharing on), by LTI
 * `sub` (when the platform's anonymous id for xAPI is the one it gives LTI), or by e-mail for an xAPI
 * `mailto:` actor.
 */
export async function learnersByIdentity(db: Db, names: readonly string[]): Promise<LearnerIdentity[]> {
  if (names.length === 0) return [];
  const emails = names.filter((n) => /^mailto:/i.test(n)).map((n) => n.slice('mailto:'.length).toLowerCase());
  const out = new Map<string, LearnerIdentity>();
  for (let i = 0; i < names.length; i += 1000) {
    const slice = names.slice(i, i + 1000);
    const rows = await db
      .selectFrom('learners')
      .select(['id', 'issuer', 'sub', 'username', 'email'])
      .where((eb) => eb.or([eb('username', 'in', slice), eb('sub', 'in', slice)]))
      .execute();
    for (const r of rows) out.set(r.id, r);
  }
  for (let i = 0; i < emails.length; i += 1000) {
    const rows = await db
      .selectFrom('learners')
      .select(['id', 'issuer', 'sub', 'username', 'email'])
      .where(sql<string>`lower(email)`, 'in', emails.slice(i, i + 1000))
      .execute();
    for (const r of rows) out.set(r.id, r);
  }
  return [...out.values()];
}

export async function learnerById(db: Db, id: string): Promise<LearnerIdentity | undefined> {
  return db
    .selectFrom('learners')
    .select(['id', 'issuer', 'sub', 'username', 'email'])
    .where('id', '=', id)
    .executeTakeFirst();
}

/** LMS username → learner id of the explicit mappings: all of them, or those of these usernames. */
export async function userMappings(db: Db, usernames?: readonly string[]): Promise<Map<string, string>> {
  if (usernames?.length === 0) return new Map();
  let query = db.selectFrom('lms_user_mappings').select(['lms_username', 'learner_id']);
  if (usernames) query = query.where('lms_username', 'in', usernames);
  const rows = await query.execute();
  return new Map(rows.map((r) => [r.lms_username, r.learner_id]));
}

export async function mappingsOfLearner(db: Db, learnerId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('lms_user_mappings')
    .select('lms_username')
    .where('learner_id', '=', learnerId)
    .execute();
  return rows.map((r) => r.lms_username);
}

export async function mappingOf(db: Db, lmsUsername: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('lms_user_mappings')
    .select('learner_id')
    .where('lms_username', '=', lmsUsername)
    .executeTakeFirst();
  return row?.learner_id;
}

export async function upsertMapping(db: Db, lmsUsername: string, learnerId: string, source: string): Promise<void> {
  await db
    .insertInto('lms_user_mappings')
    .values({ lms_username: lmsUsername, learner_id: learnerId, source })
    .onConflict((oc) =>
      oc.column('lms_username').doUpdateSet({ learner_id: learnerId, source, updated_at: sql<Date>`now()` }),
    )
    .execute();
}

export async function deleteMapping(db: Db, lmsUsername: string): Promise<boolean> {
  const result = await db.deleteFrom('lms_user_mappings').where('lms_username', '=', lmsUsername).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Learners a mapping may name: the tool's learner id, the LTI `sub`, or the e-mail. */
export async function findLearners(db: Db, ref: string): Promise<string[]> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
  if (isUuid) {
    const byId = await db.selectFrom('learners').select('id').where('id', '=', ref).execute();
    if (byId.length > 0) return byId.map((r) => r.id);
  }
  const bySub = await db.selectFrom('learners').select('id').where('sub', '=', ref).execute();
  if (bySub.length > 0) return bySub.map((r) => r.id);
  if (ref.includes('@')) {
    const byEmail = await db
      .selectFrom('learners')
      .select('id')
      .where(sql`lower(email)`, '=', ref.toLowerCase())
      .execute();
    return byEmail.map((r) => r.id);
  }
  return [];
}

/** Event instants (epoch ms) and sources of these LMS users in one course of one issuer. */
export async function eventTimes(
  db: Db,
  courseContextId: string,
  issuer: string,
  usernames: readonly string[],
): Promise<Array<{ ms: number; source: LmsSource }>> {
  if (usernames.length === 0) return [];
  const rows = await db
    .selectFrom('lms_events')
    .select(['source', sql<number>`(extract(epoch from occurred_at) * 1000)::bigint`.as('ms')])
    .where('course_context_id', '=', courseContextId)
    .where('lms_username', 'in', [...usernames])
    .where((eb) => eb.or([eb('issuer', 'is', null), eb('issuer', '=', issuer)]))
    .execute();
  return rows.map((r) => ({ ms: Number(r.ms), source: r.source }));
}

/** The instant of the latest event received for a course (any learner, any source), or null. */
export async function lastCourseEvent(db: Db, courseContextId: string, issuer: string): Promise<Date | null> {
  const row = await db
    .selectFrom('lms_events')
    .select((eb) => eb.fn.max('occurred_at').as('last'))
    .where('course_context_id', '=', courseContextId)
    .where((eb) => eb.or([eb('issuer', 'is', null), eb('issuer', '=', issuer)]))
    .executeTakeFirst();
  return row?.last ? new Date(row.last as unknown as string) : null;
}

// ───────────────────────────── LRS credentials ─────────────────────────────

export interface CredentialRow {
  id: string;
  key: string;
  secretHash: string;
  issuer: string;
  label: string | null;
  createdAt: Date;
  revokedAt: Date | null;
}

function credentialRow(r: {
  id: string;
  key: string;
  secret_hash: string;
  issuer: string;
  label: string | null;
  created_at: Date;
  revoked_at: Date | null;
}): CredentialRow {
  return {
    id: r.id,
    key: r.key,
    secretHash: r.secret_hash,
    issuer: r.issuer,
    label: r.label,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}

export async function insertCredential(
  db: Db,
  input: { key: string; secretHash: string; issuer: string; label: string | null },
): Promise<CredentialRow> {
  const row = await db
    .insertInto('lms_lrs_credentials')
    .values({ key: input.key, secret_hash: input.secretHash, issuer: input.issuer, label: input.label })
    .returningAll()
    .executeTakeFirstOrThrow();
  return credentialRow(row);
}

export async function listCredentials(db: Db): Promise<CredentialRow[]> {
  const rows = await db.selectFrom('lms_lrs_credentials').selectAll().orderBy('created_at').orderBy('key').execute();
  return rows.map(credentialRow);
}

/** The credential of this key, if it exists and is not revoked. */
export async function activeCredential(db: Db, key: string): Promise<CredentialRow | undefined> {
  const row = await db
    .selectFrom('lms_lrs_credentials')
    .selectAll()
    .where('key', '=', key)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? credentialRow(row) : undefined;
}

export async function revokeCredential(db: Db, key: string): Promise<boolean> {
  const result = await db
    .updateTable('lms_lrs_credentials')
    .set({ revoked_at: sql<Date>`now()` })
    .where('key', '=', key)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function hasActiveCredential(db: Db, issuer: string): Promise<boolean> {
  const row = await db
    .selectFrom('lms_lrs_credentials')
    .select('id')
    .where('issuer', '=', issuer)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row !== undefined;
}

export async function registeredIssuers(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('lti_registrations')
    .select('issuer')
    .distinct()
    .where('removed_at', 'is', null)
    .execute();
  return rows.map((r) => r.issuer);
}

export interface TotalRow {
  learnerId: string;
  courseId: string;
  lmsUsernames: string[];
  eventCount: number;
  sessionCount: number;
  sessionMs: number;
  overlapMs: number;
  estimatedMs: number;
  estimatedSeconds: number;
  firstAt: Date;
  lastAt: Date;
  algorithm: string;
  params: Record<string, unknown>;
}

function totalValues(t: TotalRow) {
  return {
    learner_id: t.learnerId,
    course_id: t.courseId,
    lms_usernames: JSON.stringify(t.lmsUsernames),
    event_count: t.eventCount,
    session_count: t.sessionCount,
    session_ms: t.sessionMs,
    overlap_ms: t.overlapMs,
    estimated_ms: t.estimatedMs,
    estimated_seconds: t.estimatedSeconds,
    first_at: t.firstAt,
    last_at: t.lastAt,
    algorithm: t.algorithm,
    params: JSON.stringify(t.params),
  };
}

/**
 * Inserts these totals, or updates the stored one of the same learner × course. Every write of a total
 * goes through here, so that a row another transaction stored meanwhile is updated, never a unique-key error.
 */
async function upsertTotals(db: Db, totals: readonly TotalRow[]): Promise<void> {
  for (let i = 0; i < totals.length; i += 500) {
    await db
      .insertInto('lms_time_totals')
      .values(totals.slice(i, i + 500).map(totalValues))
      .onConflict((oc) =>
        oc.columns(['learner_id', 'course_id']).doUpdateSet((eb) => ({
          lms_usernames: eb.ref('excluded.lms_usernames'),
          event_count: eb.ref('excluded.event_count'),
          session_count: eb.ref('excluded.session_count'),
          session_ms: eb.ref('excluded.session_ms'),
          overlap_ms: eb.ref('excluded.overlap_ms'),
          estimated_ms: eb.ref('excluded.estimated_ms'),
          estimated_seconds: eb.ref('excluded.estimated_seconds'),
          first_at: eb.ref('excluded.first_at'),
          last_at: eb.ref('excluded.last_at'),
          algorithm: eb.ref('excluded.algorithm'),
          params: eb.ref('excluded.params'),
          computed_at: sql<Date>`now()`,
        })),
      )
      .execute();
  }
}

/**
 * Replaces every stored total by these (one transaction). The rows go in as upserts: a row that another
 * transaction inserted after this one's delete (a certificate or time page storing one learner's
 * estimate, or a recompute in another instance) is updated rather than failing the whole recompute on
 * the unique key.
 */
export async function replaceTotals(db: Db, totals: readonly TotalRow[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('lms_time_totals').execute();
    await upsertTotals(trx, totals);
  });
}

/** Stores (or removes, when null) one learner × course total. */
export async function storeTotal(db: Db, learnerId: string, courseId: string, total: TotalRow | null): Promise<void> {
  if (!total) {
    await db
      .deleteFrom('lms_time_totals')
      .where('learner_id', '=', learnerId)
      .where('course_id', '=', courseId)
      .execute();
    return;
  }
  await upsertTotals(db, [total]);
}

export async function storedTotal(db: Db, learnerId: string, courseId: string) {
  return db
    .selectFrom('lms_time_totals')
    .selectAll()
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .executeTakeFirst();
}
