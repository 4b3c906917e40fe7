import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { PRIVACY_NOTICE_PATH } from '../http/html.js';
import { requireSession } from '../lti/index.js';
import { learnerDataExport } from './data-export.js';
import type { PrivacyDeps } from './service.js';
import { type Controller, EXPORT_PATH, noticePage, summaryPage } from './views.js';

const ExportBody = Type.Object(
  {
    session_token: Type.String({ minLength: 1, maxLength: 4096 }),
    format: Type.Union([Type.Literal('json'), Type.Literal('html')]),
  },
  { additionalProperties: false },
);
const HtmlPage = Type.String({ description: 'French HTML page' });

/**
 * GET /vos-donnees: the public notice (no session: it holds nothing about anyone).
 * POST /privacy/export: the learner's own data (GDPR art. 15 and 20) as a file to download, JSON or the French
 * summary; the session token travels in the form's body (the learner is in the LMS iframe, cookies blocked).
 */
export async function privacyRoutes(
  root: FastifyInstance,
  options: { deps: PrivacyDeps; controller: () => Controller | null },
): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { deps } = options;

  app.get(
    PRIVACY_NOTICE_PATH,
    { config: { html: true }, schema: { response: { 200: HtmlPage } } },
    async (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'public, max-age=300')
        .send(noticePage({ controller: options.controller(), policy: deps.policy })),
  );

  app.post(
    EXPORT_PATH,
    {
      config: { html: true },
      schema: { body: ExportBody, response: { 200: Type.String(), 400: HtmlPage, 401: HtmlPage, 404: HtmlPage } },
    },
    async (request, reply) => {
      const session = await requireSession(request);
      const data = await learnerDataExport(deps, session.learnerId, options.controller());
      const day = data.generatedAt.slice(0, 10);
      reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
      if (request.body.format === 'json') {
        return reply
          .type('application/json; charset=utf-8')
          .header('content-disposition', `attachment; filename="mes-donnees-${day}.json"`)
          .send(`${JSON.stringify(data, null, 2)}\n`);
      }
      return reply
        .type('text/html; charset=utf-8')
        .header('content-disposition', `attachment; filename="mes-donnees-${day}.html"`)
        .send(summaryPage(data));
    },
  );
}
