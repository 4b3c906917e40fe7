import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNNEL_STAGES, type FunnelCounts, isNested } from '../../src/exports/rules.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { type Browser, bearer, get, seedStaff } from '../portal/helpers.js';
import { certify, moduleIds, progress, seedCourse, seedLearner, seedRegistration, trackTime } from './seed.js';

/**
 * The nested funnel and the completion forecast on crafted data: a learner who finished the sector
 * trunk before the common trunk, and enough AKTO learners over six weekly cohorts for a forecast.
 */
let ctx: TestContext;
let aktoToken: string;
let atlasToken: string;
let opsToken: string;
let akto: Browser;
const ids: Record<string, string> = {};
let certifiedInOrder = 0;
const DAY = 86_400_000;
// Cohorts in the recent past, so that the forecast date lies ahead.
const NOW = Date.now();
const weekStart = (w: number) => {
  const d = new Date(NOW - w * 7 * DAY);
  d.setUTCHours(9, 0, 0, 0);
  return d.getTime();
};

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  const course = await seedCourse(db, 'course-v1:FUN+TNUM+2026_T3', 'Transition numérique des TPE-PME', 'Session test');
  const modules = await moduleIds(db, 'akto');
  const all = [...modules.common, ...modules.sector];
  let sequence = 1;

  // The crafted learner: every sector module done and a certificate, but half the common trunk.
  ids.early = await seedLearner(db, {
    registrationId: reg,
    courseId: course,
    fund: 'akto',
    idcc: '1979',
    familyName: 'Pressé',
    givenName: 'Paul',
    registeredAt: new Date(weekStart(6)),
  });
  for (const m of [...modules.sector, ...modules.common.slice(0, 2)]) {
    await progress(db, ids.early, course, m, {
      startedAt: new Date(weekStart(6) + DAY),
      completedAt: new Date(weekStart(6) + 2 * DAY),
    });
  }
  await trackTime(db, ids.early, course, [
    {
      moduleId: modules.sector[0] as string,
      start: new Date(weekStart(6) + DAY),
      end: new Date(weekStart(6) + DAY + 3_600_000),
      beats: 100,
    },
  ]);
  await certify(db, ids.early, course, {
    number: `EMG-2026-9${String(sequence++).padStart(5, '0')}`,
    fund: 'akto',
    fileNumber: null,
    issuedAt: new Date(weekStart(6) + 3 * DAY),
  });

  // Six weekly cohorts of seven AKTO learners (42): in each, the first three finish everything in order
  // (certificate some days after registration, if that day is past), two have started, two only registered.
  for (let w = 6; w >= 1; w--) {
    for (let i = 0; i < 7; i++) {
      const registeredAt = weekStart(w) + i * 3_600_000;
      const id = await seedLearner(db, {
        registrationId: reg,
        courseId: course,
        fund: 'akto',
        idcc: i % 2 === 0 ? '1979' : '1501',
        familyName: `Cohorte${w}`,
        givenName: `N${i}`,
        registeredAt: new Date(registeredAt),
      });
      if (i >= 5) continue;
      const done = i < 3;
      const certifiedAt = registeredAt + (4 + i * 3) * DAY;
      const modulesToDo = done ? all : all.slice(0, 1);
      for (const m of modulesToDo) {
        await progress(db, id, course, m, {
          startedAt: new Date(registeredAt + DAY),
          completedAt: done ? new Date(registeredAt + 2 * DAY) : null,
        });
      }
      await trackTime(db, id, course, [
        {
          moduleId: all[0] as string,
          start: new Date(registeredAt + DAY),
          end: new Date(registeredAt + DAY + 1_800_000),
          beats: 60,
        },
      ]);
      if (done && certifiedAt < NOW) {
        certifiedInOrder++;
        await certify(db, id, course, {
          number: `EMG-2026-9${String(sequence++).padStart(5, '0')}`,
          fund: 'akto',
          fileNumber: null,
          issuedAt: new Date(certifiedAt),
        });
      }
    }
  }
  // Another fund's learner, certified: never in AKTO's figures.
  ids.atlas = await seedLearner(db, {
    registrationId: reg,
    courseId: course,
    fund: 'atlas',
    idcc: '2120',
    familyName: 'Secretatlas',
    givenName: 'Invisible',
    registeredAt: new Date(weekStart(3)),
  });
  await certify(db, ids.atlas, course, {
    number: 'EMG-2026-999999',
    fund: 'atlas',
    fileNumber: null,
    issuedAt: new Date(weekStart(3) + 5 * DAY),
  });
  ({ aktoToken, atlasToken, opsToken, akto } = await seedStaff(db, ctx.app));
});
afterAll(() => ctx.close());

const api = (token: string | null, url: string) =>
  ctx.app.inject({ method: 'GET', url, headers: token ? bearer(token) : {} });

describe('nested funnel on crafted data', () => {
  it('keeps a learner who finished the sector trunk first out of the later stages, and says so', async () => {
    const body = (await api(aktoToken, '/api/v1/funnel')).json();
    // 43 registered; started: 6 weeks × 5 + the early learner; in-order trunks and certificates: 6 × 3.
    expect(body.total.registered).toBe(43);
    expect(body.total.started).toBe(31);
    expect(body.total.commonDone).toBe(18);
    expect(body.total.sectorDone).toBe(18);
    expect(body.total.certified).toBe(certifiedInOrder);
    expect(certifiedInOrder).toBeGreaterThan(10);
    expect(body.outOfOrder).toBe(1);
    const groups: Array<{ counts: FunnelCounts }> = [body, ...body.byFund, ...body.byBranch, ...body.byWeek].map(
      (g: { counts?: FunnelCounts; total?: FunnelCounts }) => ({ counts: (g.counts ?? g.total) as FunnelCounts }),
    );
    for (const g of groups) expect(isNested(g.counts), JSON.stringify(g.counts)).toBe(true);
    const earlyWeek = body.byWeek[0];
    expect(earlyWeek.outOfOrder).toBe(1);
  });

  it('draws the chart from the same figures as its table, and explains the out-of-order learner', async () => {
    const res = await get(ctx.app, akto, '/portal/entonnoir');
    expect(res.statusCode).toBe(200);
    const { document } = parseHTML(res.body);
    const desc = document.getElementById('entonnoir-d')?.textContent ?? '';
    const table = document.getElementById('table-entonnoir') as HTMLTableElement;
    for (const tr of table.querySelectorAll('tbody tr')) {
      const label = tr.querySelector('th')?.textContent ?? '';
      const count = tr.querySelector('td')?.textContent ?? '';
      expect(desc).toContain(`${label} : ${count} (`);
    }
    const shares = [...table.querySelectorAll('tbody tr')].map((tr) => tr.querySelectorAll('td')[2]?.textContent);
    for (const s of shares.slice(1)) expect(Number.parseInt(s ?? '0', 10)).toBeLessThanOrEqual(100);
    expect(document.getElementById('hors-ordre')?.textContent).toContain(
      '1 apprenant a franchi une étape dans le désordre',
    );
  });
});

describe('completion forecast', () => {
  it('answers per cohort and branch with a band and the number of learners it rests on', async () => {
    const res = await api(aktoToken, '/api/v1/funnel/forecast');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.scope).toEqual({ fund: 'akto' });
    expect(body.by).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(body.minLearners).toBe(30);
    const scope = body.groups[0];
    expect(scope).toMatchObject({ level: 'scope', fund: 'akto', learners: 43, sufficient: true, message: null });
    expect(scope.certificates).toBeGreaterThanOrEqual(5);
    expect(scope.curve.length).toBeGreaterThan(7);
    expect(scope.cohorts).toHaveLength(6);
    for (const c of scope.cohorts) {
      expect(c.learners).toBe(c.monday === scope.cohorts[0].monday ? 8 : 7);
      expect(c.lower).toBeLessThanOrEqual(c.share);
      expect(c.share).toBeLessThanOrEqual(c.upper);
      expect(c.share).toBeGreaterThanOrEqual(c.certifiedNow / c.learners - 1e-9);
    }
    // Branches hold about twenty learners each: too little data, said plainly.
    const branches = body.groups.filter((g: { level: string }) => g.level === 'branch');
    expect(branches.map((b: { idcc: string }) => b.idcc).sort()).toEqual(['1501', '1979']);
    for (const b of branches) {
      expect(b.sufficient).toBe(false);
      expect(b.message).toMatch(/^Trop peu de données pour prévoir : il faut au moins 30 apprenants inscrits/);
      expect(b.cohorts.every((c: { share: number | null }) => c.share === null)).toBe(true);
    }
    expect(res.body).not.toContain('Secretatlas');
  });

  it('takes a date, refuses a wrong one, and keeps each fund to its own learners', async () => {
    const past = (await api(aktoToken, '/api/v1/funnel/forecast?by=2020-01-01')).json();
    expect(past.groups[0].cohorts.every((c: { share: number }) => c.share === 0)).toBe(true);
    expect((await api(aktoToken, '/api/v1/funnel/forecast?by=2026-02-30')).statusCode).toBe(400);
    expect((await api(aktoToken, '/api/v1/funnel/forecast?by=demain')).statusCode).toBe(400);
    expect((await api(aktoToken, '/api/v1/funnel/forecast?fund=atlas')).statusCode).toBe(403);
    expect((await api(null, '/api/v1/funnel/forecast')).statusCode).toBe(401);
    const atlas = (await api(atlasToken, '/api/v1/funnel/forecast')).json();
    expect(atlas.groups[0]).toMatchObject({ fund: 'atlas', learners: 1, sufficient: false });
    const ops = (await api(opsToken, '/api/v1/funnel/forecast')).json();
    expect(
      ops.groups.filter((g: { level: string }) => g.level === 'fund').map((g: { fund: string }) => g.fund),
    ).toEqual(['akto', 'atlas']);
    const doc = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const op = doc.paths['/api/v1/funnel/forecast'].get;
    expect(op.security).toEqual([{ bearerAuth: [] }]);
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['by', 'fund', 'branch']),
    );
  });

  it('shows the forecast on the portal as plots with tables', async () => {
    const res = await get(ctx.app, akto, '/portal/entonnoir');
    const { document } = parseHTML(res.body);
    expect(document.getElementById('prevision')?.textContent).toMatch(
      /^Prévision : combien auront leur attestation d’ici le \d{2}\/\d{2}\/\d{4} \?$/,
    );
    const curve = document.querySelector('svg[aria-labelledby="prev-0-courbe-t prev-0-courbe-d"]');
    expect(curve?.getAttribute('role')).toBe('img');
    expect(document.getElementById('prev-0-courbe-d')?.textContent).toContain('après 7 jours');
    const cohorts = document.getElementById('prev-0-cohortes-table') as HTMLTableElement;
    expect(cohorts.querySelectorAll('tbody tr')).toHaveLength(6);
    expect(document.querySelector('svg[aria-labelledby="prev-0-cohortes-t prev-0-cohortes-d"]')).not.toBeNull();
    expect(res.body).toContain('Trop peu de données pour prévoir');
    expect(res.body).not.toContain('Secretatlas');
    const bad = await get(ctx.app, akto, '/portal/entonnoir?by=2026-02-30');
    expect(bad.statusCode).toBe(400);
    expect(parseHTML(bad.body).document.body.textContent).toContain(
      'La date de la prévision n’est pas une date valable.',
    );
  });
});

describe('chart colours', () => {
  it('keep 3:1 against the page and never carry meaning alone', async () => {
    const { STAGE_COLOURS, contrastRatio, INK } = await import('../../src/exports/charts.js');
    for (const s of FUNNEL_STAGES) expect(contrastRatio(STAGE_COLOURS[s], '#ffffff'), s).toBeGreaterThanOrEqual(3);
    expect(contrastRatio(INK, '#ffffff')).toBeGreaterThanOrEqual(4.5);
    const res = await get(ctx.app, akto, '/portal/entonnoir');
    const { document } = parseHTML(res.body);
    const branchChart = document.querySelector('svg[aria-labelledby="branches-t branches-d"]');
    const labels = [...(branchChart?.querySelectorAll('text') ?? [])].map((t) => t.textContent ?? '');
    expect(labels.some((t) => /^inscrits \d/.test(t))).toBe(true);
    expect(labels.some((t) => /^attestations \d/.test(t))).toBe(true);
  });
});
