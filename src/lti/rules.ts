import type { LaunchRole } from './tables.js';

/**
 * Pure LTI 1.3 rules: no I/O, no clock of their own (callers pass `now`), unit-tested without a database.
 * Spec words: LTI Core 1.3 (https://www.imsglobal.org/spec/lti/v1p3/) and the 1EdTech Security Framework
 * 1.0 (https://www.imsglobal.org/spec/security/v1p0/).
 */

export const LTI_CLAIM = 'https://purl.imsglobal.org/spec/lti/claim/';
export const CLAIMS = {
  messageType: `${LTI_CLAIM}message_type`,
  version: `${LTI_CLAIM}version`,
  deploymentId: `${LTI_CLAIM}deployment_id`,
  targetLinkUri: `${LTI_CLAIM}target_link_uri`,
  roles: `${LTI_CLAIM}roles`,
  resourceLink: `${LTI_CLAIM}resource_link`,
  context: `${LTI_CLAIM}context`,
  custom: `${LTI_CLAIM}custom`,
  launchPresentation: `${LTI_CLAIM}launch_presentation`,
  toolPlatform: `${LTI_CLAIM}tool_platform`,
  ags: 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint',
  nrps: 'https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice',
  deepLinkingSettings: 'https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings',
} as const;

export const MESSAGE_TYPES = ['LtiResourceLinkRequest', 'LtiDeepLinkingRequest'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/**
 * Security Framework §5.1.3 / §6.1: asymmetric signatures only. `none` and every HS* are refused before any
 * key is looked at, which is what defeats the "HS256 signed with the platform's public key" confusion.
 */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
export type AllowedAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];
export function isAllowedAlgorithm(alg: unknown): alg is AllowedAlgorithm {
  return typeof alg === 'string' && (ALLOWED_ALGORITHMS as readonly string[]).includes(alg);
}

/** Security Framework §5.1.3 lets the tool allow some clock skew; this tool allows at most 60 s. */
export const CLOCK_SKEW_SECONDS = 60;
/** Login → launch must complete within this window: it bounds the state JWT and the stored nonce. */
export const LOGIN_TTL_SECONDS = 600;
/** An id_token is a few kilobytes even with many custom parameters; beyond this it is refused unread. */
export const MAX_ID_TOKEN_LENGTH = 32 * 1024;
/** The platform JWKS is refetched on an unknown kid at most this often (a forged kid must not make us a DoS relay). */
export const JWKS_REFETCH_INTERVAL_MS = 60_000;
/** Cached platform keys are trusted this long before the next use refetches them (platforms do rotate). */
export const JWKS_MAX_AGE_MS = 12 * 3600_000;
/** Our session token: short-lived, renewed by the page while it stays open. */
export const SESSION_TTL_SECONDS = 3600;
/** A page cannot keep renewing its session forever: a new launch is needed after this. */
export const SESSION_MAX_RENEW_AGE_SECONDS = 12 * 3600;
/** Retired tool keys stay in our JWKS this long, so messages signed just before a rotation still verify. */
export const RETIRED_KEY_GRACE_MS = 7 * 24 * 3600_000;

// ---------------------------------------------------------------------------------------------------------
// Roles (LTI Core §5.3.7 and Appendix A.2). Open edX sends two vocabularies:
// - v11.1+: `system/person#None`, `institution/person#None` and a context role (`membership#Learner`,
//   `membership#Instructor` + `membership#Administrator` for instructors, `membership#Instructor` for course
//   staff), global staff adds `system/person#Administrator` and institution Administrator/Staff/Faculty/
//   Instructor; community TAs get `membership#Learner` + `membership/Instructor#TeachingAssistant`.
//   The order is random (a Python set).
// - v9: `institution/person#Student` for learners, `institution/person#Instructor` for instructors,
//   `system/person#Administrator` (+ institution Instructor) for staff; no context roles.
// ---------------------------------------------------------------------------------------------------------
const LIS = 'http://purl.imsglobal.org/vocab/lis/v2/';

const STAFF_ROLES = new Set([`${LIS}system/person#Administrator`, `${LIS}system/person#SysAdmin`]);

/** Context roles that make someone part of the course team (full URIs and the deprecated short forms). */
const COURSE_TEAM_CONTEXT_ROLES = new Set([
  `${LIS}membership#Instructor`,
  `${LIS}membership#Administrator`,
  `${LIS}membership#ContentDeveloper`,
  'Instructor',
  'Administrator',
  'ContentDeveloper',
]);

/** Institution roles that only v9 uses to say "instructor" (it sends no context role). */
const COURSE_TEAM_INSTITUTION_ROLES = new Set([
  `${LIS}institution/person#Instructor`,
  `${LIS}institution/person#Faculty`,
]);

/**
 * Maps the raw role URIs of a launch to our three roles. Order-independent. A teaching assistant stays a
 * learner: Open edX gives that role to discussion moderators (Community TA), who are learners of the course.
 */
export function mapRoles(roles: readonly string[]): LaunchRole {
  const set = new Set(roles.map((r) => r.trim()));
  for (const r of set) if (STAFF_ROLES.has(r)) return 'staff';
  for (const r of set) {
    if (COURSE_TEAM_CONTEXT_ROLES.has(r)) return 'course_team';
    // Sub-roles of the course-team roles (e.g. membership/Instructor#Lecturer), except TeachingAssistant.
    const sub =
      /^http:\/\/purl\.imsglobal\.org\/vocab\/lis\/v2\/membership\/(Instructor|Administrator|ContentDeveloper)#(.+)$/.exec(
        r,
      );
    if (sub && sub[2] !== 'TeachingAssistant') return 'course_team';
  }
  const hasContextLearner = set.has(`${LIS}membership#Learner`) || set.has('Learner');
  if (!hasContextLearner) for (const r of set) if (COURSE_TEAM_INSTITUTION_ROLES.has(r)) return 'course_team';
  return 'learner';
}

export const ROLE_LABELS: Record<LaunchRole, string> = {
  learner: 'apprenant',
  course_team: 'équipe du cours',
  staff: 'administration de la plateforme',
};

// ---------------------------------------------------------------------------------------------------------
// Registrations (LTI Core §3.1.3: the tool knows each platform by issuer + client_id + deployment ids).
// ---------------------------------------------------------------------------------------------------------
export interface RegistrationInput {
  name: string;
  issuer: string;
  clientId: string;
  deploymentIds: string[];
  authLoginUrl: string;
  accessTokenUrl: string;
  jwksUrl: string;
}

export class RegistrationError extends Error {
  constructor(
    readonly entry: string,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${entry}: ${field} ${problem}`);
    this.name = 'RegistrationError';
  }
}

const URL_FIELDS = ['issuer', 'authLoginUrl', 'accessTokenUrl', 'jwksUrl'] as const;
const REGISTRATION_FIELDS = ['name', 'issuer', 'clientId', 'deploymentIds', ...URL_FIELDS.slice(1)] as const;

/**
 * Validates one registration. `label` names the entry in messages (e.g. `entry 2 ("FUN")`).
 * `requireHttps` is set in production: a platform reached over plain http could be impersonated.
 */
export function parseRegistration(
  value: unknown,
  label: string,
  options: { requireHttps?: boolean } = {},
): RegistrationInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RegistrationError(label, '(entry)', 'must be an object');
  }
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!(REGISTRATION_FIELDS as readonly string[]).includes(key)) {
      throw new RegistrationError(label, key, `is not a known field (expected ${REGISTRATION_FIELDS.join(', ')})`);
    }
  }
  for (const field of ['name', 'clientId'] as const) {
    const f = v[field];
    if (typeof f !== 'string' || f.trim() === '')
      throw new RegistrationError(label, field, 'must be a non-empty string');
    if (f.length > 255) throw new RegistrationError(label, field, 'must be at most 255 characters');
  }
  for (const field of URL_FIELDS) {
    const f = v[field];
    if (typeof f !== 'string') throw new RegistrationError(label, field, 'must be an absolute http(s) URL');
    let u: URL;
    try {
      u = new URL(f);
    } catch {
      throw new RegistrationError(label, field, `must be an absolute http(s) URL (got "${f}")`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      throw new RegistrationError(label, field, `must be an http(s) URL (got "${f}")`);
    }
    if (options.requireHttps && u.protocol !== 'https:') {
      throw new RegistrationError(label, field, `must use https in production (got "${f}")`);
    }
  }
  const deploymentIds = v.deploymentIds;
  if (
    !Array.isArray(deploymentIds) ||
    deploymentIds.length === 0 ||
    !deploymentIds.every((d) => typeof d === 'string' && d.trim() !== '' && d.length <= 255)
  ) {
    throw new RegistrationError(
      label,
      'deploymentIds',
      'must be a non-empty array of non-empty strings (Open edX: ["1"])',
    );
  }
  return {
    name: (v.name as string).trim(),
    // iss is compared as an exact string (LTI Core §5.1.2): keep it as typed, only trimmed.
    issuer: (v.issuer as string).trim(),
    clientId: (v.clientId as string).trim(),
    deploymentIds: [...new Set(deploymentIds as string[])],
    authLoginUrl: v.authLoginUrl as string,
    accessTokenUrl: v.accessTokenUrl as string,
    jwksUrl: v.jwksUrl as string,
  };
}

/** Validates a whole registrations file (a JSON array); duplicates of (issuer, clientId) are refused. */
export function parseRegistrationsFile(json: unknown, options: { requireHttps?: boolean } = {}): RegistrationInput[] {
  if (!Array.isArray(json)) throw new RegistrationError('file', '(root)', 'must be a JSON array of registrations');
  const seen = new Map<string, string>();
  return json.map((entry, i) => {
    const name =
      typeof entry === 'object' && entry !== null && typeof (entry as { name?: unknown }).name === 'string'
        ? ` ("${(entry as { name: string }).name}")`
        : '';
    const label = `entry ${i + 1}${name}`;
    const reg = parseRegistration(entry, label, options);
    const key = `${reg.issuer}\u0000${reg.clientId}`;
    const previous = seen.get(key);
    if (previous) throw new RegistrationError(label, 'clientId', `repeats ${previous} (same issuer and clientId)`);
    seen.set(key, label);
    return reg;
  });
}

/** The values Studio shows for an Open edX LTI component, derived from the LMS root and the client ID. */
export function openEdxRegistration(
  lmsUrl: string,
  clientId: string,
  name: string,
  ltiStoreSlug?: string,
): RegistrationInput {
  const lms = lmsUrl.replace(/\/+$/, '');
  // A component's own configuration is addressed by its config id (= client ID); a reusable configuration
  // of the openedx-ltistore plugin by "lti_store:<slug>" (docs/course-team.md).
  const configRef = ltiStoreSlug === undefined ? clientId : `lti_store:${ltiStoreSlug}`;
  return {
    name,
    issuer: lms,
    clientId,
    deploymentIds: ['1'],
    authLoginUrl: `${lms}/api/lti_consumer/v1/launch/`,
    accessTokenUrl: `${lms}/api/lti_consumer/v1/token/${configRef}`,
    jwksUrl: `${lms}/api/lti_consumer/v1/public_keysets/${configRef}`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Tool URLs (what a course team pastes into Studio).
// ---------------------------------------------------------------------------------------------------------
export interface ToolUrls {
  launchUrl: string;
  loginUrl: string;
  deepLinkingUrl: string;
  keysetUrl: string;
  redirectUris: string[];
}

export function toolUrls(publicUrl: string): ToolUrls {
  const base = publicUrl.replace(/\/+$/, '');
  const launchUrl = `${base}/lti/launch`;
  const deepLinkingUrl = `${base}/lti/deep-linking`;
  return {
    launchUrl,
    loginUrl: `${base}/lti/login`,
    deepLinkingUrl,
    keysetUrl: `${base}/.well-known/jwks.json`,
    redirectUris: [launchUrl, deepLinkingUrl],
  };
}

/**
 * LTI Core §4.1 / §5.1.1: target_link_uri must point to this tool. Same origin as PUBLIC_URL and under its
 * path; for a deep-linked item it may be any of our pages, not only the launch URL.
 */
export function pointsToTool(targetLinkUri: string, publicUrl: string): boolean {
  let target: URL;
  try {
    target = new URL(targetLinkUri);
  } catch {
    return false;
  }
  const base = parsedPublicUrl(publicUrl);
  if (!base || target.origin !== base.origin || target.username || target.password) return false;
  return base.path === '' || target.pathname === base.path || target.pathname.startsWith(`${base.path}/`);
}

/** PUBLIC_URL's origin and path (without trailing slash), parsed once per value: it is read at every login and launch. */
const publicUrls = new Map<string, { origin: string; path: string } | null>();
function parsedPublicUrl(publicUrl: string): { origin: string; path: string } | null {
  let parsed = publicUrls.get(publicUrl);
  if (parsed === undefined) {
    try {
      const url = new URL(publicUrl);
      parsed = { origin: url.origin, path: url.pathname.replace(/\/+$/, '') };
    } catch {
      parsed = null;
    }
    if (publicUrls.size >= 16) publicUrls.clear();
    publicUrls.set(publicUrl, parsed);
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------------------
// Time checks (Security Framework §5.1.3 items 7 and 8).
// ---------------------------------------------------------------------------------------------------------
export type TimeCheck = { ok: true } | { ok: false; reason: string };

export function checkExp(exp: unknown, nowSeconds: number, skew = CLOCK_SKEW_SECONDS): TimeCheck {
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return { ok: false, reason: 'exp is missing or not a number' };
  if (exp + skew < nowSeconds) return { ok: false, reason: `expired ${Math.round(nowSeconds - exp)} s ago` };
  return { ok: true };
}

export function checkIat(iat: unknown, nowSeconds: number, skew = CLOCK_SKEW_SECONDS): TimeCheck {
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return { ok: false, reason: 'iat is missing or not a number' };
  if (iat - skew > nowSeconds) return { ok: false, reason: `issued ${Math.round(iat - nowSeconds)} s in the future` };
  return { ok: true };
}

/**
 * OIDC Core §2 / Security Framework §5.1.3 items 3–4: aud (a string or an array) must contain our client_id;
 * with several audiences azp is required and must be our client_id; when present it must be ours anyway.
 */
export function checkAudience(
  aud: unknown,
  azp: unknown,
  clientId: string,
): { ok: true } | { ok: false; check: 'aud' | 'azp'; reason: string } {
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : null;
  if (!audiences || audiences.length === 0 || !audiences.every((a) => typeof a === 'string')) {
    return { ok: false, check: 'aud', reason: 'aud is missing or not a string / array of strings' };
  }
  if (!audiences.includes(clientId)) return { ok: false, check: 'aud', reason: 'aud does not contain our client_id' };
  if (azp !== undefined && azp !== clientId) return { ok: false, check: 'azp', reason: 'azp is not our client_id' };
  if (audiences.length > 1 && azp === undefined) {
    return { ok: false, check: 'azp', reason: 'azp is required when aud has several values' };
  }
  return { ok: true };
}

/** Custom claim (LTI Core §5.4.1): a map of strings; other scalar values are kept as their JSON text. */
export function normaliseCustom(custom: unknown): Record<string, string> | null {
  if (custom === undefined || custom === null) return {};
  if (typeof custom !== 'object' || Array.isArray(custom)) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(custom)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else if (v !== null && v !== undefined) out[k] = JSON.stringify(v);
  }
  return out;
}

/** A key is in our JWKS while current, and for the grace period after it was retired. */
export function isKeyPublished(key: { status: string; retiredAt: Date | null }, now: Date): boolean {
  if (key.status === 'current') return true;
  return key.retiredAt !== null && now.getTime() - key.retiredAt.getTime() < RETIRED_KEY_GRACE_MS;
}

/** Should the platform JWKS be fetched now? `kidKnown`: the cached set has the token's kid. */
export function jwksFetchDecision(
  cache: { fetchedAt: number; lastAttemptAt: number } | undefined,
  kidKnown: boolean,
  now: number,
): 'use_cache' | 'fetch' | 'refuse' {
  if (!cache) return 'fetch';
  const stale = now - cache.fetchedAt > JWKS_MAX_AGE_MS;
  if (kidKnown && !stale) return 'use_cache';
  // Unknown kid (or stale keys): refetch, but at most once per interval whatever tokens arrive.
  if (now - cache.lastAttemptAt >= JWKS_REFETCH_INTERVAL_MS) return 'fetch';
  return kidKnown ? 'use_cache' : 'refuse';
}
