import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAtRest, deriveKey } from '../../src/config/secrets.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { ensureCurrentKey, keyEncryptionKey, loadToolKey, publishedJwks, rotateKey } from '../../src/lti/keys.js';
import { findCurrentKey, listKeys } from '../../src/lti/repository.js';
import { RETIRED_KEY_GRACE_MS } from '../../src/lti/rules.js';
import { createTestDatabase } from '../helpers/db.js';

/** Tool keys (Security Framework §6): generated once, sealed at rest, rotated with a grace period. */
let database: DatabaseHandle;
const secret = 'test-app-secret-0123456789-abcdefghijklmnop';
const kek = keyEncryptionKey(secret);
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.close());

describe('tool keys', () => {
  it('generates one RSA 2048 key on first start, even when two instances start together', async () => {
    const kids = await Promise.all([ensureCurrentKey(database.db, kek), ensureCurrentKey(database.db, kek)]);
    expect(kids[0]).toBe(kids[1]);
    const all = await listKeys(database.db);
    expect(all.filter((k) => k.status === 'current')).toHaveLength(1);
    expect(await ensureCurrentKey(database.db, kek)).toBe(kids[0]);
    const jwk = all[0]?.publicJwk as { n: string };
    expect(Buffer.from(jwk.n, 'base64url').length * 8).toBe(2048);
  });

  it('seals the private key with AES-256-GCM under a key derived from APP_SECRET', async () => {
    const row = await findCurrentKey(database.db);
    if (!row) throw new Error('no key');
    expect(row.privateKeySealed.startsWith('v1.')).toBe(true);
    expect(row.privateKeySealed).not.toContain('"d"');
    expect(JSON.parse(decryptAtRest(kek, row.privateKeySealed))).toHaveProperty('d');
    expect(() =>
      decryptAtRest(
        deriveKey('another-secret-0123456789-abcdefghijklmnop', 'lti-tool-private-keys'),
        row.privateKeySealed,
      ),
    ).toThrow();
    await expect(loadToolKey(row, keyEncryptionKey('another-secret-0123456789-abcdefghijklmnop'))).rejects.toThrow(
      /APP_SECRET/,
    );
    expect((await loadToolKey(row, kek)).kid).toBe(row.kid);
  });

  it('rotation adds a current key and keeps the retired one published for the grace period', async () => {
    const before = (await findCurrentKey(database.db))?.kid;
    const { kid, retiredKid } = await rotateKey(database.db, kek);
    expect(retiredKid).toBe(before);
    expect(kid).not.toBe(before);
    const now = new Date();
    expect((await publishedJwks(database.db, now)).keys.map((k) => k.kid).sort()).toEqual([kid, before].sort());
    const later = new Date(now.getTime() + RETIRED_KEY_GRACE_MS + 60_000);
    expect((await publishedJwks(database.db, later)).keys.map((k) => k.kid)).toEqual([kid]);
    const jwk = (await publishedJwks(database.db, now)).keys[0];
    expect(jwk).not.toHaveProperty('d');
    expect(Object.keys(jwk ?? {}).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
  });
});
