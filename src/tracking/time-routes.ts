import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { listModules } from '../catalog/index.js';
import { learnerFragments } from '../common/learner-pages.js';
import { sendLearnerPage } from '../http/html.js';
import { requireRole, requireSession } from '../lti/index.js';
import { type CommonTrunkFigure, courseOf, Problem, TIME_PAGE_PATH, type TrackingRuntime, tokenOf } from './routes.js';
import { getCourseTimes, getLearnerTimes } from './service/times.js';
import { learnerTimesPage } from './views.js';

const TokenQuery = Type.Object({ session_token: Type.Optional(Type.String({ maxLength: 4096 })) });
const ModuleTimeSchema = Type.Object({
  moduleId: Type.String(),
  nominalMinutes: Type.Integer(),
  creditedSeconds: Type.Integer(),
  measuredSeconds: Type.Integer(),
  capSeconds: Type.Integer(),
  overCapSeconds: Type.Integer(),
  firstAt: Type.Union([Type.String(), Type.Null()]),
  lastAt: Type.Union([Type.String(), Type.Null()]),
  rejectedItems: Type.Integer(),
  flags: Type.Array(Type.String()),
});
const LearnerTimesSchema = Type.Object({
  learnerId: Type.String(),
  courseId: Type.String(),
  algorithm: Type.String(),
  params: Type.Record(Type.String(), Type.Unknown()),
  creditedSeconds: Type.Integer(),
  measuredSeconds: Type.Integer(),
  rejectedItems: Type.Integer(),
  longDays: Type.Array(Type.String()),
  flags: Type.Array(Type.String()),
  modules: Type.Array(ModuleTimeSchema),
});
const HtmlPage = Type.String({ description: 'French HTML page (shown inside the LMS iframe)' });

/** The learner's and the course team's reads of the credited time: JSON, and the learner's time page. */
export async function timeRoutes(root: FastifyInstance, options: { runtime: TrackingRuntime }): Promise<void> {
  const { runtime } = options;
  const app = root.withTypeProvider<TypeBoxTypeProvider>();

  /** The learner's page never fails for the estimate: without one, it shows the time measured here alone. */
  async function commonTrunkOrNone(learnerId: string, courseId: string): Promise<CommonTrunkFigure> {
    const none = { seconds: null, awaitingLogsOf: null };
    if (!runtime.commonTrunk) return none;
    try {
      const figure = await runtime.commonTrunk(app.db, learnerId, courseId);
      return typeof figure === 'number' || figure === null ? { seconds: figure, awaitingLogsOf: null } : figure;
    } catch (err) {
      app.log.warn({ err }, 'common-trunk estimate unavailable for the learner page');
      return none;
    }
  }

  app.get(
    '/api/tracking/me',
    { schema: { querystring: TokenQuery, response: { 200: LearnerTimesSchema, 401: Problem, 404: Problem } } },
    async (request) => {
      const session = await requireSession(request);
      return serializeTimes(await getLearnerTimes(app.db, session.learnerId, courseOf(session)));
    },
  );

  app.get(
    '/api/tracking/course',
    {
      schema: {
        querystring: TokenQuery,
        response: {
          200: Type.Object({ learners: Type.Array(LearnerTimesSchema) }),
          401: Problem,
          403: Problem,
          404: Problem,
        },
      },
    },
    async (request) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      const learners = await getCourseTimes(app.db, courseOf(session));
      return { learners: learners.map(serializeTimes) };
    },
  );

  app.get(
    TIME_PAGE_PATH,
    {
      config: { html: true },
      schema: { querystring: TokenQuery, response: { 200: HtmlPage, 401: HtmlPage, 404: HtmlPage } },
    },
    async (request, reply) => {
      const session = await requireSession(request);
      const times = await getLearnerTimes(app.db, session.learnerId, courseOf(session));
      const titles = new Map((await listModules(app.db, { includeInactive: true })).map((m) => [m.id, m.title]));
      const commonTrunk = await commonTrunkOrNone(session.learnerId, courseOf(session));
      return sendLearnerPage(
        reply,
        learnerTimesPage(
          times,
          titles,
          commonTrunk.seconds,
          pageTokenOf(request) || null,
          commonTrunk.awaitingLogsOf,
          learnerFragments(app, { sessionToken: pageTokenOf(request) }),
        ),
      );
    },
  );
}

/** The session token of the time page's request (already verified by requireSession): query or bearer. */
function pageTokenOf(request: FastifyRequest): string {
  const query = request.query as { session_token?: string } | undefined;
  return query?.session_token ?? tokenOf(request) ?? '';
}

function serializeTimes(t: Awaited<ReturnType<typeof getLearnerTimes>>) {
  return {
    ...t,
    modules: t.modules.map((m) => ({
      ...m,
      firstAt: m.firstAt ? m.firstAt.toISOString() : null,
      lastAt: m.lastAt ? m.lastAt.toISOString() : null,
    })),
  };
}
