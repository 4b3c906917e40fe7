import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type LaunchSession, requireRole, requireSession, viewTicketUrl } from '../../lti/index.js';
import { courseOf } from '../pages/common.js';
import type { CatalogContext } from '../runtime.js';
import {
  answerQuiz,
  markBlockSeen,
  openedModule,
  type ProgressView,
  progressView,
  quizFormAnswers,
} from '../service.js';
import { BlockId, HTML_RESPONSES, htmlRoute, MODULE_PATH, ModuleId } from './schemas.js';

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

/** Progress of a module: forms of the module page (work without JavaScript) and JSON APIs (its script). */
export async function progressRoutes(root: FastifyInstance, options: { ctx: CatalogContext }): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { db, runtime } = options.ctx;
  const progressContext = (request: FastifyRequest) => ({ log: request.log, onCompleted: runtime.completionListeners });

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
      await markBlockSeen(db, key, request.body.block_id, progressContext(request));
      return backToModule(reply, session, { module: key.moduleId });
    },
  );

  app.post(
    '/catalog/module/quiz',
    { ...htmlRoute, schema: { body: QuizForm, response: { ...HTML_RESPONSES, 303: Type.Null() } } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'learner');
      const key = { learnerId: session.learnerId, courseId: courseOf(session), moduleId: request.body.module_id };
      const answers = await quizFormAnswers(db, key, request.body as Record<string, string | undefined>);
      if (answers.some((a) => a === null)) {
        return backToModule(reply, session, { module: key.moduleId, erreur: 'quiz' });
      }
      await answerQuiz(db, key, answers, progressContext(request));
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
      const { opened, progress } = await markBlockSeen(db, key, request.body.blockId, progressContext(request));
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
      const { opened, progress, score } = await answerQuiz(db, key, request.body.answers, progressContext(request));
      return {
        progress: progressView({ manifest: opened.manifest, progress }),
        correct: score.correct,
        total: score.total,
        results: score.results,
      };
    },
  );
}
