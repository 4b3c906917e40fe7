import { ForbiddenError, NotFoundError } from '../../http/errors.js';
import type { SafeHtml } from '../../http/html.js';
import type { LaunchSession } from '../../lti/index.js';
import { findModule, findModuleVersion, type ModuleRow } from '../repository/catalog.js';
import {
  findCourse,
  findLearner,
  isLearnerOfCourse,
  type LearnerIdentity,
  listCourseLearners,
} from '../repository/launch-context.js';
import { listProgress } from '../repository/progress.js';
import { type CatalogSnapshot, catalogSnapshot } from '../repository/snapshot.js';
import { isParcoursTarget, learnerProgramme, parcoursTrack, resolveModule } from '../rules.js';
import { type CatalogContext, type Page, page } from '../runtime.js';
import { explainUnavailable, linkTargetOf } from '../service.js';
import {
  type OverviewRow,
  renderCourseLearners,
  renderCourseProgressByWeek,
  renderCourseTeamOverview,
} from '../views/course-team.js';
import { courseOf, fundName, glossaryFor, modulePage, pageSession } from './common.js';

/**
 * What every learner's programme holds: modules and planned minutes, the same for each fund when the
 * content is complete (content check enforces it); the largest when funds differ, never a constant.
 */
function programmeSummary(snapshot: CatalogSnapshot, trackId: string) {
  const track = snapshot.tracks.find((t) => t.id === trackId);
  let best = { modules: 0, plannedMinutes: 0, weeks: track?.weeks.length ?? 0 };
  for (const f of snapshot.funds) {
    const entries = learnerProgramme(snapshot.routing, { fundSlug: f.slug, idcc: null }, trackId);
    const minutes = entries.reduce(
      (n, e) => n + (snapshot.routing.moduleRows.find((m) => m.id === e.moduleId)?.nominalMinutes ?? 0),
      0,
    );
    if (entries.length > best.modules) best = { ...best, modules: entries.length, plannedMinutes: minutes };
  }
  return best.modules > 0 ? best : undefined;
}

/**
 * A parcours link seen by the course team: per week, how many learners finished its modules, are on
 * them, or have not started them (a week is finished when every module the track plans for it is).
 */
async function courseProgressByWeek(
  ctx: CatalogContext,
  courseId: string,
  snapshot: CatalogSnapshot,
  track: CatalogSnapshot['tracks'][number],
): Promise<SafeHtml> {
  const [progress, learners] = await Promise.all([
    listProgress(ctx.db, { courseId }),
    listCourseLearners(ctx.db, courseId),
  ]);
  const weekOf = new Map(snapshot.themes.filter((t) => t.trackId === track.id).map((t) => [t.slug, t.week] as const));
  const planned = new Map<number, number>();
  for (const t of snapshot.themes)
    if (t.trackId === track.id && t.week !== null) planned.set(t.week, (planned.get(t.week) ?? 0) + t.moduleCount);
  const withProfile = learners.filter((l) => l.profile !== null).map((l) => l.learnerId);
  const weeks = track.weeks.map((w) => {
    let done = 0;
    let started = 0;
    for (const learnerId of withProfile) {
      const rows = progress.filter(
        (p) => p.learnerId === learnerId && p.trackId === track.id && weekOf.get(p.theme) === w.week,
      );
      const completed = rows.filter((p) => p.completedAt !== null).length;
      if (rows.length > 0 && completed >= (planned.get(w.week) ?? Number.POSITIVE_INFINITY)) done++;
      else if (rows.length > 0) started++;
    }
    return { title: w.title, done, started, notStarted: withProfile.length - done - started };
  });
  return renderCourseProgressByWeek(weeks, withProfile.length);
}

/** Course-team view of a link: which module each fund gets, with previews. */
export async function overviewPage(
  ctx: CatalogContext,
  session: LaunchSession,
  token: string,
  options: { parcours?: boolean } = {},
): Promise<Page> {
  const { db, runtime } = ctx;
  const [target, snapshot] = await Promise.all([linkTargetOf(db, session.launchId), catalogSnapshot(db)]);
  const parcoursLink = options.parcours === true || isParcoursTarget(target);
  const { routing: catalog, funds, branches, themes } = snapshot;
  const byId = new Map(catalog.moduleRows.map((m) => [m.id, m]));
  const rows: OverviewRow[] = [];
  let linkDescription: string;
  let problem: string | undefined;
  const probe = resolveModule(target, null, catalog);
  const theme = themes.find((t) => t.slug === target.theme && (target.track === null || t.trackId === target.track));
  const asRow = (id: string) => {
    const m = byId.get(id) as ModuleRow;
    return { id: m.id, title: m.title, version: m.currentVersion };
  };
  if (parcoursLink) {
    linkDescription =
      'Ce lien affiche « Mon parcours » : chaque apprenant y voit ses modules semaine par semaine (le tronc commun et ceux de son fonds), où il en est, son temps de formation et son certificat.';
  } else if (target.module !== null) {
    linkDescription = `Ce lien affiche un module fixe (module=${target.module}) : le même pour tous les apprenants.`;
    if (probe.ok) rows.push({ fund: null, module: asRow(probe.moduleId), variants: [] });
  } else if (target.theme !== null && theme) {
    linkDescription =
      theme.trunk === 'common'
        ? `Ce lien affiche le thème « ${theme.title} » du tronc commun : les mêmes modules pour tous les apprenants, l’un après l’autre.`
        : `Ce lien affiche le thème « ${theme.title} » : chaque apprenant voit le module de son fonds de formation, puis les suivants du thème.`;
    // The theme's later modules, in order, for one owner (the default of each position).
    const later = (fund: string | null) =>
      catalog.moduleRows
        .filter(
          (m) =>
            m.trackId === theme.trackId &&
            m.theme === theme.slug &&
            m.fundSlug === fund &&
            m.branches.length === 0 &&
            m.position > 1,
        )
        .sort((a, b) => a.position - b.position)
        .map((m) => asRow(m.id));
    if (theme.trunk === 'common') {
      if (probe.ok) rows.push({ fund: null, module: asRow(probe.moduleId), variants: [], followedBy: later(null) });
    } else {
      for (const f of funds.filter((x) => target.fund === null || x.slug === target.fund)) {
        const route = resolveModule({ ...target, fund: f.slug }, null, catalog);
        const variants = catalog.moduleRows
          .filter(
            (m) =>
              m.trackId === theme.trackId && m.theme === theme.slug && m.fundSlug === f.slug && m.branches.length > 0,
          )
          .map((m) => ({
            id: m.id,
            title: m.title,
            version: m.currentVersion,
            branches: m.branches.map((idcc) => ({ idcc, name: branches.find((b) => b.idcc === idcc)?.name ?? idcc })),
          }));
        rows.push({ fund: f, module: route.ok ? asRow(route.moduleId) : null, variants, followedBy: later(f.slug) });
      }
    }
  } else {
    linkDescription = 'Ce lien n’indique pas encore quel thème ou quel module afficher.';
  }
  if (!parcoursLink && !probe.ok && probe.reason !== 'needs_fund')
    problem = `${explainUnavailable(probe).message} (${explainUnavailable(probe).log})`;
  const trackId = parcoursTrack(target, catalog);
  const track = snapshot.tracks.find((t) => t.id === trackId);
  const programme = track ? programmeSummary(snapshot, track.id) : undefined;
  const courseProgress =
    parcoursLink && track && session.courseId !== null
      ? await courseProgressByWeek(ctx, session.courseId, snapshot, track)
      : undefined;
  const issuanceRule =
    session.courseId !== null && runtime.parcours.issuanceRule
      ? await runtime.parcours.issuanceRule(session.courseId).catch(() => undefined)
      : undefined;
  return page(
    renderCourseTeamOverview({
      session: pageSession(ctx, session, token),
      linkDescription,
      fixedFund: target.fund,
      rows,
      problem,
      programme,
      courseProgress,
      issuanceRule,
      themes: themes.map((t) => ({ trackTitle: t.trackTitle, slug: t.slug, title: t.title, trunk: t.trunk })),
      modules: catalog.moduleRows.map((m) => ({
        id: m.id,
        title: m.title,
        fund: m.fundSlug ? (funds.find((f) => f.slug === m.fundSlug)?.name ?? m.fundSlug) : 'tronc commun',
      })),
    }),
  );
}

/** A module as a learner of a fund (or any learner) sees it, recording nothing. */
export async function previewPage(
  ctx: CatalogContext,
  session: LaunchSession,
  token: string,
  query: { module: string; fund?: string | undefined },
): Promise<Page> {
  const module = await findModule(ctx.db, query.module);
  if (!module)
    throw new NotFoundError('unknown_module', 'Ce module n’existe pas.', `preview of unknown module ${query.module}`);
  const manifest = await findModuleVersion(ctx.db, module.id, module.currentVersion);
  if (!manifest) throw new Error(`module_versions row missing for ${module.id}`);
  const fund = query.fund ? await fundName(ctx, query.fund) : null;
  const variant =
    module.branches.length > 0 ? ` (variante pour les conventions collectives ${module.branches.join(', ')})` : '';
  const label = module.fundSlug
    ? `vous voyez ce module comme un apprenant de ${fund ?? (await fundName(ctx, module.fundSlug)) ?? module.fundSlug}${variant}`
    : 'vous voyez ce module comme n’importe quel apprenant (tronc commun ou module fixe)';
  return page(
    modulePage(ctx, session, token, {
      module,
      manifest,
      version: module.currentVersion,
      fundName: await fundName(ctx, module.fundSlug),
      progress: null,
      preview: { label },
      glossary: glossaryFor(await catalogSnapshot(ctx.db), module.fundSlug),
    }),
  );
}

/** The learners of the session's course, with their profile and progress. */
export async function courseLearnersPage(ctx: CatalogContext, session: LaunchSession, token: string): Promise<Page> {
  const courseId = courseOf(session);
  const [course, learners] = await Promise.all([findCourse(ctx.db, courseId), listCourseLearners(ctx.db, courseId)]);
  return page(
    renderCourseLearners({
      session: pageSession(ctx, session, token),
      courseTitle: course?.title ?? course?.label ?? 'Ce cours',
      learners: learners.map((l) => ({
        id: l.learnerId,
        name: l.profile
          ? `${l.profile.givenName} ${l.profile.familyName}`
          : (l.name ?? ([l.givenName, l.familyName].filter(Boolean).join(' ') || 'Apprenant sans nom')),
        company: l.profile?.companyName ?? null,
        fund: l.profile?.fundName ?? null,
        completed: l.completed,
        started: l.started,
      })),
    }),
  );
}

/** A course-team member may only touch learners of the course their session belongs to. */
export async function courseLearner(
  ctx: CatalogContext,
  session: LaunchSession,
  learnerId: string,
): Promise<LearnerIdentity> {
  const courseId = courseOf(session);
  if (!(await isLearnerOfCourse(ctx.db, learnerId, courseId))) {
    throw new NotFoundError(
      'learner_not_in_course',
      'Cet apprenant ne fait pas partie de ce cours.',
      'learner has no launch in the session course',
    );
  }
  const learner = await findLearner(ctx.db, learnerId);
  if (!learner) throw new ForbiddenError('learner_unknown');
  return learner;
}
