import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LearnerProfile, ModuleCompletion, ModuleInfo } from '../../src/catalog/index.js';
import { renderCertificatePdf } from '../../src/certificates/pdf.js';
import { loadProviderConfig } from '../../src/certificates/provider.js';
import {
  buildCertificateData,
  type CertificateData,
  canonicalJson,
  DEFAULT_RULE,
  describeIssuanceRule,
  eligibilityFacts,
  evaluateEligibility,
  formatCertificateNumber,
} from '../../src/certificates/rules.js';
import { assembleFacts } from '../../src/certificates/sources.js';

/**
 * The certificate of the programme as funded: 16 modules (8 common-trunk, 8 of the learner's fund, two
 * per theme where the track says so), "Modules terminés n / 16", the planned duration as the sum of the
 * modules' nominal durations, and the per-module table read back from the PDF.
 */
const TRACK = 'transition-numerique';
const THEMES: [string, 'common' | 'sector', number][] = [
  ['digitalisation', 'common', 2],
  ['fonctions-numerisables', 'common', 2],
  ['autodiagnostic-strategie', 'common', 2],
  ['obligations-protection', 'common', 2],
  ['coeur-de-metier', 'sector', 2],
  ['attentes-clients', 'sector', 2],
  ['visibilite', 'sector', 1],
  ['organiser-manager', 'sector', 2],
  ['mesurer-optimiser', 'sector', 1],
];

const modules: ModuleInfo[] = [];
for (const [theme, trunk, count] of THEMES) {
  for (const fund of trunk === 'common' ? [null] : ['akto', 'atlas']) {
    for (let position = 1; position <= count; position++) {
      modules.push({
        id: `${fund ?? 'common'}-${theme}${position > 1 ? `-${position}` : ''}`,
        title: `${theme} — module ${position} (${fund ?? 'tronc commun'})`,
        trackId: TRACK,
        theme,
        themeTitle: theme,
        trunk,
        fundSlug: fund,
        branches: [],
        nominalMinutes: 15,
        currentVersion: 1,
        position,
        active: true,
      });
    }
  }
}

const profile: LearnerProfile = {
  learnerId: 'l1',
  civility: 'madame',
  familyName: 'Lefèvre',
  givenName: 'Éloïse',
  companyName: 'Hôtel du Parc',
  companySiret: '123 456 782 00002',
  headcountBand: '10-49',
  idcc: '1979',
  branchName: 'HCR',
  branchHistoricalName: null,
  fundSlug: 'akto',
  fundName: 'AKTO',
  updatedAt: new Date(),
};

const programme = modules.filter((m) => m.fundSlug === null || m.fundSlug === 'akto');
const completions: ModuleCompletion[] = programme.slice(0, 12).map((m, i) => ({
  learnerId: 'l1',
  courseId: 'c1',
  moduleId: m.id,
  moduleVersion: 1,
  trackId: TRACK,
  theme: m.theme,
  trunk: m.trunk,
  fundSlug: m.fundSlug,
  nominalMinutes: 15,
  startedAt: new Date(Date.UTC(2026, 0, 5 + i, 9)),
  completedAt: new Date(Date.UTC(2026, 0, 5 + i, 9, 20)),
}));

let data: CertificateData;
let text: string;
let pages: number;

function pdfTool(tool: 'pdftotext' | 'pdfinfo', bytes: Buffer, args: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'cert-programme-'));
  try {
    writeFileSync(join(dir, 'c.pdf'), bytes);
    return execFileSync(tool, [...args, join(dir, 'c.pdf'), ...(tool === 'pdftotext' ? ['-'] : [])], {
      encoding: 'utf8',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  const provider = loadProviderConfig(resolve('lti-config/provider.json'), { production: false });
  const facts = assembleFacts({
    learnerId: 'l1',
    course: { id: 'c1', title: 'Transition numérique des TPE-PME' },
    profile,
    fund: { slug: 'akto', name: 'AKTO', historicalName: 'Fafih' },
    modules,
    themePositions: new Map(THEMES.map(([slug], i) => [`${TRACK}|${slug}`, i + 1])),
    completions,
    times: {
      algorithm: 'beats-v1',
      params: {},
      modules: programme.map((m) => ({ moduleId: m.id, creditedSeconds: 900, firstAt: null, lastAt: null })),
    },
  });
  // The course rule's own figure is not what is printed: the programme's modules are.
  data = buildCertificateData({
    facts,
    rule: { ...DEFAULT_RULE, plannedMinutes: 999 },
    provider: provider.data,
    number: formatCertificateNumber(2026, 7),
    version: 1,
    supersedes: null,
    issuedAt: new Date('2026-03-02T10:15:00Z'),
    issuance: { kind: 'automatic', reason: null },
    publicUrl: 'https://emargement.example.fr',
  });
  const pdf = await renderCertificatePdf(data, {
    signatureImage: provider.signatureImage,
    dataSha256: createHash('sha256').update(canonicalJson(data)).digest('hex'),
  });
  text = pdfTool('pdftotext', pdf, ['-layout', '-enc', 'UTF-8']);
  pages = Number(/Pages:\s+(\d+)/.exec(pdfTool('pdfinfo', pdf))?.[1]);
});

describe('the certificate of the 16-module programme', () => {
  it('counts the learner’s 16 modules and plans the sum of their nominal durations', () => {
    expect(data.modules.map((m) => m.id)).toEqual(programme.map((m) => m.id));
    expect(data.durations).toMatchObject({ modulesPlanned: 16, modulesCompleted: 12, plannedMinutes: 240 });
  });

  it('reads back from the PDF: "12 / 16", 4 h planned, and one row per module in programme order', () => {
    expect(text).toMatch(/Modules terminés\s+12 \/ 16/);
    expect(text).toMatch(/Durée prévue\s+4\s?h\b/);
    const rows = programme.map((m) => text.indexOf(m.title));
    expect(rows.every((i) => i >= 0)).toBe(true);
    expect([...rows].sort((a, b) => a - b)).toEqual(rows);
    // On one A4 page, or two with the table continued under repeated headers.
    expect(pages).toBeGreaterThanOrEqual(1);
    expect(pages).toBeLessThanOrEqual(2);
    if (pages === 2) {
      expect(text).toContain('Détail par module (suite)');
      expect(text.match(/Module\s+Parcours\s+Date\(s\)\s+Temps\s+Terminé/g)).toHaveLength(2);
    }
  });

  it('requires only the programme’s modules: one opened before a change of fund is listed, not required', () => {
    const facts = assembleFacts({
      learnerId: 'l1',
      course: { id: 'c1', title: 'T' },
      profile,
      fund: { slug: 'akto', name: 'AKTO', historicalName: 'Fafih' },
      modules,
      themePositions: new Map(THEMES.map(([slug], i) => [`${TRACK}|${slug}`, i + 1])),
      completions: programme
        .filter((m) => m.trunk === 'sector')
        .map((m) => ({ ...completions[0], moduleId: m.id, trunk: 'sector' as const }) as ModuleCompletion),
      times: {
        algorithm: 'beats-v1',
        params: {},
        modules: [{ moduleId: 'atlas-visibilite', creditedSeconds: 300, firstAt: null, lastAt: null }],
      },
    });
    expect(facts.modules.find((m) => m.id === 'atlas-visibilite')).toMatchObject({ planned: false });
    const report = evaluateEligibility(DEFAULT_RULE, eligibilityFacts(facts));
    expect(report).toMatchObject({ eligible: true, sectorCompleted: 8, sectorTotal: 8 });
  });

  it('a table too long for one page goes on under « Détail par module (suite) » with its headers repeated', async () => {
    const provider = loadProviderConfig(resolve('lti-config/provider.json'), { production: false });
    const long: CertificateData = {
      ...data,
      modules: data.modules.map((m) => ({
        ...m,
        title: `${m.title} : un intitulé long qui prend plusieurs lignes dans la colonne des modules du tableau`,
      })),
    };
    const pdf = await renderCertificatePdf(long, {
      signatureImage: provider.signatureImage,
      dataSha256: createHash('sha256').update(canonicalJson(long)).digest('hex'),
    });
    const longText = pdfTool('pdftotext', pdf, ['-layout', '-enc', 'UTF-8']);
    expect(Number(/Pages:\s+(\d+)/.exec(pdfTool('pdfinfo', pdf))?.[1])).toBe(2);
    expect(longText).toContain('Détail par module (suite)');
    expect(longText.match(/Module\s+Parcours\s+Date\(s\)\s+Temps\s+Terminé/g)).toHaveLength(2);
    // Page 2 starts with the continued table.
    const page2 = longText.split('\f')[1] ?? '';
    expect(page2.trimStart().startsWith('Détail par module (suite)')).toBe(true);
  });

  it('states the issuance rule in plain words', () => {
    expect(describeIssuanceRule(DEFAULT_RULE, { common: 8, sector: 8 })).toBe(
      'il faut les 8 modules de son secteur terminés (semaines du tronc sectoriel). Le certificat est délivré automatiquement dès que la règle est remplie. « Modules terminés » et la durée prévue portent sur le parcours de l’apprenant (somme des durées des modules).',
    );
    expect(
      describeIssuanceRule({ ...DEFAULT_RULE, modulesRequired: 'all', minCreditedMinutes: 180, autoIssue: false }),
    ).toContain(
      'tous les modules du parcours de l’apprenant terminés (tronc commun et modules de son secteur), et au moins 3 h',
    );
  });
});
