import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { BadRequestError, ForbiddenError } from '../http/errors.js';
import { type Principal, scopedFund, startDownloadAudit } from '../portal/index.js';
import { settleTracking } from '../tracking/index.js';
import { type ExportKind, exportDefinition } from './columns.js';
import * as repo from './repository.js';
import {
  emptyCounts,
  type FunnelCell,
  type FunnelCounts,
  groupFunnel,
  isoWeek,
  isValidDay,
  type LearnerStatus,
  parisDay,
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
  request: { kind: ExportKind; format: ExportFormat; filter: repo.ExportFilter; ticket?: string | undefined },
): Promise<StartedExport> {
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
    { export: request.kind, format: request.format, filter: describeForAudit(request.filter) },
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
      ? csvStream(definition.columns, cells(), options)
      : xlsxStream(definition.columns, cells(), { ...options, sheetName: definition.sheetName });
  return {
    stream,
    filename: exportFileName(request.kind, request.format, request.filter),
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

export function exportFileName(kind: ExportKind, format: ExportFormat, filter: repo.ExportFilter): string {
  const parts = ['emargement', KIND_FILE_NAMES[kind], filter.fund ?? 'tous-fonds'];
  if (filter.branch) parts.push(`idcc-${filter.branch}`);
  if (filter.from || filter.to) parts.push(`${filter.from ?? 'debut'}_${filter.to ?? 'fin'}`);
  parts.push(parisDay(new Date()));
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
