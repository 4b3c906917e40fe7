import { readFileSync } from 'node:fs';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../db/index.js';
import { precompress, type StaticFile, sendStaticFile } from '../http/assets.js';
import { BadRequestError, DomainError, ForbiddenError, NotFoundError } from '../http/errors.js';
import { type LaunchSession, requireSession } from '../lti/index.js';
import { beatsReceived } from '../metrics/index.js';
import { sha256Hex } from './chain.js';
import { iso } from './engine.js';
import type { Inbox } from './inbox/acknowledgement.js';
import type { TrackingConsumer } from './inbox/consumer.js';
import { PROFILES, type TrackedItem } from './rules.js';
import { ipPrefix, memoizedTicketVerifier, signTicket, ticketExpired, unverifiedJwtClaims } from './ticket.js';

export interface TrackingRuntime {
  /** HMAC key of tracker tickets (derived from APP_SECRET). */
  ticketKey: Buffer;
  /** The ingest's group-commit queue into the inbox. */
  inbox: Inbox;
  /** The crediting loop of this instance (started with the app unless disabled). */
  consumer: TrackingConsumer;
  /** Run profile sealed into the tickets of pages rendered from now on. */
  profile: keyof typeof PROFILES;
  /** The common-trunk time estimated outside the tool, shown on the learner's page when set. */
  commonTrunk?: CommonTrunkEstimate;
}

/**
 * Seconds of common-trunk time estimated from the platform's logs for one learner in one course, or null
 * when there is no estimate (no LMS event, or the learner not mapped); or that figure with the day whose
 * platform logs are still awaited (`awaitingLogsOf`, French, e.g. "3 mars 2026"). Supplied by the
 * capability that composes the tracking with the LMS estimate (see `registerCommonTrunkEstimate`).
 */
export type CommonTrunkEstimate = (
  db: Db,
  learnerId: string,
  courseId: string,
) => Promise<number | null | CommonTrunkFigure>;

export interface CommonTrunkFigure {
  seconds: number | null;
  awaitingLogsOf: string | null;
}

export const TRACKER_PATH = '/assets/tracker.js';
export const BEATS_PATH = '/api/tracking/beats';
export const TIME_PAGE_PATH = '/tracking/time';
export const TICKET_PATH = '/api/tracking/ticket';

/**
 * The script as served: without its whole-line comments, indentation and blank lines (the file stays
 * documented; a learner's phone downloads a third less). Line breaks stay, so the code parses the same; no
 * string or template literal of tracker.js spans lines, so nothing inside one is touched.
 */
export function compactScript(source: string): string {
  const lines = source
    .replace(/^\s*\/\*[\s\S]*?\*\/\s*$/gm, '')
    .split('\n')
    .map((line) => line.trim());
  return `${lines.filter((line) => line !== '' && !line.startsWith('//')).join('\n')}\n`;
}

export const TRACKER_SOURCE = compactScript(readFileSync(new URL('./tracker.js', import.meta.url), 'utf8'));
/** Content hash of the script: the markup asks for `?v=<hash>`, which may then be cached for good. */
export const TRACKER_VERSION = sha256Hex(TRACKER_SOURCE).slice(0, 16);
const TRACKER_FILE: StaticFile = {
  type: 'text/javascript; charset=utf-8',
  hash: TRACKER_VERSION,
  encoded: precompress(TRACKER_SOURCE),
};

const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
const Item = Type.Object(
  {
    kind: Type.Union([Type.Literal('open'), Type.Literal('beat'), Type.Literal('close')]),
    seq: Type.Integer({ minimum: 0, maximum: 2_000_000_000 }),
    // What the page's clock said (ISO 8601, evidence only): no other characters, so the journal stays valid JSON.
    clientTime: Type.Optional(
      Type.Union([Type.String({ maxLength: 40, pattern: '^[0-9A-Za-z:.+ -]*$' }), Type.Null()]),
    ),
    inputAgoMs: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 2_000_000_000 }), Type.Null()])),
    media: Type.Optional(Type.Boolean()),
    // Why the beat was sent: `periodic`, or a stop (`hidden`, `idle`, `pagehide`) that ends its run.
    // `interval` and `resume` are what trackers before beats-v2 (still cached in browsers) call periodic.
    cause: Type.Optional(
      Type.Union([
        Type.Literal('periodic'),
        Type.Literal('interval'),
        Type.Literal('resume'),
        Type.Literal('hidden'),
        Type.Literal('idle'),
        Type.Literal('pagehide'),
      ]),
    ),
  },
  { additionalProperties: false },
);
const BeatsBody = Type.Object(
  {
    tabId: Uuid,
    ticket: Type.String({ minLength: 1, maxLength: 2048 }),
    /** Only on the sendBeacon path, which cannot set an Authorization header. */
    session_token: Type.Optional(Type.String({ maxLength: 4096 })),
    items: Type.Array(Item, { minItems: 1, maxItems: 50 }),
  },
  { additionalProperties: false },
);
const BeatsReply = Type.Object({
  serverTime: Type.String({ description: 'server time the items were recorded at (ISO 8601)' }),
  results: Type.Array(
    Type.Object({
      seq: Type.Integer(),
      /**
       * received: committed to the journal (it will be credited, or kept as rejected evidence; a copy of an item
       * already received is credited once); duplicate: the same seq twice in this request; deferred: not stored
       * (per-tab flood limit), send it again later.
       */
      status: Type.Union([Type.Literal('received'), Type.Literal('duplicate'), Type.Literal('deferred')]),
    }),
  ),
});
export const Problem = Type.Object({ status: Type.Integer(), code: Type.String() }, { additionalProperties: true });

export function tokenOf(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  if (m) return m[1];
  const body = request.body as { session_token?: unknown } | undefined;
  return typeof body?.session_token === 'string' ? body.session_token : undefined;
}

export function courseOf(session: LaunchSession): string {
  if (!session.courseId) {
    throw new NotFoundError('no_course', 'Ouvrez cette page depuis votre cours.', 'the session has no course context');
  }
  return session.courseId;
}

/** The tracker script, its ticket renewal and the beat ingest (the reads of the credited time are in time-routes.ts). */
export async function trackingRoutes(root: FastifyInstance, options: { runtime: TrackingRuntime }): Promise<void> {
  const { runtime } = options;
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const verifyTicketMemo = memoizedTicketVerifier(runtime.ticketKey);

  // sendBeacon posts text/plain (no CORS preflight, no custom header): its body is the same JSON.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(
        new BadRequestError(
          'invalid_json',
          'Certaines informations envoyées ne sont pas valables.',
          'body is not JSON',
        ),
      );
    }
  });

  app.get(
    TRACKER_PATH,
    {
      schema: {
        querystring: Type.Object({ v: Type.Optional(Type.String({ maxLength: 64 })) }),
        response: { 200: Type.String(), 304: Type.Null() },
      },
    },
    // Versioned URLs never change; an unversioned one is revalidated every few minutes.
    async (request, reply) => sendStaticFile(request, reply, TRACKER_FILE, request.query.v === TRACKER_VERSION),
  );

  app.post(
    BEATS_PATH,
    {
      bodyLimit: 64 * 1024,
      schema: {
        body: BeatsBody,
        response: { 200: BeatsReply, 400: Problem, 401: Problem, 403: Problem, 429: Problem, 503: Problem },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const ticket = verifyTicketMemo(body.ticket);
      if (!ticket) {
        throw new BadRequestError(
          'ticket_invalid',
          'La page n’a pas pu être reconnue : rechargez-la.',
          'tracker ticket not valid',
        );
      }
      let session: LaunchSession | null = null;
      let expired = false;
      try {
        session = await requireSession(request);
      } catch (error) {
        // An expired (but genuine) token of this very learner: the items are kept as evidence, never credited.
        const claims =
          error instanceof DomainError && error.code === 'session_expired'
            ? unverifiedJwtClaims(tokenOf(request) ?? '')
            : null;
        if (!claims || claims.learnerId !== ticket.learnerId || claims.courseId !== ticket.courseId) throw error;
        expired = true;
      }
      // The ticket's lifetime is the session's: past it, the items are kept as evidence, never credited.
      if (ticketExpired(ticket, Date.now())) expired = true;
      if (session && (session.learnerId !== ticket.learnerId || session.courseId !== ticket.courseId)) {
        throw new ForbiddenError(
          'ticket_mismatch',
          undefined,
          'the tracker ticket was issued for another learner or course',
        );
      }
      if (ticket.profile !== 'standard' && app.config.nodeEnv === 'production') {
        throw new ForbiddenError(
          'profile_refused',
          undefined,
          `run profile ${ticket.profile} is refused in production`,
        );
      }
      const profile = PROFILES[ticket.profile];
      // The consumer is too far behind: nothing is stored, the page keeps its items and sends them later.
      if (await runtime.inbox.overloaded()) {
        reply.header('retry-after', '5');
        throw new DomainError(
          503,
          'tracking_busy',
          'Le service est momentanément surchargé : réessayez dans un instant.',
          'tracking inbox backlog above its limit',
        );
      }
      const items = body.items as TrackedItem[];
      const admitted = runtime.inbox.admit(body.tabId.toLowerCase(), profile, items.length, await runtime.inbox.now());
      // Past the per-tab limit: the highest seqs wait (deferred), so that a tab's items stay in order.
      const kept =
        admitted >= items.length
          ? new Set(items)
          : new Set([...items].sort((a, b) => a.seq - b.seq).slice(0, admitted));
      const outcome = await runtime.inbox.submit({
        learnerId: ticket.learnerId,
        meta: {
          tabId: body.tabId.toLowerCase(),
          learnerId: ticket.learnerId,
          courseId: ticket.courseId,
          moduleId: ticket.moduleId,
          moduleVersion: ticket.moduleVersion,
          nominalMinutes: ticket.nominalMinutes,
          profile,
          role: ticket.role,
        },
        items: items.filter((i) => kept.has(i)),
        standing: {
          expired,
          // Course team, staff and anyone viewing as a learner: recorded, never credited.
          notLearner: ticket.role !== 'learner' || (session !== null && session.role !== 'learner'),
        },
        userAgent: request.headers['user-agent']?.slice(0, 512) ?? null,
        ipPrefix: ipPrefix(request.ip),
      });
      // One answer per stored item, in the order sent; the rest waits.
      let k = 0;
      const results = items.map((i) =>
        kept.has(i)
          ? (outcome.results[k++] as (typeof outcome.results)[number])
          : { seq: i.seq, status: 'deferred' as const },
      );
      for (const r of results) beatsReceived.inc({ status: r.status });
      return { serverTime: iso(outcome.serverTimeMs), results };
    },
  );

  // The ticket lives as long as the launch session: the tracker renews it right after renewing its session
  // token. Only a ticket still alive is renewed (an expired one stays expired), for the session's own learner
  // and course, up to the session's expiry.
  app.post(
    TICKET_PATH,
    {
      schema: {
        body: Type.Object({ ticket: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({ ticket: Type.String(), exp: Type.Integer() }),
          400: Problem,
          401: Problem,
          403: Problem,
        },
      },
    },
    async (request) => {
      const session = await requireSession(request);
      const ticket = verifyTicketMemo(request.body.ticket);
      if (!ticket) {
        throw new BadRequestError(
          'ticket_invalid',
          'La page n’a pas pu être reconnue : rechargez-la.',
          'tracker ticket not valid',
        );
      }
      if (session.learnerId !== ticket.learnerId || session.courseId !== ticket.courseId) {
        throw new ForbiddenError(
          'ticket_mismatch',
          undefined,
          'the tracker ticket was issued for another learner or course',
        );
      }
      if (ticketExpired(ticket, Date.now())) {
        throw new ForbiddenError(
          'ticket_expired',
          'Cette page est ouverte depuis trop longtemps. Rechargez-la pour continuer.',
          'the tracker ticket has expired',
        );
      }
      const exp = Math.max(session.exp, ticket.exp ?? 0);
      return { ticket: signTicket(runtime.ticketKey, { ...ticket, v: 2, exp }), exp };
    },
  );
}
