import { describe, expect, it } from 'vitest';
import { checkCompanySiret, checkFileNumber, parseImport } from '../../src/file-numbers/rules.js';

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
