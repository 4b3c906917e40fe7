import type { Generated, JSONColumnType } from 'kysely';

/** Tables of migration 0007_lti_services (lti_score_outbox extended by 0016_score_outbox_holds). */
export interface LtiServicesTables {
  lti_score_outbox: ScoreOutboxTable;
  lti_score_clocks: ScoreClockTable;
  lti_membership_syncs: MembershipSyncTable;
  lti_memberships: MembershipTable;
  lti_service_leases: ServiceLeaseTable;
}

export type OutboxStatus = 'pending' | 'sent' | 'failed' | 'superseded';

export interface ScoreOutboxTable {
  id: Generated<string>;
  seq: Generated<number>;
  registration_id: string;
  learner_id: string;
  course_id: string | null;
  resource_link_id: string | null;
  launch_id: string | null;
  module_id: string | null;
  lineitem_url: string;
  user_id: string;
  score_given: number;
  score_maximum: number;
  activity_progress: string;
  grading_progress: string;
  occurred_at: Date;
  score_timestamp: Date | null;
  status: Generated<OutboxStatus>;
  attempts: Generated<number>;
  next_attempt_at: Generated<Date>;
  locked_by: string | null;
  locked_until: Date | null;
  last_error: string | null;
  last_http_status: number | null;
  idempotency_key: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  sent_at: Date | null;
  /** Set while the score waits for an operator (registration unknown or removed): not claimed meanwhile. */
  held_reason: string | null;
  /** The last attempt could not reach the platform: released early once a probe of it succeeds. */
  waiting_for_platform: Generated<boolean>;
  /** Start of the current retry window (queued, or the operator's last retry or re-target). */
  retrying_since: Generated<Date>;
}

export interface ScoreClockTable {
  lineitem_url: string;
  user_id: string;
  last_timestamp: Date;
}

export interface MembershipSyncTable {
  course_id: string;
  registration_id: string;
  context_memberships_url: string;
  last_started_at: Date | null;
  last_synced_at: Date | null;
  last_error: string | null;
  member_count: number | null;
  page_count: number | null;
  updated_at: Generated<Date>;
}

export interface MembershipTable {
  id: Generated<string>;
  course_id: string;
  user_id: string;
  status: string;
  /** jsonb: written as JSON text (`JSON.stringify`), read as an array. */
  roles: JSONColumnType<string[]>;
  is_learner: boolean;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  email: string | null;
  first_seen_at: Generated<Date>;
  last_seen_at: Generated<Date>;
  removed_at: Date | null;
}

export interface ServiceLeaseTable {
  name: string;
  holder: string;
  expires_at: Date;
}
