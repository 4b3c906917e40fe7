import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError, DomainError, UnauthorizedError } from '../http/errors.js';
import { ProblemDetails } from '../http/schemas.js';
import { lrsStatements } from '../metrics/index.js';
import { credentialVerifier, type Pusher, StatementBatchError, storeStatements } from './lrs.js';
import { isUuid } from './rules.js';

/**
 * The xAPI statements endpoint an Open edX platform pushes to with event-routing-backends
 * (docs/lms-estimate.md, "Receiving statements"). It implements the part of an LRS's Statement Resource
 * (xAPI 1.0.3, Communication part 2.1) a pushing platform uses: `POST` of one statement or an array,
 * `PUT` of one statement with `statementId`, and the About Resource (part 2.8). It stores nothing but the
 * events the estimate needs, and never answers statements back (no GET of statements).
 */

export const XAPI_VERSION = '1.0.3';
export const STATEMENTS_PATH = '/xapi/statements';

export interface LrsOptions {
  /** Requests per minute and credential (or per address before authentication). */
  rateLimitPerMinute?: number;
  /** Largest request body, in bytes. */
  bodyLimit?: number;
  /** Most statements in one request. */
  maxStatements?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    lrsPusher?: Pusher;
  }
}

/** The Basic auth user name and password, or null. */
export function basicCredentials(header: string | undefined): { key: string; secret: string } | null {
  const m = typeof header === 'string' ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { key: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

const NOT_AUTHORISED = 'Identifiants de la plateforme refusés.';
const BAD_STATEMENTS = 'Certaines déclarations xAPI envoyées ne sont pas valables : aucune n’a été enregistrée.';

export async function lrsRoutes(root: FastifyInstance, options: LrsOptions = {}): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const verify = credentialVerifier(app.db);
  const maxStatements = options.maxStatements ?? 1000;
  const bodyLimit = options.bodyLimit ?? 5 * 1024 * 1024;

  await app.register(rateLimit, {
    max: options.rateLimitPerMinute ?? 6000,
    timeWindow: '1 minute',
    keyGenerator: (request) => {
      const basic = basicCredentials(request.headers.authorization);
      return basic ? `lrs:${basic.key}` : `ip:${request.ip}`;
    },
  });

  // Every answer says which xAPI version it speaks, errors included (Communication part 3.3).
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('X-Experience-API-Version', XAPI_VERSION);
    return payload;
  });

  /** Authentication, then the version header: before the body is read, so a refused push costs little. */
  async function authorise(request: FastifyRequest): Promise<void> {
    const basic = basicCredentials(request.headers.authorization);
    const pusher = basic ? await verify(basic.key, basic.secret) : null;
    if (!pusher) {
      throw new UnauthorizedError(
        basic ? 'lrs_credentials_refused' : 'lrs_credentials_missing',
        NOT_AUTHORISED,
        basic ? 'unknown key, wrong secret or revoked credential' : 'Basic authentication is required',
      );
    }
    const version = request.headers['x-experience-api-version'];
    if (typeof version !== 'string' || version.trim() === '') {
      throw new BadRequestError(
        'xapi_version_missing',
        'L’en-tête X-Experience-API-Version est obligatoire.',
        'the X-Experience-API-Version header is required (xAPI 1.0.3, Communication part 3.3)',
      );
    }
    if (!/^1\.0(\.\d+)?$/.test(version.trim())) {
      throw new BadRequestError(
        'xapi_version_unsupported',
        'Cette version de xAPI n’est pas prise en charge (1.0.x seulement).',
        `X-Experience-API-Version "${version}" is not supported: 1.0.x only`,
      );
    }
    request.lrsPusher = pusher;
  }

  // preParsing: after the rate limit (a route-level onRequest hook, so after any onRequest hook of this
  // context: refused attempts are counted too), before the body is read.
  app.addHook('preParsing', async (request, reply, payload) => {
    if (request.url.startsWith('/xapi/about')) return payload;
    reply.header('WWW-Authenticate', 'Basic realm="xAPI", charset="UTF-8"');
    await authorise(request);
    reply.removeHeader('WWW-Authenticate');
    return payload;
  });

  async function store(request: FastifyRequest, statements: unknown[]) {
    if (statements.length === 0) {
      throw new BadRequestError('no_statement', BAD_STATEMENTS, 'the body holds no statement');
    }
    if (statements.length > maxStatements) {
      throw new DomainError(
        413,
        'too_many_statements',
        'Trop de déclarations dans un seul envoi.',
        `at most ${maxStatements} statements per request`,
      );
    }
    try {
      const stored = await storeStatements(app.db, request.lrsPusher as Pusher, statements);
      request.log.info(
        {
          credential: request.lrsPusher?.credential.key,
          statements: statements.length,
          inserted: stored.inserted,
          duplicates: stored.duplicates,
          notKept: stored.notKept,
        },
        'xAPI statements received',
      );
      lrsStatements.inc({ outcome: 'stored' }, stored.inserted);
      lrsStatements.inc({ outcome: 'duplicate' }, stored.duplicates);
      return stored;
    } catch (error) {
      if (error instanceof StatementBatchError) {
        lrsStatements.inc({ outcome: 'rejected' }, statements.length);
        throw new BadRequestError('invalid_statements', BAD_STATEMENTS, error.message, { errors: error.errors });
      }
      throw error;
    }
  }

  const Statement = Type.Object({}, { additionalProperties: true });
  const Body = Type.Union([Statement, Type.Array(Type.Unknown())]);
  const errors = { 400: ProblemDetails, 401: ProblemDetails, 413: ProblemDetails, 429: ProblemDetails };

  app.post(
    STATEMENTS_PATH,
    {
      bodyLimit,
      schema: { body: Body, response: { 200: Type.Array(Type.String()), ...errors } },
    },
    async (request) => {
      const body = request.body as unknown;
      const statements = Array.isArray(body) ? body : [body];
      return (await store(request, statements)).ids;
    },
  );

  app.put(
    STATEMENTS_PATH,
    {
      bodyLimit,
      schema: {
        querystring: Type.Object({ statementId: Type.String({ maxLength: 64 }) }),
        body: Statement,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const { statementId } = request.query;
      if (!isUuid(statementId)) {
        throw new BadRequestError('invalid_statement_id', BAD_STATEMENTS, 'statementId must be a UUID');
      }
      const body = request.body as Record<string, unknown>;
      if (
        body.id !== undefined &&
        (typeof body.id !== 'string' || body.id.toLowerCase() !== statementId.toLowerCase())
      ) {
        throw new BadRequestError('statement_id_mismatch', BAD_STATEMENTS, 'the statement id differs from statementId');
      }
      await store(request, [{ ...body, id: statementId }]);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/xapi/about',
    { schema: { response: { 200: Type.Object({ version: Type.Array(Type.String()) }) } } },
    async () => ({ version: [XAPI_VERSION] }),
  );
}
