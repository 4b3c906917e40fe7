import type { Generated, JSONColumnType } from 'kysely';

/** Tables of migration 0006_portal. */
export interface PortalTables {
  portal_users: PortalUserTable;
  portal_sessions: PortalSessionTable;
  api_tokens: ApiTokenTable;
  portal_login_failures: PortalLoginFailureTable;
  audit_log: AuditLogTable;
  portal_login_counters: PortalLoginCounterTable;
}

/** Migration 0017: sign-in attempts per key in fixed windows (see rules.ts, sign-in throttling). */
export interface PortalLoginCounterTable {
  key: string;
  window_start: Generated<Date>;
  count: number;
}

export type PortalRole = 'operator' | 'fund_staff';

export interface PortalUserTable {
  id: Generated<string>;
  username: string;
  display_name: string;
  role: PortalRole;
  fund_slug: string | null;
  /** `scrypt$N=…,r=…,p=…$<salt>$<hash>` (see rules.ts). */
  password_hash: string;
  must_change_password: Generated<boolean>;
  disabled_at: Date | null;
  password_changed_at: Generated<Date>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface PortalSessionTable {
  id_hash: string;
  user_id: string;
  created_at: Generated<Date>;
  last_seen_at: Generated<Date>;
  expires_at: Date;
}

export interface ApiTokenTable {
  id: Generated<string>;
  user_id: string;
  name: string;
  token_hash: string;
  prefix: string;
  created_at: Generated<Date>;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface PortalLoginFailureTable {
  id: Generated<string>;
  username: string;
  ip: string;
  created_at: Generated<Date>;
}

export type AuditStatus = 'started' | 'completed' | 'failed' | 'done';
/** `signin`: an attempt at the sign-in form, before anyone is signed in. */
export type AuditVia = 'session' | 'token' | 'cli' | 'signin';

export interface AuditLogTable {
  id: Generated<string>;
  at: Generated<Date>;
  actor_user_id: string | null;
  actor_username: string;
  actor_role: string;
  actor_fund_slug: string | null;
  via: AuditVia;
  token_id: string | null;
  action: string;
  /** jsonb: written as JSON text (`JSON.stringify`), read as an object. */
  details: JSONColumnType<Record<string, unknown>, string | undefined>;
  row_count: number | null;
  expected_rows: number | null;
  status: AuditStatus;
  finished_at: Date | null;
  progress_ticket: string | null;
}
