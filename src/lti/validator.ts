import { compactVerify } from 'jose';
import type { Db } from '../db/index.js';
import type { PlatformKeyCache } from './platform-keys.js';
import {
  consumeNonce,
  findRegistrationAndIssueNonce,
  findRegistrationById,
  type LaunchRecordInput,
  type RecordedLaunch,
  type Registration,
} from './repository.js';
import {
  CLAIMS,
  checkAudience,
  checkExp,
  checkIat,
  isAllowedAlgorithm,
  MAX_ID_TOKEN_LENGTH,
  MESSAGE_TYPES,
  type MessageType,
  normaliseCustom,
  pointsToTool,
} from './rules.js';
import { checkStateCookie, type LoginState, type StateKey, verifyState } from './state.js';

/**
 * The launch validator (LTI Core §5.1, Security Framework §5.1.3): every check has a name; the result lists
 * the checks passed (or skipped) and, on failure, the one that failed with a reason for the log. The reason
 * never contains a token, a nonce or personal data.
 */
export type CheckName =
  // login initiation (LTI Core §4.1 / Security Framework §5.1.1)
  | 'login_request'
  | 'registration'
  // authentication response (OIDC Core §3.1.2.5–6, LTI Core §5.1)
  | 'platform_error'
  | 'request'
  | 'state_signature'
  | 'state_expiry'
  | 'state_cookie'
  | 'token_size'
  | 'token_format'
  | 'alg'
  | 'kid'
  | 'jwks'
  | 'signature'
  | 'iss'
  | 'aud'
  | 'azp'
  | 'exp'
  | 'iat'
  | 'nonce_claim'
  | 'state_binding'
  | 'version'
  | 'message_type'
  | 'deployment_id'
  | 'target_link_uri'
  | 'sub'
  | 'roles'
  | 'resource_link'
  | 'context'
  | 'deep_linking_settings'
  | 'custom'
  | 'nonce_issued'
  | 'nonce_unused'
  | 'nonce_expiry';

export interface CheckOutcome {
  name: CheckName;
  outcome: 'passed' | 'skipped';
}

export interface CheckFailure {
  ok: false;
  failed: CheckName;
  reason: string;
  checks: CheckOutcome[];
}

export interface LoginParams {
  iss?: string | undefined;
  login_hint?: string | undefined;
  target_link_uri?: string | undefined;
  client_id?: string | undefined;
  lti_deployment_id?: string | undefined;
  lti_message_hint?: string | undefined;
}

export type LoginValidation =
  | {
      ok: true;
      registration: Registration;
      params: Required<Pick<LoginParams, 'login_hint' | 'target_link_uri'>> & LoginParams;
      checks: CheckOutcome[];
    }
  | CheckFailure;

export interface LaunchPayload {
  [claim: string]: unknown;
}

export type LaunchValidation =
  | {
      ok: true;
      registration: Registration;
      messageType: MessageType;
      payload: LaunchPayload;
      custom: Record<string, string>;
      state: LoginState;
      checks: CheckOutcome[];
      /** What `record` asked to write, written in the statement that consumed the nonce (null without it). */
      recorded: RecordedLaunch | null;
      /** With `record`: the active registrations' issuers and authorization endpoints, read by that statement. */
      platformUrls: string[] | null;
    }
  | CheckFailure;

/** A launch that passed every check but the nonce's, as `record` receives it. */
export interface CheckedLaunch {
  registration: Registration;
  messageType: MessageType;
  payload: LaunchPayload;
  custom: Record<string, string>;
}

/** Says what to record for a launch about to consume its nonce; written only if the nonce is consumed. */
export type LaunchRecorder = (launch: CheckedLaunch) => LaunchRecordInput;

const MAX_PARAM_LENGTH = 2048;

class Checks {
  readonly list: CheckOutcome[] = [];
  /** The registration came from the in-process cache (see `validateLaunch`). */
  cachedRegistration = false;
  pass(name: CheckName): void {
    this.list.push({ name, outcome: 'passed' });
  }
  skip(name: CheckName): void {
    this.list.push({ name, outcome: 'skipped' });
  }
  fail(name: CheckName, reason: string): CheckFailure {
    return { ok: false, failed: name, reason, checks: this.list };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown, max = MAX_PARAM_LENGTH): v is string =>
  typeof v === 'string' && v.trim() !== '' && v.length <= max;

export interface ValidatorDeps {
  db: Db;
  publicUrl: string;
  stateKey: StateKey;
  platformKeys: PlatformKeyCache;
}

/**
 * Registrations by id, as last read from the database, so that a launch following a login on this process
 * does not read its registration again. Never trusted alone: the nonce consumption (the launch's last check)
 * re-checks, in the same statement, that the registration is still active and still has the issuer,
 * client_id, JWKS URL and deployment the launch was validated with; when it changed, the launch is validated
 * again from the database. Entries live at most REGISTRATION_CACHE_MS, which only bounds memory staleness.
 */
export const REGISTRATION_CACHE_MS = 60_000;
const REGISTRATION_CACHE_MAX = 1000;

export class RegistrationCache {
  readonly #entries = new Map<string, { registration: Registration; at: number }>();

  constructor(private readonly now: () => number = () => Date.now()) {}

  get(id: string): Registration | undefined {
    const entry = this.#entries.get(id);
    if (entry && this.now() - entry.at < REGISTRATION_CACHE_MS) return entry.registration;
    if (entry) this.#entries.delete(id);
    return undefined;
  }

  set(registration: Registration): void {
    if (this.#entries.size >= REGISTRATION_CACHE_MAX) this.#entries.clear();
    this.#entries.set(registration.id, { registration, at: this.now() });
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }
}

export class LaunchValidator {
  readonly registrations = new RegistrationCache();

  constructor(private readonly deps: ValidatorDeps) {}

  /**
   * Third-party initiated login (LTI Core §4.1, Security Framework §5.1.1.1). The registration lookup also
   * stores `issue.nonce` for it (one statement); the nonce is only revealed when the login passes.
   */
  async validateLogin(params: LoginParams, issue: { nonce: string; expiresAt: Date }): Promise<LoginValidation> {
    const c = new Checks();
    const { iss, login_hint, target_link_uri, client_id, lti_deployment_id } = params;
    if (!nonEmpty(iss)) return c.fail('login_request', 'iss is missing');
    if (!nonEmpty(login_hint)) return c.fail('login_request', 'login_hint is missing');
    if (!nonEmpty(target_link_uri)) return c.fail('login_request', 'target_link_uri is missing');
    for (const [k, v] of Object.entries({ client_id, lti_deployment_id, lti_message_hint: params.lti_message_hint })) {
      if (v !== undefined && (typeof v !== 'string' || v.length > MAX_PARAM_LENGTH)) {
        return c.fail('login_request', `${k} is too long or not a string`);
      }
    }
    c.pass('login_request');

    // Checked before the registration lookup, which stores the nonce: no nonce for a login aimed elsewhere.
    if (!pointsToTool(target_link_uri, this.deps.publicUrl)) {
      return c.fail('target_link_uri', 'target_link_uri does not point to this tool');
    }

    // client_id is optional in LTI 1.3 login (§4.1): usable only when the issuer has a single registration.
    const withClientId = nonEmpty(client_id);
    const regs = await findRegistrationAndIssueNonce(
      this.deps.db,
      {
        issuer: iss,
        clientId: withClientId ? client_id : null,
        deploymentId: lti_deployment_id !== undefined && lti_deployment_id !== '' ? lti_deployment_id : null,
      },
      issue.nonce,
      issue.expiresAt,
    );
    if (regs.length !== 1) {
      if (withClientId) return c.fail('registration', 'no registration for this iss and client_id');
      return c.fail(
        'registration',
        regs.length === 0
          ? 'no registration for this iss'
          : 'client_id missing and the issuer has several registrations',
      );
    }
    const registration = regs[0] as Registration;
    this.registrations.set(registration);
    c.pass('registration');

    if (lti_deployment_id !== undefined && lti_deployment_id !== '') {
      if (!registration.deploymentIds.includes(lti_deployment_id)) {
        return c.fail('deployment_id', 'lti_deployment_id is not a deployment of this registration');
      }
      c.pass('deployment_id');
    } else c.skip('deployment_id');
    c.pass('target_link_uri');
    return { ok: true, registration, params: { ...params, login_hint, target_link_uri }, checks: c.list };
  }

  /** Authentication response: the id_token + state the platform auto-POSTs to our redirect_uri. */
  async validateLaunch(
    body: Record<string, unknown>,
    cookieHeader: string | undefined,
    options: { now?: number; record?: LaunchRecorder } = {},
  ): Promise<LaunchValidation> {
    const c = new Checks();
    const now = options.now ?? Date.now();
    const record = options.record;
    const result = await this.#validateLaunch(c, body, cookieHeader, now, false, record);
    // The cache never decides a refusal: a launch refused while validated against a cached registration
    // (removed or changed since, or refused for another reason) is validated again from the database, so
    // the refusal and the check it names are the ones the database gives. Nothing was burnt: the nonce is
    // consumed only by a launch that passed every check.
    if (result.ok || !c.cachedRegistration) return result;
    return this.#validateLaunch(new Checks(), body, cookieHeader, now, true, record);
  }

  async #validateLaunch(
    c: Checks,
    body: Record<string, unknown>,
    cookieHeader: string | undefined,
    now: number,
    fromDatabase: boolean,
    record: LaunchRecorder | undefined,
  ): Promise<LaunchValidation> {
    const nowSeconds = Math.floor(now / 1000);

    // OIDC Core §3.1.2.6: the platform reports a failed authentication to the redirect_uri.
    if (typeof body.error === 'string') {
      return c.fail('platform_error', `the platform answered error=${body.error.slice(0, 64)}`);
    }
    c.pass('platform_error');
    const { id_token: idToken, state: stateToken } = body;
    if (!nonEmpty(stateToken, 4096)) return c.fail('request', 'state is missing');
    if (typeof idToken !== 'string' || idToken === '') return c.fail('request', 'id_token is missing');
    c.pass('request');

    const stateCheck = await verifyState(this.deps.stateKey, this.deps.publicUrl, stateToken);
    if (!stateCheck.ok) return c.fail(stateCheck.check, stateCheck.reason);
    const state = stateCheck.state;
    c.pass('state_signature');
    c.pass('state_expiry');

    const cookie = checkStateCookie(cookieHeader, state.jti);
    if (cookie.outcome === 'failed') return c.fail('state_cookie', cookie.reason);
    if (cookie.outcome === 'passed') c.pass('state_cookie');
    else c.skip('state_cookie');

    let registration = fromDatabase ? undefined : this.registrations.get(state.reg);
    c.cachedRegistration = registration !== undefined;
    if (!registration) {
      const found = await findRegistrationById(this.deps.db, state.reg);
      if (!found || found.removedAt) return c.fail('registration', 'the registration of this login was removed');
      registration = found;
      this.registrations.set(registration);
    }
    c.pass('registration');

    // --- the id_token as a JWS (RFC 7515 compact serialization) ---
    if (idToken.length > MAX_ID_TOKEN_LENGTH)
      return c.fail('token_size', `id_token longer than ${MAX_ID_TOKEN_LENGTH} characters`);
    c.pass('token_size');
    const parts = idToken.split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)) || !parts[0] || !parts[1]) {
      return c.fail('token_format', 'id_token is not a compact JWS');
    }
    let header: Record<string, unknown>;
    try {
      const h: unknown = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      if (!isObject(h)) throw new Error('not an object');
      header = h;
    } catch {
      return c.fail('token_format', 'id_token header is not a JSON object');
    }
    // RFC 7515 §4.1.11: a JWS naming extensions in `crit` must be refused unless they are understood; this
    // tool understands none, nor RFC 7797's unencoded payload (`b64`), which only means something inside crit.
    if (header.crit !== undefined || header.b64 !== undefined) {
      return c.fail('token_format', 'id_token header has crit or b64 (no JWS extension is supported)');
    }
    c.pass('token_format');

    if (!isAllowedAlgorithm(header.alg)) {
      return c.fail('alg', `alg ${JSON.stringify(header.alg)?.slice(0, 20)} is not in the allow-list`);
    }
    c.pass('alg');
    if (!nonEmpty(header.kid, 512)) return c.fail('kid', 'id_token header has no kid');
    const lookup = await this.deps.platformKeys.key(registration.jwksUrl, header.kid, header.alg);
    if (!lookup.ok) return c.fail(lookup.check, lookup.reason);
    c.pass('kid');

    // The signature is the trust boundary with the platform: verified by jose (RFC 7515), never by hand.
    let payload: LaunchPayload;
    try {
      const verified = await compactVerify(idToken, lookup.key, { algorithms: [header.alg] });
      const p: unknown = JSON.parse(new TextDecoder().decode(verified.payload));
      if (!isObject(p)) return c.fail('token_format', 'id_token payload is not a JSON object');
      payload = p;
    } catch (error) {
      if (error instanceof SyntaxError) return c.fail('token_format', 'id_token payload is not JSON');
      return c.fail('signature', 'id_token signature does not verify with the platform key');
    }
    c.pass('signature');

    // --- claims (Security Framework §5.1.3; LTI Core §5.3, §5.4) ---
    if (payload.iss !== registration.issuer) return c.fail('iss', 'iss is not the issuer of the registration');
    c.pass('iss');
    const audience = checkAudience(payload.aud, payload.azp, registration.clientId);
    if (!audience.ok) return c.fail(audience.check, audience.reason);
    c.pass('aud');
    c.pass('azp');
    const exp = checkExp(payload.exp, nowSeconds);
    if (!exp.ok) return c.fail('exp', exp.reason);
    c.pass('exp');
    const iat = checkIat(payload.iat, nowSeconds);
    if (!iat.ok) return c.fail('iat', iat.reason);
    c.pass('iat');
    if (!nonEmpty(payload.nonce, 1024)) return c.fail('nonce_claim', 'id_token has no nonce');
    c.pass('nonce_claim');
    if (payload.nonce !== state.nonce)
      return c.fail('state_binding', 'the id_token nonce is not the one of this state');
    c.pass('state_binding');

    if (payload[CLAIMS.version] !== '1.3.0') return c.fail('version', 'LTI version is not 1.3.0');
    c.pass('version');
    const messageType = payload[CLAIMS.messageType];
    if (typeof messageType !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(messageType)) {
      return c.fail('message_type', `message type ${JSON.stringify(messageType)?.slice(0, 40)} is not supported`);
    }
    c.pass('message_type');
    const deploymentId = payload[CLAIMS.deploymentId];
    if (!nonEmpty(deploymentId, 255) || !registration.deploymentIds.includes(deploymentId)) {
      return c.fail('deployment_id', 'deployment_id is not a deployment of this registration');
    }
    if (state.dep !== undefined && state.dep !== deploymentId) {
      return c.fail('deployment_id', 'deployment_id differs from the one announced at login');
    }
    c.pass('deployment_id');
    const target = payload[CLAIMS.targetLinkUri];
    if (!nonEmpty(target) || !pointsToTool(target, this.deps.publicUrl)) {
      return c.fail('target_link_uri', 'target_link_uri is missing or does not point to this tool');
    }
    c.pass('target_link_uri');
    // LTI Core §5.3.6: without sub the launch is anonymous; this tool exists to identify learners.
    if (!nonEmpty(payload.sub, 255)) return c.fail('sub', 'sub is missing (anonymous launches are not supported)');
    c.pass('sub');
    const roles = payload[CLAIMS.roles];
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) {
      return c.fail('roles', 'roles claim is missing or not an array of strings');
    }
    c.pass('roles');

    const context = payload[CLAIMS.context];
    if (context !== undefined && !(isObject(context) && nonEmpty(context.id, 255))) {
      return c.fail('context', 'context claim has no id');
    }
    if (messageType === 'LtiResourceLinkRequest') {
      const link = payload[CLAIMS.resourceLink];
      if (!isObject(link) || !nonEmpty(link.id, 255)) return c.fail('resource_link', 'resource_link.id is missing');
      c.pass('resource_link');
      // Optional in the spec, always sent by Open edX: a module belongs to a course, so we require it.
      if (context === undefined) return c.fail('context', 'context claim is missing');
      c.pass('context');
    } else {
      const settings = payload[CLAIMS.deepLinkingSettings];
      if (
        !isObject(settings) ||
        !nonEmpty(settings.deep_link_return_url) ||
        !Array.isArray(settings.accept_types) ||
        !settings.accept_types.every((t) => typeof t === 'string')
      ) {
        return c.fail('deep_linking_settings', 'deep_linking_settings lacks deep_link_return_url or accept_types');
      }
      c.pass('deep_linking_settings');
      if (context === undefined) c.skip('context');
      else c.pass('context');
    }
    const custom = normaliseCustom(payload[CLAIMS.custom]);
    if (!custom) return c.fail('custom', 'custom claim is not an object');
    c.pass('custom');

    // Last: burn the nonce only for a launch that passed every other check (Security Framework §5.1.3 item 9),
    // re-checking in the same statement the registration this validation used (and recording the launch).
    const recordInput = record?.({ registration, messageType: messageType as MessageType, payload, custom });
    const consumed = await consumeNonce(
      this.deps.db,
      payload.nonce,
      {
        id: registration.id,
        issuer: registration.issuer,
        clientId: registration.clientId,
        jwksUrl: registration.jwksUrl,
        deploymentId,
      },
      new Date(now),
      recordInput,
    );
    switch (consumed.outcome) {
      case 'registration_removed':
        this.registrations.delete(registration.id);
        return c.fail('registration', 'the registration of this login was removed');
      case 'registration_changed':
        this.registrations.delete(registration.id);
        return c.fail('registration', 'the registration changed during this launch');
      case 'unknown':
        return c.fail('nonce_issued', 'nonce was never issued by this tool');
      case 'used':
        return c.fail('nonce_unused', 'nonce was already used (replayed launch)');
      case 'expired':
        return c.fail('nonce_expiry', 'nonce has expired');
    }
    c.pass('nonce_issued');
    c.pass('nonce_unused');
    registration = consumed.registration;
    this.registrations.set(registration);

    return {
      ok: true,
      registration,
      messageType: messageType as MessageType,
      payload,
      custom,
      state,
      checks: c.list,
      recorded: consumed.recorded,
      platformUrls: consumed.platformUrls,
    };
  }
}
