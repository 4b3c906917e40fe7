import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/portal/rules.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { attr, dom, text } from '../helpers/dom.js';
import {
  addUser,
  type Browser,
  cookieHeader,
  csrfOf,
  get,
  hiddenField,
  insertFund,
  openLogin,
  PASSWORD,
  post,
  postLogin,
  signIn,
} from './helpers.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestApp();
  await insertFund(ctx.app.db, 'akto', 'AKTO', 'Fafih');
  await insertFund(ctx.app.db, 'atlas', 'Atlas', 'Opcabaia');
  await addUser(ctx.app.db, 'staff@akto.test', 'fund_staff', 'akto');
  await addUser(ctx.app.db, 'staff@atlas.test', 'fund_staff', 'atlas');
  await addUser(ctx.app.db, 'ops@fun.test', 'operator', null);
});
afterAll(() => ctx.close());

const SESSION = 'emargement_portal';
const LOGIN = 'emargement_login';

function setCookieHeaders(res: { headers: Record<string, unknown> }): string[] {
  const h = res.headers['set-cookie'];
  return Array.isArray(h) ? (h as string[]) : h ? [String(h)] : [];
}

describe('sign-in page', () => {
  it('sets a pre-session cookie and a CSRF token, with the portal security headers', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/portal/connexion' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Connexion au portail des fonds');
    expect(attr(dom(res.body), 'html', 'lang')).toBe('fr');
    const cookie = setCookieHeaders(res).find((c) => c.startsWith(`${LOGIN}=`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Path=\/portal/);
    expect(cookie).not.toMatch(/Secure/); // plain http outside production
    expect(hiddenField(res.body, '_csrf')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('opens a session with an HttpOnly, SameSite=Lax cookie stored only hashed', async () => {
    const { browser, csrf } = await openLogin(ctx.app);
    const res = await postLogin(ctx.app, browser, csrf, 'Staff@Akto.test', PASSWORD);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/portal/');
    const cookie = setCookieHeaders(res).find((c) => c.startsWith(`${SESSION}=`)) as string;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Path=\/portal/);
    const value = browser.cookies[SESSION] as string;
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await ctx.app.db.selectFrom('portal_sessions').select('id_hash').execute();
    expect(rows.map((r) => r.id_hash)).toContain(sha256(value));
    expect(rows.map((r) => r.id_hash)).not.toContain(value);
    const page = await get(ctx.app, browser, '/portal/jetons');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Nom staff@akto.test');
  });

  it('refuses a wrong password, an unknown account and a disabled one with the same message', async () => {
    const id = await addUser(ctx.app.db, 'gone@akto.test', 'fund_staff', 'akto');
    await ctx.app.db.updateTable('portal_users').set({ disabled_at: new Date() }).where('id', '=', id).execute();
    for (const [user, password] of [
      ['staff@akto.test', 'pas le bon mot de passe'],
      ['nobody@akto.test', PASSWORD],
      ['gone@akto.test', PASSWORD],
    ] as const) {
      const { browser, csrf } = await openLogin(ctx.app, '198.51.100.1');
      const res = await postLogin(ctx.app, browser, csrf, user, password);
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain('Identifiant ou mot de passe incorrect.');
      expect(browser.cookies[SESSION]).toBeUndefined();
    }
  });

  it('refuses a sign-in post without the CSRF token of its pre-session cookie (login CSRF)', async () => {
    const { browser, csrf } = await openLogin(ctx.app, '198.51.100.2');
    const other = await openLogin(ctx.app, '198.51.100.2');
    for (const [cookies, token] of [
      [browser.cookies, ''],
      [browser.cookies, other.csrf], // a token minted for another browser
      [{}, csrf], // no pre-session cookie at all
    ] as const) {
      const b: Browser = { cookies: { ...cookies }, ip: browser.ip };
      const res = await postLogin(ctx.app, b, token, 'staff@akto.test', PASSWORD);
      expect(res.statusCode).toBe(403);
      expect(b.cookies[SESSION]).toBeUndefined();
    }
    const crossSite = await ctx.app.inject({
      method: 'POST',
      url: '/portal/connexion',
      headers: {
        cookie: cookieHeader(browser.cookies),
        'sec-fetch-site': 'cross-site',
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({ identifiant: 'staff@akto.test', mot_de_passe: PASSWORD, _csrf: csrf }).toString(),
    });
    expect(crossSite.statusCode).toBe(403);
  });

  it('gives a new session id at every sign-in (a planted cookie is worthless)', async () => {
    const first = await signIn(ctx.app, 'staff@akto.test');
    const planted = first.cookies[SESSION] as string;
    const { browser, csrf } = await openLogin(ctx.app);
    browser.cookies[SESSION] = planted;
    await postLogin(ctx.app, browser, csrf, 'staff@akto.test', PASSWORD);
    expect(browser.cookies[SESSION]).not.toBe(planted);
    // The old session is closed: a cookie value someone else knew no longer opens anything.
    expect((await get(ctx.app, { cookies: { [SESSION]: planted }, ip: browser.ip }, '/portal/jetons')).statusCode).toBe(
      303,
    );
  });

  it('only redirects to portal pages after sign-in', async () => {
    const { browser, csrf } = await openLogin(ctx.app);
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/portal/connexion',
      remoteAddress: browser.ip,
      headers: { cookie: cookieHeader(browser.cookies), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        identifiant: 'staff@akto.test',
        mot_de_passe: PASSWORD,
        _csrf: csrf,
        suite: 'https://evil.example/',
      }).toString(),
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/portal/');
  });
});

describe('pages need a session', () => {
  it('redirects to the sign-in page, remembering where the person was going', async () => {
    const res = await get(ctx.app, null, '/portal/jetons');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/portal/connexion?suite=%2Fportal%2Fjetons');
    const forged = await get(ctx.app, { cookies: { [SESSION]: 'x'.repeat(43) }, ip: '203.0.113.10' }, '/portal/jetons');
    expect(forged.statusCode).toBe(303);
  });

  it('ends a session idle for more than 2 hours, and one past its 12 hours', async () => {
    const idle = await signIn(ctx.app, 'staff@akto.test');
    const idleHash = sha256(idle.cookies[SESSION] as string);
    await ctx.app.db
      .updateTable('portal_sessions')
      .set({ last_seen_at: sql<Date>`now() - interval '3 hours'` })
      .where('id_hash', '=', idleHash)
      .execute();
    expect((await get(ctx.app, idle, '/portal/jetons')).statusCode).toBe(303);
    expect(
      await ctx.app.db.selectFrom('portal_sessions').where('id_hash', '=', idleHash).selectAll().execute(),
    ).toEqual([]);

    const old = await signIn(ctx.app, 'staff@akto.test');
    await ctx.app.db
      .updateTable('portal_sessions')
      .set({ expires_at: sql<Date>`now() - interval '1 second'` })
      .where('id_hash', '=', sha256(old.cookies[SESSION] as string))
      .execute();
    expect((await get(ctx.app, old, '/portal/jetons')).statusCode).toBe(303);
  });
});

describe('sign-out', () => {
  it('needs the CSRF token, then closes the session on the server', async () => {
    const browser = await signIn(ctx.app, 'staff@akto.test');
    const value = browser.cookies[SESSION] as string;
    const forged = await post(ctx.app, browser, '/portal/deconnexion', {});
    expect(forged.statusCode).toBe(403);
    expect((await get(ctx.app, browser, '/portal/jetons')).statusCode).toBe(200);

    const csrf = await csrfOf(ctx.app, browser);
    const res = await post(ctx.app, browser, '/portal/deconnexion', { _csrf: csrf });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/portal/connexion');
    expect(browser.cookies[SESSION]).toBeUndefined();
    // Replaying the old cookie does not work: the session is gone from the database.
    expect((await get(ctx.app, { cookies: { [SESSION]: value }, ip: browser.ip }, '/portal/jetons')).statusCode).toBe(
      303,
    );
  });

  it('refuses a token of another session', async () => {
    const a = await signIn(ctx.app, 'staff@akto.test');
    const b = await signIn(ctx.app, 'staff@akto.test');
    const tokenOfA = await csrfOf(ctx.app, a);
    expect((await post(ctx.app, b, '/portal/deconnexion', { _csrf: tokenOfA })).statusCode).toBe(403);
  });
});

describe('sign-in throttling (per account and address, in the database)', () => {
  it('blocks the 6th try of one account from one address, even with the right password', async () => {
    await addUser(ctx.app.db, 'target@akto.test', 'fund_staff', 'akto');
    const ip = '192.0.2.50';
    for (let i = 0; i < 5; i++) {
      const { browser, csrf } = await openLogin(ctx.app, ip);
      expect(
        (await postLogin(ctx.app, browser, csrf, 'target@akto.test', `mauvais ${i} mot de passe`)).statusCode,
      ).toBe(401);
    }
    const { browser, csrf } = await openLogin(ctx.app, ip);
    const blocked = await postLogin(ctx.app, browser, csrf, 'target@akto.test', PASSWORD);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBeDefined();
    expect(blocked.body).toContain('Trop d’essais de connexion');
    expect(browser.cookies[SESSION]).toBeUndefined();

    // The same account from another address, and another account from this address, still sign in.
    await expect(signIn(ctx.app, 'target@akto.test', PASSWORD, '192.0.2.51')).resolves.toBeDefined();
    await expect(signIn(ctx.app, 'staff@akto.test', PASSWORD, ip)).resolves.toBeDefined();

    // Counters live in the database, so another instance on the same database sees them too.
    const other = await createTestAppOnSameDb();
    try {
      const second = await openLogin(other, ip);
      expect((await postLogin(other, second.browser, second.csrf, 'target@akto.test', PASSWORD)).statusCode).toBe(429);
    } finally {
      await other.close();
    }
  });

  it('blocks an address that tries many accounts (password spraying)', async () => {
    const ip = '192.0.2.77';
    // 30 attempts already counted from this address (other accounts) in the current window.
    await ctx.app.db
      .insertInto('portal_login_counters')
      .values({ key: `ip ${ip}`, count: 30 })
      .execute();
    const { browser, csrf } = await openLogin(ctx.app, ip);
    expect((await postLogin(ctx.app, browser, csrf, 'ops@fun.test', PASSWORD)).statusCode).toBe(429);
  });

  it('forgets an account’s failures from an address once it signs in there', async () => {
    const ip = '192.0.2.60';
    for (let i = 0; i < 4; i++) {
      const { browser, csrf } = await openLogin(ctx.app, ip);
      await postLogin(ctx.app, browser, csrf, 'staff@atlas.test', 'pas le bon mot de passe');
    }
    await signIn(ctx.app, 'staff@atlas.test', PASSWORD, ip);
    for (let i = 0; i < 4; i++) {
      const { browser, csrf } = await openLogin(ctx.app, ip);
      expect((await postLogin(ctx.app, browser, csrf, 'staff@atlas.test', 'pas le bon mot de passe')).statusCode).toBe(
        401,
      );
    }
    await expect(signIn(ctx.app, 'staff@atlas.test', PASSWORD, ip)).resolves.toBeDefined();
  });
});

async function createTestAppOnSameDb() {
  const { buildApp } = await import('../../src/app.js');
  const app = await buildApp({ config: ctx.config, database: ctx.database, closeDatabase: false });
  await app.ready();
  return app;
}

describe('passwords', () => {
  it('makes a provisional password be changed before anything else', async () => {
    const { createUser } = await import('../../src/portal/service.js');
    const { generatedPassword } = await createUser(ctx.app.db, {
      username: 'new@akto.test',
      displayName: 'Nouvelle',
      role: 'fund_staff',
      fundSlug: 'akto',
    });
    const { browser, csrf } = await openLogin(ctx.app);
    const res = await postLogin(ctx.app, browser, csrf, 'new@akto.test', generatedPassword as string);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/portal/mot-de-passe');
    const elsewhere = await get(ctx.app, browser, '/portal/jetons');
    expect(elsewhere.statusCode).toBe(303);
    expect(elsewhere.headers.location).toBe('/portal/mot-de-passe');

    const form = await get(ctx.app, browser, '/portal/mot-de-passe');
    expect(form.body).toContain('Votre mot de passe est provisoire');
    const token = hiddenField(form.body, '_csrf');
    const mismatch = await post(ctx.app, browser, '/portal/mot-de-passe', {
      actuel: generatedPassword as string,
      nouveau: 'un tout nouveau mot de passe',
      confirmation: 'un autre mot de passe',
      _csrf: token,
    });
    expect(mismatch.statusCode).toBe(400);
    const weak = await post(ctx.app, browser, '/portal/mot-de-passe', {
      actuel: generatedPassword as string,
      nouveau: 'court',
      confirmation: 'court',
      _csrf: token,
    });
    expect(weak.statusCode).toBe(400);
    expect(weak.body).toContain('au moins 12 caractères');
    const noCsrf = await post(ctx.app, browser, '/portal/mot-de-passe', {
      actuel: generatedPassword as string,
      nouveau: 'un tout nouveau mot de passe',
      confirmation: 'un tout nouveau mot de passe',
    });
    expect(noCsrf.statusCode).toBe(403);
    const ok = await post(ctx.app, browser, '/portal/mot-de-passe', {
      actuel: generatedPassword as string,
      nouveau: 'un tout nouveau mot de passe',
      confirmation: 'un tout nouveau mot de passe',
      _csrf: token,
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('Votre mot de passe a été changé');
    expect((await get(ctx.app, browser, '/portal/jetons')).statusCode).toBe(200);
    await expect(signIn(ctx.app, 'new@akto.test', 'un tout nouveau mot de passe')).resolves.toBeDefined();
  });

  it('lets an operator reset a password, which signs the person out everywhere', async () => {
    await addUser(ctx.app.db, 'forgetful@atlas.test', 'fund_staff', 'atlas');
    const target = await signIn(ctx.app, 'forgetful@atlas.test');
    const targetId = (
      await ctx.app.db
        .selectFrom('portal_users')
        .select('id')
        .where('username', '=', 'forgetful@atlas.test')
        .executeTakeFirstOrThrow()
    ).id;

    const staff = await signIn(ctx.app, 'staff@akto.test');
    expect((await get(ctx.app, staff, '/portal/comptes')).statusCode).toBe(403);
    const staffCsrf = await csrfOf(ctx.app, staff);
    expect(
      (await post(ctx.app, staff, `/portal/comptes/${targetId}/reinitialiser`, { _csrf: staffCsrf })).statusCode,
    ).toBe(403);

    const ops = await signIn(ctx.app, 'ops@fun.test');
    const list = await get(ctx.app, ops, '/portal/comptes');
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain('forgetful@atlas.test');
    expect((await post(ctx.app, ops, `/portal/comptes/${targetId}/reinitialiser`, {})).statusCode).toBe(403);
    const reset = await post(ctx.app, ops, `/portal/comptes/${targetId}/reinitialiser`, {
      _csrf: hiddenField(list.body, '_csrf'),
    });
    expect(reset.statusCode).toBe(200);
    const provisional = text(dom(reset.body), 'p.secret') as string;
    expect(provisional).toMatch(/^[A-Za-z0-9_-]{20}$/);

    expect((await get(ctx.app, target, '/portal/jetons')).statusCode).toBe(303);
    await expect(signIn(ctx.app, 'forgetful@atlas.test', PASSWORD)).rejects.toThrow('401');
    const again = await openLogin(ctx.app);
    const res = await postLogin(ctx.app, again.browser, again.csrf, 'forgetful@atlas.test', provisional);
    expect(res.headers.location).toBe('/portal/mot-de-passe');
    const audit = await ctx.app.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'account.password_reset')
      .execute();
    expect(audit.map((a) => a.actor_username)).toContain('ops@fun.test');
  });

  it('lets an operator suspend an account: its sessions end at once', async () => {
    await addUser(ctx.app.db, 'leaving@akto.test', 'fund_staff', 'akto');
    const target = await signIn(ctx.app, 'leaving@akto.test');
    const ops = await signIn(ctx.app, 'ops@fun.test');
    const list = await get(ctx.app, ops, '/portal/comptes');
    const id = (
      await ctx.app.db
        .selectFrom('portal_users')
        .select('id')
        .where('username', '=', 'leaving@akto.test')
        .executeTakeFirstOrThrow()
    ).id;
    const res = await post(ctx.app, ops, `/portal/comptes/${id}/suspendre`, { _csrf: hiddenField(list.body, '_csrf') });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('est suspendu');
    expect((await get(ctx.app, target, '/portal/jetons')).statusCode).toBe(303);
    await expect(signIn(ctx.app, 'leaving@akto.test')).rejects.toThrow('401');
    const back = await post(ctx.app, ops, `/portal/comptes/${id}/reactiver`, {
      _csrf: hiddenField(list.body, '_csrf'),
    });
    expect(back.statusCode).toBe(200);
    await expect(signIn(ctx.app, 'leaving@akto.test')).resolves.toBeDefined();
  });
});
