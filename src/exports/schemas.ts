import { Type } from '@sinclair/typebox';
import { ProblemDetails } from '../http/schemas.js';
import { FUNNEL_STAGES, STATUSES } from './rules.js';
import type { FilterInput } from './service.js';

/** The TypeBox schemas of the exports routes (portal pages and the export API). */

// Empty strings are accepted for every filter: an HTML form sends "" for "all".

export const Day = Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$', description: 'Paris calendar day, YYYY-MM-DD' });
export const FilterQuery = {
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
export const StatusQuery = Type.Optional(
  Type.Union([...STATUSES.map((s) => Type.Literal(s)), Type.Literal('')], {
    description: 'Learner status: not_started, in_progress, completed, certificate_issued',
  }),
);
export const KindSchema = Type.Union([Type.Literal('summary'), Type.Literal('connections')]);
export const FormatSchema = Type.Union([Type.Literal('csv'), Type.Literal('xlsx')], { default: 'csv' });
export const Ticket = Type.Optional(Type.String({ pattern: '^([A-Za-z0-9_-]{16,64})?$' }));

export const ExcelFlag = Type.Optional(
  Type.Union([Type.Literal('1'), Type.Literal('0'), Type.Literal('')], {
    description:
      'CSV only. 1: « CSV pour Excel », identifiers (SIRET, IDCC, file, declaration and certificate numbers) written as ' +
      '="0218" so that Excel and LibreOffice keep them as text with their leading zeros. Default 0: exact values, for scripts.',
  }),
);
export const ExportQuery = Type.Object({
  ...FilterQuery,
  status: StatusQuery,
  format: Type.Optional(FormatSchema),
  excel: ExcelFlag,
});
export const PageFormatSchema = Type.Union([Type.Literal('csv'), Type.Literal('xlsx'), Type.Literal('csv-excel')], {
  default: 'csv-excel',
});
export const PageExportQuery = Type.Object({
  ...FilterQuery,
  status: StatusQuery,
  kind: KindSchema,
  format: Type.Optional(PageFormatSchema),
  ticket: Ticket,
});
export const FunnelQuery = Type.Object(FilterQuery);
export const ExportsPageQuery = Type.Object({ ...FilterQuery, status: StatusQuery });

export const Counts = Type.Object(Object.fromEntries(FUNNEL_STAGES.map((s) => [s, Type.Integer({ minimum: 0 })])));
export const OutOfOrder = Type.Integer({
  minimum: 0,
  description:
    'Learners who passed a later stage while an earlier one is not passed (e.g. the sector trunk before the common trunk): counted at the last stage reached in order',
});
export const FunnelReply = Type.Object({
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
export const ForecastQuery = Type.Object({
  ...FilterQuery,
  by: Type.Optional(
    Type.String({
      pattern: '^(\\d{4}-\\d{2}-\\d{2})?$',
      description: 'The date the forecast is for (Paris calendar day, YYYY-MM-DD); default: today + 28 days',
    }),
  ),
});
export const Share = Type.Number({ minimum: 0, maximum: 1 });
export const NullableShare = Type.Union([Share, Type.Null()]);
export const ForecastReply = Type.Object({
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
export const FiltersReply = Type.Object({
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
export const MeReply = Type.Object({
  username: Type.String(),
  displayName: Type.String(),
  role: Type.Union([Type.Literal('operator'), Type.Literal('fund_staff')]),
  fund: Type.Union([Type.String(), Type.Null()], { description: 'null: every fund (operators)' }),
});
export const Problem = ProblemDetails;
export const ProgressReply = Type.Object({
  status: Type.Union([Type.Literal('started'), Type.Literal('completed'), Type.Literal('failed')]),
  rows: Type.Integer(),
  expectedRows: Type.Union([Type.Integer(), Type.Null()]),
  unit: Type.Union([Type.Literal('rows'), Type.Literal('learners')]),
});
export const FileReply = {
  description: 'The file, streamed (CSV: UTF-8 with BOM, `;`, CRLF; XLSX: one sheet)',
  content: {
    'text/csv': { schema: Type.String() },
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': { schema: Type.String({ format: 'binary' }) },
  },
};
export const HtmlPage = Type.String();
export const apiErrors = { 400: Problem, 401: Problem, 403: Problem };
export const security = [{ bearerAuth: [] }];

/** The filters of a query string or form ("" means "all"). */
export function filterInput(
  query: Partial<Record<keyof typeof FilterQuery | 'status', string | undefined>>,
): FilterInput {
  return {
    fund: query.fund || undefined,
    courseId: query.courseId || undefined,
    branch: query.branch || undefined,
    from: query.from || undefined,
    to: query.to || undefined,
    status: (query.status || undefined) as FilterInput['status'],
  };
}
