import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentHash, loadContent, trackHash } from '../../src/catalog/content.js';
import { importContent } from '../../src/catalog/importer.js';
import { listCompletions, listModules } from '../../src/catalog/index.js';
import { loadRoutingCatalog } from '../../src/catalog/repository/catalog.js';
import { saveProgress } from '../../src/catalog/repository/progress.js';
import { learnerProgramme } from '../../src/catalog/rules.js';
import { openModuleForLearner } from '../../src/catalog/service.js';
import type { DatabaseHandle, Db } from '../../src/db/index.js';
import { createTestDatabase } from '../helpers/db.js';
import { insertLearnerProfile } from './profile-fixture.js';
import { createProgrammeFixture, FUND_SLUGS } from './programme-fixture.js';

/**
 * The upgrade from the 9-module catalogue (one module per theme, a track without pacing) to the programme
 * as funded (16 modules per learner), on a database holding learners' progress: every existing module id
 * keeps its meaning (theme, fund, version, content), its progress and completion; the new modules are
 * added beside them.
 */
let database: DatabaseHandle;
let db: Db;
beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
});
afterAll(() => database.close());

async function load(v1: boolean) {
  const fx = await createProgrammeFixture({ v1 });
  try {
    const r = await loadContent(fx.dir);
    if (!r.content) throw new Error(JSON.stringify(r.problems));
    return r.content;
  } finally {
    await fx.cleanup();
  }
}

describe('content import: from the 9-module catalogue to the 16-module programme', () => {
  it('keeps every module id, its progress and completions, and adds the new modules', async () => {
    const first = await importContent(db, await load(true));
    expect(first.added).toHaveLength(4 + 5 * 5);
    const before = await listModules(db);

    // A learner of AKTO finished a module and started another, under the 9-module catalogue.
    const learner = await db
      .insertInto('learners')
      .values({ issuer: 'https://lms.test', sub: 'upgrade-learner' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const course = await db
      .insertInto('courses')
      .values({ issuer: 'https://lms.test', context_id: 'course-upgrade' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await insertLearnerProfile(db, learner.id);
    const key = { learnerId: learner.id, courseId: course.id, resourceLinkId: null };
    const visibility = before.find((m) => m.id === 'akto-visibilite');
    const coeur = before.find((m) => m.id === 'akto-coeur-de-metier');
    if (!visibility || !coeur) throw new Error('fixture');
    const done = await openModuleForLearner(db, key, visibility, 'akto');
    const completedAt = new Date('2026-03-10T10:00:00Z');
    await saveProgress(db, done.progress.id, { completedAt });
    await openModuleForLearner(db, key, coeur, 'akto');
    const progressBefore = await listCompletions(db, { learnerId: learner.id });
    const versionsBefore = await db.selectFrom('module_versions').selectAll().orderBy('module_id').execute();

    const upgrade = await importContent(db, await load(false));
    expect(upgrade.tracks).toEqual([{ id: 'transition-numerique', from: 1, to: 2, applied: true }]);
    expect(upgrade.added).toHaveLength(4 + 5 * 3);
    expect(upgrade.updated).toEqual([]);
    expect(upgrade.unchanged).toBe(29);
    expect(upgrade.deactivated).toEqual([]);

    // Every module of the 9-module catalogue: same id, theme, fund, version, now module 1 of its theme.
    const after = await listModules(db);
    for (const m of before) {
      expect(after.find((x) => x.id === m.id)).toEqual({ ...m, position: 1 });
    }
    // Their imported content is the same row (content hash, manifest): evidence of what was done.
    const versionsAfter = await db.selectFrom('module_versions').selectAll().orderBy('module_id').execute();
    for (const v of versionsBefore) expect(versionsAfter.find((x) => x.module_id === v.module_id)).toEqual(v);
    // Progress and completion stay as they were.
    expect(await listCompletions(db, { learnerId: learner.id })).toEqual(progressBefore);

    // A branch whose OPCA of 2017 was not its fund's keeps its own name (private hospitalisation).
    const branch = await db
      .selectFrom('branches')
      .select(['fund_slug', 'historical_name'])
      .where('idcc', '=', '2264')
      .executeTakeFirstOrThrow();
    expect(branch).toEqual({ fund_slug: 'opco-sante', historical_name: 'Actalians' });

    // Every fund's learner now follows 16 modules, the finished one among them.
    const catalog = await loadRoutingCatalog(db);
    for (const fund of FUND_SLUGS) {
      const programme = learnerProgramme(catalog, { fundSlug: fund, idcc: null }, 'transition-numerique');
      expect(programme, fund).toHaveLength(16);
      expect(programme.filter((e) => e.trunk === 'common')).toHaveLength(8);
      expect(programme.map((e) => e.week)).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]);
    }
    const akto = learnerProgramme(catalog, { fundSlug: 'akto', idcc: '1979' }, 'transition-numerique');
    expect(akto.map((e) => e.moduleId)).toContain('akto-visibilite');
    expect(akto.slice(8, 10).map((e) => e.moduleId)).toEqual(['akto-coeur-de-metier', 'akto-coeur-de-metier-2']);
  });

  it('a track.json without pacing hashes as before pacing existed (no spurious "bump the version")', async () => {
    const c = await load(true);
    const entry = c.tracks[0];
    if (!entry) throw new Error('no track');
    const { track } = entry;
    expect(trackHash(track)).toBe(
      contentHash({
        id: track.id,
        title: track.title,
        version: track.version,
        themes: track.themes.map(({ slug, title, trunk, order }) => ({ slug, title, trunk, order })),
      }),
    );
    // A module file without the v2 fields hashes without them too.
    for (const m of c.modules) expect(Object.keys(m.manifest)).not.toContain('position');
  });
});
