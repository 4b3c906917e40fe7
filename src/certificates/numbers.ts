/** Certificate numbers: EMG-<year>-<sequence, 6+ digits>-<check letter> (Damm check digit). Pure. */

export const NUMBER_PREFIX = 'EMG';

/**
 * Damm's quasigroup: its check digit catches every single-digit error and every adjacent transposition
 * (which ISO 7064 MOD 37,36 does not), the two mistakes people make when typing a number from paper.
 */
const DAMM: readonly (readonly number[])[] = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/**
 * The check digit is written as a letter so that it cannot be mistaken for part of the sequence;
 * letters that look like digits (B, G, I, O, S, Z) are left out.
 */
const CHECK_LETTERS = 'ACDEFHJKLN';

export function dammDigit(digits: string): number {
  let interim = 0;
  for (const ch of digits) {
    const d = ch.charCodeAt(0) - 48;
    if (d < 0 || d > 9) throw new Error(`not a digit: ${ch}`);
    interim = DAMM[interim]![d]!;
  }
  return interim;
}

export function checkLetter(year: number, sequence: number): string {
  return CHECK_LETTERS[dammDigit(`${year}${padSequence(sequence)}`)]!;
}

function padSequence(sequence: number): string {
  return String(sequence).padStart(6, '0');
}

export function formatCertificateNumber(year: number, sequence: number): string {
  if (!Number.isInteger(year) || year < 2000 || year > 9999) throw new Error(`bad year ${year}`);
  if (!Number.isInteger(sequence) || sequence < 1 || sequence > 999_999_999)
    throw new Error(`bad sequence ${sequence}`);
  return `${NUMBER_PREFIX}-${year}-${padSequence(sequence)}-${checkLetter(year, sequence)}`;
}

export type ParsedNumber =
  | { ok: true; number: string; year: number; sequence: number }
  | { ok: false; reason: 'format' | 'check' };

/**
 * Reads a number typed by a person: case, spaces and dash variants are forgiven; a wrong check letter
 * is reported as such, so a typo is told apart from a certificate that does not exist.
 */
export function parseCertificateNumber(input: string): ParsedNumber {
  const cleaned = input
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[\s\u2010-\u2015]+/g, (m) => (/\s/.test(m) ? '' : '-'));
  const match = /^EMG-?(\d{4})-?(\d{6,9})-?([A-Z])$/.exec(cleaned);
  if (!match) return { ok: false, reason: 'format' };
  const year = Number(match[1]);
  const sequence = Number(match[2]);
  if (year < 2000 || sequence < 1) return { ok: false, reason: 'format' };
  // A sequence under a million is always written on 6 digits: "0001234" is not the same text.
  if (match[2]!.length > 6 && match[2]!.startsWith('0')) return { ok: false, reason: 'format' };
  if (checkLetter(year, sequence) !== match[3]) return { ok: false, reason: 'check' };
  return { ok: true, number: formatCertificateNumber(year, sequence), year, sequence };
}
