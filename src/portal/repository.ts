import { type Insertable, type Selectable, sql } from 'kysely';
import type { Db } from '../db/index.js';
import type { AuditLogTable, AuditStatus, AuditVia, PortalRole, PortalUserTable } from './tables.js';

export type PortalUserRow = Selectable<PortalUserTable>;

export async function findUserByUsername(db: Db, username: string): Promise<PortalUserRow | undefined> {
  return db.selectFrom('portal_users').selectAll().where('username', '=', username).executeTakeFirst();
}

export async function findUserById(db: Db, id: string): Promise<PortalUserRow | undefined> {
  return db.selectFrom('portal_users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertUser(
  db: Db,
  user: {
    username: string;
    displayName: string;
    role: PortalRole;
    fundSlug: string | null;
    passwordHash: string;
    mustChangePassword: boolean;
  },
): Promise<PortalUserRow> {
  return db
    .insertInto('portal_users')
    .values({
      username: user.username,
      display_name: user.displayName,
      role: user.role,
      fund_slug: user.fundSlug,
      password_hash: user.passwordHash,
      must_change_password: user.mustChangePassword,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listUsers(db: Db): Promise<PortalUserRow[]> {
  return db.selectFrom('portal_users').selectAll().orderBy('fund_slug').orderBy('username').execute();
}

export async function setPassword(
  db: Db,
  userId: string,
  passwordHash: string,
  mustChangePassword: boolean,
): Promise<void> {
  await db
    .updateTable('portal_users')
    .set({
      password_hash: passwordHash,
      must_change_password: mustChangePassword,
      password_changed_at: sql<Date>`now()`,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', userId)
    .execute();
}

/** Rehash after sign-in: only touches the hash, not the "changed at" date the person sees. */
export async function replacePasswordHash(db: Db, userId: string, passwordHash: string): Promise<void> {
  await db.updateTable('portal_users').set({ password_hash: passwordHash }).where('id', '=', userId).execute();
}

export async function setDisabled(db: Db, userId: string, disabled: boolean): Promise<void> {
  await db
    .updateTable('portal_users')
    .set({ disabled_at: disabled ? sql<Date>`now()` : null, updated_at: sql<Date>`now()` })
    .where('id', '=', userId)
    .execute();
}

export async function fundExists(db: Db, slug: string): Promise<boolean | 'unknown'> {
  // The funds table belongs to the catalog capability; before it exists we cannot check.
  const exists = await sql<{ t: string | null }>`select to_regclass('public.funds')::text as t`.execute(db);
  if (!exists.rows[0]?.t) return 'unknown';
  const row = await sql<{ n: number }>`select count(*) as n from funds where slug = ${slug}`.execute(db);
  return (row.rows[0]?.n ?? 0) > 0;
}

export async function fundSlugs(db: Db): Promise<string[]> {
  const rows = await sql<{ slug: string }>`select slug from funds order by slug`.execute(db);
  return rows.rows.map((r) => r.slug);
}

// --- sessions -----------------------------------------------------------------------------------

export async function insertSession(db: Db, idHash: string, userId: string, expiresAt: Date): Promise<void> {
  await db.insertInto('portal_sessions').values({ id_hash: idHash, user_id: userId, expires_at: expiresAt }).execute();
}

export async function findSessionWithUser(db: Db, idHash: string) {
  return db
    .selectFrom('portal_sessions as s')
    .innerJoin('portal_users as u', 'u.id', 's.user_id')
    .select([
      's.id_hash',
      's.last_seen_at',
      's.expires_at',
      'u.id as user_id',
      'u.username',
      'u.display_name',
      'u.role',
      'u.fund_slug',
      'u.disabled_at',
      'u.must_change_password',
    ])
    .where('s.id_hash', '=', idHash)
    .executeTakeFirst();
}

export async function touchSession(db: Db, idHash: string): Promise<void> {
  await db
    .updateTable('portal_sessions')
    .set({ last_seen_at: sql<Date>`now()` })
    .where('id_hash', '=', idHash)
    .execute();
}

export async function deleteSession(db: Db, idHash: string): Promise<void> {
  await db.deleteFrom('portal_sessions').where('id_hash', '=', idHash).execute();
}

export async function deleteSessionsOfUser(db: Db, userId: string, exceptIdHash?: string): Promise<number> {
  let q = db.deleteFrom('portal_sessions').where('user_id', '=', userId);
  if (exceptIdHash) q = q.where('id_hash', '<>', exceptIdHash);
  const r = await q.executeTakeFirst();
  return Number(r.numDeletedRows);
}

export async function deleteExpiredSessions(db: Db): Promise<void> {
  await db.deleteFrom('portal_sessions').where('expires_at', '<', sql<Date>`now()`).execute();
}

// --- API tokens ---------------------------------------------------------------------------------

export async function insertToken(
  db: Db,
  token: { userId: string; name: string; tokenHash: string; prefix: string; expiresAt: Date | null },
) {
  return db
    .insertInto('api_tokens')
    .values({
      user_id: token.userId,
      name: token.name,
      token_hash: token.tokenHash,
      prefix: token.prefix,
      expires_at: token.expiresAt,
    })
    .returning(['id', 'created_at'])
    .executeTakeFirstOrThrow();
}

export async function findTokenWithUser(db: Db, tokenHash: string) {
  return db
    .selectFrom('api_tokens as t')
    .innerJoin('portal_users as u', 'u.id', 't.user_id')
    .select([
      't.id as token_id',
      't.expires_at',
      't.revoked_at',
      't.last_used_at',
      'u.id as user_id',
      'u.username',
      'u.display_name',
      'u.role',
      'u.fund_slug',
      'u.disabled_at',
    ])
    .where('t.token_hash', '=', tokenHash)
    .executeTakeFirst();
}

export async function touchToken(db: Db, tokenId: string): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: sql<Date>`now()` }).where('id', '=', tokenId).execute();
}

export async function listTokens(db: Db, userId: string) {
  return db
    .selectFrom('api_tokens')
    .select(['id', 'name', 'prefix', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'])
    .where('user_id', '=', userId)
    .orderBy('created_at', 'desc')
    .execute();
}

/** Revokes only a token of this user: another user's token id behaves as unknown. */
export async function revokeToken(db: Db, userId: string, tokenId: string): Promise<boolean> {
  const r = await db
    .updateTable('api_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('id', '=', tokenId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function revokeAllTokens(db: Db, userId: string): Promise<number> {
  const r = await db
    .updateTable('api_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

// --- sign-in throttling ---------------------------------------------------------------------------

/**
 * Counts one sign-in attempt under each key and returns every counter including it, in ONE statement:
 * an upsert that starts a new window when the stored one is over. PostgreSQL locks each row it upserts, so
 * concurrent attempts on any connection or instance are serialised per key and each reads its own count.
 * Keys are sorted, so two statements always lock shared rows in the same order (no deadlock).
 */
export async function countLoginAttempt(db: Db, keys: string[], windowMs: number): Promise<Map<string, number>> {
  const sorted = [...new Set(keys)].sort();
  const expired = sql<boolean>`portal_login_counters.window_start <= now() - make_interval(secs => ${windowMs / 1000})`;
  const rows = await db
    .insertInto('portal_login_counters')
    .values(sorted.map((key) => ({ key, count: 1 })))
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        count: sql<number>`case when ${expired} then 1 else portal_login_counters.count + 1 end`,
        window_start: sql<Date>`case when ${expired} then now() else portal_login_counters.window_start end`,
      }),
    )
    .returning(['key', 'count'])
    .execute();
  return new Map(rows.map((r) => [r.key, Number(r.count)]));
}

/** After a successful sign-in: its own attempt no longer counts, and `resetKeys` start again from zero. */
export async function releaseLoginAttempt(db: Db, keys: string[], resetKeys: string[]): Promise<void> {
  const sorted = [...new Set(keys)].sort();
  await db
    .updateTable('portal_login_counters')
    .set({
      count: sql<number>`case when key in (${sql.join(resetKeys.length ? resetKeys : [''])}) then 0 else greatest(count - 1, 0) end`,
    })
    .where('key', 'in', sorted)
    .execute();
}

/** Housekeeping: counters whose window is long over. */
export async function deleteStaleLoginCounters(db: Db, windowMs: number): Promise<void> {
  await db
    .deleteFrom('portal_login_counters')
    .where('window_start', '<', sql<Date>`now() - make_interval(secs => ${windowMs / 1000})`)
    .execute();
}

// --- audit --------------------------------------------------------------------------------------

export interface AuditInsert {
  actorUserId: string | null;
  actorUsername: string;
  actorRole: string;
  actorFundSlug: string | null;
  via: AuditVia;
  tokenId: string | null;
  action: string;
  details: Record<string, unknown>;
  status: AuditStatus;
  rowCount?: number | null;
  expectedRows?: number | null;
  progressTicket?: string | null;
}

export async function insertAudit(db: Db, entry: AuditInsert): Promise<string> {
  const values: Insertable<AuditLogTable> = {
    actor_user_id: entry.actorUserId,
    actor_username: entry.actorUsername,
    actor_role: entry.actorRole,
    actor_fund_slug: entry.actorFundSlug,
    via: entry.via,
    token_id: entry.tokenId,
    action: entry.action,
    details: JSON.stringify(entry.details),
    status: entry.status,
    row_count: entry.rowCount ?? null,
    expected_rows: entry.expectedRows ?? null,
    progress_ticket: entry.progressTicket ?? null,
    ...(entry.status !== 'started' ? { finished_at: sql<Date>`now()` as unknown as Date } : {}),
  };
  const row = await db.insertInto('audit_log').values(values).returning('id').executeTakeFirstOrThrow();
  return row.id;
}

export async function updateAuditProgress(db: Db, id: string, rowCount: number): Promise<void> {
  await db.updateTable('audit_log').set({ row_count: rowCount }).where('id', '=', id).execute();
}

export async function setAuditExpected(db: Db, id: string, expectedRows: number): Promise<void> {
  await db.updateTable('audit_log').set({ expected_rows: expectedRows }).where('id', '=', id).execute();
}

export async function finishAudit(
  db: Db,
  id: string,
  status: AuditStatus,
  rowCount: number,
  extra?: Record<string, unknown>,
): Promise<void> {
  await db
    .updateTable('audit_log')
    .set({
      status,
      row_count: rowCount,
      finished_at: sql<Date>`now()`,
      ...(extra ? { details: sql<string>`details || ${JSON.stringify(extra)}::jsonb` } : {}),
    })
    .where('id', '=', id)
    .execute();
}

export async function findAuditByTicket(db: Db, userId: string, ticket: string) {
  return db
    .selectFrom('audit_log')
    .select(['id', 'status', 'row_count', 'expected_rows', 'details'])
    .where('progress_ticket', '=', ticket)
    .where('actor_user_id', '=', userId)
    .orderBy('at', 'desc')
    .executeTakeFirst();
}

export async function listAudit(
  db: Db,
  options: { limit: number; fundSlug?: string | null; action?: string | undefined; actions?: readonly string[] },
) {
  let q = db
    .selectFrom('audit_log')
    .select([
      'id',
      'at',
      'actor_username',
      'actor_role',
      'actor_fund_slug',
      'via',
      'action',
      'details',
      'row_count',
      'status',
      'finished_at',
    ])
    .orderBy('at', 'desc')
    .limit(options.limit);
  if (options.fundSlug) q = q.where('actor_fund_slug', '=', options.fundSlug);
  if (options.action) q = q.where('action', '=', options.action);
  if (options.actions) q = q.where('action', 'in', [...options.actions]);
  return q.execute();
}
