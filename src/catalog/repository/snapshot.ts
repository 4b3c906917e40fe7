import { sql } from 'kysely';
import type { Db } from '../../db/index.js';
import type { Glossary } from '../model.js';
import type { RoutingCatalog } from '../rules.js';
import {
  type BranchRow,
  type FundRow,
  listBranches,
  listFunds,
  listModules,
  listThemes,
  listTracks,
  loadGlossary,
  type ModuleRow,
  routingCatalog,
  type ThemeRow,
  type TrackRow,
} from './catalog.js';
import type { Executor } from './executor.js';

/** The catalogue as the launch pages read it, cached per database handle until the next import. */

/** What the launch pages read on every request: a few dozen rows that change only with a content import. */
export interface CatalogSnapshot {
  funds: FundRow[];
  branches: BranchRow[];
  themes: ThemeRow[];
  tracks: TrackRow[];
  glossary: Glossary;
  routing: RoutingCatalog & { moduleRows: ModuleRow[] };
}

/**
 * The catalogue's version stamp, one cheap expression (read alone, or inside another statement): when the
 * last content import wrote its sources in app_meta (every import does, in its transaction), plus the row
 * count and latest update of the catalogue tables themselves, so that rows written outside an import (an
 * operator's fix, a test) are seen as well. Plain SQL text without parameters, so that other statements
 * (a learner page's first read, the launch's statement) can embed it.
 */
export const CATALOG_STAMP_SQL = `concat_ws('|',
      (select max(updated_at)::text from app_meta where key like 'catalog.%'),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from funds),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from branches),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from tracks),
      (select count(*)::text from themes),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from modules)
    )`;
const catalogStampSql = sql.raw<string>(CATALOG_STAMP_SQL);

async function readCatalogStamp(db: Executor): Promise<string> {
  const { rows } = await sql<{ stamp: string }>`select ${catalogStampSql} as stamp`.execute(db);
  return rows[0]?.stamp ?? '';
}

/** One cache per database handle: test apps (and the CLI) each have their own. */
const snapshots = new WeakMap<object, { stamp: string; snapshot: Promise<CatalogSnapshot> }>();

/**
 * Funds, branches, themes and modules as of the catalogue's current version. The stamp is read on every
 * call (one statement instead of the four lists), so an import by another instance or the CLI is seen by
 * the next request; an import in this process also drops the cache at once (`forgetCatalogSnapshot`).
 * Callers read it once per request and pass it along. `knownStamp`: the stamp a caller has just read within
 * a statement of its own (`CATALOG_STAMP_SQL`, e.g. the learner pages' first read), so it is not read twice.
 */
export async function catalogSnapshot(db: Db, knownStamp?: string): Promise<CatalogSnapshot> {
  const stamp = knownStamp ?? (await readCatalogStamp(db));
  const cached = snapshots.get(db);
  if (cached && cached.stamp === stamp) return cached.snapshot;
  const snapshot = (async () => {
    const [funds, branches, themes, moduleRows, tracks, glossary] = await Promise.all([
      listFunds(db),
      listBranches(db),
      listThemes(db),
      listModules(db),
      listTracks(db),
      loadGlossary(db),
    ]);
    return { funds, branches, themes, tracks, glossary, routing: routingCatalog(moduleRows, themes, funds) };
  })();
  snapshots.set(db, { stamp, snapshot });
  // A failed load must not stay cached.
  snapshot.catch(() => {
    if (snapshots.get(db)?.snapshot === snapshot) snapshots.delete(db);
  });
  return snapshot;
}

export function forgetCatalogSnapshot(db: Db): void {
  snapshots.delete(db);
}
