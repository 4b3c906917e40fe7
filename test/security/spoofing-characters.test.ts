import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitFullName, validateOnboarding } from '../../src/catalog/rules.js';
import { buildCertificateData, certificateFileName } from '../../src/certificates/rules.js';
import { hasSpoofingCharacters, stripSpoofingCharacters } from '../../src/common/text.js';
import { csvCell, xlsxCell } from '../../src/exports/writers.js';
import { checkFileNumber } from '../../src/file-numbers/rules.js';
import { createUser } from '../../src/portal/index.js';
import { makeFacts } from '../certificates/helpers.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { insertFund } from '../portal/helpers.js';

const RLO = '\u202E';
const ZWSP = '\u200B';
const ZWJ = '\u200D';
const LRI = '\u2066';
const BOM = '\uFEFF';

describe('the shared rule', () => {
  it('strips bidi overrides, isolates, marks and zero-width characters, and nothing else', () => {
    const spoofed = `Jean${RLO}fdp.exe${ZWSP} Dupont${ZWJ}${LRI}${BOM}\u200F`;
    expect(hasSpoofingCharacters(spoofed)).toBe(true);
    expect(stripSpoofingCharacters(spoofed)).toBe('Jeanfdp.exe Dupont');
    expect(hasSpoofingCharacters('Éloïse Lefèvre — Hôtel du Cœur d’Île 😀')).toBe(false);
    expect(stripSpoofingCharacters('Éloïse Lefèvre — Hôtel du Cœur d’Île 😀')).toBe(
      'Éloïse Lefèvre — Hôtel du Cœur d’Île 😀',
    );
  });
});

describe('person and company fields reach no certificate, export or file name with them', () => {
  it('certificate data and its file name', () => {
    const facts = makeFacts('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', {
      given: `Élo${ZWSP}ïse`,
      family: `Lef${RLO}èvre`,
    });
    facts.company = { name: `Hôtel${ZWJ} du ${LRI}Cœur`, siret: '123 456 782 00002' };
    const data = buildCertificateData({
      number: 'EMG-2026-000001-A',
      version: 1,
      supersedes: null,
      issuedAt: new Date(Date.UTC(2026, 1, 1)),
      issuance: { kind: 'automatic', reason: null },
      provider: { name: 'Organisme' } as never,
      facts,
      rule: {
        modulesRequired: 'none',
        minCreditedMinutes: null,
        autoIssue: true,
        plannedMinutes: 60,
        sessionStart: null,
        sessionEnd: null,
      },
      publicUrl: 'https://tool.example/',
    });
    expect(data.learner.givenName).toBe('Éloïse');
    expect(data.learner.familyName).toBe('Lefèvre');
    expect(data.company.name).toBe('Hôtel du Cœur');
    expect(hasSpoofingCharacters(certificateFileName(data))).toBe(false);
  });

  it('export cells (CSV and XLSX)', () => {
    expect(csvCell('text', `Dupont${RLO}`)).toBe('Dupont');
    expect(xlsxCell('text', `Dup${ZWSP}ont`)).toBe('Dupont');
  });
});

describe('entry points store them stripped', () => {
  it('the onboarding form (names and company) and the names the platform sends', () => {
    const result = validateOnboarding(
      {
        civility: 'madame',
        familyName: `Dur${RLO}and`,
        givenName: `Lé${ZWSP}a`,
        companyName: `Hôtel du${ZWJ} Parc${BOM}`,
        siret: '732 829 320 00074',
        headcountBand: '10-49',
        idcc: '',
        fund: 'akto',
      },
      { funds: [{ slug: 'akto', name: 'AKTO' }] as never, branches: [], fixedFund: null },
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.profile).toMatchObject({ familyName: 'Durand', givenName: 'Léa', companyName: 'Hôtel du Parc' });
    expect(splitFullName({ given_name: `Lé${LRI}a`, family_name: `Dur${RLO}and` })).toEqual({
      givenName: 'Léa',
      familyName: 'Durand',
    });
  });

  it('a file number with one is refused', () => {
    expect(checkFileNumber(`AK-2026${RLO}-001`).ok).toBe(false);
    expect(checkFileNumber(`AK-2026${ZWSP}-001`).ok).toBe(false);
  });

  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestApp();
    await insertFund(ctx.app.db, 'akto', 'AKTO');
  });
  afterAll(() => ctx.close());

  it('a portal account’s display name', async () => {
    const { user } = await createUser(ctx.app.db, {
      username: 'claire@akto.test',
      displayName: `Claire${RLO} Martin${ZWSP}`,
      role: 'fund_staff',
      fundSlug: 'akto',
      password: 'une phrase de passe assez longue',
    });
    expect(user.display_name).toBe('Claire Martin');
  });
});
