import { randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { deriveKey } from '../config/secrets.js';
import { LOGIN_TTL_SECONDS } from './rules.js';

/**
 * The OIDC `state` (LTI Core §5.1.1.2, OIDC Core §3.1.2.1): a short-lived JWT signed by the tool that carries
 * what login learned, so that the launch needs no cookie and no server-side session. It is bound to the
 * nonce we stored at login; the nonce in the id_token must be the same one.
 */
export interface LoginState {
  /** Registration id (our database id). */
  reg: string;
  nonce: string;
  /** target_link_uri as received at login. */
  tlu: string;
  /** lti_deployment_id sent at login, when the platform sent one. */
  dep?: string;
  jti: string;
  exp: number;
}

const AUDIENCE = 'lti-state';

export function stateKey(appSecret: string): Uint8Array {
  return new Uint8Array(deriveKey(appSecret, 'lti-oidc-state'));
}

/**
 * The same key as a non-extractable WebCrypto HMAC key, imported once per process: given raw bytes, jose
 * imports the key again on every sign and verify, which doubles the cost of an HS256 operation.
 */
export function importStateKey(appSecret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    'raw',
    Uint8Array.from(stateKey(appSecret)),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  );
}

export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

export async function signState(
  key: CryptoKey | Uint8Array,
  issuer: string,
  claims: Omit<LoginState, 'jti' | 'exp'>,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<{ token: string; jti: string; exp: number }> {
  const jti = randomToken(16);
  const exp = nowSeconds + LOGIN_TTL_SECONDS;
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(AUDIENCE)
    .setJti(jti)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(exp)
    .sign(key);
  return { token, jti, exp };
}

export type StateCheck =
  | { ok: true; state: LoginState }
  | { ok: false; check: 'state_signature' | 'state_expiry'; reason: string };

export async function verifyState(key: CryptoKey | Uint8Array, issuer: string, token: string): Promise<StateCheck> {
  try {
    // No clock tolerance: the tool issued it with its own clock.
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer, audience: AUDIENCE });
    const { reg, nonce, tlu, dep, jti, exp } = payload as Record<string, unknown>;
    if (
      typeof reg !== 'string' ||
      typeof nonce !== 'string' ||
      typeof tlu !== 'string' ||
      typeof jti !== 'string' ||
      typeof exp !== 'number' ||
      (dep !== undefined && typeof dep !== 'string')
    ) {
      return { ok: false, check: 'state_signature', reason: 'state carries unexpected claims' };
    }
    return { ok: true, state: { reg, nonce, tlu, jti, exp, ...(dep !== undefined ? { dep: dep as string } : {}) } };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { ok: false, check: 'state_expiry', reason: 'state has expired' };
    const code = error instanceof errors.JOSEError ? error.code : 'ERR_UNKNOWN';
    return { ok: false, check: 'state_signature', reason: `state is not one we signed (${code})` };
  }
}

/**
 * The state cookie is an extra check, never a requirement (third-party cookies are often blocked): login sets
 * `lti_state_<jti>`; at launch, a browser that sends some state cookies but not this state's one accepts our
 * cookies yet did not start this login — a sign of login CSRF. A browser that sends none is not judged.
 */
export const STATE_COOKIE_PREFIX = 'lti_state_';

export function stateCookieHeader(jti: string, publicUrl: string, maxAgeSeconds = LOGIN_TTL_SECONDS): string {
  // Scoped to the LTI routes, under PUBLIC_URL's path when the tool sits behind a path prefix.
  const path = `${new URL(publicUrl).pathname.replace(/\/+$/, '')}/lti`;
  // SameSite=None (the launch POST is cross-site) requires Secure; browsers accept Secure cookies from
  // http://localhost too. Partitioned (CHIPS) is what Chrome keeps when third-party cookies are blocked.
  return `${STATE_COOKIE_PREFIX}${jti}=${maxAgeSeconds > 0 ? '1' : ''}; Max-Age=${maxAgeSeconds}; Path=${path}; HttpOnly; Secure; SameSite=None; Partitioned`;
}

export function checkStateCookie(
  cookieHeader: string | undefined,
  jti: string,
): { outcome: 'passed' | 'skipped' } | { outcome: 'failed'; reason: string } {
  const names = (cookieHeader ?? '')
    .split(';')
    .map((c) => c.trim().split('=')[0] ?? '')
    .filter((n) => n.startsWith(STATE_COOKIE_PREFIX));
  if (names.length === 0) return { outcome: 'skipped' };
  if (names.includes(`${STATE_COOKIE_PREFIX}${jti}`)) return { outcome: 'passed' };
  return { outcome: 'failed', reason: 'this browser holds state cookies, but not the one of this login' };
}
