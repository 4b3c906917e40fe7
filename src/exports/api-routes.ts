import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf, requireApiToken } from '../portal/index.js';
import { sendExport } from './download.js';
import {
  apiErrors,
  ExportQuery,
  FileReply,
  FiltersReply,
  ForecastQuery,
  ForecastReply,
  FunnelQuery,
  FunnelReply,
  filterInput,
  KindSchema,
  MeReply,
  Problem,
  security,
} from './schemas.js';
import { filterChoices, forecast, funnel, resolveFilter } from './service.js';

/** The funds' API (personal tokens), described at /docs. */
export async function exportApiRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/api/v1/exports/:kind',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['exports'],
        summary:
          'Download an export (summary: one row per learner and session; connections: one row per merged session)',
        description:
          'Streamed from a database cursor, so any size works in constant memory. CSV: cells that a spreadsheet would ' +
          'read as a formula (starting with = + - @, tab or CR) are prefixed with an apostrophe; identifiers are exact ' +
          '(see `excel` for the variant that opens right in Excel). XLSX: text cells are strings (never evaluated), those ' +
          'starting with a formula sign carry the quotePrefix style instead of an apostrophe; durations are numbers ' +
          '(fractions of a day, format [h]:mm) that sum; dates are dates. See docs/exports.md. Dates: Europe/Paris ' +
          'plus ISO 8601 UTC columns. The period selects learners registered or active between `from` and `to` ' +
          '(connection log: sessions started between them).',
        security,
        params: Type.Object({ kind: KindSchema }),
        querystring: ExportQuery,
        response: { 200: FileReply, ...apiErrors },
      },
    },
    async (request, reply) =>
      sendExport(
        app,
        request,
        reply,
        request.params.kind,
        request.query.format ?? 'csv',
        filterInput(request.query),
        undefined,
        request.query.excel === '1',
      ),
  );

  app.get(
    '/api/v1/funnel',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['funnel'],
        summary: 'The completion funnel per fund, branch and ISO week of registration (Europe/Paris)',
        description:
          'The stages nest: each counts the learners who passed it and every stage before it (registered → opened a module ' +
          'with credited connection time → common trunk done → sector trunk done → certificate issued), so no stage exceeds ' +
          'the one before. See docs/exports.md.',
        security,
        querystring: FunnelQuery,
        response: { 200: FunnelReply, ...apiErrors },
      },
    },
    async (request): Promise<Static<typeof FunnelReply>> => {
      const filter = resolveFilter(principalOf(request), filterInput(request.query));
      const view = await funnel(app, filter);
      return { scope: { fund: filter.fund }, ...view };
    },
  );

  app.get(
    '/api/v1/funnel/forecast',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['funnel'],
        summary: 'Completion forecast: the share of each registration cohort expected to hold a certificate by a date',
        description:
          'Per group (the scope, each fund for operators, each branch): a Kaplan–Meier estimate of the time from ' +
          'registration to the first certificate, learners still without one censored at their current age, with a ' +
          '95 % band (Greenwood’s variance, log–log transform) and the number of learners it rests on. Each cohort ' +
          '(ISO week of registration, Paris) gets its expected share by `by`: its certificates already issued plus, ' +
          'for each other learner, the chance of getting one between now and then given none so far. A group with ' +
          'fewer than `minLearners` learners or `minCertificates` certificates gets no forecast and a French ' +
          '`message` saying so. `from`/`to` choose the cohorts shown; every cohort informs the curve. See docs/exports.md.',
        security,
        querystring: ForecastQuery,
        response: { 200: ForecastReply, ...apiErrors },
      },
    },
    async (request): Promise<Static<typeof ForecastReply>> => {
      const filter = resolveFilter(principalOf(request), filterInput(request.query));
      const view = await forecast(app, filter, { by: request.query.by || undefined });
      return { scope: { fund: filter.fund }, ...view };
    },
  );

  app.get(
    '/api/v1/filters',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['account'],
        summary: 'The funds, branches and course sessions this token may filter on',
        security,
        response: { 200: FiltersReply, 401: Problem },
      },
    },
    async (request) => {
      const choices = await filterChoices(app, principalOf(request));
      return {
        funds: choices.funds.map((f) => ({ slug: f.slug, name: f.name, historicalName: f.historical_name })),
        branches: choices.branches.map((b) => ({ idcc: b.idcc, name: b.name, fund: b.fund_slug })),
        courses: choices.courses.map((c) => ({ id: c.id, title: c.title, label: c.label, contextId: c.context_id })),
      };
    },
  );

  app.get(
    '/api/v1/me',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['account'],
        summary: 'The account behind the bearer token and its scope',
        security,
        response: { 200: MeReply, 401: Problem },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return { username: p.username, displayName: p.displayName, role: p.role, fund: p.fundSlug };
    },
  );
}
