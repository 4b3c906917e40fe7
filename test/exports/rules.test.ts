import type { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  csvField,
  decimalHours,
  emptyCounts,
  evaluationSummary,
  FUNNEL_STAGES,
  formatParisDateTime,
  groupFunnel,
  hoursMinutes,
  hoursMinutesSeconds,
  isNested,
  isoUtc,
  isoWeek,
  isValidDay,
  learnerStatus,
  nestStages,
  neutraliseFormula,
  parisDay,
  parisDayStart,
  parisOffsetMinutes,
  type StageFacts,
} from '../../src/exports/rules.js';
import { type CellValue, type Column, csvStream, excelCode, xlsxStream } from '../../src/exports/writers.js';
import { dayFraction, quotePrefixedCells } from './csv.js';

async function* rowsOf(rows: CellValue[][]): AsyncGenerator<CellValue[]> {
  for (const r of rows) yield r;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

describe('formula neutralisation', () => {
  it('prefixes every cell a spreadsheet would read as a formula', () => {
    for (const bad of ['=HYPERLINK("http://x","y")', '+33 1 23', '-2+3', '@SUM(A1)', '\tx', '\rx', '\nx', '＝1+1']) {
      expect(neutraliseFormula(bad)).toBe(`'${bad}`);
    }
    for (const fine of ['Dupont', "O'Neil", '12 rue =', 'a-b', '']) expect(neutraliseFormula(fine)).toBe(fine);
  });

  it('quotes fields that contain the separator, quotes or line breaks', () => {
    expect(csvField('a;b')).toBe('"a;b"');
    expect(csvField('dit "bonjour"')).toBe('"dit ""bonjour"""');
    expect(csvField('deux\r\nlignes')).toBe('"deux\r\nlignes"');
    expect(csvField('simple')).toBe('simple');
  });
});

describe('Europe/Paris time', () => {
  it('matches Intl for any instant, across daylight-saving changes', () => {
    const intl = new Intl.DateTimeFormat('fr-FR', {
      timeZone: 'Europe/Paris',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2016, 0, 1), max: Date.UTC(2035, 0, 1) }), (ms) => {
        const d = new Date(ms);
        expect(formatParisDateTime(d)).toBe(intl.format(d).replace(',', '').replace(' ', ' '));
      }),
      { numRuns: 2000 },
    );
  });

  it('switches offset exactly at 01:00 UTC on the last Sundays of March and October', () => {
    expect(parisOffsetMinutes(new Date('2026-03-29T00:59:59Z'))).toBe(60);
    expect(parisOffsetMinutes(new Date('2026-03-29T01:00:00Z'))).toBe(120);
    expect(parisOffsetMinutes(new Date('2026-10-25T00:59:59Z'))).toBe(120);
    expect(parisOffsetMinutes(new Date('2026-10-25T01:00:00Z'))).toBe(60);
    expect(formatParisDateTime(new Date('2026-07-01T22:30:00Z'))).toBe('02/07/2026 00:30:00');
    expect(isoUtc(new Date('2026-07-01T22:30:00.789Z'))).toBe('2026-07-01T22:30:00Z');
  });

  it('finds the instant a Paris day starts, in winter and in summer', () => {
    expect(parisDayStart('2026-01-15').toISOString()).toBe('2026-01-14T23:00:00.000Z');
    expect(parisDayStart('2026-07-15').toISOString()).toBe('2026-07-14T22:00:00.000Z');
    expect(parisDayStart('2026-03-29').toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(parisDay(new Date('2026-07-14T22:00:00Z'))).toBe('2026-07-15');
    expect(isValidDay('2026-02-30')).toBe(false);
    expect(isValidDay('2026-02-28')).toBe(true);
  });

  it('numbers ISO weeks like the calendar (week 1 holds the first Thursday)', () => {
    expect(isoWeek('2026-11-29')).toEqual({ key: '2026-W48', monday: '2026-11-23' });
    expect(isoWeek('2027-01-01')).toEqual({ key: '2026-W53', monday: '2026-12-28' });
    expect(isoWeek('2024-12-30')).toEqual({ key: '2025-W01', monday: '2024-12-30' });
  });
});

describe('durations and statuses', () => {
  it('floors to the minute and gives the same time in h:mm and decimal hours', () => {
    expect(hoursMinutes(0)).toBe('0:00');
    expect(hoursMinutes(5399)).toBe('1:29');
    expect(decimalHours(5399)).toBe(1.48);
    expect(hoursMinutes(4 * 3600)).toBe('4:00');
    expect(decimalHours(5400)).toBe(1.5);
    expect(hoursMinutesSeconds(3661)).toBe('01:01:01');
  });

  it('ranks a certificate above completion above activity', () => {
    expect(learnerStatus({ certificateIssued: true, modulesCompleted: 0, modulesPlanned: 9, started: false })).toBe(
      'certificate_issued',
    );
    expect(learnerStatus({ certificateIssued: false, modulesCompleted: 9, modulesPlanned: 9, started: true })).toBe(
      'completed',
    );
    expect(learnerStatus({ certificateIssued: false, modulesCompleted: 2, modulesPlanned: 9, started: true })).toBe(
      'in_progress',
    );
    expect(learnerStatus({ certificateIssued: false, modulesCompleted: 0, modulesPlanned: 9, started: false })).toBe(
      'not_started',
    );
    expect(evaluationSummary(12, 15)).toBe('12/15 (80 %)');
    expect(evaluationSummary(0, 0)).toBe('');
  });

  it('sums funnel cells by any key', () => {
    const cell = (fund: string, week: string, registered: number) => ({
      ...emptyCounts(),
      fund,
      branch: null,
      week,
      weekStart: week,
      registered,
      outOfOrder: registered > 1 ? 1 : 0,
    });
    const grouped = groupFunnel([cell('b', 'w1', 2), cell('a', 'w1', 1), cell('b', 'w2', 5)], (c) => c.fund);
    expect(grouped.map((g) => [g.key, g.counts.registered, g.outOfOrder])).toEqual([
      ['a', 1, 0],
      ['b', 7, 2],
    ]);
  });
});

describe('nested funnel stages', () => {
  const base: StageFacts = {
    modulesOpened: 0,
    creditedSeconds: 0,
    commonDone: 0,
    commonPlanned: 8,
    sectorDone: 0,
    sectorPlanned: 8,
    certified: false,
  };
  const reached = (f: Partial<StageFacts>) => FUNNEL_STAGES.filter((s) => nestStages({ ...base, ...f }).stages[s]);

  it('starts only with a module opened and credited time (onboarding alone is not a start)', () => {
    expect(reached({})).toEqual(['registered']);
    expect(reached({ modulesOpened: 1 })).toEqual(['registered']);
    expect(reached({ modulesOpened: 1, creditedSeconds: 30 })).toEqual(['registered', 'started']);
  });

  it('keeps a learner who finished the sector trunk before the common trunk at « a ouvert un module »', () => {
    const early = { modulesOpened: 10, creditedSeconds: 3600, commonDone: 2, sectorDone: 8, certified: true };
    expect(reached(early)).toEqual(['registered', 'started']);
    expect(nestStages({ ...base, ...early }).outOfOrder).toBe(true);
    const inOrder = { ...early, commonDone: 8 };
    expect(reached(inOrder)).toEqual(FUNNEL_STAGES.slice());
    expect(nestStages({ ...base, ...inOrder }).outOfOrder).toBe(false);
  });

  it('lets an unmeasured common trunk through, never an empty sector trunk', () => {
    const f = { modulesOpened: 5, creditedSeconds: 900, commonPlanned: 0, sectorDone: 5, sectorPlanned: 5 };
    expect(reached(f)).toEqual(['registered', 'started', 'sectorDone']);
    expect(reached({ ...f, sectorPlanned: 0, sectorDone: 0 })).toEqual(['registered', 'started']);
  });

  it('never counts more learners at a stage than at the stage before (any facts)', () => {
    const facts = fc.record({
      modulesOpened: fc.integer({ min: 0, max: 16 }),
      creditedSeconds: fc.integer({ min: 0, max: 20_000 }),
      commonDone: fc.integer({ min: 0, max: 8 }),
      commonPlanned: fc.constantFrom(0, 8),
      sectorDone: fc.integer({ min: 0, max: 8 }),
      sectorPlanned: fc.constantFrom(0, 8),
      certified: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(facts, { maxLength: 40 }), fc.boolean(), (learners, commonKnown) => {
        const counts = emptyCounts();
        for (const l of learners) {
          const n = nestStages(commonKnown ? { ...l, commonPlanned: 8 } : { ...l, commonPlanned: 0, commonDone: 0 });
          for (const s of FUNNEL_STAGES) if (n.stages[s]) counts[s]++;
        }
        expect(isNested(counts, commonKnown)).toBe(true);
      }),
    );
  });
});

const COLUMNS: Column[] = [
  { header: 'Nom', kind: 'text' },
  { header: 'Modules', kind: 'integer' },
  { header: 'Heures', kind: 'decimal' },
  { header: 'Début (Paris)', kind: 'parisDateTime' },
  { header: 'Jour (Paris)', kind: 'parisDate' },
  { header: 'Début (UTC)', kind: 'isoUtc' },
  { header: 'Temps', kind: 'hoursMinutes' },
  { header: 'Durée', kind: 'hms' },
];
const CODED: Column[] = [...COLUMNS, { header: 'IDCC', kind: 'code' }];
const START = new Date('2026-03-29T00:30:00Z'); // 01:30 in Paris, half an hour before summer time

describe('CSV writer', () => {
  it('writes a BOM, `;` separators, CRLF line ends and French values', async () => {
    const out = (
      await collect(
        csvStream(
          COLUMNS,
          rowsOf([
            ['=HYPERLINK("http://evil.example","clic")', 3, 1.5, START, START, START, 5400, 3661],
            ['Durand; fils', null, null, null, null, null, null, null],
          ]),
        ),
      )
    ).toString('utf8');
    expect(out.startsWith('\uFEFFNom;Modules;Heures;')).toBe(true);
    const lines = out.slice(1).split('\r\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(out.replace(/\r\n/g, '')).not.toContain('\n');
    expect(lines[1]).toBe(
      `"'=HYPERLINK(""http://evil.example"",""clic"")";3;1,50;29/03/2026 01:30:00;29/03/2026;2026-03-29T00:30:00Z;1:30;01:01:01`,
    );
    expect(lines[2]).toBe('"Durand; fils";;;;;;;');
  });

  it('keeps identifiers exact by default, and as ="…" text formulas in the variant for Excel', async () => {
    const rows = rowsOf([['x', null, null, null, null, null, null, null, '0218']]);
    const exact = (await collect(csvStream(CODED, rows))).toString('utf8').split('\r\n')[1];
    expect(exact?.split(';')[8]).toBe('0218');
    const excel = (
      await collect(
        csvStream(CODED, rowsOf([['x', null, null, null, null, null, null, null, '0218']]), { excel: true }),
      )
    )
      .toString('utf8')
      .split('\r\n')[1];
    expect(excel?.split(';')[8]).toBe('"=""0218"""');
    expect(excelCode('73282932000074')).toBe('"=""73282932000074"""');
    expect(excelCode('AKTO-42/7')).toBe('"=""AKTO-42/7"""');
    // A quote could close the string literal and open a real formula: such a value stays plain, neutralised text.
    expect(excelCode('1")&HYPERLINK("http://evil.example')).toBe('"1"")&HYPERLINK(""http://evil.example"');
    expect(excelCode('=1+1')).toBe('"=""=1+1"""');
    expect(excelCode('12\n34')).toBe('"12\n34"');
  });

  it('reports its row count at the end, and an interruption as an error', async () => {
    const ends: Array<[number, unknown]> = [];
    await collect(csvStream(COLUMNS, rowsOf([['a'], ['b']]), { onEnd: (n, e) => void ends.push([n, e]) }));
    expect(ends).toEqual([[2, undefined]]);

    const endless = async function* () {
      for (let i = 0; ; i++) yield [`ligne ${i}`] as CellValue[];
    };
    const stopped: Array<[number, unknown]> = [];
    const stream = csvStream(COLUMNS, endless(), { onEnd: (n, e) => void stopped.push([n, e]) });
    for await (const _chunk of stream) break; // the reader leaves after the first chunk
    await expect.poll(() => stopped.length).toBe(1);
    expect(stopped[0]?.[0]).toBeGreaterThan(0);
    expect(stopped[0]?.[1]).toBeInstanceOf(Error);
  });
});

describe('XLSX writer', () => {
  it('writes typed cells that read back as the CSV says', async () => {
    const rows: CellValue[][] = [
      ['=HYPERLINK("http://evil.example","clic")', 3, 1.5, START, START, START, 5400, 3661, '0218'],
      ['Zoé', 0, 0, null, null, null, 0, 0, '00111000000011'],
    ];
    const buffer = await collect(xlsxStream(CODED, rowsOf(rows), { sheetName: 'Test' }));
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(buffer as unknown as ArrayBuffer);
    const sheet = wb.getWorksheet('Test');
    expect(sheet?.getRow(1).values).toEqual([undefined, ...CODED.map((c) => c.header)]);
    const r2 = sheet!.getRow(2);
    // The text as it is, in a string cell (never evaluated), with no visible apostrophe…
    expect(r2.getCell(1).value).toBe('=HYPERLINK("http://evil.example","clic")');
    expect(r2.getCell(1).type).toBe(ExcelJS.ValueType.String);
    // …and the quotePrefix style, so that editing the cell keeps it text.
    expect(await quotePrefixedCells(buffer)).toEqual(['A2']);
    expect(r2.getCell(2).value).toBe(3);
    expect(r2.getCell(3).value).toBe(1.5);
    expect((r2.getCell(4).value as Date).toISOString()).toBe('2026-03-29T01:30:00.000Z'); // Paris wall clock
    expect(r2.getCell(4).numFmt).toBe('dd/mm/yyyy hh:mm:ss');
    expect(r2.getCell(5).numFmt).toBe('dd/mm/yyyy');
    expect(r2.getCell(6).value).toBe('2026-03-29T00:30:00Z');
    // Durations: fractions of a day with an [h]:mm format, so that a SUM works.
    expect(dayFraction(r2.getCell(7).value)).toBeCloseTo(5400 / 86_400, 9);
    expect(r2.getCell(7).numFmt).toBe('[h]:mm');
    expect(dayFraction(r2.getCell(8).value)).toBeCloseTo(3661 / 86_400, 9);
    expect(r2.getCell(8).numFmt).toBe('[h]:mm:ss');
    // Identifiers: text cells in a text-formatted column, leading zeros kept.
    expect(r2.getCell(9).value).toBe('0218');
    expect(r2.getCell(9).type).toBe(ExcelJS.ValueType.String);
    expect(r2.getCell(9).numFmt).toBe('@');
    expect(sheet?.getRow(3).getCell(9).value).toBe('00111000000011');
    expect(sheet?.getRow(3).getCell(4).value).toBeNull();
    expect(sheet?.rowCount).toBe(3);
  });

  it('floors h:mm durations to the minute, as the CSV shows them', async () => {
    const buffer = await collect(
      xlsxStream(COLUMNS, rowsOf([['a', 0, 0, null, null, null, 5459, 59]]), { sheetName: 'T' }),
    );
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(buffer as unknown as ArrayBuffer);
    const row = wb.worksheets[0]!.getRow(2);
    expect(Math.round(dayFraction(row.getCell(7).value) * 1440)).toBe(90); // 1:30, not 1:31
    expect(Math.round(dayFraction(row.getCell(8).value) * 86_400)).toBe(59);
  });

  it('stops pulling rows when the reader goes away', async () => {
    let pulled = 0;
    const endless = async function* () {
      for (;;) {
        pulled++;
        yield ['x'.repeat(200), pulled] as CellValue[];
      }
    };
    const ends: Array<[number, unknown]> = [];
    const stream = xlsxStream(COLUMNS, endless(), { sheetName: 'T', onEnd: (n, e) => void ends.push([n, e]) });
    for await (const _chunk of stream) break;
    stream.destroy();
    await expect.poll(() => ends.length).toBe(1);
    // Then nothing more is pulled (an absence: watched for a while).
    const seen = pulled;
    await new Promise((r) => setTimeout(r, 100));
    expect(pulled).toBe(seen);
    expect(ends).toHaveLength(1);
    expect(ends[0]?.[1]).toBeInstanceOf(Error);
  });
});
