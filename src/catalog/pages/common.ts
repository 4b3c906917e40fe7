import { NotFoundError } from '../../http/errors.js';
import { html } from '../../http/html.js';
import { type LaunchSession, sessionHead } from '../../lti/index.js';
import { COMMON_FUND, type GlossaryEntry } from '../model.js';
import { findFundName, type ModuleRow } from '../repository/catalog.js';
import type { ProfileRow } from '../repository/profiles.js';
import { type CatalogSnapshot, catalogSnapshot } from '../repository/snapshot.js';
import type { LinkTarget } from '../rules.js';
import type { CatalogContext, ModulePageContext, Page, PageRequest } from '../runtime.js';
import { page } from '../runtime.js';
import { linkTargetOf } from '../service.js';
import { type ModuleSequence, renderModulePage } from '../views/module.js';
import type { PageSession } from '../views.js';
import { renderMessagePage } from '../views.js';

/** The session as a page carries it: the raw token and the LTI capability's <head> markup. */
export const pageSession = (ctx: CatalogContext, session: LaunchSession, token: string): PageSession => ({
  token,
  head: sessionHead(token, session.exp, ctx.config.publicUrl),
});

/** The funds and branches a profile form offers. */
export async function fundChoices(ctx: CatalogContext, snapshot?: CatalogSnapshot) {
  const { funds, branches } = snapshot ?? (await catalogSnapshot(ctx.db));
  return { funds, branches };
}

export async function fundName(ctx: CatalogContext, slug: string | null): Promise<string | null> {
  if (slug === null) return null;
  return findFundName(ctx.db, slug);
}

/** The fund the session's link fixes (custom `fund=`), when it names a known fund. */
export async function linkFixedFund(ctx: CatalogContext, session: LaunchSession): Promise<string | null> {
  const target = await linkTargetOf(ctx.db, session.launchId);
  if (target.fund === null) return null;
  return (await catalogSnapshot(ctx.db)).funds.some((f) => f.slug === target.fund) ? target.fund : null;
}

/** The fund whose modules the learner follows: the link's (custom `fund=`), else their profile's. */
export const programmeFund = (target: LinkTarget, profile: ProfileRow, snapshot: CatalogSnapshot): string =>
  target.fund !== null && snapshot.funds.some((f) => f.slug === target.fund) ? target.fund : profile.fundSlug;

export const moduleHref = (token: string, moduleId: string) =>
  `/catalog/module?module=${encodeURIComponent(moduleId)}&session_token=${encodeURIComponent(token)}`;
export const parcoursHref = (token: string) => `/catalog/parcours?session_token=${encodeURIComponent(token)}`;

/** The glossary entries a module of this fund may link to: the general ones and its fund's. */
export const glossaryFor = (snapshot: CatalogSnapshot, fundSlug: string | null): GlossaryEntry[] => [
  ...(snapshot.glossary[COMMON_FUND] ?? []),
  ...(fundSlug ? (snapshot.glossary[fundSlug] ?? []) : []),
];

/** The session's course; a session without one cannot record progress. */
export function courseOf(session: LaunchSession): string {
  if (session.courseId === null) {
    throw new NotFoundError(
      'no_course',
      'Ce module doit être ouvert depuis la page du cours.',
      'session without a course',
    );
  }
  return session.courseId;
}

export function unavailablePage(
  ctx: CatalogContext,
  request: PageRequest,
  session: LaunchSession,
  token: string,
  message: string,
  log: string,
  reason: string,
): Page {
  request.log.warn({ reason, detail: log, launchId: session.launchId }, 'catalog link cannot be served');
  return page(
    renderMessagePage({
      title: 'Module indisponible',
      message,
      advice: 'Signalez-le à l’équipe du cours en donnant la référence ci-dessous : elle corrigera le lien.',
      reference: request.id,
      session: pageSession(ctx, session, token),
    }),
    404,
  );
}

export function outsideCourse(request: PageRequest, session: LaunchSession): Page {
  request.log.warn({ launchId: session.launchId }, 'launch without a context: module progress cannot be recorded');
  return page(
    renderMessagePage({
      title: 'Lien ouvert hors d’un cours',
      message: 'Ce module doit être ouvert depuis la page du cours.',
      advice: 'Retournez sur la page du cours et ouvrez le module depuis le sommaire.',
      reference: request.id,
    }),
    400,
  );
}

/** A module page (learner or course-team preview) with what other capabilities add to it. */
export function modulePage(
  ctx: CatalogContext,
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
  const pageContext: ModulePageContext = {
    moduleId: o.module.id,
    moduleVersion: o.version,
    courseId: session.courseId,
    learnerId: session.learnerId,
    resourceLinkId: session.resourceLinkId,
    sessionToken: token,
    preview: o.preview !== undefined,
    nominalMinutes: o.manifest.nominalMinutes,
  };
  const extras = ctx.runtime.fragments.map((f) => f(pageContext));
  return renderModulePage({
    manifest: o.manifest,
    moduleVersion: o.version,
    themeTitle: o.module.themeTitle,
    trunk: o.module.trunk,
    fund: o.module.fundSlug && o.fundName ? { slug: o.module.fundSlug, name: o.fundName } : null,
    progress: o.progress,
    session: pageSession(ctx, session, token),
    courseId: session.courseId,
    videoPlaceholderUrl: ctx.config.videoPlaceholderUrl,
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
