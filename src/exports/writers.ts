import { PassThrough, Readable } from 'node:stream';
import type ExcelJS from 'exceljs';
import { stripSpoofingCharacters } from '../common/text.js';
import {
  csvField,
  formatParisDate,
  formatParisDateTime,
  frenchDecimal,
  hoursMinutes,
  hoursMinutesSeconds,
  isNeutralised,
  isoUtc,
  neutraliseFormula,
  parisWallClock,
} from './rules.js';

/**
 * Column kinds. Each knows how it reads in the CSV (text for French Excel) and what typed value goes
 * in the XLSX cell, so that both files say the same thing.
 */
export type ColumnKind =
  | 'text' // user or catalog text: formula-neutralised
  | 'code' // an identifier made of digits that must stay text (SIRET, IDCC, file and declaration numbers)
  | 'integer'
  | 'decimal' // two decimals, French comma in the CSV
  | 'parisDateTime' // Date, shown as Paris wall-clock time
  | 'parisDate' // Date, the Paris calendar day
  | 'isoUtc' // Date, ISO 8601 in UTC (text)
  | 'hoursMinutes' // seconds, shown h:mm
  | 'hms'; // seconds, shown hh:mm:ss

export interface Column {
  header: string;
  kind: ColumnKind;
  /** XLSX column width, in characters. */
  width?: number;
}

export type CellValue = string | number | Date | null | undefined;

const CSV_FORMATTERS: Record<ColumnKind, (value: NonNullable<CellValue>) => string> = {
  text: (v) => csvField(neutraliseFormula(stripSpoofingCharacters(String(v)))),
  code: (v) => csvField(neutraliseFormula(stripSpoofingCharacters(String(v)))),
  integer: (v) => String(Math.trunc(Number(v))),
  decimal: (v) => frenchDecimal(Number(v)),
  parisDateTime: (v) => formatParisDateTime(v as Date),
  parisDate: (v) => formatParisDate(v as Date),
  isoUtc: (v) => isoUtc(v as Date),
  hoursMinutes: (v) => hoursMinutes(Number(v)),
  hms: (v) => hoursMinutesSeconds(Number(v)),
};

/**
 * The "CSV pour Excel" variant (docs/exports.md): an identifier is written as the formula `="0218"`,
 * which Excel and LibreOffice show as the text 0218 instead of reading a number (218, 6,00111E+13).
 * Only values without a quote or a control character get it, so the formula can only ever be a
 * string literal; anything else is written as plain (neutralised) text.
 */
export function excelCode(value: string): string {
  return isPlainLiteral(value) ? csvField(`="${value}"`) : csvField(neutraliseFormula(value));
}

function isPlainLiteral(value: string): boolean {
  if (value === '') return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x22 || code < 0x20 || code === 0x7f) return false;
  }
  return true;
}

const CSV_EXCEL_FORMATTERS: Record<ColumnKind, (value: NonNullable<CellValue>) => string> = {
  ...CSV_FORMATTERS,
  code: (v) => excelCode(String(v)),
};

export function csvCell(kind: ColumnKind, value: CellValue, excel = false): string {
  if (value === null || value === undefined || value === '') return '';
  return (excel ? CSV_EXCEL_FORMATTERS : CSV_FORMATTERS)[kind](value);
}

/**
 * The typed value of an XLSX cell. Text is written as it is, as a string cell (never evaluated); the
 * writer gives the cells a spreadsheet would read as a formula the `quotePrefix` style, so that editing
 * one keeps it text. Durations are fractions of a day (shown `[h]:mm`, so they sum), dates real dates.
 */
export function xlsxCell(kind: ColumnKind, value: CellValue): string | number | Date | null {
  if (value === null || value === undefined || value === '') return null;
  switch (kind) {
    case 'text':
    case 'code':
      return stripSpoofingCharacters(String(value));
    case 'integer':
      return Math.trunc(Number(value));
    case 'decimal':
      return Math.round(Number(value) * 100) / 100;
    case 'parisDateTime':
    case 'parisDate':
      // Spreadsheet dates carry no time zone: store the Paris wall clock.
      return parisWallClock(value as Date);
    case 'isoUtc':
      return isoUtc(value as Date);
    case 'hoursMinutes':
      // Floored to the minute, as the CSV's h:mm says.
      return Math.floor(Math.max(0, Number(value)) / 60) / 1440;
    case 'hms':
      return Math.floor(Math.max(0, Number(value))) / 86_400;
  }
}

export const XLSX_FORMATS: Partial<Record<ColumnKind, string>> = {
  decimal: '0.00',
  parisDateTime: 'dd/mm/yyyy hh:mm:ss',
  parisDate: 'dd/mm/yyyy',
  integer: '0',
  hoursMinutes: '[h]:mm',
  hms: '[h]:mm:ss',
  code: '@',
};

/** The cells that need the quotePrefix style: text a spreadsheet would otherwise read as a formula. */
export function needsQuotePrefix(kind: ColumnKind, value: CellValue): boolean {
  return (kind === 'text' || kind === 'code') && typeof value === 'string' && !isNeutralised(value);
}

/**
 * Marks a style as `quotePrefix="1"`. exceljs has no such property: the streaming writer's style
 * registry is wrapped, for this workbook only, to add the attribute to the cell format (`xf`) of any
 * style carrying this marker (an otherwise empty protection, which exceljs keeps by reference).
 */
const QUOTE_PREFIX_MARK = Object.freeze({ quotePrefix: true });

function enableQuotePrefix(workbook: unknown): void {
  const styles = (workbook as { styles?: { map?: { style?: { toXml?: (model: unknown) => string } } } }).styles;
  const xform = styles?.map?.style;
  const toXml = xform?.toXml;
  if (!xform || typeof toXml !== 'function') {
    throw new Error('exceljs style registry not found: the quotePrefix style cannot be written');
  }
  xform.toXml = (model: unknown) => {
    const xml = toXml.call(xform, model);
    const protection = (model as { protection?: unknown } | null)?.protection;
    if (protection !== QUOTE_PREFIX_MARK) return xml;
    return xml.replace(/^<xf /, '<xf quotePrefix="1" ').replace(' applyProtection="1"', '');
  };
}

export interface WriterOptions {
  /** Called after each row is written, with the number of rows so far (progress, audit). */
  onRow?: (rows: number) => void;
  /** Called once at the end with the final count, or with an error if the stream broke. */
  onEnd?: (rows: number, error?: unknown) => void | Promise<void>;
}

const CSV_BOM = '\uFEFF';
const CSV_CHUNK_CHARS = 64 * 1024;

/**
 * CSV for French Excel: UTF-8 with BOM, `;`, CRLF. Pulls rows from the async iterable only as fast as
 * the reader consumes chunks (Readable.from honours backpressure), so memory does not grow with size;
 * when the reader goes away the iterable is closed (its database cursor with it).
 */
export function csvStream(
  columns: readonly Column[],
  rows: AsyncIterable<CellValue[]>,
  options: WriterOptions & { excel?: boolean } = {},
): Readable {
  let count = 0;
  let finished: Promise<void> | undefined;
  // Called once: at the normal end, or when the reader goes away (even before the first row was read).
  const finish = (error?: unknown) => {
    finished ??= Promise.resolve(options.onEnd?.(count, error));
    return finished;
  };
  async function* generate(): AsyncGenerator<Buffer> {
    let completed = false;
    try {
      let buffer = `${CSV_BOM}${columns.map((c) => csvField(neutraliseFormula(c.header))).join(';')}\r\n`;
      const formatters = columns.map((c) => (options.excel ? CSV_EXCEL_FORMATTERS : CSV_FORMATTERS)[c.kind]);
      const width = columns.length;
      for await (const row of rows) {
        let line = '';
        for (let i = 0; i < width; i++) {
          if (i > 0) line += ';';
          const v = row[i];
          if (v !== null && v !== undefined && v !== '')
            line += (formatters[i] as (value: NonNullable<CellValue>) => string)(v);
        }
        buffer += `${line}\r\n`;
        count++;
        options.onRow?.(count);
        if (buffer.length >= CSV_CHUNK_CHARS) {
          yield Buffer.from(buffer, 'utf8');
          buffer = '';
        }
      }
      if (buffer.length > 0) yield Buffer.from(buffer, 'utf8');
      completed = true;
      // Before the stream ends, so that the reader sees the end only once the download is recorded.
      await finish();
    } finally {
      if (!completed) await finish(new Error('export interrupted'));
    }
  }
  const stream = Readable.from(generate(), { objectMode: false, highWaterMark: CSV_CHUNK_CHARS });
  stream.on('close', () => {
    if (!stream.readableEnded) void finish(new Error('export interrupted'));
  });
  return stream;
}

/**
 * XLSX through exceljs's streaming WorkbookWriter: rows are committed one by one into the zip stream,
 * inline strings (no shared-strings table kept in memory). The loop waits while the output is full,
 * so a slow reader holds the database cursor instead of filling memory.
 */
export function xlsxStream(
  columns: readonly Column[],
  rows: AsyncIterable<CellValue[]>,
  options: WriterOptions & { sheetName: string },
): Readable {
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  // exceljs ends the stream it writes to when the workbook is committed; the reader must see the end
  // only after the download is recorded, so the zip goes through `zip` and `out` is ended by us.
  const zip = new PassThrough({ highWaterMark: 256 * 1024 });
  zip.pipe(out, { end: false });
  // A write after the reader left must not crash the process; the run loop reports the interruption.
  out.on('error', () => undefined);
  let closed = false;
  const outClosed = new Promise<void>((resolve) =>
    out.once('close', () => {
      closed = true;
      resolve();
    }),
  );

  const run = async () => {
    let count = 0;
    const iterator = rows[Symbol.asyncIterator]();
    try {
      // exceljs is loaded on the first XLSX export, not at start-up (it costs ~0.25 s to load).
      const { default: excel } = await import('exceljs');
      const workbook = new excel.stream.xlsx.WorkbookWriter({
        stream: zip,
        useStyles: true,
        useSharedStrings: false,
      });
      workbook.creator = 'Émargement';
      enableQuotePrefix(workbook);
      const sheet = workbook.addWorksheet(options.sheetName.slice(0, 31), { views: [{ state: 'frozen', ySplit: 1 }] });
      sheet.columns = columns.map((c, i) => ({
        header: neutraliseFormula(c.header),
        key: `c${i}`,
        width: c.width ?? Math.min(40, Math.max(10, c.header.length + 2)),
        ...(XLSX_FORMATS[c.kind] ? { style: { numFmt: XLSX_FORMATS[c.kind] } } : {}),
      }));
      sheet.getRow(1).font = { bold: true };
      sheet.getRow(1).commit();
      for (;;) {
        if (closed) throw new Error('export interrupted');
        const next = await iterator.next();
        if (next.done) break;
        const values = columns.map((c, i) => xlsxCell(c.kind, next.value[i]));
        const row = sheet.addRow(values);
        for (let i = 0; i < columns.length; i++) {
          const column = columns[i] as Column;
          if (needsQuotePrefix(column.kind, values[i] ?? null)) row.getCell(i + 1).style = quotedStyle(column.kind);
        }
        row.commit();
        count++;
        options.onRow?.(count);
        if (count % XLSX_CHECK_EVERY === 0) await relieve(sheet, zip, outClosed, () => closed);
      }
      sheet.commit();
      await workbook.commit();
      const zipped = zip.readableEnded ? Promise.resolve() : new Promise<void>((resolve) => zip.once('end', resolve));
      await Promise.race([zipped, outClosed]);
      if (closed) throw new Error('export interrupted');
      await options.onEnd?.(count);
      out.end();
    } catch (error) {
      await iterator.return?.();
      await options.onEnd?.(count, error);
      if (!closed) out.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  };
  void run();
  return out;
}

/** One style object per kind, so that exceljs registers each cell format once. */
const QUOTED_STYLES = new Map<ColumnKind, Partial<ExcelJS.Style>>();
function quotedStyle(kind: ColumnKind): Partial<ExcelJS.Style> {
  let style = QUOTED_STYLES.get(kind);
  if (!style) {
    const numFmt = XLSX_FORMATS[kind];
    style = {
      ...(numFmt ? { numFmt } : {}),
      protection: QUOTE_PREFIX_MARK as unknown as ExcelJS.Protection,
    };
    QUOTED_STYLES.set(kind, style);
  }
  return style;
}

const XLSX_CHECK_EVERY = 200;
const XLSX_MAX_BACKLOG = 1024 * 1024;

/**
 * exceljs writes committed rows into the zip's deflate stream without waiting for it (its StreamBuf
 * ignores write() results), so a source faster than compression, or a slow reader, would pile rows up
 * in memory. Every few hundred rows we yield to the event loop (zlib and the socket progress), then wait
 * while the deflate input or our output is backed up.
 */
async function relieve(
  sheet: ExcelJS.Worksheet,
  zip: PassThrough,
  outClosed: Promise<void>,
  isClosed: () => boolean,
): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  for (;;) {
    if (isClosed()) return;
    if (zip.writableNeedDrain) {
      await Promise.race([drained(zip), outClosed]);
      continue;
    }
    if (!sheetSinks(sheet).some((pending) => pending > XLSX_MAX_BACKLOG)) return;
    await new Promise<void>((resolve) => setTimeout(resolve, 2));
  }
}

interface Sink {
  writableLength?: number;
  _writableState?: { length?: number };
}

/**
 * Bytes waiting in the streams the worksheet's buffer writes into (exceljs internals, read defensively:
 * archiver's streams come from `readable-stream`, which may lack `writableLength`).
 */
function sheetSinks(sheet: ExcelJS.Worksheet): number[] {
  const stream = (sheet as unknown as { stream?: { pipes?: unknown } }).stream;
  const pipes = Array.isArray(stream?.pipes) ? (stream.pipes as Sink[]) : [];
  return pipes.map((p) => p.writableLength ?? p._writableState?.length ?? 0);
}

function drained(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => stream.once('drain', resolve));
}
