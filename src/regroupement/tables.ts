import type { Generated } from 'kysely';

/** Tables of migration 0020_regroupement. */
export interface RegroupementTables {
  regroupement_sessions: RegroupementSessionTable;
  regroupement_registrations: RegroupementRegistrationTable;
  regroupement_audit: RegroupementAuditTable;
}

export type SessionMode = 'online' | 'onsite';
export type AttendanceSource = 'list' | 'code';

export interface RegroupementSessionTable {
  id: Generated<string>;
  course_id: string;
  fund_slug: string;
  starts_at: Date;
  duration_minutes: number;
  mode: SessionMode;
  /** The online link (https) or the address of the fund's premises. */
  location: string;
  capacity: number;
  /** The short code given out during the session (upper-case letters and digits, no look-alikes). */
  attendance_code: string;
  created_by: string;
  created_at: Generated<Date>;
  cancelled_at: Date | null;
}

export interface RegroupementRegistrationTable {
  session_id: string;
  learner_id: string;
  registered_at: Generated<Date>;
  /** null until attendance is recorded. */
  attended_minutes: number | null;
  attendance_source: AttendanceSource | null;
  attendance_recorded_at: Date | null;
}

export interface RegroupementAuditTable {
  id: Generated<string>;
  at: Generated<Date>;
  session_id: string;
  actor_learner_id: string;
  actor_role: string;
  action: string;
  details: unknown;
}
