import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { sendLearnerPage } from '../../http/html.js';
import { courseLearner, courseLearnersPage, overviewPage, previewPage } from '../pages/course-team.js';
import { learnerProfilePage, savedProfilePage, saveProfileForm } from '../pages/profile.js';
import type { CatalogContext } from '../runtime.js';
import {
  courseTeam,
  HTML_RESPONSES,
  htmlRoute,
  LearnerParams,
  ModuleId,
  ProfileBody,
  rawToken,
  TokenQuery,
} from './schemas.js';

const backToLearners = (token: string) => ({
  href: `/catalog/course/learners?session_token=${encodeURIComponent(token)}`,
  label: 'Retour à la liste des apprenants',
});

/** The course team's pages: the view of a link, module previews, the course's learners and their profiles. */
export async function courseTeamRoutes(root: FastifyInstance, options: { ctx: CatalogContext }): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { ctx } = options;

  app.get(
    '/catalog/course',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await courseTeam(request);
      const out = await overviewPage(ctx, session, rawToken(request));
      return sendLearnerPage(reply, out.body, out.status);
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
      const out = await previewPage(ctx, session, rawToken(request), request.query);
      return sendLearnerPage(reply, out.body, out.status);
    },
  );

  app.get(
    '/catalog/course/learners',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await courseTeam(request);
      const out = await courseLearnersPage(ctx, session, rawToken(request));
      return sendLearnerPage(reply, out.body, out.status);
    },
  );

  app.get(
    '/catalog/course/learners/:learnerId/profile',
    { ...htmlRoute, schema: { params: LearnerParams, querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await courseTeam(request);
      const learner = await courseLearner(ctx, session, request.params.learnerId);
      const token = rawToken(request);
      const out = await learnerProfilePage(ctx, session, token, learner, backToLearners(token));
      return sendLearnerPage(reply, out.body, out.status);
    },
  );

  app.post(
    '/catalog/course/learners/:learnerId/profile',
    { ...htmlRoute, schema: { params: LearnerParams, body: ProfileBody, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await courseTeam(request);
      const learner = await courseLearner(ctx, session, request.params.learnerId);
      const token = rawToken(request);
      const backLink = backToLearners(token);
      const action = `/catalog/course/learners/${learner.id}/profile`;
      const out = await saveProfileForm(ctx, request, {
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
      const next = !out.saved
        ? out.page
        : await savedProfilePage(ctx, {
            session,
            token,
            learnerId: learner.id,
            mode: 'course_team',
            action,
            notice: 'Le profil est corrigé.',
            backLink,
          });
      return sendLearnerPage(reply, next.body, next.status);
    },
  );
}
