import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { companyNameKey } from '../../src/file-numbers/rules.js';
import { pdfText } from '../certificates/helpers.js';
import { seedCourse, seedLearner, seedRegistration } from '../exports/seed.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { addToken, addUser, bearer, insertFund } from '../portal/helpers.js';

const REAL = '73282932000074';
const AGREE = '12345678200002';
let ctx: TestContext;
let courseId: string;
let token: string;
const ids: Record<string, string> = {};

async function certificateText(learnerId: string): Promise<string> {
  const records = await ctx.app.certificates.listForLearner(learnerId, courseId);
  const valid = records.find((r) => r.state === 'valid');
  if (!valid) throw new Error('no valid certificate');
  return pdfText((await ctx.app.certificates.pdf(valid)).bytes).replace(/\s+/g, ' ');
}

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  await insertFund(db, 'akto', 'AKTO', 'Fafih');
  const reg = await seedRegistration(db);
  courseId = await seedCourse(db, 'course-v1:FUN+TNUM+2026_T1', 'Transition numérique des TPE-PME', 'Printemps');
  const learner = (family: string, companyName: string, companySiret: string) =>
    seedLearner(db, {
      registrationId: reg,
      courseId,
      fund: 'akto',
      idcc: null,
      familyName: family,
      givenName: 'Test',
      companyName,
      companySiret,
      registeredAt: new Date('2026-03-02T08:00:00Z'),
    });
  ids.real = await learner('Vrai', 'Hôtel du Parc', REAL);
  ids.squatter = await learner('Usurpateur', 'Arnaque Conseil', REAL);
  ids.same1 = await learner('Un', 'Café de la Gare', AGREE);
  ids.same2 = await learner('Deux', '  CAFE  de la gare ', AGREE);
  for (const id of Object.values(ids)) {
    await ctx.app.certificates.issue({ learnerId: id, courseId, kind: 'operator', by: null, reason: 'test' });
  }
  token = await addToken(db, await addUser(db, 'staff@akto.test', 'fund_staff', 'akto'));
});
afterAll(() => ctx.close());

function api(method: 'GET' | 'PUT', url: string, payload?: Record<string, unknown>) {
  return ctx.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });
}

describe('a company’s identity cannot be squatted', () => {
  it('normalises names for comparison only (case, accents, spaces, punctuation)', () => {
    expect(companyNameKey('  CAFE  de la gare ')).toBe(companyNameKey('Café de la Gare'));
    expect(companyNameKey('Hôtel du Parc')).not.toBe(companyNameKey('Arnaque Conseil'));
  });

  it('fund staff see every name declared for a SIRET, with counts, and a conflict flag', async () => {
    const res = await api('GET', `/api/v1/file-numbers?courseId=${courseId}`);
    expect(res.statusCode).toBe(200);
    const companies = res.json().companies as Array<Record<string, unknown>>;
    const real = companies.find((c) => c.siret === REAL);
    expect(real?.conflict).toBe(true);
    expect(real?.names).toEqual(
      expect.arrayContaining([
        { name: 'Hôtel du Parc', learners: 1, confirmed: false },
        { name: 'Arnaque Conseil', learners: 1, confirmed: false },
      ]),
    );
    const agree = companies.find((c) => c.siret === AGREE);
    // « Café de la Gare » and «   CAFE  de la gare  » are one name after normalisation.
    expect(agree?.conflict).toBe(false);
    expect(agree?.names).toEqual([{ name: expect.any(String), learners: 2, confirmed: false }]);
  });

  it('a number set for a SIRET with conflicting names applies to nobody until the fund confirms a name', async () => {
    const set = await api('PUT', `/api/v1/file-numbers/akto/${courseId}/${REAL}`, { fileNumber: 'AK-2026-001' });
    expect(set.statusCode).toBe(200);
    for (const who of ['real', 'squatter'] as const) {
      const text = await certificateText(ids[who] as string);
      expect(text).not.toContain('AK-2026-001');
      expect(text).toContain('N° de dossier AKTO Fafih à confirmer');
    }
    // Each learner's certificate keeps the company name they declared themselves.
    expect(await certificateText(ids.squatter as string)).toContain('Arnaque Conseil');
    expect(await certificateText(ids.real as string)).toContain('Hôtel du Parc');

    const confirm = await api('PUT', `/api/v1/file-numbers/akto/${courseId}/${REAL}/names`, { name: 'Hôtel du Parc' });
    expect(confirm.statusCode).toBe(200);
    expect(confirm.json().reissued.length).toBe(1);
    expect(await certificateText(ids.real as string)).toContain('AK-2026-001');
    const squatter = await certificateText(ids.squatter as string);
    expect(squatter).not.toContain('AK-2026-001');
    expect(squatter).toContain('N° de dossier AKTO Fafih à confirmer');
    const listed = (await api('GET', `/api/v1/file-numbers?courseId=${courseId}`)).json().companies as Array<
      Record<string, unknown>
    >;
    expect(listed.find((c) => c.siret === REAL)?.names).toEqual(
      expect.arrayContaining([{ name: 'Hôtel du Parc', learners: 1, confirmed: true }]),
    );
    const audit = await ctx.app.db
      .selectFrom('audit_log')
      .select('details')
      .where('action', '=', 'company_name.confirmed')
      .execute();
    expect(audit).toHaveLength(1);
  });

  it('names that agree after normalisation need no confirmation', async () => {
    await api('PUT', `/api/v1/file-numbers/akto/${courseId}/${AGREE}`, { fileNumber: 'AK-2026-002' });
    expect(await certificateText(ids.same1 as string)).toContain('AK-2026-002');
    expect(await certificateText(ids.same2 as string)).toContain('AK-2026-002');
  });

  it('fund staff cannot confirm a name for another fund', async () => {
    const res = await api('PUT', `/api/v1/file-numbers/atlas/${courseId}/${REAL}/names`, { name: 'Arnaque Conseil' });
    expect(res.statusCode).toBe(403);
  });
});
