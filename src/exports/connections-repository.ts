import { sql } from 'kysely';
import type { Db } from '../db/index.js';
import { type ExportFilter, enrolments, periodBounds } from './repository.js';

/** The queries behind the connection log export: each enrolment's runs, marks and LMS sessions. */

export interface RunJson {
  id: string;
  tab: string;
  module: string;
  /** Epoch milliseconds (server time). */
  s: number;
  e: number;
  n: number;
  ua: string | null;
}

export interface ConnectionSourceRow {
  learner_id: string;
  course_id: string;
  family_name: string;
  given_name: string;
  fund_slug: string;
  idcc: string | null;
  runs: RunJson[] | null;
  focus: Array<{ tab: string; at: string }> | null;
  rejected: number[] | null;
  long_days: string[] | null;
  capped_modules: string[] | null;
  algorithm: string | null;
  /** The learner's LMS events in this course (epoch ms), behind the LMS estimate; null without one. */
  lms_times: number[] | null;
  lms_algorithm: string | null;
  lms_params: Record<string, unknown> | null;
  /** Modules marked completed, with their credited seconds and nominal minutes (plausibility flag). */
  completed_modules: Array<{ module: string; credited: number; nominal: number }> | null;
  /** Closing group sessions attended (src/regroupement): start (epoch ms), minutes, modality, how noted. */
  regroupements: Array<{ s: number; minutes: number; mode: string; via: string | null }> | null;
}

/**
 * One row per enrolment with that learner's runs (learner tabs only), focus marks, rejected items and
 * flags, as JSON: the merged sessions are computed from them by the tracking's own rules while the rows
 * stream, so memory holds one learner at a time. The period selects sessions (by their start); here it
 * only skips learners with no run overlapping it.
 */
export function connectionSources(db: Db, filter: ExportFilter) {
  const { from, to } = periodBounds(filter);
  const overlap = sql<boolean>`(exists (
    select 1 from tracking_runs r0
    where r0.learner_id = x.learner_id and r0.course_id = x.course_id
      ${from ? sql`and r0.last_beat_at >= ${from}` : sql``}
      ${to ? sql`and r0.started_at < ${to}` : sql``}
  ) or exists (
    select 1 from lms_time_totals l0
    where l0.learner_id = x.learner_id and l0.course_id = x.course_id
      ${from ? sql`and l0.last_at >= ${from}` : sql``}
      ${to ? sql`and l0.first_at < ${to}` : sql``}
  ) or exists (
    select 1 from regroupement_registrations g0 join regroupement_sessions s0 on s0.id = g0.session_id
    where g0.learner_id = x.learner_id and s0.course_id = x.course_id and g0.attended_minutes is not null
      ${from ? sql`and s0.starts_at >= ${from}` : sql``}
      ${to ? sql`and s0.starts_at < ${to}` : sql``}
  ))`;
  return enrolments(db, { ...filter, from: undefined, to: undefined })
    .select([
      'x.learner_id',
      'x.course_id',
      'x.family_name',
      'x.given_name',
      'x.fund_slug',
      'x.idcc',
      'x.algorithm',
      sql<RunJson[] | null>`(
        select json_agg(json_build_object(
          'id', r.id, 'tab', r.tab_id, 'module', r.module_id,
          's', (extract(epoch from r.started_at) * 1000)::bigint,
          'e', (extract(epoch from r.last_beat_at) * 1000)::bigint,
          'n', r.beat_count, 'ua', t.user_agent) order by r.started_at, r.id)
        from tracking_runs r join tracking_tabs t on t.id = r.tab_id
        where r.learner_id = x.learner_id and r.course_id = x.course_id and t.role = 'learner'
      )`.as('runs'),
      sql<Array<{ tab: string; at: string }> | null>`(
        select json_agg(json_build_object('tab', ev.tab_id, 'at', ev.data->>'focusAt') order by ev.chain_index)
        from tracking_events ev
        where ev.learner_id = x.learner_id and ev.course_id = x.course_id and ev.kind = 'focus'
      )`.as('focus'),
      sql<number[] | null>`(
        select json_agg((extract(epoch from ev.server_time) * 1000)::bigint order by ev.chain_index)
        from tracking_events ev
        where ev.learner_id = x.learner_id and ev.course_id = x.course_id and ev.kind = 'rejected'
      )`.as('rejected'),
      sql<string[] | null>`(
        select ct.long_days from time_course_totals ct
        where ct.learner_id = x.learner_id and ct.course_id = x.course_id
      )`.as('long_days'),
      sql<string[] | null>`(
        select json_agg(tt.module_id order by tt.module_id) from time_totals tt
        where tt.learner_id = x.learner_id and tt.course_id = x.course_id and tt.flags @> '["over_cap"]'::jsonb
      )`.as('capped_modules'),
      // The LMS estimate's events (src/lms, lms-sessions-v1): the rows of estimated time are rebuilt from them
      // with the same rules, beside the tool's own presence.
      sql<number[] | null>`(
        select json_agg((extract(epoch from ev.occurred_at) * 1000)::bigint order by ev.occurred_at)
        from lms_time_totals lt2
        join courses c2 on c2.id = lt2.course_id
        join lms_events ev on ev.course_context_id = c2.context_id
          and ev.lms_username in (select jsonb_array_elements_text(lt2.lms_usernames))
          and (ev.issuer is null or ev.issuer = c2.issuer)
        where lt2.learner_id = x.learner_id and lt2.course_id = x.course_id
      )`.as('lms_times'),
      sql<string | null>`(
        select lt3.algorithm from lms_time_totals lt3 where lt3.learner_id = x.learner_id and lt3.course_id = x.course_id
      )`.as('lms_algorithm'),
      sql<Record<string, unknown> | null>`(
        select lt4.params from lms_time_totals lt4 where lt4.learner_id = x.learner_id and lt4.course_id = x.course_id
      )`.as('lms_params'),
      sql<Array<{ module: string; credited: number; nominal: number }> | null>`(
        select json_agg(json_build_object('module', mp.module_id, 'credited', coalesce(tt.credited_seconds, 0),
          'nominal', m.nominal_minutes) order by mp.module_id)
        from module_progress mp
        join modules m on m.id = mp.module_id
        left join time_totals tt
          on tt.learner_id = mp.learner_id and tt.course_id = mp.course_id and tt.module_id = mp.module_id
        where mp.learner_id = x.learner_id and mp.course_id = x.course_id and mp.completed_at is not null
      )`.as('completed_modules'),
      sql<ConnectionSourceRow['regroupements']>`(
        select json_agg(json_build_object(
          's', (extract(epoch from gs.starts_at) * 1000)::bigint, 'minutes', gr.attended_minutes,
          'mode', gs.mode, 'via', gr.attendance_source) order by gs.starts_at)
        from regroupement_registrations gr join regroupement_sessions gs on gs.id = gr.session_id
        where gr.learner_id = x.learner_id and gs.course_id = x.course_id and gr.attended_minutes is not null
      )`.as('regroupements'),
    ])
    .where(overlap)
    .orderBy('x.family_name')
    .orderBy('x.given_name')
    .orderBy('x.learner_id')
    .orderBy('x.course_id');
}

export async function countConnectionSources(db: Db, filter: ExportFilter): Promise<number> {
  const row = await db
    .selectFrom(connectionSources(db, filter).as('c'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
