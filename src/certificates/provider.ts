import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import {
  activityDeclarationValid,
  formatActivityDeclaration,
  formatSiret,
  normaliseSiret,
  type ProviderData,
  siretValid,
} from './rules.js';

/**
 * The training provider (organisme de formation) printed on every certificate. It lives in
 * `provider.json` beside the LTI registrations file (lti-config/ by default), is read and validated
 * once at start, and a bad file stops the start with a message naming each bad field.
 */
export interface ProviderConfig {
  readonly file: string;
  readonly fictitious: boolean;
  readonly data: ProviderData;
  readonly signatureImage: Buffer;
}

export class ProviderConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`Invalid certificate provider file ${file}: ${problems.join('; ')}`);
    this.name = 'ProviderConfigError';
  }
}

const MAX_IMAGE_BYTES = 512 * 1024;

export function loadProviderConfig(file: string, options: { production: boolean }): ProviderConfig {
  const shown = relative(process.cwd(), file) || file;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ProviderConfigError(shown, [`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ProviderConfigError(shown, [`is not valid JSON (${(error as Error).message})`]);
  }
  const problems: string[] = [];
  const obj = (value: unknown, path: string): Record<string, unknown> => {
    if (isRecord(value)) return value;
    problems.push(`${path}: required object`);
    return {};
  };
  const root = obj(raw, '(file)');

  const known = new Set([
    '$comment',
    'fictitious',
    'name',
    'siret',
    'activityDeclarationNumber',
    'address',
    'signatory',
    'signatureImage',
    'place',
  ]);
  for (const key of Object.keys(root)) if (!known.has(key)) problems.push(`${key}: unknown field`);

  const str = (value: unknown, path: string, max = 200): string => {
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(`${path}: required text`);
      return '';
    }
    const trimmed = value.trim().normalize('NFC');
    if (trimmed.length > max) problems.push(`${path}: at most ${max} characters`);
    // Control characters would not print and could hide text in the PDF.
    if ([...trimmed].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
      problems.push(`${path}: control characters are not allowed`);
    }
    return trimmed;
  };

  const fictitious = root.fictitious === undefined ? false : root.fictitious;
  if (typeof fictitious !== 'boolean') problems.push('fictitious: must be true or false');
  if (fictitious === true && options.production) {
    problems.push('fictitious: the example provider cannot be used in production; fill in the real provider');
  }

  const name = str(root.name, 'name');
  const siretRaw = str(root.siret, 'siret', 30);
  if (siretRaw && !siretValid(siretRaw)) {
    problems.push(`siret: must be 14 digits passing the Luhn check (got "${siretRaw}")`);
  }
  const ndaRaw = str(root.activityDeclarationNumber, 'activityDeclarationNumber', 30);
  if (ndaRaw && !activityDeclarationValid(ndaRaw)) {
    problems.push(`activityDeclarationNumber: must be 11 digits (got "${ndaRaw}")`);
  }

  const address = obj(root.address, 'address');
  const lines: unknown[] = Array.isArray(address.lines) ? address.lines : [];
  if (lines.length < 1 || lines.length > 3) problems.push('address.lines: a list of 1 to 3 lines');
  const addressLines = lines.map((line, i) => str(line, `address.lines[${i}]`, 120));
  const postalCode = str(address.postalCode, 'address.postalCode', 10);
  if (postalCode && !/^\d{5}$/.test(postalCode)) problems.push(`address.postalCode: 5 digits (got "${postalCode}")`);
  const city = str(address.city, 'address.city', 80);

  const signatory = obj(root.signatory, 'signatory');
  const signatoryName = str(signatory.name, 'signatory.name', 120);
  const signatoryRole = str(signatory.role, 'signatory.role', 120);
  const place = str(root.place, 'place', 80);

  let signatureImage = Buffer.alloc(0);
  const imagePath = str(root.signatureImage, 'signatureImage', 300);
  if (imagePath) {
    const imageFile = isAbsolute(imagePath) ? imagePath : resolve(dirname(file), imagePath);
    try {
      signatureImage = readFileSync(imageFile);
      if (signatureImage.length > MAX_IMAGE_BYTES) {
        problems.push(`signatureImage: at most ${MAX_IMAGE_BYTES / 1024} KiB (got ${signatureImage.length} bytes)`);
      } else if (imageKind(signatureImage) === null) {
        problems.push(`signatureImage: must be a PNG or JPEG file (${imagePath})`);
      }
    } catch (error) {
      problems.push(`signatureImage: cannot read ${imagePath} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }

  if (problems.length > 0) throw new ProviderConfigError(shown, problems);
  return Object.freeze({
    file,
    fictitious: fictitious === true,
    signatureImage,
    data: Object.freeze({
      name,
      siret: formatSiret(normaliseSiret(siretRaw)),
      activityDeclarationNumber: formatActivityDeclaration(ndaRaw),
      address: { lines: addressLines, postalCode, city },
      signatory: { name: signatoryName, role: signatoryRole },
      place,
      signatureImageSha256: createHash('sha256').update(signatureImage).digest('hex'),
    }),
  });
}

export function imageKind(bytes: Buffer): 'png' | 'jpeg' | null {
  if (bytes.length > 8 && bytes.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))) return 'png';
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
