import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fileNumberRoutes } from '../file-numbers/index.js';
import { ForbiddenError } from '../http/errors.js';
import { ProblemDetails } from '../http/schemas.js';
import { exportDuration } from '../metrics/index.js';
import {
  type Principal,
  principalOf,
  readDownloadProgress,
  registerPortalCookies,
  requireApiToken,
  requirePageSession,
} from '../portal/index.js';
import type { ExportKind } from './columns.js';
import { EXPORTS_SCRIPT, exportsPage, type FilterChoices, funnelPage } from './pages.js';
import * as repo from './repository.js';
import { FUNNEL_STAGES, STATUSES } from './rules.js';
import { type ExportFormat, type FilterInput, forecast, funnel, resolveFilter, startExport } from './service.js';

// --- schemas ------------------------------------------------------------------------------------
// Empty strings are accepted for every filter: an HTML form sends "" for "all".

const Day = Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$', description: 'Paris calendar day, YYYY-MM-DD' });
const FilterQuery = {
  fund: Type.Optional(
    Type.String({
      pattern: '^[a-z0-9-]{0,64}$',
      description: 'Fund slug (operators only; fund staff may only give their own fund or nothing)',
    }),
  ),
  courseId: Type.Optional(
    Type.String({
      pattern: '^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$',
      description: 'Course session (an Open edX course run), see /api/v1/filters',
    }),
  ),
  branch: Type.Optional(Type.String({ pattern: '^([0-9A-Za-z]{1,8})?$', description: 'IDCC code of the branch' })),
  from: Type.Optional(Day),
  to: Type.Optional(Day),
};
const StatusQuery = Type.Optional(
  Type.Union([...STATUSES.map((s) => Type.Literal(s)), Type.Literal('')], {
    description: 'Learner status: not_started, in_progress, completed, certificate_issued',
  }),
);
const KindSchema = Type.Union([Type.Literal('summary'), Type.Literal('connections')]);
const FormatSchema = Type.Union([Type.Literal('csv'), Type.Literal('xlsx')], { default: 'csv' });
const Ticket = Type.Optional(Type.String({ pattern: '^([A-Za-z0-9_-]{16,64})?$' }));

const ExcelFlag = Type.Optional(
  Type.Union([Type.Literal('1'), Type.Literal('0'), Type.Literal('')], {
    description:
      'CSV only. 1: « CSV pour Excel », identifiers (SIRET, IDCC, file, declaration and certificate numbers) written as ' +
      '="0218" so that Excel and LibreOffice keep them as text with their leading zeros. Default 0: exact values, for scripts.',
  }),
);
const ExportQuery = Type.Object({
  ...FilterQuery,
  status: StatusQuery,
  format: Type.Optional(FormatSchema),
  excel: ExcelFlag,
});
const PageFormatSchema = Type.Union([Type.Literal('csv'), Type.Literal('xlsx'), Type.Literal('csv-excel')], {
  default: 'csv-excel',
});
const PageExportQuery = Type.Object({
  ...FilterQuery,
  status: StatusQuery,
  kind: KindSchema,
  format: Type.Optional(PageFormatSchema),
  ticket: Ticket,
});
const FunnelQuery = Type.Object(FilterQuery);
const ExportsPageQuery = Type.Object({ ...FilterQuery, status: StatusQuery });

const Counts = Type.Object(Object.fromEntries(FUNNEL_STAGES.map((s) => [s, Type.Integer({ minimum: 0 })])));
const OutOfOrder = Type.Integer({
  minimum: 0,
  description:
    'Learners who passed a later stage while an earlier one is not passed (e.g. the sector trunk before the common trunk): counted at the last stage reached in order',
});
const FunnelReply = Type.Object({
  scope: Type.Object({ fund: Type.Union([Type.String(), Type.Null()]) }),
  commonKnown: Type.Boolean({ description: 'false: common-trunk completion is not measured (commonDone is 0)' }),
  total: Counts,
  outOfOrder: OutOfOrder,
  byFund: Type.Array(Type.Object({ slug: Type.String(), name: Type.String(), counts: Counts, outOfOrder: OutOfOrder })),
  byBranch: Type.Array(
    Type.Object({
      idcc: Type.Union([Type.String(), Type.Null()]),
      name: Type.String(),
      fund: Type.String(),
      counts: Counts,
      outOfOrder: OutOfOrder,
    }),
  ),
  byWeek: Type.Array(
    Type.Object({
      week: Type.String({ description: 'ISO week, e.g. 2026-W48' }),
      monday: Type.String(),
      counts: Counts,
      outOfOrder: OutOfOrder,
    }),
  ),
});
const ForecastQuery = Type.Object({
  ...FilterQuery,
  by: Type.Optional(
    Type.String({
      pattern: '^(\\d{4}-\\d{2}-\\d{2})?$',
      description: 'The date the forecast is for (Paris calendar day, YYYY-MM-DD); default: today + 28 days',
    }),
  ),
});
const Share = Type.Number({ minimum: 0, maximum: 1 });
const NullableShare = Type.Union([Share, Type.Null()]);
const ForecastReply = Type.Object({
  scope: Type.Object({ fund: Type.Union([Type.String(), Type.Null()]) }),
  now: Type.String({ format: 'date-time' }),
  by: Type.String({
    description: 'The forecast date (Paris calendar day): shares are "certificate held by the end of that day"',
  }),
  confidence: Type.Number({ description: 'Level of the bands (0.95)' }),
  minLearners: Type.Integer({ description: 'A group with fewer learners gets no forecast (too little data)' }),
  minCertificates: Type.Integer({ description: 'A group with fewer certificates issued gets no forecast' }),
  groups: Type.Array(
    Type.Object({
      level: Type.Union([Type.Literal('scope'), Type.Literal('fund'), Type.Literal('branch')]),
      fund: Type.Union([Type.String(), Type.Null()]),
      idcc: Type.Union([Type.String(), Type.Null()]),
      label: Type.String(),
      learners: Type.Integer({ minimum: 0, description: 'Learners the estimate rests on (every cohort of the group)' }),
      certificates: Type.Integer({ minimum: 0 }),
      followUpDays: Type.Integer({ minimum: 0, description: 'Longest follow-up observed, days since registration' }),
      sufficient: Type.Boolean(),
      message: Type.Union([Type.String(), Type.Null()], { description: 'Why there is no forecast, in French' }),
      curve: Type.Array(
        Type.Object({
          day: Type.Integer({ minimum: 0, description: 'Days since registration' }),
          share: Share,
          lower: Share,
          upper: Share,
          atRisk: Type.Integer({ minimum: 0, description: 'Learners still followed without a certificate that day' }),
        }),
        { description: 'Kaplan–Meier share holding a certificate, one point a day (empty with too little data)' },
      ),
      cohorts: Type.Array(
        Type.Object({
          week: Type.String({ description: 'ISO week of registration, e.g. 2026-W48' }),
          monday: Type.String(),
          learners: Type.Integer({ minimum: 0 }),
          certifiedNow: Type.Integer({ minimum: 0 }),
          share: NullableShare,
          lower: NullableShare,
          upper: NullableShare,
          extrapolated: Type.Boolean({
            description: 'The date lies beyond the longest follow-up observed: the curve is held flat there',
          }),
        }),
      ),
    }),
  ),
});
const FiltersReply = Type.Object({
  funds: Type.Array(
    Type.Object({ slug: Type.String(), name: Type.String(), historicalName: Type.Union([Type.String(), Type.Null()]) }),
  ),
  branches: Type.Array(Type.Object({ idcc: Type.String(), name: Type.String(), fund: Type.String() })),
  courses: Type.Array(
    Type.Object({
      id: Type.String(),
      title: Type.Union([Type.String(), Type.Null()]),
      label: Type.Union([Type.String(), Type.Null()]),
      contextId: Type.String(),
    }),
  ),
});
const MeReply = Type.Object({
  username: Type.String(),
  displayName: Type.String(),
  role: Type.Union([Type.Literal('operator'), Type.Literal('fund_staff')]),
  fund: Type.Union([Type.String(), Type.Null()], { description: 'null: every fund (operators)' }),
});
const Problem = ProblemDetails;
const ProgressReply = Type.Object({
  status: Type.Union([Type.Literal('started'), Type.Literal('completed'), Type.Literal('failed')]),
  rows: Type.Integer(),
  expectedRows: Type.Union([Type.Integer(), Type.Null()]),
  unit: Type.Union([Type.Literal('rows'), Type.Literal('learners')]),
});
const FileReply = {
  description: 'The file, streamed (CSV: UTF-8 with BOM, `;`, CRLF; XLSX: one sheet)',
  content: {
    'text/csv': { schema: Type.String() },
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': { schema: Type.String({ format: 'binary' }) },
  },
};
const HtmlPage = Type.String();
const apiErrors = { 400: Problem, 401: Problem, 403: Problem };
const security = [{ bearerAuth: [] }];

function filterInput(query: Partial<Record<keyof typeof FilterQuery | 'status', string | undefined>>): FilterInput {
  return {
    fund: query.fund || undefined,
    courseId: query.courseId || undefined,
    branch: query.branch || undefined,
    from: query.from || undefined,
    to: query.to || undefined,
    status: (query.status || undefined) as FilterInput['status'],
  };
}

async function choicesFor(app: FastifyInstance, principal: Principal): Promise<FilterChoices> {
  const fund = principal.role === 'operator' ? null : principal.fundSlug;
  const [funds, branches, courses] = await Promise.all([
    repo.listFunds(app.db, fund),
    repo.listBranches(app.db, fund),
    repo.listCourses(app.db, fund),
  ]);
  return { funds, branches, courses };
}

async function sendExport(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  kind: ExportKind,
  format: ExportFormat,
  input: FilterInput,
  ticket?: string,
  excel = false,
): Promise<FastifyReply> {
  const principal = principalOf(request);
  // A link on another site could make a signed-in browser download (and be audited) without its
  // owner asking: the cookie travels with top-level navigations (SameSite=Lax). Fetch Metadata tells.
  if (principal.via === 'session' && request.headers['sec-fetch-site'] === 'cross-site') {
    throw new ForbiddenError('cross_site_download', 'Lancez le téléchargement depuis la page des exports.');
  }
  const filter = resolveFilter(principal, input);
  const endTimer = exportDuration.startTimer({ kind, format });
  const started = await startExport(app, principal, { kind, format, filter, ticket, excel });
  // Measured to the last byte written (an aborted download is not a duration).
  reply.raw.once('finish', () => endTimer());
  request.log.info({ auditId: started.auditId, kind, format, via: principal.via }, 'export started');
  return reply
    .code(200)
    .header('content-type', started.contentType)
    .header('content-disposition', `attachment; filename="${started.filename}"`)
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .header('x-audit-id', started.auditId)
    .send(started.stream);
}

export async function exportsRoutes(fastify: FastifyInstance): Promise<void> {
  await registerPortalCookies(fastify);
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Émargement — API des fonds',
        description:
          'Exports and completion funnel for training funds (OPCO). Authenticate with a personal API token ' +
          '(`Authorization: Bearer emt_…`) created on the portal page « Jetons d’API » or with ' +
          '`npm run cli -- users tokens create`. A token has its owner’s scope: fund staff only ever see ' +
          'their fund’s learners; asking for another fund answers 403. Every download is written to the audit log.',
        version: '1.0.0',
      },
      servers: [{ url: fastify.config.publicUrl }],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'Personal API token (emt_…)' } },
      },
      tags: [
        { name: 'exports', description: 'Attendance exports (summary, connection log), streamed' },
        { name: 'funnel', description: 'Registered → started → common trunk → sector trunk → certificate' },
        { name: 'account', description: 'The token’s account and what it may filter on' },
        {
          name: 'file-numbers',
          description: 'OPCO file numbers (numéro de dossier) per fund, course session and company',
        },
      ],
    },
    hideUntagged: true,
  });
  await fastify.register(swaggerUi, { routePrefix: '/docs' });
  // In this context so that its API is in /docs and its pages get the portal cookies (src/file-numbers).
  await fastify.register(fileNumberRoutes);

  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const page = { html: true };

  // --- pages ------------------------------------------------------------------------------------
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
        choicesFor(app, principal),
        funnel(app, filter),
        forecast(app, filter, { by: request.query.by || undefined }),
      ]);
      return reply
        .type('text/html; charset=utf-8')
        .send(funnelPage({ request, principal, filter, choices, view, forecast: prevision }));
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
      const choices = await choicesFor(app, principal);
      return reply.type('text/html; charset=utf-8').send(exportsPage({ request, principal, filter, choices }));
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

  // --- API (personal tokens) ----------------------------------------------------------------
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
      const choices = await choicesFor(app, principalOf(request));
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
