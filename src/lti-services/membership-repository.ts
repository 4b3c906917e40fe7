import { sql } from 'kysely';
import type { Db } from '../db/index.js';
import { at } from './repository.js';
import type { MemberInput } from './rules.js';

/** The memberships (NRPS) tables and the database leases of the background jobs. */

// ─── Memberships ────────────────────────────────────────────────────────────────────────────────────

export interface NrpsSource {
  course_id: string;
  registration_id: string;
  context_memberships_url: string;
}

/** Where a course's memberships are listed: the NRPS claim of its latest launch that carried one. */
export async function findNrpsSource(db: Db, courseId: string): Promise<NrpsSource | undefined> {
  const row = await db
    .selectFrom('lti_launches')
    .select(['course_id', 'registration_id', sql<string>`nrps ->> 'context_memberships_url'`.as('url')])
    .where('course_id', '=', courseId)
    .where(sql<boolean>`nrps ->> 'context_memberships_url' is not null`)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!row?.course_id) return undefined;
  return { course_id: row.course_id, registration_id: row.registration_id, context_memberships_url: row.url };
}

/** Courses launched with NRPS whose memberships were never listed, or not since `everyMs`. */
export async function coursesDueForMembershipSync(
  db: Db,
  input: { everyMs: number; limit: number; now?: Date | undefined },
): Promise<string[]> {
  const now = at(input.now);
  const rows = await sql<{ course_id: string }>`
    select c.course_id from (
      select distinct course_id from lti_launches
      where course_id is not null and nrps ->> 'context_memberships_url' is not null
    ) c
    left join lti_membership_syncs s on s.course_id = c.course_id
    where s.last_synced_at is null
       or s.last_synced_at <= ${now} - make_interval(secs => ${input.everyMs / 1000})
    order by s.last_synced_at nulls first
    limit ${input.limit}`.execute(db);
  return rows.rows.map((r) => r.course_id);
}

export async function recordSyncStart(db: Db, source: NrpsSource, startedAt: Date): Promise<void> {
  await db
    .insertInto('lti_membership_syncs')
    .values({
      course_id: source.course_id,
      registration_id: source.registration_id,
      context_memberships_url: source.context_memberships_url,
      last_started_at: startedAt,
      last_synced_at: null,
      last_error: null,
      member_count: null,
      page_count: null,
    })
    .onConflict((oc) =>
      oc.column('course_id').doUpdateSet({
        registration_id: source.registration_id,
        context_memberships_url: source.context_memberships_url,
        last_started_at: startedAt,
        updated_at: sql`now()`,
      }),
    )
    .execute();
}

export async function recordSyncFailure(db: Db, courseId: string, error: string): Promise<void> {
  await db
    .updateTable('lti_membership_syncs')
    .set({ last_error: error, updated_at: sql`now()` })
    .where('course_id', '=', courseId)
    .execute();
}

/**
 * Stores one complete list: members seen are upserted, members missing from it are marked removed.
 * One transaction, so a reader never sees half a list.
 */
export async function replaceMemberships(
  db: Db,
  input: { courseId: string; members: MemberInput[]; isLearner: (m: MemberInput) => boolean; pages: number },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const { seen } = await sql<{ seen: Date }>`select now() as seen`
      .execute(trx)
      .then((r) => r.rows[0] as { seen: Date });
    for (let i = 0; i < input.members.length; i += 500) {
      const chunk = input.members.slice(i, i + 500);
      await trx
        .insertInto('lti_memberships')
        .values(
          chunk.map((m) => ({
            course_id: input.courseId,
            user_id: m.userId,
            status: m.status,
            roles: JSON.stringify(m.roles),
            is_learner: input.isLearner(m),
            name: m.name,
            given_name: m.givenName,
            family_name: m.familyName,
            email: m.email,
            first_seen_at: seen,
            last_seen_at: seen,
            removed_at: null,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['course_id', 'user_id']).doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            roles: eb.ref('excluded.roles'),
            is_learner: eb.ref('excluded.is_learner'),
            name: eb.ref('excluded.name'),
            given_name: eb.ref('excluded.given_name'),
            family_name: eb.ref('excluded.family_name'),
            email: eb.ref('excluded.email'),
            last_seen_at: eb.ref('excluded.last_seen_at'),
            removed_at: null,
          })),
        )
        .execute();
    }
    await trx
      .updateTable('lti_memberships')
      .set({ removed_at: seen })
      .where('course_id', '=', input.courseId)
      .where('last_seen_at', '<', seen)
      .where('removed_at', 'is', null)
      .execute();
    await trx
      .updateTable('lti_membership_syncs')
      .set({
        last_synced_at: seen,
        last_error: null,
        member_count: input.members.length,
        page_count: input.pages,
        updated_at: sql`now()`,
      })
      .where('course_id', '=', input.courseId)
      .execute();
  });
}

export interface MembershipView {
  user_id: string;
  status: string;
  is_learner: boolean;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  email: string | null;
  learner_id: string | null;
  removed_at: Date | null;
}

/** A course's members, each joined to our learner row when they have launched the tool. */
export async function listMemberships(db: Db, courseId: string): Promise<MembershipView[]> {
  return db
    .selectFrom('lti_memberships as m')
    .innerJoin('courses as c', 'c.id', 'm.course_id')
    .leftJoin('learners as l', (j) => j.onRef('l.issuer', '=', 'c.issuer').onRef('l.sub', '=', 'm.user_id'))
    .select([
      'm.user_id',
      'm.status',
      'm.is_learner',
      'm.name',
      'm.given_name',
      'm.family_name',
      'm.email',
      'm.removed_at',
      'l.id as learner_id',
    ])
    .where('m.course_id', '=', courseId)
    .orderBy('m.first_seen_at')
    .orderBy('m.user_id')
    .execute();
}

export async function findMembershipSync(db: Db, courseId: string) {
  return db.selectFrom('lti_membership_syncs').selectAll().where('course_id', '=', courseId).executeTakeFirst();
}

// ─── Leases ─────────────────────────────────────────────────────────────────────────────────────────

/** Takes (or renews) a named lease; false while another holder's lease runs. */
export async function acquireLease(
  db: Db,
  input: { name: string; holder: string; ttlMs: number; now?: Date | undefined },
): Promise<boolean> {
  const now = at(input.now);
  const result = await sql<{ holder: string }>`
    insert into lti_service_leases (name, holder, expires_at)
    values (${input.name}, ${input.holder}, ${now} + make_interval(secs => ${input.ttlMs / 1000}))
    on conflict (name) do update
      set holder = excluded.holder, expires_at = excluded.expires_at
      where lti_service_leases.expires_at <= ${now} or lti_service_leases.holder = excluded.holder
    returning holder`.execute(db);
  return result.rows.length === 1;
}

export async function releaseLease(db: Db, name: string, holder: string): Promise<void> {
  await db.deleteFrom('lti_service_leases').where('name', '=', name).where('holder', '=', holder).execute();
}
