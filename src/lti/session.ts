import type { FastifyInstance, FastifyRequest } from 'fastify';
import { setBounded } from '../common/bounded-map.js';
import { ForbiddenError, UnauthorizedError } from '../http/errors.js';
import { SESSION_TTL_SECONDS } from './rules.js';
import type { LaunchRole } from './tables.js';
import { redeemViewTicket, VIEW_TICKET_FIELD } from './tickets.js';

/**
 * Our own session after a launch: a short-lived HS256 token (signed with @fastify/jwt, key derived from
 * APP_SECRET) that the page holds and sends back as a bearer token. No cookie is involved, so Safari's and
 * Chrome's third-party cookie rules cannot break it.
 */
export interface LaunchSession {
  learnerId: string;
  courseId: string | null;
  resourceLinkId: string | null;
  launchId: string;
  registrationId: string;
  role: LaunchRole;
  exp: number;
}

/** The @fastify/jwt namespace holding our session signer; kept private to this capability. */
export const SESSION_JWT_NAMESPACE = 'ltiSession';
export const SESSION_AUDIENCE = 'emargement-session';
export const SESSION_TOKEN_FIELD = 'session_token';

/** Options @fastify/jwt is registered with (fixed at registration: no per-call signer is built). */
export function sessionJwtOptions(secret: Buffer) {
  return {
    secret,
    namespace: SESSION_JWT_NAMESPACE,
    sign: { algorithm: 'HS256' as const, expiresIn: SESSION_TTL_SECONDS, aud: SESSION_AUDIENCE },
    verify: { algorithms: ['HS256' as const], allowedAud: SESSION_AUDIENCE },
  };
}

interface SessionJwt {
  sign(payload: object): string;
  verify(token: string): unknown;
}

function sessionJwt(app: FastifyInstance): SessionJwt {
  const holder = (app as unknown as { jwt?: Record<string, SessionJwt> }).jwt;
  const jwt = holder?.[SESSION_JWT_NAMESPACE];
  if (!jwt) throw new Error('ltiPlugin is not registered on this Fastify instance');
  return jwt;
}

const ROLES: readonly LaunchRole[] = ['learner', 'course_team', 'staff'];

export async function signSession(app: FastifyInstance, s: Omit<LaunchSession, 'exp'>): Promise<string> {
  const claims = {
    learnerId: s.learnerId,
    courseId: s.courseId,
    resourceLinkId: s.resourceLinkId,
    launchId: s.launchId,
    registrationId: s.registrationId,
    role: s.role,
  };
  return sessionJwt(app).sign(claims);
}

/** `exp` of a token we have just signed (no need to verify our own signature to read it). */
export function sessionExpiry(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
  if (typeof payload.exp !== 'number') throw new Error('session token without exp');
  return payload.exp;
}

/**
 * Sessions already verified, by their exact token (one memo per app, so per signing key): a page sends the
 * same token with every beat. An entry is used only before the token's `exp`; after that the token is verified
 * again, which refuses it as expired. Bounded: the oldest entries go first.
 */
const verified = new WeakMap<FastifyInstance, Map<string, LaunchSession>>();
const VERIFIED_MAX = 20_000;

/** Verifies a session token; throws UnauthorizedError (expired, forged, or not a session token). */
export function verifySession(app: FastifyInstance, token: string): LaunchSession {
  let memo = verified.get(app);
  const known = memo?.get(token);
  if (known && Date.now() < known.exp * 1000) return known;
  const session = verifySessionToken(app, token);
  if (!memo) {
    memo = new Map();
    verified.set(app, memo);
  }
  setBounded(memo, token, session, VERIFIED_MAX);
  return session;
}

function verifySessionToken(app: FastifyInstance, token: string): LaunchSession {
  let claims: Record<string, unknown>;
  try {
    claims = sessionJwt(app).verify(token) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (code.includes('EXPIRED')) {
      throw new UnauthorizedError(
        'session_expired',
        'Votre session a expiré. Rechargez la page du cours pour continuer.',
        'session token expired',
      );
    }
    throw new UnauthorizedError('session_invalid', undefined, 'session token is not valid');
  }
  const { learnerId, courseId, resourceLinkId, launchId, registrationId, role, exp } = claims;
  const nullableString = (v: unknown) => v === null || typeof v === 'string';
  if (
    typeof learnerId !== 'string' ||
    typeof launchId !== 'string' ||
    typeof registrationId !== 'string' ||
    !nullableString(courseId) ||
    !nullableString(resourceLinkId) ||
    !ROLES.includes(role as LaunchRole) ||
    typeof exp !== 'number'
  ) {
    throw new UnauthorizedError('session_invalid', undefined, 'session token lacks session claims');
  }
  return Object.freeze({
    learnerId,
    courseId: courseId as string | null,
    resourceLinkId: resourceLinkId as string | null,
    launchId,
    registrationId,
    role: role as LaunchRole,
    exp,
  });
}

/** Where a page sends the token: bearer header (fetch), form field (HTML forms), query (plain GET links). */
export function extractSessionToken(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const body = request.body;
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const v = (body as Record<string, unknown>)[SESSION_TOKEN_FIELD];
    if (typeof v === 'string' && v !== '') return v;
  }
  const query = request.query;
  if (query && typeof query === 'object') {
    const v = (query as Record<string, unknown>)[SESSION_TOKEN_FIELD];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** Tokens minted for pages opened with a view ticket (see tickets.ts), by request. */
const ticketTokens = new WeakMap<FastifyRequest, string>();

/** Was this request's session given by a view ticket? */
export function openedWithTicket(request: FastifyRequest): boolean {
  return ticketTokens.has(request);
}

/**
 * The session token to put back into the page this request receives: the one it was authenticated with
 * (bearer, form field, query), or the fresh one minted for a view ticket.
 */
export function sessionTokenOf(request: FastifyRequest): string {
  return ticketTokens.get(request) ?? extractSessionToken(request) ?? '';
}

export async function requireSession(request: FastifyRequest): Promise<LaunchSession> {
  const known = ticketTokens.get(request);
  if (known) return verifySession(request.server, known);
  const token = extractSessionToken(request);
  const query = request.query as Record<string, unknown> | undefined;
  const ticket = query?.[VIEW_TICKET_FIELD];
  if (!token && typeof ticket === 'string' && ticket !== '') {
    const path = request.url.split('?')[0] ?? '';
    const fresh = await signSession(request.server, await redeemViewTicket(request.server, ticket, path));
    ticketTokens.set(request, fresh);
    return verifySession(request.server, fresh);
  }
  if (!token) {
    throw new UnauthorizedError(
      'session_missing',
      'Ouvrez cette page depuis le cours pour être reconnu.',
      'no session token (bearer, session_token field or query)',
    );
  }
  return verifySession(request.server, token);
}

export function requireRole(session: LaunchSession, ...roles: LaunchRole[]): LaunchSession {
  if (!roles.includes(session.role)) {
    throw new ForbiddenError('role_forbidden', undefined, `role ${session.role} is not one of ${roles.join(', ')}`);
  }
  return session;
}
