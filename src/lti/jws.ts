import { constants, type KeyObject, verify } from 'node:crypto';
import type { AllowedAlgorithm } from './rules.js';

/**
 * The id_token's signature (RFC 7515 compact JWS, RFC 7518 §3.3 and §3.5), verified synchronously with
 * node:crypto. Through WebCrypto (jose's `compactVerify`) the same RSA verification is an asynchronous crypto
 * job costing several times the CPU, once per launch. Same rules as jose: a `crit` header is refused (this
 * tool understands no extension), RSA keys under 2048 bits are refused, PSS uses a salt as long as the hash.
 */
const HASH: Record<AllowedAlgorithm, string> = {
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
};

const MIN_RSA_MODULUS_BITS = 2048;

/**
 * True when `signature` (base64url) is the signature of `signingInput` (the first two parts as received)
 * under `key` with `alg`. The caller checked the three parts' base64url alphabet and the alg allow-list.
 */
export function verifyJwsSignature(
  header: Record<string, unknown>,
  signingInput: string,
  signature: string,
  key: KeyObject,
  alg: AllowedAlgorithm,
): boolean {
  if ('crit' in header) return false;
  if (key.asymmetricKeyType !== 'rsa') return false;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_MODULUS_BITS) return false;
  const bytes = Buffer.from(signature, 'base64url');
  // The base64url alphabet was checked, but trailing bits could still make two strings decode alike: only
  // the canonical encoding of the signature is accepted.
  if (bytes.toString('base64url') !== signature) return false;
  const pss = alg.startsWith('PS');
  try {
    return verify(
      HASH[alg],
      Buffer.from(signingInput),
      pss
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : { key, padding: constants.RSA_PKCS1_PADDING },
      bytes,
    );
  } catch {
    return false;
  }
}
