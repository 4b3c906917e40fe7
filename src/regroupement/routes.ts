import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getLearnerProfile, listFunds } from '../catalog/index.js';
import { DomainError, ForbiddenError, NotFoundError } from '../http/errors.js';
import { sendLearnerPage } from '../http/html.js';
import { type LaunchSession, requireSession, sessionHead } from '../lti/index.js';
import * as repo from './repository.js';
import { mayJoin, validateSchedule } from './rules.js';
import {
  attendByCode,
  cancelSession,
  learnerStanding,
  recordAttendanceList,
  register,
  scheduleSession,
  sessionOfCourse,
  unregister,
} from './service.js';
import {
  type LearnerSessionView,
  learnerSection,
  type PageSession,
  renderCourseTeamPage,
  renderLearnerPage,
} from './views.js';

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

/** What the learner's section shows: the sessions of their fund in this course, and their own standing. */
export async function learnerSectionData(
  app: FastifyInstance,
  options: RegroupementOptions,
  learner: { learnerId: string; courseId: string; fundSlug: string },
  /** What « Mon parcours » already counted, to spare recounting it. */
  known?: { done: number; planned: number },
) {
  const standing = known
    ? { fundPlans: options.funds.has(learner.fundSlug), mayJoin: mayJoin(known), progress: known }
    : await learnerStanding(app.db, learner.learnerId, learner.courseId, options.funds, learner.fundSlug);
  const [sessions, mine] = await Promise.all([
    repo.listSessions(app.db, learner.courseId, learner.fundSlug),
    repo.learnerRegistrations(app.db, learner.learnerId, learner.courseId),
  ]);
  const byId = new Map(mine.map((r) => [r.sessionId, r]));
  const views: LearnerSessionView[] = sessions.map((s) => ({
    session: s,
    registered: byId.has(s.id),
    attendedMinutes: byId.get(s.id)?.attendedMinutes ?? null,
  }));
  const progress = standing.progress;
  return {
    fundPlans: standing.fundPlans || mine.length > 0,
    mayJoin: standing.mayJoin,
    left: progress ? Math.max(0, progress.planned - progress.done) : 0,
    sessions: views,
  };
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
    const data = await learnerSectionData(root, options, who);
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
    const courseId = inCourse(session);
    const [funds, sessions, title] = await Promise.all([
      listFunds(db, { includeInactive: true }),
      repo.listSessions(db, courseId),
      repo.courseTitle(db, courseId),
    ]);
    const name = new Map(funds.map((f) => [f.slug, f.name]));
    const withRegs = await Promise.all(
      sessions.map(async (s) => {
        const [registrations, audit] = await Promise.all([repo.listRegistrations(db, s.id), repo.listAudit(db, s.id)]);
        const names = await repo.learnerNames(db, [...new Set(audit.map((a) => a.actor_learner_id))]);
        return {
          session: s,
          fundName: name.get(s.fundSlug) ?? s.fundSlug,
          registrations,
          history: audit.map((a) => ({
            at: a.at,
            who: names.get(a.actor_learner_id) ?? (a.actor_role === 'learner' ? 'un apprenant' : 'l’équipe du cours'),
            action: a.action,
          })),
        };
      }),
    );
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

export { learnerSection };
