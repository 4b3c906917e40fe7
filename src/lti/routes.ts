import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ltiLaunches } from '../metrics/index.js';
import { AUTO_POST_SCRIPT_PATH, launchErrorPage, launchSuccessPage, SESSION_SCRIPT_PATH } from './pages.js';
import { rememberPlatformUrls } from './queries.js';
import { completeLaunch, type LaunchHandler, type LtiRuntime, renewSession, startLogin } from './service.js';
import { requireSession } from './session.js';
import { STATE_COOKIE_PREFIX, stateCookieHeader } from './state.js';
import type { CheckFailure, LoginParams } from './validator.js';

const HtmlPage = Type.String({ description: 'French HTML page (shown inside the LMS iframe)' });

/** OIDC third-party initiated login parameters (LTI Core §4.1); unknown extras are ignored. */
const LoginParamsSchema = Type.Object(
  {
    iss: Type.Optional(Type.String()),
    login_hint: Type.Optional(Type.String()),
    target_link_uri: Type.Optional(Type.String()),
    client_id: Type.Optional(Type.String()),
    lti_deployment_id: Type.Optional(Type.String()),
    lti_message_hint: Type.Optional(Type.String()),
    lti_storage_target: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** Authentication response (OIDC Core §3.1.2.5 form_post): id_token + state, or error + state. */
const LaunchBodySchema = Type.Object(
  {
    id_token: Type.Optional(Type.String()),
    state: Type.Optional(Type.String()),
    error: Type.Optional(Type.String()),
    error_description: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

const JwksSchema = Type.Object({
  keys: Type.Array(
    Type.Object({
      kty: Type.String(),
      kid: Type.String(),
      alg: Type.String(),
      use: Type.String(),
      n: Type.String(),
      e: Type.String(),
    }),
  ),
});

const RenewReply = Type.Object({ token: Type.String(), exp: Type.Integer() });

/**
 * Login and launch are the hot path (one pair per learner opening the module): Fastify's "incoming request"
 * and "request completed" info lines would make four lines a pair, 10 % of the CPU at `info`. These routes log
 * at warn — refusals (with the failed check) and errors stay — plus one "lti launch accepted" summary line.
 */
const HOT_PATH_LOG_LEVEL = 'warn' as const;

/** The id_token is a few KB; a launch body beyond this is not an LTI launch. */
const LAUNCH_BODY_LIMIT = 64 * 1024;

function defaultHandler(publicUrl: string): LaunchHandler {
  return async (launch, _request, reply) =>
    reply.type('text/html; charset=utf-8').send(
      launchSuccessPage({
        role: launch.session.role,
        courseTitle: launch.claims.context?.title ?? launch.claims.context?.label ?? null,
        sessionToken: launch.sessionToken,
        exp: launch.session.exp,
        publicUrl,
        deepLinking: launch.messageType === 'LtiDeepLinkingRequest',
      }),
    );
}

function noStore(reply: FastifyReply): void {
  // The login URL carries login_hint and the launch page carries the session token: keep both out of
  // caches and out of Referer headers.
  reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
}

function refuse(request: FastifyRequest, reply: FastifyReply, failure: CheckFailure, stage: 'login' | 'launch') {
  request.log.warn({ stage, check: failure.failed, reason: failure.reason }, `lti ${stage} refused`);
  ltiLaunches.inc({ stage, outcome: 'refused', reason: failure.failed });
  const { status, body } = launchErrorPage(failure.failed, request.id);
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

export async function ltiRoutes(app: FastifyInstance, options: { runtime: LtiRuntime }): Promise<void> {
  const { runtime } = options;
  const publicUrl = app.config.publicUrl;
  const fallback = defaultHandler(publicUrl);

  // Page scripts of the pages shown after a launch (no inline script, so the CSP can forbid them).
  for (const [path, file] of [
    [SESSION_SCRIPT_PATH, 'session.js'],
    [AUTO_POST_SCRIPT_PATH, 'auto-post.js'],
  ] as const) {
    const source = readFileSync(new URL(`./assets/${file}`, import.meta.url), 'utf8');
    app.get(path, { schema: { response: { 200: Type.String() } } }, async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').type('text/javascript; charset=utf-8').send(source),
    );
  }

  // Security Framework §6.3: the tool's public keys, for the platform to verify what the tool signs.
  app.get('/.well-known/jwks.json', { schema: { response: { 200: JwksSchema } } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return runtime.toolKeys.jwks();
  });

  const login = async (request: FastifyRequest, reply: FastifyReply) => {
    noStore(reply);
    const params = (request.method === 'POST' ? request.body : request.query) as LoginParams | undefined;
    const outcome = await startLogin(runtime, app.db, publicUrl, params ?? {});
    if (!outcome.ok) return refuse(request, reply, outcome, 'login');
    ltiLaunches.inc({ stage: 'login', outcome: 'accepted', reason: '' });
    reply.header('set-cookie', outcome.cookie);
    return reply.redirect(outcome.redirectUrl, 302);
  };
  const loginSchema = { response: { 302: Type.Null(), 400: HtmlPage, 401: HtmlPage } };
  const loginOptions = { config: { html: true }, logLevel: HOT_PATH_LOG_LEVEL };
  app.get('/lti/login', { ...loginOptions, schema: { querystring: LoginParamsSchema, ...loginSchema } }, login);
  app.post('/lti/login', { ...loginOptions, schema: { body: LoginParamsSchema, ...loginSchema } }, login);

  const launch = async (request: FastifyRequest, reply: FastifyReply) => {
    noStore(reply);
    const body = (request.body ?? {}) as Record<string, unknown>;
    const outcome = await completeLaunch(app, runtime, body, request.headers.cookie);
    if (!outcome.ok) return refuse(request, reply, outcome, 'launch');
    const { launch: validated } = outcome;
    rememberPlatformUrls(request, outcome.platformUrls);
    ltiLaunches.inc({ stage: 'launch', outcome: 'accepted', reason: validated.messageType });
    // The one info line of an accepted launch (the route logs at warn, see HOT_PATH_LOG_LEVEL).
    app.log.info(
      {
        reqId: request.id,
        registrationId: validated.registration.id,
        messageType: validated.messageType,
        role: validated.session.role,
        launchId: validated.session.launchId,
        skippedChecks: outcome.checks.skipped,
      },
      'lti launch accepted',
    );
    // The state cookie did its job: drop it rather than let it linger for its ten minutes.
    if (request.headers.cookie?.includes(`${STATE_COOKIE_PREFIX}${outcome.stateJti}=`)) {
      reply.header('set-cookie', stateCookieHeader(outcome.stateJti, publicUrl, 0));
    }
    const handler = runtime.handlers.get(validated.messageType) ?? fallback;
    return handler(validated, request, reply);
  };
  const launchOptions = {
    config: { html: true },
    logLevel: HOT_PATH_LOG_LEVEL,
    bodyLimit: LAUNCH_BODY_LIMIT,
    schema: { body: LaunchBodySchema, response: { 200: HtmlPage, 400: HtmlPage, 401: HtmlPage, 503: HtmlPage } },
  };
  // Both redirect URIs accept both message types: older Open edX posts deep-linking launches to either.
  app.post('/lti/launch', launchOptions, launch);
  app.post('/lti/deep-linking', launchOptions, launch);

  app.post(
    '/api/session/renew',
    {
      schema: {
        querystring: Type.Object({ session_token: Type.Optional(Type.String()) }),
        response: { 200: RenewReply },
      },
    },
    async (request) => renewSession(app, await requireSession(request)),
  );
}
