import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DomainError } from '../http/errors.js';
import { sendPage } from '../http/html.js';
import {
  clearSessionCookie,
  formPrincipal,
  loginBinding,
  loginCsrfToken,
  principalOf,
  readSessionCookie,
  requirePageSession,
  setPortalPageHeaders,
  setSessionCookie,
  verifyLoginCsrf,
} from './auth.js';
import { loginPage, passwordPage } from './pages.js';
import { safeNext } from './rules.js';
import { actorOf, auditEvent, changeOwnPassword, closeSession, login, openSession, resolveSession } from './service.js';

const HtmlPage = Type.String({ description: 'French HTML page' });
const Csrf = Type.String({ maxLength: 100 });
const _IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const hidden = { hide: true } as const;
/** Posts of the sign-in form one address may make per minute on one instance (@fastify/rate-limit). */
export const LOGIN_FORM_POSTS_PER_MINUTE = 60;

export async function portalRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const pageConfig = { html: true };
  // A coarse per-address flood guard on the sign-in form, per instance and before any database work;
  // the real throttle is the shared counters of login() (every instance, counted before the password).
  await fastify.register(rateLimit, { global: false });

  app.get(
    '/portal',
    { config: pageConfig, preHandler: requirePageSession, schema: { ...hidden, response: { 303: Type.Null() } } },
    async (_request, reply) => reply.redirect('/portal/entonnoir', 303),
  );
  app.get(
    '/portal/',
    { config: pageConfig, preHandler: requirePageSession, schema: { ...hidden, response: { 303: Type.Null() } } },
    async (_request, reply) => reply.redirect('/portal/entonnoir', 303),
  );

  // --- sign-in ------------------------------------------------------------------------------
  app.get(
    '/portal/connexion',
    {
      config: pageConfig,
      schema: {
        ...hidden,
        querystring: Type.Object({ suite: Type.Optional(Type.String({ maxLength: 500 })) }),
        response: { 200: HtmlPage, 303: Type.Null() },
      },
    },
    async (request, reply) => {
      setPortalPageHeaders(reply);
      const next = safeNext(request.query.suite);
      if (await resolveSession(app.db, readSessionCookie(request))) return reply.redirect(next, 303);
      const binding = loginBinding(request, reply, true) as string;
      return sendPage(reply, loginPage({ csrf: loginCsrfToken(request, binding), next }));
    },
  );

  app.post(
    '/portal/connexion',
    {
      config: { ...pageConfig, rateLimit: { max: LOGIN_FORM_POSTS_PER_MINUTE, timeWindow: '1 minute' } },
      schema: {
        ...hidden,
        body: Type.Object({
          identifiant: Type.String({ maxLength: 200 }),
          mot_de_passe: Type.String({ maxLength: 1000 }),
          _csrf: Type.Optional(Csrf),
          suite: Type.Optional(Type.String({ maxLength: 500 })),
        }),
        response: { 200: HtmlPage, 303: Type.Null(), 401: HtmlPage, 403: HtmlPage },
      },
    },
    async (request, reply) => {
      setPortalPageHeaders(reply);
      const next = safeNext(request.body.suite);
      const existing = loginBinding(request, reply, false);
      if (
        !verifyLoginCsrf(request, existing, request.body._csrf) ||
        request.headers['sec-fetch-site'] === 'cross-site'
      ) {
        const binding = loginBinding(request, reply, true) as string;
        return sendPage(
          reply,
          loginPage({
            csrf: loginCsrfToken(request, binding),
            next,
            username: request.body.identifiant,
            error: 'La page de connexion avait expiré. Saisissez à nouveau votre mot de passe.',
          }),
          403,
        );
      }
      const result = await login(app.db, {
        username: request.body.identifiant,
        password: request.body.mot_de_passe,
        ip: request.ip,
      });
      if (!result.ok) {
        request.log.info({ outcome: 'failed' }, 'portal sign-in refused');
        return sendPage(
          reply,
          loginPage({
            csrf: loginCsrfToken(request, existing as string),
            next,
            username: request.body.identifiant,
            error: 'Identifiant ou mot de passe incorrect.',
          }),
          401,
        );
      }
      // A fresh session id at every sign-in: an id planted before sign-in is worthless (session fixation).
      await closeSession(app.db, readSessionCookie(request));
      setSessionCookie(request, reply, await openSession(app.db, result.userId));
      request.log.info({ userId: result.userId }, 'portal sign-in');
      return reply.redirect(result.mustChangePassword ? '/portal/mot-de-passe' : next, 303);
    },
  );

  app.post(
    '/portal/deconnexion',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: { ...hidden, body: Type.Object({ _csrf: Type.Optional(Csrf) }), response: { 303: Type.Null() } },
    },
    async (request, reply) => {
      formPrincipal(request, request.body._csrf);
      await closeSession(app.db, readSessionCookie(request));
      clearSessionCookie(request, reply);
      return reply.redirect('/portal/connexion', 303);
    },
  );

  // --- own password -------------------------------------------------------------------------
  app.get(
    '/portal/mot-de-passe',
    { config: pageConfig, preHandler: requirePageSession, schema: { ...hidden, response: { 200: HtmlPage } } },
    async (request, reply) => {
      const principal = principalOf(request);
      const forced = 'mustChangePassword' in principal && principal.mustChangePassword === true;
      return sendPage(reply, passwordPage({ request, principal, forced }));
    },
  );

  app.post(
    '/portal/mot-de-passe',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        body: Type.Object({
          actuel: Type.String({ maxLength: 1000 }),
          nouveau: Type.String({ maxLength: 1000 }),
          confirmation: Type.String({ maxLength: 1000 }),
          _csrf: Type.Optional(Csrf),
        }),
        response: { 200: HtmlPage, 400: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = formPrincipal(request, request.body._csrf);
      const forced = 'mustChangePassword' in principal && principal.mustChangePassword === true;
      if (request.body.nouveau !== request.body.confirmation) {
        return sendPage(
          reply,
          passwordPage({
            request,
            principal,
            forced,
            error: 'Les deux saisies du nouveau mot de passe sont différentes.',
          }),
          400,
        );
      }
      try {
        await changeOwnPassword(app.db, principal, request.body.actuel, request.body.nouveau);
      } catch (error) {
        if (error instanceof DomainError && error.status === 400) {
          return sendPage(reply, passwordPage({ request, principal, forced, error: error.publicMessage }), 400);
        }
        throw error;
      }
      await auditEvent(app.db, actorOf(principal), 'account.password_changed', {});
      return sendPage(
        reply,
        passwordPage({
          request,
          principal: { ...principal, mustChangePassword: false } as typeof principal,
          forced: false,
          done: true,
        }),
      );
    },
  );
}
