import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTION_COLUMNS, SUMMARY_COLUMNS } from '../../src/exports/columns.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { type Browser, bearer, get, seedStaff } from '../portal/helpers.js';
import { parseCsv, xlsxAsCsvCells } from './csv.js';
import {
  certify,
  moduleIds,
  progress,
  seedCourse,
  seedFileNumber,
  seedLearner,
  seedRegistration,
  trackTime,
} from './seed.js';

let ctx: TestContext;
const ids: Record<string, string> = {};
let akto: Browser;
let atlas: Browser;
let ops: Browser;
let aktoToken: string;
let atlasToken: string;
let opsToken: string;
let modules: { common: string[]; sector: string[] };
let titles: Map<string, string>;

const EVIL = '=HYPERLINK("http://evil.example","clic")';
const at = (iso: string) => new Date(iso);

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  ids.courseA = await seedCourse(
    db,
    'course-v1:FUN+TNUM+2026_T1',
    'Transition numérique des TPE-PME',
    'Session printemps 2026',
  );
  ids.courseB = await seedCourse(
    db,
    'course-v1:FUN+TNUM+2026_T2',
    'Transition numérique des TPE-PME',
    'Session automne 2026',
  );
  modules = await moduleIds(db, 'akto');
  expect(modules.common.length).toBe(4);
  expect(modules.sector.length).toBe(5);
  titles = new Map((await db.selectFrom('modules').select(['id', 'title']).execute()).map((m) => [m.id, m.title]));

  // L1: everything done, certified.
  ids.l1 = await seedLearner(db, {
    registrationId: reg,
    courseId: ids.courseA,
    fund: 'akto',
    idcc: '1979',
    familyName: 'Dupont',
    givenName: 'Marie',
    companyName: 'Hôtel du Parc',
    companySiret: '73282932000074',
    registeredAt: at('2026-03-02T08:00:00Z'),
  });
  const all = [...modules.common, ...modules.sector];
  for (const [i, m] of all.entries()) {
    await progress(db, ids.l1, ids.courseA, m, {
      startedAt: at('2026-03-02T09:00:00Z'),
      completedAt: new Date(Date.parse('2026-03-10T10:00:00Z') + i * 86_400_000),
      quiz: { correct: 2, total: 3 },
    });
  }
  await trackTime(db, ids.l1, ids.courseA, [
    {
      moduleId: modules.common[0] as string,
      start: at('2026-03-02T09:00:00Z'),
      end: at('2026-03-02T09:40:00Z'),
      beats: 80,
    },
    {
      moduleId: modules.sector[0] as string,
      start: at('2026-03-03T18:00:00Z'),
      end: at('2026-03-03T19:30:00Z'),
      beats: 180,
    },
  ]);
  await certify(db, ids.l1, ids.courseA, {
    number: 'EMG-2026-000123',
    fund: 'akto',
    fileNumber: 'AKTO-42',
    issuedAt: at('2026-03-20T09:00:00Z'),
  });
  // The export reads the current number of the company (src/file-numbers), not the certificate's copy.
  await seedFileNumber(db, { fund: 'akto', courseId: ids.courseA, siret: '73282932000074', fileNumber: 'AKTO-42' });

  // L2: a formula for a name, started, two sessions (one from two devices at once).
  ids.l2 = await seedLearner(db, {
    registrationId: reg,
    courseId: ids.courseA,
    fund: 'akto',
    idcc: '1501',
    familyName: EVIL,
    givenName: '+Jean',
    companyName: '@Corp; "SARL"',
    registeredAt: at('2026-03-04T10:00:00Z'),
  });
  await progress(db, ids.l2, ids.courseA, modules.common[0] as string, { startedAt: at('2026-03-10T08:00:00Z') });
  await trackTime(
    db,
    ids.l2,
    ids.courseA,
    [
      {
        moduleId: modules.common[0] as string,
        start: at('2026-03-10T08:00:00Z'),
        end: at('2026-03-10T08:20:00Z'),
        beats: 40,
        userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148',
      },
      {
        moduleId: modules.common[1] as string,
        start: at('2026-03-10T08:10:00Z'),
        end: at('2026-03-10T08:30:00Z'),
        beats: 40,
      },
      {
        moduleId: modules.sector[0] as string,
        start: at('2026-03-11T12:00:00Z'),
        end: at('2026-03-11T12:05:00Z'),
        beats: 10,
      },
    ],
    {
      cappedModules: [modules.common[0] as string],
      longDays: ['2026-03-11'],
      rejectedAt: [at('2026-03-11T12:02:00Z')],
    },
  );

  // L3: another fund's learner, who must never show to AKTO.
  ids.l3 = await seedLearner(db, {
    registrationId: reg,
    courseId: ids.courseA,
    fund: 'atlas',
    idcc: '2120',
    familyName: 'Secretatlas',
    givenName: 'Invisible',
    registeredAt: at('2026-03-05T10:00:00Z'),
  });
  await progress(db, ids.l3, ids.courseA, modules.common[0] as string, { startedAt: at('2026-03-06T08:00:00Z') });
  await trackTime(db, ids.l3, ids.courseA, [
    {
      moduleId: modules.common[0] as string,
      start: at('2026-03-06T08:00:00Z'),
      end: at('2026-03-06T08:10:00Z'),
      beats: 20,
    },
  ]);
  await certify(db, ids.l3, ids.courseA, {
    number: 'EMG-2026-000124',
    fund: 'atlas',
    fileNumber: null,
    issuedAt: at('2026-03-21T09:00:00Z'),
  });

  // L4: registered, nothing more. L5: another session.
  ids.l4 = await seedLearner(db, {
    registrationId: reg,
    courseId: ids.courseA,
    fund: 'akto',
    idcc: '1979',
    familyName: 'Martin',
    givenName: 'Luc',
    civility: 'monsieur',
    registeredAt: at('2026-03-16T08:00:00Z'),
  });
  ids.l5 = await seedLearner(db, {
    registrationId: reg,
    courseId: ids.courseB,
    fund: 'akto',
    idcc: null,
    familyName: 'Bernard',
    givenName: 'Zoé',
    registeredAt: at('2026-09-07T08:00:00Z'),
  });
  await progress(db, ids.l5, ids.courseB, modules.common[0] as string, { startedAt: at('2026-09-08T08:00:00Z') });

  ({ aktoToken, atlasToken, opsToken, akto, atlas, ops } = await seedStaff(db, ctx.app));
});
afterAll(() => ctx.close());

async function api(token: string | null, url: string) {
  return ctx.app.inject({ method: 'GET', url, headers: token ? bearer(token) : {} });
}

async function csvOf(token: string, query: string, kind = 'summary') {
  const res = await api(token, `/api/v1/exports/${kind}?format=csv${query ? `&${query}` : ''}`);
  expect(res.statusCode, res.body).toBe(200);
  return parseCsv(res.body);
}

describe('summary export (one row per learner and session)', () => {
  it('has every column of the reference, in CSV for French Excel', async () => {
    const res = await api(aktoToken, '/api/v1/exports/summary?format=csv');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toMatch(
      /^attachment; filename="emargement-synthese-akto-\d{4}-\d{2}-\d{2}\.csv"$/,
    );
    expect(res.rawPayload.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(res.body.replace(/\r\n/g, '')).not.toMatch(/\n/);
    const rows = parseCsv(res.body);
    expect(rows[0]).toEqual(SUMMARY_COLUMNS.map((c) => c.header));
    expect(rows[0]).toEqual(
      expect.arrayContaining([
        'OPCO',
        'OPCA (nom historique)',
        'N° de dossier OPCO',
        'SIRET de l’organisme de formation',
        'N° de déclaration d’activité',
        'SIRET de l’entreprise',
        'Raison sociale de l’entreprise',
        'IDCC',
        'Identifiant apprenant',
        'Nom',
        'Prénom',
        'Intitulé de l’action',
        'Modalité',
        'Date de début (Paris)',
        'Début (UTC, ISO 8601)',
        'Date de fin (Paris)',
        'Fin (UTC, ISO 8601)',
        'Durée prévue (heures)',
        'Temps dans les modules (h:mm)',
        'Temps dans les modules (heures)',
        'Temps estimé sur le cours FUN (h:mm)',
        'Temps total (h:mm)',
        'Temps total (heures)',
        'Modules terminés',
        'Résultats aux quiz',
        'Statut',
        'N° d’attestation',
        'Version de l’algorithme de temps',
      ]),
    );
    expect(rows.length).toBe(5); // header + L2, L5, L1, L4 (sorted by name); never L3
  });

  it('gives the values of a certified learner, column by column', async () => {
    const rows = await csvOf(aktoToken, '');
    const header = rows[0] as string[];
    const l1 = rows.find((r) => r.includes(ids.l1 as string)) as string[];
    const value = (name: string) => l1[header.indexOf(name)];
    const provider = ctx.app.certificates.provider.data;
    expect(Object.fromEntries(header.map((h, i) => [h, l1[i]]))).toEqual({
      OPCO: 'AKTO',
      'OPCA (nom historique)': 'Fafih',
      'N° de dossier OPCO': 'AKTO-42',
      'SIRET de l’organisme de formation': provider.siret,
      'N° de déclaration d’activité': provider.activityDeclarationNumber,
      'SIRET de l’entreprise': '73282932000074',
      'Raison sociale de l’entreprise': 'Hôtel du Parc',
      IDCC: '1979',
      Branche: expect.stringContaining('Hôtels, cafés, restaurants'),
      'Identifiant apprenant': ids.l1,
      Civilité: 'Madame',
      Nom: 'Dupont',
      Prénom: 'Marie',
      'Intitulé de l’action': 'Transition numérique des TPE-PME',
      'Session (cours)': 'Session printemps 2026',
      Modalité: 'à distance (SPOC)',
      'Date de début (Paris)': '02/03/2026',
      'Début (UTC, ISO 8601)': '2026-03-02T09:00:00Z',
      'Date de fin (Paris)': '18/03/2026',
      'Fin (UTC, ISO 8601)': '2026-03-18T10:00:00Z',
      // The learner's programme: the sum of its modules' nominal durations (15 minutes each here).
      'Durée prévue (heures)': (((modules.common.length + modules.sector.length) * 15) / 60)
        .toFixed(2)
        .replace('.', ','),
      'Temps dans les modules (h:mm)': '2:10',
      'Temps dans les modules (heures)': '2,17',
      'Temps estimé sur le cours FUN (h:mm)': '',
      'Temps estimé sur le cours FUN (heures)': '',
      'Temps total (h:mm)': '2:10',
      'Temps total (heures)': '2,17',
      'Modules terminés': '9',
      'Modules prévus': '9',
      'Résultats aux quiz': '18/27 (67 %)',
      Statut: 'attestation délivrée',
      'N° d’attestation': 'EMG-2026-000123',
      'Version de l’algorithme de temps': 'beats-v1',
    });
    expect(value('Statut')).toBe('attestation délivrée');
  });

  it('gives each learner the status of their progress', async () => {
    const rows = await csvOf(aktoToken, '');
    const header = rows[0] as string[];
    const status = (id: string) => rows.find((r) => r.includes(id))?.[header.indexOf('Statut')];
    expect(status(ids.l2 as string)).toBe('en cours');
    expect(status(ids.l4 as string)).toBe('non commencé');
    expect(status(ids.l5 as string)).toBe('en cours');
    const l4 = rows.find((r) => r.includes(ids.l4 as string)) as string[];
    expect(l4[header.indexOf('Date de début (Paris)')]).toBe('');
    expect(l4[header.indexOf('Temps total (h:mm)')]).toBe('0:00');
    expect(l4[header.indexOf('Civilité')]).toBe('Monsieur');
    // Same company and session as L1: the file number shows without a certificate; another session has none.
    expect(l4[header.indexOf('N° de dossier OPCO')]).toBe('AKTO-42');
    const l5 = rows.find((r) => r.includes(ids.l5 as string)) as string[];
    expect(l5[header.indexOf('N° de dossier OPCO')]).toBe('');
  });

  it('neutralises cells a spreadsheet would run as formulas (a learner named =HYPERLINK(...))', async () => {
    const res = await api(aktoToken, '/api/v1/exports/summary?format=csv');
    const rows = parseCsv(res.body);
    const header = rows[0] as string[];
    const l2 = rows.find((r) => r.includes(ids.l2 as string)) as string[];
    expect(l2[header.indexOf('Nom')]).toBe(`'${EVIL}`);
    expect(l2[header.indexOf('Prénom')]).toBe("'+Jean");
    expect(l2[header.indexOf('Raison sociale de l’entreprise')]).toBe(`'@Corp; "SARL"`);
    for (const row of rows) for (const cell of row) expect(cell).not.toMatch(/^[=+@\t\r]|^-(?!\d)/);
    expect(res.body).not.toMatch(/(^|;)=HYPERLINK/m);
  });

  it('filters by branch, status, course session and period', async () => {
    const idsOf = async (query: string) => {
      const rows = await csvOf(aktoToken, query);
      const col = (rows[0] as string[]).indexOf('Identifiant apprenant');
      return rows
        .slice(1)
        .map((r) => r[col])
        .sort();
    };
    expect(await idsOf('branch=1501')).toEqual([ids.l2]);
    expect(await idsOf('status=not_started')).toEqual([ids.l4]);
    expect(await idsOf('status=certificate_issued')).toEqual([ids.l1]);
    expect(await idsOf(`courseId=${ids.courseB}`)).toEqual([ids.l5]);
    expect(await idsOf('from=2026-09-01')).toEqual([ids.l5]);
    expect(await idsOf('from=2026-03-15&to=2026-03-16').then((x) => x.sort())).toEqual([ids.l1, ids.l4].sort());
    expect(await idsOf('to=2026-03-03')).toEqual([ids.l1]);
    const bad = await api(aktoToken, '/api/v1/exports/summary?from=2026-03-10&to=2026-03-01');
    expect(bad.statusCode).toBe(400);
    expect((await api(aktoToken, '/api/v1/exports/summary?from=2026-02-30')).statusCode).toBe(400);
    expect((await api(aktoToken, '/api/v1/exports/summary?status=bogus')).statusCode).toBe(400);
  });

  it('writes the same figures in XLSX as in CSV (read back with exceljs)', async () => {
    for (const kind of ['summary', 'connections'] as const) {
      const csv = await csvOf(opsToken, '', kind);
      const res = await api(opsToken, `/api/v1/exports/${kind}?format=xlsx`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      expect(res.headers['content-disposition']).toMatch(/\.xlsx"$/);
      const xlsx = await xlsxAsCsvCells(res.rawPayload);
      expect(xlsx).toEqual(csv);
      expect(csv.length).toBeGreaterThan(2);
    }
  });
});

describe('connection log (one row per merged session)', () => {
  it('merges overlapping tabs into one session, with times, modules, beats, devices and flags', async () => {
    const rows = await csvOf(aktoToken, '', 'connections');
    const header = rows[0] as string[];
    expect(header).toEqual(CONNECTION_COLUMNS.map((c) => c.header));
    const all = rows.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
    expect(all.map((r) => r['Identifiant apprenant']).sort()).toEqual([ids.l1, ids.l1, ids.l2, ids.l2].sort());
    // One learner's sessions follow each other, in time order.
    const ofL2 = all.filter((r) => r['Identifiant apprenant'] === ids.l2);
    const ofL1 = all.filter((r) => r['Identifiant apprenant'] === ids.l1);
    const body = [...ofL2, ...ofL1];
    expect(body[0]).toEqual({
      'Identifiant apprenant': ids.l2,
      Nom: `'${EVIL}`,
      Prénom: "'+Jean",
      OPCO: 'AKTO',
      IDCC: '1501',
      'Session (cours)': 'Session printemps 2026',
      'Date (Paris)': '10/03/2026',
      'Début (Paris)': '10/03/2026 09:00:00',
      'Fin (Paris)': '10/03/2026 09:30:00',
      'Début (UTC, ISO 8601)': '2026-03-10T08:00:00Z',
      'Fin (UTC, ISO 8601)': '2026-03-10T08:30:00Z',
      'Durée (hh:mm:ss)': '00:30:00',
      'Durée (secondes)': '1800',
      'Modules visités': expect.any(String),
      'Battements reçus': '80',
      Appareil: 'ordinateur, téléphone',
      Signalements: 'plafond atteint',
      'Version de l’algorithme de temps': 'beats-v1',
      Source: 'module',
    });
    expect(body[0]?.['Modules visités']).toContain(titles.get(modules.common[0] as string));
    expect(body[1]).toMatchObject({
      'Date (Paris)': '11/03/2026',
      'Début (Paris)': '11/03/2026 13:00:00',
      'Durée (secondes)': '300',
      'Modules visités': titles.get(modules.sector[0] as string),
      'Battements reçus': '10',
      Appareil: 'ordinateur',
      Signalements: 'journée longue, battements rejetés : 1',
    });
    expect(body[2]).toMatchObject({
      'Début (Paris)': '02/03/2026 10:00:00',
      'Durée (hh:mm:ss)': '00:40:00',
      Signalements: '',
    });
  });

  it('selects sessions by their start in the period, and learners by branch', async () => {
    const rows = await csvOf(aktoToken, 'from=2026-03-10&to=2026-03-10', 'connections');
    expect(rows.length).toBe(2);
    expect(rows[1]?.[0]).toBe(ids.l2);
    expect((await csvOf(aktoToken, 'branch=1979', 'connections')).slice(1).map((r) => r[0])).toEqual([ids.l1, ids.l1]);
    expect((await csvOf(aktoToken, 'from=2026-12-01', 'connections')).length).toBe(1);
  });
});

describe('connection log: LMS-estimated sessions and plausibility flags', () => {
  it('adds rows of source lms-estimate, less the time the tool measured, adding up to the summary estimate', async () => {
    const db = ctx.app.db;
    const course = await db
      .selectFrom('courses')
      .select(['context_id', 'issuer'])
      .where('id', '=', ids.courseA as string)
      .executeTakeFirstOrThrow();
    const imp = await db
      .insertInto('lms_imports')
      .values({ file_name: 'tracking.log', format: 'tracking-log' })
      .returning('id')
      .executeTakeFirstOrThrow();
    // Session 1: 09:30–09:50 UTC on 2 March, of which 09:30–09:40 the tool measured itself (10 min left).
    // Session 2: 10:00–10:20 UTC on 5 March, nothing measured in the tool (20 min).
    const times = [
      '2026-03-02T09:30:00Z',
      '2026-03-02T09:50:00Z',
      '2026-03-05T10:00:00Z',
      '2026-03-05T10:10:00Z',
      '2026-03-05T10:20:00Z',
    ];
    await db
      .insertInto('lms_events')
      .values(
        times.map((t, i) => ({
          hash: `test-${i}`,
          source: 'tracking-log' as const,
          issuer: course.issuer,
          lms_username: 'marie.dupont',
          course_context_id: course.context_id,
          occurred_at: new Date(t),
          event_type: 'page_view',
          import_id: imp.id,
        })),
      )
      .execute();
    await db
      .insertInto('lms_time_totals')
      .values({
        learner_id: ids.l1 as string,
        course_id: ids.courseA as string,
        lms_usernames: JSON.stringify(['marie.dupont']),
        event_count: 5,
        session_count: 2,
        session_ms: 40 * 60_000,
        overlap_ms: 10 * 60_000,
        estimated_ms: 30 * 60_000,
        estimated_seconds: 1800,
        first_at: new Date(times[0] as string),
        last_at: new Date(times[4] as string),
        algorithm: 'lms-sessions-v1',
        params: JSON.stringify({ algorithm: 'lms-sessions-v1', sessionGapMs: 1_800_000, inToolOverlap: 'subtracted' }),
      })
      .execute();
    // A module marked completed with under a third of its nominal time credited.
    const quickModule = modules.sector[0] as string;
    const before = await db
      .selectFrom('time_totals')
      .select('credited_seconds')
      .where('learner_id', '=', ids.l1 as string)
      .where('module_id', '=', quickModule)
      .executeTakeFirstOrThrow();
    await db
      .updateTable('time_totals')
      .set({ credited_seconds: 60 })
      .where('learner_id', '=', ids.l1 as string)
      .where('module_id', '=', quickModule)
      .execute();
    try {
      const rows = await csvOf(opsToken, '', 'connections');
      const header = rows[0] as string[];
      const ofL1 = rows
        .slice(1)
        .map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])))
        .filter((r) => r['Identifiant apprenant'] === ids.l1 && r['Session (cours)'] === 'Session printemps 2026');
      expect(ofL1.map((r) => [r.Source, r['Début (UTC, ISO 8601)'], r['Durée (secondes)']])).toEqual([
        ['module', '2026-03-02T09:00:00Z', '2400'],
        ['lms-estimate', '2026-03-02T09:30:00Z', '600'],
        ['module', '2026-03-03T18:00:00Z', '5400'],
        ['lms-estimate', '2026-03-05T10:00:00Z', '1200'],
      ]);
      const lms = ofL1.filter((r) => r.Source === 'lms-estimate');
      expect(lms.every((r) => r['Version de l’algorithme de temps'] === 'lms-sessions-v1')).toBe(true);
      // The estimated rows add up to the summary's estimate, to the second.
      expect(lms.reduce((n, r) => n + Number(r['Durée (secondes)']), 0)).toBe(1800);
      // The session holding the module completed quickly says so; the other does not.
      expect(ofL1[2]?.Signalements).toContain('parcouru rapidement');
      expect(ofL1[0]?.Signalements).not.toContain('parcouru rapidement');
    } finally {
      await db
        .updateTable('time_totals')
        .set({ credited_seconds: before.credited_seconds })
        .where('learner_id', '=', ids.l1 as string)
        .where('module_id', '=', quickModule)
        .execute();
      // lms_events is append-only: without its total, the learner's events no longer count anywhere.
      await db
        .deleteFrom('lms_time_totals')
        .where('learner_id', '=', ids.l1 as string)
        .execute();
    }
  });
});

describe('scope: a fund never sees another fund’s learners, by any route', () => {
  const SECRET = /Secretatlas|Invisible|EMG-2026-000124/;

  it('API: exports and funnel of a fund token hold only that fund; asking for another fund is refused', async () => {
    for (const kind of ['summary', 'connections']) {
      for (const format of ['csv', 'xlsx']) {
        const own = await api(aktoToken, `/api/v1/exports/${kind}?format=${format}`);
        expect(own.statusCode).toBe(200);
        const text = format === 'csv' ? own.body : JSON.stringify(await xlsxAsCsvCells(own.rawPayload));
        expect(text).not.toMatch(SECRET);
        expect(text).not.toContain(ids.l3);
        expect((await api(aktoToken, `/api/v1/exports/${kind}?format=${format}&fund=atlas`)).statusCode).toBe(403);
        expect((await api(aktoToken, `/api/v1/exports/${kind}?format=${format}&fund=akto`)).statusCode).toBe(200);
      }
    }
    const funnel = await api(aktoToken, '/api/v1/funnel');
    expect(funnel.statusCode).toBe(200);
    expect(funnel.json().byFund.map((f: { slug: string }) => f.slug)).toEqual(['akto']);
    expect((await api(aktoToken, '/api/v1/funnel?fund=atlas')).statusCode).toBe(403);
    const filters = await api(aktoToken, '/api/v1/filters');
    expect(filters.json().funds.map((f: { slug: string }) => f.slug)).toEqual(['akto']);
    expect(new Set(filters.json().branches.map((b: { fund: string }) => b.fund))).toEqual(new Set(['akto']));
    expect((await api(aktoToken, '/api/v1/me')).json()).toMatchObject({ role: 'fund_staff', fund: 'akto' });
  });

  it('API: the other fund sees its own learner and none of AKTO’s', async () => {
    const rows = await csvOf(atlasToken, '');
    expect(rows.slice(1).map((r) => r[(rows[0] as string[]).indexOf('Identifiant apprenant')])).toEqual([ids.l3]);
    const conn = await api(atlasToken, '/api/v1/exports/connections');
    expect(conn.body).not.toContain(ids.l1);
    expect(conn.body).toContain(ids.l3);
  });

  it('API: a branch or course of another fund gives nothing from that fund', async () => {
    expect((await csvOf(aktoToken, 'branch=2120')).length).toBe(1);
    const body = (await api(aktoToken, `/api/v1/exports/summary?courseId=${ids.courseA}&branch=2120`)).body;
    expect(body).not.toMatch(SECRET);
  });

  it('API: no token, a wrong token, or a session cookie are all refused', async () => {
    for (const url of [
      '/api/v1/exports/summary',
      '/api/v1/exports/connections',
      '/api/v1/funnel',
      '/api/v1/filters',
      '/api/v1/me',
    ]) {
      const none = await api(null, url);
      expect(none.statusCode, url).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await api(`${aktoToken.slice(0, -2)}xx`, url)).statusCode).toBe(401);
      const cookie = await ctx.app.inject({
        method: 'GET',
        url,
        headers: { cookie: `emargement_portal=${akto.cookies.emargement_portal}` },
      });
      expect(cookie.statusCode, url).toBe(401);
    }
  });

  it('UI: funnel, exports page, downloads and journal of fund staff hold only their fund', async () => {
    for (const url of [
      '/portal/entonnoir',
      '/portal/exports',
      '/portal/exports/telecharger?kind=summary&format=csv',
      '/portal/exports/telecharger?kind=connections&format=csv',
      `/portal/exports/telecharger?kind=summary&format=csv&courseId=${ids.courseA}`,
      '/portal/journal',
    ]) {
      const res = await get(ctx.app, akto, url);
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).not.toMatch(SECRET);
      expect(res.body, url).not.toContain(ids.l3);
    }
    for (const url of [
      '/portal/entonnoir?fund=atlas',
      '/portal/exports?fund=atlas',
      '/portal/exports/telecharger?kind=summary&format=csv&fund=atlas',
      '/portal/exports/telecharger?kind=connections&format=xlsx&fund=atlas',
    ]) {
      const res = await get(ctx.app, akto, url);
      expect(res.statusCode, url).toBe(403);
      expect(res.body).not.toMatch(SECRET);
    }
    const entonnoir = await get(ctx.app, akto, '/portal/entonnoir');
    expect(entonnoir.body).not.toContain('Atlas');
    const crossSite = await ctx.app.inject({
      method: 'GET',
      url: '/portal/exports/telecharger?kind=summary&format=csv',
      headers: { cookie: `emargement_portal=${akto.cookies.emargement_portal}`, 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.statusCode).toBe(403);
  });

  it('UI: without a session every page sends to the sign-in page, and downloads give nothing', async () => {
    for (const url of [
      '/portal/entonnoir',
      '/portal/exports',
      '/portal/exports/telecharger?kind=summary&format=csv',
      '/portal/journal',
    ]) {
      const res = await get(ctx.app, null, url);
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location).toMatch(/^\/portal\/connexion\?suite=/);
      expect(res.body).not.toContain(ids.l1);
    }
  });

  it('UI: the progress of a download is readable only by the person who started it', async () => {
    const ticket = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const dl = await get(ctx.app, akto, `/portal/exports/telecharger?kind=summary&format=csv&ticket=${ticket}`);
    expect(dl.statusCode).toBe(200);
    const mine = () =>
      ctx.app.inject({
        method: 'GET',
        url: `/portal/exports/progression/${ticket}`,
        headers: { cookie: `emargement_portal=${akto.cookies.emargement_portal}` },
      });
    expect((await mine()).statusCode).toBe(200);
    // On PostgreSQL the total is counted beside the download: it may land just after the last byte.
    await expect
      .poll(async () => (await mine()).json())
      .toEqual({ status: 'completed', rows: 4, expectedRows: 4, unit: 'rows' });
    const other = await ctx.app.inject({
      method: 'GET',
      url: `/portal/exports/progression/${ticket}`,
      headers: { cookie: `emargement_portal=${atlas.cookies.emargement_portal}` },
    });
    expect(other.statusCode).toBe(404);
    const nobody = await ctx.app.inject({ method: 'GET', url: `/portal/exports/progression/${ticket}` });
    expect(nobody.statusCode).toBe(401);
  });

  it('operators see every fund, and can narrow to one', async () => {
    const all = await csvOf(opsToken, '');
    expect(all.length).toBe(6);
    const onlyAtlas = await csvOf(opsToken, 'fund=atlas');
    expect(onlyAtlas.slice(1).map((r) => r[(onlyAtlas[0] as string[]).indexOf('Identifiant apprenant')])).toEqual([
      ids.l3,
    ]);
    const page = await get(ctx.app, ops, '/portal/entonnoir');
    expect(page.body).toContain('Par fonds');
    expect(page.body).toContain('Atlas');
  });
});

describe('audit log', () => {
  it('records every download: who, how, which filter, when, and how many rows', async () => {
    const before = Date.now();
    const res = await api(aktoToken, '/api/v1/exports/summary?format=xlsx&branch=1979&status=not_started');
    expect(res.statusCode).toBe(200);
    const auditId = res.headers['x-audit-id'] as string;
    const row = await ctx.app.db
      .selectFrom('audit_log')
      .selectAll()
      .where('id', '=', auditId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      actor_username: 'staff@akto.test',
      actor_role: 'fund_staff',
      actor_fund_slug: 'akto',
      via: 'token',
      action: 'export.download',
      status: 'completed',
      row_count: 1,
    });
    expect(row.token_id).not.toBeNull();
    expect(row.details).toMatchObject({
      export: 'summary',
      format: 'xlsx',
      filter: { fund: 'akto', branch: '1979', status: 'not_started', courseId: null, from: null, to: null },
    });
    expect(row.at.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(row.finished_at).not.toBeNull();

    const ui = await get(ctx.app, ops, '/portal/exports/telecharger?kind=connections&format=csv&fund=akto');
    const uiRow = await ctx.app.db
      .selectFrom('audit_log')
      .selectAll()
      .where('id', '=', ui.headers['x-audit-id'] as string)
      .executeTakeFirstOrThrow();
    expect(uiRow).toMatchObject({ actor_username: 'ops@fun.test', via: 'session', status: 'completed', row_count: 4 });

    const journal = await get(ctx.app, akto, '/portal/journal');
    expect(journal.body).toContain('staff@akto.test');
    expect(journal.body).toContain('branche = 1979');
    expect(journal.body).toContain('synthèse XLSX');
    expect(journal.body).not.toContain('staff@atlas.test');
  });

  it('records a refused download nowhere and an interrupted one as failed', async () => {
    const count = async () =>
      Number(
        (
          await ctx.app.db
            .selectFrom('audit_log')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('action', '=', 'export.download')
            .executeTakeFirstOrThrow()
        ).n,
      );
    const n = await count();
    await api(aktoToken, '/api/v1/exports/summary?fund=atlas');
    expect(await count()).toBe(n);

    // A reader that goes away: before the first byte (CSV), and after the first chunk (XLSX).
    const { startExport } = await import('../../src/exports/index.js');
    const { resolveToken } = await import('../../src/portal/service.js');
    const principal = (await resolveToken(ctx.app.db, aktoToken))!;
    const csv = await startExport(ctx.app, principal, { kind: 'summary', format: 'csv', filter: { fund: 'akto' } });
    csv.stream.destroy();
    const xlsx = await startExport(ctx.app, principal, {
      kind: 'connections',
      format: 'xlsx',
      filter: { fund: 'akto' },
    });
    for await (const _chunk of xlsx.stream) break;
    for (const id of [csv.auditId, xlsx.auditId]) {
      await expect
        .poll(
          async () =>
            (await ctx.app.db.selectFrom('audit_log').select('status').where('id', '=', id).executeTakeFirstOrThrow())
              .status,
        )
        .toBe('failed');
    }
    const failed = await ctx.app.db
      .selectFrom('audit_log')
      .select('details')
      .where('id', '=', csv.auditId)
      .executeTakeFirstOrThrow();
    expect(failed.details).toMatchObject({ failure: 'export interrupted' });
  });
});

describe('funnel « combien iront jusqu’au bout ? »', () => {
  it('counts each stage per fund, branch and week of registration', async () => {
    const res = await api(aktoToken, '/api/v1/funnel');
    const body = res.json();
    expect(body.commonKnown).toBe(true);
    expect(body.total).toEqual({ registered: 4, started: 3, commonDone: 1, sectorDone: 1, certified: 1 });
    expect(body.byWeek).toEqual([
      {
        week: '2026-W10',
        monday: '2026-03-02',
        counts: { registered: 2, started: 2, commonDone: 1, sectorDone: 1, certified: 1 },
      },
      {
        week: '2026-W12',
        monday: '2026-03-16',
        counts: { registered: 1, started: 0, commonDone: 0, sectorDone: 0, certified: 0 },
      },
      {
        week: '2026-W37',
        monday: '2026-09-07',
        counts: { registered: 1, started: 1, commonDone: 0, sectorDone: 0, certified: 0 },
      },
    ]);
    const branches = Object.fromEntries(
      body.byBranch.map((b: { idcc: string | null; counts: { registered: number } }) => [
        b.idcc ?? 'none',
        b.counts.registered,
      ]),
    );
    expect(branches).toEqual({ '1979': 2, '1501': 1, none: 1 });
    const filtered = (await api(aktoToken, `/api/v1/funnel?branch=1979&from=2026-03-01&to=2026-03-08`)).json();
    expect(filtered.total).toEqual({ registered: 1, started: 1, commonDone: 1, sectorDone: 1, certified: 1 });
    const ops = (await api(opsToken, '/api/v1/funnel')).json();
    expect(ops.total.registered).toBe(5);
    expect(ops.byFund.find((f: { slug: string }) => f.slug === 'atlas').counts.certified).toBe(1);
  });

  it('shows accessible SVG charts and the same figures as tables, in French', async () => {
    const res = await get(ctx.app, akto, '/portal/entonnoir');
    expect(res.statusCode).toBe(200);
    const body = res.body;
    expect(body).toContain('Combien iront jusqu’au bout ?');
    expect(body).toMatch(/<svg role="img" aria-labelledby="entonnoir-t entonnoir-d"/);
    expect(body).toContain(
      '<desc id="entonnoir-d">Inscrits : 4 (100 % des inscrits) ; Ont commencé : 3 (75 % des inscrits)',
    );
    const table = body.slice(
      body.indexOf('id="table-entonnoir"'),
      body.indexOf('</table>', body.indexOf('id="table-entonnoir"')),
    );
    expect(table).toMatch(/Inscrits<\/th><td class="num">4<\/td>/);
    expect(table).toMatch(/Ont commencé<\/th><td class="num">3<\/td>\s*<td class="num">75 %<\/td>/);
    expect(table).toMatch(/Attestation délivrée<\/th><td class="num">1<\/td>\s*<td class="num">25 %<\/td>/);
    expect(body).toContain('Semaine du 02/03/2026');
    expect(body).toContain('Par branche');
    expect(body).not.toContain('Par fonds');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });
});

describe('OpenAPI', () => {
  it('describes the export API at /docs', async () => {
    const json = await ctx.app.inject({ method: 'GET', url: '/docs/json' });
    expect(json.statusCode).toBe(200);
    const doc = json.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/v1/exports/{kind}',
      '/api/v1/file-numbers',
      '/api/v1/file-numbers/import',
      '/api/v1/file-numbers/{fund}/{courseId}/{siret}',
      '/api/v1/filters',
      '/api/v1/funnel',
      '/api/v1/me',
    ]);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    const op = doc.paths['/api/v1/exports/{kind}'].get;
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['kind', 'format', 'fund', 'courseId', 'branch', 'from', 'to', 'status']),
    );
    expect(Object.keys(op.responses['200'].content)).toEqual([
      'text/csv',
      'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    ]);
    const ui = await ctx.app.inject({ method: 'GET', url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
  });
});
