import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { sendPage } from '../http/html.js';
import { assertCsrf, principalOf, registerPortalCookies, requirePageSession } from '../portal/index.js';
import type { Mailer } from './mailer.js';
import { digestPage } from './pages.js';
import { isSubscribed, mayReceiveDigest, setSubscription } from './service.js';

const HtmlPage = Type.String({ description: 'French HTML page' });
const hidden = { hide: true } as const;

export async function digestRoutes(fastify: FastifyInstance, options: { mailer: Mailer | null }): Promise<void> {
  await registerPortalCookies(fastify);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const pageConfig = { html: true };

  app.get(
    '/portal/resume-hebdo',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        querystring: Type.Object({
          fait: Type.Optional(Type.Union([Type.Literal('inscrit'), Type.Literal('desinscrit'), Type.Literal('')])),
        }),
        response: { 200: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const subscribed = await isSubscribed(app, principal);
      return sendPage(
        reply,
        digestPage({ request, principal, subscribed, mailer: options.mailer, done: request.query.fait || undefined }),
      );
    },
  );

  app.post(
    '/portal/resume-hebdo',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        body: Type.Object({
          action: Type.Union([Type.Literal('inscrire'), Type.Literal('desinscrire')]),
          _csrf: Type.Optional(Type.String({ maxLength: 100 })),
        }),
        response: { 303: Type.Null(), 403: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      assertCsrf(request, principal, request.body._csrf);
      if (request.body.action === 'inscrire' && !mayReceiveDigest(principal)) {
        return sendPage(reply, digestPage({ request, principal, subscribed: false, mailer: options.mailer }), 403);
      }
      await setSubscription(app, principal, request.body.action === 'inscrire');
      return reply.redirect(
        `/portal/resume-hebdo?fait=${request.body.action === 'inscrire' ? 'inscrit' : 'desinscrit'}`,
        303,
      );
    },
  );
}
