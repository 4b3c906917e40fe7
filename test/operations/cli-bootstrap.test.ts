import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { runWithContext } from '../../src/cli/context.js';
import type { Db } from '../../src/db/index.js';
import { BadRequestError } from '../../src/http/errors.js';
import { freePort } from '../helpers/ports.js';

/** The one start-up and tear-down of `npm run cli -- <command>` (src/cli/context.ts). */
const dataDir = mkdtempSync(join(tmpdir(), 'emargement-cli-bootstrap-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function captured() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) } };
}

// An embedded database in a directory of its own; no migration, so that opening it is quick.
const env = { NODE_ENV: 'test', DATA_DIR: dataDir, MIGRATE_ON_START: 'false' };

describe('runWithContext', () => {
  it('a command that throws exits 1 with its message on stderr, and the database it opened is closed', async () => {
    const c = captured();
    let db: Db | undefined;
    const code = await runWithContext(
      async (ctx) => {
        db = await ctx.db();
        expect((await sql<{ one: number }>`select 1 as one`.execute(db)).rows).toEqual([{ one: 1 }]);
        ctx.out('started\n');
        throw new Error('the command failed half-way');
      },
      { env, ...c.io },
    );
    expect(code).toBe(1);
    expect(c.out).toEqual(['started\n']);
    expect(c.err).toEqual(['the command failed half-way\n']);
    // Closed: the same instance refuses any further query.
    await expect(sql`select 1`.execute(db as Db)).rejects.toThrow(/destroyed/);
  });

  it('keeps the exit code a command returns, and closes the database after a success too', async () => {
    const c = captured();
    let db: Db | undefined;
    expect(
      await runWithContext(
        async (ctx) => {
          db = await ctx.db();
          expect(await ctx.db()).toBe(db); // opened once per command
          await sql`select 1`.execute(db);
          return 2;
        },
        { env, ...c.io },
      ),
    ).toBe(2);
    expect(c.err).toEqual([]);
    await expect(sql`select 1`.execute(db as Db)).rejects.toThrow(/destroyed/);
  });

  it('a domain error shows its public message and detail; a configuration error opens nothing', async () => {
    const domain = captured();
    expect(
      await runWithContext(
        async () => {
          throw new BadRequestError('bad_reason', 'Indiquez le motif.', 'reason missing');
        },
        { env, ...domain.io },
      ),
    ).toBe(1);
    expect(domain.err).toEqual(['Indiquez le motif. (reason missing)\n']);

    const config = captured();
    let opened = 0;
    const code = await runWithContext(
      async (ctx) => {
        await ctx.db();
        return 0;
      },
      {
        env: { NODE_ENV: 'production', DATA_DIR: dataDir },
        ...config.io,
        openDatabase: async () => {
          opened++;
          throw new Error('not reached');
        },
      },
    );
    expect(code).toBe(1);
    expect(opened).toBe(0);
    expect(config.err.join('')).toMatch(/^Invalid configuration: .*APP_SECRET/);
  });
});

describe('npm run cli -- <command> as a process', () => {
  it('exits 1 with one line on stderr when the database cannot be reached', async () => {
    const port = await freePort();
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'time', 'verify'], {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        DATA_DIR: dataDir,
        // Nothing listens there: the connection is refused.
        DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/none`,
      },
    });
    const failure = await run.then(
      () => null,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stdout).toBe('');
    expect(failure?.stderr).toMatch(/ECONNREFUSED/);
    expect(failure?.stderr.trim().split('\n')).toHaveLength(1);
  });
});
