import type { Generated, JSONColumnType } from 'kysely';

/**
 * Tables of migrations 0004_tracking, 0008_tracking_inbox, 0011_tracking_journal, 0012_…_quarantine and
 * 0013_tracking_beats_v2. jsonb columns are `JSONColumnType`: read as parsed JSON, written as a JSON string
 * (pg would turn a JS array into a SQL array).
 */
export interface TrackingTables {
  tracking_journal: TrackingJournalTable;
  tracking_journal_quarantine: TrackingJournalQuarantineTable;
  tracking_inbox: TrackingInboxTable;
  tracking_learners: TrackingLearnerTable;
  tracking_tabs: TrackingTabTable;
  tracking_runs: TrackingRunTable;
  tracking_events: TrackingEventTable;
  tracking_digests: TrackingDigestTable;
  time_totals: TimeTotalTable;
  time_course_totals: TimeCourseTotalTable;
  time_day_totals: TimeDayTotalTable;
}

export interface TrackingLearnerTable {
  learner_id: string;
  chain_length: Generated<number>;
  chain_head: Generated<string>;
  focus_tab_id: string | null;
  focus_input_at: Date | null;
  focus_mark_at: Date | null;
  updated_at: Generated<Date>;
  /** Inbox rows of this learner were credited up to this instant (0008). */
  credited_until: Date | null;
  /** Inbox rows credited late (received before `credited_until`): expected never. */
  late_items: Generated<number>;
}

/** One acknowledged batch of requests, waiting to be unpacked into the inbox (0011_tracking_journal). */
export interface TrackingJournalTable {
  id: Generated<string>;
  received_at: Generated<Date>;
  item_count: number;
  /** JSON text of `JournalRequest[]` (src/tracking/inbox/journal.ts). */
  body: string;
}

/** A journal row that could not be unpacked, set aside whole (0012_tracking_journal_quarantine). */
export interface TrackingJournalQuarantineTable {
  id: Generated<string>;
  journal_id: string;
  received_at: Date;
  item_count: number;
  body: string;
  /** SQLSTATE, message and detail of the failed unpacking. */
  error: string;
  quarantined_at: Generated<Date>;
}

/** One received item waiting to be credited (0008_tracking_inbox). */
export interface TrackingInboxTable {
  id: Generated<string>;
  learner_id: string;
  course_id: string;
  tab_id: string;
  seq: number;
  kind: string;
  module_id: string;
  module_version: number | null;
  nominal_minutes: number;
  role: string;
  profile: string;
  token_expired: boolean;
  not_learner: boolean;
  client_time: string | null;
  input_ago_ms: number | null;
  media: boolean | null;
  cause: string | null;
  ip_prefix: string | null;
  user_agent: string | null;
  received_at: Generated<Date>;
}

export interface TrackingTabTable {
  id: string;
  learner_id: string;
  course_id: string;
  module_id: string;
  module_version: number | null;
  nominal_minutes: number;
  role: string;
  profile: string;
  params: JSONColumnType<Record<string, unknown>>;
  user_agent: string | null;
  ip_prefix: string | null;
  created_at: Date;
  opened_at: Date | null;
  closed_at: Date | null;
  last_seq: number | null;
  missing_seqs: JSONColumnType<Array<[number, number]>>;
  last_accepted_beat_at: Date | null;
  current_run_id: string | null;
  rate_window_start: Date | null;
  rate_window_items: number;
  dropped_items: number;
  updated_at: Generated<Date>;
}

export interface TrackingRunTable {
  id: string;
  tab_id: string;
  learner_id: string;
  course_id: string;
  module_id: string;
  started_at: Date;
  last_beat_at: Date;
  beat_count: number;
  first_seq: number;
  last_seq: number;
  rolling_hash: string;
  sealed: boolean;
  /** beats-v2 (0013): the stop beat that ended the run, its receive time, the run's end before it. */
  stop_cause: string | null;
  stop_at: Date | null;
  before_stop_at: Date | null;
  /** Plausibility counters (0013): steps between periodic beats, beats reporting an input. */
  min_step_ms: number | null;
  max_step_ms: number | null;
  input_beats: Generated<number>;
  updated_at: Generated<Date>;
}

export interface TrackingEventTable {
  id: Generated<string>;
  learner_id: string;
  chain_index: number;
  kind: string;
  course_id: string | null;
  module_id: string | null;
  tab_id: string | null;
  seq: number | null;
  server_time: Date;
  client_time: string | null;
  reason: string | null;
  data: JSONColumnType<Record<string, unknown> | null>;
  prev_hash: string;
  hash: string;
}

export interface TrackingDigestTable {
  day: string;
  digest: string;
  learner_count: number;
  event_count: number;
  heads: JSONColumnType<Array<[string, number, string]>>;
  computed_at: Generated<Date>;
}

export interface TimeTotalTable {
  learner_id: string;
  course_id: string;
  module_id: string;
  nominal_minutes: number;
  measured_ms: number;
  credited_ms: number;
  measured_seconds: number;
  credited_seconds: number;
  cap_seconds: number;
  first_at: Date | null;
  last_at: Date | null;
  rejected_items: number;
  flags: JSONColumnType<string[]>;
  algorithm: string;
  params: JSONColumnType<Record<string, unknown>>;
  updated_at: Generated<Date>;
}

export interface TimeCourseTotalTable {
  learner_id: string;
  course_id: string;
  measured_ms: number;
  credited_ms: number;
  measured_seconds: number;
  credited_seconds: number;
  rejected_items: number;
  long_days: JSONColumnType<string[]>;
  flags: JSONColumnType<string[]>;
  algorithm: string;
  params: JSONColumnType<Record<string, unknown>>;
  updated_at: Generated<Date>;
}

export interface TimeDayTotalTable {
  learner_id: string;
  course_id: string;
  day: string;
  measured_ms: number;
  modules: JSONColumnType<Record<string, number>>;
  long_day: boolean;
}
