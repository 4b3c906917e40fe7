import { createHash, createPublicKey, verify } from 'node:crypto';

/**
 * Tamper evidence (docs/time-accounting.md, "Evidence"): every learner's records form a chain where
 * each hash is SHA-256(previous hash + canonical JSON of the record), and every run row carries a rolling
 * hash over the beats it absorbed. Pure functions: the ingest, the CLI verifier and the bench share them.
 */

/** The hash a chain (or a run's rolling hash) starts from. */
export const GENESIS_HASH = '0'.repeat(64);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

/**
 * JSON with object keys sorted at every level and no whitespace, so that the same record always hashes
 * the same whatever the order its fields were built in. `undefined` members are dropped (as JSON.stringify
 * does); non-finite numbers are refused because JSON cannot carry them faithfully.
 */
export function canonicalJson(value: Json | undefined): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('canonicalJson: non-finite number');
    return JSON.stringify(value);
  }
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** One link: SHA-256 of the previous hash (hex) followed by the record's canonical JSON. */
export function chainHash(previousHash: string, record: Json): string {
  return sha256Hex(previousHash + canonicalJson(record));
}

/** The hashed form of a stored evidence record (tracking_events); built from its columns, nothing else. */
export interface EvidenceRecord {
  learnerId: string;
  index: number;
  kind: string;
  courseId: string | null;
  moduleId: string | null;
  tabId: string | null;
  seq: number | null;
  at: string;
  clientTime: string | null;
  reason: string | null;
  data: Json;
}

export function evidenceHash(previousHash: string, record: EvidenceRecord): string {
  return chainHash(previousHash, { v: 1, ...record } as unknown as Json);
}

/** The hashed form of an accepted beat, folded into its run's rolling hash (beats are not stored one by one). */
export interface BeatRecord {
  tabId: string;
  seq: number;
  at: string;
  clientTime: string | null;
  inputAgoMs: number | null;
  media: boolean;
  cause: string;
}

export function beatHash(previousHash: string, beat: BeatRecord): string {
  return chainHash(previousHash, { v: 1, ...beat } as unknown as Json);
}

export interface ChainBreak {
  index: number;
  problem: 'index' | 'previous_hash' | 'hash';
}

/**
 * Walks a learner's records in index order and names the first that does not link. A record whose personal
 * fields were reduced (docs/privacy.md, "Evidence after minimisation and erasure") no longer hashes to its
 * stored hash; `attested` accepts it when a signed redaction binds its place in the chain (prev_hash, hash) to
 * its reduced content. The links themselves are always checked, so the heads and the daily digests stay as
 * they were.
 */
export function verifyChain(
  records: ReadonlyArray<{ record: EvidenceRecord; prevHash: string; hash: string }>,
  attested?: (r: { record: EvidenceRecord; prevHash: string; hash: string }) => boolean,
): ChainBreak | null {
  let previous = GENESIS_HASH;
  let expectedIndex = 1;
  for (const r of records) {
    if (r.record.index !== expectedIndex) return { index: r.record.index, problem: 'index' };
    if (r.prevHash !== previous) return { index: r.record.index, problem: 'previous_hash' };
    if (evidenceHash(previous, r.record) !== r.hash && !attested?.(r)) {
      return { index: r.record.index, problem: 'hash' };
    }
    previous = r.hash;
    expectedIndex++;
  }
  return null;
}

/** What a redaction of an evidence record signs: its place in the chain and its content once reduced. */
export function redactionStatement(r: {
  learnerId: string;
  index: number;
  prevHash: string;
  hash: string;
  record: EvidenceRecord;
  rule: string;
  redactedAt: string;
}): string {
  return canonicalJson({
    v: 1,
    type: 'evidence-redaction',
    learnerId: r.learnerId,
    index: r.index,
    prevHash: r.prevHash,
    hash: r.hash,
    record: { v: 1, ...r.record } as unknown as Json,
    rule: r.rule,
    redactedAt: r.redactedAt,
  });
}

/** Ed25519 (RFC 8032) over UTF-8 text with a public JWK, base64url signature; false on any malformed input. */
export function verifyEd25519(jwk: { kty: string; crv: string; x: string }, text: string, signature: string): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  try {
    const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
    return verify(null, Buffer.from(text, 'utf8'), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

export type { Json };
