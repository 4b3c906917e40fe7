import type { ColumnType, Generated } from 'kysely';

/** jsonb: read as parsed JSON, written as a JSON string (pg would turn a JS array into a SQL array). */
type Jsonb<T> = ColumnType<T, string, string>;

/** Tables of migration 0018_privacy (docs/privacy.md). */
export interface PrivacyTables {
  privacy_course_sessions: PrivacyCourseSessionTable;
  privacy_erasures: PrivacyErasureTable;
  tracking_event_redactions: TrackingEventRedactionTable;
  privacy_purged_chains: PrivacyPurgedChainTable;
  privacy_digest_reseals: PrivacyDigestResealTable;
  privacy_purge_runs: PrivacyPurgeRunTable;
}

export interface PrivacyCourseSessionTable {
  course_id: string;
  eu_cofunded: boolean;
  updated_at: Generated<Date>;
}

export interface ErasureHold {
  /** What is kept: 'certificate', 'evidence', 'lms_events', 'profile'. */
  kind: string;
  /** A certificate number, a course title… */
  label: string;
  /** YYYY-MM-DD: purged by the daily purge after this day. */
  releaseDay: string;
  reason: string;
}

export interface PrivacyErasureTable {
  learner_id: string;
  pseudonym: string;
  erased_at: Generated<Date>;
  holds: Jsonb<ErasureHold[]>;
}

export interface TrackingEventRedactionTable {
  learner_id: string;
  chain_index: number;
  rule: string;
  redacted_at: Date;
  kid: string;
  signature: string;
}

export interface PrivacyPurgedChainTable {
  learner_id: string;
  chain_length: number;
  chain_head: string;
  purged_at: Date;
  statement: string;
  kid: string;
  signature: string;
}

export interface PrivacyDigestResealTable {
  id: Generated<string>;
  day: string;
  resealed_at: Date;
  statement: string;
  kid: string;
  signature: string;
}

export interface PrivacyPurgeRunTable {
  id: Generated<string>;
  started_at: Date;
  finished_at: Date | null;
  mode: 'dry-run' | 'apply';
  trigger: 'cli' | 'scheduled';
  report: Jsonb<unknown> | null;
}
