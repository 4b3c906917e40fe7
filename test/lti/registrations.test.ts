import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import type { DatabaseHandle } from '../../src/db/index.js';
import { type LtiCliContext, runKeys, runOpenEdxConfig, runPlatforms } from '../../src/lti/cli.js';
import { listRegistrations } from '../../src/lti/repository.js';
import { testConfig } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { buildLtiOnlyApp } from './helpers.js';

/** The registrations file at start, and the operators' CLI over the same registrations. */
let database: DatabaseHandle;
let dir: string;
beforeAll(async () => {
  database = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'emargement-reg-'));
});
afterAll(async () => {
  await database.close();
  await rm(dir, { recursive: true, force: true });
});

const entry = (over: Record<string, unknown> = {}) => ({
  name: 'FUN — TPE-PME',
  issuer: 'https://lms.fun-mooc.fr',
  clientId: '0b6a1d1c-3c8e-4f2a-9c77-1c2f3e4d5a6b',
  deploymentIds: ['1'],
  authLoginUrl: 'https://lms.fun-mooc.fr/api/lti_consumer/v1/launch/',
  accessTokenUrl: 'https://lms.fun-mooc.fr/api/lti_consumer/v1/token/0b6a1d1c-3c8e-4f2a-9c77-1c2f3e4d5a6b',
  jwksUrl: 'https://lms.fun-mooc.fr/api/lti_consumer/v1/public_keysets/0b6a1d1c-3c8e-4f2a-9c77-1c2f3e4d5a6b',
  ...over,
});

async function startWith(content: unknown, name = 'registrations.json') {
  const file = join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  const config = testConfig({ LTI_REGISTRATIONS_FILE: file });
  const app = await buildLtiOnlyApp({ config, database, logger: false });
  await app.ready();
  await app.close();
  return config;
}

describe('registrations file at start', () => {
  it('loads and upserts the entries, keyed by (issuer, clientId)', async () => {
    await startWith([
      entry(),
      entry({ name: 'FUN — autre composant', clientId: 'second', jwksUrl: 'https://lms.fun-mooc.fr/k2' }),
    ]);
    await startWith([entry({ name: 'renamed' }), entry({ name: 'FUN — autre composant', clientId: 'second' })]);
    const regs = (await listRegistrations(database.db)).filter((r) => r.issuer === 'https://lms.fun-mooc.fr');
    expect(regs.map((r) => [r.clientId, r.name, r.source, r.removedAt]).sort()).toEqual(
      [
        ['0b6a1d1c-3c8e-4f2a-9c77-1c2f3e4d5a6b', 'renamed', 'file', null],
        ['second', 'FUN — autre composant', 'file', null],
      ].sort(),
    );
  });

  it('marks an entry that left the file as removed', async () => {
    await startWith([entry()]);
    const second = (await listRegistrations(database.db)).find((r) => r.clientId === 'second');
    expect(second?.removedAt).toBeInstanceOf(Date);
    await startWith([entry(), entry({ name: 'back', clientId: 'second' })]);
    expect((await listRegistrations(database.db)).find((r) => r.clientId === 'second')?.removedAt).toBeNull();
  });

  const bad: [string, unknown, RegExp][] = [
    [
      'a missing field',
      [entry(), entry({ clientId: undefined, name: 'Sans id' })],
      /entry 2 \("Sans id"\): clientId must be a non-empty string/,
    ],
    [
      'a bad URL',
      [entry({ jwksUrl: 'lms/jwks' })],
      /entry 1 \("FUN — TPE-PME"\): jwksUrl must be an absolute http\(s\) URL/,
    ],
    ['empty deployments', [entry({ deploymentIds: [] })], /entry 1 .*deploymentIds must be a non-empty array/],
    ['an unknown field', [entry({ clientID: 'x' })], /entry 1 .*clientID is not a known field/],
    ['a duplicate', [entry(), entry({ name: 'twice' })], /entry 2 \("twice"\): clientId repeats entry 1/],
    ['an object instead of an array', { registrations: [] }, /must be a JSON array/],
  ];
  for (const [what, content, message] of bad) {
    it(`stops the start on ${what}, naming the entry and field`, async () => {
      await expect(startWith(content, 'bad.json')).rejects.toThrow(message);
    });
  }

  it('stops the start on invalid JSON or a missing file, naming the file', async () => {
    await expect(startWith('[{"name": ', 'broken.json')).rejects.toThrow(/broken\.json is not valid JSON/);
    const config = testConfig({ LTI_REGISTRATIONS_FILE: join(dir, 'absent.json') });
    await expect(buildLtiOnlyApp({ config, database, logger: false }).then((a) => a.ready())).rejects.toThrow(
      /absent\.json cannot be read/,
    );
  });

  it('requires https URLs in production', async () => {
    const file = join(dir, 'http.json');
    await writeFile(file, JSON.stringify([entry({ issuer: 'http://lms.fun-mooc.fr' })]));
    const config = testConfig({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://emargement.example',
      LTI_REGISTRATIONS_FILE: file,
    });
    await expect(buildLtiOnlyApp({ config, database, logger: false }).then((a) => a.ready())).rejects.toThrow(
      /issuer must use https in production/,
    );
  });

  it('the shipped lti-config/registrations.json is a valid array, and the full app starts with it', async () => {
    const app = await buildApp({ config: testConfig(), database, logger: false });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(res.statusCode).toBe(200);
    await app.close();
  });
});

describe('CLI', () => {
  function cli(): LtiCliContext & { stdout: string; stderr: string } {
    const ctx = {
      db: database.db,
      config: testConfig(),
      stdout: '',
      stderr: '',
      out(t: string) {
        ctx.stdout += t;
      },
      err(t: string) {
        ctx.stderr += t;
      },
    };
    return ctx;
  }

  it('platforms add --lms derives an Open edX registration; list shows it; remove refuses its launches', async () => {
    const add = cli();
    expect(
      await runPlatforms(add, ['add', '--lms', 'https://lms.example.org/', '--client-id', 'cid-1', '--name', 'Essai']),
    ).toBe(0);
    expect(add.stdout).toContain('Added "Essai"');
    const reg = (await listRegistrations(database.db)).find((r) => r.clientId === 'cid-1');
    expect(reg).toMatchObject({
      issuer: 'https://lms.example.org',
      deploymentIds: ['1'],
      authLoginUrl: 'https://lms.example.org/api/lti_consumer/v1/launch/',
      accessTokenUrl: 'https://lms.example.org/api/lti_consumer/v1/token/cid-1',
      jwksUrl: 'https://lms.example.org/api/lti_consumer/v1/public_keysets/cid-1',
      source: 'cli',
    });
    const list = cli();
    expect(await runPlatforms(list, ['list'])).toBe(0);
    expect(list.stdout).toContain('cid-1');
    const remove = cli();
    expect(await runPlatforms(remove, ['remove', '--issuer', 'https://lms.example.org', '--client-id', 'cid-1'])).toBe(
      0,
    );
    expect((await listRegistrations(database.db)).find((r) => r.clientId === 'cid-1')?.removedAt).toBeInstanceOf(Date);
  });

  it('platforms add with explicit URLs, validation errors, and file-managed entries', async () => {
    const ok = cli();
    const args = [
      'add',
      '--name',
      'Autre',
      '--issuer',
      'https://moodle.example',
      '--client-id',
      'm1',
      '--auth-login-url',
      'https://moodle.example/auth',
      '--access-token-url',
      'https://moodle.example/token',
      '--jwks-url',
      'https://moodle.example/jwks',
      '--deployment-id',
      'a',
      '--deployment-id',
      'b',
    ];
    expect(await runPlatforms(ok, args)).toBe(0);
    expect((await listRegistrations(database.db)).find((r) => r.clientId === 'm1')?.deploymentIds).toEqual(['a', 'b']);
    const badUrl = cli();
    expect(await runPlatforms(badUrl, ['add', '--name', 'x', '--issuer', 'nope', '--client-id', 'y'])).toBe(2);
    expect(badUrl.stderr).toContain('issuer must be an absolute http(s) URL');
    await startWith([entry()]);
    const fromFile = cli();
    expect(
      await runPlatforms(fromFile, ['remove', '--issuer', 'https://lms.fun-mooc.fr', '--client-id', entry().clientId]),
    ).toBe(1);
    expect(fromFile.stderr).toContain('registrations file');
    const usage = cli();
    expect(await runPlatforms(usage, ['frobnicate'])).toBe(2);
    expect(usage.stderr).toContain('Usage');
  });

  it('keys rotate and keys list', async () => {
    const rotate = cli();
    expect(await runKeys(rotate, ['rotate'])).toBe(0);
    expect(rotate.stdout).toMatch(/New current key \S+\./);
    const list = cli();
    expect(await runKeys(list, ['list'])).toBe(0);
    expect(list.stdout).toMatch(/current/);
    expect(list.stdout).toMatch(/retired .*published until/);
  });

  it('openedx-config prints what Studio needs from PUBLIC_URL', () => {
    let out = '';
    runOpenEdxConfig({ publicUrl: 'https://emargement.fun.example' }, [], (t) => {
      out += t;
    });
    expect(out).toContain('https://emargement.fun.example/lti/launch');
    expect(out).toContain('https://emargement.fun.example/lti/login');
    expect(out).toContain('https://emargement.fun.example/.well-known/jwks.json');
    expect(out).toContain(
      '["https://emargement.fun.example/lti/launch","https://emargement.fun.example/lti/deep-linking"]',
    );
  });

  it('npm run cli -- openedx-config works as a process', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli/index.ts', 'openedx-config', '--json'],
      {
        env: { ...process.env, PUBLIC_URL: 'https://emargement.fun.example', NODE_ENV: 'test', DATA_DIR: dir },
      },
    );
    expect(JSON.parse(stdout)).toMatchObject({
      loginUrl: 'https://emargement.fun.example/lti/login',
      redirectUris: ['https://emargement.fun.example/lti/launch', 'https://emargement.fun.example/lti/deep-linking'],
    });
  });
});
