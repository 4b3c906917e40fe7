import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { App } from '../../src/app.js';
import type { CertificateFacts } from '../../src/certificates/index.js';
import { setCertificateFactsSource } from '../../src/certificates/index.js';
import { type LaunchRole, signSession } from '../../src/lti/index.js';
import { bodyData, type CatalogTestContext, createCatalogTestApp, onboardingForm } from '../catalog/helpers.js';
import type { FakeComponent, FakeUser } from '../fixtures/openedx/index.js';
import { attrs, dom } from '../helpers/dom.js';

export interface Person {
  id: string;
  token: string;
  role: LaunchRole;
}

let counter = 0;

/** A registration, a course, and people who launched the tool in it, each with a session token. */
export async function seedCourse(
  app: App,
  options: { title?: string; people: Array<{ role: LaunchRole; given?: string; family?: string }> },
): Promise<{ courseId: string; registrationId: string; people: Person[] }> {
  const tag = `${process.pid}-${++counter}`;
  const reg =
    (await app.db
      .selectFrom('lti_registrations')
      .select('id')
      .where('issuer', '=', 'https://lms.test')
      .executeTakeFirst()) ??
    (await app.db
      .insertInto('lti_registrations')
      .values({
        name: 'LMS de test',
        issuer: 'https://lms.test',
        client_id: 'client-1',
        deployment_ids: JSON.stringify(['d1']),
        auth_login_url: 'https://lms.test/auth',
        access_token_url: 'https://lms.test/token',
        jwks_url: 'https://lms.test/jwks',
      })
      .returning('id')
      .executeTakeFirstOrThrow());
  const course = await app.db
    .insertInto('courses')
    .values({
      issuer: 'https://lms.test',
      context_id: `course-${tag}`,
      title: options.title ?? 'Transition numérique des TPE-PME',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const people: Person[] = [];
  for (const [i, p] of options.people.entries()) {
    const learner = await app.db
      .insertInto('learners')
      .values({
        issuer: 'https://lms.test',
        sub: `sub-${tag}-${i}`,
        given_name: p.given ?? null,
        family_name: p.family ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const launch = await app.db
      .insertInto('lti_launches')
      .values({
        registration_id: reg.id,
        learner_id: learner.id,
        course_id: course.id,
        resource_link_id: null,
        message_type: 'LtiResourceLinkRequest',
        role: p.role,
        roles: JSON.stringify([]) as unknown as string[],
        deployment_id: 'd1',
        target_link_uri: 'http://tool.test/lti/launch',
        ags: null,
        nrps: null,
        deep_linking: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const token = await signSession(app, {
      learnerId: learner.id,
      courseId: course.id,
      resourceLinkId: null,
      launchId: launch.id,
      registrationId: reg.id,
      role: p.role,
    });
    people.push({ id: learner.id, token, role: p.role });
  }
  return { courseId: course.id, registrationId: reg.id, people };
}

export const MODULE_TITLES = [
  ['common-digitalisation', 'Digitalisation de l’entreprise', 'common'],
  ['common-fonctions', 'Fonctions et activités numérisables', 'common'],
  ['common-autodiagnostic', 'Autodiagnostic et stratégie', 'common'],
  ['common-obligations', 'Obligations et protection', 'common'],
  ['akto-coeur', 'Impact du numérique sur le cœur de métier', 'sector'],
  ['akto-clients', 'Attentes des clients', 'sector'],
  ['akto-visibilite', 'Augmenter la visibilité de son hôtel ou de son restaurant', 'sector'],
  ['akto-organiser', 'Organiser et manager son activité', 'sector'],
  ['akto-mesurer', 'Mesurer et optimiser les résultats', 'sector'],
] as const;

/** Facts as the catalog and the tracking would report them. */
export function makeFacts(
  learnerId: string,
  courseId: string,
  options: {
    given?: string;
    family?: string;
    completedSector?: number;
    fund?: { slug: string; name: string; historicalName: string | null } | null;
  } = {},
): CertificateFacts {
  const completedSector = options.completedSector ?? 5;
  let sectorSeen = 0;
  return {
    learner: {
      id: learnerId,
      civility: 'Madame',
      familyName: options.family ?? 'Lefèvre',
      givenName: options.given ?? 'Éloïse',
    },
    company: { name: 'Hôtel du Cœur d’Île SARL', siret: '123 456 782 00002' },
    course: { id: courseId, title: 'Transition numérique des TPE-PME' },
    fund:
      options.fund === undefined
        ? { slug: 'akto', name: 'AKTO', historicalName: 'Fafih', fileNumber: null }
        : options.fund
          ? { ...options.fund, fileNumber: null }
          : null,
    modules: MODULE_TITLES.map(([id, title, trunk], i) => {
      const done = trunk === 'common' || sectorSeen++ < completedSector;
      return {
        id,
        title,
        trunk,
        order: i + 1,
        creditedSeconds: 600 + i * 61,
        firstActivityAt: new Date(Date.UTC(2026, 0, 5 + i, 9, 0)),
        lastActivityAt: new Date(Date.UTC(2026, 0, 5 + i, 9, 12)),
        completedAt: done ? new Date(Date.UTC(2026, 0, 5 + i, 9, 12)) : null,
      };
    }),
    commonTrunkEstimatedSeconds: 2700,
    totalCreditedSeconds: null,
    timeAccounting: { algorithm: 'beats-v1', params: { beatSeconds: 30, maxGapSeconds: 75 } },
  };
}

/** A facts source backed by a map the test fills: learners absent from it have no profile. */
export function useFacts(app: App): Map<string, CertificateFacts> {
  const facts = new Map<string, CertificateFacts>();
  setCertificateFactsSource(app, {
    load: async (learnerId, courseId) => {
      const f = facts.get(learnerId);
      return f && f.course.id === courseId ? f : null;
    },
  });
  return facts;
}

/** Text of a PDF as poppler's pdftotext reads it (what an auditor's tools would see). */
export function pdfText(pdf: Buffer): string {
  return withTempFile(pdf, 'pdf', (file) =>
    execFileSync('pdftotext', ['-enc', 'UTF-8', file, '-'], { encoding: 'utf8' }),
  );
}

/** Renders page 1 at 200 dpi and decodes every QR code on it with zbarimg. */
export function pdfQrCodes(pdf: Buffer): string[] {
  return withTempFile(pdf, 'pdf', (file, dir) => {
    execFileSync('pdftoppm', ['-r', '200', '-f', '1', '-l', '1', '-png', file, join(dir, 'page')]);
    const out = execFileSync('zbarimg', ['--quiet', '--raw', '-Sdisable', '-Sqrcode.enable', join(dir, 'page-1.png')], {
      encoding: 'utf8',
      // zbarimg complains on stderr when there is no D-Bus; the decoded text is on stdout.
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\n').filter(Boolean);
  });
}

function withTempFile<T>(bytes: Buffer, ext: string, fn: (file: string, dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'cert-test-'));
  try {
    const file = join(dir, `doc.${ext}`);
    writeFileSync(file, bytes);
    return fn(file, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Entries of a stored (uncompressed) ZIP, read from its central directory. */
export function readStoredZip(zip: Buffer): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory');
    const method = zip.readUInt16LE(p + 10);
    const size = zip.readUInt32LE(p + 20);
    const nameLength = zip.readUInt16LE(p + 28);
    const extraLength = zip.readUInt16LE(p + 30);
    const commentLength = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.subarray(p + 46, p + 46 + nameLength).toString('utf8');
    if (method !== 0) throw new Error(`entry ${name} is compressed`);
    const localName = zip.readUInt16LE(local + 26);
    const localExtra = zip.readUInt16LE(local + 28);
    const start = local + 30 + localName + localExtra;
    entries.set(name, zip.subarray(start, start + size));
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

// ─── The learner's whole path, shared by figures.test.ts and whole-flow.test.ts ────────────────────────

/** AKTO's eight sector modules (the sector trunk of the programme), one LTI link each. */
export const AKTO_SECTOR_MODULES = [
  'akto-coeur-de-metier',
  'akto-coeur-de-metier-caisse-cuisine-factures',
  'akto-attentes-clients',
  'akto-attentes-clients-commande-reservation-en-ligne',
  'akto-visibilite',
  'akto-organiser-manager',
  'akto-organiser-manager-hygiene-stocks',
  'akto-mesurer-optimiser',
];

/** The tool behind the fake Open edX, with one link per AKTO sector module. */
export async function createSectorCourse(): Promise<{ ctx: CatalogTestContext; links: FakeComponent[] }> {
  const ctx = await createCatalogTestApp({
    components: AKTO_SECTOR_MODULES.map((module) => ({ custom: { module } })),
  });
  return { ctx, links: ctx.fake.components as FakeComponent[] };
}

/** A form POST, as the browser sends it. */
export function postForm(ctx: CatalogTestContext, url: string, form: Record<string, string>) {
  return ctx.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });
}

/** A JSON call of the learner's pages, with their session token. */
export function postApi(ctx: CatalogTestContext, url: string, token: string, body: unknown) {
  return ctx.app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
}

/** Launches the link and returns the module page, through Léa Durand's onboarding (AKTO) when `first`. */
export async function openModule(
  ctx: CatalogTestContext,
  user: FakeUser,
  link: FakeComponent,
  first: boolean,
): Promise<{ sessionToken: string; body: string }> {
  const launch = await ctx.launch(user, link);
  const body = first
    ? (
        await postForm(ctx, '/catalog/onboarding', {
          session_token: launch.sessionToken,
          ...onboardingForm({ fund: 'akto', givenName: 'Léa', familyName: 'Durand', companyName: 'Hôtel du Parc' }),
        })
      ).body
    : launch.final.body;
  return { sessionToken: launch.sessionToken, body };
}

/** Marks every block of the module page seen and answers its quiz, as the page's script does; returns the module id. */
export async function completeModulePage(ctx: CatalogTestContext, token: string, body: string): Promise<string> {
  const doc = dom(body);
  const moduleId = bodyData(body, 'module-id') as string;
  const blocks = [...doc.querySelectorAll('section.block[data-block-type]')].map((s) => ({
    id: s.getAttribute('data-block-id') as string,
    type: s.getAttribute('data-block-type'),
  }));
  for (const b of blocks.filter((x) => x.type !== 'quiz')) {
    expect((await postApi(ctx, '/api/catalog/progress/seen', token, { moduleId, blockId: b.id })).statusCode).toBe(200);
  }
  const questions = doc.querySelectorAll('fieldset.choices[data-question]').length;
  const quiz = await postApi(ctx, '/api/catalog/progress/quiz', token, {
    moduleId,
    answers: Array(questions).fill(0),
  });
  expect(quiz.json().progress.complete).toBe(true);
  return moduleId;
}

/** The number of the certificate a learner's page offers to download (its form's action); undefined if none. */
export function offeredCertificateNumber(body: string): string | undefined {
  for (const action of attrs(dom(body), 'form.download', 'action')) {
    const number = /^\/certificates\/(EMG-[0-9A-Z-]+)\/pdf$/.exec(action)?.[1];
    if (number) return number;
  }
  return undefined;
}
