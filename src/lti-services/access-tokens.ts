import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Db } from '../db/index.js';
import { findRegistration } from './repository.js';
import {
  CLIENT_ASSERTION_TYPE,
  clientAssertionClaims,
  normaliseScopes,
  parseTokenResponse,
  tokenCacheKey,
  tokenUsableUntil,
} from './rules.js';

/** The tool's current signing key, as the lti capability hands it out (`getCurrentToolKey`). */
export interface ToolSigningKey {
  kid: string;
  alg: string;
  privateKey: Parameters<SignJWT['sign']>[0];
}
export type ToolKeySource = () => Promise<ToolSigningKey>;

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/**
 * The longest one request to the platform may take, answer body included. Well below the graceful-stop
 * limit (GRACEFUL_STOP_MS, 10 s), so that even a request nobody aborts ends before the process must.
 */
export const PLATFORM_TIMEOUT_MS = 8_000;

/**
 * A call to the platform that did not succeed. `retryable`: the same call may work later (network,
 * 5xx, 429); otherwise something must change first (configuration, a refused request). `aborted`: this
 * instance is stopping and cut the request; the platform said nothing.
 */
export class PlatformCallError extends Error {
  /** The OAuth 2.0 error code of a refused token request (RFC 6749 §5.2), e.g. `invalid_client`. */
  oauthError: string | null = null;
  /**
   * For a refused token request: whether this instance served its public keyset while the platform
   * handled the request (null when nobody watches the keyset route).
   */
  keysetServed: boolean | null = null;

  constructor(
    readonly kind: 'network' | 'http' | 'invalid_response' | 'configuration' | 'aborted',
    message: string,
    readonly retryable: boolean,
    readonly status: number | null = null,
    readonly retryAfter: string | null = null,
  ) {
    super(message);
    this.name = 'PlatformCallError';
  }
}

/**
 * Performs a request within PLATFORM_TIMEOUT_MS, turning transport failures into a retryable
 * PlatformCallError. `signal` (the instance's stop) aborts it at once: kind `aborted`.
 */
export async function callPlatform(
  fetchImpl: FetchLike,
  url: string,
  init: RequestInit,
  signal?: AbortSignal,
): Promise<Response> {
  const timeout = AbortSignal.timeout(PLATFORM_TIMEOUT_MS);
  // Outside the try: a runtime without AbortSignal.any (Node < 20.3) fails loudly, not as "unreachable".
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    return await fetchImpl(url, { ...init, redirect: 'error', signal: combined });
  } catch (error) {
    if (signal?.aborted) throw stoppedError(url);
    const cause = error as { cause?: { code?: string }; name?: string };
    const code = cause.cause?.code ?? cause.name ?? 'unknown';
    throw new PlatformCallError('network', `${new URL(url).host} unreachable (${code})`, true);
  }
}

/** The error for a request cut by this instance's stop (also while reading an answer's body). */
export function stoppedError(url: string): PlatformCallError {
  return new PlatformCallError('aborted', `stopped before ${new URL(url).host} answered`, true);
}

/** A short, single-line excerpt of a platform's error answer, for operators (never a token: those are ours). */
export async function responseExcerpt(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  return excerptOf(text);
}

function excerptOf(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

/** RFC 6749 §5.2: the `error` member of a token endpoint's JSON error answer, or null. */
export function oauthErrorCode(text: string): string | null {
  try {
    const body = JSON.parse(text) as { error?: unknown };
    return typeof body.error === 'string' && /^[\x20-\x7e]{1,100}$/.test(body.error) ? body.error : null;
  } catch {
    return null;
  }
}

/** Counts the times this instance served its public keyset (the keyset route's successful answers). */
export interface KeysetWatch {
  served(): number;
}

interface CachedToken {
  accessToken: string;
  usableUntil: number;
}

/**
 * OAuth 2.0 client credentials with a signed JWT (IMS Security Framework §4.1): one access token per
 * registration × scope set, reused until shortly before it expires. The cache lives in this process:
 * it only saves requests, every instance can always get a token of its own, and tokens never reach
 * the database. Concurrent callers share one request.
 */
export class AccessTokenService {
  readonly #cache = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly deps: {
      db: Db;
      toolKey: ToolKeySource;
      fetch?: FetchLike;
      /** The clock the cache reads (tests move it forward). */
      nowMs?: () => number;
      /** The instance's stop: aborts token requests under way. */
      signal?: AbortSignal;
      /** Tells whether the platform fetched our keyset while it checked a refused token request. */
      keyset?: KeysetWatch;
    },
  ) {}

  async getToken(registrationId: string, scopes: readonly string[]): Promise<string> {
    const key = tokenCacheKey(registrationId, scopes);
    const cached = this.#cache.get(key);
    if (cached && cached.usableUntil > this.#now()) return cached.accessToken;
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#request(registrationId, normaliseScopes(scopes)).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const fresh = await pending;
    this.#cache.set(key, fresh);
    return fresh.accessToken;
  }

  /**
   * A token request made now, whatever the cache holds (the fresh token then replaces the cached one):
   * the probe that tells whether the platform's token endpoint answers again after an outage.
   */
  async probe(registrationId: string, scopes: readonly string[]): Promise<void> {
    const key = tokenCacheKey(registrationId, scopes);
    const fresh = await this.#request(registrationId, normaliseScopes(scopes));
    this.#cache.set(key, fresh);
  }

  /** The platform refused this token (401): forget it, unless another caller already replaced it. */
  invalidate(registrationId: string, scopes: readonly string[], accessToken: string): void {
    const key = tokenCacheKey(registrationId, scopes);
    if (this.#cache.get(key)?.accessToken === accessToken) this.#cache.delete(key);
  }

  clear(): void {
    this.#cache.clear();
  }

  #now(): number {
    return this.deps.nowMs?.() ?? Date.now();
  }

  async #request(registrationId: string, scopes: string[]): Promise<CachedToken> {
    const registration = await findRegistration(this.deps.db, registrationId);
    if (!registration || registration.removed_at) {
      throw new PlatformCallError('configuration', `registration ${registrationId} is unknown or removed`, false);
    }
    const key = await this.deps.toolKey();
    const assertion = await new SignJWT({
      ...clientAssertionClaims({
        clientId: registration.client_id,
        tokenUrl: registration.access_token_url,
        // The platform checks iat/exp against its own clock: always the real time here.
        nowSeconds: Date.now() / 1000,
        jti: randomUUID(),
      }),
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .sign(key.privateKey);

    // IMS Security Framework §4.1.1: form-urlencoded (Open edX refuses JSON bodies).
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: assertion,
      scope: scopes.join(' '),
    });
    const startedAt = this.#now();
    const servedBefore = this.deps.keyset?.served();
    const url = registration.access_token_url;
    const response = await callPlatform(
      this.deps.fetch ?? fetch,
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body.toString(),
      },
      this.deps.signal,
    );
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      if (this.deps.signal?.aborted) throw stoppedError(url);
      const excerpt = excerptOf(text);
      // A refused client (400/401 invalid_client…) is a registration or key problem: scores wait for
      // an operator to fix it rather than being dropped, so every status stays retryable.
      const error = new PlatformCallError(
        'http',
        `token endpoint answered ${response.status}${excerpt ? `: ${excerpt}` : ''}`,
        true,
        response.status,
        response.headers.get('retry-after'),
      );
      error.oauthError = oauthErrorCode(text);
      if (servedBefore !== undefined && this.deps.keyset) error.keysetServed = this.deps.keyset.served() > servedBefore;
      throw error;
    }
    const json = await response.json().catch(() => undefined);
    if (this.deps.signal?.aborted) throw stoppedError(url);
    const parsed = parseTokenResponse(json, scopes);
    if (typeof parsed === 'string') throw new PlatformCallError('invalid_response', parsed, true, response.status);
    return { accessToken: parsed.accessToken, usableUntil: tokenUsableUntil(startedAt, parsed.expiresIn) };
  }
}
