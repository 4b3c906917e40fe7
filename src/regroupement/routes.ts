import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getLearnerProfile } from '../catalog/index.js';
import { DomainError, ForbiddenError } from '../http/errors.js';
import { sendLearnerPage } from '../http/html.js';
import { type LaunchSession, requireSession, sessionHead } from '../lti/index.js';
import { HTML_RESPONSES, inCourse, type RegroupementOptions, rawToken, SessionToken } from './http.js';
import { attendByCode, learnerSectionData, learnerStanding, register, unregister } from './service.js';
import { type PageSession, renderLearnerPage } from './views.js';

/** The learner's page (/regroupement) and its forms: registration, cancellation, attendance by code. */
export async function regroupementRoutes(root: FastifyInstance, options: RegroupementOptions): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { db, config } = app;
  const htmlRoute = { config: { html: true } } as const;
  const pageSession = (session: LaunchSession, token: string): PageSession => ({
    token,
    head: sessionHead(token, session.exp, config.publicUrl),
  });

  // ─── Learner ─────────────────────────────────────────────────────────────────────────────
  async function learner(session: LaunchSession) {
    const courseId = inCourse(session);
    const profile = await getLearnerProfile(db, session.learnerId);
    if (!profile) {
      throw new ForbiddenError('no_profile', 'Complétez d’abord votre profil depuis « Mon parcours ».', 'no profile');
    }
    return { learnerId: session.learnerId, courseId, fundSlug: profile.fundSlug };
  }

  async function learnerPage(
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    extra: { notice?: string; error?: string; status?: number } = {},
  ) {
    const who = await learner(session);
    const data = await learnerSectionData(db, options.funds, who);
    return sendLearnerPage(
      reply,
      renderLearnerPage({
        session: pageSession(session, token),
        token,
        ...data,
        notice: extra.notice,
        error: extra.error,
      }),
      extra.status ?? 200,
    );
  }

  /**
   * A learner's form: runs `act` and shows the page with the notice it returns, or with the refusal it met
   * (a DomainError; a 404 propagates unless `notFoundIsRefusal`, `onRefused` may log it).
   */
  async function learnerForm(
    request: FastifyRequest,
    reply: FastifyReply,
    act: (who: Awaited<ReturnType<typeof learner>>) => Promise<string>,
    refusal: { notFoundIsRefusal?: boolean; onRefused?: (error: DomainError) => void } = {},
  ) {
    const session = await requireSession(request);
    const token = rawToken(request);
    const who = await learner(session);
    let notice: string;
    try {
      notice = await act(who);
    } catch (error) {
      if (!(error instanceof DomainError) || (error.status === 404 && !refusal.notFoundIsRefusal)) throw error;
      refusal.onRefused?.(error);
      return learnerPage(reply, session, token, { error: error.publicMessage, status: error.status });
    }
    return learnerPage(reply, session, token, { notice });
  }

  app.get(
    '/regroupement',
    { ...htmlRoute, schema: { querystring: Type.Object({ session_token: SessionToken }), response: HTML_RESPONSES } },
    async (request, reply) => learnerPage(reply, await requireSession(request), rawToken(request)),
  );

  app.post(
    '/regroupement/inscription',
    {
      ...htmlRoute,
      schema: {
        body: Type.Object({ session_token: SessionToken, session_id: Type.String({ maxLength: 64 }) }),
        response: HTML_RESPONSES,
      },
    },
    async (request, reply) =>
      learnerForm(request, reply, async (who) => {
        const standing = await learnerStanding(db, who.learnerId, who.courseId, options.funds, who.fundSlug);
        const s = await register(db, who, request.body.session_id, { mayJoin: standing.mayJoin });
        request.log.info({ sessionId: s.id }, 'regroupement registration');
        return 'Vous êtes inscrit(e). Rendez-vous à la date indiquée ci-dessous.';
      }),
  );

  app.post(
    '/regroupement/desinscription',
    {
      ...htmlRoute,
      schema: {
        body: Type.Object({ session_token: SessionToken, session_id: Type.String({ maxLength: 64 }) }),
        response: HTML_RESPONSES,
      },
    },
    async (request, reply) =>
      learnerForm(request, reply, async (who) => {
        await unregister(db, who, request.body.session_id);
        return 'Votre inscription est annulée : la place est libérée.';
      }),
  );

  app.post(
    '/regroupement/presence',
    {
      ...htmlRoute,
      schema: {
        body: Type.Object({ session_token: SessionToken, code: Type.String({ maxLength: 40 }) }),
        response: HTML_RESPONSES,
      },
    },
    async (request, reply) =>
      learnerForm(
        request,
        reply,
        async (who) => {
          const s = await attendByCode(db, who, request.body.code);
          await options.attendanceChanged(who.learnerId, who.courseId);
          request.log.info({ sessionId: s.id }, 'regroupement attendance by code');
          return 'Merci : votre présence au regroupement est enregistrée.';
        },
        {
          notFoundIsRefusal: true,
          onRefused: (error) => request.log.info({ code: error.code }, 'regroupement code refused'),
        },
      ),
  );
}
