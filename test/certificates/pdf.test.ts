import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderCertificatePdf } from '../../src/certificates/pdf.js';
import { loadProviderConfig, type ProviderConfig } from '../../src/certificates/provider.js';
import {
  buildCertificateData,
  type CertificateData,
  canonicalJson,
  DEFAULT_RULE,
  formatCertificateNumber,
} from '../../src/certificates/rules.js';
import { MODULE_TITLES, makeFacts, pdfQrCodes, pdfText } from './helpers.js';

let provider: ProviderConfig;
let data: CertificateData;
let pdf: Buffer;
let text: string;
let layout: string;

const squash = (s: string) => s.replace(/\s+/g, ' ');

function layoutText(bytes: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'cert-layout-'));
  try {
    writeFileSync(join(dir, 'c.pdf'), bytes);
    return execFileSync('pdftotext', ['-layout', '-enc', 'UTF-8', join(dir, 'c.pdf'), '-'], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  provider = loadProviderConfig(resolve('lti-config/provider.json'), { production: false });
  const facts = makeFacts('3f1d7a4e-0000-4000-8000-000000000001', '3f1d7a4e-0000-4000-8000-0000000000c1', {
    completedSector: 3,
  });
  data = buildCertificateData({
    facts,
    rule: DEFAULT_RULE,
    provider: provider.data,
    number: formatCertificateNumber(2026, 123),
    version: 2,
    supersedes: formatCertificateNumber(2026, 45),
    issuedAt: new Date('2026-03-02T10:15:00Z'),
    issuance: { kind: 'course_team', reason: 'Nom corrigé' },
    publicUrl: 'https://emargement.example.fr',
  });
  const dataSha256 = createHash('sha256').update(canonicalJson(data)).digest('hex');
  pdf = await renderCertificatePdf(data, { signatureImage: provider.signatureImage, dataSha256 });
  text = squash(pdfText(pdf));
  layout = layoutText(pdf);
});

describe('certificate PDF', () => {
  it('is an A4 PDF with the DejaVu fonts embedded (accents render anywhere)', () => {
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const dir = mkdtempSync(join(tmpdir(), 'cert-info-'));
    try {
      writeFileSync(join(dir, 'c.pdf'), pdf);
      const info = execFileSync('pdfinfo', [join(dir, 'c.pdf')], { encoding: 'utf8' });
      expect(info).toMatch(/Page size:\s+595\.2\d? x 841\.8\d? pts \(A4\)/);
      const fonts = execFileSync('pdffonts', [join(dir, 'c.pdf')], { encoding: 'utf8' });
      const rows = fonts.split('\n').slice(2).filter(Boolean);
      expect(rows.length).toBeGreaterThanOrEqual(2);
      for (const row of rows) {
        expect(row).toMatch(/DejaVuSans/);
        expect(row).toMatch(/\byes\s+yes\s+yes\b/); // embedded, subset, ToUnicode
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('states the provider: raison sociale, SIRET, declaration number, address, legal representative', () => {
    expect(text).toContain('Organisme de formation EXEMPLE (fictif)');
    expect(text).toContain('SIRET : 999 999 998 00001');
    expect(text).toContain('Déclaration d’activité n° 11 75 99999 75');
    expect(text).toContain('1 rue de l’Exemple, Bâtiment A, 75000 Paris');
    expect(text).toContain('Je soussigné(e) Camille Exemple, Directrice (exemple fictif), représentant légal');
  });

  it('states the learner and their company', () => {
    expect(text).toContain('Madame Éloïse LEFÈVRE');
    expect(text).toContain('Hôtel du Cœur d’Île SARL');
    expect(text).toContain('123 456 782 00002');
  });

  it('states the action: title, nature, modality and dates', () => {
    expect(text).toContain('CERTIFICAT DE RÉALISATION');
    expect(text).toContain('Transition numérique des TPE-PME');
    expect(text).toContain('action de formation');
    expect(text).toContain('à distance (SPOC)');
    expect(text).toContain('du 05/01/2026 au 13/01/2026 (première et dernière activité)');
  });

  it('states the durations: measured in modules, estimated common trunk (labelled), total, planned, modules', () => {
    const modulesSeconds = MODULE_TITLES.reduce((s, _m, i) => s + 600 + i * 61, 0); // 7596 s
    expect(data.durations.modulesSeconds).toBe(modulesSeconds);
    expect(layout).toMatch(/Mesurée dans les modules\s+2 h 06/);
    expect(text).toContain('estimée d’après les journaux de la plateforme');
    expect(layout).toMatch(/Tronc commun, estimée d’après les\s+45 min/);
    expect(layout).toMatch(/Durée totale réalisée\s+2 h 51/);
    // pdftotext sometimes drops a space inside a short bold run ("4h", "7/9"): the glyphs are there.
    expect(layout).toMatch(/Durée prévue\s+4 ?h\b/);
    expect(layout).toMatch(/Modules terminés\s+7 ?\/ ?9\b/);
  });

  it('has one table row per module with its dates, time and completion', () => {
    for (const [i, [, title, trunk]] of MODULE_TITLES.entries()) {
      const day = `${String(5 + i).padStart(2, '0')}/01/2026`;
      const minutes = Math.floor((600 + i * 61) / 60);
      const done = trunk === 'common' || i - 4 < 3;
      const row = new RegExp(
        `${escapeRegExp(title.slice(0, 30))}.*${trunk === 'common' ? 'Tronc commun' : 'Secteur'}\\s+${escapeRegExp(day)}\\s+${minutes} min\\s+${done ? 'Oui' : 'Non'}`,
      );
      expect(layout, title).toMatch(row);
    }
  });

  it('states the fund with its historical name, the retention undertaking, place, date and signatory', () => {
    expect(layout).toMatch(/OPCO\s+AKTO/);
    expect(layout).toMatch(/Ancien nom \(OPCA\)\s+Fafih/);
    expect(layout).toMatch(/N° de dossier\s+non communiqué/);
    expect(text).toContain(
      'Je m’engage à conserver l’ensemble des pièces justificatives qui ont permis d’établir le présent certificat pendant une durée de 3 ans',
    );
    expect(text).toContain('Fait à Paris, le 2 mars 2026');
    expect(text).toContain('Camille Exemple');
    expect(text).toContain('Signature et cachet');
  });

  it('carries the number, version, verification URL and algorithm version', () => {
    expect(text).toContain(data.number);
    expect(text).toContain(`Version 2, remplace le n° ${formatCertificateNumber(2026, 45)}`);
    expect(text).toContain(`https://emargement.example.fr/verify/${data.number}`);
    expect(text).toContain('algorithme beats-v1');
    expect(text).toContain('Pour les formations à distance, la durée tient compte des activités réalisées');
  });

  it('prints rows that add up to the printed total (largest remainder), and both algorithm versions', async () => {
    const base = makeFacts('3f1d7a4e-0000-4000-8000-000000000002', '3f1d7a4e-0000-4000-8000-0000000000c1');
    // Nine modules of 50 s and 40 s estimated: 490 s = 8 min. Floored one by one, every row would say 0 min.
    const facts = {
      ...base,
      modules: base.modules.map((m) => ({ ...m, creditedSeconds: 50 })),
      commonTrunkEstimatedSeconds: 40,
      timeAccounting: { algorithm: 'beats-v2', params: { lms: { algorithm: 'lms-sessions-v1' } } },
    };
    const odd = buildCertificateData({
      facts,
      rule: DEFAULT_RULE,
      provider: provider.data,
      number: formatCertificateNumber(2026, 124),
      version: 1,
      supersedes: null,
      issuedAt: new Date('2026-03-02T10:15:00Z'),
      issuance: { kind: 'automatic', reason: null },
      publicUrl: 'https://emargement.example.fr',
    });
    const bytes = await renderCertificatePdf(odd, { signatureImage: provider.signatureImage, dataSha256: 'ab' });
    const oddLayout = layoutText(bytes);
    const rowMinutes = MODULE_TITLES.map(([, title]) => {
      const m = new RegExp(`${escapeRegExp(title.slice(0, 30))}.*?\\s(\\d+) min\\s+(Oui|Non)`).exec(oddLayout);
      return Number(m?.[1]);
    });
    expect(rowMinutes).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(oddLayout).toMatch(/Mesurée dans les modules\s+8 min/);
    expect(oddLayout).toMatch(/Tronc commun, estimée d’après les\s+0 min/);
    expect(oddLayout).toMatch(/Durée totale réalisée\s+8 min/);
    const oddText = squash(pdfText(bytes));
    expect(oddText).toContain('Temps dans les modules calculé selon l’algorithme beats-v2');
    expect(oddText).toContain('tronc commun estimé selon l’algorithme lms-sessions-v1');
  });

  it('has a QR code that decodes to the verification URL', () => {
    expect(pdfQrCodes(pdf)).toEqual([`https://emargement.example.fr/verify/${data.number}`]);
  });

  it('renders to identical bytes from the same data', async () => {
    const dataSha256 = createHash('sha256').update(canonicalJson(data)).digest('hex');
    const again = await renderCertificatePdf(data, { signatureImage: provider.signatureImage, dataSha256 });
    expect(again.equals(pdf)).toBe(true);
    // Memoised shaping changes nothing: plain pdfkit usage gives the same bytes.
    const plain = await renderCertificatePdf(
      data,
      { signatureImage: provider.signatureImage, dataSha256 },
      { fonts: 'per-document' },
    );
    expect(plain.equals(pdf)).toBe(true);
    const other = await renderCertificatePdf(
      { ...data, issuedAt: '2026-03-02T10:15:01.000Z' },
      {
        signatureImage: provider.signatureImage,
        dataSha256,
      },
    );
    expect(other.equals(pdf)).toBe(false);
  });

  it('keeps long module lists readable across pages, with the footer on each page', async () => {
    const many = {
      ...data,
      modules: Array.from({ length: 40 }, (_, i) => ({ ...data.modules[i % data.modules.length]!, id: `m${i}` })),
    };
    const bytes = await renderCertificatePdf(many, {
      signatureImage: provider.signatureImage,
      dataSha256: 'x'.repeat(64),
    });
    const pages = pdfText(bytes)
      .split('\f')
      .filter((p) => p.trim());
    expect(pages.length).toBeGreaterThan(1);
    for (const [i, page] of pages.entries()) {
      expect(page).toContain(`Page ${i + 1} / ${pages.length}`);
      expect(page).toContain(`/verify/${data.number}`);
    }
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
