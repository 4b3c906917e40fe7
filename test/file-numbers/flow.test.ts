import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pdfText } from '../certificates/helpers.js';
import { parseCsv } from '../exports/csv.js';
import { seedCourse, seedLearner, seedRegistration } from '../exports/seed.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { attrs, dom, normalise } from '../helpers/dom.js';
import { type Browser, bearer, cookieHeader, csrfOf, get, post, seedStaff } from '../portal/helpers.js';

let ctx: TestContext;
const ids: Record<string, string> = {};
let akto: Browser;
let atlas: Browser;
let ops: Browser;
let aktoToken: string;
let atlasToken: string;
let opsToken: string;

const PARC = '73282932000074';
const CAFE = '12345678200002';
const ATLAS_CO = '55210055400013';
const at = (iso: string) => new Date(iso);

async function issue(learnerId: string, courseId: string): Promise<string> {
  const issued = await ctx.app.certificates.issue({ learnerId, courseId, kind: 'operator', by: null, reason: 'test' });
  return issued.number;
}

async function certificateText(number: string): Promise<string> {
  const record = await ctx.app.certificates.find(number);
  return pdfText((await ctx.app.certificates.pdf(record)).bytes).replace(/\s+/g, ' ');
}

async function stateOf(number: string) {
  return (await ctx.app.certificates.find(number)).state;
}

async function validNumber(learnerId: string, courseId: string): Promise<string | undefined> {
  return (await ctx.app.certificates.listForLearner(learnerId, courseId)).find((r) => r.state === 'valid')?.number;
}

async function stored(fund: string, courseId: string) {
  return ctx.app.db
    .selectFrom('fund_file_numbers')
    .select(['company_siret', 'file_number', 'set_by_username'])
    .where('fund_slug', '=', fund)
    .where('course_id', '=', courseId)
    .orderBy('company_siret')
    .execute();
}

async function setOnPage(browser: Browser, form: Record<string, string>, headers: Record<string, string> = {}) {
  const csrf = await csrfOf(ctx.app, browser, '/portal/dossiers');
  return post(ctx.app, browser, '/portal/dossiers', { _csrf: csrf, action: 'enregistrer', ...form }, headers);
}

/** The import form as a browser posts it: multipart/form-data, with the chosen file (if any). */
async function postImportForm(
  browser: Browser,
  fields: Record<string, string>,
  file?: { name: string; type: string; bytes: Uint8Array<ArrayBuffer> },
) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (file) form.append('fichier', new Blob([file.bytes], { type: file.type }), file.name);
  const request = new Request('http://portal.test/', { method: 'POST', body: form });
  return ctx.app.inject({
    method: 'POST',
    url: '/portal/dossiers/import',
    remoteAddress: browser.ip,
    headers: {
      cookie: cookieHeader(browser.cookies),
      'content-type': request.headers.get('content-type') as string,
      accept: 'text/html',
    },
    payload: Buffer.from(await request.arrayBuffer()),
  });
}

function api(method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, token: string | null, payload?: unknown) {
  return ctx.app.inject({
    method,
    url,
    headers: token ? bearer(token) : {},
    ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
  });
}

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  ids.courseA = await seedCourse(db, 'course-v1:FUN+TNUM+2026_T1', 'Transition numérique des TPE-PME', 'Printemps');
  ids.courseB = await seedCourse(db, 'course-v1:FUN+TNUM+2026_T2', 'Transition numérique des TPE-PME', 'Automne');
  const learner = (fund: string, family: string, companyName: string, companySiret: string, courseId = ids.courseA) =>
    seedLearner(db, {
      registrationId: reg,
      courseId: courseId as string,
      fund,
      idcc: null,
      familyName: family,
      givenName: 'Test',
      companyName,
      companySiret,
      registeredAt: at('2026-03-02T08:00:00Z'),
    });
  ids.a1 = await learner('akto', 'Dupont', 'Hôtel du Parc', PARC);
  ids.a2 = await learner('akto', 'Durand', 'Hôtel du Parc', PARC);
  ids.a3 = await learner('akto', 'Petit', 'Café de la Gare', CAFE);
  ids.a4 = await learner('akto', 'Autre', 'Hôtel du Parc', PARC, ids.courseB);
  ids.t1 = await learner('atlas', 'Secretatlas', 'Bureau Atlas', ATLAS_CO);
  ids.cert1 = await issue(ids.a1 as string, ids.courseA as string);
  ids.certT = await issue(ids.t1 as string, ids.courseA as string);

  ({ aktoToken, atlasToken, opsToken, akto, atlas, ops } = await seedStaff(db, ctx.app));
});
afterAll(() => ctx.close());

describe('before any number', () => {
  it('prints "non communiqué" on the certificate', async () => {
    expect(await certificateText(ids.cert1 as string)).toContain('N° de dossier AKTO Fafih non communiqué');
  });
});

describe('portal page', () => {
  it('lists the companies of the fund’s learners in the session, never another fund’s', async () => {
    const res = await get(ctx.app, akto, `/portal/dossiers?courseId=${ids.courseA}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Hôtel du Parc');
    expect(res.body).toContain('732 829 320 00074');
    expect(res.body).toContain('Café de la Gare');
    expect(res.body).not.toContain('Bureau Atlas');
    expect(res.body).not.toContain('552 100 554 00013');
    expect(res.headers['x-frame-options']).toBe('DENY');
    const list = await get(ctx.app, akto, '/portal/dossiers');
    expect(list.body).toContain(`value="${ids.courseA}"`);
    expect(list.body).toContain('N° de dossier OPCO');
  });

  it('refuses another fund, by URL or by form', async () => {
    const page = await get(ctx.app, akto, `/portal/dossiers?fund=atlas&courseId=${ids.courseA}`);
    expect(page.statusCode).toBe(403);
    expect(page.body).not.toContain('Bureau Atlas');
    const res = await setOnPage(akto, {
      fund: 'atlas',
      courseId: ids.courseA as string,
      siret: ATLAS_CO,
      numero: 'X-1',
    });
    expect(res.statusCode).toBe(403);
    expect(await stored('atlas', ids.courseA as string)).toEqual([]);
  });

  it('needs the session’s CSRF token and a same-site form', async () => {
    const res = await post(ctx.app, akto, '/portal/dossiers', {
      courseId: ids.courseA as string,
      siret: PARC,
      numero: 'X',
      _csrf: 'forged',
    });
    expect(res.statusCode).toBe(403);
    const cross = await setOnPage(
      akto,
      { courseId: ids.courseA as string, siret: PARC, numero: 'X' },
      { 'sec-fetch-site': 'cross-site' },
    );
    expect(cross.statusCode).toBe(403);
    const anonymous = await ctx.app.inject({ method: 'GET', url: `/portal/dossiers?courseId=${ids.courseA}` });
    expect(anonymous.statusCode).toBe(303);
    expect(await stored('akto', ids.courseA as string)).toEqual([]);
  });

  it('explains a bad value in French and keeps what was typed', async () => {
    const long = await setOnPage(akto, { courseId: ids.courseA as string, siret: PARC, numero: 'N'.repeat(60) });
    expect(long.statusCode).toBe(400);
    expect(long.body).toContain('Le numéro de dossier ne doit pas dépasser 50 caractères.');
    expect(long.body).toContain(`value="${'N'.repeat(60)}"`);
    const siret = await setOnPage(akto, {
      courseId: ids.courseA as string,
      siret: '732 829 320 00075',
      numero: 'AKTO-9',
    });
    expect(siret.statusCode).toBe(400);
    expect(siret.body).toContain('un chiffre est sans doute mal recopié');
    expect(siret.body).toContain('value="732 829 320 00075"');
    expect(siret.body).toContain('value="AKTO-9"');
    expect(await stored('akto', ids.courseA as string)).toEqual([]);
  });

  it('sets a number: the issued certificate is reissued with it and the old one is superseded', async () => {
    const res = await setOnPage(akto, {
      courseId: ids.courseA as string,
      siret: '732 829 320 00074',
      numero: ' AKTO-2026-00042 ',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('est enregistré : AKTO-2026-00042');
    expect(res.body).toContain('1 certificat(s) réédité(s)');
    expect(await stored('akto', ids.courseA as string)).toEqual([
      { company_siret: PARC, file_number: 'AKTO-2026-00042', set_by_username: 'staff@akto.test' },
    ]);
    expect(await stateOf(ids.cert1 as string)).toBe('superseded');
    const current = await validNumber(ids.a1 as string, ids.courseA as string);
    expect(current).toBeDefined();
    expect(current).not.toBe(ids.cert1);
    const record = await ctx.app.certificates.find(current as string);
    expect(record.version).toBe(2);
    expect(record.issue_reason).toBe('N° de dossier OPCO renseigné : AKTO-2026-00042.');
    expect(await certificateText(current as string)).toContain('N° de dossier AKTO Fafih AKTO-2026-00042');
    const verified = await ctx.app.certificates.verify(ids.cert1 as string);
    expect(verified.summary).toMatchObject({ state: 'superseded' });
    // Another fund's certificate in the same session is untouched.
    expect(await stateOf(ids.certT as string)).toBe('valid');
    const audit = await ctx.app.db
      .selectFrom('audit_log')
      .select(['action', 'actor_username', 'actor_fund_slug', 'details'])
      .where('action', 'like', 'file_number.%')
      .execute();
    expect(audit).toEqual([
      {
        action: 'file_number.set',
        actor_username: 'staff@akto.test',
        actor_fund_slug: 'akto',
        details: { fund: 'akto', courseId: ids.courseA, siret: PARC, previous: null, fileNumber: 'AKTO-2026-00042' },
      },
    ]);
  });

  it('does nothing when the same number is saved again', async () => {
    const before = await validNumber(ids.a1 as string, ids.courseA as string);
    const res = await setOnPage(akto, { courseId: ids.courseA as string, siret: PARC, numero: 'AKTO-2026-00042' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('était déjà celui-ci');
    expect(await validNumber(ids.a1 as string, ids.courseA as string)).toBe(before);
  });

  it('a certificate issued afterwards prints the number from the start', async () => {
    const number = await issue(ids.a2 as string, ids.courseA as string);
    expect(await certificateText(number)).toContain('AKTO-2026-00042');
    expect((await ctx.app.certificates.find(number)).version).toBe(1);
  });
});

describe('summary export', () => {
  it('shows the current number for every learner of the company in that session, certificate or not', async () => {
    const res = await api('GET', '/api/v1/exports/summary?format=csv', aktoToken);
    expect(res.statusCode).toBe(200);
    const rows = parseCsv(res.body);
    const header = rows[0] as string[];
    const fileNumber = (id: string) => rows.find((r) => r.includes(id))?.[header.indexOf('N° de dossier OPCO')];
    expect(fileNumber(ids.a1 as string)).toBe('AKTO-2026-00042');
    expect(fileNumber(ids.a2 as string)).toBe('AKTO-2026-00042');
    expect(fileNumber(ids.a3 as string)).toBe('');
    expect(fileNumber(ids.a4 as string)).toBe(''); // same company, another session
  });
});

describe('API with personal tokens', () => {
  it('lists the fund’s companies and refuses another fund', async () => {
    const res = await api('GET', `/api/v1/file-numbers?courseId=${ids.courseA}`, aktoToken);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.fund).toBe('akto');
    expect(body.companies.map((c: { siret: string }) => c.siret).sort()).toEqual([CAFE, PARC]);
    expect(body.companies.find((c: { siret: string }) => c.siret === PARC)).toMatchObject({
      name: 'Hôtel du Parc',
      learners: 2,
      certificates: 2,
      fileNumber: 'AKTO-2026-00042',
      setBy: 'staff@akto.test',
    });
    const other = await api('GET', `/api/v1/file-numbers?fund=akto&courseId=${ids.courseA}`, atlasToken);
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: 'fund_out_of_scope' });
    const own = await api('GET', `/api/v1/file-numbers?courseId=${ids.courseA}`, atlasToken);
    expect(own.json().companies.map((c: { siret: string }) => c.siret)).toEqual([ATLAS_CO]);
    expect(JSON.stringify(own.json())).not.toContain('AKTO-2026-00042');
    expect((await api('GET', `/api/v1/file-numbers?courseId=${ids.courseA}`, null)).statusCode).toBe(401);
  });

  it('never lets a fund set or clear another fund’s numbers', async () => {
    const put = await api('PUT', `/api/v1/file-numbers/akto/${ids.courseA}/${PARC}`, atlasToken, {
      fileNumber: 'PIRATE',
    });
    expect(put.statusCode).toBe(403);
    const del = await api('DELETE', `/api/v1/file-numbers/akto/${ids.courseA}/${PARC}`, atlasToken);
    expect(del.statusCode).toBe(403);
    const imp = await api('POST', '/api/v1/file-numbers/import', atlasToken, {
      fund: 'akto',
      courseId: ids.courseA,
      csv: `${PARC};PIRATE`,
    });
    expect(imp.statusCode).toBe(403);
    // Page forms and session cookies do not work on the API.
    expect(
      (await api('PUT', `/api/v1/file-numbers/akto/${ids.courseA}/${PARC}`, null, { fileNumber: 'X' })).statusCode,
    ).toBe(401);
    expect((await stored('akto', ids.courseA as string)).map((r) => r.file_number)).toEqual(['AKTO-2026-00042']);
  });

  it('changes a number, reissuing each certificate of the company', async () => {
    const v2 = await validNumber(ids.a1 as string, ids.courseA as string);
    const res = await api('PUT', `/api/v1/file-numbers/akto/${ids.courseA}/${PARC}`, aktoToken, {
      fileNumber: 'AKTO-2026-00043',
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      previous: 'AKTO-2026-00042',
      fileNumber: 'AKTO-2026-00043',
      changed: true,
      reissueFailed: 0,
    });
    expect(body.reissued).toHaveLength(2);
    expect(await stateOf(v2 as string)).toBe('superseded');
    const v3 = await validNumber(ids.a1 as string, ids.courseA as string);
    expect((await ctx.app.certificates.find(v3 as string)).version).toBe(3);
    expect(await certificateText(v3 as string)).toContain('AKTO-2026-00043');
  });

  it('refuses bad values with problem details in French', async () => {
    const res = await api('PUT', `/api/v1/file-numbers/akto/${ids.courseA}/${PARC}`, aktoToken, {
      fileNumber: 'A\u0007B',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'invalid_file_number' });
    const badSiret = await api('PUT', `/api/v1/file-numbers/akto/${ids.courseA}/73282932000075`, aktoToken, {
      fileNumber: 'A',
    });
    expect(badSiret.statusCode).toBe(400);
    expect(badSiret.json()).toMatchObject({ code: 'invalid_siret' });
    const noCourse = await api(
      'PUT',
      `/api/v1/file-numbers/akto/00000000-0000-4000-8000-000000000000/${PARC}`,
      aktoToken,
      {
        fileNumber: 'A',
      },
    );
    expect(noCourse.statusCode).toBe(404);
  });

  it('lets an operator act for any fund', async () => {
    const res = await api('PUT', `/api/v1/file-numbers/atlas/${ids.courseA}/${ATLAS_CO}`, opsToken, {
      fileNumber: 'ATLAS-7',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().reissued).toHaveLength(1);
    expect(await stateOf(ids.certT as string)).toBe('superseded');
    const unknown = await api('PUT', `/api/v1/file-numbers/nofund/${ids.courseA}/${ATLAS_CO}`, opsToken, {
      fileNumber: 'A',
    });
    expect(unknown.statusCode).toBe(404);
    const page = await get(ctx.app, ops, `/portal/dossiers?fund=atlas&courseId=${ids.courseA}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('ATLAS-7');
    // …while the AKTO staff page still does not show it.
    expect((await get(ctx.app, akto, `/portal/dossiers?courseId=${ids.courseA}`)).body).not.toContain('ATLAS-7');
    expect((await get(ctx.app, atlas, `/portal/dossiers?courseId=${ids.courseA}`)).body).toContain('ATLAS-7');
  });

  it('clears a number: the certificate is reissued without it', async () => {
    const res = await api('DELETE', `/api/v1/file-numbers/atlas/${ids.courseA}/${ATLAS_CO}`, atlasToken);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ previous: 'ATLAS-7', fileNumber: null, changed: true });
    const current = await validNumber(ids.t1 as string, ids.courseA as string);
    expect(await certificateText(current as string)).toContain('N° de dossier Atlas Opcabaia non communiqué');
    const history = await ctx.app.db
      .selectFrom('fund_file_number_history')
      .select(['previous_number', 'file_number', 'set_by_username', 'via'])
      .where('fund_slug', '=', 'atlas')
      .orderBy('at')
      .execute();
    expect(history).toEqual([
      { previous_number: null, file_number: 'ATLAS-7', set_by_username: 'ops@fun.test', via: 'token' },
      { previous_number: 'ATLAS-7', file_number: null, set_by_username: 'staff@atlas.test', via: 'token' },
    ]);
  });
});

describe('CSV import', () => {
  it('imports nothing when a line is wrong, lists the lines and keeps the text', async () => {
    const csrf = await csrfOf(ctx.app, akto, '/portal/dossiers');
    const csv = `SIRET;Numéro\n${CAFE};AKTO-C\n73282932000075;AKTO-X`;
    const res = await post(ctx.app, akto, '/portal/dossiers/import', {
      _csrf: csrf,
      courseId: ids.courseA as string,
      csv,
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('Ligne 3 :');
    expect(res.body).toContain('AKTO-C'); // the text is kept in the textarea
    expect((await stored('akto', ids.courseA as string)).map((r) => r.company_siret)).toEqual([PARC]);
  });

  it('imports good lines from the page and from the API', async () => {
    const csrf = await csrfOf(ctx.app, akto, '/portal/dossiers');
    const res = await post(ctx.app, akto, '/portal/dossiers/import', {
      _csrf: csrf,
      courseId: ids.courseA as string,
      csv: `${CAFE};AKTO-C\n${PARC};AKTO-2026-00043`,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('1 numéro(s) enregistré(s), 1 inchangé(s)');
    const viaApi = await api('POST', '/api/v1/file-numbers/import', aktoToken, {
      courseId: ids.courseB,
      csv: `${PARC};AKTO-B`,
    });
    expect(viaApi.statusCode, viaApi.body).toBe(200);
    expect(viaApi.json()).toMatchObject({ set: 1, unchanged: 0 });
    const bad = await api('POST', '/api/v1/file-numbers/import', aktoToken, {
      courseId: ids.courseB,
      csv: 'SIRET;numéro\n123;quoi;là',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().problems).toEqual([{ line: 2, message: 'Deux colonnes attendues : SIRET;numéro de dossier.' }]);
    expect(await stored('akto', ids.courseB as string)).toEqual([
      { company_siret: PARC, file_number: 'AKTO-B', set_by_username: 'staff@akto.test' },
    ]);
  });

  it('imports a file chosen on the page, saved by Excel in French (Windows-1252)', async () => {
    const csrf = await csrfOf(ctx.app, akto, '/portal/dossiers');
    const page = await get(ctx.app, akto, `/portal/dossiers?courseId=${ids.courseB}`);
    const doc = dom(page.body);
    expect(attrs(doc, 'form', 'enctype')).toContain('multipart/form-data');
    expect(normalise(doc.querySelector('label[for="fichier"]')?.textContent)).toBe('Fichier CSV');
    // "Numéro" and "É" are one byte each in Windows-1252, and not UTF-8.
    const text = `SIRET;Numéro de dossier\r\n${CAFE};AKTO-É-9\r\n`;
    const bytes = Uint8Array.from([...text].map((c) => (c === 'é' ? 0xe9 : c === 'É' ? 0xc9 : c.charCodeAt(0))));
    const res = await postImportForm(
      akto,
      { _csrf: csrf, courseId: ids.courseB as string, csv: '' },
      { name: 'numeros.csv', type: 'application/vnd.ms-excel', bytes },
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('Import terminé : 1 numéro(s) enregistré(s), 0 inchangé(s).');
    expect(await stored('akto', ids.courseB as string)).toEqual([
      { company_siret: CAFE, file_number: 'AKTO-É-9', set_by_username: 'staff@akto.test' },
      { company_siret: PARC, file_number: 'AKTO-B', set_by_username: 'staff@akto.test' },
    ]);
  });

  it('refuses a workbook, an empty form, a file and pasted lines together, and a file too large; nothing changes', async () => {
    const csrf = await csrfOf(ctx.app, akto, '/portal/dossiers');
    const before = await stored('akto', ids.courseB as string);
    const fields = { _csrf: csrf, courseId: ids.courseB as string };
    const xlsx = await postImportForm(
      akto,
      { ...fields, csv: '' },
      {
        name: 'numeros.xlsx',
        type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
        bytes: Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00, 0x08, 0x00]),
      },
    );
    expect(xlsx.statusCode).toBe(400);
    expect(xlsx.headers['content-type']).toContain('text/html');
    expect(xlsx.body).toContain('Ce fichier est un classeur, pas un fichier CSV.');

    // A browser sends an empty file part when no file is chosen.
    const empty = await postImportForm(
      akto,
      { ...fields, csv: '  ' },
      { name: '', type: 'application/octet-stream', bytes: new Uint8Array() },
    );
    expect(empty.statusCode).toBe(400);
    expect(empty.body).toContain('Choisissez un fichier CSV ou collez des lignes');

    const both = await postImportForm(
      akto,
      { ...fields, csv: `${PARC};AKTO-Z` },
      { name: 'numeros.csv', type: 'text/csv', bytes: new TextEncoder().encode(`${PARC};AKTO-Y`) },
    );
    expect(both.statusCode).toBe(400);
    expect(both.body).toContain('pas les deux');
    expect(both.body).toContain('AKTO-Z'); // the pasted lines stay in the box

    const large = await postImportForm(
      akto,
      { ...fields, csv: '' },
      { name: 'gros.csv', type: 'text/csv', bytes: new TextEncoder().encode(`${PARC};AKTO-L\n`.repeat(40_000)) },
    );
    expect(large.statusCode).toBe(413);
    expect(large.headers['content-type']).toContain('text/html');
    expect(large.body).toContain('Envoi trop volumineux');
    // A body announced larger than any good form is refused before it is read.
    const huge = await postImportForm(akto, { ...fields, csv: `${PARC};AKTO-H\n`.repeat(150_000) });
    expect(huge.statusCode).toBe(413);
    expect(huge.body).toContain('L’envoi est trop volumineux');

    const noCsrf = await postImportForm(
      akto,
      { courseId: ids.courseB as string, csv: '' },
      { name: 'numeros.csv', type: 'text/csv', bytes: new TextEncoder().encode(`${PARC};AKTO-N`) },
    );
    expect(noCsrf.statusCode).toBe(403);

    // No session: sent to the sign-in page before the upload is even read.
    const anonymous = await postImportForm(
      { ip: '203.0.113.9', cookies: {} },
      { ...fields, csv: '' },
      { name: 'numeros.csv', type: 'text/csv', bytes: new TextEncoder().encode(`${PARC};AKTO-A`) },
    );
    expect(anonymous.statusCode).toBe(303);
    expect(anonymous.headers.location).toBe('/portal/connexion');

    const broken = await ctx.app.inject({
      method: 'POST',
      url: '/portal/dossiers/import',
      remoteAddress: akto.ip,
      headers: {
        cookie: cookieHeader(akto.cookies),
        'content-type': 'multipart/form-data; boundary=xyz',
        accept: 'text/html',
      },
      payload: '--xyz\r\nContent-Disposition: form-data; name="csv"\r\n\r\nunterminated',
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.headers['content-type']).toContain('text/html');
    expect(broken.body).toContain('Le formulaire est arrivé incomplet.');

    expect(await stored('akto', ids.courseB as string)).toEqual(before);
  });
});
