import { createHmac, randomBytes, randomUUID, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/index.js';
import * as repo from './repository.js';
import { CourseFilter, countInto, isUuid, type LmsEvent, readXapiStatement, statementProblem } from './rules.js';

/**
 * The xAPI statements endpoint's logic (xAPI 1.0.3, Communication part 2.1, Statement Resource):
 * credentials per LMS (secret hashed with scrypt), and the storing of one batch of statements — all of it
 * or nothing — keeping only the events of the courses this tool serves on that LMS.
 */

// ───────────────────────────── credentials ─────────────────────────────

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 } as const;

function scryptAsync(secret: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64url): what is stored instead of the secret. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(secret, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scryptAsync(secret, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 64 * 1024 * 1024,
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export class CredentialError extends Error {}

export interface NewCredential {
  key: string;
  /** Shown once, at creation; only its hash is stored. */
  secret: string;
  issuer: string;
  label: string | null;
}

/** A new credential for the statements of one LMS (a platform registered with the tool). */
export async function addCredential(db: Db, issuer: string, label: string | null = null): Promise<NewCredential> {
  const wanted = issuer.trim().replace(/\/+$/, '');
  const known = await repo.registeredIssuers(db);
  const match = known.find((i) => i.replace(/\/+$/, '') === wanted);
  if (!match) {
    throw new CredentialError(
      `no LMS registered with issuer "${issuer}"` +
        (known.length > 0 ? ` (registered: ${known.join(', ')})` : ' (no LMS is registered yet)'),
    );
  }
  const key = `lrs-${randomBytes(6).toString('hex')}`;
  const secret = randomBytes(24).toString('base64url');
  await repo.insertCredential(db, { key, secretHash: await hashSecret(secret), issuer: match, label });
  return { key, secret, issuer: match, label };
}

export const listCredentials = repo.listCredentials;

export async function revokeCredential(db: Db, key: string): Promise<boolean> {
  return repo.revokeCredential(db, key.trim());
}

/** An authenticated pusher: its credential and the course keys the tool knows on its LMS. */
export interface Pusher {
  credential: repo.CredentialRow;
  courses: string[];
}

/**
 * Checks Basic credentials. The credential row is read on every request (a revocation applies at once),
 * with the courses known on its LMS, in one query; scrypt runs once per secret and process: a secret
 * already verified against the same stored hash is recognised by an HMAC under a key of this process (so
 * a push of 20 batches a second costs no scrypt).
 */
export function credentialVerifier(db: Db, maxRemembered = 1000) {
  const processKey = randomBytes(32);
  const remembered = new Map<string, { stored: string; digest: Buffer }>();
  const digestOf = (secret: string) => createHmac('sha256', processKey).update(secret).digest();
  return async (key: string, secret: string): Promise<Pusher | null> => {
    const found = await repo.activeCredentialWithCourses(db, key);
    if (!found) return null;
    const { credential } = found;
    const digest = digestOf(secret);
    const known = remembered.get(credential.id);
    if (known && known.stored === credential.secretHash && timingSafeEqual(known.digest, digest)) return found;
    if (!(await verifySecret(secret, credential.secretHash))) return null;
    if (remembered.size >= maxRemembered) remembered.delete(remembered.keys().next().value as string);
    remembered.set(credential.id, { stored: credential.secretHash, digest });
    return found;
  };
}

// ───────────────────────────── statements ─────────────────────────────

export class StatementBatchError extends Error {
  constructor(
    message: string,
    readonly errors: Array<{ index: number; reason: string }>,
  ) {
    super(message);
  }
}

export interface StoredBatch {
  /** The statement ids, in the order received (assigned by the tool to statements without one). */
  ids: string[];
  inserted: number;
  duplicates: number;
  /** Statements of courses this tool does not serve on that LMS, or without a learner: not stored. */
  notKept: number;
}

/**
 * Stores one batch of statements pushed by an LMS, in one statement (see `storePushedBatch`): every statement is checked
 * first, and one bad statement refuses the whole batch (nothing stored). A statement without `id` gets
 * one, a statement without `timestamp` gets the time it was stored (xAPI 1.0.3, Data 2.4.1 and 2.4.7).
 * Statements already stored (same id) are left as they are: a batch sent again stores nothing new, and
 * the same statement arriving by file and by push is one event.
 */
export async function storeStatements(
  db: Db,
  pusher: Pusher,
  statements: readonly unknown[],
  now = new Date(),
): Promise<StoredBatch> {
  const errors: Array<{ index: number; reason: string }> = [];
  const seen = new Set<string>();
  statements.forEach((s, index) => {
    const problem = statementProblem(s);
    if (problem) errors.push({ index, reason: problem });
    const id = (s as { id?: unknown } | null)?.id;
    if (isUuid(id)) {
      if (seen.has(id.toLowerCase())) errors.push({ index, reason: `statement id ${id} appears twice in the batch` });
      seen.add(id.toLowerCase());
    }
  });
  if (errors.length > 0) throw new StatementBatchError(`${errors.length} statement(s) refused`, errors);

  const { credential } = pusher;
  const filter = new CourseFilter(pusher.courses);
  const ids: string[] = [];
  const events = new Map<string, LmsEvent>();
  const otherCourses = new Map<string, number>();
  let notKept = 0;
  for (const raw of statements) {
    const given = raw as Record<string, unknown>;
    const id = isUuid(given.id) ? given.id : randomUUID();
    ids.push(id);
    const statement = { ...given, id, timestamp: given.timestamp ?? now.toISOString() };
    const result = readXapiStatement(statement, '');
    if (result.kind === 'event' && filter.keeps(result.event.courseContextId)) {
      events.set(result.event.hash, result.event);
    } else {
      notKept++;
      if (result.kind === 'event') countInto(otherCourses, result.event.courseContextId);
    }
  }
  const { inserted } = await repo.storePushedBatch(db, {
    credentialId: credential.id,
    credentialKey: credential.key,
    issuer: credential.issuer,
    statements: statements.length,
    notKept,
    otherCourses: Object.fromEntries(otherCourses),
    events: [...events.values()],
  });
  return { ids, inserted, duplicates: events.size - inserted, notKept };
}
