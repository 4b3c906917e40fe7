import type { Generated, JSONColumnType } from 'kysely';

/** Tables of migration 0005_certificates. */
export interface CertificatesTables {
  certificate_signing_keys: CertificateSigningKeyTable;
  certificate_counters: CertificateCounterTable;
  certificate_rules: CertificateRuleTable;
  certificates: CertificateTable;
}

export interface CertificateSigningKeyTable {
  /** RFC 7638 thumbprint of the public JWK. */
  kid: string;
  alg: 'Ed25519';
  /** jsonb: read as the object, written as its JSON text. */
  public_jwk: JSONColumnType<{ kty: 'OKP'; crv: 'Ed25519'; x: string }>;
  /** PKCS#8 PEM sealed with AES-256-GCM under a key derived from APP_SECRET. */
  private_key_sealed: string;
  status: 'current' | 'retired';
  created_at: Generated<Date>;
  retired_at: Date | null;
}

export interface CertificateCounterTable {
  year: number;
  last_sequence: number;
}

export type ModulesRequiredColumn = 'none' | 'sector' | 'all';

export interface CertificateRuleTable {
  course_id: string;
  modules_required: ModulesRequiredColumn;
  min_credited_minutes: number | null;
  auto_issue: boolean;
  planned_minutes: number;
  /** 'YYYY-MM-DD' (date columns come back as strings from both drivers). */
  session_start: string | null;
  session_end: string | null;
  updated_by: string | null;
  updated_at: Generated<Date>;
}

export type CertificateStateColumn = 'valid' | 'superseded' | 'revoked';
export type IssuanceKindColumn = 'automatic' | 'learner_request' | 'course_team' | 'operator';

export interface CertificateTable {
  id: Generated<string>;
  number: string;
  year: number;
  sequence: number;
  /** The first version's id: every version of one certificate shares it. */
  lineage_id: string;
  version: number;
  supersedes_id: string | null;
  learner_id: string;
  course_id: string;
  fund_slug: string | null;
  /** The canonical JSON text exactly as signed (jsonb would reorder and reformat it). */
  data_canonical: string;
  data_sha256: string;
  /** Ed25519 over the UTF-8 bytes of data_canonical, base64url. */
  signature: string;
  signing_kid: string;
  pdf: Uint8Array;
  pdf_sha256: string;
  pdf_size: number;
  algorithm: string;
  issued_at: Date;
  issuance_kind: IssuanceKindColumn;
  /** Who asked: an LTI learner (course team member, or the learner); null when automatic or from the CLI. */
  issued_by: string | null;
  issue_reason: string | null;
  state: Generated<CertificateStateColumn>;
  superseded_by_id: string | null;
  superseded_at: Date | null;
  revoked_at: Date | null;
  revoked_by: string | null;
  revocation_reason: string | null;
  created_at: Generated<Date>;
}
