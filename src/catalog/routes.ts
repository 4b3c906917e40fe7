import { readFileSync } from 'node:fs';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError, NotFoundError } from '../http/errors.js';
import { html, type SafeHtml } from '../http/html.js';
import {
  type LaunchSession,
  requireRole,
  requireSession,
  sessionHead,
  sessionTokenOf,
  type ValidatedLaunch,
  viewTicketUrl,
} from '../lti/index.js';
import { COMMON_FUND, type GlossaryEntry } from './model.js';
import {
  type CatalogSnapshot,
  catalogSnapshot,
  findCourse,
  findLearner,
  findModule,
  findModuleVersion,
  findProfile,
  isLearnerOfCourse,
  listCourseLearners,
  listProgress,
  type ModuleRow,
  type ProfileRow,
  upsertProfile,
} from './repository.js';
import {
  checkEligibility,
  isParcoursTarget,
  type LinkTarget,
  learnerProgramme,
  ONBOARDING_FIELDS,
  type OnboardingInput,
  parcoursTrack,
  parseLinkTarget,
  resolveModule,
  splitFullName,
  validateOnboarding,
} from './rules.js';
import {
  answerQuiz,
  destinationFor,
  explainUnavailable,
  linkTargetOf,
  type ModuleCompletedListener,
  markBlockSeen,
  openedModule,
  openModuleForLearner,
  type ProgressView,
  progressView,
} from './service.js';
import type { ProfileAuthorRole } from './tables.js';
import {
  type ModuleSequence,
  type OverviewRow,
  type PageSession,
  type ParcoursModule,
  type ParcoursWeek,
  renderCourseLearners,
  renderCourseProgressByWeek,
  renderCourseTeamOverview,
  renderMessagePage,
  renderModulePage,
  renderParcoursPage,
  renderProfileForm,
  renderVideoPlaceholder,
} from './views.js';

/** What another capability adds to every module page (the connection-time tracker adds its script). */
export interface ModulePageContext {
  moduleId: string;
  moduleVersion: number;
  courseId: string | null;
  learnerId: string;
  resourceLinkId: string | null;
  sessionToken: string;
  /** Course-team preview: nothing is recorded, time must not be counted. */
  preview: boolean;
  nominalMinutes: number;
}
export type ModulePageFragment = (ctx: ModulePageContext) => { head?: SafeHtml; body?: SafeHtml; nav?: SafeHtml };

/** Credited time of a learner in a course, as "Mon parcours" shows it. */
export interface ParcoursTimes {
  /** Seconds per module id. */
  byModule: ReadonlyMap<string, number>;
  /** Seconds over the whole course. */
  totalSeconds: number;
}

/** The learner's certificate as "Mon parcours" shows it: the valid one's number, or what is missing. */
export interface ParcoursCertificateState {
  number: string | null;
  missing: string[];
}

/** What other capabilities lend to "Mon parcours" and the course-team page (the catalog imports none of them). */
export interface ParcoursSources {
  times?: (learnerId: string, courseId: string) => Promise<ParcoursTimes>;
  timePagePath?: string;
  certificate?: (learnerId: string, courseId: string) => Promise<ParcoursCertificateState | null>;
  /** The course's issuance rule, in plain French. */
  issuanceRule?: (courseId: string) => Promise<string>;
}

/** What a learner's "Mon parcours" page tells a fragment. */
export interface ParcoursFragmentContext {
  learnerId: string;
  courseId: string;
  fundSlug: string;
  sessionToken: string;
  modulesDone: number;
  modulesPlanned: number;
}
/** A section another capability adds to "Mon parcours" (null: nothing to show). */
export type ParcoursFragment = (ctx: ParcoursFragmentContext) => Promise<SafeHtml | null>;

export interface CatalogRuntime {
  fragments: ModulePageFragment[];
  parcours: ParcoursSources;
  /** Absent in a runtime built before parcours fragments existed. */
  parcoursFragments?: ParcoursFragment[];
  /** Told of each completed link, inside the completion's transaction (see `registerModuleCompletedListener`). */
  completionListeners: ModuleCompletedListener[];
}

const HtmlPage = Type.String({ description: 'French HTML page (shown inside the LMS iframe)' });
const HTML_RESPONSES = { 200: HtmlPage, 401: HtmlPage, 403: HtmlPage, 404: HtmlPage, 422: HtmlPage };
const TokenQuery = Type.Object({ session_token: Type.Optional(Type.String({ maxLength: 4096 })) });
/** The module page: opened with the session token, or with a view ticket after one of its forms. */
const ModuleQuery = Type.Object({
  session_token: Type.Optional(Type.String({ maxLength: 4096 })),
  ticket: Type.Optional(Type.String({ maxLength: 100 })),
  erreur: Type.Optional(Type.Literal('quiz')),
  // Another module of the learner's programme, from the same session ("module suivant").
  module: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9-]+$' })),
});
const QUIZ_INCOMPLETE = 'Répondez à toutes les questions avant de valider.';
const MODULE_PATH = '/catalog/module';
const FormText = Type.Optional(Type.String({ maxLength: 2000 }));
/** Lenient on purpose: length and content are checked by the rules, which keep what was typed. */
const ProfileBody = Type.Object({
  session_token: Type.Optional(Type.String({ maxLength: 4096 })),
  civility: FormText,
  familyName: FormText,
  givenName: FormText,
  companyName: FormText,
  siret: FormText,
  headcountBand: FormText,
  idcc: FormText,
  fund: FormText,
});
type ProfileBodyT = Static<typeof ProfileBody>;
const ModuleId = Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9-]+$' });
const BlockId = Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9-]+$' });
const SeenForm = Type.Object({
  session_token: Type.Optional(Type.String({ maxLength: 4096 })),
  module_id: ModuleId,
  block_id: BlockId,
});
const QuizForm = Type.Object(
  {
    session_token: Type.Optional(Type.String({ maxLength: 4096 })),
    module_id: ModuleId,
  },
  { additionalProperties: Type.String({ maxLength: 10 }) },
);
const ProgressSchema = Type.Object({
  moduleId: Type.String(),
  moduleVersion: Type.Integer(),
  done: Type.Array(Type.String()),
  total: Type.Integer(),
  quizAnswered: Type.Boolean(),
  complete: Type.Boolean(),
  completedAt: Type.Union([Type.String(), Type.Null()]),
});
const QuizReply = Type.Object({
  progress: ProgressSchema,
  correct: Type.Integer(),
  total: Type.Integer(),
  results: Type.Array(Type.Object({ correct: Type.Boolean(), answer: Type.Integer(), explanation: Type.String() })),
});

const ASSETS = {
  module: readFileSync(new URL('./assets/module.js', import.meta.url), 'utf8'),
  form: readFileSync(new URL('./assets/form.js', import.meta.url), 'utf8'),
};

/**
 * The raw token the request was authenticated with (bearer, form field, query), or the fresh one of a
 * page opened with a view ticket, to put back into the page it receives.
 */
function rawToken(request: FastifyRequest): string {
  return sessionTokenOf(request);
}

function html200(reply: FastifyReply, body: string, status = 200): FastifyReply {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .type('text/html; charset=utf-8')
    .send(body);
}

export function profileInput(body: Partial<Record<keyof OnboardingInput, unknown>>): OnboardingInput {
  const out = {} as OnboardingInput;
  for (const f of ONBOARDING_FIELDS) out[f] = typeof body[f] === 'string' ? (body[f] as string) : '';
  return out;
}

function profileValues(p: ProfileRow): OnboardingInput {
  return {
    civility: p.civility,
    familyName: p.familyName,
    givenName: p.givenName,
    companyName: p.companyName,
    siret: p.companySiret,
    headcountBand: p.headcountBand,
    idcc: p.idcc ?? '',
    fund: p.fundSlug,
  };
}

export function createCatalogPages(app: FastifyInstance, runtime: CatalogRuntime) {
  const { db, config } = app;
  const pageSession = (session: LaunchSession, token: string): PageSession => ({
    token,
    head: sessionHead(token, session.exp, config.publicUrl),
  });

  const fundChoices = async (snapshot?: CatalogSnapshot) => {
    const { funds, branches } = snapshot ?? (await catalogSnapshot(db));
    return { funds, branches };
  };

  async function onboardingPage(
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    fixedFund: string | null,
    state: {
      values?: OnboardingInput;
      errors?: Partial<Record<keyof OnboardingInput, string>>;
      refusal?: string;
      status?: number;
    } = {},
    snapshot?: CatalogSnapshot,
  ) {
    const { funds, branches } = await fundChoices(snapshot);
    let values = state.values;
    if (!values) {
      const learner = await findLearner(db, session.learnerId);
      const names = splitFullName({
        name: learner?.name,
        given_name: learner?.givenName,
        family_name: learner?.familyName,
      });
      values = { ...profileInput({}), givenName: names.givenName, familyName: names.familyName, fund: fixedFund ?? '' };
    }
    const fixed = fixedFund ? (funds.find((f) => f.slug === fixedFund) ?? null) : null;
    return html200(
      reply,
      renderProfileForm({
        mode: 'onboarding',
        action: '/catalog/onboarding',
        session: pageSession(session, token),
        values,
        errors: state.errors,
        refusal: state.refusal,
        funds,
        branches,
        fixedFund: fixed,
      }),
      state.status ?? 200,
    );
  }

  function modulePage(
    session: LaunchSession,
    token: string,
    o: {
      module: ModuleRow;
      manifest: Parameters<typeof renderModulePage>[0]['manifest'];
      version: number;
      fundName: string | null;
      progress: Parameters<typeof renderModulePage>[0]['progress'];
      preview?: { label: string };
      notice?: string;
      quizError?: string;
      glossary?: GlossaryEntry[];
      sequence?: ModuleSequence;
    },
  ): string {
    const ctx: ModulePageContext = {
      moduleId: o.module.id,
      moduleVersion: o.version,
      courseId: session.courseId,
      learnerId: session.learnerId,
      resourceLinkId: session.resourceLinkId,
      sessionToken: token,
      preview: o.preview !== undefined,
      nominalMinutes: o.manifest.nominalMinutes,
    };
    const extras = runtime.fragments.map((f) => f(ctx));
    return renderModulePage({
      manifest: o.manifest,
      moduleVersion: o.version,
      themeTitle: o.module.themeTitle,
      trunk: o.module.trunk,
      fund: o.module.fundSlug && o.fundName ? { slug: o.module.fundSlug, name: o.fundName } : null,
      progress: o.progress,
      session: pageSession(session, token),
      courseId: session.courseId,
      videoPlaceholderUrl: config.videoPlaceholderUrl,
      preview: o.preview,
      notice: o.notice,
      quizError: o.quizError,
      extraHead: html`${extras.map((e) => e.head ?? '')}`,
      extraBody: html`${extras.map((e) => e.body ?? '')}`,
      extraNav: html`${extras.map((e) => e.nav ?? '')}`,
      glossary: o.glossary,
      sequence: o.sequence,
    });
  }

  async function fundName(slug: string | null): Promise<string | null> {
    if (slug === null) return null;
    const r = await db.selectFrom('funds').select('name').where('slug', '=', slug).executeTakeFirst();
    return r?.name ?? null;
  }

  /** The fund whose modules the learner follows: the link's (custom `fund=`), else their profile's. */
  const programmeFund = (target: LinkTarget, profile: ProfileRow, snapshot: CatalogSnapshot): string =>
    target.fund !== null && snapshot.funds.some((f) => f.slug === target.fund) ? target.fund : profile.fundSlug;

  const moduleHref = (token: string, moduleId: string) =>
    `/catalog/module?module=${encodeURIComponent(moduleId)}&session_token=${encodeURIComponent(token)}`;
  const parcoursHref = (token: string) => `/catalog/parcours?session_token=${encodeURIComponent(token)}`;

  /** Where a module sits in the learner's programme, and the next one (within the theme for a theme link). */
  function sequenceFor(
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

  function unavailablePage(
    request: FastifyRequest,
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    message: string,
    log: string,
    reason: string,
  ) {
    request.log.warn({ reason, detail: log, launchId: session.launchId }, 'catalog link cannot be served');
    return html200(
      reply,
      renderMessagePage({
        title: 'Module indisponible',
        message,
        advice: 'Signalez-le à l’équipe du cours en donnant la référence ci-dessous : elle corrigera le lien.',
        reference: request.id,
        session: pageSession(session, token),
      }),
      404,
    );
  }

  function outsideCourse(request: FastifyRequest, reply: FastifyReply, session: LaunchSession) {
    request.log.warn({ launchId: session.launchId }, 'launch without a context: module progress cannot be recorded');
    return html200(
      reply,
      renderMessagePage({
        title: 'Lien ouvert hors d’un cours',
        message: 'Ce module doit être ouvert depuis la page du cours.',
        advice: 'Retournez sur la page du cours et ouvrez le module depuis le sommaire.',
        reference: request.id,
      }),
      400,
    );
  }

  /**
   * The learner's page for this session's link: onboarding, "Mon parcours" (a link without `module=` or
   * `theme=`, or `view=parcours`), their fund's module, or a clear message. `moduleId` opens another module
   * of the learner's own programme from the same session ("module suivant", "Mon parcours").
   */
  async function learnerPage(
    request: FastifyRequest,
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    options: { notice?: string; quizError?: string; target?: LinkTarget; moduleId?: string; parcours?: boolean } = {},
  ) {
    // One catalogue snapshot for the whole page; the launch passes the link's custom claim it just validated.
    const [target, snapshot] = await Promise.all([
      options.target ?? linkTargetOf(db, session.launchId),
      catalogSnapshot(db),
    ]);
    const wantsParcours = options.parcours === true || (options.moduleId === undefined && isParcoursTarget(target));
    if (wantsParcours || options.moduleId !== undefined) {
      const profile = await findProfile(db, session.learnerId);
      const fixedFund = target.fund !== null && snapshot.funds.some((f) => f.slug === target.fund) ? target.fund : null;
      if (!profile) return onboardingPage(reply, session, token, fixedFund, {}, snapshot);
      if (session.courseId === null) return outsideCourse(request, reply, session);
      if (wantsParcours) {
        const notice = options.notice ? `${options.notice} Voici votre parcours.` : undefined;
        return parcoursPage(request, reply, session, token, {
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
          request,
          reply,
          session,
          token,
          'Ce module ne fait pas partie de votre parcours.',
          `module "${options.moduleId}" is not in the learner's programme`,
          'not_in_programme',
        );
      }
      return serveModule(request, reply, session, token, {
        module,
        fundSlug: module.fundSlug,
        target,
        snapshot,
        profile,
        ...(options.quizError ? { quizError: options.quizError } : {}),
      });
    }

    const dest = await destinationFor(db, session.learnerId, target, snapshot.routing);
    if (dest.kind === 'unavailable') {
      const { message, log } = explainUnavailable(dest.route);
      return unavailablePage(request, reply, session, token, message, log, dest.route.reason);
    }
    if (dest.kind === 'onboarding') return onboardingPage(reply, session, token, dest.fixedFund, {}, snapshot);
    if (session.courseId === null) return outsideCourse(request, reply, session);
    request.log.info({ source: dest.route.source, variant: dest.route.variant }, 'link routed');
    return serveModule(request, reply, session, token, {
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
    request: FastifyRequest,
    reply: FastifyReply,
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
  ) {
    const opened = await openModuleForLearner(
      db,
      { learnerId: session.learnerId, courseId: session.courseId as string, resourceLinkId: session.resourceLinkId },
      o.module,
      o.fundSlug,
    );
    request.log.info({ moduleId: opened.module.id, moduleVersion: opened.version }, 'module served');
    return html200(
      reply,
      modulePage(session, token, {
        module: opened.module,
        manifest: opened.manifest,
        version: opened.version,
        fundName: await fundName(opened.module.fundSlug),
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

  /** "Mon parcours": the learner's modules by week, their status and time, what next, the certificate. */
  async function parcoursPage(
    request: FastifyRequest,
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    o: { target: LinkTarget; snapshot: CatalogSnapshot; profile: ProfileRow; notice?: string },
  ) {
    const { snapshot, profile, target } = o;
    const courseId = session.courseId as string;
    const trackId = parcoursTrack(target, snapshot.routing);
    const track = snapshot.tracks.find((t) => t.id === trackId);
    if (!trackId || !track) {
      return unavailablePage(
        request,
        reply,
        session,
        token,
        'Ce lien du cours ne désigne pas de parcours connu.',
        target.track === null ? 'several tracks: add custom track=' : `unknown track "${target.track}"`,
        'unknown_track',
      );
    }
    const fund = programmeFund(target, profile, snapshot);
    const entries = learnerProgramme(snapshot.routing, { fundSlug: fund, idcc: profile.idcc }, trackId);
    const sources = runtime.parcours;
    const [progress, times, certificate] = await Promise.all([
      listProgress(db, { learnerId: session.learnerId, courseId }),
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
        (runtime.parcoursFragments ?? []).map((f) =>
          f(fragmentContext).catch((err: unknown) => {
            request.log.warn({ err }, 'a Mon parcours section is unavailable');
            return null;
          }),
        ),
      )
    ).filter((x): x is SafeHtml => x !== null);
    request.log.info({ trackId, modules: entries.length }, 'parcours served');
    return html200(
      reply,
      renderParcoursPage({
        session: pageSession(session, token),
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
    courseId: string,
    snapshot: CatalogSnapshot,
    track: CatalogSnapshot['tracks'][number],
  ): Promise<SafeHtml> {
    const [progress, learners] = await Promise.all([listProgress(db, { courseId }), listCourseLearners(db, courseId)]);
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

  /** The glossary entries a module of this fund may link to: the general ones and its fund's. */
  const glossaryFor = (snapshot: CatalogSnapshot, fundSlug: string | null): GlossaryEntry[] => [
    ...(snapshot.glossary[COMMON_FUND] ?? []),
    ...(fundSlug ? (snapshot.glossary[fundSlug] ?? []) : []),
  ];

  /** Course-team view of a link: which module each fund gets, with previews. */
  async function overviewPage(
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    options: { parcours?: boolean } = {},
  ) {
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
        ? await courseProgressByWeek(session.courseId, snapshot, track)
        : undefined;
    const issuanceRule =
      session.courseId !== null && runtime.parcours.issuanceRule
        ? await runtime.parcours.issuanceRule(session.courseId).catch(() => undefined)
        : undefined;
    return html200(
      reply,
      renderCourseTeamOverview({
        session: pageSession(session, token),
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

  /** Validates and saves a profile; answers with the form again when something is wrong or refused. */
  async function saveProfileForm(
    request: FastifyRequest,
    reply: FastifyReply,
    args: {
      session: LaunchSession;
      token: string;
      learnerId: string;
      body: ProfileBodyT;
      mode: 'onboarding' | 'profile' | 'course_team';
      action: string;
      fixedFund: string | null;
      learnerLabel?: string;
      backLink?: { href: string; label: string };
    },
  ): Promise<{ saved: boolean; reply?: FastifyReply }> {
    const values = profileInput(args.body);
    const { funds, branches } = await fundChoices();
    const fixed = args.fixedFund ? (funds.find((f) => f.slug === args.fixedFund) ?? null) : null;
    const render = (
      status: number,
      extra: { errors?: Partial<Record<keyof OnboardingInput, string>>; refusal?: string },
    ) =>
      html200(
        reply,
        renderProfileForm({
          mode: args.mode,
          action: args.action,
          session: pageSession(args.session, args.token),
          values,
          errors: extra.errors,
          refusal: extra.refusal,
          funds,
          branches,
          fixedFund: fixed,
          learnerLabel: args.learnerLabel,
          backLink: args.backLink,
        }),
        status,
      );
    const result = validateOnboarding(values, { funds, branches, fixedFund: fixed?.slug ?? null });
    if (!result.ok) {
      request.log.info({ fields: Object.keys(result.errors), mode: args.mode }, 'profile form refused: validation');
      return { saved: false, reply: await render(422, { errors: result.errors }) };
    }
    const eligibility = checkEligibility(result.profile);
    if (!eligibility.eligible) {
      request.log.info({ reason: eligibility.reason, mode: args.mode }, 'profile refused: not eligible');
      return { saved: false, reply: await render(200, { refusal: eligibility.message }) };
    }
    await upsertProfile(db, args.learnerId, result.profile, {
      learnerId: args.session.learnerId,
      role: args.session.role as ProfileAuthorRole,
    });
    request.log.info({ mode: args.mode, fund: result.profile.fundSlug, byRole: args.session.role }, 'profile saved');
    return { saved: true };
  }

  /** After a save: the form again, filled from what is now stored, with a confirmation. */
  async function savedProfilePage(
    reply: FastifyReply,
    args: {
      session: LaunchSession;
      token: string;
      learnerId: string;
      mode: 'profile' | 'course_team';
      action: string;
      notice: string;
      backLink: { href: string; label: string };
    },
  ): Promise<FastifyReply> {
    const profile = (await findProfile(db, args.learnerId)) as ProfileRow;
    const { funds, branches } = await fundChoices();
    return html200(
      reply,
      renderProfileForm({
        mode: args.mode,
        action: args.action,
        session: pageSession(args.session, args.token),
        values: profileValues(profile),
        notice: args.notice,
        funds,
        branches,
        learnerLabel: args.mode === 'course_team' ? `${profile.givenName} ${profile.familyName}` : undefined,
        backLink: args.backLink,
      }),
    );
  }

  async function launchHandler(launch: ValidatedLaunch, request: FastifyRequest, reply: FastifyReply) {
    const { session, sessionToken } = launch;
    if (session.role === 'learner') {
      return learnerPage(request, reply, session, sessionToken, { target: parseLinkTarget(launch.claims.custom) });
    }
    return overviewPage(reply, session, sessionToken);
  }

  return {
    learnerPage,
    sequenceFor,
    glossaryFor,
    overviewPage,
    onboardingPage,
    modulePage,
    fundName,
    saveProfileForm,
    savedProfilePage,
    launchHandler,
    pageSession,
    fundChoices,
  };
}

export async function catalogRoutes(root: FastifyInstance, options: { runtime: CatalogRuntime }): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { db } = app;
  const pages = createCatalogPages(app, options.runtime);
  /** The fund the session's link fixes (custom `fund=`), when it names a known fund. */
  const linkFixedFund = async (session: LaunchSession): Promise<string | null> => {
    const target = await linkTargetOf(db, session.launchId);
    if (target.fund === null) return null;
    return (await catalogSnapshot(db)).funds.some((f) => f.slug === target.fund) ? target.fund : null;
  };
  const htmlRoute = { config: { html: true } } as const;

  app.get(
    '/assets/video-placeholder.html',
    { ...htmlRoute, schema: { response: { 200: HtmlPage } } },
    async (_request, reply) =>
      reply
        .header('cache-control', 'public, max-age=3600')
        .type('text/html; charset=utf-8')
        .send(renderVideoPlaceholder()),
  );
  for (const [name, source] of Object.entries(ASSETS)) {
    app.get(`/assets/catalog/${name}.js`, { schema: { response: { 200: Type.String() } } }, async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').type('text/javascript; charset=utf-8').send(source),
    );
  }

  // ── Learner pages ──
  app.get(
    MODULE_PATH,
    { ...htmlRoute, schema: { querystring: ModuleQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      if (session.role !== 'learner') return pages.overviewPage(reply, session, token);
      return pages.learnerPage(request, reply, session, token, {
        ...(request.query.module ? { moduleId: request.query.module } : {}),
        ...(request.query.erreur === 'quiz' ? { quizError: QUIZ_INCOMPLETE } : {}),
      });
    },
  );

  app.get(
    '/catalog/parcours',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      if (session.role !== 'learner') return pages.overviewPage(reply, session, token, { parcours: true });
      return pages.learnerPage(request, reply, session, token, { parcours: true });
    },
  );

  app.post(
    '/catalog/onboarding',
    { ...htmlRoute, schema: { body: ProfileBody, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const fixedFund = await linkFixedFund(session);
      const out = await pages.saveProfileForm(request, reply, {
        session,
        token,
        learnerId: session.learnerId,
        body: request.body,
        mode: 'onboarding',
        action: '/catalog/onboarding',
        fixedFund,
      });
      if (!out.saved) return out.reply;
      if (session.role !== 'learner') return pages.overviewPage(reply, session, token);
      return pages.learnerPage(request, reply, session, token, {
        notice: 'Merci, votre profil est enregistré.',
      });
    },
  );

  app.get(
    '/catalog/profile',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const profile = await findProfile(db, session.learnerId);
      if (!profile) return pages.onboardingPage(reply, session, token, await linkFixedFund(session));
      const { funds, branches } = await pages.fundChoices();
      return html200(
        reply,
        renderProfileForm({
          mode: 'profile',
          action: '/catalog/profile',
          session: pages.pageSession(session, token),
          values: profileValues(profile),
          funds,
          branches,
          backLink: { href: `/catalog/module?session_token=${encodeURIComponent(token)}`, label: 'Revenir au module' },
        }),
      );
    },
  );

  app.post(
    '/catalog/profile',
    { ...htmlRoute, schema: { body: ProfileBody, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const backLink = {
        href: `/catalog/module?session_token=${encodeURIComponent(token)}`,
        label: 'Revenir au module',
      };
      const out = await pages.saveProfileForm(request, reply, {
        session,
        token,
        learnerId: session.learnerId,
        body: request.body,
        mode: 'profile',
        action: '/catalog/profile',
        fixedFund: null,
        backLink,
      });
      if (!out.saved) return out.reply;
      return pages.savedProfilePage(reply, {
        session,
        token,
        learnerId: session.learnerId,
        mode: 'profile',
        action: '/catalog/profile',
        notice: 'Vos modifications sont enregistrées.',
        backLink,
      });
    },
  );

  // ── Progress: forms (work without JavaScript) and JSON APIs (used by the page script) ──
  const courseOf = (session: LaunchSession): string => {
    if (session.courseId === null) {
      throw new NotFoundError(
        'no_course',
        'Ce module doit être ouvert depuis la page du cours.',
        'session without a course',
      );
    }
    return session.courseId;
  };

  /**
   * After a form of the module page: post/redirect/get to the module page with a single-use view ticket
   * (never the session token in the URL), so that Back never asks to send the form again.
   */
  const backToModule = async (reply: FastifyReply, session: LaunchSession, extra: Record<string, string> = {}) =>
    reply.redirect(await viewTicketUrl(app, session, MODULE_PATH, extra), 303);

  app.post(
    '/catalog/module/seen',
    { ...htmlRoute, schema: { body: SeenForm, response: { ...HTML_RESPONSES, 303: Type.Null() } } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'learner');
      const key = { learnerId: session.learnerId, courseId: courseOf(session), moduleId: request.body.module_id };
      await markBlockSeen(db, key, request.body.block_id, {
        log: request.log,
        onCompleted: options.runtime.completionListeners,
      });
      return backToModule(reply, session, { module: key.moduleId });
    },
  );

  app.post(
    '/catalog/module/quiz',
    { ...htmlRoute, schema: { body: QuizForm, response: { ...HTML_RESPONSES, 303: Type.Null() } } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'learner');
      const key = { learnerId: session.learnerId, courseId: courseOf(session), moduleId: request.body.module_id };
      const opened = await openedModule(db, key);
      const quiz = opened.manifest.blocks.find((b) => b.type === 'quiz');
      const body = request.body as Record<string, string | undefined>;
      const answers =
        quiz && quiz.type === 'quiz'
          ? quiz.questions.map((_q, i) => (/^\d+$/.test(body[`q${i}`] ?? '') ? Number(body[`q${i}`]) : null))
          : [];
      if (answers.some((a) => a === null)) {
        return backToModule(reply, session, { module: key.moduleId, erreur: 'quiz' });
      }
      await answerQuiz(db, key, answers, { log: request.log, onCompleted: options.runtime.completionListeners });
      return backToModule(reply, session, { module: key.moduleId });
    },
  );

  const learnerKey = async (request: FastifyRequest, moduleId: string) => {
    const session = requireRole(await requireSession(request), 'learner');
    return { learnerId: session.learnerId, courseId: courseOf(session), moduleId };
  };

  app.get(
    '/api/catalog/progress',
    {
      schema: {
        querystring: Type.Object({ moduleId: ModuleId, session_token: Type.Optional(Type.String()) }),
        response: { 200: ProgressSchema },
      },
    },
    async (request): Promise<ProgressView> =>
      progressView(await openedModule(db, await learnerKey(request, request.query.moduleId))),
  );

  app.post(
    '/api/catalog/progress/seen',
    { schema: { body: Type.Object({ moduleId: ModuleId, blockId: BlockId }), response: { 200: ProgressSchema } } },
    async (request): Promise<ProgressView> => {
      const key = await learnerKey(request, request.body.moduleId);
      const { opened, progress } = await markBlockSeen(db, key, request.body.blockId, {
        log: request.log,
        onCompleted: options.runtime.completionListeners,
      });
      return progressView({ manifest: opened.manifest, progress });
    },
  );

  app.post(
    '/api/catalog/progress/quiz',
    {
      schema: {
        body: Type.Object({
          moduleId: ModuleId,
          answers: Type.Array(Type.Integer({ minimum: 0, maximum: 20 }), { maxItems: 20 }),
        }),
        response: { 200: QuizReply },
      },
    },
    async (request) => {
      const key = await learnerKey(request, request.body.moduleId);
      const { opened, progress, score } = await answerQuiz(db, key, request.body.answers, {
        log: request.log,
        onCompleted: options.runtime.completionListeners,
      });
      return {
        progress: progressView({ manifest: opened.manifest, progress }),
        correct: score.correct,
        total: score.total,
        results: score.results,
      };
    },
  );

  // ── Course team ──
  const courseTeam = async (request: FastifyRequest) =>
    requireRole(await requireSession(request), 'course_team', 'staff');

  app.get(
    '/catalog/course',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await courseTeam(request);
      return pages.overviewPage(reply, session, rawToken(request));
    },
  );

  app.get(
    '/catalog/preview',
    {
      ...htmlRoute,
      schema: {
        querystring: Type.Object({
          session_token: Type.Optional(Type.String({ maxLength: 4096 })),
          module: ModuleId,
          fund: Type.Optional(Type.String({ maxLength: 100 })),
        }),
        response: HTML_RESPONSES,
      },
    },
    async (request, reply) => {
      const session = await courseTeam(request);
      const module = await findModule(db, request.query.module);
      if (!module)
        throw new NotFoundError(
          'unknown_module',
          'Ce module n’existe pas.',
          `preview of unknown module ${request.query.module}`,
        );
      const manifest = await findModuleVersion(db, module.id, module.currentVersion);
      if (!manifest) throw new Error(`module_versions row missing for ${module.id}`);
      const fund = request.query.fund ? await pages.fundName(request.query.fund) : null;
      const variant =
        module.branches.length > 0 ? ` (variante pour les conventions collectives ${module.branches.join(', ')})` : '';
      const label = module.fundSlug
        ? `vous voyez ce module comme un apprenant de ${fund ?? (await pages.fundName(module.fundSlug)) ?? module.fundSlug}${variant}`
        : 'vous voyez ce module comme n’importe quel apprenant (tronc commun ou module fixe)';
      return html200(
        reply,
        pages.modulePage(session, rawToken(request), {
          module,
          manifest,
          version: module.currentVersion,
          fundName: await pages.fundName(module.fundSlug),
          progress: null,
          preview: { label },
          glossary: pages.glossaryFor(await catalogSnapshot(db), module.fundSlug),
        }),
      );
    },
  );

  app.get(
    '/catalog/course/learners',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await courseTeam(request);
      const courseId = courseOf(session);
      const [course, learners] = await Promise.all([findCourse(db, courseId), listCourseLearners(db, courseId)]);
      return html200(
        reply,
        renderCourseLearners({
          session: pages.pageSession(session, rawToken(request)),
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
    },
  );

  const LearnerParams = Type.Object({ learnerId: Type.String({ format: 'uuid' }) });
  /** A course-team member may only touch learners of the course their session belongs to. */
  const courseLearner = async (request: FastifyRequest, learnerId: string) => {
    const session = await courseTeam(request);
    const courseId = courseOf(session);
    if (!(await isLearnerOfCourse(db, learnerId, courseId))) {
      throw new NotFoundError(
        'learner_not_in_course',
        'Cet apprenant ne fait pas partie de ce cours.',
        'learner has no launch in the session course',
      );
    }
    const learner = await findLearner(db, learnerId);
    if (!learner) throw new ForbiddenError('learner_unknown');
    return { session, learner };
  };

  app.get(
    '/catalog/course/learners/:learnerId/profile',
    { ...htmlRoute, schema: { params: LearnerParams, querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const { session, learner } = await courseLearner(request, request.params.learnerId);
      const token = rawToken(request);
      const profile = await findProfile(db, learner.id);
      const names = splitFullName({
        name: learner.name,
        given_name: learner.givenName,
        family_name: learner.familyName,
      });
      const { funds, branches } = await pages.fundChoices();
      return html200(
        reply,
        renderProfileForm({
          mode: 'course_team',
          action: `/catalog/course/learners/${learner.id}/profile`,
          session: pages.pageSession(session, token),
          values: profile ? profileValues(profile) : { ...profileInput({}), ...names },
          funds,
          branches,
          learnerLabel: profile ? `${profile.givenName} ${profile.familyName}` : (learner.name ?? 'l’apprenant'),
          backLink: {
            href: `/catalog/course/learners?session_token=${encodeURIComponent(token)}`,
            label: 'Retour à la liste des apprenants',
          },
        }),
      );
    },
  );

  app.post(
    '/catalog/course/learners/:learnerId/profile',
    { ...htmlRoute, schema: { params: LearnerParams, body: ProfileBody, response: HTML_RESPONSES } },
    async (request, reply) => {
      const { session, learner } = await courseLearner(request, request.params.learnerId);
      const token = rawToken(request);
      const backLink = {
        href: `/catalog/course/learners?session_token=${encodeURIComponent(token)}`,
        label: 'Retour à la liste des apprenants',
      };
      const action = `/catalog/course/learners/${learner.id}/profile`;
      const out = await pages.saveProfileForm(request, reply, {
        session,
        token,
        learnerId: learner.id,
        body: request.body,
        mode: 'course_team',
        action,
        fixedFund: null,
        learnerLabel: learner.name ?? 'l’apprenant',
        backLink,
      });
      if (!out.saved) return out.reply;
      return pages.savedProfilePage(reply, {
        session,
        token,
        learnerId: learner.id,
        mode: 'course_team',
        action,
        notice: 'Le profil est corrigé.',
        backLink,
      });
    },
  );
}
