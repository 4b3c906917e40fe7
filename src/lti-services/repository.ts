// One file (~510 lines): every statement of the LTI services on the tables they own, in sections (course-team view, score outbox, access tokens) marked below.
import { type Selectable, sql } from 'kysely';
import type { Db } from '../db/index.js';
import type { OutboxStatus, ScoreOutboxTable } from './tables.js';

export type OutboxRow = Selectable<ScoreOutboxTable>;

/** `now` from the caller (tests move time forward) or the database's clock, shared by every instance. */
export function at(now: Date | undefined) {
  return now ? sql<Date>`${now}::timestamptz` : sql<Date>`now()`;
}

// ─── Registrations and launches (tables of the lti capability, read only) ──────────────────────────

export interface RegistrationRow {
  id: string;
  issuer: string;
  client_id: string;
  access_token_url: string;
  removed_at: Date | null;
}

export async function findRegistration(db: Db, id: string): Promise<RegistrationRow | undefined> {
  return db
    .selectFrom('lti_registrations')
    .select(['id', 'issuer', 'client_id', 'access_token_url', 'removed_at'])
    .where('id', '=', id)
    .executeTakeFirst();
}

export interface LaunchForScore {
  id: string;
  registration_id: string;
  learner_id: string;
  course_id: string | null;
  resource_link_id: string | null;
  ags: Record<string, unknown> | null;
  sub: string;
}

/**
 * The launch whose AGS claim a completion is scored against: the given one, or the learner's latest
 * launch of that resource link (or, without one, of that course) that carried a line item.
 */
export async function findLaunchForScore(
  db: Db,
  input: { learnerId: string; courseId: string | null; resourceLinkId: string | null; launchId?: string | undefined },
): Promise<LaunchForScore | undefined> {
  let q = db
    .selectFrom('lti_launches as l')
    .innerJoin('learners as u', 'u.id', 'l.learner_id')
    .select(['l.id', 'l.registration_id', 'l.learner_id', 'l.course_id', 'l.resource_link_id', 'l.ags', 'u.sub'])
    .where('l.learner_id', '=', input.learnerId)
    .where('l.message_type', '=', 'LtiResourceLinkRequest');
  if (input.launchId) q = q.where('l.id', '=', input.launchId);
  else if (input.resourceLinkId) q = q.where('l.resource_link_id', '=', input.resourceLinkId);
  else if (input.courseId) q = q.where('l.course_id', '=', input.courseId);
  else return undefined;
  return q
    .orderBy(sql`(l.ags ->> 'lineitem') is not null`, 'desc')
    .orderBy('l.created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function findDeepLinkingLaunch(db: Db, launchId: string) {
  return db
    .selectFrom('lti_launches as l')
    .innerJoin('lti_registrations as r', 'r.id', 'l.registration_id')
    .select(['l.message_type', 'l.deep_linking', 'l.deployment_id', 'r.client_id', 'r.issuer', 'r.removed_at'])
    .where('l.id', '=', launchId)
    .executeTakeFirst();
}

// ─── Course-team view ───────────────────────────────────────────────────────────────────────────────

export async function findLaunchCustom(db: Db, launchId: string): Promise<Record<string, string> | null> {
  const row = await db.selectFrom('lti_launches').select('custom').where('id', '=', launchId).executeTakeFirst();
  return row?.custom ?? null;
}

export async function findCourse(db: Db, courseId: string) {
  return db
    .selectFrom('courses')
    .select(['id', 'title', 'label', 'issuer'])
    .where('id', '=', courseId)
    .executeTakeFirst();
}

export interface CourseLearner {
  learner_id: string;
  sub: string;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  first_launch_at: Date;
  launched_link: boolean;
}

/** Learners who launched the tool as learners in this course (and only this course). */
export async function listCourseLearners(
  db: Db,
  courseId: string,
  resourceLinkId: string | null,
): Promise<CourseLearner[]> {
  return db
    .selectFrom('lti_launches as l')
    .innerJoin('learners as u', 'u.id', 'l.learner_id')
    .select([
      'u.id as learner_id',
      'u.sub',
      'u.name',
      'u.given_name',
      'u.family_name',
      sql<Date>`min(l.created_at)`.as('first_launch_at'),
      sql<boolean>`coalesce(bool_or(l.resource_link_id = ${resourceLinkId}), false)`.as('launched_link'),
    ])
    .where('l.course_id', '=', courseId)
    .where('l.role', '=', 'learner')
    .groupBy(['u.id', 'u.sub', 'u.name', 'u.given_name', 'u.family_name'])
    .orderBy('u.family_name')
    .orderBy('u.name')
    .orderBy('u.id')
    .execute();
}

/** The latest score of each learner on a resource link. */
export async function latestScoresOnLink(db: Db, resourceLinkId: string) {
  return db
    .selectFrom('lti_score_outbox')
    .select(['learner_id', 'status', 'sent_at', 'updated_at', 'next_attempt_at', 'seq', 'held_reason'])
    .where('resource_link_id', '=', resourceLinkId)
    .orderBy('seq', 'desc')
    .execute();
}

// ─── Score outbox ──────────────────────────────────────────────────────────────────────────────────

export interface NewScore {
  registrationId: string;
  learnerId: string;
  courseId: string | null;
  resourceLinkId: string | null;
  launchId: string | null;
  moduleId: string | null;
  lineitemUrl: string;
  userId: string;
  scoreGiven: number;
  scoreMaximum: number;
  occurredAt: Date;
  idempotencyKey: string | null;
}

/**
 * Queues a score. A newer score makes the learner's older unsent ones for that line item pointless:
 * they are superseded, unless a worker holds one right now (it finishes, then this one follows).
 * Returns the queued row's id, or the existing one for a repeated idempotency key.
 */
export async function insertScore(db: Db, s: NewScore): Promise<{ id: string; created: boolean }> {
  // Inside the caller's transaction when there is one: the completion and its score commit together.
  const inTransaction = (work: (trx: Db) => Promise<{ id: string; created: boolean }>) =>
    db.isTransaction ? work(db) : db.transaction().execute(work);
  return inTransaction(async (trx) => {
    const inserted = await trx
      .insertInto('lti_score_outbox')
      .values({
        registration_id: s.registrationId,
        learner_id: s.learnerId,
        course_id: s.courseId,
        resource_link_id: s.resourceLinkId,
        launch_id: s.launchId,
        module_id: s.moduleId,
        lineitem_url: s.lineitemUrl,
        user_id: s.userId,
        score_given: s.scoreGiven,
        score_maximum: s.scoreMaximum,
        activity_progress: 'Completed',
        grading_progress: 'FullyGraded',
        occurred_at: s.occurredAt,
        idempotency_key: s.idempotencyKey,
      })
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .returning(['id', 'seq'])
      .executeTakeFirst();
    if (!inserted) {
      const existing = await trx
        .selectFrom('lti_score_outbox')
        .select('id')
        .where('idempotency_key', '=', s.idempotencyKey)
        .executeTakeFirstOrThrow();
      return { id: existing.id, created: false };
    }
    await trx
      .updateTable('lti_score_outbox')
      .set({ status: 'superseded', last_error: 'superseded by a newer score', updated_at: sql`now()` })
      .where('lineitem_url', '=', s.lineitemUrl)
      .where('user_id', '=', s.userId)
      .where('status', '=', 'pending')
      .where('seq', '<', inserted.seq)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', sql<Date>`now()`)]))
      .execute();
    return { id: inserted.id, created: true };
  });
}

/**
 * Claims due scores for one worker. `FOR UPDATE SKIP LOCKED` lets several instances claim at once
 * without ever claiming the same row; the lease (`locked_until`) marks the row taken after commit, and
 * lets another instance take it over if this one dies mid-send. A learner's scores for one line item
 * go one at a time, oldest first, so that their timestamps reach the platform in order. A held row
 * (waiting for an operator) is skipped, unless its registration is active again.
 */
export async function claimDueScores(
  db: Db,
  input: { worker: string; leaseMs: number; limit: number; now?: Date | undefined },
): Promise<OutboxRow[]> {
  const now = at(input.now);
  const result = await sql<OutboxRow>`
    update lti_score_outbox
    set locked_by = ${input.worker},
        locked_until = ${now} + make_interval(secs => ${input.leaseMs / 1000}),
        attempts = attempts + 1,
        updated_at = now()
    where id in (
      select o.id from lti_score_outbox o
      where o.status = 'pending'
        and o.next_attempt_at <= ${now}
        and (o.locked_until is null or o.locked_until <= ${now})
        and (o.held_reason is null or exists (
          select 1 from lti_registrations r where r.id = o.registration_id and r.removed_at is null
        ))
        and not exists (
          select 1 from lti_score_outbox p
          where p.lineitem_url = o.lineitem_url and p.user_id = o.user_id
            and p.status = 'pending' and p.seq < o.seq
        )
      order by o.next_attempt_at, o.seq
      limit ${input.limit}
      for update skip locked
    )
    returning *`.execute(db);
  return [...result.rows].sort((a, b) => a.seq - b.seq);
}

/**
 * The timestamp of the next attempt for a learner × line item: when the score was earned, but always
 * strictly after the previous attempt's (Open edX answers 400 to a same-or-older timestamp). One
 * atomic upsert, so two instances never hand out the same value. Millisecond precision, as JS dates.
 */
export async function nextScoreTimestamp(db: Db, lineitemUrl: string, userId: string, earned: Date): Promise<Date> {
  const candidate = new Date(Math.floor(earned.getTime()));
  const row = await db
    .insertInto('lti_score_clocks')
    .values({ lineitem_url: lineitemUrl, user_id: userId, last_timestamp: candidate })
    .onConflict((oc) =>
      oc.columns(['lineitem_url', 'user_id']).doUpdateSet({
        last_timestamp: sql<Date>`greatest(excluded.last_timestamp, lti_score_clocks.last_timestamp + interval '1 millisecond')`,
      }),
    )
    .returning('last_timestamp')
    .executeTakeFirstOrThrow();
  return row.last_timestamp;
}

/**
 * Records one attempt's outcome and lets go of the row, only while this worker still holds it.
 * `uncounted`: the attempt said nothing about the score (our stop, our own keyset not reachable yet, a
 * registration to re-target): the claim's increment of `attempts` is taken back.
 */
export async function finishAttempt(
  db: Db,
  input: {
    id: string;
    worker: string;
    status: OutboxStatus;
    scoreTimestamp: Date | null;
    httpStatus: number | null;
    error: string | null;
    nextAttemptAt?: Date;
    uncounted?: boolean;
    heldReason?: string | null;
    waitingForPlatform?: boolean;
  },
): Promise<boolean> {
  const result = await db
    .updateTable('lti_score_outbox')
    .set((eb) => ({
      status: input.status,
      score_timestamp: input.scoreTimestamp,
      last_http_status: input.httpStatus,
      last_error: input.error,
      held_reason: input.heldReason ?? null,
      waiting_for_platform: input.waitingForPlatform ?? false,
      locked_by: null,
      locked_until: null,
      updated_at: sql`now()`,
      ...(input.uncounted ? { attempts: sql<number>`greatest(${eb.ref('attempts')} - 1, 0)` } : {}),
      ...(input.status === 'sent' ? { sent_at: sql`now()` } : {}),
      ...(input.nextAttemptAt ? { next_attempt_at: input.nextAttemptAt } : {}),
    }))
    .where('id', '=', input.id)
    .where('locked_by', '=', input.worker)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** A newer score of the same learner for the same line item is waiting: this one need not be sent. */
export async function hasNewerPendingScore(db: Db, row: Pick<OutboxRow, 'lineitem_url' | 'user_id' | 'seq'>) {
  const newer = await db
    .selectFrom('lti_score_outbox')
    .select('id')
    .where('lineitem_url', '=', row.lineitem_url)
    .where('user_id', '=', row.user_id)
    .where('status', '=', 'pending')
    .where('seq', '>', row.seq)
    .limit(1)
    .executeTakeFirst();
  return newer !== undefined;
}

export type OutboxListRow = OutboxRow & {
  registration_client_id: string | null;
  registration_issuer: string | null;
  registration_removed_at: Date | null;
};

/** Outbox rows for operators, newest first, each with its registration's client ID and state. */
export async function listOutbox(db: Db, input: { statuses: OutboxStatus[]; limit: number }): Promise<OutboxListRow[]> {
  return db
    .selectFrom('lti_score_outbox as o')
    .leftJoin('lti_registrations as r', 'r.id', 'o.registration_id')
    .selectAll('o')
    .select([
      'r.client_id as registration_client_id',
      'r.issuer as registration_issuer',
      'r.removed_at as registration_removed_at',
    ])
    .where('o.status', 'in', input.statuses)
    .orderBy('o.seq', 'desc')
    .limit(input.limit)
    .execute();
}

/** Rows per status, plus the pending ones held for an operator and those claimed by a worker now. */
export async function countOutbox(db: Db): Promise<Record<OutboxStatus | 'held' | 'claimed', number>> {
  const rows = await db
    .selectFrom('lti_score_outbox')
    .select([
      'status',
      (eb) => eb.fn.countAll<number>().as('n'),
      sql<number>`count(*) filter (where held_reason is not null)`.as('held'),
      sql<number>`count(*) filter (where locked_until > now())`.as('claimed'),
    ])
    .groupBy('status')
    .execute();
  const counts = { pending: 0, sent: 0, failed: 0, superseded: 0, held: 0, claimed: 0 };
  for (const r of rows) {
    counts[r.status] = Number(r.n);
    if (r.status === 'pending') {
      counts.held = Number(r.held);
      counts.claimed = Number(r.claimed);
    }
  }
  return counts;
}

/**
 * Lets go of claimed rows this worker will not attempt (its stop came first): due again at once for any
 * instance, attempts not counted.
 */
export async function releaseClaims(db: Db, input: { ids: string[]; worker: string; reason: string }) {
  if (input.ids.length === 0) return 0;
  const result = await db
    .updateTable('lti_score_outbox')
    .set((eb) => ({
      attempts: sql<number>`greatest(${eb.ref('attempts')} - 1, 0)`,
      last_error: input.reason,
      next_attempt_at: sql`now()`,
      locked_by: null,
      locked_until: null,
      updated_at: sql`now()`,
    }))
    .where('id', 'in', input.ids)
    .where('locked_by', '=', input.worker)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** The registrations of a batch of rows: active (removed_at null), removed, or absent from the map. */
export async function findRegistrations(db: Db, ids: string[]): Promise<Map<string, RegistrationRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('lti_registrations')
    .select(['id', 'issuer', 'client_id', 'access_token_url', 'removed_at'])
    .where('id', 'in', [...new Set(ids)])
    .execute();
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * The platforms (one registration per token endpoint) that pending scores wait for after failing to
 * reach them, whose next attempt is still ahead: what the outbox probes.
 */
export async function platformsAwaited(
  db: Db,
  now?: Date,
): Promise<{ access_token_url: string; registration_ids: string[] }[]> {
  const at_ = at(now);
  const rows = await sql<{ access_token_url: string; registration_id: string }>`
    select distinct r.access_token_url, r.id as registration_id
    from lti_score_outbox o
    join lti_registrations r on r.id = o.registration_id
    where o.status = 'pending' and o.waiting_for_platform and o.held_reason is null
      and o.next_attempt_at > ${at_} and r.removed_at is null
    order by r.access_token_url, r.id`.execute(db);
  const byUrl = new Map<string, string[]>();
  for (const r of rows.rows)
    byUrl.set(r.access_token_url, [...(byUrl.get(r.access_token_url) ?? []), r.registration_id]);
  return [...byUrl].map(([access_token_url, registration_ids]) => ({ access_token_url, registration_ids }));
}

/** The probe reached the platform: its scores waiting for it are due now instead of at their backoff. */
export async function releaseAwaitedScores(db: Db, registrationIds: string[], now?: Date): Promise<number> {
  if (registrationIds.length === 0) return 0;
  const at_ = at(now);
  const result = await db
    .updateTable('lti_score_outbox')
    .set({ next_attempt_at: at_, updated_at: sql`now()` })
    .where('status', '=', 'pending')
    .where('waiting_for_platform', '=', true)
    .where('held_reason', 'is', null)
    .where('registration_id', 'in', registrationIds)
    .where('next_attempt_at', '>', at_)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Registrations an operator may name by our id or by client ID (several issuers may share one). */
export async function findRegistrationsByRef(
  db: Db,
  ref: string,
  issuer?: string,
): Promise<(RegistrationRow & { deployment_ids: string[]; name: string })[]> {
  let q = db
    .selectFrom('lti_registrations')
    .select(['id', 'issuer', 'client_id', 'access_token_url', 'removed_at', 'deployment_ids', 'name'])
    .where((eb) => eb.or([eb(sql`id::text`, '=', ref), eb('client_id', '=', ref)]));
  if (issuer !== undefined) q = q.where('issuer', '=', issuer);
  return q.orderBy('created_at').execute();
}

/**
 * Operator re-target: the pending scores of one registration go to another (a replaced registration:
 * same platform and deployment, new client ID), due now, unheld, with a new retry window. Rows a worker
 * holds right now are left alone (counted in `busy`): run the command again once it let go.
 */
export async function retargetScores(
  db: Db,
  input: { fromRegistrationId: string; toRegistrationId: string },
): Promise<{ moved: number; busy: number }> {
  return db.transaction().execute(async (trx) => {
    const moved = await trx
      .updateTable('lti_score_outbox')
      .set({
        registration_id: input.toRegistrationId,
        held_reason: null,
        waiting_for_platform: false,
        next_attempt_at: sql`now()`,
        retrying_since: sql`now()`,
        updated_at: sql`now()`,
      })
      .where('registration_id', '=', input.fromRegistrationId)
      .where('status', '=', 'pending')
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', sql<Date>`now()`)]))
      .executeTakeFirst();
    const busy = await trx
      .selectFrom('lti_score_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('registration_id', '=', input.fromRegistrationId)
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow();
    return { moved: Number(moved.numUpdatedRows), busy: Number(busy.n) };
  });
}

/**
 * Operator retry: failed (or waiting) rows become due now, with a new 7-day retry window. Superseded and
 * sent rows stay as they are. A row whose registration is still unknown or removed is held again at its
 * next attempt: `retargetScores` is what moves it.
 */
export async function requeueScores(db: Db, input: { ids?: string[]; allFailed?: boolean }): Promise<number> {
  let q = db
    .updateTable('lti_score_outbox')
    .set({
      status: 'pending',
      next_attempt_at: sql`now()`,
      retrying_since: sql`now()`,
      held_reason: null,
      waiting_for_platform: false,
      locked_by: null,
      locked_until: null,
      updated_at: sql`now()`,
    })
    .where('status', 'in', ['failed', 'pending']);
  if (input.ids) {
    if (input.ids.length === 0) return 0;
    q = q.where('id', 'in', input.ids);
  } else if (!input.allFailed) return 0;
  else q = q.where('status', '=', 'failed');
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows);
}
