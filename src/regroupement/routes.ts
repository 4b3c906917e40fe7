import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getLearnerProfile } from '../catalog/index.js';
import { DomainError, ForbiddenError, NotFoundError } from '../http/errors.js';
import { sendLearnerPage } from '../http/html.js';
import { type LaunchSession, requireSession, sessionHead } from '../lti/index.js';
import { validateSchedule } from './rules.js';
import {
  attendByCode,
  cancelSession,
  courseTeamOverview,
  learnerSectionData,
  learnerStanding,
  recordAttendanceList,
  register,
  scheduleSession,
  sessionOfCourse,
  unregister,
} from './service.js';
import { type PageSession, renderCourseTeamPage, renderLearnerPage } from './views.js';

const HtmlPage = Type.String({ description: 'French HTML page (shown inside the LMS iframe)' });
const HTML_RESPONSES = { 200: HtmlPage, 400: HtmlPage, 401: HtmlPage, 403: HtmlPage, 404: HtmlPage, 409: HtmlPage };
const SessionToken = Type.Optional(Type.String({ maxLength: 4096 }));
const Text = Type.Optional(Type.String({ maxLength: 600 }));
const SessionParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

export interface RegroupementOptions {
  /** Funds that plan a closing session (funds.json). */
  funds: ReadonlySet<string>;
  /** After an attendance changed: the certificate may need a new version. */
  attendanceChanged: (learnerId: string, courseId: string) => Promise<void>;
}

function rawToken(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  const body = request.body as Record<string, unknown> | undefined;
  const query = request.query as Record<string, unknown> | undefined;
  const token = bearer ?? body?.session_token ?? query?.session_token;
  return typeof token === 'string' ? token : '';
}

const inCourse = (session: LaunchSession): string => {
  if (session.courseId === null)
    throw new NotFoundError('no_course', 'Ouvrez cette page depuis un cours.', 'no course');
  return session.courseId;
};

function courseTeamOnly(session: LaunchSession): LaunchSession {
  if (session.role !== 'course_team' && session.role !== 'staff') {
    throw new ForbiddenError(
      'course_team_only',
      'Cette page est réservée à l’équipe du cours.',
      `role ${session.role}`,
    );
  }
  return session;
}

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
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const who = await learner(session);
      try {
        const standing = await learnerStanding(db, who.learnerId, who.courseId, options.funds, who.fundSlug);
        const s = await register(db, who, request.body.session_id, { mayJoin: standing.mayJoin });
        request.log.info({ sessionId: s.id }, 'regroupement registration');
        return learnerPage(reply, session, token, {
          notice: 'Vous êtes inscrit(e). Rendez-vous à la date indiquée ci-dessous.',
        });
      } catch (error) {
        if (!(error instanceof DomainError) || error.status === 404) throw error;
        return learnerPage(reply, session, token, { error: error.publicMessage, status: error.status });
      }
    },
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
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const who = await learner(session);
      try {
        await unregister(db, who, request.body.session_id);
        return learnerPage(reply, session, token, { notice: 'Votre inscription est annulée : la place est libérée.' });
      } catch (error) {
        if (!(error instanceof DomainError) || error.status === 404) throw error;
        return learnerPage(reply, session, token, { error: error.publicMessage, status: error.status });
      }
    },
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
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const who = await learner(session);
      try {
        const s = await attendByCode(db, who, request.body.code);
        await options.attendanceChanged(who.learnerId, who.courseId);
        request.log.info({ sessionId: s.id }, 'regroupement attendance by code');
        return learnerPage(reply, session, token, {
          notice: 'Merci : votre présence au regroupement est enregistrée.',
        });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        request.log.info({ code: error.code }, 'regroupement code refused');
        return learnerPage(reply, session, token, { error: error.publicMessage, status: error.status });
      }
    },
  );

  // ─── Course team ─────────────────────────────────────────────────────────────────────────
  async function teamPage(
    reply: FastifyReply,
    session: LaunchSession,
    token: string,
    extra: {
      notice?: string;
      error?: string;
      status?: number;
      form?: Record<string, string>;
      errors?: Record<string, string>;
    } = {},
  ) {
    const { funds, sessions: withRegs, title } = await courseTeamOverview(db, inCourse(session));
    return sendLearnerPage(
      reply,
      renderCourseTeamPage({
        session: pageSession(session, token),
        courseTitle: title,
        funds: funds.filter((f) => options.funds.has(f.slug)).map((f) => ({ slug: f.slug, name: f.name })),
        sessions: withRegs,
        ...(extra.form ? { form: extra.form } : {}),
        ...(extra.errors ? { errors: extra.errors } : {}),
        ...(extra.notice ? { notice: extra.notice } : {}),
        ...(extra.error ? { error: extra.error } : {}),
      }),
      extra.status ?? 200,
    );
  }

  app.get(
    '/regroupement/equipe',
    { ...htmlRoute, schema: { querystring: Type.Object({ session_token: SessionToken }), response: HTML_RESPONSES } },
    async (request, reply) => teamPage(reply, courseTeamOnly(await requireSession(request)), rawToken(request)),
  );

  app.post(
    '/regroupement/equipe/seances',
    {
      ...htmlRoute,
      schema: {
        body: Type.Object({
          session_token: SessionToken,
          fund: Text,
          day: Text,
          time: Text,
          duration: Text,
          mode: Text,
          location: Text,
          capacity: Text,
        }),
        response: HTML_RESPONSES,
      },
    },
    async (request, reply) => {
      const session = courseTeamOnly(await requireSession(request));
      const courseId = inCourse(session);
      const { session_token: _t, ...form } = request.body;
      const checked = validateSchedule(form, { funds: [...options.funds], now: new Date() });
      if (!checked.ok) {
        return teamPage(reply, session, rawToken(request), {
          form: form as Record<string, string>,
          errors: checked.errors,
          error: 'La séance n’est pas programmée : corrigez les champs signalés.',
          status: 400,
        });
      }
      await scheduleSession(db, { learnerId: session.learnerId, role: session.role }, courseId, checked.value);
      request.log.info({ courseId, fund: checked.value.fundSlug }, 'regroupement scheduled');
      return teamPage(reply, session, rawToken(request), {
        notice: 'Séance programmée. Elle s’affiche dans « Mon parcours » des apprenants concernés.',
      });
    },
  );

  app.post(
    '/regroupement/equipe/seances/:id/presences',
    {
      ...htmlRoute,
      schema: {
        params: SessionParams,
        body: Type.Object({
          session_token: SessionToken,
          present: Type.Optional(
            Type.Union([
              Type.String({ maxLength: 64 }),
              Type.Array(Type.String({ maxLength: 64 }), { maxItems: 1000 }),
            ]),
          ),
        }),
        response: HTML_RESPONSES,
      },
    },
    async (request, reply) => {
      const session = courseTeamOnly(await requireSession(request));
      const courseId = inCourse(session);
      const s = await sessionOfCourse(db, request.params.id, courseId);
      const present = new Set(request.body.present === undefined ? [] : [request.body.present].flat());
      try {
        const changed = await recordAttendanceList(
          db,
          { learnerId: session.learnerId, role: session.role },
          s,
          present,
        );
        for (const id of [...changed.added, ...changed.removed]) await options.attendanceChanged(id, courseId);
        return teamPage(reply, session, rawToken(request), {
          notice: `Présences enregistrées : ${changed.added.length} ajoutée(s), ${changed.removed.length} retirée(s).`,
        });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        return teamPage(reply, session, rawToken(request), { error: error.publicMessage, status: error.status });
      }
    },
  );

  app.post(
    '/regroupement/equipe/seances/:id/annulation',
    {
      ...htmlRoute,
      schema: { params: SessionParams, body: Type.Object({ session_token: SessionToken }), response: HTML_RESPONSES },
    },
    async (request, reply) => {
      const session = courseTeamOnly(await requireSession(request));
      const s = await sessionOfCourse(db, request.params.id, inCourse(session));
      await cancelSession(db, { learnerId: session.learnerId, role: session.role }, s);
      return teamPage(reply, session, rawToken(request), {
        notice: 'Séance annulée. Les inscrits la voient annulée dans « Mon parcours ».',
      });
    },
  );
}
