import { createHmac, timingSafeEqual } from 'node:crypto';
import { setBounded } from '../common/bounded-map.js';
import { canonicalJson } from './chain.js';
import { PROFILES, type RunProfile } from './rules.js';

/**
 * The tracker ticket: what the server knew when it rendered the module page (learner, course, module and
 * its version and nominal duration, the launch role, the run profile), HMAC-signed so that a page can only
 * report time for the module it was actually served. The session token authenticates the sender; the
 * ticket binds the tab. It also names the learner when their token has expired, so that such beats can be
 * kept as evidence (and never credited).
 *
 * Version 2 tickets have a lifetime: `exp` (seconds), the launch session's expiry when the page was rendered,
 * moved forward with the session (`POST /api/tracking/ticket`). Items sent on an expired ticket are kept as
 * evidence and never credited, so a page left open can no longer report time for ever. Version 1 tickets
 * (pages rendered before tickets had a lifetime) carry no `exp`; they are still taken, bounded by the session
 * token they travel with.
 */
export interface TicketClaims {
  v: 1 | 2;
  /** Expiry, seconds since the epoch (version 2). */
  exp?: number;
  learnerId: string;
  courseId: string;
  moduleId: string;
  moduleVersion: number | null;
  nominalMinutes: number;
  role: string;
  profile: RunProfile['name'];
}

export function signTicket(key: Buffer, claims: TicketClaims): string {
  const payload = Buffer.from(canonicalJson({ ...claims }), 'utf8').toString('base64url');
  const mac = createHmac('sha256', key).update(payload).digest('base64url');
  return `${payload}.${mac}`;
}

export function verifyTicket(key: Buffer, ticket: string): TicketClaims | null {
  const dot = ticket.indexOf('.');
  if (dot <= 0 || dot !== ticket.lastIndexOf('.')) return null;
  const payload = ticket.slice(0, dot);
  const mac = Buffer.from(ticket.slice(dot + 1), 'base64url');
  const expected = createHmac('sha256', key).update(payload).digest();
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return null;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const c = claims as Partial<TicketClaims>;
  if (
    (c.v !== 1 && c.v !== 2) ||
    (c.v === 2 && !Number.isInteger(c.exp)) ||
    typeof c.learnerId !== 'string' ||
    typeof c.courseId !== 'string' ||
    typeof c.moduleId !== 'string' ||
    !(c.moduleVersion === null || Number.isInteger(c.moduleVersion)) ||
    !Number.isInteger(c.nominalMinutes) ||
    (c.nominalMinutes as number) <= 0 ||
    typeof c.role !== 'string' ||
    typeof c.profile !== 'string' ||
    !(c.profile in PROFILES)
  ) {
    return null;
  }
  return c as TicketClaims;
}

/** Whether a ticket's lifetime is over at `nowMs` (a version 1 ticket has none). */
export function ticketExpired(claims: TicketClaims, nowMs: number): boolean {
  return claims.v === 2 && (claims.exp as number) * 1000 <= nowMs;
}

/**
 * `verifyTicket` with a bounded memo of the tickets it already found valid: a page sends the same ticket with
 * every beat. Safe because the memo holds only the signature check (the lifetime is checked on every use) and
 * the key never changes for the life of the process; a
 * ticket that fails is checked again every time. The oldest entries go first when the memo is full.
 */
export function memoizedTicketVerifier(key: Buffer, size = 20_000): (ticket: string) => TicketClaims | null {
  const valid = new Map<string, Readonly<TicketClaims>>();
  return (ticket) => {
    const known = valid.get(ticket);
    if (known) return known;
    const claims = verifyTicket(key, ticket);
    if (!claims) return null;
    setBounded(valid, ticket, Object.freeze(claims), size);
    return claims;
  };
}

/** Claims of a session token this request has already verified (catalog checked it): no signature check here. */
export function unverifiedJwtClaims(token: string): Record<string, unknown> | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Evidence keeps a truncated address: /24 for IPv4, /48 for IPv6. */
export function ipPrefix(ip: string | undefined): string | null {
  if (!ip) return null;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/i.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (ip.includes(':')) {
    const [head] = ip.split('::');
    const groups = (head ?? '').split(':').filter((g) => g !== '');
    const first = [...groups, '0', '0', '0'].slice(0, 3).map((g) => g.toLowerCase());
    return `${first.join(':')}::/48`;
  }
  return null;
}
