import ExcelJS from 'exceljs';

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
 * Reads an XLSX back with exceljs and writes each cell the way our CSV writes it (numbers with a French
 * comma where the cell has two decimals, dates from the cell's wall clock), so both files can be compared.
 */
export async function xlsxAsCsvCells(buffer: Buffer): Promise<string[][]> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(buffer as unknown as ArrayBuffer);
  const sheet = wb.worksheets[0];
  if (!sheet) throw new Error('no sheet');
  const width = sheet.getRow(1).cellCount;
  const out: string[][] = [];
  sheet.eachRow({ includeEmpty: false }, (row) => {
    const cells: string[] = [];
    for (let i = 1; i <= width; i++) {
      const cell = row.getCell(i);
      const v = cell.value;
      if (v === null || v === undefined) cells.push('');
      else if (v instanceof Date) {
        const date = `${pad(v.getUTCDate())}/${pad(v.getUTCMonth() + 1)}/${v.getUTCFullYear()}`;
        cells.push(
          cell.numFmt === 'dd/mm/yyyy'
            ? date
            : `${date} ${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}:${pad(v.getUTCSeconds())}`,
        );
      } else if (typeof v === 'number') cells.push(cell.numFmt === '0.00' ? v.toFixed(2).replace('.', ',') : String(v));
      else cells.push(String(v));
    }
    out.push(cells);
  });
  return out;
}
