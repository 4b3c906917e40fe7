import { createDatabase } from '../../src/db/index.js';
import { summaryRows } from '../../src/exports/repository.js';
import { streamInTransaction } from '../../src/exports/stream.js';
import { summaryDefinition, SUMMARY_COLUMNS } from '../../src/exports/columns.js';
import { csvCell } from '../../src/exports/writers.js';
const h = await createDatabase({ databaseUrl: process.env.DATABASE_URL, poolMax: 2 });
const mode = process.argv[2];
const t0 = Date.now(); let n = 0; let first = 0; let bytes = 0; let peakHeap = 0;
const ctx = { provider: { siret: '1', activityDeclarationNumber: '2', name: 'x' }, moduleTitles: new Map() };
const rows = mode === 'raw' ? h.db.selectFrom(summaryRows(h.db, { fund: null }).as('s')).selectAll().stream(1000) : streamInTransaction(h.db, (trx) => summaryRows(trx, { fund: null }).stream(Number(process.argv[3] ?? 1000)));
for await (const row of rows) {
  if (n === 0) first = Date.now() - t0;
  n++;
  if (mode === 'cells' || mode === 'csv') {
    const cells = summaryDefinition.toCells(row as any, ctx);
    if (mode === 'csv') { let line = ''; for (let i = 0; i < SUMMARY_COLUMNS.length; i++) line += csvCell(SUMMARY_COLUMNS[i]!.kind, cells[i]) + ';'; bytes += line.length; }
  }
  if (n % 10000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
}
console.log(mode, n, 'first', first, 'total', Date.now() - t0, 'bytes', bytes, 'peakHeapMB', Math.round(peakHeap / 2**20), 'rss', Math.round(process.memoryUsage().rss/2**20));
await h.close();
