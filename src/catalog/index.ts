import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../db/index.js';
import { registerLaunchHandler } from '../lti/index.js';
import { ensureContentImported } from './importer.js';
import {
  findModule,
  listBranches as listBranchRows,
  listFunds as listFundRows,
  listModules as listModuleRows,
  listThemes as listThemeRows,
  loadRoutingCatalog,
  type ModuleRow,
} from './repository/catalog.js';
import { PAGE_CONTEXT_SQL } from './repository/page-context.js';
import { findProfile } from './repository/profiles.js';
import { type CompletionRow, listProgress } from './repository/progress.js';
import { catalogLaunchHandler, catalogRoutes } from './routes/index.js';
import { learnerProgramme } from './rules.js';
import type {
  CatalogContext,
  CatalogRuntime,
  ModulePageFragment,
  ParcoursFragment,
  ParcoursSources,
} from './runtime.js';
import type { ModuleCompletedListener } from './service.js';
import type { Civility, HeadcountBand, Trunk } from './tables.js';

/**
 * The catalog capability: funds and branches, versioned module packages, launch routing by theme (the
 * injection of each fund's module), learner onboarding and profiles, the module page and its completion
 * evidence. The only file other capabilities import from src/catalog/.
 */

export { runContentCommand } from './cli.js';
export { parseLinkTarget } from './rules.js';
export type { ModulePageContext } from './runtime.js';
export type { ModuleCompletedEvent } from './service.js';

declare module 'fastify' {
  interface FastifyInstance {
    catalogRuntime: CatalogRuntime;
  }
}

/**
 * Registers the catalog pages and APIs and the LtiResourceLinkRequest launch handler; on ready, imports
 * `CONTENT_DIR` when it changed since the last import. Its `catalogRuntime` decoration is shared with the
 * whole app, so that plugins declaring 'catalog' as a dependency can call the registration functions below.
 */
export const catalogPlugin = fp(
  async function catalog(app: FastifyInstance): Promise<void> {
    const runtime: CatalogRuntime = { fragments: [], parcours: {}, completionListeners: [] };
    app.decorate('catalogRuntime', runtime);
    const ctx: CatalogContext = { db: app.db, config: app.config, runtime };
    // The learner page's first read (catalogue stamp, learner, profile) rides on the launch's statement.
    registerLaunchHandler(app, 'LtiResourceLinkRequest', catalogLaunchHandler(ctx), {
      read: { sql: PAGE_CONTEXT_SQL },
    });
    app.addHook('onReady', async () => {
      await ensureContentImported(app.db, app.config.contentDir, app.log);
    });
    await app.register(catalogRoutes, { ctx });
  },
  { name: 'catalog', dependencies: ['lti'], fastify: '5.x' },
);

/**
 * Adds markup to every module page (learner pages and course-team previews). The connection-time tracker
 * uses it for its `<script>`; `ctx.preview` tells it not to count time. Call from a plugin that declares
 * 'catalog' as a dependency.
 */
export function registerModulePageFragment(app: FastifyInstance, fragment: ModulePageFragment): void {
  app.catalogRuntime.fragments.push(fragment);
}

/**
 * Lends "Mon parcours" what the catalog does not own: credited time (the tracking), the certificate's
 * state and the issuance rule (the certificates). Call from a plugin that declares 'catalog' as a dependency.
 */
export function registerParcoursSources(app: FastifyInstance, sources: ParcoursSources): void {
  Object.assign(app.catalogRuntime.parcours, sources);
}

/**
 * Adds a section to every learner's "Mon parcours" (before the certificate), e.g. the closing group
 * session. Call from a plugin that declares 'catalog' as a dependency.
 */
export function registerParcoursFragment(app: FastifyInstance, fragment: ParcoursFragment): void {
  app.catalogRuntime.parcoursFragments = [...(app.catalogRuntime.parcoursFragments ?? []), fragment];
}

/**
 * Tells `listener` of every completed link (a module link when its module is complete, a theme or parcours
 * link when all of its modules are), inside the transaction that records the completion. The LTI
 * services use it to queue the completion score. Call from a plugin that declares 'catalog' as a dependency.
 */
export function registerModuleCompletedListener(app: FastifyInstance, listener: ModuleCompletedListener): void {
  app.catalogRuntime.completionListeners.push(listener);
}

// ───────────────────────────── Public read API ─────────────────────────────

/**
 * How far a learner is in their programme in a course (the modules "Mon parcours" lists: common trunk and
 * their fund's, the branch variant where theirs): modules completed and planned. null without a profile.
 * With several tracks, the one holding most of the learner's modules.
 */
export async function programmeProgress(
  db: Db,
  learnerId: string,
  courseId: string,
): Promise<{ done: number; planned: number } | null> {
  const [profile, routing, progress] = await Promise.all([
    findProfile(db, learnerId),
    loadRoutingCatalog(db),
    listProgress(db, { learnerId, courseId }),
  ]);
  if (!profile) return null;
  const completed = new Set(progress.filter((p) => p.completedAt !== null).map((p) => p.moduleId));
  let best = { done: 0, planned: 0 };
  for (const trackId of new Set(routing.themes.map((t) => t.trackId))) {
    const entries = learnerProgramme(routing, { fundSlug: profile.fundSlug, idcc: profile.idcc }, trackId);
    if (entries.length > best.planned) {
      best = { done: entries.filter((e) => completed.has(e.moduleId)).length, planned: entries.length };
    }
  }
  return best;
}

export interface ModuleInfo {
  id: string;
  title: string;
  trackId: string;
  theme: string;
  themeTitle: string;
  trunk: Trunk;
  /** null: common trunk. */
  fundSlug: string | null;
  /** IDCC codes of a branch variant; empty for a fund's default module. */
  branches: string[];
  nominalMinutes: number;
  currentVersion: number;
  /** The module's place in its theme (1: module.yaml, N: module-N.yaml). */
  position: number;
  /** false once the module left the content directory (kept for evidence). */
  active: boolean;
}

const toInfo = (m: ModuleRow): ModuleInfo => ({ ...m });

export async function getModule(db: Db, moduleId: string): Promise<ModuleInfo | null> {
  const m = await findModule(db, moduleId);
  return m ? toInfo(m) : null;
}

export async function listModules(db: Db, options: { includeInactive?: boolean } = {}): Promise<ModuleInfo[]> {
  return (await listModuleRows(db, options)).map(toInfo);
}

export interface FundInfo {
  slug: string;
  /** Current OPCO name. */
  name: string;
  /** OPCA name in 2017. */
  historicalName: string | null;
  sectors: string[];
  active: boolean;
}

export async function listFunds(db: Db, options: { includeInactive?: boolean } = {}): Promise<FundInfo[]> {
  return listFundRows(db, options);
}

export async function listBranches(db: Db): Promise<{ idcc: string; name: string; fundSlug: string }[]> {
  return listBranchRows(db);
}

export async function listThemes(
  db: Db,
): Promise<{ trackId: string; trackTitle: string; slug: string; title: string; trunk: Trunk; position: number }[]> {
  return listThemeRows(db);
}

export interface LearnerProfile {
  learnerId: string;
  civility: Civility;
  familyName: string;
  givenName: string;
  companyName: string;
  companySiret: string;
  headcountBand: HeadcountBand;
  idcc: string | null;
  branchName: string | null;
  /** The branch's own OPCA of 2017 when it was not its fund's (e.g. IDCC 2264 under Actalians); null otherwise. */
  branchHistoricalName: string | null;
  fundSlug: string;
  fundName: string;
  updatedAt: Date;
}

export async function getLearnerProfile(db: Db, learnerId: string): Promise<LearnerProfile | null> {
  const p = await findProfile(db, learnerId);
  if (!p) return null;
  return {
    learnerId: p.learnerId,
    civility: p.civility,
    familyName: p.familyName,
    givenName: p.givenName,
    companyName: p.companyName,
    companySiret: p.companySiret,
    headcountBand: p.headcountBand,
    idcc: p.idcc,
    branchName: p.branchName,
    branchHistoricalName: p.branchHistoricalName,
    fundSlug: p.fundSlug,
    fundName: p.fundName,
    updatedAt: p.updatedAt,
  };
}

/** Modules started (and when completed) per learner and course, with what certificates and exports need. */
export type ModuleCompletion = CompletionRow;

export async function listCompletions(
  db: Db,
  filter: { learnerId?: string; courseId?: string; completedOnly?: boolean },
): Promise<ModuleCompletion[]> {
  return listProgress(db, filter);
}

/** Reads and validates a content directory without a database (the Open edX course export reads the tracks). */
export { loadContent } from './content.js';
export type { ThemeDef, TrackDef } from './model.js';
