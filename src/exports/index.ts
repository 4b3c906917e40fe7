import type { FastifyInstance } from 'fastify';
import { exportsRoutes } from './routes.js';

/**
 * What the funds' portal shows and serves: the nested completion funnel (« combien iront jusqu’au bout ? »)
 * and the completion forecast per cohort (Kaplan–Meier, docs/exports.md), the summary and connection-log
 * exports in CSV (exact, or for Excel) and XLSX (streamed from a database cursor, audited), the export
 * API for personal tokens and its OpenAPI description at /docs. Accounts, sessions and the
 * audit log are the portal capability's; register after portalPlugin.
 */
export async function exportsPlugin(app: FastifyInstance): Promise<void> {
  await app.register(exportsRoutes);
}

export type { ExportKind } from './columns.js';
export type { ExportFilter } from './repository.js';
export {
  formatDayFr,
  formatParisDate,
  isoWeek,
  type LearnerStatus,
  neutraliseFormula,
  nextDay,
  parisDay,
  parisDayStart,
} from './rules.js';
export {
  type ExportFormat,
  type ForecastView,
  type FunnelView,
  forecast,
  funnel,
  resolveFilter,
  startExport,
} from './service.js';
export { type CellValue, type Column, type ColumnKind, csvStream, xlsxStream } from './writers.js';
