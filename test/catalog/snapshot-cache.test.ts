import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/catalog/content.js';
import { importContent } from '../../src/catalog/importer.js';
import { findLearner } from '../../src/catalog/repository/launch-context.js';
import {
  PAGE_CONTEXT_SQL,
  pageContextFromJson,
  readLearnerPageContext,
} from '../../src/catalog/repository/page-context.js';
import { findProfile } from '../../src/catalog/repository/profiles.js';
import { catalogSnapshot } from '../../src/catalog/repository/snapshot.js';
import type { DatabaseHandle, Db } from '../../src/db/index.js';
import { createTestDatabase } from '../helpers/db.js';
import { type ContentFixture, createContentFixture } from './content-fixture.js';
import { insertLearnerProfile } from './profile-fixture.js';

/**
 * The launch pages read funds, branches, themes and modules from an in-process snapshot, kept while the
 * catalogue's stamp is unchanged. `other` is a second Kysely handle on the same database: it stands for
 * another instance (or the CLI), whose writes this process's cache never hears about directly.
 */
let database: DatabaseHandle;
let db: Db;
let other: Db;
let fx: ContentFixture;

async function load() {
  const r = await loadContent(fx.dir);
  if (!r.content) throw new Error(`fixture invalid: ${JSON.stringify(r.problems)}`);
  return r.content;
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
  other = db.withoutPlugins();
  fx = await createContentFixture();
  await importContent(db, await load());
});
afterAll(async () => {
  await fx.cleanup();
  await database.close();
});

const moduleIds = async () => (await catalogSnapshot(db)).routing.moduleRows.map((m) => m.id);

describe('catalog snapshot cache', () => {
  it('serves the same snapshot while the catalogue is unchanged', async () => {
    const first = await catalogSnapshot(db);
    expect(first.funds.map((f) => f.slug)).toContain('akto');
    expect(await catalogSnapshot(db)).toBe(first);
  });

  it('sees an import made by another instance on the next call', async () => {
    expect(await moduleIds()).toContain('akto-visibilite');
    await fx.remove('tn/akto/visibilite/module.yaml');
    await importContent(other, await load());
    expect(await moduleIds()).not.toContain('akto-visibilite');
  });

  it('sees a catalogue row written outside an import (an operator fix)', async () => {
    await other
      .updateTable('funds')
      .set({ name: 'AKTO renommé', updated_at: sql<Date>`now()` })
      .where('slug', '=', 'akto')
      .execute();
    expect((await catalogSnapshot(db)).funds.find((f) => f.slug === 'akto')?.name).toBe('AKTO renommé');
  });

  it('drops its snapshot when this process imports', async () => {
    const before = await catalogSnapshot(db);
    await importContent(db, await load());
    expect(await catalogSnapshot(db)).not.toBe(before);
  });

  it('reads the stamp, the learner and the profile in one statement, as the separate reads find them', async () => {
    const learner = await db
      .insertInto('learners')
      .values({ issuer: 'https://lms.test', sub: 'context-learner', given_name: 'Léa', family_name: 'Durand' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const unknown = '00000000-0000-4000-8000-000000000000';

    // No learner, then a learner without a profile: the stamp alone tells the snapshot it is current.
    const none = await readLearnerPageContext(db, unknown);
    expect(none).toMatchObject({ learner: null, profile: null });
    const snapshot = await catalogSnapshot(db);
    expect(await catalogSnapshot(db, none.stamp)).toBe(snapshot);
    const fresh = await readLearnerPageContext(db, learner.id);
    expect(fresh.learner).toEqual(await findLearner(db, learner.id));
    expect(fresh.profile).toBeNull();

    await insertLearnerProfile(db, learner.id);
    const filled = await readLearnerPageContext(db, learner.id);
    expect(filled.profile).toEqual(await findProfile(db, learner.id));
    expect(filled.profile).toMatchObject({ fundSlug: 'akto', idcc: '1979' });

    // The launch's statement reads the same context (there, `learner` is the row the launch upserted).
    const viaLaunch = async (id: string) => {
      const { rows } = await sql<{ v: unknown }>`
        with learner as (select id, name, given_name, family_name from learners where id = ${id})
        select (${sql.raw(PAGE_CONTEXT_SQL)}) as v`.execute(db);
      return pageContextFromJson(rows[0]?.v);
    };
    expect(await viaLaunch(learner.id)).toEqual(filled);
    const other2 = await db
      .insertInto('learners')
      .values({ issuer: 'https://lms.test', sub: 'page-context-2', given_name: 'Zoé' })
      .returning('id')
      .executeTakeFirstOrThrow();
    expect(await viaLaunch(other2.id)).toEqual(await readLearnerPageContext(db, other2.id));
    expect((await readLearnerPageContext(db, other2.id)).learner).toEqual(await findLearner(db, other2.id));
    expect((await viaLaunch(other2.id)).profile).toBeNull();

    // A catalogue change moves the stamp read within the statement, and the snapshot follows it.
    await other
      .updateTable('funds')
      .set({ name: 'AKTO', updated_at: sql<Date>`now()` })
      .where('slug', '=', 'akto')
      .execute();
    const after = await readLearnerPageContext(db, learner.id);
    expect(after.stamp).not.toBe(fresh.stamp);
    expect(await catalogSnapshot(db, after.stamp)).not.toBe(snapshot);
    expect((await catalogSnapshot(db, after.stamp)).funds.find((f) => f.slug === 'akto')?.name).toBe('AKTO');
  });
});
