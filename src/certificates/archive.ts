import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Archiver } from 'archiver';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/index.js';
import * as repo from './repository.js';
import { type CertificateData, certificateFileName, csvRow, formatDuration } from './rules.js';
import { sha256Hex } from './signing.js';

/**
 * A ZIP of certificates, streamed: PDFs are read a page at a time and the next entry is only queued
 * once the consumer has taken most of what is buffered, so memory stays bounded whatever the count.
 * Ends with `index.csv` (number, state, name, company, fund, total time, SHA-256) for auditors.
 * archiver is loaded on the first download, not at start (it weighs ~1.5 MB of heap, ~5 MB RSS).
 */
export async function certificateZip(
  deps: { db: Db; log: FastifyBaseLogger },
  filter: repo.ArchiveFilter,
  options: { pageSize?: number; highWaterBytes?: number; onPage?: (rows: number) => void } = {},
): Promise<Archiver> {
  const { ZipArchive } = await import('archiver');
  // Stored, not deflated: PDF content is already compressed.
  const archive = new ZipArchive({ store: true });
  const pageSize = options.pageSize ?? 16;
  const highWater = options.highWaterBytes ?? 1024 * 1024;
  const index: string[] = [csvRow(INDEX_HEADER)];
  let appended = 0;
  const pump = async () => {
    let after = '';
    for (;;) {
      const rows = await repo.archivePage(deps.db, filter, after, pageSize);
      options.onPage?.(rows.length);
      if (rows.length === 0) break;
      for (const row of rows) {
        // Bytes queued but not yet taken by the consumer (archiver's pointer counts what left its
        // internal zip stream). Polled, because listening for 'data' or 'readable' would change how
        // the consumer reads the stream.
        while (appended - (archive.pointer() - archive.readableLength) > highWater && !archive.destroyed) {
          await delay(10);
        }
        if (archive.destroyed) return;
        const data = JSON.parse(row.data_canonical) as CertificateData;
        const entered = once(archive, 'entry');
        archive.append(row.pdf, { name: certificateFileName(data), date: row.issued_at });
        appended += row.pdf.length;
        await entered;
        index.push(csvRow(indexLine(data, row.state, sha256Hex(row.pdf))));
      }
      after = rows.at(-1)!.number;
    }
    archive.append(`\ufeff${index.join('')}`, { name: 'index.csv', date: new Date(0) });
    await archive.finalize();
  };
  pump().catch((error: unknown) => {
    deps.log.error({ err: error }, 'certificate archive failed');
    archive.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  return archive;
}

const INDEX_HEADER = [
  'numero',
  'version',
  'etat',
  'nom',
  'prenom',
  'entreprise',
  'siret_entreprise',
  'opco',
  'delivre_le',
  'temps_total',
  'temps_total_secondes',
  'modules_termines',
  'algorithme',
  'sha256_pdf',
];

function indexLine(data: CertificateData, state: string, pdfSha256: string): string[] {
  return [
    data.number,
    String(data.version),
    state,
    data.learner.familyName,
    data.learner.givenName,
    data.company.name ?? '',
    data.company.siret ?? '',
    data.fund?.name ?? '',
    data.issuedDay,
    formatDuration(data.durations.totalSeconds),
    String(data.durations.totalSeconds),
    `${data.durations.modulesCompleted}/${data.durations.modulesPlanned}`,
    data.timeAccounting.algorithm,
    pdfSha256,
  ];
}
