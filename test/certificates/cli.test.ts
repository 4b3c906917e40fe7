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
