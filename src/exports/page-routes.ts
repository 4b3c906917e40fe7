import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { sendPage } from '../http/html.js';
import { principalOf, readDownloadProgress, requirePageSession } from '../portal/index.js';
import { sendExport } from './download.js';
import { EXPORTS_SCRIPT, exportsPage, funnelPage } from './pages.js';
import {
  ExportsPageQuery,
  FileReply,
  ForecastQuery,
  filterInput,
  HtmlPage,
  PageExportQuery,
  Problem,
  ProgressReply,
} from './schemas.js';
import { filterChoices, forecast, funnel, resolveFilter } from './service.js';

/** The portal's pages of this capability: the funnel and forecast, the export page and its download. */
export async function exportPageRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const page = { html: true };

  app.get(
    '/portal/entonnoir',
    {
      config: page,
      preHandler: requirePageSession,
      schema: { querystring: ForecastQuery, response: { 200: HtmlPage } },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const filter = resolveFilter(principal, filterInput(request.query));
      const [choices, view, prevision] = await Promise.all([
        filterChoices(app, principal),
        funnel(app, filter),
        forecast(app, filter, { by: request.query.by || undefined }),
      ]);
      return sendPage(reply, funnelPage({ request, principal, filter, choices, view, forecast: prevision }));
    },
  );

  app.get(
    '/portal/exports',
    {
      config: page,
      preHandler: requirePageSession,
      schema: { querystring: ExportsPageQuery, response: { 200: HtmlPage } },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const filter = resolveFilter(principal, filterInput(request.query));
      const choices = await filterChoices(app, principal);
      return sendPage(reply, exportsPage({ request, principal, filter, choices }));
    },
  );

  app.get(
    '/portal/exports/telecharger',
    {
      config: page,
      preHandler: requirePageSession,
      schema: { querystring: PageExportQuery, response: { 200: FileReply } },
    },
    async (request, reply) => {
      const format = request.query.format ?? 'csv-excel';
      return sendExport(
        app,
        request,
        reply,
        request.query.kind,
        format === 'xlsx' ? 'xlsx' : 'csv',
        filterInput(request.query),
        request.query.ticket || undefined,
        format === 'csv-excel',
      );
    },
  );

  app.get(
    '/portal/exports/progression/:ticket',
    {
      schema: {
        params: Type.Object({ ticket: Type.String({ maxLength: 64 }) }),
        response: { 200: ProgressReply, 401: Problem, 404: Problem },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return readDownloadProgress(request, request.params.ticket);
    },
  );

  app.get('/portal/assets/exports.js', { schema: { response: { 200: Type.String() } } }, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .header('x-content-type-options', 'nosniff')
      .send(EXPORTS_SCRIPT),
  );
}
