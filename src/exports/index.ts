import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { registerApiDocs } from './api-docs.js';
import { exportsRoutes } from './routes.js';

/**
 * What the funds' portal shows and serves: the nested completion funnel (« combien iront jusqu’au bout ? »)
 * and the completion forecast per cohort (Kaplan–Meier, docs/exports.md), the summary and connection-log
 * exports in CSV (exact, or for Excel) and XLSX (streamed from a database cursor, audited), the export
 * API for personal tokens and its OpenAPI description at /docs. Accounts, sessions and the
 * audit log are the portal capability's. The summary export prints the training provider of the
 * certificates capability. The API description is shared with the app (fastify-plugin) so that
 * src/file-numbers, registered after this plugin, adds its API to it.
 */
export const exportsPlugin = fp(
  async function exportsCapability(app: FastifyInstance): Promise<void> {
    await registerApiDocs(app);
    await app.register(exportsRoutes);
  },
  { name: 'exports', dependencies: ['certificates'], fastify: '5.x' },
);

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
