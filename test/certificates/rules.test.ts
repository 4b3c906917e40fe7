import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  activityDeclarationValid,
  buildCertificateData,
  type CertificateFacts,
  canonicalJson,
  certificateFileName,
  csvRow,
  DEFAULT_RULE,
  evaluateEligibility,
  formatActivityDeclaration,
  formatCertificateNumber,
  formatDay,
  formatDuration,
  formatLongDay,
  formatSiret,
  initials,
  luhnValid,
  type ModuleLine,
  parisDay,
  parseCertificateNumber,
  printedMinutes,
  publicSummary,
  ruleProblems,
  siretValid,
  timeAlgorithms,
} from '../../src/certificates/rules.js';

describe('certificate numbers', () => {
  it('formats EMG-<year>-<6 digits>-<check letter>', () => {
    expect(formatCertificateNumber(2026, 123)).toMatch(/^EMG-2026-000123-[ACDEFHJKLN]$/);
    expect(formatCertificateNumber(2026, 1_234_567)).toMatch(/^EMG-2026-1234567-[A-Z]$/);
  });

  it('round-trips through the parser, forgiving case, spaces and dash variants', () => {
    const n = formatCertificateNumber(2027, 42);
    expect(parseCertificateNumber(n)).toEqual({ ok: true, number: n, year: 2027, sequence: 42 });
    expect(parseCertificateNumber(` ${n.toLowerCase().replace(/-/g, '‑')} `)).toMatchObject({ ok: true, number: n });
    expect(parseCertificateNumber(n.replace(/-/g, ''))).toMatchObject({ ok: true, number: n });
  });

  it('tells a typo (wrong check letter) apart from a malformed number', () => {
    const n = formatCertificateNumber(2026, 7);
    const wrong = n.slice(0, -1) + (n.endsWith('A') ? 'C' : 'A');
    expect(parseCertificateNumber(wrong)).toEqual({ ok: false, reason: 'check' });
    expect(parseCertificateNumber('EMG-2026-12-A')).toEqual({ ok: false, reason: 'format' });
    expect(parseCertificateNumber('../etc/passwd')).toEqual({ ok: false, reason: 'format' });
    expect(parseCertificateNumber('EMG-2026-0000123-A')).toEqual({ ok: false, reason: 'format' });
  });

  it('catches every single-digit error and every adjacent transposition', () => {
    for (let seq = 1; seq < 4000; seq += 7) {
      const n = formatCertificateNumber(2026, seq);
      const digits = n.slice(4, 8) + n.slice(9, 15);
      const rebuild = (d: string) => `EMG-${d.slice(0, 4)}-${d.slice(4)}-${n.at(-1)}`;
      for (let i = 0; i < digits.length; i++) {
        for (let v = 0; v <= 9; v++) {
          if (String(v) === digits[i]) continue;
          const typo = digits.slice(0, i) + v + digits.slice(i + 1);
          expect(parseCertificateNumber(rebuild(typo)).ok, rebuild(typo)).toBe(false);
        }
        if (i < digits.length - 1 && digits[i] !== digits[i + 1]) {
          const swapped = digits.slice(0, i) + digits[i + 1] + digits[i] + digits.slice(i + 2);
          expect(parseCertificateNumber(rebuild(swapped)).ok, rebuild(swapped)).toBe(false);
        }
      }
    }
  });

  it('refuses out-of-range inputs', () => {
    expect(() => formatCertificateNumber(2026, 0)).toThrow();
    expect(() => formatCertificateNumber(1999, 1)).toThrow();
    expect(() => formatCertificateNumber(2026, 1.5)).toThrow();
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every level and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: null, y: true }], c: 'é' } })).toBe(
      '{"a":{"c":"é","d":[3,{"y":true,"z":null}]},"b":1}',
    );
  });

  it('gives the same text whatever the key order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(obj);
      }),
    );
  });

  it('refuses floats and undefined, which would make the signed text ambiguous', () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow();
    expect(() => canonicalJson({ a: undefined })).toThrow();
    expect(() => canonicalJson({ a: Number.NaN })).toThrow();
  });
});

describe('French identifiers', () => {
  it('checks SIRET with Luhn on the SIREN and on the whole number', () => {
    expect(siretValid('999 999 998 00001')).toBe(true);
    expect(siretValid('12345678200002')).toBe(true);
    expect(siretValid('12345678200003')).toBe(false);
    expect(siretValid('1234567820000')).toBe(false);
    expect(siretValid('abcdefghijklmn')).toBe(false);
    // SIRET Luhn-valid as a whole but with an invalid SIREN.
    expect(luhnValid('12345678100001')).toBe(false);
  });

  it('applies the La Poste exception (digit sum multiple of 5)', () => {
    expect(siretValid('35600000000001')).toBe(true);
    expect(siretValid('35600000000002')).toBe(false);
  });

  it('formats SIRET and declaration numbers as printed', () => {
    expect(formatSiret('99999999800001')).toBe('999 999 998 00001');
    expect(activityDeclarationValid('11 75 99999 75')).toBe(true);
    expect(activityDeclarationValid('1175999997')).toBe(false);
    expect(formatActivityDeclaration('11759999975')).toBe('11 75 99999 75');
  });
});

describe('durations, dates and names', () => {
  it('floors durations to the minute', () => {
    expect(formatDuration(0)).toBe('0 min');
    expect(formatDuration(59)).toBe('0 min');
    expect(formatDuration(45 * 60 + 59)).toBe('45 min');
    expect(formatDuration(4 * 3600)).toBe('4 h');
    expect(formatDuration(3 * 3600 + 5 * 60 + 30)).toBe('3 h 05');
  });

  it('dates instants in Paris, across the day boundary and DST', () => {
    expect(parisDay(new Date('2026-01-05T23:30:00Z'))).toBe('2026-01-06');
    expect(parisDay(new Date('2026-07-05T21:59:00Z'))).toBe('2026-07-05');
    expect(parisDay(new Date('2026-07-05T22:00:00Z'))).toBe('2026-07-06');
    expect(formatDay('2026-03-02')).toBe('02/03/2026');
    expect(formatLongDay('2026-03-02')).toBe('2 mars 2026');
  });

  it('reduces names to initials', () => {
    expect(initials('Éloïse', 'Lefèvre')).toBe('É. L.');
    expect(initials('Jean-Pierre', 'de La Fontaine')).toBe('J.-P. L.');
    expect(initials(null, null)).toBe('—');
  });

  it('builds ASCII file names', () => {
    expect(
      certificateFileName({
        number: 'EMG-2026-000001-C',
        learner: { id: 'x', civility: null, givenName: 'Éloïse', familyName: "L'Hôte/../x" },
      }),
    ).toBe('EMG-2026-000001-C_L-Hote-x_Eloise.pdf');
  });

  it('neutralises spreadsheet formulas in CSV cells', () => {
    expect(csvRow(['=HYPERLINK("x")', 'a;b', '+1', 'ok'])).toBe(`"'=HYPERLINK(""x"")";"a;b";'+1;ok\r\n`);
  });
});

const sector = (completed: boolean) => ({ trunk: 'sector' as const, completed });
const common = (completed: boolean) => ({ trunk: 'common' as const, completed });

describe('issuance rule', () => {
  it('requires every sector module by default', () => {
    const base = { totalCreditedSeconds: 0 };
    expect(
      evaluateEligibility(DEFAULT_RULE, { ...base, modules: [common(false), sector(true), sector(true)] }).eligible,
    ).toBe(true);
    const partial = evaluateEligibility(DEFAULT_RULE, {
      ...base,
      modules: [sector(true), sector(false), sector(false)],
    });
    expect(partial.eligible).toBe(false);
    expect(partial.missing).toEqual(['2 modules de votre secteur à terminer']);
    expect(evaluateEligibility(DEFAULT_RULE, { ...base, modules: [common(true)] }).eligible).toBe(false);
  });

  it('can require all modules, a minimum time, or both', () => {
    const all = { ...DEFAULT_RULE, modulesRequired: 'all' as const };
    expect(evaluateEligibility(all, { totalCreditedSeconds: 0, modules: [common(false), sector(true)] }).eligible).toBe(
      false,
    );
    const timeOnly = { ...DEFAULT_RULE, modulesRequired: 'none' as const, minCreditedMinutes: 180 };
    expect(evaluateEligibility(timeOnly, { totalCreditedSeconds: 180 * 60 - 1, modules: [] })).toMatchObject({
      eligible: false,
      missing: ['encore 1 min de formation'],
    });
    expect(evaluateEligibility(timeOnly, { totalCreditedSeconds: 180 * 60, modules: [] }).eligible).toBe(true);
    const both = { ...DEFAULT_RULE, minCreditedMinutes: 60 };
    expect(evaluateEligibility(both, { totalCreditedSeconds: 3600, modules: [sector(false)] }).eligible).toBe(false);
    expect(evaluateEligibility(both, { totalCreditedSeconds: 3599, modules: [sector(true)] }).eligible).toBe(false);
    expect(evaluateEligibility(both, { totalCreditedSeconds: 3600, modules: [sector(true)] }).eligible).toBe(true);
  });

  it('refuses a rule without any condition, half session dates and inverted dates', () => {
    expect(ruleProblems({ ...DEFAULT_RULE, modulesRequired: 'none', minCreditedMinutes: null })).toHaveLength(1);
    expect(ruleProblems({ ...DEFAULT_RULE, sessionStart: '2026-01-01', sessionEnd: null })).toHaveLength(1);
    expect(ruleProblems({ ...DEFAULT_RULE, sessionStart: '2026-02-01', sessionEnd: '2026-01-01' })).toHaveLength(1);
    expect(ruleProblems({ ...DEFAULT_RULE, plannedMinutes: 0 })).toHaveLength(1);
    expect(ruleProblems(DEFAULT_RULE)).toEqual([]);
    // A broken rule never makes anyone eligible.
    const broken = { ...DEFAULT_RULE, modulesRequired: 'none' as const, minCreditedMinutes: null };
    expect(evaluateEligibility(broken, { totalCreditedSeconds: 99999, modules: [] }).eligible).toBe(false);
  });
});

const facts: CertificateFacts = {
  learner: { id: 'l1', civility: 'Madame', familyName: 'Lefèvre', givenName: 'Éloïse' },
  company: { name: 'Hôtel du Port', siret: '123 456 782 00002' },
  course: { id: 'c1', title: 'Transition numérique des TPE-PME' },
  fund: { slug: 'akto', name: 'AKTO', historicalName: 'Fafih', fileNumber: null },
  modules: [
    {
      id: 'akto-visibilite',
      title: 'Visibilité',
      trunk: 'sector',
      order: 7,
      creditedSeconds: 900.7,
      firstActivityAt: new Date('2026-01-12T09:00:00Z'),
      lastActivityAt: new Date('2026-01-13T23:30:00Z'),
      completedAt: new Date('2026-01-13T23:30:00Z'),
    },
    {
      id: 'common-digitalisation',
      title: 'Digitalisation',
      trunk: 'common',
      order: 1,
      creditedSeconds: 600,
      firstActivityAt: new Date('2026-01-05T08:00:00Z'),
      lastActivityAt: new Date('2026-01-05T08:10:00Z'),
      completedAt: null,
    },
  ],
  commonTrunkEstimatedSeconds: 1200,
  totalCreditedSeconds: null,
  timeAccounting: { algorithm: 'beats-v1', params: { beatSeconds: 30 } },
};

describe('certificate data', () => {
  const provider = {
    name: 'OF',
    siret: '999 999 998 00001',
    activityDeclarationNumber: '11 75 99999 75',
    address: { lines: ['1 rue'], postalCode: '75000', city: 'Paris' },
    signatory: { name: 'C. E.', role: 'Directrice' },
    place: 'Paris',
    signatureImageSha256: 'ab',
  };
  const build = (rule = DEFAULT_RULE) =>
    buildCertificateData({
      facts,
      rule,
      provider,
      number: formatCertificateNumber(2026, 1),
      version: 1,
      supersedes: null,
      issuedAt: new Date('2026-03-01T23:15:00Z'),
      issuance: { kind: 'automatic', reason: null },
      publicUrl: 'https://tool.example/',
    });

  it('orders modules common trunk first, floors seconds, sums durations and dates in Paris', () => {
    const data = build();
    expect(data.modules.map((m) => m.id)).toEqual(['common-digitalisation', 'akto-visibilite']);
    expect(data.modules[1]).toMatchObject({
      creditedSeconds: 900,
      firstDay: '2026-01-12',
      lastDay: '2026-01-14',
      completed: true,
    });
    expect(data.durations).toEqual({
      modulesSeconds: 1500,
      commonTrunkEstimatedSeconds: 1200,
      totalSeconds: 2700,
      plannedMinutes: 240,
      modulesCompleted: 1,
      modulesPlanned: 2,
    });
    expect(data.action).toMatchObject({ startDay: '2026-01-05', endDay: '2026-01-14', datesFrom: 'activity' });
    expect(data.issuedDay).toBe('2026-03-02');
    expect(data.verificationUrl).toBe(`https://tool.example/verify/${data.number}`);
    expect(() => canonicalJson(data)).not.toThrow();
  });

  it('prints rows of minutes that add up to the printed total (largest remainder), and both algorithms', () => {
    // 600 s + 900 s + 1 200 s = 2 700 s = 45 min: 10 + 15 + 20, exactly.
    const data = build();
    expect(printedMinutes(data)).toEqual({ modules: [10, 15], modulesTotal: 25, commonTrunk: 20, total: 45 });
    // Rows of 50 s, 50 s, 40 s (140 s = 2 min): flooring each would print 0 + 0 + 0 for a total of 2 min.
    const odd = {
      ...data,
      modules: data.modules.map((m) => ({ ...m, creditedSeconds: 50 })),
      durations: { ...data.durations, modulesSeconds: 100, commonTrunkEstimatedSeconds: 40, totalSeconds: 140 },
    };
    expect(printedMinutes(odd)).toEqual({ modules: [1, 1], modulesTotal: 2, commonTrunk: 0, total: 2 });
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50_000 }), { minLength: 1, maxLength: 16 }),
        fc.option(fc.integer({ min: 0, max: 50_000 })),
        (seconds, estimate) => {
          const d = {
            modules: seconds.map((creditedSeconds) => ({ ...(data.modules[0] as ModuleLine), creditedSeconds })),
            durations: {
              ...data.durations,
              commonTrunkEstimatedSeconds: estimate,
              totalSeconds: seconds.reduce((a, b) => a + b, 0) + (estimate ?? 0),
            },
          };
          const p = printedMinutes(d);
          expect(p.modules.reduce((a, b) => a + b, 0) + (p.commonTrunk ?? 0)).toBe(p.total);
          expect(p.total).toBe(Math.floor(d.durations.totalSeconds / 60));
        },
      ),
    );
    expect(timeAlgorithms(data)).toEqual(['beats-v1']);
    const withLms = {
      ...data,
      timeAccounting: { algorithm: 'beats-v2', params: { lms: { algorithm: 'lms-sessions-v1' } } },
    };
    expect(timeAlgorithms(withLms)).toEqual(['beats-v2', 'lms-sessions-v1']);
  });

  it('dates the action from the first to the last activity, LMS-estimated days included', () => {
    const data = buildCertificateData({
      facts: {
        ...facts,
        commonTrunkActivity: {
          firstAt: new Date('2026-01-02T10:00:00Z'),
          lastAt: new Date('2026-01-20T22:30:00Z'), // 23:30 in Paris
        },
      },
      rule: DEFAULT_RULE,
      provider,
      number: formatCertificateNumber(2026, 2),
      version: 1,
      supersedes: null,
      issuedAt: new Date('2026-03-01T10:00:00Z'),
      issuance: { kind: 'automatic', reason: null },
      publicUrl: 'https://tool.example/',
    });
    expect(data.action).toMatchObject({ startDay: '2026-01-02', endDay: '2026-01-20', datesFrom: 'activity' });
  });

  it('uses the session dates when the course has them', () => {
    const data = build({ ...DEFAULT_RULE, sessionStart: '2026-01-01', sessionEnd: '2026-02-28' });
    expect(data.action).toMatchObject({ startDay: '2026-01-01', endDay: '2026-02-28', datesFrom: 'session' });
  });

  it('publishes initials, never the full name', () => {
    const data = build();
    const summary = publicSummary(data, {
      state: 'valid',
      supersededBy: null,
      revokedAt: null,
      pdfSha256: 'p',
      dataSha256: 'd',
      signature: 's',
      kid: 'k',
    });
    expect(summary.learnerInitials).toBe('É. L.');
    expect(JSON.stringify(summary)).not.toMatch(/Lefèvre|Éloïse|Hôtel du Port|123 456/);
  });
});
