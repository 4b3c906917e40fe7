/**
 * The personal data retention policy (docs/privacy.md), read from the environment with the rest of the
 * configuration (`Config.retention`); the privacy capability applies it.
 */

export interface RetentionPolicy {
  /** Raw connection evidence and LMS events: years after the end of the course session. */
  rawYears: number;
  /** Certificates and the evidence chain behind them: years after issue. */
  certificateYears: number;
  /** Both of the above when the course session is marked EU co-funded. */
  euCofundedYears: number;
  /** Portal audit log (downloads, account events, erasures): days. */
  auditLogDays: number;
  /** Failed portal sign-ins: days. */
  loginFailureDays: number;
  /** A learner who never finished onboarding (no profile) and has no activity: days after the last launch. */
  onboardingDays: number;
  /** Full user agents in evidence, then reduced to a device class: days. */
  userAgentDays: number;
  /** Rows per statement of the purge. */
  batchSize: number;
  /** The contact for data protection requests shown on « Vos données » (e-mail or URL), if configured. */
  contact: string | null;
}

export const DEFAULT_POLICY: Readonly<RetentionPolicy> = Object.freeze({
  rawYears: 6,
  certificateYears: 6,
  euCofundedYears: 10,
  auditLogDays: 365,
  loginFailureDays: 90,
  onboardingDays: 365,
  userAgentDays: 30,
  batchSize: 500,
  contact: null,
});

/** The environment variables, their field and bounds (documented in README.md, « Personal data »). */
export const POLICY_VARIABLES = [
  ['PRIVACY_RAW_YEARS', 'rawYears', 1, 30],
  ['PRIVACY_CERTIFICATE_YEARS', 'certificateYears', 3, 30],
  ['PRIVACY_EU_COFUNDED_YEARS', 'euCofundedYears', 3, 30],
  ['PRIVACY_AUDIT_LOG_DAYS', 'auditLogDays', 30, 3650],
  ['PRIVACY_LOGIN_FAILURE_DAYS', 'loginFailureDays', 1, 3650],
  ['PRIVACY_ONBOARDING_DAYS', 'onboardingDays', 30, 3650],
  ['PRIVACY_USER_AGENT_DAYS', 'userAgentDays', 1, 3650],
  ['PRIVACY_PURGE_BATCH', 'batchSize', 10, 10_000],
] as const;

export class PolicyError extends Error {}

/**
 * Reads the policy from the environment: each variable is a whole number within its bounds, else the start
 * (or the CLI) stops with one line naming it. Certificates are kept at least 3 years (the funds' minimum),
 * and EU co-funding can only lengthen retention.
 */
export function retentionPolicyFromEnv(env: Record<string, string | undefined>): RetentionPolicy {
  const policy: RetentionPolicy = { ...DEFAULT_POLICY };
  for (const [name, field, min, max] of POLICY_VARIABLES) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    if (!/^\d+$/.test(raw.trim())) throw new PolicyError(`${name} must be a whole number (got "${raw}")`);
    const value = Number(raw.trim());
    if (value < min || value > max) throw new PolicyError(`${name} must be between ${min} and ${max} (got ${value})`);
    policy[field] = value;
  }
  if (policy.euCofundedYears < Math.max(policy.rawYears, policy.certificateYears)) {
    throw new PolicyError(
      `PRIVACY_EU_COFUNDED_YEARS (${policy.euCofundedYears}) must not be shorter than PRIVACY_RAW_YEARS or PRIVACY_CERTIFICATE_YEARS`,
    );
  }
  const contact = env.PRIVACY_CONTACT?.trim();
  if (contact) {
    if (
      contact.length > 200 ||
      !(/^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/.test(contact) || /^https:\/\/\S+$/.test(contact))
    ) {
      throw new PolicyError('PRIVACY_CONTACT must be an e-mail address or an https:// URL');
    }
    policy.contact = contact;
  }
  return Object.freeze(policy);
}
