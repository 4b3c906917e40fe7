import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { decryptAtRest, deriveKey, encryptAtRest } from '../config/secrets.js';
import type { Db } from '../db/index.js';
import { findCurrentKey, insertCurrentKeyIfNone, listKeys, rotateCurrentKey, type ToolKeyRow } from './repository.js';
import { isKeyPublished } from './rules.js';

/**
 * The tool's own signing keys (Security Framework §6: the tool publishes a JWKS, signs deep-linking responses
 * and client assertions). RSA 2048 / RS256; private keys are sealed with AES-256-GCM under a key derived
 * from APP_SECRET, so a database dump alone does not let anyone sign as the tool.
 */
export const TOOL_KEY_ALG = 'RS256' as const;
const KEY_PURPOSE = 'lti-tool-private-keys';

export interface ToolKey {
  kid: string;
  alg: 'RS256';
  privateKey: CryptoKey;
}

export function keyEncryptionKey(appSecret: string): Buffer {
  return deriveKey(appSecret, KEY_PURPOSE);
}

async function newKey(kek: Buffer): Promise<Omit<ToolKeyRow, 'createdAt' | 'retiredAt' | 'status'>> {
  const { publicKey, privateKey } = await generateKeyPair(TOOL_KEY_ALG, { modulusLength: 2048, extractable: true });
  const publicJwk = await exportJWK(publicKey);
  // RFC 7638 thumbprint as kid: stable, unique per key, and reveals nothing.
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = await exportJWK(privateKey);
  return {
    kid,
    alg: TOOL_KEY_ALG,
    publicJwk: { kty: publicJwk.kty, n: publicJwk.n, e: publicJwk.e, kid, alg: TOOL_KEY_ALG, use: 'sig' },
    privateKeySealed: encryptAtRest(kek, JSON.stringify({ ...privateJwk, kid })),
  };
}

/** First start: generate the first key. Safe when several instances start together. */
export async function ensureCurrentKey(db: Db, kek: Buffer): Promise<string> {
  const existing = await findCurrentKey(db);
  if (existing) return existing.kid;
  await insertCurrentKeyIfNone(db, await newKey(kek));
  const current = await findCurrentKey(db);
  if (!current) throw new Error('no current LTI tool key after generation');
  return current.kid;
}

/** `keys rotate`: a new current key; the previous one stays published for the grace period. */
export async function rotateKey(db: Db, kek: Buffer): Promise<{ kid: string; retiredKid: string | null }> {
  const key = await newKey(kek);
  const retiredKid = await rotateCurrentKey(db, key);
  return { kid: key.kid, retiredKid };
}

/** The public JWKS: current key and keys retired less than the grace period ago. */
export async function publishedJwks(db: Db, now: Date): Promise<{ keys: JWK[] }> {
  const keys = await listKeys(db);
  return { keys: keys.filter((k) => isKeyPublished(k, now)).map((k) => k.publicJwk as JWK) };
}

export async function loadToolKey(row: ToolKeyRow, kek: Buffer): Promise<ToolKey> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(decryptAtRest(kek, row.privateKeySealed)) as JWK;
  } catch {
    // Wrong APP_SECRET (or a tampered row): say so plainly, this is an operator problem.
    throw new Error(`cannot decrypt LTI tool key ${row.kid}: APP_SECRET differs from the one that sealed it`);
  }
  const privateKey = (await importJWK(jwk, TOOL_KEY_ALG)) as CryptoKey;
  return { kid: row.kid, alg: TOOL_KEY_ALG, privateKey };
}

/**
 * The current signing key, decrypted once and cached; the cache is re-validated against the database every
 * minute so that a `keys rotate` run from the CLI is picked up by running instances.
 */
export class ToolKeyStore {
  #cached: { key: ToolKey; checkedAt: number } | undefined;
  #jwks: { value: { keys: JWK[] }; at: number } | undefined;
  constructor(
    private readonly db: Db,
    private readonly kek: Buffer,
    private readonly ttlMs = 60_000,
  ) {}

  async current(): Promise<ToolKey> {
    const now = Date.now();
    if (this.#cached && now - this.#cached.checkedAt < this.ttlMs) return this.#cached.key;
    const row = await findCurrentKey(this.db);
    if (!row) throw new Error('no current LTI tool key: the LTI plugin generates one at start');
    const key = this.#cached?.key.kid === row.kid ? this.#cached.key : await loadToolKey(row, this.kek);
    this.#cached = { key, checkedAt: now };
    return key;
  }

  /** Forget cached values (after an in-process rotation). */
  invalidate(): void {
    this.#cached = undefined;
    this.#jwks = undefined;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    const now = Date.now();
    if (this.#jwks && now - this.#jwks.at < this.ttlMs) return this.#jwks.value;
    const value = await publishedJwks(this.db, new Date(now));
    this.#jwks = { value, at: now };
    return value;
  }
}
