import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
import { launchedAsLearnerIn } from '../lti/index.js';
import type { Glossary, ModuleManifest } from './model.js';
import type { RoutingCatalog } from './rules.js';
import type { Civility, HeadcountBand, ProfileAuthorRole, QuizAnswersRecord, Trunk } from './tables.js';

type Executor = Db | Transaction<Database>;

// ───────────────────────────── Catalog reads ─────────────────────────────

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

function routingCatalog(
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

// ───────────────────────────── Catalog snapshot (cached in process) ─────────────────────────────

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
 * The catalogue's version stamp, one cheap statement: when the last content import wrote its sources in
 * app_meta (every import does, in its transaction), plus the row count and latest update of the catalogue
 * tables themselves, so that rows written outside an import (an operator's fix, a test) are seen as well.
 */
async function readCatalogStamp(db: Executor): Promise<string> {
  const { rows } = await sql<{ stamp: string }>`
    select concat_ws('|',
      (select max(updated_at)::text from app_meta where key like 'catalog.%'),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from funds),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from branches),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from tracks),
      (select count(*)::text from themes),
      (select count(*) || '@' || coalesce(max(updated_at)::text, '') from modules)
    ) as stamp`.execute(db);
  return rows[0]?.stamp ?? '';
}

/** One cache per database handle: test apps (and the CLI) each have their own. */
const snapshots = new WeakMap<object, { stamp: string; snapshot: Promise<CatalogSnapshot> }>();

/**
 * Funds, branches, themes and modules as of the catalogue's current version. The stamp is read on every
 * call (one statement instead of the four lists), so an import by another instance or the CLI is seen by
 * the next request; an import in this process also drops the cache at once (`forgetCatalogSnapshot`).
 * Callers read it once per request and pass it along.
 */
export async function catalogSnapshot(db: Db): Promise<CatalogSnapshot> {
  const stamp = await readCatalogStamp(db);
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

// ───────────────────────────── Launch context (tables of the LTI capability, read only) ─────────────────────────────

/** The custom parameters of a learner's latest launch of a resource link. */
export async function findLinkCustom(
  db: Executor,
  learnerId: string,
  resourceLinkId: string,
): Promise<Record<string, string> | null> {
  const r = await db
    .selectFrom('lti_launches')
    .select('custom')
    .where('learner_id', '=', learnerId)
    .where('resource_link_id', '=', resourceLinkId)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return r ? r.custom : null;
}

export async function findLaunchCustom(db: Executor, launchId: string): Promise<Record<string, string> | null> {
  const r = await db.selectFrom('lti_launches').select('custom').where('id', '=', launchId).executeTakeFirst();
  return r ? r.custom : null;
}

export interface LearnerIdentity {
  id: string;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
}

export async function findLearner(db: Executor, learnerId: string): Promise<LearnerIdentity | null> {
  const r = await db
    .selectFrom('learners')
    .select(['id', 'name', 'given_name', 'family_name'])
    .where('id', '=', learnerId)
    .executeTakeFirst();
  return r ? { id: r.id, name: r.name, givenName: r.given_name, familyName: r.family_name } : null;
}

export async function findCourse(
  db: Executor,
  courseId: string,
): Promise<{ id: string; title: string | null; label: string | null } | null> {
  const r = await db
    .selectFrom('courses')
    .select(['id', 'title', 'label'])
    .where('id', '=', courseId)
    .executeTakeFirst();
  return r ?? null;
}

/** A learner "of a course": launched something in it, or has progress in it. */
export async function isLearnerOfCourse(db: Executor, learnerId: string, courseId: string): Promise<boolean> {
  const r = await db
    .selectFrom('lti_launches')
    .select('id')
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .where('role', '=', 'learner')
    .limit(1)
    .executeTakeFirst();
  return r !== undefined;
}

export interface CourseLearnerRow {
  learnerId: string;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  profile: { givenName: string; familyName: string; companyName: string; fundName: string } | null;
  started: number;
  completed: number;
}

export async function listCourseLearners(db: Executor, courseId: string): Promise<CourseLearnerRow[]> {
  const rows = await db
    .selectFrom('learners')
    .leftJoin('learner_profiles', 'learner_profiles.learner_id', 'learners.id')
    .leftJoin('funds', 'funds.slug', 'learner_profiles.fund_slug')
    .select((eb) => [
      'learners.id',
      'learners.name',
      'learners.given_name',
      'learners.family_name',
      'learner_profiles.given_name as p_given_name',
      'learner_profiles.family_name as p_family_name',
      'learner_profiles.company_name',
      'funds.name as fund_name',
      eb
        .selectFrom('module_progress')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('module_progress.learner_id', '=', 'learners.id')
        .where('module_progress.course_id', '=', courseId)
        .as('started'),
      eb
        .selectFrom('module_progress')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('module_progress.learner_id', '=', 'learners.id')
        .where('module_progress.course_id', '=', courseId)
        .where('module_progress.completed_at', 'is not', null)
        .as('completed'),
    ])
    .where(launchedAsLearnerIn(courseId))
    .orderBy('learner_profiles.family_name')
    .orderBy('learners.name')
    .execute();
  return rows.map((r) => ({
    learnerId: r.id,
    name: r.name,
    givenName: r.given_name,
    familyName: r.family_name,
    profile:
      r.company_name !== null && r.p_given_name !== null && r.p_family_name !== null
        ? {
            givenName: r.p_given_name,
            familyName: r.p_family_name,
            companyName: r.company_name,
            fundName: r.fund_name ?? '',
          }
        : null,
    started: Number(r.started ?? 0),
    completed: Number(r.completed ?? 0),
  }));
}

// ───────────────────────────── Profiles ─────────────────────────────

export interface ProfileRow {
  learnerId: string;
  civility: Civility;
  familyName: string;
  givenName: string;
  companyName: string;
  companySiret: string;
  headcountBand: HeadcountBand;
  idcc: string | null;
  fundSlug: string;
  fundName: string;
  branchName: string | null;
  /** The branch's own OPCA of 2017 when it was not its fund's (funds.json); null otherwise. */
  branchHistoricalName: string | null;
  createdAt: Date;
  updatedAt: Date;
  updatedBy: string | null;
  updatedByRole: ProfileAuthorRole;
}

export async function findProfile(db: Executor, learnerId: string): Promise<ProfileRow | null> {
  const r = await db
    .selectFrom('learner_profiles as p')
    .innerJoin('funds as f', 'f.slug', 'p.fund_slug')
    .leftJoin('branches as b', 'b.idcc', 'p.idcc')
    .selectAll('p')
    .select(['f.name as fund_name', 'b.name as branch_name', 'b.historical_name as branch_historical_name'])
    .where('p.learner_id', '=', learnerId)
    .executeTakeFirst();
  if (!r) return null;
  return {
    learnerId: r.learner_id,
    civility: r.civility,
    familyName: r.family_name,
    givenName: r.given_name,
    companyName: r.company_name,
    companySiret: r.company_siret,
    headcountBand: r.headcount_band,
    idcc: r.idcc,
    fundSlug: r.fund_slug,
    fundName: r.fund_name,
    branchName: r.branch_name,
    branchHistoricalName: r.branch_historical_name,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
    updatedByRole: r.updated_by_role,
  };
}

export async function upsertProfile(
  db: Executor,
  learnerId: string,
  p: {
    civility: Civility;
    familyName: string;
    givenName: string;
    companyName: string;
    siret: string;
    headcountBand: HeadcountBand;
    idcc: string | null;
    fundSlug: string;
  },
  author: { learnerId: string; role: ProfileAuthorRole },
): Promise<void> {
  const values = {
    civility: p.civility,
    family_name: p.familyName,
    given_name: p.givenName,
    company_name: p.companyName,
    company_siret: p.siret,
    headcount_band: p.headcountBand,
    idcc: p.idcc,
    fund_slug: p.fundSlug,
    updated_by: author.learnerId,
    updated_by_role: author.role,
  };
  await db
    .insertInto('learner_profiles')
    .values({ learner_id: learnerId, ...values })
    .onConflict((oc) => oc.column('learner_id').doUpdateSet({ ...values, updated_at: sql`now()` }))
    .execute();
}

// ───────────────────────────── Progress ─────────────────────────────

export interface ProgressRow {
  id: string;
  learnerId: string;
  courseId: string;
  moduleId: string;
  moduleVersion: number;
  resourceLinkId: string | null;
  fundSlug: string | null;
  blocksSeen: Record<string, string>;
  quiz: QuizAnswersRecord | null;
  startedAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

function toProgress(r: {
  id: string;
  learner_id: string;
  course_id: string;
  module_id: string;
  module_version: number;
  resource_link_id: string | null;
  fund_slug: string | null;
  blocks_seen: Record<string, string>;
  quiz_answers: QuizAnswersRecord | null;
  started_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}): ProgressRow {
  return {
    id: r.id,
    learnerId: r.learner_id,
    courseId: r.course_id,
    moduleId: r.module_id,
    moduleVersion: r.module_version,
    resourceLinkId: r.resource_link_id,
    fundSlug: r.fund_slug,
    blocksSeen: r.blocks_seen,
    quiz: r.quiz_answers,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    completedAt: r.completed_at,
  };
}

export async function findProgress(
  db: Executor,
  key: { learnerId: string; courseId: string; moduleId: string },
  options: { forUpdate?: boolean } = {},
): Promise<ProgressRow | null> {
  let q = db
    .selectFrom('module_progress')
    .selectAll()
    .where('learner_id', '=', key.learnerId)
    .where('course_id', '=', key.courseId)
    .where('module_id', '=', key.moduleId);
  if (options.forUpdate) q = q.forUpdate();
  const r = await q.executeTakeFirst();
  return r ? toProgress(r) : null;
}

/** The progress row of a module the learner opens; created at the module's current version the first time. */
export async function openProgress(
  db: Executor,
  key: { learnerId: string; courseId: string; moduleId: string },
  init: { moduleVersion: number; resourceLinkId: string | null; fundSlug: string | null },
): Promise<ProgressRow> {
  await db
    .insertInto('module_progress')
    .values({
      learner_id: key.learnerId,
      course_id: key.courseId,
      module_id: key.moduleId,
      module_version: init.moduleVersion,
      resource_link_id: init.resourceLinkId,
      fund_slug: init.fundSlug,
    })
    .onConflict((oc) => oc.columns(['learner_id', 'course_id', 'module_id']).doNothing())
    .execute();
  const row = await findProgress(db, key);
  if (!row) throw new Error('module_progress row vanished after insert');
  return row;
}

export async function saveProgress(
  db: Executor,
  id: string,
  update: { blocksSeen?: Record<string, string>; quiz?: QuizAnswersRecord; completedAt?: Date | null },
): Promise<ProgressRow> {
  const r = await db
    .updateTable('module_progress')
    .set({
      ...(update.blocksSeen ? { blocks_seen: JSON.stringify(update.blocksSeen) } : {}),
      ...(update.quiz ? { quiz_answers: JSON.stringify(update.quiz) } : {}),
      ...(update.completedAt ? { completed_at: update.completedAt } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toProgress(r);
}

export interface CompletionRow {
  learnerId: string;
  courseId: string;
  moduleId: string;
  moduleVersion: number;
  trackId: string;
  theme: string;
  trunk: Trunk;
  fundSlug: string | null;
  nominalMinutes: number;
  startedAt: Date;
  completedAt: Date | null;
}

export async function listProgress(
  db: Executor,
  filter: { learnerId?: string | undefined; courseId?: string | undefined; completedOnly?: boolean },
): Promise<CompletionRow[]> {
  let q = db
    .selectFrom('module_progress as p')
    .innerJoin('modules as m', 'm.id', 'p.module_id')
    .innerJoin('themes as t', (j) => j.onRef('t.track_id', '=', 'm.track_id').onRef('t.slug', '=', 'm.theme_slug'))
    .innerJoin('module_versions as v', (j) =>
      j.onRef('v.module_id', '=', 'p.module_id').onRef('v.version', '=', 'p.module_version'),
    )
    .select([
      'p.learner_id',
      'p.course_id',
      'p.module_id',
      'p.module_version',
      'm.track_id',
      'm.theme_slug',
      't.trunk',
      'p.fund_slug',
      sql<number>`(v.manifest->>'nominalMinutes')::int`.as('nominal_minutes'),
      'p.started_at',
      'p.completed_at',
    ])
    .orderBy('p.started_at');
  if (filter.learnerId !== undefined) q = q.where('p.learner_id', '=', filter.learnerId);
  if (filter.courseId !== undefined) q = q.where('p.course_id', '=', filter.courseId);
  if (filter.completedOnly) q = q.where('p.completed_at', 'is not', null);
  const rows = await q.execute();
  return rows.map((r) => ({
    learnerId: r.learner_id,
    courseId: r.course_id,
    moduleId: r.module_id,
    moduleVersion: r.module_version,
    trackId: r.track_id,
    theme: r.theme_slug,
    trunk: r.trunk,
    fundSlug: r.fund_slug,
    nominalMinutes: Number(r.nominal_minutes),
    startedAt: r.started_at,
    completedAt: r.completed_at,
  }));
}
