/**
 * Certificate PDFs per second on one core, and their size.
 *
 *   taskset -c 0 node --import tsx bench/certificates/run.ts [seconds-per-case]
 *
 * Cases (all single-threaded, sequential, like one instance issuing a queue of certificates):
 * - render (shared fonts): the production renderer, a typical 9-module certificate;
 * - render (per-document fonts): the baseline, pdfkit parsing the font files for every PDF;
 * - issue pipeline: build data + canonical JSON + Ed25519 signature + render + SHA-256 (no database).
 * "CPU rate" divides by the process's CPU time, so it reads as "per core" even on a busy machine;
 * "1/median" is the rate of the typical PDF, least disturbed by other processes' bursts.
 * Target: ≥ 50 PDFs/s on one core.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { resolve } from 'node:path';
import { renderCertificatePdf } from '../../src/certificates/pdf.js';
import { loadProviderConfig } from '../../src/certificates/provider.js';
import {
  buildCertificateData,
  type CertificateFacts,
  canonicalJson,
  DEFAULT_RULE,
  formatCertificateNumber,
} from '../../src/certificates/rules.js';
import { signText } from '../../src/certificates/signing.js';

const seconds = Number(process.argv[2] ?? 5);
const provider = loadProviderConfig(resolve('lti-config/provider.json'), { production: false });
const { privateKey } = generateKeyPairSync('ed25519');

const TITLES = [
  ['Digitalisation de l’entreprise', 'common'],
  ['Fonctions et activités numérisables', 'common'],
  ['Autodiagnostic et stratégie', 'common'],
  ['Obligations et protection', 'common'],
  ['Impact du numérique sur le cœur de métier de l’hôtellerie-restauration', 'sector'],
  ['Attentes des clients', 'sector'],
  ['Augmenter la visibilité de son hôtel ou de son restaurant', 'sector'],
  ['Organiser et manager son activité', 'sector'],
  ['Mesurer et optimiser les résultats', 'sector'],
] as const;

function facts(i: number, moduleCount = 9): CertificateFacts {
  return {
    learner: { id: `l-${i}`, civility: i % 2 ? 'Madame' : 'Monsieur', familyName: `Lefèvre-${i}`, givenName: 'Éloïse' },
    company: { name: `Hôtel du Cœur d’Île n° ${i}`, siret: '123 456 782 00002' },
    course: { id: 'c-1', title: 'Transition numérique des TPE-PME' },
    fund: { slug: 'akto', name: 'AKTO', historicalName: 'Fafih', fileNumber: null },
    modules: Array.from({ length: moduleCount }, (_, k) => {
      const [title, trunk] = TITLES[k % TITLES.length]!;
      return {
        id: `m-${k}`,
        title: k < TITLES.length ? title : `${title} (${k})`,
        trunk,
        order: k,
        creditedSeconds: 600 + ((i * 37 + k * 61) % 1800),
        firstActivityAt: new Date(Date.UTC(2026, 0, 5 + k, 9)),
        lastActivityAt: new Date(Date.UTC(2026, 0, 5 + k + (k % 2), 10)),
        completedAt: k % 7 === 6 ? null : new Date(Date.UTC(2026, 0, 6 + k)),
      };
    }),
    commonTrunkEstimatedSeconds: 2400 + i,
    totalCreditedSeconds: null,
    timeAccounting: { algorithm: 'beats-v1', params: { beatSeconds: 30, maxGapSeconds: 75 } },
  };
}

function data(i: number, moduleCount = 9) {
  return buildCertificateData({
    facts: facts(i, moduleCount),
    rule: DEFAULT_RULE,
    provider: provider.data,
    number: formatCertificateNumber(2026, i + 1),
    version: 1,
    supersedes: null,
    issuedAt: new Date(Date.UTC(2026, 2, 2, 10, 0, i % 60)),
    issuance: { kind: 'automatic', reason: null },
    publicUrl: 'https://emargement.example.fr',
  });
}

async function measure(name: string, once: (i: number) => Promise<number>) {
  for (let i = 0; i < 50; i++) await once(i); // warm-up: JIT, font parsing, shaping caches
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const times: number[] = [];
  let bytes = 0;
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const s = performance.now();
    bytes += await once(n + 10);
    times.push(performance.now() - s);
    n++;
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  times.sort((a, b) => a - b);
  const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1);
  const rate = (x: number) => x.toFixed(1).padStart(6);
  const median = Number(p(0.5));
  console.log(
    [
      name.padEnd(34),
      `${String(n).padStart(5)} PDFs`,
      `wall ${rate(n / wall)}/s`,
      `CPU ${rate(n / cpuSeconds)}/s`,
      `1/median ${rate(1000 / median)}/s`,
      `median ${median} ms`,
      `p95 ${p(0.95)} ms`,
      `avg ${(bytes / n / 1024).toFixed(1)} KiB`,
    ].join('  '),
  );
  return n / cpuSeconds;
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const assets = (d: ReturnType<typeof data>) => ({
  signatureImage: provider.signatureImage,
  dataSha256: sha(canonicalJson(d)),
});

console.log(`Node ${process.version}, ${seconds} s per case, PID ${process.pid} (pin with taskset -c 0 for one core)`);
const shared = await measure('render, shared fonts (production)', async (i) => {
  const d = data(i);
  return (await renderCertificatePdf(d, assets(d))).length;
});
const baseline = await measure('render, per-document fonts (base)', async (i) => {
  const d = data(i);
  return (await renderCertificatePdf(d, assets(d), { fonts: 'per-document' })).length;
});
await measure('issue pipeline (no database)', async (i) => {
  const d = data(i);
  const canonical = canonicalJson(d);
  signText(privateKey, canonical);
  const pdf = await renderCertificatePdf(d, { signatureImage: provider.signatureImage, dataSha256: sha(canonical) });
  sha(pdf);
  return pdf.length;
});
for (const count of [9, 16, 40]) {
  const d = data(1, count);
  const pdf = await renderCertificatePdf(d, assets(d));
  console.log(`size with ${String(count).padStart(2)} modules: ${(pdf.length / 1024).toFixed(1)} KiB`);
}
console.log(
  `speed-up over the baseline: ×${(shared / baseline).toFixed(2)}; target ≥ 50/s: ${shared >= 50 ? 'met' : 'NOT met'}`,
);
