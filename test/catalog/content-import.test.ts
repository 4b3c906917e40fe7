import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/catalog/content.js';
import { ContentImportError, ensureContentImported, importContent } from '../../src/catalog/importer.js';
import { getModule, listBranches, listFunds, listModules, runContentCommand } from '../../src/catalog/index.js';
import { findModule } from '../../src/catalog/repository/catalog.js';
import { openModuleForLearner } from '../../src/catalog/service.js';
import { runWithContext } from '../../src/cli/context.js';
import type { DatabaseHandle, Db } from '../../src/db/index.js';
import { createTestDatabase } from '../helpers/db.js';
import { type ContentFixture, createContentFixture } from './content-fixture.js';

let database: DatabaseHandle;
let db: Db;
let fx: ContentFixture;
beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
});
afterAll(() => database.close());
beforeEach(async () => {
  fx = await createContentFixture();
});
afterEach(() => fx.cleanup());

const AKTO = 'tn/akto/visibilite/module.yaml';

async function load() {
  const r = await loadContent(fx.dir);
  if (!r.content) throw new Error(`fixture invalid: ${JSON.stringify(r.problems)}`);
  return r.content;
}

async function importError(): Promise<ContentImportError> {
  try {
    await importContent(db, await load());
  } catch (error) {
    if (error instanceof ContentImportError) return error;
    throw error;
  }
  throw new Error('import was expected to be refused');
}

async function learnerInCourse(): Promise<{ learnerId: string; courseId: string }> {
  const sub = `sub-${Math.random().toString(36).slice(2)}`;
  const learner = await db
    .insertInto('learners')
    .values({ issuer: 'https://lms.test', sub })
    .returning('id')
    .executeTakeFirstOrThrow();
  const course = await db
    .insertInto('courses')
    .values({ issuer: 'https://lms.test', context_id: `course-${sub}` })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { learnerId: learner.id, courseId: course.id };
}

async function resetCatalog(): Promise<void> {
  for (const t of [
    'module_progress',
    'learner_profiles',
    'module_versions',
    'modules',
    'themes',
    'tracks',
    'branches',
    'funds',
  ] as const) {
    await db.deleteFrom(t).execute();
  }
  await db.deleteFrom('app_meta').where('key', 'like', 'catalog.%').execute();
}

describe('content import', () => {
  beforeEach(resetCatalog);

  it('loads funds, branches, themes and modules, then does nothing on an unchanged re-import', async () => {
    const first = await importContent(db, await load());
    expect(first).toMatchObject({ funds: { from: null, to: 1, applied: true }, unchanged: 0, deactivated: [] });
    expect(first.added.map((a) => a.id).sort()).toEqual([
      'akto-visibilite',
      'common-digitalisation',
      'uniformation-visibilite',
      'uniformation-visibilite-domicile',
    ]);
    expect((await listFunds(db)).map((f) => [f.slug, f.name, f.historicalName])).toEqual([
      ['akto', 'AKTO', 'Fafih'],
      ['uniformation', 'Uniformation', 'Uniformation'],
    ]);
    expect(await listBranches(db)).toHaveLength(3);
    expect(await getModule(db, 'uniformation-visibilite-domicile')).toMatchObject({
      fundSlug: 'uniformation',
      theme: 'visibilite',
      trunk: 'sector',
      branches: ['2941'],
      nominalMinutes: 15,
      currentVersion: 1,
    });
    expect(await getModule(db, 'common-digitalisation')).toMatchObject({ fundSlug: null, trunk: 'common' });

    const again = await importContent(db, await load());
    expect(again).toMatchObject({
      funds: { applied: false },
      tracks: [{ applied: false }],
      added: [],
      updated: [],
      unchanged: 4,
    });
  });

  it('a new version keeps learners on the version they started; new learners get the new one', async () => {
    await importContent(db, await load());
    const early = await learnerInCourse();
    const module = (await findModule(db, 'akto-visibilite'))!;
    const v1 = await openModuleForLearner(db, { ...early, resourceLinkId: null }, module, 'akto');
    expect(v1.version).toBe(1);

    await fx.edit(AKTO, 'version: 1', 'version: 2');
    await fx.edit(AKTO, 'title: "Module akto-visibilite"', 'title: "Être visible, deuxième édition"');
    const report = await importContent(db, await load());
    expect(report.updated).toEqual([{ id: 'akto-visibilite', from: 1, to: 2 }]);
    expect(
      await db
        .selectFrom('module_versions')
        .select('version')
        .where('module_id', '=', 'akto-visibilite')
        .orderBy('version')
        .execute(),
    ).toEqual([{ version: 1 }, { version: 2 }]);

    const moduleNow = (await findModule(db, 'akto-visibilite'))!;
    expect(moduleNow).toMatchObject({ currentVersion: 2, title: 'Être visible, deuxième édition' });
    const stillV1 = await openModuleForLearner(db, { ...early, resourceLinkId: null }, moduleNow, 'akto');
    expect(stillV1.version).toBe(1);
    expect(stillV1.manifest.title).toBe('Module akto-visibilite');
    expect(stillV1.progress.id).toBe(v1.progress.id);

    const late = await learnerInCourse();
    const v2 = await openModuleForLearner(db, { ...late, resourceLinkId: null }, moduleNow, 'akto');
    expect(v2.version).toBe(2);
    expect(v2.manifest.title).toBe('Être visible, deuxième édition');
  });

  it('refuses content changed without a version bump, and an older version, changing nothing', async () => {
    await importContent(db, await load());
    await fx.edit(AKTO, 'Revendiquez **votre fiche**.', 'Revendiquez **votre fiche** sur Google.');
    const err = await importError();
    expect(err.problems).toEqual([
      {
        file: AKTO,
        message:
          'module "akto-visibilite" changed but its version is still 1: bump "version" so learners who started it keep the old content',
      },
    ]);

    await fx.edit(AKTO, 'version: 1', 'version: 3');
    await importContent(db, await load());
    await fx.edit(AKTO, 'version: 3', 'version: 2');
    expect((await importError()).problems[0]?.message).toBe(
      'module "akto-visibilite" has version 2, older than the imported version 3',
    );
    expect((await findModule(db, 'akto-visibilite'))?.currentVersion).toBe(3);
  });

  it('funds.json: a change needs a version bump; a fund dropped from the file becomes inactive, a branch can move', async () => {
    await importContent(db, await load());
    await fx.edit('funds.json', '"name": "AKTO"', '"name": "AKTO – OPCO des services"');
    expect((await importError()).problems).toEqual([
      { file: 'funds.json', message: 'content changed but "version" is still 1: bump it' },
    ]);

    // Version 2: the branch 3016 moves to AKTO (an unrealistic move, but a data change all the same).
    await fx.edit('funds.json', '"version": 1', '"version": 2');
    await fx.edit('funds.json', ',\n        { "idcc": "3016", "name": "Ateliers et chantiers d’insertion" }', '');
    await fx.edit(
      'funds.json',
      '{ "idcc": "1979", "name": "Hôtels, cafés, restaurants (HCR)" }',
      '{ "idcc": "1979", "name": "HCR" }, { "idcc": "3016", "name": "ACI" }',
    );
    const report = await importContent(db, await load());
    expect(report.funds).toEqual({ from: 1, to: 2, applied: true });
    expect((await listBranches(db)).find((b) => b.idcc === '3016')).toEqual({
      idcc: '3016',
      name: 'ACI',
      fundSlug: 'akto',
    });
    expect((await listFunds(db)).find((f) => f.slug === 'akto')?.name).toBe('AKTO – OPCO des services');
  });

  it('a module removed from disk is hidden from routing, not deleted', async () => {
    await importContent(db, await load());
    await fx.remove('tn/uniformation/visibilite/module.domicile.yaml');
    const report = await importContent(db, await load());
    expect(report.deactivated).toEqual(['uniformation-visibilite-domicile']);
    expect((await listModules(db)).map((m) => m.id)).not.toContain('uniformation-visibilite-domicile');
    expect(await getModule(db, 'uniformation-visibilite-domicile')).toMatchObject({ active: false });
  });

  it('at start: imports once, then skips on the same files; invalid content is logged, never thrown', async () => {
    const lines: { level: string; msg: string; o: object }[] = [];
    const log = {
      info: (o: object, msg: string) => lines.push({ level: 'info', msg, o }),
      warn: (o: object, msg: string) => lines.push({ level: 'warn', msg, o }),
      error: (o: object, msg: string) => lines.push({ level: 'error', msg, o }),
    };
    expect(await ensureContentImported(db, fx.dir, log)).toBe('imported');
    expect(await ensureContentImported(db, fx.dir, log)).toBe('unchanged');
    await fx.edit(AKTO, '        answer: 2', '        answer: 9');
    expect(await ensureContentImported(db, fx.dir, log)).toBe('failed');
    const failure = lines.at(-1);
    expect(failure?.level).toBe('error');
    expect(JSON.stringify(failure?.o)).toContain(`${AKTO}:53:9: error: blocks[4].questions[1].answer`);
    expect(await ensureContentImported(db, join(fx.dir, 'absent'), log)).toBe('failed');
    // The database still serves the last good import.
    expect(await listModules(db)).toHaveLength(4);
  });
});

describe('npm run content -- import', () => {
  let dataDir: string;
  const saved = { DATA_DIR: process.env.DATA_DIR, DATABASE_URL: process.env.DATABASE_URL };
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'emargement-content-cli-'));
    process.env.DATA_DIR = dataDir;
    // The command imports into the configured database: here a fresh embedded one in a temp dir.
    delete process.env.DATABASE_URL;
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('imports, reports what changed, and refuses a change without version bump with file:line', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
    // Through the CLI's bootstrap, as `npm run content -- import` runs it.
    const content = (args: string[]) => runWithContext((ctx) => runContentCommand(args, ctx), io);
    expect(await content(['import', '--dir', fx.dir])).toBe(0);
    expect(out.join('')).toContain('Imported: funds v–→v1, track tn v–→v1, 4 module(s) added, 0 updated, 0 unchanged.');

    await fx.edit(AKTO, 'quote: "Ça marche."', 'quote: "Ça marche vraiment."');
    expect(await content(['import', '--dir', fx.dir])).toBe(1);
    expect(err.join('')).toMatch(
      /tn\/akto\/visibilite\/module\.yaml:2: error: module "akto-visibilite" changed but its version is still 1/,
    );
    expect(err.join('')).toContain('Import refused: nothing was changed in the database.');
  });
});
