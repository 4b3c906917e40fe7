import { sql } from 'kysely';
import type { NewEvent, RunRecord, TabRecord } from '../engine.js';
import { type CourseTally, emptyTally, type FocusState, type StopCause } from '../rules.js';
import { TabConflictError, type TabRow, tabRecord, v2Columns } from './runs.js';
import { isoOrNull, type Q, toMs, toMsOrNull } from './shared.js';
import {
  finalizeFor,
  type PairKey,
  pairKey,
  type StoredTally,
  serializeTotals,
  stable,
  type TotalsRows,
  totalsRows,
} from './totals.js';

/**
 * The ingest's two round trips: one statement reads everything a batch needs, one writes tabs, runs, evidence,
 * chain heads and totals (all the tracking's tables at once, hence a file of its own).
 */

interface RunJson {
  id: string;
  tab_id: string;
  learner_id: string;
  course_id: string;
  module_id: string;
  started_at: string;
  last_beat_at: string;
  beat_count: number;
  first_seq: number;
  last_seq: number;
  rolling_hash: string;
  sealed: boolean;
  stop_cause: string | null;
  stop_at: string | null;
  before_stop_at: string | null;
  min_step_ms: number | null;
  max_step_ms: number | null;
  input_beats: number;
}

/** A tab row as the batch statement's JSON gives it (timestamps as strings). */
type TabJson = TabRow;

export interface BatchState {
  now: number;
  runs: Map<string, RunRecord>;
  tabs: Map<string, TabRecord>;
  tallies: Map<PairKey, StoredTally>;
}

/**
 * Everything a batch needs, in one statement run after the learner locks (so its snapshot sees every
 * commit that preceded them): the clock, live runs, tabs, and the stored tallies of the courses involved.
 */
export async function readBatchState(
  trx: Q,
  input: {
    learnerIds: readonly string[];
    tabIds: readonly string[];
    courseIds: readonly string[];
    windowMs: number;
    /** Runs ending after this are loaded; default: the database clock minus the window. */
    sinceMs?: number;
  },
): Promise<BatchState> {
  const learners = [...new Set(input.learnerIds)];
  const tabIds = [...new Set(input.tabIds)];
  const courses = [...new Set(input.courseIds)];
  // The window is widened by a second: the clock below is read again per row; loading more runs is harmless.
  const { rows } = await sql<{
    now: number;
    runs: RunJson[];
    tabs: TabJson[];
    course_totals: Array<{
      learner_id: string;
      course_id: string;
      measured_ms: number;
      params: Record<string, unknown>;
      algorithm: string;
    }>;
    module_totals: Array<{
      learner_id: string;
      course_id: string;
      module_id: string;
      nominal_minutes: number;
      measured_ms: number;
      first_at: string | null;
      last_at: string | null;
      rejected_items: number;
    }>;
    day_totals: Array<{
      learner_id: string;
      course_id: string;
      day: string;
      measured_ms: number;
      modules: Record<string, number>;
    }>;
  }>`
    with live as (
      select id, tab_id, learner_id, course_id, module_id, started_at, last_beat_at, beat_count, first_seq, last_seq,
             rolling_hash, sealed, stop_cause, stop_at, before_stop_at, min_step_ms, max_step_ms, input_beats
      from tracking_runs
      where learner_id = any(${learners}::uuid[])
        and (not sealed or last_beat_at > ${
          input.sinceMs !== undefined
            ? sql`${new Date(input.sinceMs)}::timestamptz`
            : sql`clock_timestamp() - (${input.windowMs + 1000} * interval '1 millisecond')`
        })
    )
    select
      floor(extract(epoch from clock_timestamp()) * 1000)::bigint as now,
      coalesce((select json_agg(live) from live), '[]'::json) as runs,
      coalesce((select json_agg(t) from (
        select id, learner_id, course_id, module_id, module_version, nominal_minutes, role, profile, user_agent,
               ip_prefix, created_at, opened_at, closed_at, last_seq, missing_seqs, last_accepted_beat_at,
               current_run_id, rate_window_start, rate_window_items, dropped_items
        from tracking_tabs
        where id = any(${tabIds}::uuid[] || array(select tab_id from live where not sealed))
      ) t), '[]'::json) as tabs,
      coalesce((select json_agg(c) from (
        select learner_id, course_id, measured_ms, params, algorithm from time_course_totals
        where learner_id = any(${learners}::uuid[]) and course_id = any(${courses}::uuid[])
      ) c), '[]'::json) as course_totals,
      coalesce((select json_agg(m) from (
        select learner_id, course_id, module_id, nominal_minutes, measured_ms, first_at, last_at, rejected_items
        from time_totals where learner_id = any(${learners}::uuid[]) and course_id = any(${courses}::uuid[])
      ) m), '[]'::json) as module_totals,
      coalesce((select json_agg(d) from (
        select learner_id, course_id, day, measured_ms, modules from time_day_totals
        where learner_id = any(${learners}::uuid[]) and course_id = any(${courses}::uuid[])
      ) d), '[]'::json) as day_totals
  `.execute(trx);
  const row = rows[0];
  if (!row) throw new Error('readBatchState: no row');
  const parse = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

  const runs = new Map<string, RunRecord>();
  for (const r of parse(row.runs)) {
    runs.set(r.id, {
      tabId: r.tab_id,
      learnerId: r.learner_id,
      courseId: r.course_id,
      moduleId: r.module_id,
      state: {
        id: r.id,
        startMs: toMs(r.started_at),
        lastBeatMs: toMs(r.last_beat_at),
        beatCount: r.beat_count,
        firstSeq: r.first_seq,
        lastSeq: r.last_seq,
        rollingHash: r.rolling_hash,
        sealed: r.sealed,
        stopCause: r.stop_cause as StopCause | null,
        stopAtMs: toMsOrNull(r.stop_at),
        beforeStopMs: toMsOrNull(r.before_stop_at),
        minStepMs: r.min_step_ms,
        maxStepMs: r.max_step_ms,
        inputBeats: r.input_beats,
      },
      isNew: false,
      changed: false,
    });
  }
  const tabs = new Map<string, TabRecord>();
  for (const t of parse(row.tabs)) tabs.set(t.id, tabRecord(t, runs));

  const tallies = new Map<PairKey, StoredTally>();
  for (const c of parse(row.course_totals)) {
    const tally = emptyTally();
    tally.measuredMs = Number(c.measured_ms);
    tally.profiles = Object.keys((c.params as { runProfiles?: Record<string, unknown> }).runProfiles ?? {}).sort();
    tallies.set(pairKey(c.learner_id, c.course_id), {
      tally,
      algorithm: c.algorithm,
      snapshot: { modules: new Map(), days: new Map(), course: null },
    });
  }
  for (const m of parse(row.module_totals)) {
    const s = tallies.get(pairKey(m.learner_id, m.course_id));
    if (!s) continue;
    s.tally.modules[m.module_id] = {
      nominalMinutes: m.nominal_minutes,
      measuredMs: Number(m.measured_ms),
      firstMs: toMsOrNull(m.first_at),
      lastMs: toMsOrNull(m.last_at),
      rejectedItems: m.rejected_items,
    };
  }
  for (const d of parse(row.day_totals)) {
    const s = tallies.get(pairKey(d.learner_id, d.course_id));
    if (s) s.tally.days[d.day] = { measuredMs: Number(d.measured_ms), modules: d.modules };
  }
  for (const [key, s] of tallies) {
    const [learnerId, courseId] = key.split('|') as [string, string];
    s.snapshot = serializeTotals(totalsRows(learnerId, courseId, finalizeFor(s.tally)));
  }
  return { now: Number(row.now), runs, tabs, tallies };
}

export interface TotalsPlan {
  modules: Array<Record<string, unknown>>;
  days: Array<Record<string, unknown>>;
  courses: Array<Record<string, unknown>>;
  /** Rows a credit no longer has (only after a recompute changed attribution): deleted separately. */
  stale: Array<{ learnerId: string; courseId: string; modules: string[]; days: string[] }>;
  changedPairs: number;
}

/** The totals rows that differ from what was loaded, as plain JSON values for jsonb_to_recordset. */
export function planTotals(
  pairs: ReadonlyArray<{ learnerId: string; courseId: string; tally: CourseTally; before: TotalsRows | null }>,
): TotalsPlan {
  const plan: TotalsPlan = { modules: [], days: [], courses: [], stale: [], changedPairs: 0 };
  for (const { learnerId, courseId, tally, before } of pairs) {
    const rows = totalsRows(learnerId, courseId, finalizeFor(tally));
    const after = serializeTotals(rows);
    const plain = (r: object) => JSON.parse(stable(r), (_k, v) => v) as Record<string, unknown>;
    const json = (r: Record<string, unknown>, keys: string[]) => {
      const o = plain(r);
      for (const k of keys) if (typeof o[k] === 'string') o[k] = JSON.parse(o[k] as string);
      return o;
    };
    const m = rows.modules.filter((r) => before?.modules.get(r.module_id) !== after.modules.get(r.module_id));
    const d = rows.days.filter((r) => before?.days.get(r.day) !== after.days.get(r.day));
    const staleModules = before ? [...before.modules.keys()].filter((k) => !after.modules.has(k)) : [];
    const staleDays = before ? [...before.days.keys()].filter((k) => !after.days.has(k)) : [];
    const courseChanged = before?.course !== after.course;
    plan.modules.push(...m.map((r) => json(r as Record<string, unknown>, ['flags', 'params'])));
    plan.days.push(...d.map((r) => json(r as Record<string, unknown>, ['modules'])));
    if (courseChanged)
      plan.courses.push(json(rows.course as Record<string, unknown>, ['long_days', 'flags', 'params']));
    if (staleModules.length + staleDays.length > 0)
      plan.stale.push({ learnerId, courseId, modules: staleModules, days: staleDays });
    if (m.length + d.length + staleModules.length + staleDays.length > 0 || courseChanged) plan.changedPairs++;
  }
  return plan;
}

/**
 * Writes a batch in one statement: tabs, runs, evidence, chain heads and totals, each a data-modifying CTE
 * fed by one JSON parameter. Tabs and runs of another learner are never overwritten (the upserts' WHERE);
 * a mismatch in the counts fails the batch.
 */
export async function writeBatch(
  trx: Q,
  input: {
    tabs: readonly TabRecord[];
    runs: readonly RunRecord[];
    events: readonly NewEvent[];
    learners: ReadonlyArray<{ learnerId: string; chainHead: string; chainLength: number; focus: FocusState }>;
    totals: TotalsPlan;
  },
): Promise<void> {
  const tabs = input.tabs.map((t) => ({
    id: t.meta.tabId,
    learner_id: t.meta.learnerId,
    course_id: t.meta.courseId,
    module_id: t.meta.moduleId,
    module_version: t.meta.moduleVersion,
    nominal_minutes: t.meta.nominalMinutes,
    role: t.meta.role,
    profile: t.meta.profile.name,
    params: t.meta.profile,
    user_agent: t.userAgent,
    ip_prefix: t.ipPrefix,
    created_at: new Date(t.createdMs).toISOString(),
    opened_at: isoOrNull(t.state.openedMs),
    closed_at: isoOrNull(t.state.closedMs),
    last_seq: t.state.lastSeq,
    missing_seqs: t.state.missing,
    last_accepted_beat_at: isoOrNull(t.state.lastAcceptedBeatMs),
    current_run_id: t.state.run?.id ?? null,
    rate_window_start: isoOrNull(t.rateWindowStartMs),
    rate_window_items: t.rateWindowItems,
    dropped_items: t.droppedItems,
  }));
  const runs = input.runs.map((r) => ({
    id: r.state.id,
    tab_id: r.tabId,
    learner_id: r.learnerId,
    course_id: r.courseId,
    module_id: r.moduleId,
    started_at: new Date(r.state.startMs).toISOString(),
    last_beat_at: new Date(r.state.lastBeatMs).toISOString(),
    beat_count: r.state.beatCount,
    first_seq: r.state.firstSeq,
    last_seq: r.state.lastSeq,
    rolling_hash: r.state.rollingHash,
    sealed: r.state.sealed,
    ...v2Columns(r.state),
  }));
  const events = input.events.map((e) => ({
    learner_id: e.learnerId,
    chain_index: e.index,
    kind: e.kind,
    course_id: e.courseId,
    module_id: e.moduleId,
    tab_id: e.tabId,
    seq: e.seq,
    server_time: new Date(e.atMs).toISOString(),
    client_time: e.clientTime,
    reason: e.reason,
    data: e.data,
    prev_hash: e.prevHash,
    hash: e.hash,
  }));
  const learners = input.learners.map((l) => ({
    learner_id: l.learnerId,
    chain_head: l.chainHead,
    chain_length: l.chainLength,
    focus_tab_id: l.focus.tabId,
    focus_input_at: isoOrNull(l.focus.inputMs),
    focus_mark_at: isoOrNull(l.focus.lastMarkMs),
  }));
  const j = (v: unknown) => JSON.stringify(v);
  const { rows } = await sql<{ t: number; r: number; e: number; l: number }>`
    with
    t as (
      insert into tracking_tabs (id, learner_id, course_id, module_id, module_version, nominal_minutes, role, profile,
        params, user_agent, ip_prefix, created_at, opened_at, closed_at, last_seq, missing_seqs, last_accepted_beat_at,
        current_run_id, rate_window_start, rate_window_items, dropped_items)
      select * from jsonb_to_recordset(${j(tabs)}::jsonb) as x(id uuid, learner_id uuid, course_id uuid, module_id text,
        module_version integer, nominal_minutes integer, role text, profile text, params jsonb, user_agent text,
        ip_prefix text, created_at timestamptz, opened_at timestamptz, closed_at timestamptz, last_seq integer,
        missing_seqs jsonb, last_accepted_beat_at timestamptz, current_run_id uuid, rate_window_start timestamptz,
        rate_window_items integer, dropped_items integer)
      on conflict (id) do update set opened_at = excluded.opened_at, closed_at = excluded.closed_at,
        last_seq = excluded.last_seq, missing_seqs = excluded.missing_seqs,
        last_accepted_beat_at = excluded.last_accepted_beat_at, current_run_id = excluded.current_run_id,
        rate_window_start = excluded.rate_window_start, rate_window_items = excluded.rate_window_items,
        dropped_items = excluded.dropped_items, updated_at = now()
      where tracking_tabs.learner_id = excluded.learner_id
      returning 1
    ),
    r as (
      insert into tracking_runs (id, tab_id, learner_id, course_id, module_id, started_at, last_beat_at, beat_count,
        first_seq, last_seq, rolling_hash, sealed, stop_cause, stop_at, before_stop_at, min_step_ms, max_step_ms,
        input_beats)
      select * from jsonb_to_recordset(${j(runs)}::jsonb) as x(id uuid, tab_id uuid, learner_id uuid, course_id uuid,
        module_id text, started_at timestamptz, last_beat_at timestamptz, beat_count integer, first_seq integer,
        last_seq integer, rolling_hash text, sealed boolean, stop_cause text, stop_at timestamptz,
        before_stop_at timestamptz, min_step_ms integer, max_step_ms integer, input_beats integer)
      on conflict (id) do update set last_beat_at = excluded.last_beat_at, beat_count = excluded.beat_count,
        last_seq = excluded.last_seq, rolling_hash = excluded.rolling_hash, sealed = excluded.sealed,
        stop_cause = excluded.stop_cause, stop_at = excluded.stop_at, before_stop_at = excluded.before_stop_at,
        min_step_ms = excluded.min_step_ms, max_step_ms = excluded.max_step_ms, input_beats = excluded.input_beats,
        updated_at = now()
      where tracking_runs.learner_id = excluded.learner_id
      returning 1
    ),
    e as (
      insert into tracking_events (learner_id, chain_index, kind, course_id, module_id, tab_id, seq, server_time,
        client_time, reason, data, prev_hash, hash)
      select * from jsonb_to_recordset(${j(events)}::jsonb) as x(learner_id uuid, chain_index bigint, kind text,
        course_id uuid, module_id text, tab_id uuid, seq integer, server_time timestamptz, client_time text,
        reason text, data jsonb, prev_hash text, hash text)
      returning 1
    ),
    l as (
      update tracking_learners set chain_head = x.chain_head, chain_length = x.chain_length,
        focus_tab_id = x.focus_tab_id, focus_input_at = x.focus_input_at, focus_mark_at = x.focus_mark_at,
        updated_at = now()
      from jsonb_to_recordset(${j(learners)}::jsonb) as x(learner_id uuid, chain_head text, chain_length bigint,
        focus_tab_id uuid, focus_input_at timestamptz, focus_mark_at timestamptz)
      where tracking_learners.learner_id = x.learner_id
      returning 1
    ),
    m as (
      insert into time_totals (learner_id, course_id, module_id, nominal_minutes, measured_ms, credited_ms,
        measured_seconds, credited_seconds, cap_seconds, first_at, last_at, rejected_items, flags, algorithm, params)
      select * from jsonb_to_recordset(${j(input.totals.modules)}::jsonb) as x(learner_id uuid, course_id uuid,
        module_id text, nominal_minutes integer, measured_ms bigint, credited_ms bigint, measured_seconds integer,
        credited_seconds integer, cap_seconds integer, first_at timestamptz, last_at timestamptz,
        rejected_items integer, flags jsonb, algorithm text, params jsonb)
      on conflict (learner_id, course_id, module_id) do update set nominal_minutes = excluded.nominal_minutes,
        measured_ms = excluded.measured_ms, credited_ms = excluded.credited_ms,
        measured_seconds = excluded.measured_seconds, credited_seconds = excluded.credited_seconds,
        cap_seconds = excluded.cap_seconds, first_at = excluded.first_at, last_at = excluded.last_at,
        rejected_items = excluded.rejected_items, flags = excluded.flags, algorithm = excluded.algorithm,
        params = excluded.params, updated_at = now()
      returning 1
    ),
    d as (
      insert into time_day_totals (learner_id, course_id, day, measured_ms, modules, long_day)
      select * from jsonb_to_recordset(${j(input.totals.days)}::jsonb) as x(learner_id uuid, course_id uuid, day date,
        measured_ms bigint, modules jsonb, long_day boolean)
      on conflict (learner_id, course_id, day) do update set measured_ms = excluded.measured_ms,
        modules = excluded.modules, long_day = excluded.long_day
      returning 1
    ),
    c as (
      insert into time_course_totals (learner_id, course_id, measured_ms, credited_ms, measured_seconds,
        credited_seconds, rejected_items, long_days, flags, algorithm, params)
      select * from jsonb_to_recordset(${j(input.totals.courses)}::jsonb) as x(learner_id uuid, course_id uuid,
        measured_ms bigint, credited_ms bigint, measured_seconds integer, credited_seconds integer,
        rejected_items integer, long_days jsonb, flags jsonb, algorithm text, params jsonb)
      on conflict (learner_id, course_id) do update set measured_ms = excluded.measured_ms,
        credited_ms = excluded.credited_ms, measured_seconds = excluded.measured_seconds,
        credited_seconds = excluded.credited_seconds, rejected_items = excluded.rejected_items,
        long_days = excluded.long_days, flags = excluded.flags, algorithm = excluded.algorithm,
        params = excluded.params, updated_at = now()
      returning 1
    )
    select (select count(*) from t)::int as t, (select count(*) from r)::int as r, (select count(*) from e)::int as e,
      (select count(*) from l)::int as l, (select count(*) from m)::int as m, (select count(*) from d)::int as d,
      (select count(*) from c)::int as c
  `.execute(trx);
  const counts = rows[0];
  // A tab id taken meanwhile by someone else's page: fail the batch; the retry sees the row and refuses it.
  if (!counts || counts.t !== tabs.length) throw new TabConflictError();
  if (counts.r !== runs.length || counts.e !== events.length || counts.l !== learners.length) {
    throw new Error('tracking batch: rows not written');
  }
  for (const s of input.totals.stale) {
    if (s.modules.length > 0) {
      await trx
        .deleteFrom('time_totals')
        .where('learner_id', '=', s.learnerId)
        .where('course_id', '=', s.courseId)
        .where('module_id', 'in', s.modules)
        .execute();
    }
    if (s.days.length > 0) {
      await trx
        .deleteFrom('time_day_totals')
        .where('learner_id', '=', s.learnerId)
        .where('course_id', '=', s.courseId)
        .where('day', 'in', s.days)
        .execute();
    }
  }
}
