import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { LOGIN_LIMITS, loginThrottled } from '../../src/portal/rules.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { addUser, insertFund, openLogin, PASSWORD, postLogin } from '../portal/helpers.js';

const onPglite = inject('testDb').kind === 'pglite';

let ctx: TestContext;
let second: App;
beforeAll(async () => {
  ctx = await createTestApp();
  // A second instance on the same database: counters must hold across instances.
  second = await buildApp({ config: ctx.config, database: ctx.database, closeDatabase: false });
  await second.ready();
  await insertFund(ctx.app.db, 'akto', 'AKTO');
  await addUser(ctx.app.db, 'target@akto.test', 'fund_staff', 'akto');
});
afterAll(async () => {
  await second.close();
  await ctx.close();
});

describe('the throttle rule', () => {
  it('counts this attempt too: the 6th of one account from one address, the 31st of an address, the 51st of an account', () => {
    expect(LOGIN_LIMITS).toEqual({ accountIp: 5, ip: 30, account: 50 });
    expect(loginThrottled({ accountIp: 5, ip: 5, account: 5 })).toBe(false);
    expect(loginThrottled({ accountIp: 6, ip: 6, account: 6 })).toBe(true);
    expect(loginThrottled({ accountIp: 1, ip: 31, account: 1 })).toBe(true);
    expect(loginThrottled({ accountIp: 1, ip: 1, account: 51 })).toBe(true);
  });
});

describe('sign-in attempts are counted before the password is evaluated', () => {
  it('serially (PGlite and PostgreSQL): the attempt is in the shared counters as soon as it is made', async () => {
    const ip = '198.51.100.5';
    const { browser, csrf } = await openLogin(ctx.app, ip);
    expect((await postLogin(ctx.app, browser, csrf, 'target@akto.test', 'pas le bon mot de passe')).statusCode).toBe(
      401,
    );
    const rows = await ctx.app.db
      .selectFrom('portal_login_counters')
      .select(['key', 'count'])
      .where('key', 'like', `%${ip}%`)
      .orderBy('key')
      .execute();
    expect(rows.map((r) => r.count)).toEqual([1, 1]);
    // One more from the other instance: the same counters.
    const other = await openLogin(second, ip);
    await postLogin(second, other.browser, other.csrf, 'target@akto.test', 'pas le bon non plus');
    const after = await ctx.app.db
      .selectFrom('portal_login_counters')
      .select(['key', 'count'])
      .where('key', 'like', `%${ip}%`)
      .execute();
    expect(after.map((r) => r.count)).toEqual([2, 2]);
  });

  it.skipIf(onPglite)(
    'concurrently on PostgreSQL (several connections, two instances): 24 wrong passwords and the right one at once',
    async () => {
      const ip = '198.51.100.24';
      const forms = await Promise.all(Array.from({ length: 25 }, (_, i) => openLogin(i % 2 ? second : ctx.app, ip)));
      const answers = await Promise.all(
        forms.map(({ browser, csrf }, i) =>
          postLogin(i % 2 ? second : ctx.app, browser, csrf, 'target@akto.test', i === 24 ? PASSWORD : `faux ${i} mot`),
        ),
      );
      const evaluated = answers.filter((r) => r.statusCode !== 429);
      expect(evaluated.length).toBeLessThanOrEqual(LOGIN_LIMITS.accountIp);
      expect(answers.filter((r) => r.statusCode === 429).length).toBeGreaterThanOrEqual(20);
    },
    // Up to 25 scrypt hashes of 128 MiB on a shared machine: a generous bound, not a speed target.
    180_000,
  );

  it.skipIf(onPglite)(
    'concurrently on PostgreSQL: 45 usernames at once from one address pass a per-address limit of 30 at most',
    async () => {
      const ip = '198.51.100.45';
      const forms = await Promise.all(Array.from({ length: 45 }, (_, i) => openLogin(i % 2 ? second : ctx.app, ip)));
      const answers = await Promise.all(
        forms.map(({ browser, csrf }, i) =>
          postLogin(i % 2 ? second : ctx.app, browser, csrf, `user${i}@spray.test`, 'mot de passe deviné'),
        ),
      );
      expect(answers.filter((r) => r.statusCode !== 429).length).toBeLessThanOrEqual(LOGIN_LIMITS.ip);
      expect(answers.filter((r) => r.statusCode === 429).length).toBeGreaterThanOrEqual(15);
    },
    180_000,
  );

  it.runIf(onPglite)('PGlite has one connection: the concurrency tests run on PostgreSQL only', () => {
    console.info('login-throttle: concurrency tests skipped on PGlite (one connection); run with TEST_DATABASE_URL');
    expect(onPglite).toBe(true);
  });
});

describe('the sign-in form is also rate-limited per address by @fastify/rate-limit', () => {
  it('answers 429 past 60 posts a minute from one address, before any database work', async () => {
    const ip = '198.51.100.99';
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/portal/connexion',
        remoteAddress: ip,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
        payload: 'identifiant=x&mot_de_passe=y',
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.slice(0, 60).every((s) => s === 403)).toBe(true);
    expect(statuses[60]).toBe(429);
  });
});
