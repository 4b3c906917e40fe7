// One file: every statement on the LTI tables shares the registration row mapping (toRegistration).
import { CompiledQuery, sql } from 'kysely';
import type { Db } from '../db/index.js';
import type { RegistrationInput } from './rules.js';
import type { LaunchRole } from './tables.js';

/** A platform registration as the LTI code uses it (LTI Core §3.1.3). */
export interface Registration extends RegistrationInput {
  id: string;
  source: string;
  removedAt: Date | null;
}

type RegistrationRow = {
  id: string;
  name: string;
  issuer: string;
  client_id: string;
  deployment_ids: string[];
  auth_login_url: string;
  access_token_url: string;
  jwks_url: string;
  source: string;
  removed_at: Date | null;
};

function toRegistration(r: RegistrationRow): Registration {
  return {
    id: r.id,
    name: r.name,
    issuer: r.issuer,
    clientId: r.client_id,
    deploymentIds: r.deployment_ids,
    authLoginUrl: r.auth_login_url,
    accessTokenUrl: r.access_token_url,
    jwksUrl: r.jwks_url,
    source: r.source,
    removedAt: r.removed_at,
  };
}

const REGISTRATION_COLUMNS = [
  'id',
  'name',
  'issuer',
  'client_id',
  'deployment_ids',
  'auth_login_url',
  'access_token_url',
  'jwks_url',
  'source',
  'removed_at',
] as const;

export async function findActiveRegistration(db: Db, issuer: string, clientId: string): Promise<Registration | null> {
  const row = await db
    .selectFrom('lti_registrations')
    .select(REGISTRATION_COLUMNS)
    .where('issuer', '=', issuer)
    .where('client_id', '=', clientId)
    .where('removed_at', 'is', null)
    .executeTakeFirst();
  return row ? toRegistration(row) : null;
}

export async function findRegistrationById(db: Db, id: string): Promise<Registration | null> {
  const row = await db
    .selectFrom('lti_registrations')
    .select(REGISTRATION_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row ? toRegistration(row) : null;
}

export async function listRegistrations(db: Db): Promise<Registration[]> {
  const rows = await db
    .selectFrom('lti_registrations')
    .select(REGISTRATION_COLUMNS)
    .orderBy('issuer')
    .orderBy('name')
    .execute();
  return rows.map(toRegistration);
}

/** Inserts or updates by (issuer, client_id) and clears any removal mark. */
export async function upsertRegistration(
  db: Db,
  reg: RegistrationInput,
  source: 'file' | 'cli',
): Promise<Registration> {
  const row = await db
    .insertInto('lti_registrations')
    .values({
      name: reg.name,
      issuer: reg.issuer,
      client_id: reg.clientId,
      deployment_ids: JSON.stringify(reg.deploymentIds),
      auth_login_url: reg.authLoginUrl,
      access_token_url: reg.accessTokenUrl,
      jwks_url: reg.jwksUrl,
      source,
    })
    .onConflict((oc) =>
      oc.columns(['issuer', 'client_id']).doUpdateSet((eb) => ({
        name: eb.ref('excluded.name'),
        deployment_ids: eb.ref('excluded.deployment_ids'),
        auth_login_url: eb.ref('excluded.auth_login_url'),
        access_token_url: eb.ref('excluded.access_token_url'),
        jwks_url: eb.ref('excluded.jwks_url'),
        source: eb.ref('excluded.source'),
        removed_at: null,
        updated_at: sql<Date>`now()`,
      })),
    )
    .returning(REGISTRATION_COLUMNS)
    .executeTakeFirstOrThrow();
  return toRegistration(row);
}

/** Marks file-sourced registrations that are no longer in the file as removed; returns their names. */
export async function removeFileRegistrationsNotIn(db: Db, keep: RegistrationInput[]): Promise<string[]> {
  const active = await db
    .selectFrom('lti_registrations')
    .select(['id', 'name', 'issuer', 'client_id'])
    .where('source', '=', 'file')
    .where('removed_at', 'is', null)
    .execute();
  const kept = new Set(keep.map((k) => `${k.issuer}\u0000${k.clientId}`));
  const gone = active.filter((r) => !kept.has(`${r.issuer}\u0000${r.client_id}`));
  if (gone.length > 0) {
    await db
      .updateTable('lti_registrations')
      .set({ removed_at: sql<Date>`now()`, updated_at: sql<Date>`now()` })
      .where(
        'id',
        'in',
        gone.map((g) => g.id),
      )
      .execute();
  }
  return gone.map((g) => g.name);
}

export async function markRegistrationRemoved(db: Db, id: string): Promise<void> {
  await db
    .updateTable('lti_registrations')
    .set({ removed_at: sql<Date>`now()`, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute();
}

// --- Nonces (Security Framework §5.1.3 item 9; docs/openedx-lti.md, pitfall 2: issued by the tool, used once) ---

/**
 * Login initiation in one statement: finds the active registrations of `issuer` (of `clientId` when the
 * platform sent one) and, when exactly one matches and it knows `deploymentId` (when one was sent), stores
 * the nonce for it. The caller still judges the rows; a nonce stored for a login refused later is never
 * revealed, so it cannot be used, and is purged with the others.
 */
export async function findRegistrationAndIssueNonce(
  db: Db,
  login: { issuer: string; clientId: string | null; deploymentId: string | null },
  nonce: string,
  expiresAt: Date,
): Promise<Registration[]> {
  const { rows } = await db.executeQuery<RegistrationRow>(
    CompiledQuery.raw(ISSUE_NONCE, [login.issuer, login.clientId, login.deploymentId, nonce, expiresAt]),
  );
  return rows.map(toRegistration);
}

/** `findRegistrationAndIssueNonce`'s statement, fixed text: $1 issuer, $2 client_id, $3 deployment, $4 nonce, $5 expiry. */
const ISSUE_NONCE = `
  with reg as (
    select ${REGISTRATION_COLUMNS.join(', ')}
    from lti_registrations
    where issuer = $1
      and ($2::text is null or client_id = $2::text)
      and removed_at is null
    limit 2
  ), issued as (
    insert into lti_nonces (nonce, registration_id, expires_at)
    select $4, id, $5::timestamptz from reg
    where (select count(*) from reg) = 1
      and ($3::text is null or deployment_ids @> jsonb_build_array($3::text))
    returning registration_id
  )
  select * from reg`;

/** What the launch validation relied on in a registration (read from a cache or from the database). */
export interface RegistrationUsed {
  id: string;
  issuer: string;
  clientId: string;
  jwksUrl: string;
  deploymentId: string;
}

export type NonceConsumption =
  | {
      outcome: 'consumed';
      registration: Registration;
      recorded: RecordedLaunch | null;
      /** With a record: issuer and authorization endpoint of every active registration, read by the same statement. */
      platformUrls: string[] | null;
    }
  | { outcome: 'unknown' | 'used' | 'expired' }
  | { outcome: 'registration_removed' | 'registration_changed' };

/** What recording a launch created or found (see `LaunchRecordInput`). */
export interface RecordedLaunch {
  learnerId: string;
  courseId: string | null;
  resourceLinkId: string | null;
  launchId: string;
  /** What the record's `read` returned (undefined without one). */
  read?: unknown;
}

const REGISTRATION_SELECT = REGISTRATION_COLUMNS.join(', ');

/**
 * The nonce consumption of `consumeNonce`, as fixed SQL text: the hot path's statements are compiled once per
 * process rather than rebuilt by Kysely's query builder on every launch. Parameters: $1 now, $2 nonce, $3 the
 * registration id the validation used, $4 its issuer, $5 client_id, $6 JWKS URL, $7 the launch's deployment.
 */
const CONSUME_NONCE = `
  consumed as (
    update lti_nonces n set consumed_at = $1::timestamptz
    from lti_registrations r
    where n.nonce = $2
      and n.registration_id = $3::uuid
      and n.consumed_at is null
      and n.expires_at > $1::timestamptz
      and r.id = n.registration_id
      and r.removed_at is null
      and r.issuer = $4
      and r.client_id = $5
      and r.jwks_url = $6
      and r.deployment_ids @> jsonb_build_array($7::text)
    returning ${REGISTRATION_COLUMNS.map((c) => `r.${c}`).join(', ')}
  )`;

/**
 * Issuer and authorization endpoint of every registration not removed (the platforms that may frame the
 * pages, see `platformOrigins`), as a jsonb array: read by the launch's statement, so that the launch page's
 * frame policy needs no statement of its own.
 */
const PLATFORM_URLS = `select coalesce(jsonb_agg(u), '[]'::jsonb)
  from lti_registrations, lateral (values (issuer), (auth_login_url)) as urls(u)
  where removed_at is null`;

const CONSUME_NONCE_ONLY = `with ${CONSUME_NONCE} select ${REGISTRATION_SELECT} from consumed`;

/**
 * The nonce consumption and, in the same statement (data-modifying CTEs, one round trip, one transaction),
 * what the launch tells us, written only when the nonce was consumed: learner (issuer, sub), course and
 * resource link upserted, the launch recorded as evidence. Name, email and username are only overwritten
 * when the platform sends them (PII sharing may be off). The course is skipped without a context claim, the
 * resource link without a course or a link claim. Issuer and registration id come from the registration
 * row the consumption re-checked. Parameters after CONSUME_NONCE's: $8 sub, $9–$13 name, given name, family
 * name, email, username; $14 has a course, $15–$17 context id, label, title; $18 has a link, $19–$20 link id
 * and title, $21 custom (jsonb); $22 message type, $23 role, $24 roles (jsonb), $25 target_link_uri, $26–$28
 * ags, nrps, deep linking settings (jsonb). The text stops after the select list: `recordStatement` ends it.
 */
const CONSUME_NONCE_AND_RECORD = `
  with ${CONSUME_NONCE}, learner as (
    insert into learners (issuer, sub, name, given_name, family_name, email, username)
    select consumed.issuer, $8, $9, $10, $11, $12, $13 from consumed
    on conflict (issuer, sub) do update set
      name = coalesce(excluded.name, learners.name),
      given_name = coalesce(excluded.given_name, learners.given_name),
      family_name = coalesce(excluded.family_name, learners.family_name),
      email = coalesce(excluded.email, learners.email),
      username = coalesce(excluded.username, learners.username),
      updated_at = now()
    returning id, name, given_name, family_name
  ), course as (
    insert into courses (issuer, context_id, label, title)
    select consumed.issuer, $15, $16, $17 from consumed
    where $14::boolean
    on conflict (issuer, context_id) do update set
      label = coalesce(excluded.label, courses.label),
      title = coalesce(excluded.title, courses.title),
      updated_at = now()
    returning id
  ), link as (
    insert into resource_links (course_id, registration_id, resource_link_id, title, custom)
    select course.id, consumed.id, $19, $20, $21::jsonb
    from course, consumed
    where $18::boolean
    on conflict (registration_id, resource_link_id) do update set
      title = coalesce(excluded.title, resource_links.title),
      custom = excluded.custom,
      updated_at = now()
    returning id
  ), launch as (
    insert into lti_launches (registration_id, learner_id, course_id, resource_link_id, message_type, role, roles,
                              deployment_id, target_link_uri, custom, ags, nrps, deep_linking)
    select consumed.id, learner.id, (select id from course), (select id from link), $22, $23, $24::jsonb,
           $7::text, $25, $21::jsonb, $26::jsonb, $27::jsonb, $28::jsonb
    from consumed, learner
    returning id, learner_id, course_id, resource_link_id
  )
  select ${REGISTRATION_COLUMNS.map((c) => `consumed.${c}`).join(', ')},
         launch.id as launch_id, launch.learner_id, launch.course_id, launch.resource_link_id,
         (${PLATFORM_URLS}) as platform_urls`;

/**
 * The statement recording a launch, with a handler's read when one is registered: its expression is one more
 * column, evaluated after the upserts (it sees the `learner` CTE, i.e. the learner as this launch recorded
 * them) and only for a consumed nonce. Built once per read text, like the statement's fixed text.
 */
const recordStatements = new Map<string, string>();
function recordStatement(read: string | undefined): string {
  const key = read ?? '';
  let text = recordStatements.get(key);
  if (text === undefined) {
    text = `${CONSUME_NONCE_AND_RECORD}${read ? `,\n         (${read}) as launch_read` : ''}
  from consumed left join launch on true`;
    recordStatements.set(key, text);
  }
  return text;
}

type ConsumedRow = RegistrationRow & {
  platform_urls?: string[];
  launch_read?: unknown;
  launch_id?: string | null;
  learner_id?: string | null;
  course_id?: string | null;
  resource_link_id?: string | null;
};

function recordParameters(input: LaunchRecordInput): unknown[] {
  const p = input.person;
  const json = (v: unknown) => (v === null ? null : JSON.stringify(v));
  const hasCourse = input.context !== undefined;
  return [
    input.sub,
    p.name ?? null,
    p.givenName ?? null,
    p.familyName ?? null,
    p.email ?? null,
    p.username ?? null,
    hasCourse,
    input.context?.id ?? null,
    input.context?.label ?? null,
    input.context?.title ?? null,
    hasCourse && input.resourceLink !== undefined,
    input.resourceLink?.id ?? null,
    input.resourceLink?.title ?? null,
    JSON.stringify(input.custom),
    input.messageType,
    input.role,
    JSON.stringify(input.roles),
    input.targetLinkUri,
    json(input.ags),
    json(input.nrps),
    json(input.deepLinking),
  ];
}

/**
 * Consumes a nonce atomically and, in the same statement, checks that the registration the launch was
 * validated against is still active and still has the issuer, client_id, JWKS URL and deployment the
 * validation used — so a registration held in the process's cache is never trusted on its own. One UPDATE
 * guarded by `consumed_at is null`: of two concurrent launches carrying the nonce, PostgreSQL lets exactly
 * one row update through. With `record`, the same statement records the launch (see
 * CONSUME_NONCE_AND_RECORD): nothing is written unless the nonce was consumed, and a launch whose recording
 * fails leaves its nonce unconsumed. When no row updates, a second look says why (and burns nothing).
 */
export async function consumeNonce(
  db: Db,
  nonce: string,
  used: RegistrationUsed,
  now: Date,
  record?: LaunchRecordInput,
): Promise<NonceConsumption> {
  const parameters: unknown[] = [now, nonce, used.id, used.issuer, used.clientId, used.jwksUrl, used.deploymentId];
  const { rows } = await db.executeQuery<ConsumedRow>(
    record
      ? CompiledQuery.raw(recordStatement(record.read), [...parameters, ...recordParameters(record)])
      : CompiledQuery.raw(CONSUME_NONCE_ONLY, parameters),
  );
  const consumed = rows[0];
  if (consumed) {
    let recorded: RecordedLaunch | null = null;
    if (record) {
      if (!consumed.launch_id || !consumed.learner_id) throw new Error('recording the launch returned no row');
      recorded = {
        learnerId: consumed.learner_id,
        courseId: consumed.course_id ?? null,
        resourceLinkId: consumed.resource_link_id ?? null,
        launchId: consumed.launch_id,
        ...(record.read ? { read: consumed.launch_read ?? null } : {}),
      };
    }
    return {
      outcome: 'consumed',
      registration: toRegistration(consumed),
      recorded,
      platformUrls: record ? (consumed.platform_urls ?? []) : null,
    };
  }

  const { rows: why } = await sql<{
    removed_at: Date | null;
    unchanged: boolean;
    consumed_at: Date | null;
    expires_at: Date | null;
  }>`
    select r.removed_at,
           (r.issuer = ${used.issuer} and r.client_id = ${used.clientId} and r.jwks_url = ${used.jwksUrl}
             and r.deployment_ids @> jsonb_build_array(${used.deploymentId}::text)) as unchanged,
           n.consumed_at, n.expires_at
    from lti_registrations r
    left join lti_nonces n on n.nonce = ${nonce} and n.registration_id = r.id
    where r.id = ${used.id}`.execute(db);
  const row = why[0];
  if (!row || row.removed_at !== null) return { outcome: 'registration_removed' };
  if (!row.unchanged) return { outcome: 'registration_changed' };
  if (row.expires_at === null) return { outcome: 'unknown' };
  if (row.consumed_at !== null) return { outcome: 'used' };
  return { outcome: 'expired' };
}

/** Consumed and expired nonces are kept an hour so a replay is reported as a replay, then purged. */
export async function purgeNonces(db: Db, before: Date): Promise<number> {
  const result = await db.deleteFrom('lti_nonces').where('expires_at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}

// --- Tool keys --------------------------------------------------------------------------------------------

export interface ToolKeyRow {
  kid: string;
  alg: string;
  publicJwk: Record<string, unknown>;
  privateKeySealed: string;
  status: 'current' | 'retired';
  createdAt: Date;
  retiredAt: Date | null;
}

const KEY_COLUMNS = ['kid', 'alg', 'public_jwk', 'private_key_sealed', 'status', 'created_at', 'retired_at'] as const;
function toKey(r: {
  kid: string;
  alg: string;
  public_jwk: Record<string, unknown>;
  private_key_sealed: string;
  status: 'current' | 'retired';
  created_at: Date;
  retired_at: Date | null;
}): ToolKeyRow {
  return {
    kid: r.kid,
    alg: r.alg,
    publicJwk: r.public_jwk,
    privateKeySealed: r.private_key_sealed,
    status: r.status,
    createdAt: r.created_at,
    retiredAt: r.retired_at,
  };
}

export async function findCurrentKey(db: Db): Promise<ToolKeyRow | null> {
  const row = await db
    .selectFrom('lti_tool_keys')
    .select(KEY_COLUMNS)
    .where('status', '=', 'current')
    .executeTakeFirst();
  return row ? toKey(row) : null;
}

export async function listKeys(db: Db): Promise<ToolKeyRow[]> {
  const rows = await db.selectFrom('lti_tool_keys').select(KEY_COLUMNS).orderBy('created_at', 'desc').execute();
  return rows.map(toKey);
}

/** Inserts a current key unless one exists (the partial unique index arbitrates concurrent starts). */
export async function insertCurrentKeyIfNone(db: Db, key: Omit<ToolKeyRow, 'createdAt' | 'retiredAt' | 'status'>) {
  await db
    .insertInto('lti_tool_keys')
    .values({
      kid: key.kid,
      alg: key.alg,
      public_jwk: JSON.stringify(key.publicJwk),
      private_key_sealed: key.privateKeySealed,
      status: 'current',
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Retires the current key and makes `key` current, in one transaction. Returns the retired kid. */
export async function rotateCurrentKey(
  db: Db,
  key: Omit<ToolKeyRow, 'createdAt' | 'retiredAt' | 'status'>,
): Promise<string | null> {
  return db.transaction().execute(async (trx) => {
    const retired = await trx
      .updateTable('lti_tool_keys')
      .set({ status: 'retired', retired_at: sql<Date>`now()` })
      .where('status', '=', 'current')
      .returning('kid')
      .executeTakeFirst();
    await trx
      .insertInto('lti_tool_keys')
      .values({
        kid: key.kid,
        alg: key.alg,
        public_jwk: JSON.stringify(key.publicJwk),
        private_key_sealed: key.privateKeySealed,
        status: 'current',
      })
      .execute();
    return retired?.kid ?? null;
  });
}

// --- What a launch tells us (LTI Core §5.3 user identity, §5.4.2 context, §5.3.5 resource link) ------------

/** What a launch records (see CONSUME_NONCE_AND_RECORD); issuer and registration come from the registration. */
export interface LaunchRecordInput {
  sub: string;
  person: { name?: string; givenName?: string; familyName?: string; email?: string; username?: string };
  context?: { id: string; label?: string; title?: string };
  resourceLink?: { id: string; title?: string };
  custom: Record<string, string>;
  messageType: string;
  role: LaunchRole;
  roles: string[];
  deploymentId: string;
  targetLinkUri: string;
  ags: Record<string, unknown> | null;
  nrps: Record<string, unknown> | null;
  deepLinking: Record<string, unknown> | null;
  /** The launch handler's read (see `LaunchRead` in ./service.ts), evaluated by the same statement. */
  read?: string;
}

export async function findLaunchCreatedAt(db: Db, launchId: string): Promise<Date | null> {
  const row = await db.selectFrom('lti_launches').select('created_at').where('id', '=', launchId).executeTakeFirst();
  return row?.created_at ?? null;
}
