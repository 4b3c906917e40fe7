import type { ColumnType, Generated } from 'kysely';

/** Tables of migrations 0009_lms_time and 0015_lms_lrs. */
export interface LmsTables {
  lms_imports: LmsImportTable;
  lms_events: LmsEventTable;
  lms_user_mappings: LmsUserMappingTable;
  lms_time_totals: LmsTimeTotalTable;
  lms_lrs_credentials: LmsLrsCredentialTable;
}

/** jsonb: read as parsed JSON, written as a JSON string (pg would turn a JS array into a SQL array). */
type Jsonb<T> = ColumnType<T, string, string>;

export type LmsSource = 'tracking-log' | 'xapi';

export interface LmsImportTable {
  id: Generated<string>;
  file_name: string;
  format: LmsSource | 'auto';
  issuer: string | null;
  lines: Generated<number>;
  inserted: Generated<number>;
  duplicates: Generated<number>;
  malformed: Generated<number>;
  skipped: Generated<number>;
  started_at: Generated<Date>;
  finished_at: Date | null;
  /** The LRS credential a pushed batch came through (null for a file). */
  credential_id: string | null;
  /** Course key → events left out (courses this tool does not serve). */
  other_courses: ColumnType<Record<string, number>, string | undefined, string>;
}

/** Append-only (a trigger refuses UPDATE and DELETE). */
export interface LmsEventTable {
  hash: string;
  source: LmsSource;
  issuer: string | null;
  lms_username: string;
  lms_user_id: string | null;
  course_context_id: string;
  occurred_at: Date;
  event_type: string;
  event_source: string | null;
  session_id: string | null;
  import_id: string;
  imported_at: Generated<Date>;
}

export interface LmsUserMappingTable {
  lms_username: string;
  learner_id: string;
  source: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface LmsTimeTotalTable {
  learner_id: string;
  course_id: string;
  lms_usernames: Jsonb<string[]>;
  event_count: number;
  session_count: number;
  session_ms: number;
  overlap_ms: number;
  estimated_ms: number;
  estimated_seconds: number;
  first_at: Date;
  last_at: Date;
  algorithm: string;
  params: Jsonb<Record<string, unknown>>;
  computed_at: Generated<Date>;
}

export interface LmsLrsCredentialTable {
  id: Generated<string>;
  /** The Basic auth user name. */
  key: string;
  /** `scrypt$N$r$p$salt$hash`, base64url: the secret itself is never stored. */
  secret_hash: string;
  /** The LMS whose statements this credential carries. */
  issuer: string;
  label: string | null;
  created_at: Generated<Date>;
  revoked_at: Date | null;
}
