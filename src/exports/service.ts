import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { BadRequestError, ForbiddenError } from '../http/errors.js';
import { type Principal, scopedFund, startDownloadAudit } from '../portal/index.js';
import { settleTracking } from '../tracking/index.js';
import { type ExportKind, exportDefinition } from './columns.js';
import {
  assessData,
  type CurvePoint,
  cohortForecast,
  type ForecastLearner,
  incidenceCurve,
  kaplanMeier,
  MIN_CERTIFICATES,
  MIN_LEARNERS,
  subjectsOf,
} from './forecast.js';
import * as repo from './repository.js';
import {
  emptyCounts,
  type FunnelCell,
  type FunnelCounts,
  formatCount,
  groupFunnel,
  isoWeek,
  isValidDay,
  type LearnerStatus,
  nextDay,
  parisDay,
  parisDayStart,
  totalFunnel,
} from './rules.js';
import { queryInTransaction } from './stream.js';
import { type CellValue, csvStream, xlsxStream } from './writers.js';

export type ExportFormat = 'csv' | 'xlsx';

/** Filters as a caller gives them (query string of the page or of the API). */
export interface FilterInput {
  fund?: string | undefined;
  courseId?: string | undefined;
  branch?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  status?: LearnerStatus | undefined;
}

/**
 * Turns a caller's filters into a scoped filter: fund staff get their fund whatever they ask, and an
 * explicit other fund is refused; periods must be real days in order.
 */
export function resolveFilter(principal: Principal, input: FilterInput): repo.ExportFilter {
  const scope = scopedFund(principal, input.fund || undefined);
  if (!scope.ok) {
    throw new ForbiddenError(
      'fund_out_of_scope',
      'Votre compte ne donne accès qu’aux apprenants de votre fonds.',
      'fund staff asked for another fund',
    );
  }
  for (const [name, day] of [
    ['from', input.from],
    ['to', input.to],
  ] as const) {
    if (day && !isValidDay(day)) {
      throw new BadRequestError(
        'invalid_period',
        'La période indiquée n’est pas une date valable.',
        `${name} is not a date`,
      );
    }
  }
  if (input.from && input.to && input.from > input.to) {
    throw new BadRequestError('invalid_period', 'La date de début de la période est après sa date de fin.');
  }
  return {
    fund: scope.fund,
    courseId: input.courseId || undefined,
    branch: input.branch || undefined,
    from: input.from || undefined,
    to: input.to || undefined,
    status: input.status || undefined,
  };
}

/** What a principal may filter on: every fund for operators, their own for fund staff. */
export async function filterChoices(app: FastifyInstance, principal: Principal) {
  const fund = principal.role === 'operator' ? null : principal.fundSlug;
  const [funds, branches, courses] = await Promise.all([
    repo.listFunds(app.db, fund),
    repo.listBranches(app.db, fund),
    repo.listCourses(app.db, fund),
  ]);
  return { funds, branches, courses };
}

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

export interface StartedExport {
  stream: Readable;
  filename: string;
  contentType: string;
  auditId: string;
}

/**
 * Starts a streamed export: the audit row is written first (who, what, which filter), then rows flow
 * from a database cursor through the writer; the audit row gets the final count, or "failed" if the
 * download breaks. With a progress ticket the expected total is counted too, so that the page can
 * show a real progress bar.
 */
export async function startExport(
  app: FastifyInstance,
  principal: Principal,
  request: {
    kind: ExportKind;
    format: ExportFormat;
    filter: repo.ExportFilter;
    ticket?: string | undefined;
    /** CSV only: identifiers written so that Excel and LibreOffice keep them as text (docs/exports.md). */
    excel?: boolean | undefined;
  },
): Promise<StartedExport> {
  const excel = request.format === 'csv' && request.excel === true;
  const definition = exportDefinition(request.kind);
  // Connection time: every acknowledged heartbeat is credited before the totals are read.
  await settleTracking(app.db, request.filter.courseId ? { courseId: request.filter.courseId } : {});
  const context = await definition.context(app);
  const unit = definition.progressUnit;
  // The total for the progress bar costs a query as long as the export's own. On PostgreSQL it runs
  // on another connection beside the download; the embedded database has one connection, which the
  // export's cursor holds until the end, so there the total is counted first.
  const counted = request.ticket && app.dbKind !== 'pg' ? await definition.count(app.db, request.filter) : null;
  const audit = await startDownloadAudit(
    app,
    principal,
    {
      export: request.kind,
      format: request.format,
      ...(excel ? { variant: 'excel' } : {}),
      filter: describeForAudit(request.filter),
    },
    { ticket: request.ticket, expectedRows: counted, unit },
  );
  if (request.ticket && app.dbKind === 'pg') {
    definition
      .count(app.db, request.filter)
      .then((total) => audit.expect(total))
      .catch((err: unknown) => app.log.warn({ err, auditId: audit.id }, 'export total not counted'));
  }
  const source = definition.rows(app.db, request.filter);
  async function* cells(): AsyncGenerator<CellValue[]> {
    let units = 0;
    for await (const group of source) {
      for (const row of group) yield definition.toCells(row, context);
      units++;
      if (unit === 'learners') audit.progress(units);
    }
  }
  const options = {
    onRow: (n: number) => {
      if (unit === 'rows') audit.progress(n);
    },
    onEnd: async (n: number, error?: unknown) => {
      try {
        if (error) await audit.fail(n, error instanceof Error ? error.message : String(error));
        else await audit.finish(n);
      } catch (err) {
        app.log.error({ err, auditId: audit.id }, 'export audit not completed');
      }
    },
  };
  const stream =
    request.format === 'csv'
      ? csvStream(definition.columns, cells(), { ...options, excel })
      : xlsxStream(definition.columns, cells(), { ...options, sheetName: definition.sheetName });
  return {
    stream,
    filename: exportFileName(request.kind, request.format, request.filter, excel),
    contentType: CONTENT_TYPES[request.format],
    auditId: audit.id,
  };
}

function describeForAudit(filter: repo.ExportFilter): Record<string, string | null> {
  return {
    fund: filter.fund,
    courseId: filter.courseId ?? null,
    branch: filter.branch ?? null,
    from: filter.from ?? null,
    to: filter.to ?? null,
    status: filter.status ?? null,
  };
}

const KIND_FILE_NAMES: Record<ExportKind, string> = { summary: 'synthese', connections: 'connexions' };

export function exportFileName(
  kind: ExportKind,
  format: ExportFormat,
  filter: repo.ExportFilter,
  excel = false,
): string {
  const parts = ['emargement', KIND_FILE_NAMES[kind], filter.fund ?? 'tous-fonds'];
  if (filter.branch) parts.push(`idcc-${filter.branch}`);
  if (filter.from || filter.to) parts.push(`${filter.from ?? 'debut'}_${filter.to ?? 'fin'}`);
  parts.push(parisDay(new Date()));
  if (excel) parts.push('excel');
  return `${parts.join('-').replace(/[^A-Za-z0-9_.-]/g, '')}.${format}`;
}

// ---------------------------------------------------------------------------------------------
// Funnel

export interface FunnelView {
  commonKnown: boolean;
  total: FunnelCounts;
  /** Learners who passed a later stage out of order (counted where their ordered path stops). */
  outOfOrder: number;
  byFund: Array<{ slug: string; name: string; counts: FunnelCounts; outOfOrder: number }>;
  byBranch: Array<{ idcc: string | null; name: string; fund: string; counts: FunnelCounts; outOfOrder: number }>;
  byWeek: Array<{ week: string; monday: string; counts: FunnelCounts; outOfOrder: number }>;
}

export async function funnel(app: FastifyInstance, filter: repo.ExportFilter): Promise<FunnelView> {
  await settleTracking(app.db, filter.courseId ? { courseId: filter.courseId } : {});
  const [rows, funds, branches, commonKnown] = await Promise.all([
    queryInTransaction(app.db, (trx) => repo.funnelRows(trx, filter)),
    repo.listFunds(app.db, filter.fund),
    repo.listBranches(app.db, filter.fund),
    repo.commonTrunkKnown(app.db),
  ]);
  const cells: FunnelCell[] = rows.map((r) => ({
    fund: r.fund_slug,
    branch: r.idcc,
    week: r.week_key,
    weekStart: r.week_start,
    registered: r.registered,
    started: r.started,
    commonDone: r.common_done,
    sectorDone: r.sector_done,
    certified: r.certified,
    outOfOrder: r.out_of_order,
  }));
  const fundNames = new Map(funds.map((f) => [f.slug, f.name]));
  const branchNames = new Map(branches.map((b) => [b.idcc, b.name]));
  const byFund = groupFunnel(cells, (c) => c.fund).map((g) => ({
    slug: g.key,
    name: fundNames.get(g.key) ?? g.key,
    counts: g.counts,
    outOfOrder: g.outOfOrder,
  }));
  // Funds with nobody registered yet still show, with zeros: "nobody" is an answer too.
  for (const f of funds) {
    if (!byFund.some((x) => x.slug === f.slug))
      byFund.push({ slug: f.slug, name: f.name, counts: emptyCounts(), outOfOrder: 0 });
  }
  const byBranch = groupFunnel(cells, (c) => `${c.fund}|${c.branch ?? ''}`).map((g) => {
    const [fund, idcc] = g.key.split('|') as [string, string];
    return {
      idcc: idcc || null,
      name: idcc ? `${idcc} — ${branchNames.get(idcc) ?? 'branche inconnue'}` : 'Branche non indiquée',
      fund,
      counts: g.counts,
      outOfOrder: g.outOfOrder,
    };
  });
  const byWeek = groupFunnel(cells, (c) => c.weekStart).map((g) => ({
    week: isoWeek(g.key).key,
    monday: g.key,
    counts: g.counts,
    outOfOrder: g.outOfOrder,
  }));
  const outOfOrder = cells.reduce((n, c) => n + c.outOfOrder, 0);
  return { commonKnown, total: totalFunnel(cells), outOfOrder, byFund, byBranch, byWeek };
}

// ---------------------------------------------------------------------------------------------
// Completion forecast (docs/exports.md, "Completion forecast")

/** Default horizon of the forecast: four weeks from today, the length of the programme's pacing. */
export const DEFAULT_FORECAST_DAYS = 28;

export interface ForecastCohort {
  week: string;
  monday: string;
  learners: number;
  certifiedNow: number;
  /** Expected share with a certificate by the date and its 95 % band; null when the group has too little data. */
  share: number | null;
  lower: number | null;
  upper: number | null;
  extrapolated: boolean;
}

export interface ForecastGroup {
  level: 'scope' | 'fund' | 'branch';
  fund: string | null;
  idcc: string | null;
  label: string;
  learners: number;
  certificates: number;
  /** The longest follow-up observed, in whole days since registration. */
  followUpDays: number;
  sufficient: boolean;
  /** Why there is no forecast, in plain French (null when there is one). */
  message: string | null;
  curve: CurvePoint[];
  cohorts: ForecastCohort[];
}

export interface ForecastView {
  now: string;
  by: string;
  confidence: number;
  minLearners: number;
  minCertificates: number;
  groups: ForecastGroup[];
}

export function tooLittleData(learners: number, certificates: number): string {
  const plural = (n: number, one: string, many: string) => `${formatCount(n)} ${n > 1 ? many : one}`;
  return (
    `Trop peu de données pour prévoir : il faut au moins ${MIN_LEARNERS} apprenants inscrits et ` +
    `${MIN_CERTIFICATES} attestations délivrées dans ce groupe ; il y a ${plural(learners, 'apprenant', 'apprenants')} ` +
    `et ${plural(certificates, 'attestation', 'attestations')}.`
  );
}

/**
 * The forecast of every group in scope: the whole scope, each fund (operators, every fund), each
 * branch. Each group's curve is estimated from all its learners; cohorts (ISO weeks of registration,
 * Paris) are those registered in the filter's period.
 */
export async function forecast(
  app: FastifyInstance,
  filter: repo.ExportFilter,
  options: { by?: string | undefined; nowMs?: number } = {},
): Promise<ForecastView> {
  const nowMs = options.nowMs ?? Date.now();
  const today = parisDay(new Date(nowMs));
  if (options.by && !isValidDay(options.by)) {
    throw new BadRequestError(
      'invalid_date',
      'La date de la prévision n’est pas une date valable.',
      'by is not a date',
    );
  }
  const by = options.by || addDays(today, DEFAULT_FORECAST_DAYS);
  const byMs = parisDayStart(nextDay(by)).getTime() - 1;
  const [rows, funds, branches] = await Promise.all([
    repo.forecastRows(app.db, filter),
    repo.listFunds(app.db, filter.fund),
    repo.listBranches(app.db, filter.fund),
  ]);
  const fundNames = new Map(funds.map((f) => [f.slug, f.name]));
  const branchNames = new Map(branches.map((b) => [b.idcc, b.name]));
  const from = filter.from ? parisDayStart(filter.from).getTime() : Number.NEGATIVE_INFINITY;
  const to = filter.to ? parisDayStart(nextDay(filter.to)).getTime() : Number.POSITIVE_INFINITY;

  const group = (
    level: ForecastGroup['level'],
    fund: string | null,
    idcc: string | null,
    label: string,
    members: repo.ForecastRow[],
  ): ForecastGroup => {
    const learners: Array<ForecastLearner & { week: string; monday: string }> = members
      .filter((r) => r.registered_ms <= nowMs)
      .map((r) => {
        const week = isoWeek(parisDay(new Date(r.registered_ms)));
        return { registeredAtMs: r.registered_ms, certifiedAtMs: r.certified_ms, week: week.key, monday: week.monday };
      });
    const subjects = subjectsOf(learners, nowMs);
    const fit = kaplanMeier(subjects);
    const verdict = assessData(fit);
    const byWeek = new Map<string, typeof learners>();
    for (const l of learners) {
      if (l.registeredAtMs < from || l.registeredAtMs >= to) continue;
      const list = byWeek.get(l.monday) ?? [];
      list.push(l);
      byWeek.set(l.monday, list);
    }
    const cohorts = [...byWeek.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([monday, members]) => {
        const f = cohortForecast(fit, members, nowMs, byMs);
        return {
          week: (members[0] as { week: string }).week,
          monday,
          learners: f.learners,
          certifiedNow: f.certifiedNow,
          share: verdict.sufficient ? f.share : null,
          lower: verdict.sufficient ? f.lower : null,
          upper: verdict.sufficient ? f.upper : null,
          extrapolated: verdict.sufficient && f.extrapolated,
        };
      });
    return {
      level,
      fund,
      idcc,
      label,
      learners: fit.learners,
      certificates: fit.events,
      followUpDays: Math.floor(fit.maxTime),
      sufficient: verdict.sufficient,
      message: verdict.sufficient ? null : tooLittleData(fit.learners, fit.events),
      curve: verdict.sufficient ? incidenceCurve(fit, subjects) : [],
      cohorts,
    };
  };

  const scopeLabel = filter.fund ? (fundNames.get(filter.fund) ?? filter.fund) : 'Tous les fonds';
  const groups: ForecastGroup[] = [
    group(
      'scope',
      filter.fund,
      filter.branch ?? null,
      filter.branch ? `${scopeLabel}, branche ${filter.branch}` : scopeLabel,
      rows,
    ),
  ];
  if (filter.fund === null) {
    for (const f of funds) {
      const members = rows.filter((r) => r.fund_slug === f.slug);
      if (members.length > 0) groups.push(group('fund', f.slug, null, f.name, members));
    }
  }
  if (!filter.branch) {
    const keys = [...new Set(rows.map((r) => `${r.fund_slug}|${r.idcc ?? ''}`))].sort();
    for (const key of keys) {
      const [fund, idcc] = key.split('|') as [string, string];
      const members = rows.filter((r) => r.fund_slug === fund && (r.idcc ?? '') === idcc);
      const name = idcc ? `${idcc} — ${branchNames.get(idcc) ?? 'branche inconnue'}` : 'Branche non indiquée';
      groups.push(
        group('branch', fund, idcc || null, filter.fund ? name : `${name} (${fundNames.get(fund) ?? fund})`, members),
      );
    }
  }
  return {
    now: new Date(nowMs).toISOString(),
    by,
    confidence: 0.95,
    minLearners: MIN_LEARNERS,
    minCertificates: MIN_CERTIFICATES,
    groups,
  };
}

function addDays(day: string, days: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}
