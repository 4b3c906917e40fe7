import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCertificatesCommand } from '../../src/certificates/cli.js';
import type { CertificateFacts } from '../../src/certificates/index.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { makeFacts, type Person, seedCourse } from './helpers.js';

let ctx: TestContext;
let courseId: string;
let learner: Person;
const facts = new Map<string, CertificateFacts>();
const out: string[] = [];
const err: string[] = [];

function run(...args: string[]) {
  return runCertificatesCommand(
    {
      db: ctx.app.db,
      config: ctx.config,
      facts: { load: async (learnerId) => facts.get(learnerId) ?? null },
      out: (t) => out.push(t),
      err: (t) => err.push(t),
    },
    args,
  );
}

beforeAll(async () => {
  ctx = await createTestApp();
  const seeded = await seedCourse(ctx.app, { people: [{ role: 'learner' }] });
  courseId = seeded.courseId;
  learner = seeded.people[0]!;
  facts.set(learner.id, makeFacts(learner.id, courseId, { completedSector: 0 }));
});
afterAll(() => ctx.close());

const json = async (url: string) =>
  (await ctx.app.inject({ method: 'GET', url, headers: { accept: 'application/json' } })).json();

describe('npm run cli -- certificates', () => {
  it('prints the provider', async () => {
    expect(await run('provider')).toBe(0);
    expect(out.join('')).toContain('"siret": "999 999 998 00001"');
  });

  it('issues as an operator only with a reason, whatever the rule', async () => {
    expect(await run('issue', '--learner', learner.id, '--course', courseId)).toBe(1);
    expect(err.join('')).toContain('Indiquez le motif');
    expect(
      await run('issue', '--learner', learner.id, '--course', courseId, '--reason', 'Attestation demandée par l’OPCO'),
    ).toBe(0);
    const number = /EMG-\d{4}-\d{6}-[A-Z]/.exec(out.join(''))![0];
    expect(await json(`/verify/${number}`)).toMatchObject({ state: 'valid' });
  });

  it('rotates the signing key; earlier certificates still verify and both keys stay published', async () => {
    const number = /EMG-\d{4}-\d{6}-[A-Z]/.exec(out.join(''))![0];
    const before = (await json('/verify/keys')).keys;
    expect(await run('rotate-key')).toBe(0);
    const after = (await json('/verify/keys')).keys;
    expect(after).toHaveLength(before.length + 1);
    expect(after.filter((k: { status: string }) => k.status === 'current')).toHaveLength(1);
    expect(await json(`/verify/${number}`)).toMatchObject({ state: 'valid', integrity: { signature: true } });
  });

  it('corrects and revokes; bad usage prints the usage', async () => {
    const number = /EMG-\d{4}-\d{6}-[A-Z]/.exec(out.join(''))![0];
    expect(await run('correct', number, '--reason', 'SIRET corrigé')).toBe(0);
    expect(await json(`/verify/${number}`)).toMatchObject({ state: 'superseded' });
    expect(await run('revoke', number, '--reason', 'Erreur de saisie')).toBe(0);
    expect(await json(`/verify/${number}`)).toMatchObject({ state: 'revoked' });
    expect(await run('revoke', 'EMG-2026-000001-X', '--reason', 'x')).toBe(1);
    expect(await run('nonsense')).toBe(2);
    expect(err.join('')).toContain('Usage: npm run cli -- certificates');
  });
});

describe('npm run cli -- certificates verify-all', () => {
  it('verifies every stored version, and names a version whose signed data or PDF was altered', async () => {
    out.length = 0;
    err.length = 0;
    expect(await run('verify-all')).toBe(0);
    expect(out.join('')).toMatch(/\d+ certificate version\(s\) checked with \d+ signing key\(s\): all verify/);
    expect(err).toEqual([]);

    const row = await ctx.app.db
      .selectFrom('certificates')
      .select(['id', 'number', 'version', 'data_canonical'])
      .orderBy('issued_at')
      .executeTakeFirstOrThrow();
    // A restore that corrupted one row (the immutability trigger does not run on a restore): the signed text
    // changed, so its hash and its signature no longer match.
    await sql`alter table certificates disable trigger user`.execute(ctx.app.db);
    await ctx.app.db
      .updateTable('certificates')
      .set({ data_canonical: row.data_canonical.replace('"', '" ') })
      .where('id', '=', row.id)
      .execute();
    out.length = 0;
    expect(await run('verify-all')).toBe(1);
    expect(err.join('')).toContain(`${row.number} v${row.version}: signed data does not match its SHA-256`);
    expect(err.join('')).toContain(`${row.number} v${row.version}: signature does not verify`);
    await ctx.app.db
      .updateTable('certificates')
      .set({ data_canonical: row.data_canonical })
      .where('id', '=', row.id)
      .execute();
    await ctx.app.db
      .updateTable('certificates')
      .set({ pdf: new Uint8Array([1, 2, 3]) })
      .where('id', '=', row.id)
      .execute();
    err.length = 0;
    expect(await run('verify-all')).toBe(1);
    expect(err.join('')).toBe(`${row.number} v${row.version}: PDF does not match its SHA-256\n`);
    await sql`alter table certificates enable trigger user`.execute(ctx.app.db);
  });
});
