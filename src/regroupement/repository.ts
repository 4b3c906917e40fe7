import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/index.js';
import type { Database } from '../db/schema.js';
import type { AttendanceSource, SessionMode } from './tables.js';

type Executor = Db | Transaction<Database>;

export interface SessionRow {
  id: string;
  courseId: string;
  fundSlug: string;
  startsAt: Date;
  durationMinutes: number;
  mode: SessionMode;
  location: string;
  capacity: number;
  attendanceCode: string;
  cancelledAt: Date | null;
  registered: number;
  attended: number;
}

const SESSION_FIELDS = [
  's.id',
  's.course_id',
  's.fund_slug',
  's.starts_at',
  's.duration_minutes',
  's.mode',
  's.location',
  's.capacity',
  's.attendance_code',
  's.cancelled_at',
] as const;

function sessionsQuery(db: Executor) {
  return db
    .selectFrom('regroupement_sessions as s')
    .select(SESSION_FIELDS)
    .select([
      sql<number>`(select count(*) from regroupement_registrations r where r.session_id = s.id)::int`.as('registered'),
      sql<number>`(select count(*) from regroupement_registrations r where r.session_id = s.id and r.attended_minutes is not null)::int`.as(
        'attended',
      ),
    ]);
}

type RawSession = Awaited<ReturnType<ReturnType<typeof sessionsQuery>['executeTakeFirstOrThrow']>>;

const toSession = (r: RawSession): SessionRow => ({
  id: r.id,
  courseId: r.course_id,
  fundSlug: r.fund_slug,
  startsAt: r.starts_at,
  durationMinutes: r.duration_minutes,
  mode: r.mode,
  location: r.location,
  capacity: r.capacity,
  attendanceCode: r.attendance_code,
  cancelledAt: r.cancelled_at,
  registered: Number(r.registered),
  attended: Number(r.attended),
});

export async function listSessions(db: Executor, courseId: string, fundSlug?: string): Promise<SessionRow[]> {
  let q = sessionsQuery(db).where('s.course_id', '=', courseId);
  if (fundSlug !== undefined) q = q.where('s.fund_slug', '=', fundSlug);
  return (await q.orderBy('s.starts_at').orderBy('s.id').execute()).map(toSession);
}

export async function findSession(db: Executor, id: string): Promise<SessionRow | null> {
  const r = await sessionsQuery(db).where('s.id', '=', id).executeTakeFirst();
  return r ? toSession(r) : null;
}

/** Locks the session row for the rest of the transaction (capacity checks of concurrent registrations). */
export async function lockSession(trx: Transaction<Database>, id: string): Promise<void> {
  await trx.selectFrom('regroupement_sessions').select('id').where('id', '=', id).forUpdate().execute();
}

export async function findByCode(db: Executor, courseId: string, code: string): Promise<SessionRow[]> {
  return (
    await sessionsQuery(db)
      .where('s.course_id', '=', courseId)
      .where('s.attendance_code', '=', code)
      .where('s.cancelled_at', 'is', null)
      .execute()
  ).map(toSession);
}

export async function insertSession(
  db: Executor,
  v: {
    courseId: string;
    fundSlug: string;
    startsAt: Date;
    durationMinutes: number;
    mode: SessionMode;
    location: string;
    capacity: number;
    attendanceCode: string;
    createdBy: string;
  },
): Promise<string> {
  const row = await db
    .insertInto('regroupement_sessions')
    .values({
      course_id: v.courseId,
      fund_slug: v.fundSlug,
      starts_at: v.startsAt,
      duration_minutes: v.durationMinutes,
      mode: v.mode,
      location: v.location,
      capacity: v.capacity,
      attendance_code: v.attendanceCode,
      created_by: v.createdBy,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function cancelSession(db: Executor, id: string): Promise<void> {
  await db
    .updateTable('regroupement_sessions')
    .set({ cancelled_at: new Date() })
    .where('id', '=', id)
    .where('cancelled_at', 'is', null)
    .execute();
}

export interface RegistrationRow {
  sessionId: string;
  learnerId: string;
  registeredAt: Date;
  attendedMinutes: number | null;
  attendanceSource: AttendanceSource | null;
  familyName: string | null;
  givenName: string | null;
  companyName: string | null;
}

export async function listRegistrations(db: Executor, sessionId: string): Promise<RegistrationRow[]> {
  const rows = await db
    .selectFrom('regroupement_registrations as r')
    .leftJoin('learner_profiles as p', 'p.learner_id', 'r.learner_id')
    .select([
      'r.session_id',
      'r.learner_id',
      'r.registered_at',
      'r.attended_minutes',
      'r.attendance_source',
      'p.family_name',
      'p.given_name',
      'p.company_name',
    ])
    .where('r.session_id', '=', sessionId)
    .orderBy('p.family_name')
    .orderBy('p.given_name')
    .orderBy('r.learner_id')
    .execute();
  return rows.map((r) => ({
    sessionId: r.session_id,
    learnerId: r.learner_id,
    registeredAt: r.registered_at,
    attendedMinutes: r.attended_minutes,
    attendanceSource: r.attendance_source,
    familyName: r.family_name,
    givenName: r.given_name,
    companyName: r.company_name,
  }));
}

/** The learner's registrations in a course's sessions (cancelled sessions included, flagged). */
export async function learnerRegistrations(
  db: Executor,
  learnerId: string,
  courseId: string,
): Promise<(RegistrationRow & { session: SessionRow })[]> {
  const sessions = new Map((await listSessions(db, courseId)).map((s) => [s.id, s]));
  if (sessions.size === 0) return [];
  const rows = await db
    .selectFrom('regroupement_registrations as r')
    .select(['r.session_id', 'r.learner_id', 'r.registered_at', 'r.attended_minutes', 'r.attendance_source'])
    .where('r.learner_id', '=', learnerId)
    .where('r.session_id', 'in', [...sessions.keys()])
    .execute();
  return rows.map((r) => ({
    sessionId: r.session_id,
    learnerId: r.learner_id,
    registeredAt: r.registered_at,
    attendedMinutes: r.attended_minutes,
    attendanceSource: r.attendance_source,
    familyName: null,
    givenName: null,
    companyName: null,
    session: sessions.get(r.session_id) as SessionRow,
  }));
}

export async function insertRegistration(db: Executor, sessionId: string, learnerId: string): Promise<boolean> {
  const r = await db
    .insertInto('regroupement_registrations')
    .values({ session_id: sessionId, learner_id: learnerId })
    .onConflict((oc) => oc.columns(['session_id', 'learner_id']).doNothing())
    .returning('learner_id')
    .executeTakeFirst();
  return r !== undefined;
}

export async function setAttendance(
  db: Executor,
  sessionId: string,
  learnerId: string,
  value: { minutes: number; source: AttendanceSource } | null,
): Promise<void> {
  await db
    .updateTable('regroupement_registrations')
    .set(
      value
        ? { attended_minutes: value.minutes, attendance_source: value.source, attendance_recorded_at: new Date() }
        : { attended_minutes: null, attendance_source: null, attendance_recorded_at: null },
    )
    .where('session_id', '=', sessionId)
    .where('learner_id', '=', learnerId)
    .execute();
}

export async function insertAudit(
  db: Executor,
  v: { sessionId: string; actorLearnerId: string; actorRole: string; action: string; details: Record<string, unknown> },
): Promise<void> {
  await db
    .insertInto('regroupement_audit')
    .values({
      session_id: v.sessionId,
      actor_learner_id: v.actorLearnerId,
      actor_role: v.actorRole,
      action: v.action,
      details: JSON.stringify(v.details),
    })
    .execute();
}

export async function listAudit(db: Executor, sessionId: string) {
  return db
    .selectFrom('regroupement_audit')
    .select(['at', 'actor_learner_id', 'actor_role', 'action', 'details'])
    .where('session_id', '=', sessionId)
    .orderBy('at')
    .execute();
}

/** Sessions a learner attended in a course, oldest first (certificates and exports). */
export async function attendedSessions(db: Executor, learnerId: string, courseId: string) {
  return db
    .selectFrom('regroupement_registrations as r')
    .innerJoin('regroupement_sessions as s', 's.id', 'r.session_id')
    .select(['s.id', 's.starts_at', 's.mode', 'r.attended_minutes', 'r.attendance_source'])
    .where('r.learner_id', '=', learnerId)
    .where('s.course_id', '=', courseId)
    .where('r.attended_minutes', 'is not', null)
    .orderBy('s.starts_at')
    .execute();
}

export async function courseTitle(db: Executor, courseId: string): Promise<string> {
  const r = await db.selectFrom('courses').select(['title', 'label']).where('id', '=', courseId).executeTakeFirst();
  return r?.title ?? r?.label ?? 'Formation';
}

/** Removes a registration that has no attendance (a learner withdrawing before the session). */
export async function deleteRegistration(db: Executor, sessionId: string, learnerId: string): Promise<boolean> {
  const r = await db
    .deleteFrom('regroupement_registrations')
    .where('session_id', '=', sessionId)
    .where('learner_id', '=', learnerId)
    .where('attended_minutes', 'is', null)
    .returning('learner_id')
    .executeTakeFirst();
  return r !== undefined;
}

/** Display names of learners (profile, else the LMS's name), for the history. */
export async function learnerNames(db: Executor, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('learners as l')
    .leftJoin('learner_profiles as p', 'p.learner_id', 'l.id')
    .select(['l.id', 'p.given_name', 'p.family_name', 'l.given_name as lg', 'l.family_name as lf'])
    .where('l.id', 'in', ids)
    .execute();
  const out = new Map<string, string>();
  for (const r of rows) {
    const name = [r.given_name ?? r.lg, r.family_name ?? r.lf].filter(Boolean).join(' ');
    if (name) out.set(r.id, name);
  }
  return out;
}
