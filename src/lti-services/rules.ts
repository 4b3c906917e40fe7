/**
 * Pure rules of the LTI Advantage services: no I/O, no clock, no randomness of their own (callers pass
 * `now` and `random`), so that they are unit-tested without a database or a platform.
 */

/** LTI AGS 2.0 §3.1 (scopes) and LTI NRPS 2.0 §2.2. */
export const SCOPES = {
  lineitem: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  lineitemReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  resultReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  score: 'https://purl.imsglobal.org/spec/lti-ags/scope/score',
  contextMembershipReadonly: 'https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly',
} as const;

export const MEDIA_TYPES = {
  /** LTI AGS 2.0 §3.4 (score publish service). */
  score: 'application/vnd.ims.lis.v1.score+json',
  /** LTI NRPS 2.0 §2.2. */
  membershipContainer: 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json',
} as const;

/** RFC 7523 §2.2, as required by the IMS Security Framework §4.1.1. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// ─── Access tokens (IMS Security Framework §4.1) ────────────────────────────────────────────────────

export const CLIENT_ASSERTION_LIFETIME_SECONDS = 300;
/** A cached token is dropped this long before the platform says it expires (clock skew, request time). */
export const TOKEN_REFRESH_MARGIN_SECONDS = 60;

export interface ClientAssertionClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
}

/** IMS Security Framework §4.1.1: iss = sub = client_id, aud = the token endpoint, short-lived, unique jti. */
export function clientAssertionClaims(input: {
  clientId: string;
  tokenUrl: string;
  nowSeconds: number;
  jti: string;
  lifetimeSeconds?: number;
}): ClientAssertionClaims {
  const iat = Math.floor(input.nowSeconds);
  return {
    iss: input.clientId,
    sub: input.clientId,
    aud: input.tokenUrl,
    iat,
    exp: iat + (input.lifetimeSeconds ?? CLIENT_ASSERTION_LIFETIME_SECONDS),
    jti: input.jti,
  };
}

/** Scopes are a set: order and duplicates do not make another token. */
export function normaliseScopes(scopes: readonly string[]): string[] {
  return [...new Set(scopes.map((s) => s.trim()).filter((s) => s !== ''))].sort();
}

export function tokenCacheKey(registrationId: string, scopes: readonly string[]): string {
  return `${registrationId} ${normaliseScopes(scopes).join(' ')}`;
}

/**
 * Until when (ms since epoch) a token answered at `nowMs` with `expires_in` may be used. Short-lived
 * tokens keep at least half their life rather than being refetched for every call.
 */
export function tokenUsableUntil(nowMs: number, expiresInSeconds: number): number {
  const margin = Math.min(TOKEN_REFRESH_MARGIN_SECONDS, expiresInSeconds / 2);
  return nowMs + Math.max(0, expiresInSeconds - margin) * 1000;
}

export interface TokenResponse {
  accessToken: string;
  expiresIn: number;
  scopes: string[];
}

/** RFC 6749 §5.1. Returns an error string when the answer is unusable. */
export function parseTokenResponse(body: unknown, requested: readonly string[]): TokenResponse | string {
  if (typeof body !== 'object' || body === null) return 'token response is not a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.access_token !== 'string' || b.access_token === '') return 'token response has no access_token';
  if (typeof b.token_type !== 'string' || b.token_type.toLowerCase() !== 'bearer') {
    return 'token response is not a bearer token';
  }
  const expiresIn = b.expires_in === undefined ? 3600 : Number(b.expires_in);
  if (!Number.isFinite(expiresIn) || expiresIn <= 0) return 'token response has an invalid expires_in';
  // RFC 6749 §5.1: scope may be omitted when it equals the requested one.
  const granted = typeof b.scope === 'string' ? normaliseScopes(b.scope.split(' ')) : normaliseScopes(requested);
  const missing = requested.filter((s) => !granted.includes(s));
  if (missing.length > 0) return `platform did not grant scope ${missing.join(' ')}`;
  return { accessToken: b.access_token, expiresIn, scopes: granted };
}

// ─── Scores (LTI AGS 2.0 §3.4) ──────────────────────────────────────────────────────────────────────

/** A module completed is a full mark: Open edX publishes only FullyGraded scores with scoreGiven > 0. */
export const COMPLETION_SCORE_MAXIMUM = 1;

export type ActivityProgress = 'Initialized' | 'Started' | 'InProgress' | 'Submitted' | 'Completed';
export type GradingProgress = 'FullyGraded' | 'Pending' | 'PendingManual' | 'Failed' | 'NotReady';

export interface ScorePayload {
  userId: string;
  timestamp: string;
  scoreGiven: number;
  scoreMaximum: number;
  activityProgress: ActivityProgress;
  gradingProgress: GradingProgress;
}

/** Returns the reason a completion score would not reach Open edX's gradebook, or null. */
export function invalidCompletionScore(scoreGiven: number, scoreMaximum: number): string | null {
  if (!Number.isFinite(scoreMaximum) || scoreMaximum <= 0) return 'scoreMaximum must be a positive number';
  if (!Number.isFinite(scoreGiven) || scoreGiven <= 0) return 'scoreGiven must be greater than 0';
  if (scoreGiven > scoreMaximum) return 'scoreGiven must not exceed scoreMaximum';
  return null;
}

export function completionScorePayload(input: {
  userId: string;
  timestamp: Date;
  scoreGiven: number;
  scoreMaximum: number;
}): ScorePayload {
  return {
    userId: input.userId,
    timestamp: input.timestamp.toISOString(),
    scoreGiven: input.scoreGiven,
    scoreMaximum: input.scoreMaximum,
    activityProgress: 'Completed',
    gradingProgress: 'FullyGraded',
  };
}

/** LTI AGS 2.0 §3.4: the scores endpoint is the line item URL with `/scores` appended to its path. */
export function scoresUrl(lineitemUrl: string): string {
  const url = new URL(lineitemUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/scores`;
  return url.toString();
}

export type ScoreOutcome = 'sent' | 'refresh_token' | 'retry' | 'drop';

/**
 * What to do with a score after the platform's answer. 401: the token may have expired or been revoked
 * → refresh, then retry. 408, 425, 429 and 5xx are transient. Any other 4xx will not get better by
 * being resent: drop it, loudly.
 */
export function classifyScoreResponse(status: number): ScoreOutcome {
  if (status >= 200 && status < 300) return 'sent';
  if (status === 401) return 'refresh_token';
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'retry';
  return 'drop';
}

export const RETRY_BASE_MS = 15_000;
export const RETRY_CAP_MS = 15 * 60_000;
/**
 * A score still failing this long after it was queued (or after an operator's last retry or re-target)
 * is marked failed for an operator (it can be retried by hand).
 */
export const RETRY_GIVE_UP_MS = 7 * 24 * 3600_000;

/**
 * Exponential backoff with jitter: attempt 1 waits about RETRY_BASE_MS, doubling up to RETRY_CAP_MS;
 * the wait is drawn in [half, full] so that instances recovering together do not retry in lockstep.
 */
export function retryDelayMs(attempt: number, random: number): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 20));
  const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** exponent);
  const r = Math.min(1, Math.max(0, random));
  return Math.round(ceiling / 2 + (ceiling / 2) * r);
}

/** Honours a `Retry-After` in seconds when the platform sends one, within our own cap. */
export function retryAfterMs(header: string | null | undefined): number | null {
  if (!header || !/^\d+$/.test(header.trim())) return null;
  return Math.min(RETRY_CAP_MS, Number(header.trim()) * 1000);
}

/** A score may be retried with a fresh operator clock: the give-up counts from `retrying_since`. */
export function shouldGiveUp(retryingSince: Date, now: Date): boolean {
  return now.getTime() - retryingSince.getTime() > RETRY_GIVE_UP_MS;
}

/**
 * After a failure that says nothing about the score itself (our own keyset possibly unreachable at
 * start, a stop mid-request), the row is released without counting the attempt and tried again this
 * long after: one poll interval of the outbox worker.
 */
export const RELEASE_DELAY_MS = 5_000;

/**
 * How long after this instance began listening a refused client may still be our own doing: a reverse
 * proxy or load balancer usually routes to a new instance only after its readiness checks pass.
 */
export const KEYSET_WARMUP_MS = 2 * 60_000;

/**
 * Whether a refused token request may have failed because the platform could not read our public
 * keyset, rather than because it refuses us. Open edX answers `invalid_client` (RFC 6749 §5.2) to both
 * and says no more, so the tool decides from what it knows itself:
 * - the refusal is `invalid_client` (any other code is about the request, not the key);
 * - this instance has been listening for less than KEYSET_WARMUP_MS (null: not listening at all, e.g.
 *   a test driving the app without a server, where the rule does not apply);
 * - and this instance did not serve its keyset while the platform handled the request (when it did, the
 *   platform read our keys and still refused: a real refusal). `keysetServed` is null when nobody
 *   watches the keyset route: only the time rule applies.
 * Another instance behind the same load balancer may have served the keyset unseen: then an honest
 * refusal is not counted for at most KEYSET_WARMUP_MS, which costs a few extra requests, no score.
 */
export function keysetMayBeUnreachable(input: {
  oauthError: string | null;
  keysetServed: boolean | null;
  listeningForMs: number | null;
}): boolean {
  if (input.oauthError !== 'invalid_client') return false;
  if (input.listeningForMs === null || input.listeningForMs < 0 || input.listeningForMs >= KEYSET_WARMUP_MS) {
    return false;
  }
  return input.keysetServed !== true;
}

/**
 * Whether a failed attempt means the platform could not be reached: no connection, no answer in time,
 * or a gateway's 502/503/504 (what a reverse proxy answers while the LMS behind it is down). Rows failed
 * that way are released together by the outbox's probe as soon as the platform answers again.
 */
export function isPlatformUnreachable(kind: string, status: number | null): boolean {
  return kind === 'network' || status === 502 || status === 503 || status === 504;
}

/**
 * After the probe released a platform's waiting scores, it probes that platform again no sooner than
 * this: if the token endpoint answers while the scores still fail (only part of the platform is back),
 * the scores fall back to their own backoff instead of being released at every poll.
 */
export const PROBE_RELEASE_COOLDOWN_MS = 60_000;

// ─── Memberships (LTI NRPS 2.0 §2.4, RFC 8288 Link headers) ────────────────────────────────────────

export function parseLinkHeader(header: string | null | undefined): Record<string, string> {
  const links: Record<string, string> = {};
  if (!header) return links;
  for (const match of header.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const target = match[1] as string;
    const params = match[2] ?? '';
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').split(/\s+/).filter(Boolean);
    for (const r of rels) if (!(r.toLowerCase() in links)) links[r.toLowerCase()] = target;
  }
  return links;
}

/**
 * The next page's absolute URL, or null. Our bearer token goes with the request, so the next page must
 * stay on the memberships service's own origin.
 */
export function nextPageUrl(currentUrl: string, linkHeader: string | null | undefined): string | null | Error {
  const next = parseLinkHeader(linkHeader).next;
  if (next === undefined) return null;
  let resolved: URL;
  try {
    resolved = new URL(next, currentUrl);
  } catch {
    return new Error('next page link is not a URL');
  }
  if (resolved.origin !== new URL(currentUrl).origin) return new Error('next page link leaves the platform origin');
  return resolved.toString();
}

export interface MemberInput {
  userId: string;
  status: 'Active' | 'Inactive' | 'Deleted';
  roles: string[];
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  email: string | null;
}

/**
 * NRPS roles may be full URIs or, for context roles, short names (LTI Core §A.2.3.1). As at launch, a
 * teaching assistant (Open edX's community TA) with a Learner role stays a learner.
 */
export function isLearnerMembership(roles: readonly string[]): boolean {
  const names = roles.map((r) => r.split('#').pop() ?? r);
  const teaching = names.some((n) => ['Instructor', 'Administrator', 'ContentDeveloper'].includes(n));
  return !teaching && names.some((n) => n === 'Learner' || n === 'Student');
}

/** One page of a membership container; members that cannot be read are reported, not guessed. */
export function parseMembershipPage(body: unknown): { members: MemberInput[]; invalid: number } | string {
  if (typeof body !== 'object' || body === null) return 'memberships response is not a JSON object';
  const members = (body as { members?: unknown }).members;
  if (!Array.isArray(members)) return 'memberships response has no members array';
  const out: MemberInput[] = [];
  let invalid = 0;
  for (const m of members) {
    if (typeof m !== 'object' || m === null) {
      invalid++;
      continue;
    }
    const r = m as Record<string, unknown>;
    const userId = r.user_id;
    if (typeof userId !== 'string' || userId === '') {
      invalid++;
      continue;
    }
    const status = r.status === 'Inactive' || r.status === 'Deleted' ? r.status : 'Active'; // §2.3: default Active
    const roles = Array.isArray(r.roles) ? r.roles.filter((x): x is string => typeof x === 'string') : [];
    const text = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);
    out.push({
      userId,
      status,
      roles,
      name: text(r.name),
      givenName: text(r.given_name),
      familyName: text(r.family_name),
      email: text(r.email),
    });
  }
  return { members: out, invalid };
}

export const MEMBERSHIP_MAX_PAGES = 1000;
/** A context is listed again this long after its last complete sync. */
export const MEMBERSHIP_SYNC_EVERY_MS = 6 * 3600_000;

// ─── Deep Linking 2.0 (§4.4 response, §3.1 ltiResourceLink) ────────────────────────────────────────

export const DL_CLAIMS = {
  messageType: 'https://purl.imsglobal.org/spec/lti/claim/message_type',
  version: 'https://purl.imsglobal.org/spec/lti/claim/version',
  deploymentId: 'https://purl.imsglobal.org/spec/lti/claim/deployment_id',
  contentItems: 'https://purl.imsglobal.org/spec/lti-dl/claim/content_items',
  data: 'https://purl.imsglobal.org/spec/lti-dl/claim/data',
  msg: 'https://purl.imsglobal.org/spec/lti-dl/claim/msg',
} as const;

/**
 * What a course team may place: the learner's programme ("Mon parcours"), a fixed module (common trunk or
 * one fund's), or a theme; a theme or the programme is named with its track only when needed (a slug in
 * several tracks, several tracks).
 */
export type Selection =
  | { kind: 'module'; id: string }
  | { kind: 'theme'; slug: string; track: string | null }
  | { kind: 'parcours'; track: string | null };

const SLUG = '[a-z0-9][a-z0-9-]{0,99}';
const SELECTION = new RegExp(`^(?:module:(${SLUG})|theme:(${SLUG})(?:@(${SLUG}))?|parcours(?:@(${SLUG}))?)$`);

export function parseSelection(value: string): Selection | null {
  const m = SELECTION.exec(value);
  if (!m) return null;
  if (m[1] !== undefined) return { kind: 'module', id: m[1] };
  if (m[2] !== undefined) return { kind: 'theme', slug: m[2], track: m[3] ?? null };
  return { kind: 'parcours', track: m[4] ?? null };
}

export function selectionKey(s: Selection): string {
  if (s.kind === 'module') return `module:${s.id}`;
  if (s.kind === 'parcours') return s.track ? `parcours@${s.track}` : 'parcours';
  return s.track ? `theme:${s.slug}@${s.track}` : `theme:${s.slug}`;
}

export interface LtiResourceLinkItem {
  type: 'ltiResourceLink';
  title: string;
  text?: string;
  url: string;
  custom: Record<string, string>;
  lineItem: { label: string; scoreMaximum: number; resourceId: string; tag: string };
}

/** Deep Linking 2.0 §3.1: one placed link; `custom` tells our launch what to serve. */
export function resourceLinkItem(input: {
  selection: Selection;
  title: string;
  text?: string;
  launchUrl: string;
}): LtiResourceLinkItem {
  const { selection } = input;
  const custom: Record<string, string> =
    selection.kind === 'module'
      ? { module: selection.id }
      : selection.kind === 'parcours'
        ? { view: 'parcours', ...(selection.track ? { track: selection.track } : {}) }
        : { theme: selection.slug, ...(selection.track ? { track: selection.track } : {}) };
  return {
    type: 'ltiResourceLink',
    title: input.title,
    ...(input.text ? { text: input.text } : {}),
    url: input.launchUrl,
    custom,
    lineItem: {
      label: input.title,
      scoreMaximum: COMPLETION_SCORE_MAXIMUM,
      resourceId: selectionKey(selection),
      tag: 'completion',
    },
  };
}

export const DEEP_LINKING_RESPONSE_LIFETIME_SECONDS = 600;

/** Deep Linking 2.0 §4.4: the tool is the issuer, the platform the audience. */
export function deepLinkingResponseClaims(input: {
  clientId: string;
  platformIssuer: string;
  deploymentId: string;
  nowSeconds: number;
  nonce: string;
  items: readonly LtiResourceLinkItem[];
  data?: string | undefined;
  message?: string;
}): Record<string, unknown> {
  const iat = Math.floor(input.nowSeconds);
  return {
    iss: input.clientId,
    aud: input.platformIssuer,
    azp: input.clientId,
    iat,
    exp: iat + DEEP_LINKING_RESPONSE_LIFETIME_SECONDS,
    nonce: input.nonce,
    [DL_CLAIMS.messageType]: 'LtiDeepLinkingResponse',
    [DL_CLAIMS.version]: '1.3.0',
    [DL_CLAIMS.deploymentId]: input.deploymentId,
    [DL_CLAIMS.contentItems]: input.items,
    ...(input.data !== undefined ? { [DL_CLAIMS.data]: input.data } : {}),
    ...(input.message ? { [DL_CLAIMS.msg]: input.message } : {}),
  };
}

/** Only those who build the course place content or see its learners. */
export function isCourseTeam(role: string): boolean {
  return role === 'course_team' || role === 'staff';
}
