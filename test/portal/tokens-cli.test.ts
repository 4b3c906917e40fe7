import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUsersCommand } from '../../src/portal/cli.js';
import { sha256 } from '../../src/portal/rules.js';
import { resolveToken } from '../../src/portal/service.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { dom, text } from '../helpers/dom.js';
import { addUser, csrfOf, get, insertFund, PASSWORD, post, signIn } from './helpers.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestApp();
  await insertFund(ctx.app.db, 'akto', 'AKTO', 'Fafih');
  await insertFund(ctx.app.db, 'atlas', 'Atlas', 'Opcabaia');
  await addUser(ctx.app.db, 'staff@akto.test', 'fund_staff', 'akto');
  await addUser(ctx.app.db, 'staff@atlas.test', 'fund_staff', 'atlas');
});
afterAll(() => ctx.close());

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), readStdin: async () => `${PASSWORD}\n` },
  };
}

describe('personal API tokens in the portal', () => {
  it('shows a new token once, stores only its hash, and lists it by prefix', async () => {
    const browser = await signIn(ctx.app, 'staff@akto.test');
    const csrf = await csrfOf(ctx.app, browser);
    const res = await post(ctx.app, browser, '/portal/jetons', {
      nom: 'export mensuel',
      duree_jours: '30',
      _csrf: csrf,
    });
    expect(res.statusCode).toBe(200);
    const token = text(dom(res.body), '#nouveau-jeton') as string;
    expect(token).toMatch(/^emt_[A-Za-z0-9_-]{43}$/);
    const row = await ctx.app.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('name', '=', 'export mensuel')
      .executeTakeFirstOrThrow();
    expect(row.token_hash).toBe(sha256(token));
    expect(JSON.stringify(row)).not.toContain(token);
    expect(row.expires_at?.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);

    const again = await get(ctx.app, browser, '/portal/jetons');
    expect(again.body).not.toContain(token);
    expect(again.body).toContain(`${token.slice(0, 10)}…`);

    const principal = await resolveToken(ctx.app.db, token);
    expect(principal).toMatchObject({
      username: 'staff@akto.test',
      role: 'fund_staff',
      fundSlug: 'akto',
      via: 'token',
    });
  });

  it('refuses to create a token without the CSRF token or without a name', async () => {
    const browser = await signIn(ctx.app, 'staff@akto.test');
    expect((await post(ctx.app, browser, '/portal/jetons', { nom: 'sans csrf' })).statusCode).toBe(403);
    const csrf = await csrfOf(ctx.app, browser);
    const noName = await post(ctx.app, browser, '/portal/jetons', { nom: '  ', _csrf: csrf });
    expect(noName.statusCode).toBe(400);
    expect(noName.body).toContain('Donnez un nom au jeton');
    expect(await ctx.app.db.selectFrom('api_tokens').select('id').where('name', '=', 'sans csrf').execute()).toEqual(
      [],
    );
  });

  it('revokes one’s own token; another person’s token id is unknown', async () => {
    const akto = await signIn(ctx.app, 'staff@akto.test');
    const atlas = await signIn(ctx.app, 'staff@atlas.test');
    const atlasCsrf = await csrfOf(ctx.app, atlas);
    const created = await post(ctx.app, atlas, '/portal/jetons', { nom: 'jeton atlas', _csrf: atlasCsrf });
    const token = text(dom(created.body), '#nouveau-jeton') as string;
    expect(token).toMatch(/^emt_[A-Za-z0-9_-]{43}$/);
    const { id } = await ctx.app.db
      .selectFrom('api_tokens')
      .select('id')
      .where('name', '=', 'jeton atlas')
      .executeTakeFirstOrThrow();

    const aktoCsrf = await csrfOf(ctx.app, akto);
    expect((await post(ctx.app, akto, `/portal/jetons/${id}/revoquer`, { _csrf: aktoCsrf })).statusCode).toBe(404);
    expect(await resolveToken(ctx.app.db, token)).not.toBeNull();

    expect((await post(ctx.app, atlas, `/portal/jetons/${id}/revoquer`, {})).statusCode).toBe(403);
    const revoked = await post(ctx.app, atlas, `/portal/jetons/${id}/revoquer`, { _csrf: atlasCsrf });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.body).toContain('Le jeton a été révoqué');
    expect(await resolveToken(ctx.app.db, token)).toBeNull();
    expect((await post(ctx.app, atlas, `/portal/jetons/${id}/revoquer`, { _csrf: atlasCsrf })).statusCode).toBe(404);
  });

  it('stops accepting tokens of a disabled account or past their expiry', async () => {
    const id = await addUser(ctx.app.db, 'temp@akto.test', 'fund_staff', 'akto');
    const { createToken } = await import('../../src/portal/service.js');
    const { token } = await createToken(ctx.app.db, id, 'temp', null);
    expect(await resolveToken(ctx.app.db, token)).not.toBeNull();
    await ctx.app.db
      .updateTable('api_tokens')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('user_id', '=', id)
      .execute();
    expect(await resolveToken(ctx.app.db, token)).toBeNull();
    const fresh = await createToken(ctx.app.db, id, 'temp2', null);
    await ctx.app.db.updateTable('portal_users').set({ disabled_at: new Date() }).where('id', '=', id).execute();
    expect(await resolveToken(ctx.app.db, fresh.token)).toBeNull();
    expect(await resolveToken(ctx.app.db, `${fresh.token.slice(0, -1)}A`)).toBeNull();
  });
});

describe('npm run cli -- users', () => {
  it('adds a fund staff account with a provisional password printed once', async () => {
    const c = capture();
    expect(
      await runUsersCommand(
        ctx.app.db,
        ['add', 'Claire@Akto.test', '--role', 'fund_staff', '--fund', 'akto', '--name', 'Claire Martin'],
        c.io,
      ),
    ).toBe(0);
    const printed = c.out.join('');
    const password = /Provisional password[^:]*: (\S+)/.exec(printed)?.[1] as string;
    expect(password).toMatch(/^[A-Za-z0-9_-]{20}$/);
    const user = await ctx.app.db
      .selectFrom('portal_users')
      .selectAll()
      .where('username', '=', 'claire@akto.test')
      .executeTakeFirstOrThrow();
    expect(user).toMatchObject({
      role: 'fund_staff',
      fund_slug: 'akto',
      display_name: 'Claire Martin',
      must_change_password: true,
    });
    expect(user.password_hash).toMatch(/^scrypt\$/);
    expect(user.password_hash).not.toContain(password);
  });

  it('adds an operator with a password read from stdin', async () => {
    const c = capture();
    expect(
      await runUsersCommand(ctx.app.db, ['add', 'root@fun.test', '--role', 'operator', '--password-stdin'], c.io),
    ).toBe(0);
    expect(c.out.join('')).not.toContain('Provisional');
    await expect(signIn(ctx.app, 'root@fun.test')).resolves.toBeDefined();
  });

  it('refuses bad roles, missing or unknown funds, funds on operators and duplicates', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['add', 'x@x.test', '--role', 'admin'], 2, /--role must be/],
      [['add', 'x@x.test', '--role', 'fund_staff'], 1, /rattaché à un fonds/],
      [['add', 'x@x.test', '--role', 'fund_staff', '--fund', 'nope'], 1, /Fonds inconnu/],
      [['add', 'x@x.test', '--role', 'operator', '--fund', 'akto'], 1, /voit tous les fonds/],
      [['add', 'staff@akto.test', '--role', 'fund_staff', '--fund', 'akto'], 1, /déjà utilisé/],
      [['add', 'a b', '--role', 'operator'], 1, /Identifiant non valable/],
      [['frobnicate'], 2, /Usage/],
    ];
    for (const [args, code, message] of cases) {
      const c = capture();
      expect(await runUsersCommand(ctx.app.db, args, c.io), args.join(' ')).toBe(code);
      expect(c.err.join('')).toMatch(message);
    }
    expect(
      await ctx.app.db.selectFrom('portal_users').select('id').where('username', '=', 'x@x.test').execute(),
    ).toEqual([]);
  });

  it('lists, disables, enables and resets accounts', async () => {
    await addUser(ctx.app.db, 'cycle@atlas.test', 'fund_staff', 'atlas');
    const session = await signIn(ctx.app, 'cycle@atlas.test');
    let c = capture();
    expect(await runUsersCommand(ctx.app.db, ['list'], c.io)).toBe(0);
    expect(c.out.join('')).toMatch(/cycle@atlas\.test\s+fund_staff\s+atlas\s+active/);

    c = capture();
    expect(await runUsersCommand(ctx.app.db, ['disable', 'cycle@atlas.test'], c.io)).toBe(0);
    expect((await get(ctx.app, session, '/portal/jetons')).statusCode).toBe(303);
    await expect(signIn(ctx.app, 'cycle@atlas.test')).rejects.toThrow('401');
    c = capture();
    await runUsersCommand(ctx.app.db, ['list'], c.io);
    expect(c.out.join('')).toMatch(/cycle@atlas\.test\s+fund_staff\s+atlas\s+disabled/);

    expect(await runUsersCommand(ctx.app.db, ['enable', 'cycle@atlas.test'], capture().io)).toBe(0);
    await expect(signIn(ctx.app, 'cycle@atlas.test')).resolves.toBeDefined();

    c = capture();
    expect(await runUsersCommand(ctx.app.db, ['reset-password', 'cycle@atlas.test'], c.io)).toBe(0);
    const provisional = /sign-in\): (\S+)/.exec(c.out.join(''))?.[1] as string;
    await expect(signIn(ctx.app, 'cycle@atlas.test')).rejects.toThrow('401');
    const b = await signIn(ctx.app, 'cycle@atlas.test', provisional);
    expect((await get(ctx.app, b, '/portal/jetons')).headers.location).toBe('/portal/mot-de-passe');

    c = capture();
    expect(await runUsersCommand(ctx.app.db, ['reset-password', 'ghost@atlas.test'], c.io)).toBe(1);
    expect(c.err.join('')).toContain('Compte introuvable');
  });

  it('creates, lists and revokes tokens, and prints the audit log', async () => {
    let c = capture();
    expect(
      await runUsersCommand(
        ctx.app.db,
        ['tokens', 'create', 'staff@atlas.test', '--name', 'cron', '--days', '7'],
        c.io,
      ),
    ).toBe(0);
    const token = /(emt_[A-Za-z0-9_-]{43})/.exec(c.out.join(''))?.[1] as string;
    const id = /Token ([0-9a-f-]{36})/.exec(c.out.join(''))?.[1] as string;
    expect(await resolveToken(ctx.app.db, token)).toMatchObject({ fundSlug: 'atlas' });

    c = capture();
    await runUsersCommand(ctx.app.db, ['tokens', 'list', 'staff@atlas.test'], c.io);
    expect(c.out.join('')).toContain(id);
    expect(c.out.join('')).not.toContain(token);

    c = capture();
    expect(await runUsersCommand(ctx.app.db, ['tokens', 'revoke', 'staff@akto.test', id], c.io)).toBe(1);
    expect(await resolveToken(ctx.app.db, token)).not.toBeNull();
    expect(await runUsersCommand(ctx.app.db, ['tokens', 'revoke', 'staff@atlas.test', id], capture().io)).toBe(0);
    expect(await resolveToken(ctx.app.db, token)).toBeNull();

    c = capture();
    expect(await runUsersCommand(ctx.app.db, ['tokens', 'create', 'staff@atlas.test', '--days', 'soon'], c.io)).toBe(2);

    c = capture();
    expect(await runUsersCommand(ctx.app.db, ['audit', '--limit', '100'], c.io)).toBe(0);
    const log = c.out.join('');
    expect(log).toContain('token.revoked');
    expect(log).toContain('account.created');
    expect(log).toContain('account.password_reset');
  });
});
