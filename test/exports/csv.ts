import ExcelJS from 'exceljs';
import JSZip from 'jszip';
import { DOMParser } from 'linkedom';

/** RFC 4180 reading with `;` (what French Excel writes and reads), for checking our own output. */
export function parseCsv(text: string): string[][] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (quoted) {
      if (c === '"' && body[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ';') {
      row.push(field);
      field = '';
    } else if (c === '\r' && body[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * A duration cell's stored number (a fraction of a day). exceljs reads a number under a time format
 * such as [h]:mm back as a Date counted from the spreadsheet epoch, 1899-12-30.
 */
export function dayFraction(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value instanceof Date) return (value.getTime() - Date.UTC(1899, 11, 30)) / 86_400_000;
  throw new Error(`not a duration cell: ${String(value)}`);
}

/**
 * Reads an XLSX back with exceljs and writes each cell the way our CSV writes it (numbers with a French
 * comma where the cell has two decimals, dates from the cell's wall clock), so both files can be compared.
 */
export async function xlsxAsCsvCells(buffer: Buffer): Promise<string[][]> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(buffer as unknown as ArrayBuffer);
  const sheet = wb.worksheets[0];
  if (!sheet) throw new Error('no sheet');
  const width = sheet.getRow(1).cellCount;
  const quoted = new Set(await quotePrefixedCells(buffer));
  const out: string[][] = [];
  sheet.eachRow({ includeEmpty: false }, (row) => {
    const cells: string[] = [];
    for (let i = 1; i <= width; i++) {
      const cell = row.getCell(i);
      const v = cell.value;
      if (v === null || v === undefined) cells.push('');
      else if (v instanceof Date && cell.numFmt?.startsWith('[h]')) {
        const minutes = Math.round(dayFraction(v) * 1440);
        const seconds = Math.round(dayFraction(v) * 86_400);
        cells.push(
          cell.numFmt === '[h]:mm'
            ? `${Math.floor(minutes / 60)}:${pad(minutes % 60)}`
            : `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor((seconds % 3600) / 60))}:${pad(seconds % 60)}`,
        );
      } else if (v instanceof Date) {
        const date = `${pad(v.getUTCDate())}/${pad(v.getUTCMonth() + 1)}/${v.getUTCFullYear()}`;
        cells.push(
          cell.numFmt === 'dd/mm/yyyy'
            ? date
            : `${date} ${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}:${pad(v.getUTCSeconds())}`,
        );
      } else if (typeof v === 'number') cells.push(cell.numFmt === '0.00' ? v.toFixed(2).replace('.', ',') : String(v));
      else {
        // The CSV neutralises with an apostrophe what the XLSX keeps as text under the quotePrefix style.
        const text = String(v);
        cells.push(quoted.has(cell.address) ? `'${text}` : text);
      }
    }
    out.push(cells);
  });
  return out;
}

/** The cells of the first sheet whose cell format (styles.xml `xf`) has quotePrefix="1", e.g. ['A2']. */
export async function quotePrefixedCells(buffer: Buffer): Promise<string[]> {
  const zip = await JSZip.loadAsync(buffer);
  const parse = async (name: string) => {
    const file = zip.file(name);
    if (!file) throw new Error(`${name} missing from the XLSX`);
    return new DOMParser().parseFromString(await file.async('string'), 'text/xml');
  };
  const styles = await parse('xl/styles.xml');
  const xfs = [...styles.querySelectorAll('cellXfs > xf')];
  const quotedStyles = new Set(xfs.flatMap((xf, i) => (xf.getAttribute('quotePrefix') === '1' ? [String(i)] : [])));
  const sheet = await parse('xl/worksheets/sheet1.xml');
  return [...sheet.querySelectorAll('c')]
    .filter((c) => quotedStyles.has(c.getAttribute('s') ?? ''))
    .map((c) => c.getAttribute('r') ?? '');
}
