import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { PortalRole } from './tables.js';

/** What a signed-in person or token may see: every query of the portal is narrowed by this. */
export interface Principal {
  userId: string;
  username: string;
  displayName: string;
  role: PortalRole;
  /** The only fund a fund_staff principal may see; null for operators (all funds). */
  fundSlug: string | null;
  via: 'session' | 'token';
  tokenId: string | null;
  /** SHA-256 of the session cookie, when signed in by session (binds CSRF tokens and progress). */
  sessionHash: string | null;
}

// ---------------------------------------------------------------------------------------------
// Usernames and passwords

const USERNAME = /^[a-z0-9][a-z0-9._@+-]{2,119}$/;

/** Usernames are compared case-insensitively: one canonical form is stored and looked up. */
export function normaliseUsername(input: string): string {
  return input.normalize('NFC').trim().toLowerCase();
}

export function isValidUsername(username: string): boolean {
  return USERNAME.test(username);
}

export const PASSWORD_MIN_LENGTH = 12;
/** Long enough for pass-phrases, short enough that nobody can make us hash megabytes. */
export const PASSWORD_MAX_LENGTH = 200;

/** French reasons a new password is refused (empty when acceptable). */
export function passwordProblems(password: string, username: string): string[] {
  const problems: string[] = [];
  if ([...password].length < PASSWORD_MIN_LENGTH) {
    problems.push(`Le mot de passe doit compter au moins ${PASSWORD_MIN_LENGTH} caractères.`);
  }
  if (password.length > PASSWORD_MAX_LENGTH) {
    problems.push(`Le mot de passe ne doit pas dépasser ${PASSWORD_MAX_LENGTH} caractères.`);
  }
  if (username && password.toLowerCase().includes(username.toLowerCase())) {
    problems.push('Le mot de passe ne doit pas contenir l’identifiant.');
  }
  if (new Set(password).size < 5) problems.push('Le mot de passe est trop répétitif.');
  return problems;
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  keyLength: number;
}

/**
 * scrypt cost: N=2^17, r=8, p=1 (OWASP password storage cheat sheet's scrypt parameters; RFC 7914 §2):
 * 128 MiB and a few tenths of a second per hash on a modest core. The parameters are stored with every
 * hash, so an older hash (N=2^15) still verifies and is replaced at the next successful sign-in.
 */
export const SCRYPT_PARAMS: ScryptParams = Object.freeze({ N: 2 ** 17, r: 8, p: 1, keyLength: 32 });
export const SCRYPT_SALT_BYTES = 16;

/** node:crypto refuses scrypt above 32 MiB unless told: 128·N·r for V plus 128·r·p for B, with slack. */
export function scryptMaxMem(params: ScryptParams): number {
  return 128 * params.N * params.r * (params.p + 1) + 1024 * 1024;
}

export function encodePasswordHash(params: ScryptParams, salt: Buffer, hash: Buffer): string {
  return `scrypt$N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export interface ParsedPasswordHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

/** Parses a stored hash; bounds the parameters so a tampered row cannot make us allocate gigabytes. */
export function parsePasswordHash(stored: string): ParsedPasswordHash | null {
  const m = /^scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16) return null;
  const salt = Buffer.from(m[4] as string, 'base64url');
  const hash = Buffer.from(m[5] as string, 'base64url');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
  return { params: { N, r, p, keyLength: hash.length }, salt, hash };
}

export function needsRehash(parsed: ParsedPasswordHash, current: ScryptParams = SCRYPT_PARAMS): boolean {
  const { N, r, p, keyLength } = parsed.params;
  return N < current.N || r < current.r || p < current.p || keyLength < current.keyLength;
}

// ---------------------------------------------------------------------------------------------
// Secrets at rest: session ids and API tokens are random, so a plain SHA-256 is enough to make a
// database leak useless (no dictionary to try), and lets us look them up by hash.

export function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export const API_TOKEN_PREFIX = 'emt_';
const API_TOKEN = /^emt_[A-Za-z0-9_-]{43}$/;

export function isApiTokenShape(token: string): boolean {
  return API_TOKEN.test(token);
}

/** `Authorization: Bearer <token>` (RFC 6750 §2.1); the scheme is case-insensitive. */
export function parseBearer(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return m ? (m[1] as string) : null;
}

/** What a list shows of a token: its prefix plus an ellipsis, never enough to use it. */
export function tokenDisplayPrefix(token: string): string {
  return token.slice(0, API_TOKEN_PREFIX.length + 6);
}

// ---------------------------------------------------------------------------------------------
// Sessions

export const SESSION_IDLE_MS = 2 * 60 * 60 * 1000;
export const SESSION_ABSOLUTE_MS = 12 * 60 * 60 * 1000;
/** Refresh last_seen_at at most this often: one write per page view would be wasted work. */
export const SESSION_TOUCH_MS = 5 * 60 * 1000;

export function sessionState(
  session: { lastSeenAt: Date; expiresAt: Date },
  now: Date,
): 'valid' | 'idle_expired' | 'expired' {
  if (now.getTime() >= session.expiresAt.getTime()) return 'expired';
  if (now.getTime() - session.lastSeenAt.getTime() >= SESSION_IDLE_MS) return 'idle_expired';
  return 'valid';
}

export function shouldTouchSession(lastSeenAt: Date, now: Date): boolean {
  return now.getTime() - lastSeenAt.getTime() >= SESSION_TOUCH_MS;
}

export function sessionCookieName(production: boolean): string {
  // The __Secure- prefix makes browsers refuse the cookie unless it is Secure and set over https.
  return production ? '__Secure-emargement_portal' : 'emargement_portal';
}

export function loginCookieName(production: boolean): string {
  return production ? '__Secure-emargement_login' : 'emargement_login';
}

export const PORTAL_PATH = '/portal';

export function cookieOptions(production: boolean, maxAgeSeconds?: number) {
  return {
    httpOnly: true,
    secure: production,
    sameSite: 'lax' as const,
    path: PORTAL_PATH,
    ...(maxAgeSeconds !== undefined ? { maxAge: maxAgeSeconds } : {}),
  };
}

/** Where to go after signing in: only our own portal pages, never another site (open redirect). */
export function safeNext(next: string | undefined): string {
  if (!next) return `${PORTAL_PATH}/`;
  if (!/^\/portal(\/[A-Za-z0-9/_.~%?=&+-]*)?$/.test(next) || next.includes('//') || next.includes('\\')) {
    return `${PORTAL_PATH}/`;
  }
  return next;
}

// ---------------------------------------------------------------------------------------------
// CSRF: HMAC-based synchronizer tokens (OWASP CSRF cheat sheet, "signed double-submit"): the token is
// an HMAC of the session id (or of the sign-in cookie before a session exists), so it needs no storage,
// differs per session and cannot be forged without the server key.

export function csrfToken(key: Buffer, binding: string): string {
  return createHmac('sha256', key).update(`csrf:${binding}`).digest('base64url');
}

export function verifyCsrfToken(key: Buffer, binding: string, candidate: unknown): boolean {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > 100) return false;
  const expected = Buffer.from(csrfToken(key, binding));
  const given = Buffer.from(candidate);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// ---------------------------------------------------------------------------------------------
// Sign-in throttling. Counted in the database so that every instance sees the same counters: per account
// and address (stops guessing one password), per address (stops spraying many accounts) and per account
// from anywhere (stops a guess spread over many addresses; higher, so that nobody can lock a colleague out
// cheaply). Each attempt increments its counters and reads them back in one statement BEFORE the password
// is evaluated (see repository.countLoginAttempt): concurrent attempts cannot all see "below the limit".
// A successful sign-in takes its own attempt back and clears that account's count from that address.

export const LOGIN_WINDOW_MS = 15 * 60 * 1000;
export const LOGIN_LIMITS = Object.freeze({ accountIp: 5, ip: 30, account: 50 });

export interface LoginCounts {
  accountIp: number;
  ip: number;
  account: number;
}

/** The counter keys of an attempt. */
export function loginCounterKeys(username: string, ip: string): Record<keyof LoginCounts, string> {
  return { accountIp: `user-ip ${username} ${ip}`, ip: `ip ${ip}`, account: `user ${username}` };
}

/** Counts include the attempt being made: the 6th try of an account from one address is refused. */
export function loginThrottled(counts: LoginCounts): boolean {
  return (
    counts.accountIp > LOGIN_LIMITS.accountIp || counts.ip > LOGIN_LIMITS.ip || counts.account > LOGIN_LIMITS.account
  );
}

// ---------------------------------------------------------------------------------------------
// Scope

/**
 * The fund a principal's query is restricted to. Operators may pick one (or all: null); fund staff
 * always get theirs, and asking for another fund is refused rather than silently replaced, so that a
 * script with a wrong filter fails loudly.
 */
export function scopedFund(
  principal: Pick<Principal, 'role' | 'fundSlug'>,
  requested: string | undefined,
): { ok: true; fund: string | null } | { ok: false } {
  if (principal.role === 'operator') return { ok: true, fund: requested ?? null };
  if (requested !== undefined && requested !== principal.fundSlug) return { ok: false };
  return { ok: true, fund: principal.fundSlug };
}

export const ROLE_LABELS: Record<PortalRole, string> = {
  operator: 'opérateur (tous les fonds)',
  fund_staff: 'équipe d’un fonds',
};
