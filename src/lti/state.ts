import { createHmac, createSecretKey, type KeyObject, randomFillSync, timingSafeEqual } from 'node:crypto';
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
 * The same key as a node:crypto secret key, made once per process. The state is an HS256 JWT (RFC 7519)
 * signed and verified here with node:crypto's synchronous HMAC: through WebCrypto (jose), each HS256
 * operation is an asynchronous crypto job costing ~0.1–0.2 ms of CPU, twice a login + launch pair, against a
 * few microseconds for the same HMAC computed synchronously.
 */
export function importStateKey(appSecret: string): KeyObject {
  return createSecretKey(stateKey(appSecret));
}

export type StateKey = KeyObject | Uint8Array;

const asKeyObject = (key: StateKey): KeyObject => (key instanceof Uint8Array ? createSecretKey(key) : key);
const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url');
/** The protected header of every state we sign. */
const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
const hs256 = (key: KeyObject, signingInput: string): string =>
  createHmac('sha256', key).update(signingInput).digest('base64url');

/**
 * Random bytes drawn from the CSPRNG a pool at a time, each byte handed out once: every login takes two tokens
 * (nonce and state id), and one `randomBytes` call costs about as much as filling the pool for sixty (Node
 * does the same for `crypto.randomUUID`). The pool never leaves this module.
 */
const POOL_BYTES = 2048;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

/** `bytes` random bytes (at most POOL_BYTES), base64url-encoded. */
export function randomToken(bytes = 24): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > POOL_BYTES) throw new RangeError(`randomToken(${bytes})`);
  if (poolOffset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const token = pool.toString('base64url', poolOffset, poolOffset + bytes);
  // Spent bytes are zeroed, so that what was handed out cannot be read from the pool later.
  pool.fill(0, poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return token;
}

export async function signState(
  key: StateKey,
  issuer: string,
  claims: Omit<LoginState, 'jti' | 'exp'>,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<{ token: string; jti: string; exp: number }> {
  const jti = randomToken(16);
  const exp = nowSeconds + LOGIN_TTL_SECONDS;
  const payload = b64url(JSON.stringify({ ...claims, iss: issuer, aud: AUDIENCE, jti, iat: nowSeconds, exp }));
  const signingInput = `${HEADER}.${payload}`;
  return { token: `${signingInput}.${hs256(asKeyObject(key), signingInput)}`, jti, exp };
}

export type StateCheck =
  | { ok: true; state: LoginState }
  | { ok: false; check: 'state_signature' | 'state_expiry'; reason: string };

const B64URL = /^[A-Za-z0-9_-]+$/;
const notOurs = (code: string): StateCheck => ({
  ok: false,
  check: 'state_signature',
  reason: `state is not one we signed (${code})`,
});

function parseObject(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * Verifies a state this tool signed: compact JWS of exactly three base64url parts, a header saying HS256 and
 * nothing else that matters (no `crit`, no `b64`), the HMAC compared in constant time against the one
 * recomputed over the parts as received (so only the canonical encoding of the signature passes), then
 * issuer, audience and expiry (no clock tolerance: the tool issued it with its own clock).
 */
export async function verifyState(
  key: StateKey,
  issuer: string,
  token: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<StateCheck> {
  const parts = token.split('.');
  const [headerPart, payloadPart, signature] = parts;
  if (parts.length !== 3 || !headerPart || !payloadPart || !signature) return notOurs('ERR_JWS_INVALID');
  if (!B64URL.test(headerPart) || !B64URL.test(payloadPart) || !B64URL.test(signature)) {
    return notOurs('ERR_JWS_INVALID');
  }
  const header = parseObject(headerPart);
  if (!header) return notOurs('ERR_JWS_INVALID');
  if (header.alg !== 'HS256' || 'crit' in header || 'b64' in header) return notOurs('ERR_JOSE_ALG_NOT_ALLOWED');
  const expected = Buffer.from(hs256(asKeyObject(key), `${headerPart}.${payloadPart}`));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return notOurs('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  }
  const payload = parseObject(payloadPart);
  if (!payload) return notOurs('ERR_JWT_INVALID');
  const { reg, nonce, tlu, dep, jti, exp, iat, iss, aud } = payload;
  if (iss !== issuer) return notOurs('ERR_JWT_CLAIM_VALIDATION_FAILED');
  if (aud !== AUDIENCE && !(Array.isArray(aud) && aud.includes(AUDIENCE))) {
    return notOurs('ERR_JWT_CLAIM_VALIDATION_FAILED');
  }
  if (iat !== undefined && typeof iat !== 'number') return notOurs('ERR_JWT_CLAIM_VALIDATION_FAILED');
  if (typeof exp !== 'number') return notOurs('ERR_JWT_CLAIM_VALIDATION_FAILED');
  if (exp <= nowSeconds) return { ok: false, check: 'state_expiry', reason: 'state has expired' };
  if (
    typeof reg !== 'string' ||
    typeof nonce !== 'string' ||
    typeof tlu !== 'string' ||
    typeof jti !== 'string' ||
    (dep !== undefined && typeof dep !== 'string')
  ) {
    return { ok: false, check: 'state_signature', reason: 'state carries unexpected claims' };
  }
  return { ok: true, state: { reg, nonce, tlu, jti, exp, ...(dep !== undefined ? { dep: dep as string } : {}) } };
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
