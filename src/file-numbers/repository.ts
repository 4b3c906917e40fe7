import type { Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
import { launchedAsLearnerIn } from '../lti/index.js';
import { companyNameKey } from './rules.js';

type Executor = Db | Transaction<Database>;

/**
 * Queries of the OPCO file numbers. Every read that lists companies or numbers takes the fund as a
 * mandatory argument: the scope is applied inside the query.
 */

export interface FundChoice {
  slug: string;
  name: string;
}

export async function listFunds(db: Executor, fund: string | null): Promise<FundChoice[]> {
  let q = db.selectFrom('funds').select(['slug', 'name']).orderBy('position');
  if (fund !== null) q = q.where('slug', '=', fund);
  return q.execute();
}

export async function fundExists(db: Executor, slug: string): Promise<boolean> {
  return (await db.selectFrom('funds').select('slug').where('slug', '=', slug).executeTakeFirst()) !== undefined;
}

export interface CourseChoice {
  id: string;
  title: string | null;
  label: string | null;
  contextId: string;
}

/** Course sessions where learners of this fund launched the tool, or where the fund set a number. */
export async function listCourses(db: Executor, fund: string): Promise<CourseChoice[]> {
  const rows = await db
    .selectFrom('courses as c')
    .select(['c.id', 'c.title', 'c.label', 'c.context_id'])
    .where((eb) =>
      eb.or([
        eb.exists(
          eb
            .selectFrom('lti_launches as l')
            .innerJoin('learner_profiles as p', 'p.learner_id', 'l.learner_id')
            .select('l.id')
            .whereRef('l.course_id', '=', 'c.id')
            .where('l.role', '=', 'learner')
            .where('p.fund_slug', '=', fund),
        ),
        eb.exists(
          eb
            .selectFrom('fund_file_numbers as n')
            .select('n.course_id')
            .whereRef('n.course_id', '=', 'c.id')
            .where('n.fund_slug', '=', fund),
        ),
      ]),
    )
    .orderBy('c.title')
    .orderBy('c.context_id')
    .execute();
  return rows.map((r) => ({ id: r.id, title: r.title, label: r.label, contextId: r.context_id }));
}

export async function findCourse(db: Executor, courseId: string): Promise<CourseChoice | null> {
  const r = await db
    .selectFrom('courses')
    .select(['id', 'title', 'label', 'context_id'])
    .where('id', '=', courseId)
    .executeTakeFirst();
  return r ? { id: r.id, title: r.title, label: r.label, contextId: r.context_id } : null;
}

export interface DeclaredName {
  name: string;
  learners: number;
  confirmed: boolean;
}

export interface CompanyRow {
  siret: string;
  /** The name most learners declared (null: no learner yet). */
  name: string | null;
  /** Every name declared for this SIRET (grouped after normalisation), with how many learners. */
  names: DeclaredName[];
  /** More than one name after normalisation: someone may have typed another company's SIRET. */
  conflict: boolean;
  learners: number;
  certificates: number;
  fileNumber: string | null;
  setBy: string | null;
  setAt: Date | null;
}

/**
 * The companies of this fund's learners who launched the tool in this course session, with their
 * number, plus companies whose number was set before any of their learners arrived.
 */
export async function listCompanies(db: Executor, fund: string, courseId: string): Promise<CompanyRow[]> {
  const [declared, certified, numbers, confirmed] = await Promise.all([
    db
      .selectFrom('learners')
      .innerJoin('learner_profiles as p', 'p.learner_id', 'learners.id')
      .select((eb) => [
        'p.company_siret as siret',
        'p.company_name as name',
        eb.fn.count<number>('learners.id').as('learners'),
      ])
      .where('p.fund_slug', '=', fund)
      .where(launchedAsLearnerIn(courseId))
      .groupBy(['p.company_siret', 'p.company_name'])
      .execute(),
    db
      .selectFrom('learners')
      .innerJoin('learner_profiles as p', 'p.learner_id', 'learners.id')
      .innerJoin('certificates as c', (join) =>
        join.onRef('c.learner_id', '=', 'learners.id').on('c.course_id', '=', courseId).on('c.state', '=', 'valid'),
      )
      .select((eb) => ['p.company_siret as siret', eb.fn.count<number>('c.id').as('certificates')])
      .where('p.fund_slug', '=', fund)
      .where(launchedAsLearnerIn(courseId))
      .groupBy('p.company_siret')
      .execute(),
    numbersOf(db, fund, courseId),
    confirmedNames(db, { fundSlug: fund, courseId }),
  ]);
  const bySiret = new Map<string, Map<string, DeclaredName>>();
  for (const d of declared) {
    const names = bySiret.get(d.siret) ?? new Map<string, DeclaredName>();
    bySiret.set(d.siret, names);
    const key = companyNameKey(d.name);
    const known = names.get(key);
    const isConfirmed = confirmed.some((c) => c.company_siret === d.siret && c.name_key === key);
    if (known) known.learners += Number(d.learners);
    else names.set(key, { name: d.name, learners: Number(d.learners), confirmed: isConfirmed });
  }
  const certificatesOf = new Map(certified.map((c) => [c.siret, Number(c.certificates)]));
  const numberOf = new Map(numbers.map((n) => [n.company_siret, n]));
  const rows: CompanyRow[] = [...bySiret.entries()].map(([siret, map]) => {
    const names = [...map.values()].sort((a, b) => b.learners - a.learners || a.name.localeCompare(b.name, 'fr'));
    const n = numberOf.get(siret);
    numberOf.delete(siret);
    return {
      siret,
      name: names[0]?.name ?? null,
      names,
      conflict: names.length > 1,
      learners: names.reduce((sum, x) => sum + x.learners, 0),
      certificates: certificatesOf.get(siret) ?? 0,
      fileNumber: n?.file_number ?? null,
      setBy: n?.set_by_username ?? null,
      setAt: n?.set_at ?? null,
    };
  });
  for (const n of numberOf.values()) {
    rows.push({
      siret: n.company_siret,
      name: null,
      names: [],
      conflict: false,
      learners: 0,
      certificates: 0,
      fileNumber: n.file_number,
      setBy: n.set_by_username,
      setAt: n.set_at,
    });
  }
  return rows.sort(
    (a, b) => (a.name ?? '\uffff').localeCompare(b.name ?? '\uffff', 'fr') || a.siret.localeCompare(b.siret),
  );
}

/** Names the fund confirmed (for one SIRET, or every SIRET of the session). */
export async function confirmedNames(
  db: Executor,
  key: { fundSlug: string; courseId: string; siret?: string },
): Promise<Array<{ company_siret: string; name_key: string; name: string }>> {
  let q = db
    .selectFrom('fund_company_names')
    .select(['company_siret', 'name_key', 'name'])
    .where('fund_slug', '=', key.fundSlug)
    .where('course_id', '=', key.courseId);
  if (key.siret) q = q.where('company_siret', '=', key.siret);
  return q.execute();
}

/** The names the fund's learners of the session declared for one SIRET. */
export async function declaredNames(
  db: Executor,
  key: { fundSlug: string; courseId: string; siret: string },
): Promise<string[]> {
  const rows = await db
    .selectFrom('learners')
    .innerJoin('learner_profiles as p', 'p.learner_id', 'learners.id')
    .select('p.company_name')
    .distinct()
    .where('p.fund_slug', '=', key.fundSlug)
    .where('p.company_siret', '=', key.siret)
    .where(launchedAsLearnerIn(key.courseId))
    .execute();
  return rows.map((r) => r.company_name);
}

/** Records a confirmed name (idempotent); true when it was not confirmed yet. */
export async function confirmName(
  db: Executor,
  key: { fundSlug: string; courseId: string; siret: string },
  name: { key: string; name: string },
  actor: { userId: string | null; username: string },
): Promise<boolean> {
  const row = await db
    .insertInto('fund_company_names')
    .values({
      fund_slug: key.fundSlug,
      course_id: key.courseId,
      company_siret: key.siret,
      name_key: name.key,
      name: name.name,
      confirmed_by_user_id: actor.userId,
      confirmed_by_username: actor.username,
    })
    .onConflict((oc) => oc.columns(['fund_slug', 'course_id', 'company_siret', 'name_key']).doNothing())
    .returning('name_key')
    .executeTakeFirst();
  return row !== undefined;
}

export async function numbersOf(db: Executor, fund: string, courseId: string) {
  return db
    .selectFrom('fund_file_numbers')
    .selectAll()
    .where('fund_slug', '=', fund)
    .where('course_id', '=', courseId)
    .execute();
}

/** The current number of one company in one course session for one fund, or null. */
export async function currentNumber(
  db: Executor,
  key: { fundSlug: string; courseId: string; siret: string },
): Promise<string | null> {
  const row = await db
    .selectFrom('fund_file_numbers')
    .select('file_number')
    .where((eb) => eb.and({ fund_slug: key.fundSlug, course_id: key.courseId, company_siret: key.siret }))
    .executeTakeFirst();
  return row?.file_number ?? null;
}

export interface NumberChange {
  fundSlug: string;
  courseId: string;
  siret: string;
  /** null: clear. */
  fileNumber: string | null;
  actor: { userId: string | null; username: string; via: string };
}

/** Writes the number (or clears it) and its history line; returns the previous value. Locks the key. */
export async function writeNumber(trx: Transaction<Database>, change: NumberChange): Promise<string | null> {
  const key = { fund_slug: change.fundSlug, course_id: change.courseId, company_siret: change.siret };
  const previous = await trx
    .selectFrom('fund_file_numbers')
    .select('file_number')
    .where((eb) => eb.and(key))
    .forUpdate()
    .executeTakeFirst();
  const before = previous?.file_number ?? null;
  if (before === change.fileNumber) return before;
  if (change.fileNumber === null) {
    await trx
      .deleteFrom('fund_file_numbers')
      .where((eb) => eb.and(key))
      .execute();
  } else {
    const values = {
      file_number: change.fileNumber,
      set_by_user_id: change.actor.userId,
      set_by_username: change.actor.username,
      set_at: new Date(),
    };
    await trx
      .insertInto('fund_file_numbers')
      .values({ ...key, ...values })
      .onConflict((oc) => oc.columns(['fund_slug', 'course_id', 'company_siret']).doUpdateSet(values))
      .execute();
  }
  await trx
    .insertInto('fund_file_number_history')
    .values({
      ...key,
      previous_number: before,
      file_number: change.fileNumber,
      set_by_user_id: change.actor.userId,
      set_by_username: change.actor.username,
      via: change.actor.via,
    })
    .execute();
  return before;
}

/** Learners of this fund and company holding a valid certificate in this course session. */
export async function certifiedLearners(
  db: Executor,
  key: { fundSlug: string; courseId: string; siret: string },
): Promise<string[]> {
  const rows = await db
    .selectFrom('certificates as c')
    .innerJoin('learner_profiles as p', 'p.learner_id', 'c.learner_id')
    .select('c.learner_id')
    .where('c.course_id', '=', key.courseId)
    .where('c.state', '=', 'valid')
    .where('p.fund_slug', '=', key.fundSlug)
    .where('p.company_siret', '=', key.siret)
    .execute();
  return rows.map((r) => r.learner_id);
}

export async function history(db: Executor, fund: string, courseId: string, limit = 50) {
  return db
    .selectFrom('fund_file_number_history')
    .selectAll()
    .where('fund_slug', '=', fund)
    .where('course_id', '=', courseId)
    .orderBy('at', 'desc')
    .limit(limit)
    .execute();
}
