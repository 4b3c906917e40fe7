import type { LaunchSession } from '../../lti/index.js';
import type { ModuleRow } from '../repository/catalog.js';
import { pageContextFromJson, readLearnerPageContext } from '../repository/page-context.js';
import type { ProfileRow } from '../repository/profiles.js';
import { type CatalogSnapshot, catalogSnapshot } from '../repository/snapshot.js';
import { isParcoursTarget, type LinkTarget, learnerProgramme } from '../rules.js';
import { type CatalogContext, type Page, type PageRequest, page } from '../runtime.js';
import { destinationFor, explainUnavailable, linkTargetOf, openModuleForLearner } from '../service.js';
import type { ModuleSequence } from '../views/module.js';
import {
  fundName,
  glossaryFor,
  moduleHref,
  modulePage,
  outsideCourse,
  parcoursHref,
  programmeFund,
  unavailablePage,
} from './common.js';
import { parcoursPage } from './parcours.js';
import { onboardingPage } from './profile.js';

/** Where a module sits in the learner's programme, and the next one (within the theme for a theme link). */
export function sequenceFor(
  token: string,
  target: LinkTarget,
  profile: ProfileRow,
  snapshot: CatalogSnapshot,
  module: ModuleRow,
): ModuleSequence {
  const programme = learnerProgramme(
    snapshot.routing,
    { fundSlug: programmeFund(target, profile, snapshot), idcc: profile.idcc },
    module.trackId,
  );
  const sameTheme = programme.filter((e) => e.theme === module.theme);
  const index = programme.findIndex((e) => e.moduleId === module.id);
  const themeLink = !isParcoursTarget(target) && target.module === null;
  let next: ModuleSequence['next'] = null;
  const after = index >= 0 ? programme[index + 1] : undefined;
  if (after && (!themeLink || after.theme === module.theme)) {
    const row = snapshot.routing.moduleRows.find((m) => m.id === after.moduleId);
    if (row) next = { href: moduleHref(token, row.id), title: row.title, sameTheme: after.theme === module.theme };
  }
  const inTheme = sameTheme.findIndex((e) => e.moduleId === module.id);
  return {
    parcoursHref: parcoursHref(token),
    indexInTheme: inTheme >= 0 ? inTheme + 1 : module.position,
    themeCount: Math.max(sameTheme.length, 1),
    next,
  };
}

/**
 * The learner's page for this session's link: onboarding, "Mon parcours" (a link without `module=` or
 * `theme=`, or `view=parcours`), their fund's module, or a clear message. `moduleId` opens another module
 * of the learner's own programme from the same session ("module suivant", "Mon parcours").
 */
export async function learnerPage(
  ctx: CatalogContext,
  request: PageRequest,
  session: LaunchSession,
  token: string,
  options: {
    notice?: string;
    quizError?: string;
    target?: LinkTarget;
    moduleId?: string;
    parcours?: boolean;
    /** The page context the launch's statement read (PAGE_CONTEXT_SQL); read here without it. */
    launchRead?: unknown;
  } = {},
): Promise<Page> {
  const { db } = ctx;
  // One catalogue snapshot for the whole page; the launch passes the link's custom claim it just validated,
  // and the catalogue's stamp, the learner and their profile it read. Otherwise those come in one statement.
  const [target, known] = await Promise.all([
    options.target ?? linkTargetOf(db, session.launchId),
    options.launchRead !== undefined
      ? pageContextFromJson(options.launchRead)
      : readLearnerPageContext(db, session.learnerId),
  ]);
  const snapshot = await catalogSnapshot(db, known.stamp);
  const { learner, profile } = known;
  const wantsParcours = options.parcours === true || (options.moduleId === undefined && isParcoursTarget(target));
  if (wantsParcours || options.moduleId !== undefined) {
    const fixedFund = target.fund !== null && snapshot.funds.some((f) => f.slug === target.fund) ? target.fund : null;
    if (!profile) return onboardingPage(ctx, session, token, fixedFund, { learner }, snapshot);
    if (session.courseId === null) return outsideCourse(request, session);
    if (wantsParcours) {
      const notice = options.notice ? `${options.notice} Voici votre parcours.` : undefined;
      return parcoursPage(ctx, request, session, token, {
        target,
        snapshot,
        profile,
        ...(notice ? { notice } : {}),
      });
    }
    const module = snapshot.routing.moduleRows.find((m) => m.id === options.moduleId);
    const allowed =
      module !== undefined &&
      (module.id === target.module ||
        learnerProgramme(
          snapshot.routing,
          { fundSlug: programmeFund(target, profile, snapshot), idcc: profile.idcc },
          module.trackId,
        ).some((e) => e.moduleId === module.id));
    if (!module || !allowed) {
      return unavailablePage(
        ctx,
        request,
        session,
        token,
        'Ce module ne fait pas partie de votre parcours.',
        `module "${options.moduleId}" is not in the learner's programme`,
        'not_in_programme',
      );
    }
    return serveModule(ctx, request, session, token, {
      module,
      fundSlug: module.fundSlug,
      target,
      snapshot,
      profile,
      ...(options.quizError ? { quizError: options.quizError } : {}),
    });
  }

  const dest = await destinationFor(db, session.learnerId, target, snapshot.routing, profile);
  if (dest.kind === 'unavailable') {
    const { message, log } = explainUnavailable(dest.route);
    return unavailablePage(ctx, request, session, token, message, log, dest.route.reason);
  }
  if (dest.kind === 'onboarding') return onboardingPage(ctx, session, token, dest.fixedFund, { learner }, snapshot);
  if (session.courseId === null) return outsideCourse(request, session);
  request.log.info({ source: dest.route.source, variant: dest.route.variant }, 'link routed');
  return serveModule(ctx, request, session, token, {
    module: dest.module,
    fundSlug: dest.route.fundSlug,
    target,
    snapshot,
    profile: dest.profile,
    ...(options.notice ? { notice: `${options.notice} Voici votre module.` } : {}),
    ...(options.quizError ? { quizError: options.quizError } : {}),
  });
}

async function serveModule(
  ctx: CatalogContext,
  request: PageRequest,
  session: LaunchSession,
  token: string,
  o: {
    module: ModuleRow;
    fundSlug: string | null;
    target: LinkTarget;
    snapshot: CatalogSnapshot;
    profile: ProfileRow;
    notice?: string;
    quizError?: string;
  },
): Promise<Page> {
  const opened = await openModuleForLearner(
    ctx.db,
    { learnerId: session.learnerId, courseId: session.courseId as string, resourceLinkId: session.resourceLinkId },
    o.module,
    o.fundSlug,
  );
  request.log.info({ moduleId: opened.module.id, moduleVersion: opened.version }, 'module served');
  return page(
    modulePage(ctx, session, token, {
      module: opened.module,
      manifest: opened.manifest,
      version: opened.version,
      fundName: await fundName(ctx, opened.module.fundSlug),
      progress: {
        blocksSeen: opened.progress.blocksSeen,
        quiz: opened.progress.quiz,
        completedAt: opened.progress.completedAt,
      },
      glossary: glossaryFor(o.snapshot, opened.module.fundSlug),
      sequence: sequenceFor(token, o.target, o.profile, o.snapshot, opened.module),
      ...(o.notice ? { notice: o.notice } : {}),
      ...(o.quizError ? { quizError: o.quizError } : {}),
    }),
  );
}
