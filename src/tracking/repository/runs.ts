import { type Selectable, sql } from 'kysely';
import type { RunRecord, TabRecord } from '../engine.js';
import { NO_STOP, PROFILES, type RunProfile, type RunState, type StopCause } from '../rules.js';
import type { TrackingTabTable } from '../tables.js';
import { date, isoOrNull, ms, type Q, toMs, toMsOrNull } from './shared.js';

/** `tracking_tabs` and `tracking_runs` (migrations 0004 and 0013): the tabs seen and their runs of beats. */

function runState(r: {
  id: string;
  started_at: Date;
  last_beat_at: Date;
  beat_count: number;
  first_seq: number;
  last_seq: number;
  rolling_hash: string;
  sealed: boolean;
  stop_cause: string | null;
  stop_at: Date | null;
  before_stop_at: Date | null;
  min_step_ms: number | null;
  max_step_ms: number | null;
  input_beats: number;
}): RunState {
  return {
    id: r.id,
    startMs: r.started_at.getTime(),
    lastBeatMs: r.last_beat_at.getTime(),
    beatCount: r.beat_count,
    firstSeq: r.first_seq,
    lastSeq: r.last_seq,
    rollingHash: r.rolling_hash,
    sealed: r.sealed,
    stopCause: r.stop_cause as StopCause | null,
    stopAtMs: ms(r.stop_at),
    beforeStopMs: ms(r.before_stop_at),
    minStepMs: r.min_step_ms,
    maxStepMs: r.max_step_ms,
    inputBeats: r.input_beats,
  };
}

/** The beats-v2 columns of a run row, as written (JSON for jsonb_to_recordset, or Kysely values). */
export function v2Columns(st: RunState) {
  return {
    stop_cause: st.stopCause,
    stop_at: isoOrNull(st.stopAtMs),
    before_stop_at: isoOrNull(st.beforeStopMs),
    min_step_ms: st.minStepMs,
    max_step_ms: st.maxStepMs,
    input_beats: st.inputBeats,
  };
}

/** The beats-v2 fields of a run interval, from a run row. */
export function v2Interval(r: { stop_cause: string | null; stop_at: Date | null; before_stop_at: Date | null }) {
  return {
    stopCause: r.stop_cause as StopCause | null,
    stopAtMs: ms(r.stop_at),
    beforeStopMs: ms(r.before_stop_at),
  };
}

/** The learners' unsealed runs and every run that ended after `sinceMs` (see RECENT_WINDOW_MS). */
export async function loadLiveRuns(
  trx: Q,
  learnerIds: readonly string[],
  sinceMs: number,
): Promise<Map<string, RunRecord>> {
  const out = new Map<string, RunRecord>();
  if (learnerIds.length === 0) return out;
  const rows = await trx
    .selectFrom('tracking_runs')
    .selectAll()
    .where('learner_id', 'in', [...learnerIds])
    .where((eb) => eb.or([eb('sealed', '=', false), eb('last_beat_at', '>', new Date(sinceMs))]))
    .execute();
  for (const r of rows) {
    out.set(r.id, {
      tabId: r.tab_id,
      learnerId: r.learner_id,
      courseId: r.course_id,
      moduleId: r.module_id,
      state: runState(r),
      isNew: false,
      changed: false,
    });
  }
  return out;
}

export function profileOf(name: string): RunProfile {
  const p = PROFILES[name as RunProfile['name']];
  if (!p) throw new Error(`unknown run profile ${name}`);
  return p;
}

/**
 * Tab rows by id, whoever they belong to (the caller checks ownership). A tab's current run is the loaded
 * run record when it is live; otherwise it is sealed and only its id matters.
 */
export async function loadTabs(
  trx: Q,
  tabIds: readonly string[],
  runs: ReadonlyMap<string, RunRecord>,
): Promise<Map<string, TabRecord>> {
  const out = new Map<string, TabRecord>();
  if (tabIds.length === 0) return out;
  const rows = await trx
    .selectFrom('tracking_tabs')
    .selectAll()
    .where('id', 'in', [...new Set(tabIds)])
    .execute();
  for (const t of rows) out.set(t.id, tabRecord(t, runs));
  return out;
}

export class TabConflictError extends Error {
  readonly retryable = true;
  constructor() {
    super('a tab id of this batch belongs to another learner');
  }
}

export async function saveRuns(trx: Q, runs: ReadonlyArray<RunRecord>): Promise<void> {
  if (runs.length === 0) return;
  const rows = runs.map((r) => ({
    id: r.state.id,
    tab_id: r.tabId,
    learner_id: r.learnerId,
    course_id: r.courseId,
    module_id: r.moduleId,
    started_at: new Date(r.state.startMs),
    last_beat_at: new Date(r.state.lastBeatMs),
    beat_count: r.state.beatCount,
    first_seq: r.state.firstSeq,
    last_seq: r.state.lastSeq,
    rolling_hash: r.state.rollingHash,
    sealed: r.state.sealed,
    ...v2Columns(r.state),
    stop_at: date(r.state.stopAtMs),
    before_stop_at: date(r.state.beforeStopMs),
  }));
  const written = await trx
    .insertInto('tracking_runs')
    .values(rows)
    .onConflict((oc) =>
      oc
        .column('id')
        .doUpdateSet((eb) => ({
          last_beat_at: eb.ref('excluded.last_beat_at'),
          beat_count: eb.ref('excluded.beat_count'),
          last_seq: eb.ref('excluded.last_seq'),
          rolling_hash: eb.ref('excluded.rolling_hash'),
          sealed: eb.ref('excluded.sealed'),
          stop_cause: eb.ref('excluded.stop_cause'),
          stop_at: eb.ref('excluded.stop_at'),
          before_stop_at: eb.ref('excluded.before_stop_at'),
          min_step_ms: eb.ref('excluded.min_step_ms'),
          max_step_ms: eb.ref('excluded.max_step_ms'),
          input_beats: eb.ref('excluded.input_beats'),
          updated_at: sql`now()`,
        }))
        .where('tracking_runs.learner_id', '=', (eb) => eb.ref('excluded.learner_id')),
    )
    .returning('id')
    .execute();
  if (written.length !== rows.length) throw new Error('run rows not written');
}

/** A timestamp column as Kysely reads it (Date) or as the batch statement's JSON gives it (string). */
type DateOrString<T> = T extends Date ? Date | string : T;

/** A tab row (tracking_tabs as the engine needs it), as Kysely reads it or as the batch statement's JSON gives it. */
export type TabRow = {
  [K in Exclude<keyof Selectable<TrackingTabTable>, 'params' | 'updated_at'>]: DateOrString<
    Selectable<TrackingTabTable>[K]
  >;
};

/**
 * A tab's record for the engine. Its current run is the loaded run record when it is live; otherwise it is
 * sealed and only its id matters.
 */
export function tabRecord(t: TabRow, runs: ReadonlyMap<string, RunRecord>): TabRecord {
  let run: RunState | null = null;
  if (t.current_run_id) {
    run = runs.get(t.current_run_id)?.state ?? {
      id: t.current_run_id,
      startMs: 0,
      lastBeatMs: 0,
      beatCount: 0,
      firstSeq: 0,
      lastSeq: 0,
      rollingHash: '',
      sealed: true,
      ...NO_STOP,
    };
  }
  return {
    meta: {
      tabId: t.id,
      learnerId: t.learner_id,
      courseId: t.course_id,
      moduleId: t.module_id,
      moduleVersion: t.module_version,
      nominalMinutes: t.nominal_minutes,
      profile: profileOf(t.profile),
      role: t.role,
    },
    state: {
      openedMs: toMsOrNull(t.opened_at),
      closedMs: toMsOrNull(t.closed_at),
      lastSeq: t.last_seq,
      missing: t.missing_seqs,
      lastAcceptedBeatMs: toMsOrNull(t.last_accepted_beat_at),
      run,
    },
    createdMs: toMs(t.created_at),
    userAgent: t.user_agent,
    ipPrefix: t.ip_prefix,
    rateWindowStartMs: toMsOrNull(t.rate_window_start),
    rateWindowItems: t.rate_window_items,
    droppedItems: t.dropped_items,
    isNew: false,
    changed: false,
  };
}
