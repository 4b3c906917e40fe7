import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ExcelJS from 'exceljs';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { bearer, get, seedStaff, signIn } from '../portal/helpers.js';
import { dayFraction, parseCsv, quotePrefixedCells } from './csv.js';
import { moduleIds, progress, seedCourse, seedFileNumber, seedLearner, seedRegistration, trackTime } from './seed.js';

/**
 * The exports as a spreadsheet reads them: identifiers with leading zeros stay text, durations are
 * numbers that sum, neutralised text shows without an apostrophe. Read back with exceljs, and with
 * LibreOffice headless where `soffice` is installed.
 */
const run = promisify(execFile);
let ctx: TestContext;
let token: string;
const SIRET = '00111000000011';
const IDCC = '0218';
const FILE_NUMBER = '0042';
const seconds: number[] = [];

async function sofficePath(): Promise<string | null> {
  for (const candidate of ['soffice', 'libreoffice']) {
    try {
      await run('sh', ['-c', `command -v ${candidate}`]);
      return candidate;
    } catch {
      // not installed
    }
  }
  return null;
}
const soffice = await sofficePath();

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  const course = await seedCourse(db, 'course-v1:FUN+TNUM+2026_T4', 'Transition numérique des TPE-PME', 'Session Z');
  const modules = await moduleIds(db, 'uniformation');
  for (const [i, family] of ['Arnaud', '=SOMME(A1:A9)', 'Colin'].entries()) {
    const id = await seedLearner(db, {
      registrationId: reg,
      courseId: course,
      fund: 'uniformation',
      idcc: IDCC,
      familyName: family,
      givenName: 'Test',
      companySiret: SIRET,
      registeredAt: new Date(Date.UTC(2026, 9, 5 + i, 8)),
    });
    const start = new Date(Date.UTC(2026, 9, 6 + i, 8));
    await progress(db, id, course, modules.common[0] as string, { startedAt: start });
    // 1 h 05 min 30 s, 2 h 59 min 59 s, 0 h 20 min: sums that cross the hour and a day's 24 h would not.
    const length = [3930, 10_799, 1200][i] as number;
    seconds.push(
      await trackTime(db, id, course, [
        { moduleId: modules.common[0] as string, start, end: new Date(start.getTime() + length * 1000), beats: 10 },
      ]),
    );
  }
  await seedFileNumber(db, { fund: 'uniformation', courseId: course, siret: SIRET, fileNumber: FILE_NUMBER });
  const staff = await seedStaff(db, ctx.app);
  token = staff.opsToken;
});
afterAll(() => ctx.close());

async function download(query: string): Promise<Buffer> {
  const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/exports/summary?${query}`, headers: bearer(token) });
  expect(res.statusCode, res.body).toBe(200);
  return res.rawPayload;
}

const IDENTIFIERS = { 'SIRET de l’entreprise': SIRET, IDCC: IDCC, 'N° de dossier OPCO': FILE_NUMBER };

describe('XLSX read back with exceljs', () => {
  it('keeps SIRET, IDCC and file number as text, durations as summable numbers, neutralised text without apostrophe', async () => {
    const buffer = await download('format=xlsx');
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(buffer as unknown as ArrayBuffer);
    const sheet = wb.worksheets[0] as ExcelJS.Worksheet;
    const header = (sheet.getRow(1).values as unknown[]).slice(1) as string[];
    const col = (name: string) => header.indexOf(name) + 1;
    expect(sheet.rowCount).toBe(4);
    let sum = 0;
    for (let r = 2; r <= 4; r++) {
      const row = sheet.getRow(r);
      for (const [name, value] of Object.entries(IDENTIFIERS)) {
        expect(row.getCell(col(name)).type, name).toBe(ExcelJS.ValueType.String);
        expect(row.getCell(col(name)).value, name).toBe(value);
      }
      const time = row.getCell(col('Temps dans les modules (h:mm)'));
      expect(time.numFmt).toBe('[h]:mm');
      sum += dayFraction(time.value);
      expect((row.getCell(col('Temps dans les modules (heures)')).value as number) > 0).toBe(true);
    }
    // The sum of the column is the sum of the floored minutes: 65 + 179 + 20 = 264 min = 4 h 24.
    const minutes = seconds.reduce((n, s) => n + Math.floor(s / 60), 0);
    expect(minutes).toBe(264);
    expect(Math.round(sum * 1440)).toBe(minutes);
    const names = [2, 3, 4].map((r) => sheet.getRow(r).getCell(col('Nom')).value);
    expect(names).toContain('=SOMME(A1:A9)');
    const quoted = await quotePrefixedCells(buffer);
    const formulaRow = names.indexOf('=SOMME(A1:A9)') + 2;
    expect(quoted).toEqual([`${sheet.getRow(1).getCell(col('Nom')).address.replace(/\d+$/, '')}${formulaRow}`]);
  });
});

describe('CSV', () => {
  it('stays exact for scripts by default', async () => {
    const rows = parseCsv((await download('format=csv')).toString('utf8'));
    const header = rows[0] as string[];
    for (const row of rows.slice(1)) {
      for (const [name, value] of Object.entries(IDENTIFIERS)) expect(row[header.indexOf(name)], name).toBe(value);
    }
  });

  it('writes identifiers as ="…" text in the variant for Excel and LibreOffice, and says so in the file name', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/exports/summary?format=csv&excel=1',
      headers: bearer(token),
    });
    expect(res.headers['content-disposition']).toMatch(/-excel\.csv"$/);
    const rows = parseCsv(res.body);
    const header = rows[0] as string[];
    for (const row of rows.slice(1)) {
      for (const [name, value] of Object.entries(IDENTIFIERS))
        expect(row[header.indexOf(name)], name).toBe(`="${value}"`);
      // Everything else is as in the exact CSV.
      expect(row[header.indexOf('Temps total (h:mm)')]).toMatch(/^\d+:\d{2}$/);
    }
    const audit = await ctx.app.db
      .selectFrom('audit_log')
      .select('details')
      .where('id', '=', res.headers['x-audit-id'] as string)
      .executeTakeFirstOrThrow();
    expect(audit.details).toMatchObject({ format: 'csv', variant: 'excel' });
    const ops = await signIn(ctx.app, 'ops@fun.test');
    const journal = parseHTML((await get(ctx.app, ops, '/portal/journal')).body).document;
    const cells = [...journal.querySelectorAll('td')].map((td) => td.textContent);
    expect(cells).toContain('synthèse CSV pour Excel');
    expect(cells).toContain('synthèse XLSX');
  });
});

describe('LibreOffice headless', () => {
  it.skipIf(!soffice)(
    `opens the CSV for Excel and the XLSX with identifiers as text${soffice ? '' : ' (skipped: soffice is not installed on this machine)'}`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'emargement-lo-'));
      try {
        await writeFile(join(dir, 'excel.csv'), await download('format=csv&excel=1'));
        await writeFile(join(dir, 'export.xlsx'), await download('format=xlsx'));
        // CSV filter options: `;`, `"`, UTF-8, from line 1, French, formulas evaluated (token 13).
        await run(
          soffice as string,
          [
            '--headless',
            '--infilter=CSV:59,34,76,1,,1036,false,false,false,false,false,-1,true',
            '--convert-to',
            'xlsx:Calc MS Excel 2007 XML',
            '--outdir',
            join(dir, 'out'),
            join(dir, 'excel.csv'),
            join(dir, 'export.xlsx'),
          ],
          { timeout: 120_000 },
        );
        for (const name of ['excel.xlsx', 'export.xlsx']) {
          const wb = new ExcelJS.Workbook();
          await wb.xlsx.load((await readFile(join(dir, 'out', name))) as unknown as ArrayBuffer);
          const sheet = wb.worksheets[0] as ExcelJS.Worksheet;
          const header = (sheet.getRow(1).values as unknown[]).slice(1) as string[];
          const row = sheet.getRow(2);
          for (const [column, value] of Object.entries(IDENTIFIERS)) {
            const cell = row.getCell(header.indexOf(column) + 1).value as unknown;
            const shown =
              cell && typeof cell === 'object' && 'result' in (cell as object)
                ? (cell as { result: unknown }).result
                : cell;
            expect(String(shown), `${name} ${column}`).toBe(value);
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
