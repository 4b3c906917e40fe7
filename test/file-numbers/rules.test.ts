import { describe, expect, it } from 'vitest';
import { checkCompanySiret, checkFileNumber, decodeImportFile, parseImport } from '../../src/file-numbers/rules.js';

describe('SIRET of the company', () => {
  it('accepts spaces and checks the Luhn key (La Poste too)', () => {
    expect(checkCompanySiret('732 829 320 00074')).toEqual({ ok: true, value: '73282932000074' });
    expect(checkCompanySiret('35600000000048')).toEqual({ ok: true, value: '35600000000048' });
    expect(checkCompanySiret('73282932000075')).toMatchObject({
      ok: false,
      message: expect.stringContaining('mal recopié'),
    });
    expect(checkCompanySiret('7328293200007')).toMatchObject({
      ok: false,
      message: expect.stringContaining('14 chiffres'),
    });
    expect(checkCompanySiret('  ')).toMatchObject({ ok: false, message: expect.stringContaining('Indiquez') });
  });
});

describe('file number', () => {
  it('trims, folds blanks, and keeps printable text up to 50 characters', () => {
    expect(checkFileNumber('  AKTO  2026/00042 ')).toEqual({ ok: true, value: 'AKTO 2026/00042' });
    expect(checkFileNumber('DOSSIER-é-№1')).toEqual({ ok: true, value: 'DOSSIER-é-№1' });
    expect(checkFileNumber('x'.repeat(50))).toMatchObject({ ok: true });
    expect(checkFileNumber('x'.repeat(51))).toMatchObject({
      ok: false,
      message: expect.stringContaining('50 caractères'),
    });
    expect(checkFileNumber('')).toMatchObject({ ok: false, message: 'Indiquez le numéro de dossier.' });
    expect(checkFileNumber('AB\u0000CD')).toMatchObject({ ok: false, message: expect.stringContaining('ponctuation') });
    expect(checkFileNumber('AB\u202eCD')).toMatchObject({ ok: false });
  });
});

describe('CSV import', () => {
  it('reads SIRET;number lines, skips a header and blank lines', () => {
    const r = parseImport('\ufeffSIRET;Numéro\r\n732 829 320 00074;AKTO-1\r\n\r\n12345678200002;"AKTO-2"\n');
    expect(r.problems).toEqual([]);
    expect(r.lines).toEqual([
      { line: 2, siret: '73282932000074', fileNumber: 'AKTO-1' },
      { line: 4, siret: '12345678200002', fileNumber: 'AKTO-2' },
    ]);
  });

  it('reports every bad line with its number', () => {
    const r = parseImport('73282932000075;A\n12345678200002\n12345678200002;B\n12345678200002;C\n55210055400013;');
    expect(r.problems).toEqual([
      { line: 1, message: expect.stringContaining('SIRET') },
      { line: 2, message: expect.stringContaining('Deux colonnes') },
      { line: 4, message: 'Ce SIRET figure déjà ligne 3.' },
      { line: 5, message: 'Indiquez le numéro de dossier.' },
    ]);
  });
});

describe('a chosen import file', () => {
  const line = 'SIRET;Numéro de dossier\r\n73282932000074;AKTO-É-1\r\n';
  const win1252 = (text: string) =>
    Uint8Array.from([...text].map((c) => (c === 'é' ? 0xe9 : c === 'É' ? 0xc9 : c.charCodeAt(0))));

  it('reads UTF-8 with or without BOM, UTF-16 with its BOM, and Windows-1252 (Excel in French)', () => {
    const utf8 = new TextEncoder().encode(line);
    expect(decodeImportFile(utf8)).toEqual({ ok: true, value: line });
    expect(decodeImportFile(Uint8Array.from([0xef, 0xbb, 0xbf, ...utf8]))).toEqual({ ok: true, value: line });
    const utf16le = Uint8Array.from([0xff, 0xfe, ...Buffer.from(line, 'utf16le')]);
    expect(decodeImportFile(utf16le)).toEqual({ ok: true, value: line });
    const utf16be = Buffer.from(line, 'utf16le').swap16();
    expect(decodeImportFile(Uint8Array.from([0xfe, 0xff, ...utf16be]))).toEqual({ ok: true, value: line });
    expect(decodeImportFile(win1252(line))).toEqual({ ok: true, value: line });
    expect(parseImport((decodeImportFile(win1252(line)) as { value: string }).value).lines).toEqual([
      { line: 2, siret: '73282932000074', fileNumber: 'AKTO-É-1' },
    ]);
  });

  it('says how to save a workbook or a binary file as CSV, and that an empty file is empty', () => {
    const xlsx = Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00]);
    const xls = Uint8Array.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
    for (const bytes of [xlsx, xls]) {
      expect(decodeImportFile(bytes)).toEqual({ ok: false, message: expect.stringContaining('est un classeur') });
    }
    const pdf = new TextEncoder().encode('%PDF-1.7\n\u0000\u0001binary');
    expect(decodeImportFile(pdf)).toEqual({ ok: false, message: expect.stringContaining('pas un fichier texte CSV') });
    // UTF-16 without a BOM: every other byte is NUL.
    expect(decodeImportFile(Buffer.from(line, 'utf16le'))).toMatchObject({ ok: false });
    expect(decodeImportFile(new Uint8Array())).toEqual({ ok: false, message: 'Le fichier choisi est vide.' });
  });
});
