import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { sendLearnerPage } from '../../http/html.js';
import { type LaunchHandler, requireSession } from '../../lti/index.js';
import { overviewPage } from '../pages/course-team.js';
import { learnerPage } from '../pages/learner.js';
import { parseLinkTarget } from '../rules.js';
import type { CatalogContext } from '../runtime.js';
import { HTML_RESPONSES, htmlRoute, MODULE_PATH, ModuleQuery, rawToken, TokenQuery } from './schemas.js';

const QUIZ_INCOMPLETE = 'Répondez à toutes les questions avant de valider.';

/** The answer to a resource-link launch: the learner's page, or the course-team view of the link. */
export function catalogLaunchHandler(ctx: CatalogContext): LaunchHandler {
  return async (launch, request, reply) => {
    const { session, sessionToken } = launch;
    const out =
      session.role === 'learner'
        ? await learnerPage(ctx, request, session, sessionToken, {
            target: parseLinkTarget(launch.claims.custom),
            ...(launch.read !== undefined ? { launchRead: launch.read } : {}),
          })
        : await overviewPage(ctx, session, sessionToken);
    return sendLearnerPage(reply, out.body, out.status);
  };
}

/** The learner's module page and "Mon parcours" (the course team gets its view of the link). */
export async function learnerRoutes(root: FastifyInstance, options: { ctx: CatalogContext }): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { ctx } = options;

  app.get(
    MODULE_PATH,
    { ...htmlRoute, schema: { querystring: ModuleQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const out =
        session.role !== 'learner'
          ? await overviewPage(ctx, session, token)
          : await learnerPage(ctx, request, session, token, {
              ...(request.query.module ? { moduleId: request.query.module } : {}),
              ...(request.query.erreur === 'quiz' ? { quizError: QUIZ_INCOMPLETE } : {}),
            });
      return sendLearnerPage(reply, out.body, out.status);
    },
  );

  app.get(
    '/catalog/parcours',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const out =
        session.role !== 'learner'
          ? await overviewPage(ctx, session, token, { parcours: true })
          : await learnerPage(ctx, request, session, token, { parcours: true });
      return sendLearnerPage(reply, out.body, out.status);
    },
  );
}
