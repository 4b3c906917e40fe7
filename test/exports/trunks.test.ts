import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { bearer, seedStaff } from '../portal/helpers.js';
import { parseCsv } from './csv.js';
import { moduleIds, progress, seedCourse, seedLearner, seedRegistration, trackTime } from './seed.js';

/**
 * What a trunk holds comes from the catalog: a learner of a branch with a variant module does that
 * variant in place of the fund's default, and one who met both is never counted beyond the trunk.
 */
let ctx: TestContext;
let token: string;
const ids: Record<string, string> = {};

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  const course = await seedCourse(db, 'course-v1:FUN+TNUM+2026_T5', 'Transition numérique', 'Session V');
  const modules = await moduleIds(db, 'uniformation');
  const variant = await db
    .selectFrom('modules')
    .select(['id', 'theme_slug', 'position', 'branches'])
    .where('fund_slug', '=', 'uniformation')
    .where('branches', '!=', JSON.stringify([]) as never)
    .executeTakeFirstOrThrow();
  const branch = (variant.branches as string[])[0] as string;
  const replaced = (
    await db
      .selectFrom('modules')
      .select('id')
      .where('fund_slug', '=', 'uniformation')
      .where('theme_slug', '=', variant.theme_slug)
      .where('position', '=', variant.position)
      .where('branches', '=', JSON.stringify([]) as never)
      .executeTakeFirstOrThrow()
  ).id;
  const learner = async (name: string, done: string[]) => {
    const id = await seedLearner(db, {
      registrationId: reg,
      courseId: course,
      fund: 'uniformation',
      idcc: branch,
      familyName: name,
      givenName: 'Test',
      registeredAt: new Date(Date.UTC(2026, 9, 5, 8)),
    });
    for (const m of done) {
      await progress(db, id, course, m, {
        startedAt: new Date(Date.UTC(2026, 9, 6, 8)),
        completedAt: new Date(Date.UTC(2026, 9, 7, 8)),
      });
    }
    await trackTime(db, id, course, [
      {
        moduleId: done[0] as string,
        start: new Date(Date.UTC(2026, 9, 6, 8)),
        end: new Date(Date.UTC(2026, 9, 6, 9)),
        beats: 100,
      },
    ]);
    ids[name] = id;
  };
  // The branch's path: the variant in place of the default of its theme.
  await learner('Variante', [...modules.common, ...modules.sector.filter((m) => m !== replaced), variant.id]);
  // Both the variant and the default it replaces, but another sector module missing.
  const missing = modules.sector.find((m) => m !== replaced) as string;
  await learner('Lesdeux', [...modules.common, ...modules.sector.filter((m) => m !== missing), variant.id]);
  token = (await seedStaff(db, ctx.app)).opsToken;
});
afterAll(() => ctx.close());

describe('trunks from the catalog', () => {
  it('counts a branch variant in place of the default, and never more modules than a trunk holds', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/exports/summary?format=csv',
      headers: bearer(token),
    });
    const rows = parseCsv(res.body);
    const header = rows[0] as string[];
    const of = (name: string) => {
      const row = rows.find((r) => r[header.indexOf('Nom')] === name) as string[];
      return [
        row[header.indexOf('Modules terminés')],
        row[header.indexOf('Modules prévus')],
        row[header.indexOf('Statut')],
      ];
    };
    const planned = of('Variante')[1];
    expect(of('Variante')).toEqual([planned, planned, 'terminé']);
    // The pair of one theme and a theme left out: not done, and never more than what is planned.
    expect(of('Lesdeux')).toEqual([String(Number(planned) - 1), planned, 'en cours']);
    const funnel = (await ctx.app.inject({ method: 'GET', url: '/api/v1/funnel', headers: bearer(token) })).json();
    expect(funnel.total).toMatchObject({ registered: 2, started: 2, commonDone: 2, sectorDone: 1, certified: 0 });
  });
});
