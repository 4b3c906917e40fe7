import type { SafeHtml } from '../../http/html.js';
import type { LaunchSession } from '../../lti/index.js';
import type { ModuleRow } from '../repository/catalog.js';
import type { ProfileRow } from '../repository/profiles.js';
import { listProgress } from '../repository/progress.js';
import type { CatalogSnapshot } from '../repository/snapshot.js';
import { type LinkTarget, learnerProgramme, parcoursTrack } from '../rules.js';
import { type CatalogContext, type Page, type PageRequest, page } from '../runtime.js';
import { type ParcoursModule, type ParcoursWeek, renderParcoursPage } from '../views/parcours.js';
import { moduleHref, pageSession, programmeFund, unavailablePage } from './common.js';

/** "Mon parcours": the learner's modules by week, their status and time, what next, the certificate. */
export async function parcoursPage(
  ctx: CatalogContext,
  request: PageRequest,
  session: LaunchSession,
  token: string,
  o: { target: LinkTarget; snapshot: CatalogSnapshot; profile: ProfileRow; notice?: string },
): Promise<Page> {
  const { snapshot, profile, target } = o;
  const courseId = session.courseId as string;
  const trackId = parcoursTrack(target, snapshot.routing);
  const track = snapshot.tracks.find((t) => t.id === trackId);
  if (!trackId || !track) {
    return unavailablePage(
      ctx,
      request,
      session,
      token,
      'Ce lien du cours ne désigne pas de parcours connu.',
      target.track === null ? 'several tracks: add custom track=' : `unknown track "${target.track}"`,
      'unknown_track',
    );
  }
  const fund = programmeFund(target, profile, snapshot);
  const entries = learnerProgramme(snapshot.routing, { fundSlug: fund, idcc: profile.idcc }, trackId);
  const sources = ctx.runtime.parcours;
  const [progress, times, certificate] = await Promise.all([
    listProgress(ctx.db, { learnerId: session.learnerId, courseId }),
    sources.times?.(session.learnerId, courseId).catch((err: unknown) => {
      request.log.warn({ err }, 'credited time unavailable for Mon parcours');
      return null;
    }) ?? null,
    sources.certificate?.(session.learnerId, courseId).catch((err: unknown) => {
      request.log.warn({ err }, 'certificate state unavailable for Mon parcours');
      return null;
    }) ?? null,
  ]);
  const byModule = new Map(progress.map((p) => [p.moduleId, p]));
  const rows = new Map(snapshot.routing.moduleRows.map((m) => [m.id, m]));
  const themeTitle = new Map(snapshot.themes.map((t) => [`${t.trackId}|${t.slug}`, t.title]));
  const toModule = (e: (typeof entries)[number]): ParcoursModule => {
    const row = rows.get(e.moduleId) as ModuleRow;
    const p = byModule.get(e.moduleId);
    return {
      id: e.moduleId,
      title: row.title,
      themeTitle: themeTitle.get(`${trackId}|${e.theme}`) ?? e.theme,
      nominalMinutes: row.nominalMinutes,
      status: p?.completedAt ? 'done' : p ? 'started' : 'todo',
      creditedSeconds: times ? (times.byModule.get(e.moduleId) ?? 0) : null,
      href: moduleHref(token, e.moduleId),
    };
  };
  const weeks: ParcoursWeek[] =
    track.weeks.length > 0
      ? track.weeks.map((w) => ({
          week: w.week,
          title: w.title,
          modules: entries.filter((e) => e.week === w.week).map(toModule),
        }))
      : (['common', 'sector'] as const).map((trunk) => ({
          week: null,
          title: trunk === 'common' ? 'Tronc commun' : 'Modules de votre secteur',
          modules: entries.filter((e) => e.trunk === trunk).map(toModule),
        }));
  const plannedMinutes = entries.reduce((n, e) => n + (rows.get(e.moduleId)?.nominalMinutes ?? 0), 0);
  const fragmentContext = {
    learnerId: session.learnerId,
    courseId,
    fundSlug: fund,
    sessionToken: token,
    modulesDone: entries.filter((e) => byModule.get(e.moduleId)?.completedAt).length,
    modulesPlanned: entries.length,
  };
  const extra = (
    await Promise.all(
      (ctx.runtime.parcoursFragments ?? []).map((f) =>
        f(fragmentContext).catch((err: unknown) => {
          request.log.warn({ err }, 'a Mon parcours section is unavailable');
          return null;
        }),
      ),
    )
  ).filter((x): x is SafeHtml => x !== null);
  request.log.info({ trackId, modules: entries.length }, 'parcours served');
  return page(
    renderParcoursPage({
      session: pageSession(ctx, session, token),
      trackTitle: track.title,
      fundName: snapshot.funds.find((f) => f.slug === fund)?.name ?? null,
      weeks: weeks.filter((w) => w.modules.length > 0),
      plannedMinutes,
      totalSeconds: times?.totalSeconds ?? null,
      timeHref: sources.timePagePath ? `${sources.timePagePath}?session_token=${encodeURIComponent(token)}` : null,
      certificate: certificate
        ? {
            pdfHref: certificate.number
              ? `/certificates/${encodeURIComponent(certificate.number)}/pdf?session_token=${encodeURIComponent(token)}`
              : null,
            pageHref: `/certificates?session_token=${encodeURIComponent(token)}`,
            missing: certificate.missing,
          }
        : null,
      notice: o.notice,
      extra,
    }),
  );
}
