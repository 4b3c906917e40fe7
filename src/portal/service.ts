import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { stripSpoofingCharacters } from '../common/text.js';
import type { Db } from '../db/index.js';
import { BadRequestError, ConflictError, NotFoundError, TooManyRequestsError } from '../http/errors.js';
import * as repo from './repository.js';
import {
  API_TOKEN_PREFIX,
  encodePasswordHash,
  isApiTokenShape,
  isValidUsername,
  LOGIN_WINDOW_MS,
  loginCounterKeys,
  loginThrottled,
  needsRehash,
  normaliseUsername,
  type Principal,
  parsePasswordHash,
  passwordProblems,
  SCRYPT_PARAMS,
  SCRYPT_SALT_BYTES,
  type ScryptParams,
  SESSION_ABSOLUTE_MS,
  scryptMaxMem,
  sessionState,
  sha256,
  shouldTouchSession,
  tokenDisplayPrefix,
} from './rules.js';
import type { AuditVia, PortalRole } from './tables.js';

// ---------------------------------------------------------------------------------------------
// Passwords

function scryptAsync(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFC'),
      salt,
      params.keyLength,
      { N: params.N, r: params.r, p: params.p, maxmem: scryptMaxMem(params) },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

export async function hashPassword(password: string, params: ScryptParams = SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SCRYPT_SALT_BYTES);
  return encodePasswordHash(params, salt, await scryptAsync(password, salt, params));
}

export async function verifyPassword(password: string, stored: string): Promise<{ ok: boolean; rehash: boolean }> {
  const parsed = parsePasswordHash(stored);
  if (!parsed) return { ok: false, rehash: false };
  const candidate = await scryptAsync(password, parsed.salt, parsed.params);
  const ok = candidate.length === parsed.hash.length && timingSafeEqual(candidate, parsed.hash);
  return { ok, rehash: ok && needsRehash(parsed) };
}

let dummyHash: Promise<string> | undefined;
/** Hashing for unknown usernames too keeps the answer time from telling which accounts exist. */
function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
  return dummyHash;
}

/** A password handed out once (creation, reset): 120 random bits, easy to copy. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Accounts (the CLI and the operators' page)

export interface NewUser {
  username: string;
  displayName: string;
  role: PortalRole;
  fundSlug: string | null;
  /** When absent a random one is generated, returned once and must be changed at first sign-in. */
  password?: string;
}

export async function createUser(db: Db, input: NewUser) {
  const username = normaliseUsername(input.username);
  if (!isValidUsername(username)) {
    throw new BadRequestError(
      'invalid_username',
      'Identifiant non valable (3 à 120 caractères : a-z, 0-9, . _ @ + -).',
    );
  }
  if (input.role === 'fund_staff' && !input.fundSlug) {
    throw new BadRequestError('fund_required', 'Un compte de fonds doit être rattaché à un fonds.');
  }
  if (input.role === 'operator' && input.fundSlug) {
    throw new BadRequestError('fund_not_allowed', 'Un compte opérateur voit tous les fonds : ne donnez pas de fonds.');
  }
  if (input.fundSlug && (await repo.fundExists(db, input.fundSlug)) === false) {
    const known = await repo.fundSlugs(db);
    throw new BadRequestError(
      'unknown_fund',
      known.length > 0
        ? `Fonds inconnu : ${input.fundSlug}. Fonds connus : ${known.join(', ')}.`
        : `Fonds inconnu : ${input.fundSlug}. Aucun fonds n’est encore importé : lancez « npm run content -- import ».`,
    );
  }
  const generated = input.password === undefined ? generatePassword() : undefined;
  const password = input.password ?? (generated as string);
  const problems = passwordProblems(password, username);
  if (problems.length > 0) throw new BadRequestError('weak_password', problems.join(' '));
  if (await repo.findUserByUsername(db, username)) {
    throw new ConflictError('username_taken', 'Cet identifiant est déjà utilisé.');
  }
  const user = await repo.insertUser(db, {
    username,
    displayName: stripSpoofingCharacters(input.displayName).trim() || username,
    role: input.role,
    fundSlug: input.fundSlug,
    passwordHash: await hashPassword(password),
    mustChangePassword: generated !== undefined,
  });
  return { user, generatedPassword: generated };
}

export async function requireUser(db: Db, username: string) {
  const user = await repo.findUserByUsername(db, normaliseUsername(username));
  if (!user) throw new NotFoundError('unknown_user', 'Compte introuvable.');
  return user;
}

/**
 * Reset by an operator: a new random password, shown once, to be changed at the next sign-in; every
 * open session of the account ends (the reason for a reset is often a leak).
 */
export async function resetPassword(db: Db, username: string): Promise<{ userId: string; password: string }> {
  const user = await requireUser(db, username);
  const password = generatePassword();
  await repo.setPassword(db, user.id, await hashPassword(password), true);
  await repo.deleteSessionsOfUser(db, user.id);
  return { userId: user.id, password };
}

export async function setUserDisabled(db: Db, username: string, disabled: boolean): Promise<string> {
  const user = await requireUser(db, username);
  await repo.setDisabled(db, user.id, disabled);
  if (disabled) await repo.deleteSessionsOfUser(db, user.id);
  return user.id;
}

export async function changeOwnPassword(db: Db, principal: Principal, current: string, next: string): Promise<void> {
  const user = await repo.findUserById(db, principal.userId);
  if (!user) throw new NotFoundError('unknown_user');
  if (!(await verifyPassword(current, user.password_hash)).ok) {
    throw new BadRequestError('wrong_password', 'Le mot de passe actuel n’est pas le bon.');
  }
  const problems = passwordProblems(next, user.username);
  if (current === next) problems.push('Choisissez un mot de passe différent de l’actuel.');
  if (problems.length > 0) throw new BadRequestError('weak_password', problems.join(' '));
  await repo.setPassword(db, user.id, await hashPassword(next), false);
  // Other browsers signed in with the old password are signed out; this one stays.
  await repo.deleteSessionsOfUser(db, user.id, principal.sessionHash ?? undefined);
}

// ---------------------------------------------------------------------------------------------
// Sign-in and sessions

export type LoginResult = { ok: true; userId: string; mustChangePassword: boolean } | { ok: false; reason: 'invalid' };

/**
 * Checks the throttle before hashing (a throttled address costs us no scrypt), then the password.
 * Disabled and unknown accounts fail exactly like a wrong password.
 */
export async function login(db: Db, input: { username: string; password: string; ip: string }): Promise<LoginResult> {
  const username = normaliseUsername(input.username).slice(0, 200);
  const keys = loginCounterKeys(username, input.ip);
  // Counted before anything is evaluated (a throttled attempt costs us no scrypt), atomically.
  const counts = await repo.countLoginAttempt(db, Object.values(keys), LOGIN_WINDOW_MS);
  if (
    loginThrottled({
      accountIp: counts.get(keys.accountIp) ?? 0,
      ip: counts.get(keys.ip) ?? 0,
      account: counts.get(keys.account) ?? 0,
    })
  ) {
    await auditRefusedSignIn(db, username, input.ip, 'throttled');
    throw new TooManyRequestsError(
      'login_throttled',
      'Trop d’essais de connexion. Patientez un quart d’heure avant de réessayer, ou demandez une réinitialisation.',
    );
  }
  const user = await repo.findUserByUsername(db, username);
  const password = input.password.slice(0, 1000);
  const check = await verifyPassword(password, user?.password_hash ?? (await dummyPasswordHash()));
  if (!user || !check.ok || user.disabled_at !== null) {
    await auditRefusedSignIn(db, username, input.ip, 'invalid', user);
    return { ok: false, reason: 'invalid' };
  }
  // This attempt was not a failure; this account's failures from this address no longer count.
  await repo.releaseLoginAttempt(db, Object.values(keys), [keys.accountIp]);
  if (check.rehash) await repo.replacePasswordHash(db, user.id, await hashPassword(password));
  return { ok: true, userId: user.id, mustChangePassword: user.must_change_password };
}

/**
 * Every refused sign-in goes to the audit log (kept like the download journal): the username as typed
 * (normalised; it may match no account), the address, and why. An existing account's fund is recorded so
 * that its fund's staff see attempts on their accounts in the portal's journal.
 */
async function auditRefusedSignIn(
  db: Db,
  username: string,
  ip: string,
  reason: 'invalid' | 'throttled',
  known?: repo.PortalUserRow,
): Promise<void> {
  const user = known ?? (await repo.findUserByUsername(db, username));
  const shown = stripSpoofingCharacters(username).slice(0, 200);
  await auditEvent(
    db,
    {
      userId: user?.id ?? null,
      username: shown,
      role: 'anonymous',
      fundSlug: user?.fund_slug ?? null,
      via: 'signin',
      tokenId: null,
    },
    'signin.refused',
    { username: shown, ip, reason },
  );
}

/** Opens a server-side session; the returned value goes in the cookie and is stored only hashed. */
export async function openSession(db: Db, userId: string): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  await repo.insertSession(db, sha256(id), userId, new Date(Date.now() + SESSION_ABSOLUTE_MS));
  // Housekeeping on sign-in keeps the table small without a scheduler.
  await repo.deleteExpiredSessions(db);
  await repo.deleteStaleLoginCounters(db, LOGIN_WINDOW_MS);
  return id;
}

export interface SessionPrincipal extends Principal {
  mustChangePassword: boolean;
}

export async function resolveSession(db: Db, cookieValue: string | undefined): Promise<SessionPrincipal | null> {
  if (!cookieValue || cookieValue.length > 100) return null;
  const idHash = sha256(cookieValue);
  const row = await repo.findSessionWithUser(db, idHash);
  if (!row) return null;
  const now = new Date();
  if (
    row.disabled_at !== null ||
    sessionState({ lastSeenAt: row.last_seen_at, expiresAt: row.expires_at }, now) !== 'valid'
  ) {
    await repo.deleteSession(db, idHash);
    return null;
  }
  if (shouldTouchSession(row.last_seen_at, now)) await repo.touchSession(db, idHash);
  return {
    userId: row.user_id,
    username: row.username,
    displayName: row.display_name,
    role: row.role,
    fundSlug: row.fund_slug,
    via: 'session',
    tokenId: null,
    sessionHash: idHash,
    mustChangePassword: row.must_change_password,
  };
}

export async function closeSession(db: Db, cookieValue: string | undefined): Promise<void> {
  if (cookieValue) await repo.deleteSession(db, sha256(cookieValue));
}

// ---------------------------------------------------------------------------------------------
// API tokens

export async function createToken(
  db: Db,
  userId: string,
  name: string,
  expiresInDays: number | null,
): Promise<{ id: string; token: string; prefix: string }> {
  const cleanName = name.trim().slice(0, 100);
  if (!cleanName)
    throw new BadRequestError('token_name_required', 'Donnez un nom au jeton (par exemple : « script mensuel »).');
  if (expiresInDays !== null && (!Number.isInteger(expiresInDays) || expiresInDays < 1 || expiresInDays > 3650)) {
    throw new BadRequestError('invalid_expiry', 'La durée de validité doit être de 1 à 3 650 jours.');
  }
  const token = `${API_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const prefix = tokenDisplayPrefix(token);
  const row = await repo.insertToken(db, {
    userId,
    name: cleanName,
    tokenHash: sha256(token),
    prefix,
    expiresAt: expiresInDays === null ? null : new Date(Date.now() + expiresInDays * 86_400_000),
  });
  return { id: row.id, token, prefix };
}

export async function resolveToken(db: Db, token: string): Promise<Principal | null> {
  if (!isApiTokenShape(token)) return null;
  const row = await repo.findTokenWithUser(db, sha256(token));
  if (!row || row.revoked_at !== null || row.disabled_at !== null) return null;
  if (row.expires_at !== null && row.expires_at.getTime() <= Date.now()) return null;
  if (!row.last_used_at || shouldTouchSession(row.last_used_at, new Date())) await repo.touchToken(db, row.token_id);
  return {
    userId: row.user_id,
    username: row.username,
    displayName: row.display_name,
    role: row.role,
    fundSlug: row.fund_slug,
    via: 'token',
    tokenId: row.token_id,
    sessionHash: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Audit

export interface AuditActor {
  userId: string | null;
  username: string;
  role: string;
  fundSlug: string | null;
  via: AuditVia;
  tokenId: string | null;
}

export function actorOf(principal: Principal): AuditActor {
  return {
    userId: principal.userId,
    username: principal.username,
    role: principal.role,
    fundSlug: principal.fundSlug,
    via: principal.via,
    tokenId: principal.tokenId,
  };
}

export const CLI_ACTOR: AuditActor = {
  userId: null,
  username: 'cli',
  role: 'cli',
  fundSlug: null,
  via: 'cli',
  tokenId: null,
};

/** A one-shot event (account created, token revoked, …). */
export async function auditEvent(
  db: Db,
  actor: AuditActor,
  action: string,
  details: Record<string, unknown>,
): Promise<void> {
  await repo.insertAudit(db, {
    actorUserId: actor.userId,
    actorUsername: actor.username,
    actorRole: actor.role,
    actorFundSlug: actor.fundSlug,
    via: actor.via,
    tokenId: actor.tokenId,
    action,
    details,
    status: 'done',
  });
}

// --- reads for the portal's pages (the routes reach the data through this service) ----------------

/** A person's API tokens, for « Mes jetons ». */
export function listTokens(db: Db, userId: string): ReturnType<typeof repo.listTokens> {
  return repo.listTokens(db, userId);
}

/** Revokes one of a person's tokens: false when it is not theirs or already revoked. */
export function revokeToken(db: Db, userId: string, tokenId: string): Promise<boolean> {
  return repo.revokeToken(db, userId, tokenId);
}

/** Every account, for the operators' « Comptes » page. */
export function listUsers(db: Db): ReturnType<typeof repo.listUsers> {
  return repo.listUsers(db);
}

export function findUserById(db: Db, id: string): ReturnType<typeof repo.findUserById> {
  return repo.findUserById(db, id);
}

/** The audit log's entries, newest first, for the « Journal » page. */
export function listAudit(db: Db, options: Parameters<typeof repo.listAudit>[1]): ReturnType<typeof repo.listAudit> {
  return repo.listAudit(db, options);
}
