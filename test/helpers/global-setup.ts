import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDatabase, migrateToLatest } from '../../src/db/index.js';
import { PGliteDialect } from '../../src/db/pglite-dialect.js';

declare module 'vitest' {
  export interface ProvidedContext {
    testDb: { kind: 'pglite'; templateFile: string } | { kind: 'pg'; url: string; template: string; prefix: string };
  }
}

/**
 * Builds ONE migrated database per test run; every test file then clones it (see ./db.ts):
 * on PGlite a data-dir dump loaded with `loadDataDir` (skips initdb and migrations per file),
 * on PostgreSQL `CREATE DATABASE … TEMPLATE`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const url = process.env.TEST_DATABASE_URL;

  if (url) {
    const template = `emargement_tpl_${runId}`;
    const prefix = `emargement_t_${runId}_`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`create database ${template}`);
    const handle = await createDatabase({ databaseUrl: withDatabase(url, template), poolMax: 1 });
    await migrateToLatest(handle.db);
    await handle.close();
    project.provide('testDb', { kind: 'pg', url, template, prefix });
    return async () => {
      const { rows } = await admin.query<{ datname: string }>(
        'select datname from pg_database where datname like $1 or datname = $2',
        [`${prefix}%`, template],
      );
      for (const { datname } of rows) await admin.query(`drop database if exists ${datname} with (force)`);
      await admin.end();
    };
  }

  const client = new PGlite();
  const db = new Kysely<unknown>({ dialect: new PGliteDialect(client) });
  await migrateToLatest(db);
  await sql`checkpoint`.execute(db);
  const dump = await client.dumpDataDir('none');
  await db.destroy();
  const templateFile = join(tmpdir(), `emargement-pglite-${runId}.tar`);
  await writeFile(templateFile, Buffer.from(await dump.arrayBuffer()));
  project.provide('testDb', { kind: 'pglite', templateFile });
  return async () => {
    await rm(templateFile, { force: true });
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
