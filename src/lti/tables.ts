import type { Generated, JSONColumnType } from 'kysely';

/** Tables of migration 0002_lti_identity. Other capabilities reference learners/courses/resource_links. */
export interface LtiTables {
  lti_registrations: LtiRegistrationTable;
  lti_tool_keys: LtiToolKeyTable;
  lti_nonces: LtiNonceTable;
  learners: LearnerTable;
  courses: CourseTable;
  resource_links: ResourceLinkTable;
  lti_launches: LtiLaunchTable;
  lti_view_tickets: LtiViewTicketTable;
}

/** Migration 0017: single-use view tickets (see tickets.ts). */
export interface LtiViewTicketTable {
  id_hash: string;
  path: string;
  claims: JSONColumnType<Record<string, unknown>>;
  expires_at: Date;
  used_at: Date | null;
}

export interface LtiRegistrationTable {
  id: Generated<string>;
  name: string;
  issuer: string;
  client_id: string;
  /** jsonb: read as an array, written as its JSON text. */
  deployment_ids: JSONColumnType<string[]>;
  auth_login_url: string;
  access_token_url: string;
  jwks_url: string;
  source: Generated<string>;
  /** Set by `platforms remove` or when the entry left the registrations file; launches are then refused. */
  removed_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface LtiToolKeyTable {
  kid: string;
  alg: string;
  public_jwk: JSONColumnType<Record<string, unknown>>;
  private_key_sealed: string;
  status: 'current' | 'retired';
  created_at: Generated<Date>;
  retired_at: Date | null;
}

export interface LtiNonceTable {
  nonce: string;
  registration_id: string;
  expires_at: Date;
  consumed_at: Date | null;
}

export interface LearnerTable {
  id: Generated<string>;
  issuer: string;
  sub: string;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  email: string | null;
  username: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface CourseTable {
  id: Generated<string>;
  issuer: string;
  context_id: string;
  label: string | null;
  title: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ResourceLinkTable {
  id: Generated<string>;
  course_id: string;
  registration_id: string;
  resource_link_id: string;
  title: string | null;
  custom: Generated<Record<string, string>>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export type LaunchRole = 'learner' | 'course_team' | 'staff';

export interface LtiLaunchTable {
  id: Generated<string>;
  registration_id: string;
  learner_id: string;
  course_id: string | null;
  resource_link_id: string | null;
  message_type: string;
  role: LaunchRole;
  roles: string[];
  deployment_id: string;
  target_link_uri: string;
  custom: Generated<Record<string, string>>;
  ags: Record<string, unknown> | null;
  nrps: Record<string, unknown> | null;
  deep_linking: Record<string, unknown> | null;
  created_at: Generated<Date>;
}
