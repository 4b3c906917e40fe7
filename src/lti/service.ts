import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { stripSpoofingOptional } from '../common/text.js';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { UnauthorizedError } from '../http/errors.js';
import type { ToolKeyStore } from './keys.js';
import type { PlatformKeyCache } from './platform-keys.js';
import {
  findLaunchCreatedAt,
  type LaunchRecordInput,
  purgeNonces,
  type Registration,
  removeFileRegistrationsNotIn,
  upsertRegistration,
} from './repository.js';
import {
  CLAIMS,
  LOGIN_TTL_SECONDS,
  type MessageType,
  mapRoles,
  parseRegistrationsFile,
  RegistrationError,
  type RegistrationInput,
  SESSION_MAX_RENEW_AGE_SECONDS,
  toolUrls,
} from './rules.js';
import { type LaunchSession, sessionExpiry, signSession, verifySession } from './session.js';
import { randomToken, signState, stateCookieHeader } from './state.js';
import type { LaunchRole } from './tables.js';
import type { CheckedLaunch, CheckFailure, LaunchValidator, LoginParams } from './validator.js';

/** What a handler receives once a launch is validated and recorded (see `registerLaunchHandler`). */
export interface ValidatedLaunch {
  session: LaunchSession;
  sessionToken: string;
  messageType: MessageType;
  registration: {
    id: string;
    name: string;
    issuer: string;
    clientId: string;
    accessTokenUrl: string;
    authLoginUrl: string;
    jwksUrl: string;
  };
  claims: {
    sub: string;
    name?: string;
    given_name?: string;
    family_name?: string;
    email?: string;
    preferred_username?: string;
    roles: string[];
    custom: Record<string, string>;
    context?: { id: string; label?: string; title?: string };
    resourceLink?: { id: string; title?: string };
    ags?: { scope: string[]; lineitems?: string; lineitem?: string };
    nrps?: { context_memberships_url: string; service_versions: string[] };
    deepLinkingSettings?: {
      deep_link_return_url: string;
      accept_types: string[];
      accept_multiple?: boolean;
      data?: string;
      [key: string]: unknown;
    };
    targetLinkUri: string;
    deploymentId: string;
  };
  /** What the handler's `LaunchRead` returned, read by the statement that recorded this launch. */
  read?: unknown;
}

/**
 * What a launch handler needs from the database before it can answer, read by the statement that consumes
 * the nonce and records the launch instead of by a statement of its own (a launch is the hot path: one round
 * trip fewer). `sql` is a scalar SQL expression, typically `json_build_object(…)`, evaluated after the
 * launch's upserts; it may refer to `learner`, a relation of one row (id, name, given_name, family_name: the
 * learner as this launch recorded them), and to any table as it was before the launch. Fixed text, no
 * parameters. Its value reaches the handler as `launch.read`.
 */
export interface LaunchRead {
  sql: string;
}

export type LaunchHandler = (launch: ValidatedLaunch, request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** Per-app LTI state, decorated on the root instance by the plugin. */
export interface LtiRuntime {
  validator: LaunchValidator;
  toolKeys: ToolKeyStore;
  platformKeys: PlatformKeyCache;
  /** HMAC key of the state JWT, made once per process. */
  stateKey: KeyObject;
  handlers: Map<MessageType, LaunchHandler>;
  /** The reads the handlers registered with, by message type (see `LaunchRead`). */
  reads: Map<MessageType, LaunchRead>;
  lastNoncePurge: number;
}

// --- registrations file ----------------------------------------------------------------------------------

/** Reads and validates the registrations file; any problem names the file, the entry and the field. */
export async function loadRegistrationsFile(
  config: Pick<Config, 'ltiRegistrationsFile' | 'nodeEnv'>,
): Promise<RegistrationInput[]> {
  const file = config.ltiRegistrationsFile;
  const shown = relative(process.cwd(), file) || file;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`LTI registrations file ${shown} cannot be read (LTI_REGISTRATIONS_FILE)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`LTI registrations file ${shown} is not valid JSON: ${(error as Error).message}`);
  }
  try {
    return parseRegistrationsFile(json, { requireHttps: config.nodeEnv === 'production' });
  } catch (error) {
    if (error instanceof RegistrationError) throw new Error(`LTI registrations file ${shown}: ${error.message}`);
    throw error;
  }
}

export async function syncRegistrations(db: Db, regs: RegistrationInput[], log: FastifyBaseLogger): Promise<void> {
  for (const reg of regs) await upsertRegistration(db, reg, 'file');
  const removed = await removeFileRegistrationsNotIn(db, regs);
  if (removed.length > 0) log.warn({ registrations: removed }, 'registrations no longer in the file are now refused');
  if (regs.length > 0) log.info({ count: regs.length }, 'LTI registrations loaded from file');
}

// --- login initiation (LTI Core §4.1, Security Framework §5.1.1.2) ----------------------------------------

export type LoginOutcome = { ok: true; redirectUrl: string; cookie: string; registrationId: string } | CheckFailure;

export async function startLogin(
  runtime: LtiRuntime,
  db: Db,
  publicUrl: string,
  params: LoginParams,
): Promise<LoginOutcome> {
  const now = Date.now();
  const nonce = randomToken(24);
  const result = await runtime.validator.validateLogin(params, {
    nonce,
    expiresAt: new Date(now + LOGIN_TTL_SECONDS * 1000),
  });
  if (!result.ok) return result;
  const { registration } = result;

  const state = await signState(runtime.stateKey, publicUrl, {
    reg: registration.id,
    nonce,
    tlu: result.params.target_link_uri,
    ...(params.lti_deployment_id ? { dep: params.lti_deployment_id } : {}),
  });

  // Both URLs are registered redirect URIs; answering on the one the platform targeted keeps Open edX's
  // "redirect_uri must be in the registered list exactly" check happy for either message type.
  const urls = toolUrls(publicUrl);
  const redirectUri = result.params.target_link_uri.startsWith(urls.deepLinkingUrl)
    ? urls.deepLinkingUrl
    : urls.launchUrl;
  const auth = new URL(registration.authLoginUrl);
  const query: Record<string, string> = {
    scope: 'openid',
    response_type: 'id_token',
    response_mode: 'form_post',
    prompt: 'none',
    client_id: registration.clientId,
    redirect_uri: redirectUri,
    login_hint: result.params.login_hint,
    state: state.token,
    nonce,
  };
  if (params.lti_message_hint) query.lti_message_hint = params.lti_message_hint;
  // Set on a copy, then written back once: each `auth.searchParams.set` would re-serialize the whole query.
  const search = new URLSearchParams(auth.search);
  for (const [k, v] of Object.entries(query)) search.set(k, v);
  auth.search = search.toString();

  if (now - runtime.lastNoncePurge > 60_000) {
    runtime.lastNoncePurge = now;
    await purgeNonces(db, new Date(now - 3600_000));
  }
  return {
    ok: true,
    redirectUrl: auth.toString(),
    cookie: stateCookieHeader(state.jti, publicUrl),
    registrationId: registration.id,
  };
}

// --- launch (LTI Core §5.1; identity §5.3; context §5.4) --------------------------------------------------

const str = (v: unknown, max = 1024): string | undefined =>
  typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, max) : undefined;

function optionalObject<T>(v: unknown): T | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as T) : undefined;
}

export type LaunchOutcome =
  | {
      ok: true;
      launch: ValidatedLaunch;
      stateJti: string;
      checks: { skipped: string[] };
      /** The active registrations' issuers and authorization endpoints, read while recording the launch. */
      platformUrls: string[];
    }
  | CheckFailure;

/** What a checked launch says, claim by claim, as recorded and as handed to the handler. */
function describeLaunch({ payload, messageType, custom }: CheckedLaunch) {
  const roles = payload[CLAIMS.roles] as string[];
  const role: LaunchRole = mapRoles(roles);
  const contextClaim = optionalObject<Record<string, unknown>>(payload[CLAIMS.context]);
  const context = contextClaim
    ? {
        id: String(contextClaim.id),
        ...opt('label', str(contextClaim.label, 255)),
        ...opt('title', str(contextClaim.title, 500)),
      }
    : undefined;
  const linkClaim = optionalObject<Record<string, unknown>>(payload[CLAIMS.resourceLink]);
  const resourceLink =
    messageType === 'LtiResourceLinkRequest' && linkClaim
      ? { id: String(linkClaim.id), ...opt('title', str(linkClaim.title, 500)) }
      : undefined;
  const agsClaim = optionalObject<Record<string, unknown>>(payload[CLAIMS.ags]);
  const ags =
    agsClaim && Array.isArray(agsClaim.scope)
      ? {
          scope: agsClaim.scope.filter((s): s is string => typeof s === 'string'),
          ...opt('lineitems', str(agsClaim.lineitems, 2048)),
          ...opt('lineitem', str(agsClaim.lineitem, 2048)),
        }
      : undefined;
  const nrpsClaim = optionalObject<Record<string, unknown>>(payload[CLAIMS.nrps]);
  const nrps =
    nrpsClaim && typeof nrpsClaim.context_memberships_url === 'string'
      ? {
          context_memberships_url: nrpsClaim.context_memberships_url,
          service_versions: Array.isArray(nrpsClaim.service_versions)
            ? nrpsClaim.service_versions.filter((s): s is string => typeof s === 'string')
            : [],
        }
      : undefined;
  const deepLinkingSettings =
    messageType === 'LtiDeepLinkingRequest'
      ? (payload[CLAIMS.deepLinkingSettings] as NonNullable<ValidatedLaunch['claims']['deepLinkingSettings']>)
      : undefined;

  const sub = payload.sub as string;
  // Names from the platform: bidi overrides and zero-width characters stripped (src/common/text.ts).
  const person = {
    name: stripSpoofingOptional(str(payload.name, 255)),
    given_name: stripSpoofingOptional(str(payload.given_name, 255)),
    family_name: stripSpoofingOptional(str(payload.family_name, 255)),
    email: str(payload.email, 320),
    preferred_username: str(payload.preferred_username, 255),
  };
  const deploymentId = payload[CLAIMS.deploymentId] as string;
  const targetLinkUri = payload[CLAIMS.targetLinkUri] as string;

  const record: LaunchRecordInput = {
    sub,
    person: {
      ...opt('name', person.name),
      ...opt('givenName', person.given_name),
      ...opt('familyName', person.family_name),
      ...opt('email', person.email),
      ...opt('username', person.preferred_username),
    },
    ...(context ? { context } : {}),
    ...(resourceLink ? { resourceLink } : {}),
    custom,
    messageType,
    role,
    roles,
    deploymentId,
    targetLinkUri,
    ags: ags ?? null,
    nrps: nrps ?? null,
    deepLinking: deepLinkingSettings ?? null,
  };
  const claims: ValidatedLaunch['claims'] = {
    sub,
    ...opt('name', person.name),
    ...opt('given_name', person.given_name),
    ...opt('family_name', person.family_name),
    ...opt('email', person.email),
    ...opt('preferred_username', person.preferred_username),
    roles,
    custom,
    ...(context ? { context } : {}),
    ...(resourceLink ? { resourceLink } : {}),
    ...(ags ? { ags } : {}),
    ...(nrps ? { nrps } : {}),
    ...(deepLinkingSettings ? { deepLinkingSettings } : {}),
    targetLinkUri,
    deploymentId,
  };
  return { role, record, claims };
}

export async function completeLaunch(
  app: FastifyInstance,
  runtime: LtiRuntime,
  body: Record<string, unknown>,
  cookieHeader: string | undefined,
): Promise<LaunchOutcome> {
  // The launch is recorded by the statement that consumes its nonce (one round trip): the validator asks for
  // the record once every other check passed.
  let described: ReturnType<typeof describeLaunch> | undefined;
  const result = await runtime.validator.validateLaunch(body, cookieHeader, {
    record: (checked) => {
      described = describeLaunch(checked);
      const read = runtime.reads.get(checked.messageType);
      return read ? { ...described.record, read: read.sql } : described.record;
    },
  });
  if (!result.ok) return result;
  const { registration, messageType } = result;
  if (!described || !result.recorded) throw new Error('the validated launch was not recorded');
  const { role, claims } = described;
  const recorded = result.recorded;

  const sessionClaims = {
    learnerId: recorded.learnerId,
    courseId: recorded.courseId,
    resourceLinkId: recorded.resourceLinkId,
    launchId: recorded.launchId,
    registrationId: registration.id,
    role,
  };
  const sessionToken = await signSession(app, sessionClaims);
  const exp = sessionExpiry(sessionToken);

  const launch: ValidatedLaunch = {
    session: { ...sessionClaims, exp },
    sessionToken,
    messageType,
    registration: publicRegistration(registration),
    claims,
    ...('read' in recorded ? { read: recorded.read } : {}),
  };
  return {
    ok: true,
    launch,
    stateJti: result.state.jti,
    checks: { skipped: result.checks.filter((c) => c.outcome === 'skipped').map((c) => c.name) },
    platformUrls: result.platformUrls ?? [],
  };
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

export function publicRegistration(r: Registration): ValidatedLaunch['registration'] {
  return {
    id: r.id,
    name: r.name,
    issuer: r.issuer,
    clientId: r.clientId,
    accessTokenUrl: r.accessTokenUrl,
    authLoginUrl: r.authLoginUrl,
    jwksUrl: r.jwksUrl,
  };
}

// --- session renewal ---------------------------------------------------------------------------------------

/** A fresh session token for `session`, while its launch is younger than the renewal horizon. */
export async function renewSession(
  app: FastifyInstance,
  session: LaunchSession,
): Promise<{ token: string; exp: number }> {
  const launchedAt = await findLaunchCreatedAt(app.db, session.launchId);
  if (!launchedAt || Date.now() - launchedAt.getTime() > SESSION_MAX_RENEW_AGE_SECONDS * 1000) {
    throw new UnauthorizedError(
      'session_too_old',
      'Cette page est ouverte depuis trop longtemps. Rechargez la page du cours pour continuer.',
      'launch older than the renewal horizon',
    );
  }
  const { exp: _previous, ...claims } = session;
  const token = await signSession(app, claims);
  return { token, exp: verifySession(app, token).exp };
}
