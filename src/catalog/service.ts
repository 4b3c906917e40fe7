import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/index.js';
import { BadRequestError, NotFoundError } from '../http/errors.js';
import type { ModuleManifest } from './model.js';
import { findModule, findModuleVersion, loadRoutingCatalog, type ModuleRow } from './repository/catalog.js';
import { findLaunchCustom, findLinkCustom } from './repository/launch-context.js';
import { findProfile, type ProfileRow } from './repository/profiles.js';
import { findProgress, listProgress, openProgress, type ProgressRow, saveProgress } from './repository/progress.js';
import {
  isParcoursTarget,
  isSeenableBlock,
  type LinkTarget,
  learnerProgramme,
  type ProgressState,
  parseLinkTarget,
  progressOf,
  quizOf,
  type Route,
  resolveModule,
  scoreQuiz,
} from './rules.js';

/** What a learner's launch (or a later page of the same session) leads to. */
export type LearnerDestination =
  | { kind: 'onboarding'; target: LinkTarget; fixedFund: string | null }
  | { kind: 'module'; target: LinkTarget; route: Extract<Route, { ok: true }>; module: ModuleRow; profile: ProfileRow }
  | { kind: 'unavailable'; target: LinkTarget; route: Exclude<Route, { ok: true }> };

/** The custom parameters of the launch that opened this session (LTI Core §5.4.1, `custom` claim). */
export async function linkTargetOf(db: Db, launchId: string): Promise<LinkTarget> {
  return parseLinkTarget(await findLaunchCustom(db, launchId));
}

/**
 * Launch routing with the learner's profile. A broken link is reported before onboarding (asking for a
 * profile to then show an error would waste the learner's time); a learner without a profile onboards
 * first whatever the link, because the certificate needs their identity and eligibility comes first.
 */
export async function destinationFor(
  db: Db,
  learnerId: string,
  target: LinkTarget,
  routing?: Awaited<ReturnType<typeof loadRoutingCatalog>>,
  /** The learner's profile when the caller has just read it (null: none); read here when undefined. */
  knownProfile?: ProfileRow | null,
): Promise<LearnerDestination> {
  const [catalog, profile] = await Promise.all([
    routing ?? loadRoutingCatalog(db),
    knownProfile !== undefined ? knownProfile : findProfile(db, learnerId),
  ]);
  const route = resolveModule(target, profile ? { fundSlug: profile.fundSlug, idcc: profile.idcc } : null, catalog);
  if (!route.ok && route.reason !== 'needs_fund') return { kind: 'unavailable', target, route };
  const fixedFund = target.fund !== null && catalog.funds.some((f) => f.slug === target.fund) ? target.fund : null;
  if (!profile) return { kind: 'onboarding', target, fixedFund };
  if (!route.ok) return { kind: 'unavailable', target, route };
  const module = catalog.moduleRows.find((m) => m.id === route.moduleId) as ModuleRow;
  return { kind: 'module', target, route, module, profile };
}

/** French explanation of an unavailable link, and the operators' log line. */
export function explainUnavailable(route: Exclude<Route, { ok: true }>): { message: string; log: string } {
  switch (route.reason) {
    case 'no_target':
      return {
        message: 'Ce lien du cours n’indique pas encore quel module afficher.',
        log: 'resource link has no custom module= or theme= parameter',
      };
    case 'unknown_module':
      return {
        message: 'Le module demandé par ce lien n’existe pas ou a été retiré.',
        log: `unknown module "${route.value}"`,
      };
    case 'unknown_theme':
      return { message: 'Le thème demandé par ce lien n’existe pas.', log: `unknown theme "${route.value}"` };
    case 'ambiguous_theme':
      return {
        message: 'Ce lien du cours est mal paramétré : le thème demandé existe dans plusieurs parcours.',
        log: `theme "${route.value}" exists in several tracks: add custom track=`,
      };
    case 'unknown_fund':
      return {
        message: 'Ce lien du cours désigne un fonds de formation inconnu.',
        log: `unknown fund "${route.value}"`,
      };
    case 'needs_fund':
      return {
        message: 'Votre fonds de formation n’est pas encore connu.',
        log: `theme "${route.theme}" needs a fund`,
      };
    case 'no_module_for_fund':
      return {
        message: 'Le module de votre fonds de formation pour ce thème n’est pas encore disponible.',
        log: `no module for theme "${route.theme}" and fund "${route.fund}"`,
      };
  }
}

// ───────────────────────────── Progress ─────────────────────────────

export interface OpenedModule {
  module: ModuleRow;
  manifest: ModuleManifest;
  version: number;
  progress: ProgressRow;
}

/**
 * The module as this learner sees it in this course: the version they started, or the current one on a
 * first visit (which records `started_at`).
 */
export async function openModuleForLearner(
  db: Db,
  key: { learnerId: string; courseId: string; resourceLinkId: string | null },
  module: ModuleRow,
  fundSlug: string | null,
): Promise<OpenedModule> {
  const progress = await openProgress(
    db,
    { learnerId: key.learnerId, courseId: key.courseId, moduleId: module.id },
    { moduleVersion: module.currentVersion, resourceLinkId: key.resourceLinkId, fundSlug },
  );
  const manifest = await findModuleVersion(db, module.id, progress.moduleVersion);
  if (!manifest) throw new Error(`module_versions row missing for ${module.id} v${progress.moduleVersion}`);
  return { module, manifest, version: progress.moduleVersion, progress };
}

/** A module the learner already opened in this course; 404 otherwise (a learner cannot write progress for a module they were never served). */
export async function openedModule(
  db: Db,
  key: { learnerId: string; courseId: string; moduleId: string },
): Promise<OpenedModule> {
  const progress = await findProgress(db, key);
  if (!progress) {
    throw new NotFoundError(
      'module_not_opened',
      'Ce module ne vous a pas été proposé dans ce cours : rechargez la page du cours.',
      `no progress row for module ${key.moduleId} in this course`,
    );
  }
  const [module, manifest] = await Promise.all([
    findModule(db, key.moduleId),
    findModuleVersion(db, key.moduleId, progress.moduleVersion),
  ]);
  if (!module || !manifest) throw new Error(`module ${key.moduleId} v${progress.moduleVersion} missing`);
  return { module, manifest, version: progress.moduleVersion, progress };
}

/**
 * The answers a quiz form (fields `q0`, `q1`…) carries for a module the learner opened: one per question,
 * null where the field is missing or not a choice number.
 */
export async function quizFormAnswers(
  db: Db,
  key: { learnerId: string; courseId: string; moduleId: string },
  fields: Record<string, string | undefined>,
): Promise<(number | null)[]> {
  const opened = await openedModule(db, key);
  const quiz = opened.manifest.blocks.find((b) => b.type === 'quiz');
  return quiz && quiz.type === 'quiz'
    ? quiz.questions.map((_q, i) => (/^\d+$/.test(fields[`q${i}`] ?? '') ? Number(fields[`q${i}`]) : null))
    : [];
}

export interface ProgressView extends ProgressState {
  moduleId: string;
  moduleVersion: number;
  completedAt: string | null;
}

export function progressView(o: { manifest: ModuleManifest; progress: ProgressRow }): ProgressView {
  const state = progressOf(o.manifest, o.progress.blocksSeen, o.progress.quiz !== null);
  return {
    ...state,
    moduleId: o.progress.moduleId,
    moduleVersion: o.progress.moduleVersion,
    completedAt: o.progress.completedAt?.toISOString() ?? null,
  };
}

/**
 * A learner completed the link they opened a module through (see `linkScopeComplete`). Published to the
 * listeners other capabilities register with `registerModuleCompletedListener` (src/catalog/index.ts).
 */
export interface ModuleCompletedEvent {
  learnerId: string;
  courseId: string;
  resourceLinkId: string | null;
  moduleId: string;
  completedAt: Date;
}

/**
 * Called inside the transaction that records the completion (`db` is that transaction): what a listener
 * writes is committed with the completion or not at all. A listener that throws rolls the completion back.
 */
export type ModuleCompletedListener = (db: Db, event: ModuleCompletedEvent) => Promise<unknown>;

/** What the module-progress services need besides the database: the request's logger and the listeners. */
export interface ProgressContext {
  log: FastifyBaseLogger;
  onCompleted: readonly ModuleCompletedListener[];
}

/** completed_at is written once, the first time the completion rule holds: it is the evidence. */
async function completeIfDone(
  db: Db,
  opened: OpenedModule,
  row: ProgressRow,
  { log, onCompleted }: ProgressContext,
): Promise<ProgressRow> {
  if (row.completedAt !== null) return row;
  const state = progressOf(opened.manifest, row.blocksSeen, row.quiz !== null);
  if (!state.complete) return row;
  const done = await saveProgress(db, row.id, { completedAt: new Date() });
  log.info({ moduleId: row.moduleId, moduleVersion: row.moduleVersion, progressId: row.id }, 'module completed');
  // A theme or parcours link is complete when all of its modules are, not at its first one.
  if (!(await linkScopeComplete(db, done))) return done;
  // Listeners (e.g. the AGS score of the launch's line item) write in this same transaction.
  const event: ModuleCompletedEvent = {
    learnerId: row.learnerId,
    courseId: row.courseId,
    resourceLinkId: row.resourceLinkId,
    moduleId: row.moduleId,
    completedAt: done.completedAt as Date,
  };
  for (const listener of onCompleted) await listener(db, event);
  return done;
}

/**
 * Whether the link a module was opened through is now complete for this learner: a module link with
 * the module; a theme link with the learner's modules of that theme; a parcours link with their whole
 * programme. Only then is the link's line item given its completion score.
 */
async function linkScopeComplete(db: Db, row: ProgressRow): Promise<boolean> {
  if (row.resourceLinkId === null) return true;
  const target = parseLinkTarget(await findLinkCustom(db, row.learnerId, row.resourceLinkId));
  if (target.module !== null && target.view !== 'parcours') return true;
  const [catalog, profile, module, progress] = await Promise.all([
    loadRoutingCatalog(db),
    findProfile(db, row.learnerId),
    findModule(db, row.moduleId),
    listProgress(db, { learnerId: row.learnerId, courseId: row.courseId }),
  ]);
  if (!profile || !module) return true;
  const fund =
    target.fund !== null && catalog.funds.some((f) => f.slug === target.fund) ? target.fund : profile.fundSlug;
  const programme = learnerProgramme(catalog, { fundSlug: fund, idcc: profile.idcc }, module.trackId);
  const scope = isParcoursTarget(target)
    ? programme
    : programme.filter((e) => e.theme === target.theme && (target.position == null || e.position === target.position));
  if (!scope.some((e) => e.moduleId === row.moduleId)) return true;
  const completed = new Set(progress.filter((p) => p.completedAt !== null).map((p) => p.moduleId));
  completed.add(row.moduleId);
  return scope.every((e) => completed.has(e.moduleId));
}

export async function markBlockSeen(
  db: Db,
  key: { learnerId: string; courseId: string; moduleId: string },
  blockId: string,
  context: ProgressContext,
): Promise<{ opened: OpenedModule; progress: ProgressRow }> {
  const opened = await openedModule(db, key);
  if (!isSeenableBlock(opened.manifest, blockId)) {
    throw new BadRequestError(
      'unknown_block',
      'Cette partie n’existe pas dans ce module.',
      `block ${blockId} is not a seeable block of ${key.moduleId} v${opened.version}`,
    );
  }
  return db.transaction().execute(async (tx) => {
    const row = (await findProgress(tx, key, { forUpdate: true })) as ProgressRow;
    let saved = row;
    if (!Object.hasOwn(row.blocksSeen, blockId)) {
      // The first time counts: seeing a block again does not move its evidence.
      saved = await saveProgress(tx, row.id, {
        blocksSeen: { ...row.blocksSeen, [blockId]: new Date().toISOString() },
      });
    }
    const progress = await completeIfDone(tx as unknown as Db, opened, saved, context);
    return { opened, progress };
  });
}

export async function answerQuiz(
  db: Db,
  key: { learnerId: string; courseId: string; moduleId: string },
  answers: readonly unknown[],
  context: ProgressContext,
) {
  const opened = await openedModule(db, key);
  const quiz = quizOf(opened.manifest);
  if (!quiz) throw new BadRequestError('no_quiz', 'Ce module n’a pas de quiz.', `module ${key.moduleId} has no quiz`);
  const score = scoreQuiz(quiz, answers);
  if (!score.ok)
    throw new BadRequestError('quiz_incomplete', score.message, 'answers missing or out of range', {
      questions: quiz.questions.length,
    });
  return db.transaction().execute(async (tx) => {
    const row = (await findProgress(tx, key, { forUpdate: true })) as ProgressRow;
    const saved = await saveProgress(tx, row.id, {
      quiz: {
        answers: answers as number[],
        correct: score.correct,
        total: score.total,
        answeredAt: new Date().toISOString(),
      },
    });
    const progress = await completeIfDone(tx as unknown as Db, opened, saved, context);
    return { opened, progress, score };
  });
}
