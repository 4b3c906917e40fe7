import type { Glossary, ModuleManifest } from '../model.js';
import type { RoutingCatalog } from '../rules.js';
import type { Trunk } from '../tables.js';
import type { Executor } from './executor.js';

/** The catalogue tables (funds, branches, tracks, themes, modules, module_versions) and the glossary, read. */

export interface FundRow {
  slug: string;
  name: string;
  historicalName: string | null;
  sectors: string[];
  active: boolean;
}

export async function listFunds(db: Executor, options: { includeInactive?: boolean } = {}): Promise<FundRow[]> {
  let q = db.selectFrom('funds').select(['slug', 'name', 'historical_name', 'sectors', 'active']).orderBy('position');
  if (!options.includeInactive) q = q.where('active', '=', true);
  const rows = await q.execute();
  return rows.map((r) => ({
    slug: r.slug,
    name: r.name,
    historicalName: r.historical_name,
    sectors: r.sectors,
    active: r.active,
  }));
}

/** A fund's current name; null for an unknown slug. */
export async function findFundName(db: Executor, slug: string): Promise<string | null> {
  const r = await db.selectFrom('funds').select('name').where('slug', '=', slug).executeTakeFirst();
  return r?.name ?? null;
}

export interface BranchRow {
  idcc: string;
  name: string;
  fundSlug: string;
}

export async function listBranches(db: Executor): Promise<BranchRow[]> {
  const rows = await db
    .selectFrom('branches')
    .innerJoin('funds', 'funds.slug', 'branches.fund_slug')
    .select(['branches.idcc', 'branches.name', 'branches.fund_slug'])
    .where('branches.active', '=', true)
    .where('funds.active', '=', true)
    .orderBy('funds.position')
    .orderBy('branches.idcc')
    .execute();
  return rows.map((r) => ({ idcc: r.idcc, name: r.name, fundSlug: r.fund_slug }));
}

export interface ThemeRow {
  trackId: string;
  trackTitle: string;
  slug: string;
  title: string;
  trunk: Trunk;
  position: number;
  /** The week of the programme (track.json `weeks`); null without pacing. */
  week: number | null;
  /** How many modules the theme holds for the common trunk or each fund. */
  moduleCount: number;
}

export async function listThemes(db: Executor): Promise<ThemeRow[]> {
  const rows = await db
    .selectFrom('themes')
    .innerJoin('tracks', 'tracks.id', 'themes.track_id')
    .select([
      'themes.track_id',
      'tracks.title as track_title',
      'themes.slug',
      'themes.title',
      'themes.trunk',
      'themes.position',
      'themes.week',
      'themes.module_count',
    ])
    .orderBy('themes.track_id')
    .orderBy('themes.position')
    .execute();
  return rows.map((r) => ({
    trackId: r.track_id,
    trackTitle: r.track_title,
    slug: r.slug,
    title: r.title,
    trunk: r.trunk,
    position: r.position,
    week: r.week,
    moduleCount: r.module_count,
  }));
}

export interface TrackRow {
  id: string;
  title: string;
  /** The planned duration stated by track.json; null when it states none. */
  plannedMinutes: number | null;
  weeks: { week: number; title: string; themes: string[] }[];
}

export async function listTracks(db: Executor): Promise<TrackRow[]> {
  const rows = await db
    .selectFrom('tracks')
    .select(['id', 'title', 'planned_minutes', 'weeks'])
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ id: r.id, title: r.title, plannedMinutes: r.planned_minutes, weeks: r.weeks ?? [] }));
}

/** The glossary of the last content import (content/glossary/*.yaml), by area. */
export async function loadGlossary(db: Executor): Promise<Glossary> {
  const r = await db.selectFrom('app_meta').select('value').where('key', '=', 'catalog.glossary').executeTakeFirst();
  return (r?.value as Glossary | undefined) ?? {};
}

export interface ModuleRow {
  id: string;
  trackId: string;
  theme: string;
  themeTitle: string;
  trunk: Trunk;
  fundSlug: string | null;
  branches: string[];
  title: string;
  nominalMinutes: number;
  currentVersion: number;
  /** The module's place in its theme (1 for module.yaml, N for module-N.yaml). */
  position: number;
  active: boolean;
}

function moduleQuery(db: Executor) {
  return db
    .selectFrom('modules')
    .innerJoin('themes', (j) =>
      j.onRef('themes.track_id', '=', 'modules.track_id').onRef('themes.slug', '=', 'modules.theme_slug'),
    )
    .select([
      'modules.id',
      'modules.track_id',
      'modules.theme_slug',
      'themes.title as theme_title',
      'themes.trunk',
      'modules.fund_slug',
      'modules.branches',
      'modules.title',
      'modules.nominal_minutes',
      'modules.current_version',
      'modules.position',
      'modules.active',
    ]);
}

function toModuleRow(r: {
  id: string;
  track_id: string;
  theme_slug: string;
  theme_title: string;
  trunk: Trunk;
  fund_slug: string | null;
  branches: string[];
  title: string;
  nominal_minutes: number;
  current_version: number;
  position: number;
  active: boolean;
}): ModuleRow {
  return {
    id: r.id,
    trackId: r.track_id,
    theme: r.theme_slug,
    themeTitle: r.theme_title,
    trunk: r.trunk,
    fundSlug: r.fund_slug,
    branches: r.branches,
    title: r.title,
    nominalMinutes: r.nominal_minutes,
    currentVersion: r.current_version,
    position: r.position,
    active: r.active,
  };
}

export async function listModules(db: Executor, options: { includeInactive?: boolean } = {}): Promise<ModuleRow[]> {
  let q = moduleQuery(db)
    .orderBy('modules.track_id')
    .orderBy('themes.position')
    .orderBy('modules.position')
    .orderBy('modules.id');
  if (!options.includeInactive) q = q.where('modules.active', '=', true);
  return (await q.execute()).map(toModuleRow);
}

export async function findModule(db: Executor, id: string): Promise<ModuleRow | null> {
  const r = await moduleQuery(db).where('modules.id', '=', id).executeTakeFirst();
  return r ? toModuleRow(r) : null;
}

export async function findModuleVersion(
  db: Executor,
  moduleId: string,
  version: number,
): Promise<ModuleManifest | null> {
  const r = await db
    .selectFrom('module_versions')
    .select('manifest')
    .where('module_id', '=', moduleId)
    .where('version', '=', version)
    .executeTakeFirst();
  return r ? (r.manifest as ModuleManifest) : null;
}

/** Everything launch routing needs, in three small queries (a few dozen rows). */
export async function loadRoutingCatalog(db: Executor): Promise<RoutingCatalog & { moduleRows: ModuleRow[] }> {
  const [moduleRows, themes, funds] = await Promise.all([listModules(db), listThemes(db), listFunds(db)]);
  return routingCatalog(moduleRows, themes, funds);
}

export function routingCatalog(
  moduleRows: ModuleRow[],
  themes: ThemeRow[],
  funds: FundRow[],
): RoutingCatalog & { moduleRows: ModuleRow[] } {
  return {
    moduleRows,
    modules: moduleRows.map((m) => ({
      id: m.id,
      trackId: m.trackId,
      theme: m.theme,
      fund: m.fundSlug,
      branches: m.branches,
      position: m.position,
    })),
    themes: themes.map((t) => ({
      trackId: t.trackId,
      slug: t.slug,
      trunk: t.trunk,
      position: t.position,
      week: t.week,
      moduleCount: t.moduleCount,
    })),
    funds: funds.map((f) => ({ slug: f.slug })),
  };
}
