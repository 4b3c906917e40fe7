import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/portal/index.js';
import { parsePasswordHash, SCRYPT_PARAMS, scryptMaxMem } from '../../src/portal/rules.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { addUser, insertFund, PASSWORD, signIn } from '../portal/helpers.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestApp();
  await insertFund(ctx.app.db, 'akto', 'AKTO');
});
afterAll(() => ctx.close());

async function storedHash(username: string): Promise<string> {
  const row = await ctx.app.db
    .selectFrom('portal_users')
    .select('password_hash')
    .where('username', '=', username)
    .executeTakeFirstOrThrow();
  return row.password_hash;
}

describe('password hashing follows current OWASP parameters', () => {
  it('new hashes use scrypt N=2^17, r=8, p=1 with enough maxmem', async () => {
    expect(SCRYPT_PARAMS).toMatchObject({ N: 2 ** 17, r: 8, p: 1 });
    expect(scryptMaxMem(SCRYPT_PARAMS)).toBeGreaterThanOrEqual(128 * 2 ** 17 * 8);
    const parsed = parsePasswordHash(await hashPassword('une autre phrase de passe'));
    expect(parsed?.params).toMatchObject({ N: 2 ** 17, r: 8, p: 1 });
  });

  it('an older N=2^15 hash still signs in, and is rehashed to N=2^17 at that sign-in', async () => {
    const id = await addUser(ctx.app.db, 'old@akto.test', 'fund_staff', 'akto');
    const old = await hashPassword(PASSWORD, { N: 2 ** 15, r: 8, p: 1, keyLength: 32 });
    await ctx.app.db.updateTable('portal_users').set({ password_hash: old }).where('id', '=', id).execute();
    expect(parsePasswordHash(await storedHash('old@akto.test'))?.params.N).toBe(2 ** 15);
    await signIn(ctx.app, 'old@akto.test');
    const now = await storedHash('old@akto.test');
    expect(now).not.toBe(old);
    expect(parsePasswordHash(now)?.params).toMatchObject({ N: 2 ** 17, r: 8, p: 1 });
    // And the rehashed password still works.
    await signIn(ctx.app, 'old@akto.test');
  });
});
