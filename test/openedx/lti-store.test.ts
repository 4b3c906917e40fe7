import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/index.js';
import { type LtiCliContext, runOpenEdxConfig, runPlatforms } from '../../src/lti/cli.js';
import { listRegistrations } from '../../src/lti/repository.js';
import { testConfig } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';

/** One reusable LTI configuration for the whole course (openedx-ltistore): what to enter, one registration. */
let database: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

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

describe('the reusable configuration (openedx-ltistore)', () => {
  it('openedx-config prints the store form first, then the per-component fields', () => {
    let out = '';
    runOpenEdxConfig({ publicUrl: 'https://emargement.fun.example' }, ['--lti-store', 'tpe-pme'], (t) => {
      out += t;
    });
    const store = out.indexOf('Slug                            tpe-pme');
    const perBlock = out.indexOf('Or, per component');
    expect(store).toBeGreaterThan(0);
    expect(perBlock).toBeGreaterThan(store);
    expect(out).toContain('LTI 1.3 OIDC URL                https://emargement.fun.example/lti/login');
    expect(out).toContain('"lti_store:tpe-pme"');
    expect(out).toContain('--lti-store tpe-pme');

    let json = '';
    runOpenEdxConfig({ publicUrl: 'https://emargement.fun.example' }, ['--json'], (t) => {
      json += t;
    });
    expect(JSON.parse(json)).toMatchObject({
      launchUrl: 'https://emargement.fun.example/lti/launch',
      ltiStore: {
        slug: 'emargement',
        lti_1p3_tool_keyset_url: 'https://emargement.fun.example/.well-known/jwks.json',
        blockFields: { config_type: 'external', external_config: 'lti_store:emargement' },
      },
    });
  });

  it('platforms add --lti-store registers the shared client ID with the configuration’s keyset and token URLs', async () => {
    const ctx = cli();
    const code = await runPlatforms(ctx, [
      'add',
      '--lms',
      'https://lms.example.org/',
      '--client-id',
      'shared-1',
      '--lti-store',
      'tpe-pme',
      '--name',
      'FUN — TPE-PME (toute la formation)',
    ]);
    expect(ctx.stderr).toBe('');
    expect(code).toBe(0);
    const reg = (await listRegistrations(database.db)).find((r) => r.clientId === 'shared-1');
    expect(reg).toMatchObject({
      issuer: 'https://lms.example.org',
      deploymentIds: ['1'],
      authLoginUrl: 'https://lms.example.org/api/lti_consumer/v1/launch/',
      accessTokenUrl: 'https://lms.example.org/api/lti_consumer/v1/token/lti_store:tpe-pme',
      jwksUrl: 'https://lms.example.org/api/lti_consumer/v1/public_keysets/lti_store:tpe-pme',
    });

    const bad = cli();
    expect(
      await runPlatforms(bad, [
        'add',
        '--lms',
        'https://lms.example.org',
        '--client-id',
        'x',
        '--lti-store',
        'Not ok',
        '--name',
        'x',
      ]),
    ).toBe(2);
    expect(bad.stderr).toContain('not a configuration slug');
  });
});
