import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { describeWithChromium, launchChromium } from '../helpers/chromium.js';
import { addUser, PASSWORD } from '../portal/helpers.js';
import { parseCsv, xlsxAsCsvCells } from './csv.js';
import { certify, moduleIds, progress, seedCourse, seedLearner, seedRegistration, trackTime } from './seed.js';

/**
 * Debian's Chromium against the portal served on a loopback port: a fund's staff member signs in,
 * reads the funnel (chart and table), downloads the CSV and the XLSX of their learners — and only theirs.
 */
let ctx: TestContext;
let base: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];
const ids: Record<string, string> = {};

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  const course = await seedCourse(
    db,
    'course-v1:FUN+TNUM+2026_T1',
    'Transition numérique des TPE-PME',
    'Session printemps 2026',
  );
  const modules = await moduleIds(db, 'opco-sante');
  const learners: Array<[string, string, string]> = [
    ['opco-sante', 'Leroy', 'Amina'],
    ['opco-sante', 'Petit', 'Hugo'],
    ['opco-sante', 'Roux', 'Chloé'],
    ['uniformation', 'Ailleurs', 'Personne'],
  ];
  for (const [i, [fund, family, given]] of learners.entries()) {
    const id = await seedLearner(db, {
      registrationId: reg,
      courseId: course,
      fund,
      idcc: fund === 'opco-sante' ? '0029' : '0218',
      familyName: family,
      givenName: given,
      registeredAt: new Date(Date.UTC(2026, 2, 2 + i, 8)),
    });
    ids[family] = id;
    if (i < 2 || fund === 'uniformation') {
      await progress(db, id, course, modules.common[0] as string, {
        startedAt: new Date(Date.UTC(2026, 2, 3 + i, 9)),
        completedAt: new Date(Date.UTC(2026, 2, 3 + i, 10)),
      });
      await trackTime(db, id, course, [
        {
          moduleId: modules.common[0] as string,
          start: new Date(Date.UTC(2026, 2, 3 + i, 9)),
          end: new Date(Date.UTC(2026, 2, 3 + i, 9, 25)),
          beats: 50,
        },
      ]);
    }
  }
  await certify(db, ids.Leroy as string, course, {
    number: 'EMG-2026-000777',
    fund: 'opco-sante',
    fileNumber: null,
    issuedAt: new Date(Date.UTC(2026, 2, 20)),
  });
  await addUser(db, 'claire@opco-sante.test', 'fund_staff', 'opco-sante');
  ids.course = course;

  base = await ctx.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
  context = await browser.newContext({
    acceptDownloads: true,
    locale: 'fr-FR',
    viewport: { width: 1024, height: 900 },
  });
  page = await context.newPage();
  // Script errors and CSP refusals; 401/404 answers (a wrong password, a progress poll that came
  // before the download started) are expected and show only as "Failed to load resource".
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(e.message));
});

afterAll(async () => {
  await browser?.close();
  await ctx?.close();
});

describeWithChromium('a fund’s staff member in a real browser', () => {
  it('signs in and lands on the page they asked for', async () => {
    await page.goto(`${base}/portal/entonnoir`);
    await expect.poll(() => page.url()).toContain('/portal/connexion');
    await expect(page.title()).resolves.toContain('Connexion au portail des fonds');
    await page.getByLabel('Identifiant').fill('claire@opco-sante.test');
    await page.getByLabel('Mot de passe').fill('pas le bon mot de passe');
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('Identifiant ou mot de passe incorrect.');
    await page.getByLabel('Mot de passe').fill(PASSWORD);
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.waitForURL(`${base}/portal/entonnoir`);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'emargement_portal');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/portal' });
  });

  it('reads the funnel as a chart and as a table', async () => {
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Combien iront jusqu’au bout ?');
    const chart = page.getByRole('img', { name: /Entonnoir, de l’inscription à l’attestation/ });
    await expect(chart.isVisible()).resolves.toBe(true);
    const figures = page.getByRole('table', { name: 'Chiffres de l’entonnoir' });
    const row = async (label: string) =>
      (await figures.getByRole('row', { name: new RegExp(`^${label}`) }).allInnerTexts())[0]?.replace(/\s+/g, ' ');
    await expect(row('Inscrits')).resolves.toContain('3');
    await expect(row('Ont ouvert un module')).resolves.toMatch(/Ont ouvert un module 2 67 % 67 %/);
    // Leroy's certificate came without the trunks finished: counted where the ordered path stops, and said.
    await expect(row('Attestation délivrée')).resolves.toMatch(/Attestation délivrée 0 0 %/);
    await expect(page.locator('#hors-ordre').textContent()).resolves.toContain(
      '1 apprenant a franchi une étape dans le désordre',
    );
    expect(await page.content()).not.toContain('Ailleurs');
  });

  it('downloads the CSV of their learners, following its progress', async () => {
    await page.getByRole('link', { name: 'Exports' }).click();
    await page.waitForURL(`${base}/portal/exports`);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Télécharger' }).click(),
    ]);
    // The page's default: the CSV that opens right in Excel and LibreOffice (identifiers as ="…").
    expect(download.suggestedFilename()).toMatch(/^emargement-synthese-opco-sante-\d{4}-\d{2}-\d{2}-excel\.csv$/);
    const text = await readFile((await download.path()) as string, 'utf8');
    const rows = parseCsv(text);
    const names = rows.slice(1).map((r) => r[(rows[0] as string[]).indexOf('Nom')]);
    expect(names.sort()).toEqual(['Leroy', 'Petit', 'Roux']);
    expect(new Set(rows.slice(1).map((r) => r[(rows[0] as string[]).indexOf('IDCC')]))).toEqual(new Set(['="0029"']));
    expect(text).not.toContain('Ailleurs');
    await expect
      .poll(() => page.locator('#export-text').textContent())
      .toBe('Export terminé : 3 lignes. Le fichier est dans vos téléchargements.');
    await expect(page.locator('#export-bar').evaluate((el: HTMLProgressElement) => el.value / el.max)).resolves.toBe(1);
  });

  it('downloads the XLSX of the connection log, which reads back like its CSV', async () => {
    await page.getByLabel('Journal des connexions').check();
    await page.getByLabel('XLSX (classeur Excel)').check();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Télécharger' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/\.xlsx$/);
    const cells = await xlsxAsCsvCells(await readFile((await download.path()) as string));
    expect(
      cells
        .slice(1)
        .map((r) => r[1])
        .sort(),
    ).toEqual(['Leroy', 'Petit']);
    await expect.poll(() => page.locator('#export-text').textContent()).toContain('Export terminé : 2 lignes');

    await page.getByLabel('CSV exact, pour les scripts').check();
    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Télécharger' }).click(),
    ]);
    expect(cells).toEqual(parseCsv(await readFile((await csv.path()) as string, 'utf8')));
  });

  it('imports the file numbers of a CSV saved by Excel in French, chosen on their computer', async () => {
    await page.goto(`${base}/portal/dossiers?courseId=${ids.course}`);
    await expect(page.getByRole('heading', { name: 'Importer un fichier' }).isVisible()).resolves.toBe(true);
    // Windows-1252, as Excel writes "CSV (séparateur : point-virgule)": "é" and "É" are one byte each.
    const text = 'SIRET;Numéro de dossier\r\n732 829 320 00074;OPCO-SANTÉ-2026-17\r\n';
    const buffer = Buffer.from([...text].map((c) => (c === 'é' ? 0xe9 : c === 'É' ? 0xc9 : c.charCodeAt(0))));
    await page.getByLabel('Fichier CSV').setInputFiles({ name: 'numeros.csv', mimeType: 'text/csv', buffer });
    await page.getByRole('button', { name: 'Importer' }).click();
    // The answer is a new page: wait for its notice (click() returns once the navigation has started).
    await page.getByText('Import terminé : 1 numéro(s) enregistré(s), 0 inchangé(s).').waitFor();
    const stored = await ctx.app.db
      .selectFrom('fund_file_numbers')
      .select(['company_siret', 'file_number', 'set_by_username'])
      .where('fund_slug', '=', 'opco-sante')
      .execute();
    expect(stored).toEqual([
      { company_siret: '73282932000074', file_number: 'OPCO-SANTÉ-2026-17', set_by_username: 'claire@opco-sante.test' },
    ]);
  });

  it('sees each download in the journal, signs out, and loses access', async () => {
    await page
      .getByRole('navigation', { name: 'Portail' })
      .getByRole('link', { name: 'Journal des téléchargements' })
      .click();
    // The downloads table (the journal also lists security events in a second table).
    const journal = (await page.getByRole('table', { name: /^Téléchargements/ }).textContent()) ?? '';
    expect(journal.match(/claire@opco-sante\.test/g)?.length).toBe(3);
    await page.getByRole('button', { name: 'Se déconnecter' }).click();
    await page.waitForURL(`${base}/portal/connexion`);
    await page.goto(`${base}/portal/exports`);
    await expect.poll(() => page.url()).toContain('/portal/connexion');
    expect(problems).toEqual([]);
  });
});
