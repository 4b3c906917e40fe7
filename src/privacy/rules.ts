import { createHash } from 'node:crypto';
import type { RetentionPolicy } from '../config/retention.js';
import type { Db } from '../db/index.js';
import { deviceClass } from '../tracking/index.js';

/**
 * Pure rules of the personal data lifecycle (docs/privacy.md): release dates, pseudonyms, the reduced user
 * agent (the retention policy itself is read with the configuration, src/config/retention.ts). No database here.
 */

export {
  DEFAULT_POLICY,
  POLICY_VARIABLES,
  PolicyError,
  type RetentionPolicy,
  retentionPolicyFromEnv,
} from '../config/retention.js';

/** What the privacy services work with: the database, the secret the signing keys derive from, the policy. */
export interface PrivacyDeps {
  db: Db;
  appSecret: string;
  policy: RetentionPolicy;
}

// ───────────────────────────── dates ─────────────────────────────

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` (UTC) of an instant. */
export function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The same calendar day `years` later (29 February → 28 February). */
export function addYears(day: string, years: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const target = new Date(Date.UTC(y + years, m - 1, d));
  if (target.getUTCMonth() !== m - 1) target.setUTCDate(0);
  return dayOf(target);
}

export function subtractDays(now: Date, days: number): Date {
  return new Date(now.getTime() - days * DAY_MS);
}

/** A release day has passed once the whole day is over (UTC): data is kept through its release day. */
export function isPast(releaseDay: string, now: Date): boolean {
  return dayOf(now) > releaseDay;
}

const maxDay = (a: string, b: string) => (a > b ? a : b);

// ───────────────────────────── what is kept, until when ─────────────────────────────

export interface CourseActivity {
  courseId: string;
  courseTitle: string | null;
  /** The session's end (certificate rule), YYYY-MM-DD, when the course team set one. */
  sessionEnd: string | null;
  /** The learner's last activity in the course (launch, module, time, LMS event). */
  lastActivity: Date | null;
  euCofunded: boolean;
  /** Kinds of data the learner has in this course (evidence, LMS events, progress). */
  hasEvidence: boolean;
}

export interface CertificateHoldInput {
  number: string;
  issuedAt: Date;
  euCofunded: boolean;
}

export interface Hold {
  kind: 'certificate' | 'evidence' | 'onboarding';
  label: string;
  releaseDay: string;
  reason: string;
}

/**
 * Until when each thing a learner left must be kept, and so when the learner can be deleted entirely: the
 * latest release day of all. Evidence is kept `rawYears` after the session's end (its last activity when no
 * end was set); a certificate `certificateYears` after issue; both `euCofundedYears` when the session is EU
 * co-funded. A learner with no profile and nothing else (unfinished onboarding) goes `onboardingDays` after
 * the last launch.
 */
export function learnerHolds(
  input: {
    courses: readonly CourseActivity[];
    certificates: readonly CertificateHoldInput[];
    hasProfile: boolean;
    lastLaunchAt: Date | null;
    createdAt: Date;
  },
  policy: RetentionPolicy,
): { holds: Hold[]; releaseDay: string } {
  const holds: Hold[] = [];
  for (const c of input.courses) {
    // Without a profile and without evidence, a launch alone is an unfinished onboarding (below).
    if (!input.hasProfile && !c.hasEvidence) continue;
    const base = c.sessionEnd ?? (c.lastActivity ? dayOf(c.lastActivity) : null);
    if (!base) continue;
    const years = c.euCofunded ? policy.euCofundedYears : policy.rawYears;
    holds.push({
      kind: 'evidence',
      label: c.courseTitle ?? c.courseId,
      releaseDay: addYears(base, years),
      reason: `preuves de connexion et de suivi : ${years} ans après la fin de la session${c.euCofunded ? ' (cofinancement européen)' : ''}`,
    });
  }
  for (const cert of input.certificates) {
    const years = cert.euCofunded ? policy.euCofundedYears : policy.certificateYears;
    holds.push({
      kind: 'certificate',
      label: cert.number,
      releaseDay: addYears(dayOf(cert.issuedAt), years),
      reason: `certificat de réalisation : ${years} ans après sa délivrance${cert.euCofunded ? ' (cofinancement européen)' : ''}`,
    });
  }
  const last = input.lastLaunchAt ?? input.createdAt;
  if (holds.length === 0) {
    holds.push(
      input.hasProfile
        ? {
            kind: 'onboarding',
            label: 'profil',
            releaseDay: addYears(dayOf(last), policy.rawYears),
            reason: `profil sans activité : ${policy.rawYears} ans après la dernière connexion`,
          }
        : {
            kind: 'onboarding',
            label: 'inscription non terminée',
            releaseDay: dayOf(new Date(last.getTime() + policy.onboardingDays * DAY_MS)),
            reason: `inscription non terminée, sans activité : ${policy.onboardingDays} jours après la dernière connexion`,
          },
    );
  }
  const releaseDay = holds.reduce((d, h) => maxDay(d, h.releaseDay), '0000-01-01');
  return { holds, releaseDay };
}

/**
 * When a course's LMS events may go: `rawYears` (EU: `euCofundedYears`) after the session's end, or after the
 * event itself when the session has no end; never before the last certificate of the course is released.
 */
export function lmsEventsReleaseDay(
  input: { sessionEnd: string | null; lastEventAt: Date; euCofunded: boolean; lastCertificateRelease: string | null },
  policy: RetentionPolicy,
): string {
  const years = input.euCofunded ? policy.euCofundedYears : policy.rawYears;
  const base = addYears(input.sessionEnd ?? dayOf(input.lastEventAt), years);
  return input.lastCertificateRelease ? maxDay(base, input.lastCertificateRelease) : base;
}

// ───────────────────────────── pseudonyms, user agents ─────────────────────────────

/** The stable pseudonym of an erased learner: derived from the learner's random id, nothing else. */
export function pseudonymFor(learnerId: string): string {
  return `efface-${createHash('sha256').update(`privacy-pseudonym:${learnerId}`).digest('hex').slice(0, 10)}`;
}

/** Several LMS usernames of one learner each get their own pseudonym (the mapping table keys on it). */
export function lmsPseudonym(learnerId: string, index: number): string {
  return index === 0 ? pseudonymFor(learnerId) : `${pseudonymFor(learnerId)}-${index + 1}`;
}

const REDUCED_PREFIX = 'device:';

/** A user agent reduced to its device class (`device:mobile`…): what an auditor needs, no fingerprint. */
export function reducedUserAgent(userAgent: string | null): string | null {
  if (userAgent === null) return null;
  if (isReducedUserAgent(userAgent)) return userAgent;
  return `${REDUCED_PREFIX}${deviceClass(userAgent)}`;
}

export function isReducedUserAgent(userAgent: string | null): boolean {
  return userAgent === null || /^device:(mobile|tablet|desktop|unknown)$/.test(userAgent);
}

/**
 * The personal fields of a `tab` evidence record once reduced: the user agent to its device class, and on
 * erasure the truncated IP removed too. Other records carry no personal field. Returns null when nothing
 * changes.
 */
export function reducedTabData(
  data: Record<string, unknown>,
  rule: 'user-agent-30d' | 'erasure',
): Record<string, unknown> | null {
  const ua = typeof data.userAgent === 'string' ? data.userAgent : null;
  const next: Record<string, unknown> = { ...data, userAgent: reducedUserAgent(ua) };
  if (rule === 'erasure') next.ipPrefix = null;
  const changed = next.userAgent !== (data.userAgent ?? null) || (rule === 'erasure' && data.ipPrefix != null);
  return changed ? next : null;
}

/** Evidence keeps a truncated address: an IPv4 /24 (`a.b.c.0/24`) or an IPv6 /48 (`x:y:z::/48`). */
export function isTruncatedIp(prefix: string | null): boolean {
  if (prefix === null) return true;
  return (
    /^\d{1,3}\.\d{1,3}\.\d{1,3}\.0\/24$/.test(prefix) ||
    /^[0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$/.test(prefix)
  );
}

// ───────────────────────────── export text ─────────────────────────────

// Days and durations in French: one implementation for the whole service (src/common/paris-time.ts).
export { formatDayLong as frenchDay, formatDuration as frenchDuration } from '../common/paris-time.js';
