import type { ColumnType, Generated } from 'kysely';

/** Tables of migration 0009_lms_time. */
export interface LmsTables {
  lms_imports: LmsImportTable;
  lms_events: LmsEventTable;
  lms_user_mappings: LmsUserMappingTable;
  lms_time_totals: LmsTimeTotalTable;
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
