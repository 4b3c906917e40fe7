import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { UnauthorizedError } from '../http/errors.js';
import type { LaunchSession } from './session.js';
import type { LaunchRole } from './tables.js';

/**
 * View tickets keep the session token out of URLs (reverse-proxy logs, browser history, Referer): after a
 * form post, a page redirects (303, post/redirect/get) to `<path>?ticket=<random>`; the ticket opens that
 * one path, once, within a minute, with the session it was issued from. The learner is in a cross-site
 * iframe where cookies are blocked, so no cookie could carry the session across the redirect.
 * Stored hashed (migration 0017); redeeming is one UPDATE … WHERE used_at IS NULL, so two instances can
 * never both accept it. The page it opens gets a fresh session token, in the page only.
 */
export const VIEW_TICKET_FIELD = 'ticket';
export const VIEW_TICKET_TTL_SECONDS = 60;
const TICKET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

const hash = (ticket: string) => createHash('sha256').update(ticket, 'utf8').digest('hex');

/** A new ticket for `path`, carrying `session` (its exp excepted). */
export async function issueViewTicket(app: FastifyInstance, session: LaunchSession, path: string): Promise<string> {
  const ticket = randomBytes(32).toString('base64url');
  const { exp: _exp, ...claims } = session;
  await app.db
    .insertInto('lti_view_tickets')
    .values({
      id_hash: hash(ticket),
      path,
      claims: JSON.stringify(claims),
      expires_at: new Date(Date.now() + VIEW_TICKET_TTL_SECONDS * 1000),
    })
    .execute();
  // Housekeeping on issue keeps the table small without a scheduler.
  await app.db
    .deleteFrom('lti_view_tickets')
    .where('expires_at', '<', sql<Date>`now() - interval '10 minutes'`)
    .execute();
  return ticket;
}

/** `path?ticket=…&extra…`: where a form post redirects to. */
export async function viewTicketUrl(
  app: FastifyInstance,
  session: LaunchSession,
  path: string,
  extra: Record<string, string> = {},
): Promise<string> {
  const query = new URLSearchParams({ [VIEW_TICKET_FIELD]: await issueViewTicket(app, session, path), ...extra });
  return `${path}?${query.toString()}`;
}

const expired = () =>
  new UnauthorizedError(
    'ticket_used',
    'Cette page a déjà été ouverte ou son lien a expiré. Rechargez la page du cours pour continuer.',
    'view ticket unknown, used, expired or for another page',
  );

/** Redeems a ticket for `path`; returns the session it carries (the caller signs a fresh token). */
export async function redeemViewTicket(
  app: FastifyInstance,
  ticket: string,
  path: string,
): Promise<Omit<LaunchSession, 'exp'>> {
  if (!TICKET_SHAPE.test(ticket)) throw expired();
  const row = await app.db
    .updateTable('lti_view_tickets')
    .set({ used_at: sql<Date>`now()` })
    .where('id_hash', '=', hash(ticket))
    .where('path', '=', path)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning('claims')
    .executeTakeFirst();
  if (!row) throw expired();
  const c = row.claims as Record<string, unknown>;
  return {
    learnerId: String(c.learnerId),
    courseId: (c.courseId as string | null) ?? null,
    resourceLinkId: (c.resourceLinkId as string | null) ?? null,
    launchId: String(c.launchId),
    registrationId: String(c.registrationId),
    role: c.role as LaunchRole,
  };
}
