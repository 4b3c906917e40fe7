import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { sendLearnerPage } from '../../http/html.js';
import { requireSession } from '../../lti/index.js';
import { linkFixedFund } from '../pages/common.js';
import { overviewPage } from '../pages/course-team.js';
import { learnerPage } from '../pages/learner.js';
import { onboardingPage, ownProfilePage, savedProfilePage, saveProfileForm } from '../pages/profile.js';
import type { CatalogContext } from '../runtime.js';
import { HTML_RESPONSES, htmlRoute, ProfileBody, rawToken, TokenQuery } from './schemas.js';

const backToModule = (token: string) => ({
  href: `/catalog/module?session_token=${encodeURIComponent(token)}`,
  label: 'Revenir au module',
});

/** The learner's onboarding form and their own profile. */
export async function profileRoutes(root: FastifyInstance, options: { ctx: CatalogContext }): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { ctx } = options;

  app.post(
    '/catalog/onboarding',
    { ...htmlRoute, schema: { body: ProfileBody, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const fixedFund = await linkFixedFund(ctx, session);
      const out = await saveProfileForm(ctx, request, {
        session,
        token,
        learnerId: session.learnerId,
        body: request.body,
        mode: 'onboarding',
        action: '/catalog/onboarding',
        fixedFund,
      });
      const next = !out.saved
        ? out.page
        : session.role !== 'learner'
          ? await overviewPage(ctx, session, token)
          : await learnerPage(ctx, request, session, token, { notice: 'Merci, votre profil est enregistré.' });
      return sendLearnerPage(reply, next.body, next.status);
    },
  );

  app.get(
    '/catalog/profile',
    { ...htmlRoute, schema: { querystring: TokenQuery, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const out =
        (await ownProfilePage(ctx, session, token, backToModule(token))) ??
        (await onboardingPage(ctx, session, token, await linkFixedFund(ctx, session)));
      return sendLearnerPage(reply, out.body, out.status);
    },
  );

  app.post(
    '/catalog/profile',
    { ...htmlRoute, schema: { body: ProfileBody, response: HTML_RESPONSES } },
    async (request, reply) => {
      const session = await requireSession(request);
      const token = rawToken(request);
      const backLink = backToModule(token);
      const out = await saveProfileForm(ctx, request, {
        session,
        token,
        learnerId: session.learnerId,
        body: request.body,
        mode: 'profile',
        action: '/catalog/profile',
        fixedFund: null,
        backLink,
      });
      const next = !out.saved
        ? out.page
        : await savedProfilePage(ctx, {
            session,
            token,
            learnerId: session.learnerId,
            mode: 'profile',
            action: '/catalog/profile',
            notice: 'Vos modifications sont enregistrées.',
            backLink,
          });
      return sendLearnerPage(reply, next.body, next.status);
    },
  );
}
