import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { deriveKey } from '../config/secrets.js';
import { DomainError, ForbiddenError, UnauthorizedError } from '../http/errors.js';
import { html, type SafeHtml } from '../http/html.js';
import {
  cookieOptions,
  csrfToken,
  loginCookieName,
  type Principal,
  parseBearer,
  SESSION_ABSOLUTE_MS,
  sessionCookieName,
  verifyCsrfToken,
} from './rules.js';
import { actorOf, auditEvent, resolveSession, resolveToken, type SessionPrincipal } from './service.js';

// @fastify/cookie is registered in the portal's own contexts only (see registerPortalCookies): the LTI
// pages in the LMS iframe neither read nor set these cookies.
const parseCookies = (request: FastifyRequest): Record<string, string | undefined> => request.cookies ?? {};

const principals = new WeakMap<FastifyRequest, SessionPrincipal | Principal>();
const keys = new WeakMap<object, Buffer>();

function csrfKey(request: FastifyRequest): Buffer {
  const config = request.server.config;
  let key = keys.get(config);
  if (!key) {
    key = deriveKey(config.appSecret, 'portal-csrf');
    keys.set(config, key);
  }
  return key;
}

function production(request: FastifyRequest): boolean {
  return request.server.config.nodeEnv === 'production';
}

export function readSessionCookie(request: FastifyRequest): string | undefined {
  return parseCookies(request)[sessionCookieName(production(request))];
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, value: string): void {
  reply.setCookie(
    sessionCookieName(production(request)),
    value,
    cookieOptions(production(request), SESSION_ABSOLUTE_MS / 1000),
  );
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(sessionCookieName(production(request)), cookieOptions(production(request)));
}

/** The pre-session cookie that binds the sign-in form's CSRF token (login CSRF). */
export function loginBinding(request: FastifyRequest, reply: FastifyReply, create: boolean): string | undefined {
  const name = loginCookieName(production(request));
  const existing = parseCookies(request)[name];
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  if (!create) return undefined;
  const value = randomCookieValue();
  reply.setCookie(name, value, cookieOptions(production(request), 60 * 60));
  return value;
}

function randomCookieValue(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return Buffer.from(bytes).toString('base64url');
}

export function loginCsrfToken(request: FastifyRequest, binding: string): string {
  return csrfToken(csrfKey(request), `login:${binding}`);
}

export function verifyLoginCsrf(request: FastifyRequest, binding: string | undefined, token: unknown): boolean {
  return binding !== undefined && verifyCsrfToken(csrfKey(request), `login:${binding}`, token);
}

/** Security headers of every portal page: never framed, no caching of personal data. */
export function setPortalPageHeaders(reply: FastifyReply): void {
  reply.header(
    'content-security-policy',
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; " +
      "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
  );
  reply.header('x-frame-options', 'DENY');
  reply.header('cache-control', 'no-store');
  reply.header('referrer-policy', 'same-origin');
  reply.header('x-content-type-options', 'nosniff');
}

/**
 * preHandler of portal pages: a valid session, else a redirection to the sign-in page. Someone whose
 * password was reset must choose a new one before anything else.
 */
export async function requirePageSession(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  setPortalPageHeaders(reply);
  const principal = await resolveSession(request.server.db, readSessionCookie(request));
  if (!principal) {
    const next = request.method === 'GET' ? `?suite=${encodeURIComponent(request.url)}` : '';
    return reply.redirect(`/portal/connexion${next}`, 303);
  }
  const path = request.url.split('?')[0];
  if (principal.mustChangePassword && path !== '/portal/mot-de-passe' && path !== '/portal/deconnexion') {
    return reply.redirect('/portal/mot-de-passe', 303);
  }
  principals.set(request, principal);
  return undefined;
}

/**
 * preHandler of API routes: `Authorization: Bearer <personal API token>` (RFC 6750). The portal's
 * session cookie is deliberately not accepted here, so that a cross-site request can never use it.
 */
export async function requireApiToken(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const token = parseBearer(request.headers.authorization);
  const principal = token ? await resolveToken(request.server.db, token) : null;
  if (!principal) {
    reply.header('www-authenticate', token ? 'Bearer error="invalid_token"' : 'Bearer realm="emargement"');
    throw new UnauthorizedError(
      token ? 'invalid_token' : 'token_required',
      'Jeton d’accès absent, révoqué ou expiré.',
      token ? 'the bearer token is unknown, revoked, expired or its account is disabled' : 'missing bearer token',
    );
  }
  reply.header('cache-control', 'no-store');
  principals.set(request, principal);
  return undefined;
}

/** The principal set by requirePageSession or requireApiToken. */
export function principalOf(request: FastifyRequest): Principal {
  const p = principals.get(request);
  if (!p) throw new UnauthorizedError('not_signed_in', 'Connectez-vous pour continuer.');
  return p;
}

export function requireOperator(principal: Principal): void {
  if (principal.role !== 'operator') {
    throw new ForbiddenError('operators_only', 'Cette page est réservée aux opérateurs.');
  }
}

function sessionBinding(principal: Principal): string {
  if (!principal.sessionHash) throw new ForbiddenError('session_required', 'Cette action demande une session.');
  return `session:${principal.sessionHash}`;
}

export function csrfTokenFor(request: FastifyRequest, principal: Principal): string {
  return csrfToken(csrfKey(request), sessionBinding(principal));
}

/** The hidden field every portal form carries. */
export function csrfField(request: FastifyRequest, principal: Principal): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrfTokenFor(request, principal)}">`;
}

/**
 * Refuses a state-changing form post without this session's token, or sent from another site
 * (Fetch Metadata, when the browser sends it, is a second, independent check).
 */
export function assertCsrf(request: FastifyRequest, principal: Principal, token: unknown): void {
  const site = request.headers['sec-fetch-site'];
  const crossSite = site === 'cross-site';
  if (crossSite || !verifyCsrfToken(csrfKey(request), sessionBinding(principal), token)) {
    throw new ForbiddenError(
      'csrf_failed',
      'Le formulaire a expiré ou ne vient pas de ce site. Rechargez la page et recommencez.',
      crossSite ? 'cross-site form post' : 'missing or wrong CSRF token',
    );
  }
}

/**
 * Audits every 403 answered to a signed-in person or token (another fund's data, an operators' page, a
 * form from another site): registered once on the root instance, so that the refusals of every
 * capability (exports, file numbers, certificates…) land in the audit log the same way.
 */
export function registerAccessAudit(app: FastifyInstance): void {
  app.addHook('onError', async (request, _reply, error) => {
    if (!(error instanceof DomainError) || error.status !== 403) return;
    const principal = principals.get(request);
    if (!principal) return;
    const query = (request.query ?? {}) as Record<string, unknown>;
    const body = (request.body ?? {}) as Record<string, unknown>;
    const fund = typeof query.fund === 'string' ? query.fund : typeof body.fund === 'string' ? body.fund : null;
    try {
      await auditEvent(request.server.db, actorOf(principal), 'access.denied', {
        code: error.code,
        method: request.method,
        path: request.url.split('?')[0],
        ...(fund ? { fund } : {}),
      });
    } catch (err) {
      request.log.warn({ err }, 'access refusal could not be audited');
    }
  });
}

/** Looks up the person for a form post, then checks its CSRF token. */
export function formPrincipal(request: FastifyRequest, token: string | undefined) {
  const principal = principalOf(request);
  assertCsrf(request, principal, token);
  return principal;
}
