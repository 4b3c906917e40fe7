import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError, ForbiddenError, NotFoundError } from '../http/errors.js';
import { sendLearnerPage } from '../http/html.js';
import {
  getCurrentToolKey,
  type LaunchSession,
  requireSession,
  sessionHead,
  toolUrls,
  type ValidatedLaunch,
} from '../lti/index.js';
import { PlatformCallError } from './access-tokens.js';
import { courseTeamView } from './course-team.js';
import {
  checkDeepLinkingSettings,
  deepLinkingContext,
  itemsFor,
  pickerCatalogue,
  signDeepLinkingResponse,
} from './deep-linking.js';
import type { SyncResult } from './memberships.js';
import { isCourseTeam, parseSelection, type Selection } from './rules.js';
import { type PageSession, renderAutoPost, renderCourseTeamView, renderPicker } from './views.js';

const HtmlPage = Type.String({ description: 'French HTML page (shown inside the LMS iframe)' });
const HTML_RESPONSES = { 200: HtmlPage, 400: HtmlPage, 401: HtmlPage, 403: HtmlPage, 404: HtmlPage, 502: HtmlPage };
const SessionToken = Type.Optional(Type.String({ maxLength: 4096 }));
const Choice = Type.String({ maxLength: 220 });

const LEARNER_REFUSED = 'Cette page est réservée à l’équipe du cours.';

/** The raw session token the request carried, to put back into the page it receives. */
function rawToken(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  const body = request.body as Record<string, unknown> | undefined;
  const query = request.query as Record<string, unknown> | undefined;
  const token = bearer ?? body?.session_token ?? query?.session_token;
  return typeof token === 'string' ? token : '';
}

/** Learners never reach the picker nor the course-team view, whatever link or form they use. */
function courseTeamOnly(session: LaunchSession): LaunchSession {
  if (!isCourseTeam(session.role)) {
    throw new ForbiddenError('course_team_only', LEARNER_REFUSED, `role ${session.role} may not use course-team pages`);
  }
  return session;
}

export function createServicePages(app: FastifyInstance) {
  const { db, config } = app;
  const pageSession = (session: LaunchSession, token: string): PageSession => ({
    token,
    head: sessionHead(token, session.exp, config.publicUrl),
  });

  /**
   * LtiDeepLinkingRequest (Deep Linking 2.0 §4.4.1; Open edX sends it from Studio, to either URL): the
   * picker. Learners never get it, whatever the platform sent.
   */
  async function deepLinkingHandler(launch: ValidatedLaunch, request: FastifyRequest, reply: FastifyReply) {
    const session = courseTeamOnly(launch.session);
    const settings = checkDeepLinkingSettings(launch.claims.deepLinkingSettings);
    request.log.info({ launchId: session.launchId }, 'deep-linking picker shown');
    return sendLearnerPage(
      reply,
      renderPicker({
        session: pageSession(session, launch.sessionToken),
        catalogue: await pickerCatalogue(db),
        multiple: settings.accept_multiple !== false,
      }),
    );
  }

  async function courseTeamPage(
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    extra: { notice?: string; error?: string; status?: number } = {},
  ) {
    if (session.courseId === null) {
      throw new NotFoundError('no_course', 'Ouvrez cette page depuis un cours.', 'session without a course');
    }
    const view = await courseTeamView(db, session, app.ltiServices.courseTeamTimes);
    return sendLearnerPage(
      reply,
      renderCourseTeamView({
        session: pageSession(session, token),
        view,
        ...(extra.notice ? { notice: extra.notice } : {}),
        ...(extra.error ? { error: extra.error } : {}),
      }),
      extra.status ?? 200,
    );
  }

  return { deepLinkingHandler, courseTeamPage, pageSession };
}

export async function servicesRoutes(
  root: FastifyInstance,
  options: { syncMemberships: (courseId: string) => Promise<SyncResult> },
): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { db, config } = app;
  const pages = createServicePages(root);
  const htmlRoute = { config: { html: true } } as const;

  app.post(
    '/lti-services/deep-linking',
    {
      ...htmlRoute,
      schema: {
        body: Type.Object({
          session_token: SessionToken,
          item: Type.Optional(Type.Union([Choice, Type.Array(Choice, { maxItems: 100 })])),
          action: Type.Optional(Type.Union([Type.Literal('add'), Type.Literal('cancel')])),
        }),
        response: HTML_RESPONSES,
      },
    },
    async (request, reply) => {
      const session = courseTeamOnly(await requireSession(request));
      const ctx = await deepLinkingContext(db, session.launchId);
      const raw = request.body.item === undefined ? [] : [request.body.item].flat();
      const cancel = request.body.action === 'cancel';
      const selections: Selection[] = [];
      if (!cancel) {
        for (const value of new Set(raw)) {
          const s = parseSelection(value);
          if (!s)
            throw new BadRequestError(
              'deep_linking_bad_choice',
              'Ce choix n’est pas valable.',
              `bad item ${value.slice(0, 120)}`,
            );
          selections.push(s);
        }
        if (selections.length === 0) {
          return sendLearnerPage(
            reply,
            renderPicker({
              session: pages.pageSession(session, rawToken(request)),
              catalogue: await pickerCatalogue(db),
              multiple: ctx.settings.accept_multiple !== false,
              error: 'Cochez au moins un contenu, ou choisissez « Ne rien ajouter ».',
            }),
            400,
          );
        }
        if (ctx.settings.accept_multiple === false && selections.length > 1) {
          throw new BadRequestError(
            'deep_linking_single_choice',
            'À cet endroit, la plateforme n’accepte qu’un seul contenu : n’en cochez qu’un.',
            'accept_multiple is false',
          );
        }
      }
      const items = await itemsFor(db, selections, toolUrls(config.publicUrl).launchUrl);
      const jwt = await signDeepLinkingResponse(
        await getCurrentToolKey(root),
        ctx,
        items,
        cancel ? 'Aucun contenu ajouté.' : undefined,
      );
      request.log.info({ launchId: session.launchId, items: items.length }, 'deep-linking response sent');
      return sendLearnerPage(reply, renderAutoPost({ returnUrl: ctx.returnUrl, jwt, count: items.length }));
    },
  );

  app.get(
    '/lti-services/course-team',
    { ...htmlRoute, schema: { querystring: Type.Object({ session_token: SessionToken }), response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = courseTeamOnly(await requireSession(request));
      return pages.courseTeamPage(reply, session, rawToken(request));
    },
  );

  app.post(
    '/lti-services/course-team/memberships',
    { ...htmlRoute, schema: { body: Type.Object({ session_token: SessionToken }), response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = courseTeamOnly(await requireSession(request));
      if (session.courseId === null) {
        throw new NotFoundError('no_course', 'Ouvrez cette page depuis un cours.', 'session without a course');
      }
      const token = rawToken(request);
      try {
        const result = await options.syncMemberships(session.courseId);
        const notice = result.synced
          ? `Liste des inscrits mise à jour : ${result.learners} apprenant${result.learners > 1 ? 's' : ''} inscrit${result.learners > 1 ? 's' : ''}.`
          : undefined;
        return pages.courseTeamPage(reply, session, token, notice ? { notice } : {});
      } catch (error) {
        if (!(error instanceof PlatformCallError)) throw error;
        request.log.warn({ courseId: session.courseId, err: error }, 'memberships listing failed');
        return pages.courseTeamPage(reply, session, token, {
          error: 'La plateforme n’a pas donné la liste des inscrits. Réessayez dans quelques minutes.',
          status: 502,
        });
      }
    },
  );
}
