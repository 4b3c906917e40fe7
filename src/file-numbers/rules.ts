import { laPosteSiretValid, luhnValid } from '../common/siret.js';
import { stripSpoofingCharacters } from '../common/text.js';

/**
 * Pure rules of the OPCO file numbers (« numéro de dossier de prise en charge »): what a SIRET and a
 * file number must look like, and the CSV import format. No database here.
 */

export const FILE_NUMBER_MAX_LENGTH = 50;

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

/** Spaces, dots and dashes are how people copy a SIRET; they carry no meaning. */
export function normaliseSiret(input: string): string {
  return input.replace(/[\s.\u00a0\u202f-]/g, '');
}

export function checkCompanySiret(input: string): Checked<string> {
  const siret = normaliseSiret(input);
  if (siret === '') return { ok: false, message: 'Indiquez le numéro SIRET de l’entreprise.' };
  if (!/^\d{14}$/.test(siret)) {
    return { ok: false, message: 'Le numéro SIRET compte 14 chiffres.' };
  }
  if (!luhnValid(siret) && !laPosteSiretValid(siret)) {
    return { ok: false, message: 'Ce numéro SIRET n’existe pas : un chiffre est sans doute mal recopié.' };
  }
  return { ok: true, value: siret };
}

/**
 * A file number as the OPCO wrote it: trimmed, inner runs of blanks made one space, 1 to 50 printable
 * characters (letters, digits, punctuation; no control characters). Funds' formats differ (AKTO, OPCO EP,
 * Atlas…), so the content is otherwise free.
 */
export function checkFileNumber(input: string): Checked<string> {
  const value = input.normalize('NFC').trim().replace(/\s+/g, ' ');
  if (value === '') return { ok: false, message: 'Indiquez le numéro de dossier.' };
  if ([...value].length > FILE_NUMBER_MAX_LENGTH) {
    return { ok: false, message: `Le numéro de dossier ne doit pas dépasser ${FILE_NUMBER_MAX_LENGTH} caractères.` };
  }
  if (!/^[\p{L}\p{N}\p{P}\p{S} ]+$/u.test(value)) {
    return {
      ok: false,
      message: 'Le numéro de dossier ne peut contenir que des lettres, des chiffres, des espaces et de la ponctuation.',
    };
  }
  return { ok: true, value };
}

/** "123 456 782 00002", as French documents print it. */
export function formatSiret(siret: string): string {
  return /^\d{14}$/.test(siret)
    ? `${siret.slice(0, 3)} ${siret.slice(3, 6)} ${siret.slice(6, 9)} ${siret.slice(9)}`
    : siret;
}

export interface ImportLine {
  line: number;
  siret: string;
  fileNumber: string;
}

export interface ImportProblem {
  line: number;
  message: string;
}

export const IMPORT_MAX_LINES = 5000;
/** The largest file the page accepts (5000 lines of SIRET;number fit in well under this). */
export const IMPORT_MAX_FILE_BYTES = 500_000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Control characters other than tab, line feed and carriage return, or the replacement character. */
function hasBinaryCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f || c === 0xfffd) return true;
  }
  return false;
}
const windows1252 = new TextDecoder('windows-1252');

/**
 * The text of a file chosen on the page, whatever the spreadsheet saved it as: UTF-8 (with or without
 * BOM), UTF-16 with its BOM ("texte Unicode"), or Windows-1252 — what Excel in French writes for "CSV
 * (séparateur : point-virgule)", where "é" is one byte that is not UTF-8. A workbook (.xlsx, .xls, .ods)
 * or any other binary file gets a message saying how to save it as CSV.
 */
export function decodeImportFile(bytes: Uint8Array): Checked<string> {
  const saveAsCsv =
    'Enregistrez-le au format CSV (séparateur : point-virgule) depuis votre tableur, puis choisissez ce fichier.';
  if (bytes.length === 0) return { ok: false, message: 'Le fichier choisi est vide.' };
  const startsWith = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  if (startsWith(0x50, 0x4b, 0x03, 0x04) || startsWith(0xd0, 0xcf, 0x11, 0xe0)) {
    return { ok: false, message: `Ce fichier est un classeur, pas un fichier CSV. ${saveAsCsv}` };
  }
  let text: string;
  if (startsWith(0xff, 0xfe)) text = new TextDecoder('utf-16le').decode(bytes.subarray(2));
  else if (startsWith(0xfe, 0xff)) text = new TextDecoder('utf-16be').decode(bytes.subarray(2));
  else {
    const body = startsWith(0xef, 0xbb, 0xbf) ? bytes.subarray(3) : bytes;
    try {
      text = utf8.decode(body);
    } catch {
      text = windows1252.decode(body);
    }
  }
  // Text files have no NUL; binary ones (PDF, images, UTF-16 without BOM) have some, or unprintable bytes.
  if (hasBinaryCharacters(text)) {
    return { ok: false, message: `Ce fichier n’est pas un fichier texte CSV. ${saveAsCsv}` };
  }
  return { ok: true, value: text };
}

/**
 * `SIRET;numéro` per line (`,` or tab also accepted, as spreadsheets export them). A header line
 * (first cell not digits) and blank lines are skipped; a BOM is ignored. Every bad line is reported with
 * its number; nothing is imported unless every line is good.
 */
export function parseImport(text: string): { lines: ImportLine[]; problems: ImportProblem[] } {
  const lines: ImportLine[] = [];
  const problems: ImportProblem[] = [];
  const seen = new Map<string, number>();
  const rows = text.replace(/^\ufeff/, '').split(/\r\n|\n|\r/);
  if (rows.length > IMPORT_MAX_LINES + 1) {
    return { lines: [], problems: [{ line: 0, message: `Le fichier dépasse ${IMPORT_MAX_LINES} lignes.` }] };
  }
  rows.forEach((row, index) => {
    const line = index + 1;
    if (row.trim() === '') return;
    const separator = row.includes(';') ? ';' : row.includes('\t') ? '\t' : ',';
    const cells = row.split(separator).map((c) =>
      c
        .trim()
        .replace(/^"(.*)"$/s, '$1')
        .trim(),
    );
    if (line === 1 && !/\d/.test(cells[0] ?? '')) return; // header
    if (cells.length !== 2) {
      problems.push({ line, message: 'Deux colonnes attendues : SIRET;numéro de dossier.' });
      return;
    }
    const siret = checkCompanySiret(cells[0] as string);
    const number = checkFileNumber(cells[1] as string);
    if (!siret.ok) problems.push({ line, message: siret.message });
    if (!number.ok) problems.push({ line, message: number.message });
    if (!siret.ok || !number.ok) return;
    const previous = seen.get(siret.value);
    if (previous !== undefined) {
      problems.push({ line, message: `Ce SIRET figure déjà ligne ${previous}.` });
      return;
    }
    seen.set(siret.value, line);
    lines.push({ line, siret: siret.value, fileNumber: number.value });
  });
  return { lines, problems };
}

// ---------------------------------------------------------------------------------------------
// Company names declared by learners (docs/security.md, "Company identity"). Any learner may type any
// valid SIRET with any name, so a SIRET's file number must not follow whoever declared it: it applies to
// a learner only when the fund confirmed the name that learner declared, or, while nothing is confirmed,
// when every learner of that SIRET declared the same name (compared after normalisation).

/** The comparison key of a company name: no accents, case, punctuation or extra spaces. */
export function companyNameKey(name: string): string {
  return stripSpoofingCharacters(name)
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Does the company's number apply to a learner who declared `declaredKey`? */
export function fileNumberApplies(input: {
  declaredKey: string;
  /** Keys of every name declared for this SIRET by the fund's learners of the session. */
  declaredKeys: readonly string[];
  /** Keys of the names the fund confirmed for this SIRET. */
  confirmedKeys: readonly string[];
}): boolean {
  if (input.confirmedKeys.includes(input.declaredKey)) return true;
  if (input.confirmedKeys.length > 0) return false;
  return new Set([...input.declaredKeys, input.declaredKey]).size === 1;
}
