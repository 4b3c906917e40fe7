import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { decryptAtRest, deriveKey, encryptAtRest } from '../config/secrets.js';
import type { Db } from '../db/index.js';
import { canonicalJson } from './rules.js';

/**
 * The tool's certificate signing key: Ed25519 (RFC 8032), generated on first use, its private half
 * stored sealed with a key derived from APP_SECRET. Retired keys stay published so that every
 * certificate ever issued keeps verifying.
 */
export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: PublicJwk;
}

export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}

export interface PublishedKey extends PublicJwk {
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
  status: 'current' | 'retired';
  created_at: string;
  retired_at: string | null;
}

const SEAL_PURPOSE = 'certificate-signing-key';
const cache = new WeakMap<object, SigningKey>();

/** RFC 7638 thumbprint: SHA-256 of the required members, in lexicographic order. */
export function jwkThumbprint(jwk: PublicJwk): string {
  return createHash('sha256')
    .update(canonicalJson({ crv: jwk.crv, kty: jwk.kty, x: jwk.x }))
    .digest('base64url');
}

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

export function signText(privateKey: KeyObject, text: string): string {
  return sign(null, Buffer.from(text, 'utf8'), privateKey).toString('base64url');
}

export function verifyText(jwk: PublicJwk, text: string, signature: string): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  try {
    const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
    return verify(null, Buffer.from(text, 'utf8'), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

function generate(appSecret: string): {
  row: { kid: string; public_jwk: PublicJwk; private_key_sealed: string };
  key: SigningKey;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const exported = publicKey.export({ format: 'jwk' }) as { x?: string };
  const publicJwk: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: exported.x as string };
  const kid = jwkThumbprint(publicJwk);
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  return {
    row: { kid, public_jwk: publicJwk, private_key_sealed: encryptAtRest(deriveKey(appSecret, SEAL_PURPOSE), pem) },
    key: { kid, privateKey, publicJwk },
  };
}

/** The current key, created when there is none (two instances racing: the unique index picks one). */
export async function currentSigningKey(db: Db, appSecret: string): Promise<SigningKey> {
  const cached = cache.get(db);
  if (cached) return cached;
  for (let attempt = 0; attempt < 3; attempt++) {
    const row = await db
      .selectFrom('certificate_signing_keys')
      .select(['kid', 'public_jwk', 'private_key_sealed'])
      .where('status', '=', 'current')
      .executeTakeFirst();
    if (row) {
      const pem = decryptAtRest(deriveKey(appSecret, SEAL_PURPOSE), row.private_key_sealed);
      const key = { kid: row.kid, privateKey: createPrivateKey(pem), publicJwk: row.public_jwk };
      cache.set(db, key);
      return key;
    }
    const fresh = generate(appSecret);
    try {
      await db
        .insertInto('certificate_signing_keys')
        .values({
          ...fresh.row,
          public_jwk: JSON.stringify(fresh.row.public_jwk),
          alg: 'Ed25519',
          status: 'current',
        })
        .execute();
      cache.set(db, fresh.key);
      return fresh.key;
    } catch {
      // Another instance created the current key first: read it.
    }
  }
  throw new Error('could not obtain a certificate signing key');
}

/** Retires the current key and creates a new one; certificates signed before keep verifying. */
export async function rotateSigningKey(db: Db, appSecret: string): Promise<string> {
  const fresh = generate(appSecret);
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('certificate_signing_keys')
      .set({ status: 'retired', retired_at: new Date() })
      .where('status', '=', 'current')
      .execute();
    await trx
      .insertInto('certificate_signing_keys')
      .values({
        ...fresh.row,
        public_jwk: JSON.stringify(fresh.row.public_jwk),
        alg: 'Ed25519',
        status: 'current',
      })
      .execute();
  });
  cache.delete(db);
  return fresh.key.kid;
}

export async function publishedKeys(db: Db): Promise<PublishedKey[]> {
  const rows = await db
    .selectFrom('certificate_signing_keys')
    .select(['kid', 'public_jwk', 'status', 'created_at', 'retired_at'])
    .orderBy('created_at')
    .execute();
  return rows.map((r) => ({
    kid: r.kid,
    kty: 'OKP',
    crv: 'Ed25519',
    x: r.public_jwk.x,
    alg: 'EdDSA',
    use: 'sig',
    status: r.status,
    created_at: r.created_at.toISOString(),
    retired_at: r.retired_at ? r.retired_at.toISOString() : null,
  }));
}

export async function publicKeyFor(db: Db, kid: string): Promise<PublicJwk | null> {
  const row = await db
    .selectFrom('certificate_signing_keys')
    .select('public_jwk')
    .where('kid', '=', kid)
    .executeTakeFirst();
  return row?.public_jwk ?? null;
}
