import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DomainError } from '../http/errors.js';
import { sendLearnerPage } from '../http/html.js';
import { type LaunchSession, requireSession, sessionHead } from '../lti/index.js';
import {
  courseTeamOnly,
  HTML_RESPONSES,
  inCourse,
  type RegroupementOptions,
  rawToken,
  SessionParams,
  SessionToken,
  Text,
} from './http.js';
import { validateSchedule } from './rules.js';
import {
  cancelSession,
  courseTeamOverview,
  recordAttendanceList,
  scheduleSession,
  sessionOfCourse,
} from './service.js';
import { type PageSession, renderCourseTeamPage } from './views.js';

/** The course team's page (/regroupement/equipe): scheduling, attendance lists, cancellation. */

export async function courseTeamRoutes(root: FastifyInstance, options: RegroupementOptions): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { db, config } = app;
  const htmlRoute = { config: { html: true } } as const;
  const pageSession = (session: LaunchSession, token: string): PageSession => ({
    token,
    head: sessionHead(token, session.exp, config.publicUrl),
  });

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
