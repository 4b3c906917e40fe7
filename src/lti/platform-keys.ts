import { createPublicKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { type AllowedAlgorithm, JWKS_REFETCH_INTERVAL_MS, jwksFetchDecision } from './rules.js';

/**
 * Platform public keys (Security Framework §6.3: the tool gets them from the platform's JWKS URL).
 * Fetched once per JWKS URL and cached; an unknown kid triggers a refetch at most once a minute, so that a
 * flood of forged kids cannot turn the tool into a relay hammering the LMS. Keys are accepted without
 * `alg`/`use` (Open edX sends neither) and with `key_ops`: the algorithm comes from the token header once it
 * passed the allow-list, and only the RSA members are imported, once, as node:crypto public keys, which
 * jose's `compactVerify` takes as they are (it refuses RSA keys under 2048 bits).
 */
export type KeyLookup = { ok: true; key: KeyObject } | { ok: false; check: 'kid' | 'jwks'; reason: string };

interface CachedSet {
  keys: Map<string, JWK>;
  imported: Map<string, KeyObject>;
  fetchedAt: number;
  lastAttemptAt: number;
  /** Why the last fetch failed, while no fetch has succeeded since. */
  lastError?: string;
}

const MAX_JWKS_BYTES = 256 * 1024;
const FETCH_TIMEOUT_MS = 5_000;

export type JwksFetcher = (url: string) => Promise<unknown>;

export async function fetchJwks(url: string): Promise<unknown> {
  const res = await fetch(url, {
    headers: { accept: 'application/json' },
    redirect: 'error',
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`JWKS answered HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_JWKS_BYTES) throw new Error('JWKS too large');
  return JSON.parse(text);
}

export class PlatformKeyCache {
  readonly #sets = new Map<string, CachedSet>();
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(
    private readonly fetcher: JwksFetcher = fetchJwks,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async key(jwksUrl: string, kid: string, alg: AllowedAlgorithm): Promise<KeyLookup> {
    let set = this.#sets.get(jwksUrl);
    const decision = jwksFetchDecision(set, set?.keys.has(kid) ?? false, this.now());
    if (decision === 'fetch') {
      const error = await this.#refresh(jwksUrl);
      set = this.#sets.get(jwksUrl);
      // A failed refresh keeps serving the keys we had: an LMS hiccup must not lock learners out.
      if (error && !set?.keys.has(kid)) return { ok: false, check: 'jwks', reason: error };
    }
    const jwk = set?.keys.get(kid);
    if (!set || !jwk) {
      if (set?.lastError) return { ok: false, check: 'jwks', reason: `platform JWKS unavailable: ${set.lastError}` };
      return {
        ok: false,
        check: 'kid',
        reason:
          decision === 'refuse'
            ? `kid not in the platform JWKS (refetch skipped: last one under ${JWKS_REFETCH_INTERVAL_MS / 1000} s ago)`
            : 'kid not in the platform JWKS, even after a refetch',
      };
    }
    const cacheKey = `${kid}\u0000${alg}`;
    let key = set.imported.get(cacheKey);
    if (!key) {
      if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.e !== 'string') {
        return { ok: false, check: 'kid', reason: `platform key ${kid} is not an RSA key usable with ${alg}` };
      }
      try {
        key = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
      } catch {
        return { ok: false, check: 'kid', reason: `platform key ${kid} cannot be imported` };
      }
      set.imported.set(cacheKey, key);
    }
    return { ok: true, key };
  }

  /** Fetches (one request per URL at a time, shared by concurrent launches); returns an error text or null. */
  async #refresh(jwksUrl: string): Promise<string | null> {
    let pending = this.#inflight.get(jwksUrl);
    if (!pending) {
      pending = this.#load(jwksUrl).finally(() => this.#inflight.delete(jwksUrl));
      this.#inflight.set(jwksUrl, pending);
    }
    try {
      await pending;
      return null;
    } catch (error) {
      return `platform JWKS unavailable: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  async #load(jwksUrl: string): Promise<void> {
    const attemptAt = this.now();
    const previous = this.#sets.get(jwksUrl);
    let keys: Map<string, JWK>;
    try {
      const list = ((await this.fetcher(jwksUrl)) as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(list)) throw new Error('JWKS has no "keys" array');
      keys = new Map();
      for (const k of list) {
        if (k && typeof k === 'object' && typeof (k as JWK).kid === 'string')
          keys.set((k as JWK).kid as string, k as JWK);
      }
    } catch (error) {
      const lastError = error instanceof Error ? error.message : String(error);
      if (previous) Object.assign(previous, { lastAttemptAt: attemptAt, lastError });
      else
        this.#sets.set(jwksUrl, {
          keys: new Map(),
          imported: new Map(),
          fetchedAt: 0,
          lastAttemptAt: attemptAt,
          lastError,
        });
      throw error;
    }
    // Imported keys stay valid for kids whose material did not change.
    const imported = new Map<string, KeyObject>();
    if (previous) {
      for (const [cacheKey, key] of previous.imported) {
        const kid = cacheKey.split('\u0000')[0] as string;
        const before = previous.keys.get(kid);
        const after = keys.get(kid);
        if (before && after && before.n === after.n && before.e === after.e) imported.set(cacheKey, key);
      }
    }
    this.#sets.set(jwksUrl, { keys, imported, fetchedAt: attemptAt, lastAttemptAt: attemptAt });
  }
}
