import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/index.js';
import { type LearnerStatus, nextDay, parisDayStart } from './rules.js';

/**
 * The queries behind the exports and the funnel. One "enrolment" is a learner in a course session
 * (an Open edX course run, `courses` row) as LTI launches recorded it; a learner without a profile
 * (onboarding not done) has no fund and is nobody's to export.
 *
 * Every query takes the fund scope as a mandatory argument (null = every fund, operators only):
 * the scope is applied inside the query, never by filtering rows afterwards.
 */

export interface ExportFilter {
  /** null = every fund (operators); otherwise the only fund whose learners are returned. */
  fund: string | null;
  courseId?: string | undefined;
  branch?: string | undefined;
  /** Paris calendar days, inclusive. */
  from?: string | undefined;
  to?: string | undefined;
  status?: LearnerStatus | undefined;
}

export interface EnrolmentRow {
  learner_id: string;
  course_id: string;
  registered_at: Date;
  fund_slug: string;
  idcc: string | null;
  civility: string;
  family_name: string;
  given_name: string;
  company_name: string;
  company_siret: string;
  modules_started: number;
  common_done: number;
  common_planned: number;
  sector_done: number;
  sector_planned: number;
  first_activity: Date | null;
  last_activity: Date | null;
  quiz_correct: number | null;
  quiz_total: number | null;
  certificate_number: string | null;
  certificate_issued_at: Date | null;
  file_number: string | null;
  session_start: string | null;
  session_end: string | null;
  planned_minutes: number | null;
  /** The sum of the nominal durations of the modules a learner of this fund follows (docs/programme.md). */
  programme_minutes: number | null;
  /** Credited seconds in the tool's modules, the LMS-estimated common trunk, and their union. */
  module_seconds: number | null;
  lms_seconds: number | null;
  total_seconds: number | null;
  algorithm: string | null;
  status: LearnerStatus;
}

export function periodBounds(filter: ExportFilter): { from: Date | null; to: Date | null } {
  return {
    from: filter.from ? parisDayStart(filter.from) : null,
    to: filter.to ? parisDayStart(nextDay(filter.to)) : null,
  };
}

/**
 * One row per enrolment with everything the summary, the status filter and the funnel need.
 * The fund, course and branch conditions sit inside, next to the tables they narrow. Names of funds,
 * branches and courses are not repeated on 100k rows: the exports look them up from small maps.
 *
 * Each aggregate is computed for the whole scope in one pass (hash aggregation over sequential scans),
 * which on a full export beats looking each learner up through the indexes by about a half.
 */
function enrolmentFacts(filter: ExportFilter): RawBuilder<EnrolmentRow> {
  const fundCond = filter.fund === null ? sql`true` : sql`p.fund_slug = ${filter.fund}`;
  const courseCond = filter.courseId ? sql`l.course_id = ${filter.courseId}` : sql`l.course_id is not null`;
  const progressCourseCond = filter.courseId ? sql`mp.course_id = ${filter.courseId}` : sql`true`;
  const timeCourseCond = filter.courseId ? sql`ct.course_id = ${filter.courseId}` : sql`true`;
  const timeTotalsCourseCond = filter.courseId ? sql`tt.course_id = ${filter.courseId}` : sql`true`;
  // The scope again inside each aggregate, so that a fund's export aggregates only its learners' rows.
  const inScope = (learnerId: RawBuilder<unknown>) =>
    filter.fund === null && !filter.branch
      ? sql`true`
      : sql`${learnerId} in (select sp.learner_id from learner_profiles sp where ${
          filter.fund === null ? sql`true` : sql`sp.fund_slug = ${filter.fund}`
        } and ${filter.branch ? sql`sp.idcc = ${filter.branch}` : sql`true`})`;
  const branchCond = filter.branch ? sql`p.idcc = ${filter.branch}` : sql`true`;
  return sql<EnrolmentRow>`(
    select f.*,
      case
        when f.certificate_number is not null then 'certificate_issued'
        when f.common_planned + f.sector_planned > 0
          and f.common_done + f.sector_done >= f.common_planned + f.sector_planned then 'completed'
        when f.modules_started > 0 or coalesce(f.module_seconds, 0) > 0 then 'in_progress'
        else 'not_started'
      end as status
    from (
      select
        e.learner_id, e.course_id, e.registered_at,
        p.fund_slug, p.idcc, p.civility, p.family_name, p.given_name, p.company_name, p.company_siret,
        coalesce(pr.modules_started, 0)::int as modules_started,
        coalesce(pr.common_done, 0)::int as common_done,
        coalesce(pl.common_planned, 0)::int as common_planned,
        coalesce(pr.sector_done, 0)::int as sector_done,
        coalesce(pl.sector_planned, 0)::int as sector_planned,
        least(pr.first_activity, tm.first_at, lt.first_at) as first_activity,
        greatest(pr.last_activity, tm.last_at, lt.last_at) as last_activity,
        pr.quiz_correct::int as quiz_correct, pr.quiz_total::int as quiz_total,
        cert.number as certificate_number, cert.issued_at as certificate_issued_at,
        -- The current OPCO file number of the learner's company in this session (src/file-numbers),
        -- certificate or not; profiles hold the SIRET as 14 digits.
        ffn.file_number,
        r.session_start, r.session_end, r.planned_minutes, pl.programme_minutes::int as programme_minutes,
        tm.module_seconds, lt.estimated_seconds as lms_seconds,
        case when tm.module_seconds is null and lt.estimated_seconds is null then null
          else coalesce(tm.module_seconds, 0) + coalesce(lt.estimated_seconds, 0) end as total_seconds,
        tm.algorithm
      from (
        select l.learner_id, l.course_id, min(l.created_at) as registered_at
        from lti_launches l
        where l.role = 'learner' and ${courseCond}
        group by l.learner_id, l.course_id
      ) e
      join learner_profiles p on p.learner_id = e.learner_id
      left join (
        -- Module places done per trunk as bit sets (bit = place of the module in the programme: theme
        -- position and position in the theme, up to 7 modules per theme): a distinct count that still
        -- lets PostgreSQL hash-aggregate the whole table in one pass (count(distinct) would sort it). A
        -- learner meeting a branch variant and the default module of one place counts that place once.
        select mp.learner_id, mp.course_id,
          count(*) as modules_started,
          bit_count(bit_or(case when mp.completed_at is not null and t.trunk = 'common'
            then 1::bigint << t.slot else 0::bigint end)::bit(64)) as common_done,
          bit_count(bit_or(case when mp.completed_at is not null and t.trunk = 'sector'
            then 1::bigint << t.slot else 0::bigint end)::bit(64)) as sector_done,
          min(mp.started_at) as first_activity,
          max(greatest(mp.updated_at, mp.completed_at)) as last_activity,
          sum((mp.quiz_answers->>'correct')::int) filter (where mp.quiz_answers is not null) as quiz_correct,
          sum((mp.quiz_answers->>'total')::int) filter (where mp.quiz_answers is not null) as quiz_total
        from module_progress mp
        join (
          select m.id, th.trunk, least(63, (th.position - 1) * 7 + (m.position - 1)) as slot
          from modules m join themes th on th.track_id = m.track_id and th.slug = m.theme_slug offset 0
        ) t on t.id = mp.module_id
        where ${progressCourseCond} and ${inScope(sql`mp.learner_id`)}
        group by mp.learner_id, mp.course_id
      ) pr on pr.learner_id = e.learner_id and pr.course_id = e.course_id
      left join (
        -- What a learner of each fund is offered: one module per place (theme and position in the theme;
        -- a branch variant replaces the fund's default module of its place, so places are counted), and
        -- the planned duration as the sum of the default modules' nominal durations.
        select fx.slug as fund_slug,
          count(distinct (t.slug, ms.position)) filter (where t.trunk = 'common') as common_planned,
          count(distinct (t.slug, ms.position)) filter (where t.trunk = 'sector') as sector_planned,
          sum(ms.nominal_minutes) filter (where ms.branches = '[]'::jsonb) as programme_minutes
        from funds fx
        left join modules ms on ms.active and (ms.fund_slug is null or ms.fund_slug = fx.slug)
        left join themes t on t.track_id = ms.track_id and t.slug = ms.theme_slug
        group by fx.slug
      ) pl on pl.fund_slug = p.fund_slug
      -- At most one valid certificate per learner and course (a unique index of the certificates).
      left join certificates cert
        on cert.learner_id = e.learner_id and cert.course_id = e.course_id and cert.state = 'valid'
      left join certificate_rules r on r.course_id = e.course_id
      left join fund_file_numbers ffn
        on ffn.fund_slug = p.fund_slug and ffn.course_id = e.course_id and ffn.company_siret = p.company_siret
      left join (
        -- Connection time (tracking): the union of in-tool time per learner and course, credited after caps.
        select ct.learner_id, ct.course_id, ct.credited_seconds as module_seconds, ct.algorithm,
          span.first_at, span.last_at
        from time_course_totals ct
        left join (
          select tt.learner_id, tt.course_id, min(tt.first_at) as first_at, max(tt.last_at) as last_at
          from time_totals tt
          where ${timeTotalsCourseCond} and ${inScope(sql`tt.learner_id`)}
          group by tt.learner_id, tt.course_id
        ) span on span.learner_id = ct.learner_id and span.course_id = ct.course_id
        where ${timeCourseCond} and ${inScope(sql`ct.learner_id`)}
      ) tm on tm.learner_id = e.learner_id and tm.course_id = e.course_id
      -- The LMS's own pages (common trunk) estimated from its logs (src/lms, lms-sessions-v1: its sessions
      -- minus in-tool time, so the total is the sum). Unknown (null) where no log was imported. A separate
      -- join, not a full join with the in-tool totals: on coalesced keys PostgreSQL can only merge-join.
      left join lms_time_totals lt
        on lt.learner_id = e.learner_id and lt.course_id = e.course_id
      where ${fundCond} and ${branchCond}
    ) f
  )`;
}

/**
 * The enrolments of a filter, as a query that can be streamed, counted or aggregated. The period
 * selects, by default, whoever was registered or active in it (first to last activity overlapping
 * it); the funnel selects by registration only, since it follows cohorts.
 */
export function enrolments(db: Db, filter: ExportFilter, periodBy: 'activity' | 'registration' = 'activity') {
  const { from, to } = periodBounds(filter);
  let q = db.selectFrom(enrolmentFacts(filter).as('x'));
  if (filter.status) q = q.where('x.status', '=', filter.status);
  if (periodBy === 'registration') {
    if (from) q = q.where('x.registered_at', '>=', from);
    if (to) q = q.where('x.registered_at', '<', to);
    return q;
  }
  if (from) q = q.where((eb) => eb.or([eb('x.registered_at', '>=', from), eb('x.last_activity', '>=', from)]));
  if (to) q = q.where((eb) => eb.or([eb('x.registered_at', '<', to), eb('x.first_activity', '<', to)]));
  return q;
}

/** Only what the summary prints: every column parsed is time spent on each of 100k rows. */
export const SUMMARY_FIELDS = [
  'x.learner_id',
  'x.course_id',
  'x.fund_slug',
  'x.idcc',
  'x.civility',
  'x.family_name',
  'x.given_name',
  'x.company_name',
  'x.company_siret',
  'x.common_done',
  'x.common_planned',
  'x.sector_done',
  'x.sector_planned',
  sql<number | null>`(extract(epoch from x.first_activity) * 1000)::bigint`.as('first_activity_ms'),
  sql<number | null>`(extract(epoch from x.last_activity) * 1000)::bigint`.as('last_activity_ms'),
  'x.quiz_correct',
  'x.quiz_total',
  'x.certificate_number',
  'x.file_number',
  'x.session_start',
  'x.session_end',
  'x.planned_minutes',
  'x.programme_minutes',
  'x.module_seconds',
  'x.lms_seconds',
  'x.total_seconds',
  'x.algorithm',
  'x.status',
  // Closing group sessions attended (src/regroupement): first one's start, modalities, minutes in all.
  sql<number | null>`(
    select (extract(epoch from min(gs.starts_at)) * 1000)::bigint
    from regroupement_registrations gr join regroupement_sessions gs on gs.id = gr.session_id
    where gr.learner_id = x.learner_id and gs.course_id = x.course_id and gr.attended_minutes is not null
  )`.as('regroupement_first_ms'),
  sql<string[] | null>`(
    select json_agg(distinct gs.mode)
    from regroupement_registrations gr join regroupement_sessions gs on gs.id = gr.session_id
    where gr.learner_id = x.learner_id and gs.course_id = x.course_id and gr.attended_minutes is not null
  )`.as('regroupement_modes'),
  sql<number | null>`(
    select sum(gr.attended_minutes)::int
    from regroupement_registrations gr join regroupement_sessions gs on gs.id = gr.session_id
    where gr.learner_id = x.learner_id and gs.course_id = x.course_id and gr.attended_minutes is not null
  )`.as('regroupement_minutes'),
] as const;

/** Instants come as epoch milliseconds: a number parses far faster than a timestamp text, 100k times. */
export type SummaryRow = Pick<
  EnrolmentRow,
  Extract<(typeof SUMMARY_FIELDS)[number], string> extends `x.${infer K}` ? K : never
> & {
  first_activity_ms: number | null;
  last_activity_ms: number | null;
  regroupement_first_ms: number | null;
  regroupement_modes: string[] | null;
  regroupement_minutes: number | null;
};

export function summaryRows(db: Db, filter: ExportFilter) {
  return enrolments(db, filter)
    .select(SUMMARY_FIELDS)
    .orderBy('x.family_name')
    .orderBy('x.given_name')
    .orderBy('x.learner_id')
    .orderBy('x.course_id');
}

export async function countEnrolments(db: Db, filter: ExportFilter): Promise<number> {
  const row = await enrolments(db, filter)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface FunnelRow {
  fund_slug: string;
  idcc: string | null;
  week_start: string;
  week_key: string;
  registered: number;
  started: number;
  common_done: number;
  sector_done: number;
  certified: number;
  out_of_order: number;
}

/**
 * The stage conditions of one enrolment, before nesting (rules.ts `nestStages` is the same rule in
 * TypeScript): a module opened with credited time; every module of a trunk done, a trunk the catalog
 * offers nothing in being "not measured" for the common trunk (it passes) and unreachable for the
 * sector trunk; a valid certificate.
 */
const STARTED = sql<boolean>`(x.modules_started > 0 and coalesce(x.module_seconds, 0) > 0)`;
const COMMON = sql<boolean>`(x.common_planned = 0 or x.common_done >= x.common_planned)`;
const SECTOR = sql<boolean>`(x.sector_planned > 0 and x.sector_done >= x.sector_planned)`;
const CERTIFIED = sql<boolean>`(x.certificate_number is not null)`;
const NESTED = {
  started: STARTED,
  common: sql<boolean>`(${STARTED} and ${COMMON} and x.common_planned > 0)`,
  sector: sql<boolean>`(${STARTED} and ${COMMON} and ${SECTOR})`,
  certified: sql<boolean>`(${STARTED} and ${COMMON} and ${SECTOR} and ${CERTIFIED})`,
};

/**
 * Funnel cells per fund, branch and week of registration (ISO week, Europe/Paris). The stages nest:
 * each counts the learners who passed it and every stage before it, so no stage can exceed the one
 * before. Learners who passed a later stage out of order (the sector trunk finished while the common
 * trunk is not, a certificate under a rule that does not ask for every module) are counted where the
 * ordered path stops, and once in `out_of_order`. The status filter does not apply: the funnel is the
 * distribution of statuses.
 */
export async function funnelRows(db: Db, filter: ExportFilter): Promise<FunnelRow[]> {
  const { status: _ignored, ...rest } = filter;
  const weekStart = sql<string>`to_char(date_trunc('week', x.registered_at at time zone 'Europe/Paris'), 'YYYY-MM-DD')`;
  const weekKey = sql<string>`to_char(x.registered_at at time zone 'Europe/Paris', 'IYYY-"W"IW')`;
  const rows = await enrolments(db, rest, 'registration')
    .select([
      'x.fund_slug',
      'x.idcc',
      weekStart.as('week_start'),
      weekKey.as('week_key'),
      sql<number>`count(*)`.as('registered'),
      sql<number>`count(*) filter (where ${NESTED.started})`.as('started'),
      sql<number>`count(*) filter (where ${NESTED.common})`.as('common_done'),
      sql<number>`count(*) filter (where ${NESTED.sector})`.as('sector_done'),
      sql<number>`count(*) filter (where ${NESTED.certified})`.as('certified'),
      sql<number>`count(*) filter (where
        (x.common_planned > 0 and x.common_done >= x.common_planned and not ${NESTED.common})
        or (${SECTOR} and not ${NESTED.sector})
        or (${CERTIFIED} and not ${NESTED.certified}))`.as('out_of_order'),
    ])
    .groupBy(['x.fund_slug', 'x.idcc', weekStart, weekKey])
    .orderBy('x.fund_slug')
    .orderBy(weekStart)
    .execute();
  return rows.map((r) => ({
    ...r,
    registered: Number(r.registered),
    started: Number(r.started),
    common_done: Number(r.common_done),
    sector_done: Number(r.sector_done),
    certified: Number(r.certified),
    out_of_order: Number(r.out_of_order),
  }));
}

/** Whether the catalog serves common-trunk modules at all: if not, "common trunk done" is unknown. */
export async function commonTrunkKnown(db: Db): Promise<boolean> {
  const row = await db
    .selectFrom('modules as m')
    .innerJoin('themes as t', (j) => j.onRef('t.track_id', '=', 'm.track_id').onRef('t.slug', '=', 'm.theme_slug'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('m.active', '=', true)
    .where('t.trunk', '=', 'common')
    .executeTakeFirstOrThrow();
  return Number(row.n) > 0;
}

// --- choices for the filters ----------------------------------------------------------------

export async function listFunds(db: Db, fund: string | null) {
  let q = db.selectFrom('funds').select(['slug', 'name', 'historical_name']).orderBy('position').orderBy('slug');
  if (fund !== null) q = q.where('slug', '=', fund);
  return q.execute();
}

export async function listBranches(db: Db, fund: string | null) {
  let q = db.selectFrom('branches').select(['idcc', 'name', 'fund_slug']).orderBy('fund_slug').orderBy('idcc');
  if (fund !== null) q = q.where('fund_slug', '=', fund);
  return q.execute();
}

/** Course sessions where the fund has at least one learner (all sessions for operators). */
export async function listCourses(db: Db, fund: string | null) {
  const q = db
    .selectFrom('courses as c')
    .select(['c.id', 'c.title', 'c.label', 'c.context_id'])
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('lti_launches as l')
          .innerJoin('learner_profiles as p', 'p.learner_id', 'l.learner_id')
          .select(sql`1`.as('one'))
          .whereRef('l.course_id', '=', 'c.id')
          .where('l.role', '=', 'learner')
          .$if(fund !== null, (qb) => qb.where('p.fund_slug', '=', fund as string)),
      ),
    )
    .orderBy('c.title');
  return q.execute();
}

export async function moduleTitles(db: Db): Promise<Map<string, string>> {
  const rows = await db.selectFrom('modules').select(['id', 'title']).execute();
  return new Map(rows.map((r) => [r.id, r.title]));
}

/** Names printed on every row, looked up once per export. */
export async function namesForExport(db: Db) {
  const [funds, branches, courses] = await Promise.all([
    db.selectFrom('funds').select(['slug', 'name', 'historical_name']).execute(),
    db.selectFrom('branches').select(['idcc', 'name', 'historical_name']).execute(),
    db.selectFrom('courses').select(['id', 'title', 'label', 'context_id']).execute(),
  ]);
  return {
    funds: new Map(funds.map((f) => [f.slug, { name: f.name, historicalName: f.historical_name }])),
    branches: new Map(branches.map((b) => [b.idcc, b.name])),
    /** A branch's own OPCA of 2017 where it was not its fund's. */
    branchHistoricalNames: new Map(
      branches.filter((b) => b.historical_name !== null).map((b) => [b.idcc, b.historical_name as string]),
    ),
    courses: new Map(courses.map((c) => [c.id, { title: c.title, session: c.label ?? c.context_id }])),
  };
}

// --- completion forecast ------------------------------------------------------------------------

export interface ForecastRow {
  fund_slug: string;
  idcc: string | null;
  registered_ms: number;
  /** The first issuance of the learner's valid certificate (its lineage's first version), if any. */
  certified_ms: number | null;
}

/**
 * One row per enrolment in scope with its registration and first certificate instants: what the
 * survival estimate needs and nothing more. The period does not narrow it (every earlier cohort
 * informs the curve); the caller picks the cohorts to show.
 */
export async function forecastRows(db: Db, filter: ExportFilter): Promise<ForecastRow[]> {
  const fundCond = filter.fund === null ? sql`true` : sql`p.fund_slug = ${filter.fund}`;
  const branchCond = filter.branch ? sql`p.idcc = ${filter.branch}` : sql`true`;
  const courseCond = filter.courseId ? sql`l.course_id = ${filter.courseId}` : sql`l.course_id is not null`;
  const result = await sql<ForecastRow>`
    select p.fund_slug, p.idcc,
      (extract(epoch from e.registered_at) * 1000)::bigint as registered_ms,
      (extract(epoch from (
        select min(c2.issued_at) from certificates c2 where c2.lineage_id = cert.lineage_id
      )) * 1000)::bigint as certified_ms
    from (
      select l.learner_id, l.course_id, min(l.created_at) as registered_at
      from lti_launches l
      where l.role = 'learner' and ${courseCond}
      group by l.learner_id, l.course_id
    ) e
    join learner_profiles p on p.learner_id = e.learner_id
    left join certificates cert
      on cert.learner_id = e.learner_id and cert.course_id = e.course_id and cert.state = 'valid'
    where ${fundCond} and ${branchCond}
    order by e.registered_at`.execute(db);
  return result.rows.map((r) => ({
    ...r,
    registered_ms: Number(r.registered_ms),
    certified_ms: r.certified_ms === null ? null : Number(r.certified_ms),
  }));
}
