import { sql } from 'kysely';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUsersCommand } from '../../src/portal/cli.js';
import { seedCourse } from '../exports/seed.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import {
  addToken,
  addUser,
  type Browser,
  bearer,
  csrfOf,
  get,
  insertFund,
  openLogin,
  post,
  postLogin,
  signIn,
} from '../portal/helpers.js';

let ctx: TestContext;
let courseId: string;
let aktoToken: string;
let akto: Browser;
let ops: Browser;
beforeAll(async () => {
  ctx = await createTestApp();
  await insertFund(ctx.app.db, 'akto', 'AKTO');
  await insertFund(ctx.app.db, 'atlas', 'Atlas');
  courseId = await seedCourse(ctx.app.db, 'course-v1:FUN+TPE+2026', 'Transition numérique', 'TPE');
  const aktoId = await addUser(ctx.app.db, 'staff@akto.test', 'fund_staff', 'akto');
  await addUser(ctx.app.db, 'ops@fun.test', 'operator', null);
  aktoToken = await addToken(ctx.app.db, aktoId);
  akto = await signIn(ctx.app, 'staff@akto.test');
  ops = await signIn(ctx.app, 'ops@fun.test');
});
afterAll(() => ctx.close());

async function entries(action: string) {
  return ctx.app.db
    .selectFrom('audit_log')
    .select(['action', 'actor_username', 'actor_fund_slug', 'details', 'at'])
    .where('action', '=', action)
    .orderBy('at', 'desc')
    .execute();
}

async function cliAudit(): Promise<string> {
  let out = '';
  const code = await runUsersCommand(ctx.app.db, ['audit', '--limit', '200'], {
    out: (t) => {
      out += t;
    },
    err: () => undefined,
    readStdin: async () => '',
  });
  expect(code).toBe(0);
  return out;
}

describe('the audit log records security events', () => {
  it('a refused sign-in, with the username and the address', async () => {
    const { browser, csrf } = await openLogin(ctx.app, '192.0.2.200');
    expect((await postLogin(ctx.app, browser, csrf, 'Staff@Akto.test', 'pas le bon mot de passe')).statusCode).toBe(
      401,
    );
    const [refused] = await entries('signin.refused');
    expect(refused).toMatchObject({ actor_username: 'staff@akto.test', actor_fund_slug: 'akto' });
    expect(refused?.details).toMatchObject({ username: 'staff@akto.test', ip: '192.0.2.200', reason: 'invalid' });
  });

  it('a refusal for another fund (403), by token and by page', async () => {
    const api = await ctx.app.inject({
      method: 'GET',
      url: `/api/v1/file-numbers?fund=atlas&courseId=${courseId}`,
      headers: bearer(aktoToken),
    });
    expect(api.statusCode).toBe(403);
    const page = await get(ctx.app, akto, `/portal/dossiers?fund=atlas&courseId=${courseId}`);
    expect(page.statusCode).toBe(403);
    const denied = await entries('access.denied');
    expect(denied.length).toBeGreaterThanOrEqual(2);
    expect(denied.map((e) => e.details.path)).toEqual(
      expect.arrayContaining(['/api/v1/file-numbers', '/portal/dossiers']),
    );
    expect(denied[0]).toMatchObject({ actor_username: 'staff@akto.test', actor_fund_slug: 'akto' });
  });

  it('reads of the company list (API and page)', async () => {
    const api = await ctx.app.inject({
      method: 'GET',
      url: `/api/v1/file-numbers?courseId=${courseId}`,
      headers: bearer(aktoToken),
    });
    expect(api.statusCode).toBe(200);
    expect((await get(ctx.app, ops, `/portal/dossiers?fund=akto&courseId=${courseId}`)).statusCode).toBe(200);
    const reads = await entries('file_numbers.read');
    expect(reads.map((r) => r.actor_username).sort()).toEqual(['ops@fun.test', 'staff@akto.test']);
    expect(reads[0]?.details).toMatchObject({ fund: 'akto', courseId });
  });

  it('token creations', async () => {
    const csrf = await csrfOf(ctx.app, akto);
    expect((await post(ctx.app, akto, '/portal/jetons', { _csrf: csrf, nom: 'script mensuel' })).statusCode).toBe(200);
    const [created] = await entries('token.created');
    expect(created).toMatchObject({ actor_username: 'staff@akto.test' });
  });

  it('keeps sign-in failures as long as the download journal (nothing purges them after a day)', async () => {
    await ctx.app.db
      .updateTable('audit_log')
      .set({ at: sql<Date>`now() - interval '40 days'` })
      .where('action', '=', 'signin.refused')
      .execute();
    await signIn(ctx.app, 'ops@fun.test'); // sign-in housekeeping runs here
    expect((await entries('signin.refused')).length).toBe(1);
  });

  it('shows them in `users audit`', async () => {
    const out = await cliAudit();
    for (const action of ['signin.refused', 'access.denied', 'file_numbers.read', 'token.created']) {
      expect(out).toContain(action);
    }
    expect(out).toContain('192.0.2.200');
  });

  it('shows them on the portal journal: all of them to operators, their fund’s to fund staff', async () => {
    const opsPage = parseHTML((await get(ctx.app, ops, '/portal/journal')).body).document;
    const opsTable = opsPage.querySelector('#securite');
    expect(opsTable).not.toBeNull();
    const opsText = opsTable?.textContent ?? '';
    expect(opsText).toContain('Connexion refusée');
    expect(opsText).toContain('192.0.2.200');
    expect(opsText).toContain('Accès refusé');
    expect(opsText).toContain('Liste des entreprises consultée');
    expect(opsText).toContain('Jeton créé');
    const staffText = parseHTML((await get(ctx.app, akto, '/portal/journal')).body).document.querySelector(
      '#securite',
    )?.textContent;
    expect(staffText).toContain('Accès refusé');
    expect(staffText).not.toContain('ops@fun.test');
  });
});
