import { sql } from 'kysely';
import type { Db } from '../db/index.js';

/**
 * The digest's queries. Each takes the fund as a mandatory argument and applies it inside the query,
 * on the learner's profile (the same scope as the exports): a digest never reads another fund's rows.
 */

export interface DigestLearnerRow {
  family_name: string;
  given_name: string;
  company_name: string;
  idcc: string | null;
  at_ms: number;
}

const toRows = (rows: DigestLearnerRow[]) => rows.map((r) => ({ ...r, at_ms: Number(r.at_ms) }));

/** Learners of the fund whose first launch in a course session falls in [from, to). */
export async function registrations(db: Db, fund: string, fromMs: number, toMs: number): Promise<DigestLearnerRow[]> {
  const result = await sql<DigestLearnerRow>`
    select p.family_name, p.given_name, p.company_name, p.idcc,
      (extract(epoch from e.registered_at) * 1000)::bigint as at_ms
    from (
      select l.learner_id, l.course_id, min(l.created_at) as registered_at
      from lti_launches l
      where l.role = 'learner' and l.course_id is not null
      group by l.learner_id, l.course_id
    ) e
    join learner_profiles p on p.learner_id = e.learner_id
    where p.fund_slug = ${fund}
      and e.registered_at >= ${new Date(fromMs)} and e.registered_at < ${new Date(toMs)}
    order by e.registered_at, p.family_name, p.given_name`.execute(db);
  return toRows(result.rows);
}

/** Learners of the fund whose valid certificate was first issued (its first version) in [from, to). */
export async function certificates(db: Db, fund: string, fromMs: number, toMs: number): Promise<DigestLearnerRow[]> {
  const result = await sql<DigestLearnerRow>`
    select p.family_name, p.given_name, p.company_name, p.idcc,
      (extract(epoch from first.issued_at) * 1000)::bigint as at_ms
    from certificates c
    join learner_profiles p on p.learner_id = c.learner_id
    join lateral (
      select min(c2.issued_at) as issued_at from certificates c2 where c2.lineage_id = c.lineage_id
    ) first on true
    where c.state = 'valid' and p.fund_slug = ${fund}
      and first.issued_at >= ${new Date(fromMs)} and first.issued_at < ${new Date(toMs)}
    order by first.issued_at, p.family_name, p.given_name`.execute(db);
  return toRows(result.rows);
}

/**
 * The last activity of each enrolment of the fund without a valid certificate: its registration,
 * module progress, credited connection time and LMS-estimated time, whichever is latest.
 */
function lastActivity(fund: string) {
  return sql`
    select e.learner_id, e.course_id,
      greatest(e.registered_at, pr.last_at, tt.last_at, lt.last_at) as last_at
    from (
      select l.learner_id, l.course_id, min(l.created_at) as registered_at
      from lti_launches l
      where l.role = 'learner' and l.course_id is not null
      group by l.learner_id, l.course_id
    ) e
    join learner_profiles p on p.learner_id = e.learner_id and p.fund_slug = ${fund}
    left join (
      select mp.learner_id, mp.course_id, max(greatest(mp.updated_at, mp.completed_at)) as last_at
      from module_progress mp group by mp.learner_id, mp.course_id
    ) pr on pr.learner_id = e.learner_id and pr.course_id = e.course_id
    left join (
      select t.learner_id, t.course_id, max(t.last_at) as last_at
      from time_totals t group by t.learner_id, t.course_id
    ) tt on tt.learner_id = e.learner_id and tt.course_id = e.course_id
    left join lms_time_totals lt on lt.learner_id = e.learner_id and lt.course_id = e.course_id
    where not exists (
      select 1 from certificates c
      where c.learner_id = e.learner_id and c.course_id = e.course_id and c.state = 'valid'
    )`;
}

/** Learners of the fund whose last activity falls in [from, to) (they became inactive in the week covered). */
export async function inactive(db: Db, fund: string, fromMs: number, toMs: number): Promise<DigestLearnerRow[]> {
  const result = await sql<DigestLearnerRow>`
    select p.family_name, p.given_name, p.company_name, p.idcc,
      (extract(epoch from a.last_at) * 1000)::bigint as at_ms
    from (${lastActivity(fund)}) a
    join learner_profiles p on p.learner_id = a.learner_id
    where a.last_at >= ${new Date(fromMs)} and a.last_at < ${new Date(toMs)}
    order by a.last_at, p.family_name, p.given_name`.execute(db);
  return toRows(result.rows);
}

export async function inactiveCount(db: Db, fund: string, beforeMs: number): Promise<number> {
  const result = await sql<{ n: number }>`
    select count(*) as n from (${lastActivity(fund)}) a where a.last_at < ${new Date(beforeMs)}`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
}

export async function fundName(db: Db, fund: string): Promise<string> {
  const row = await db.selectFrom('funds').select('name').where('slug', '=', fund).executeTakeFirst();
  return row?.name ?? fund;
}

// --- subscriptions and sent digests -------------------------------------------------------------

export async function isSubscribed(db: Db, userId: string): Promise<boolean> {
  return !!(await db
    .selectFrom('digest_subscriptions')
    .select('user_id')
    .where('user_id', '=', userId)
    .executeTakeFirst());
}

export async function subscribe(db: Db, userId: string): Promise<void> {
  await db
    .insertInto('digest_subscriptions')
    .values({ user_id: userId })
    .onConflict((oc) => oc.column('user_id').doNothing())
    .execute();
}

export async function unsubscribe(db: Db, userId: string): Promise<void> {
  await db.deleteFrom('digest_subscriptions').where('user_id', '=', userId).execute();
}

export interface DueDigest {
  user_id: string;
  username: string;
  display_name: string;
  fund_slug: string;
}

/**
 * Fund staff who asked for the digest before the week ended, still enabled and still in a fund, and
 * not yet sent this week's.
 */
export async function dueDigests(db: Db, weekStart: string, weekEndMs: number): Promise<DueDigest[]> {
  const rows = await db
    .selectFrom('digest_subscriptions as s')
    .innerJoin('portal_users as u', 'u.id', 's.user_id')
    .select(['u.id as user_id', 'u.username', 'u.display_name', 'u.fund_slug'])
    .where('u.role', '=', 'fund_staff')
    .where('u.disabled_at', 'is', null)
    .where('u.fund_slug', 'is not', null)
    .where('s.subscribed_at', '<', new Date(weekEndMs))
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('digests_sent as d')
            .select('d.user_id')
            .whereRef('d.user_id', '=', 'u.id')
            .where('d.week_start', '=', weekStart)
            .where('d.status', '=', 'sent'),
        ),
      ),
    )
    .orderBy('u.username')
    .execute();
  return rows as DueDigest[];
}

/** A claim left "sending" longer than this is taken to be from an instance that stopped mid-send. */
export const STALE_CLAIM_MINUTES = 15;

/**
 * Claims this person's digest of this week for this instance: a new row, or a failed or stale one
 * taken over. Exactly one concurrent caller gets true (the row's primary key and a conditional update).
 */
export async function claimDigest(
  db: Db,
  claim: { userId: string; weekStart: string; recipient: string; fund: string },
): Promise<boolean> {
  const row = await db
    .insertInto('digests_sent')
    .values({
      user_id: claim.userId,
      week_start: claim.weekStart,
      status: 'sending',
      recipient: claim.recipient,
      fund_slug: claim.fund,
    })
    .onConflict((oc) =>
      oc
        .columns(['user_id', 'week_start'])
        .doUpdateSet({ status: 'sending', claimed_at: sql`now()`, error: null, recipient: claim.recipient })
        .where((eb) =>
          eb.or([
            eb('digests_sent.status', '=', 'failed'),
            eb.and([
              eb('digests_sent.status', '=', 'sending'),
              eb('digests_sent.claimed_at', '<', sql<Date>`now() - make_interval(mins => ${STALE_CLAIM_MINUTES})`),
            ]),
          ]),
        ),
    )
    .returning('user_id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function markDigest(
  db: Db,
  key: { userId: string; weekStart: string },
  outcome: { sent: true; messageId: string | null } | { sent: false; error: string },
): Promise<void> {
  await db
    .updateTable('digests_sent')
    .set(
      outcome.sent
        ? { status: 'sent', sent_at: new Date(), message_id: outcome.messageId, error: null }
        : { status: 'failed', error: outcome.error.slice(0, 500) },
    )
    .where('user_id', '=', key.userId)
    .where('week_start', '=', key.weekStart)
    .execute();
}
