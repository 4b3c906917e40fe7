import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadProviderConfig, ProviderConfigError } from '../../src/certificates/index.js';
import { testConfig } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';

const EXAMPLE = resolve('lti-config/provider.json');
const example = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
const dirs: string[] = [];

/** A config folder like lti-config/: registrations, provider file, signature image. */
function configDir(provider: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'cert-provider-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'registrations.json'), '[]');
  copyFileSync(resolve('lti-config/provider-signature.example.png'), join(dir, 'provider-signature.example.png'));
  writeFileSync(join(dir, 'provider.json'), typeof provider === 'string' ? provider : JSON.stringify(provider));
  return dir;
}

function problemsOf(provider: unknown, production = false): string[] {
  try {
    loadProviderConfig(join(configDir(provider), 'provider.json'), { production });
  } catch (error) {
    if (error instanceof ProviderConfigError) return error.problems;
    throw error;
  }
  return [];
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('provider configuration', () => {
  it('accepts the shipped example, marked fictitious, with normalised identifiers', () => {
    const p = loadProviderConfig(EXAMPLE, { production: false });
    expect(p.fictitious).toBe(true);
    expect(p.data).toMatchObject({
      name: 'Organisme de formation EXEMPLE (fictif)',
      siret: '999 999 998 00001',
      activityDeclarationNumber: '11 75 99999 75',
      place: 'Paris',
      signatory: { name: 'Camille Exemple', role: 'Directrice (exemple fictif)' },
    });
    expect(p.data.signatureImageSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(p.signatureImage.subarray(1, 4).toString()).toBe('PNG');
  });

  it('names each bad field', () => {
    expect(problemsOf({ ...example, siret: '999 999 998 00002' })).toEqual([
      'siret: must be 14 digits passing the Luhn check (got "999 999 998 00002")',
    ]);
    expect(problemsOf({ ...example, activityDeclarationNumber: '1175999997' })[0]).toMatch(
      /^activityDeclarationNumber:/,
    );
    expect(problemsOf({ ...example, address: { lines: ['1 rue'], postalCode: '7500' } })).toEqual([
      'address.postalCode: 5 digits (got "7500")',
      'address.city: required text',
    ]);
    expect(problemsOf({ ...example, signatory: { name: 'X' } })).toEqual(['signatory.role: required text']);
    expect(problemsOf({ ...example, signatureImage: 'absent.png' })[0]).toMatch(
      /^signatureImage: cannot read absent\.png/,
    );
    expect(problemsOf({ ...example, signatureImage: 'provider.json' })[0]).toMatch(
      /^signatureImage: must be a PNG or JPEG/,
    );
    expect(problemsOf({ ...example, place: '' })).toEqual(['place: required text']);
    expect(problemsOf({ ...example, nmae: 'typo' })).toEqual(['nmae: unknown field']);
    expect(problemsOf({ ...example, name: 'A\u0000B' })).toEqual(['name: control characters are not allowed']);
    expect(problemsOf('{ not json')[0]).toMatch(/^is not valid JSON/);
  });

  it('refuses the fictitious example in production', () => {
    expect(problemsOf(example, true)).toEqual([
      'fictitious: the example provider cannot be used in production; fill in the real provider',
    ]);
    expect(problemsOf({ ...example, fictitious: false }, true)).toEqual([]);
  });

  it('stops the app from building when the file is bad', async () => {
    const dir = configDir({ ...example, siret: '12345678900000' });
    const database = await createTestDatabase();
    try {
      const config = testConfig({ PROVIDER_FILE: join(dir, 'provider.json') });
      // server.ts prints this message on one line and exits non-zero.
      const error = await buildApp({ config, database }).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(error).toBeInstanceOf(ProviderConfigError);
      expect(error?.message).toMatch(/^Invalid certificate provider file .*provider\.json: siret: must be 14 digits/);
      expect(error?.message).not.toContain('\n');
    } finally {
      await database.close();
    }
  });
});
