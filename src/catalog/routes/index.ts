import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { CatalogContext } from '../runtime.js';
import { renderVideoPlaceholder } from '../views.js';
import { courseTeamRoutes } from './course-team.js';
import { learnerRoutes } from './learner.js';
import { profileRoutes } from './profile.js';
import { progressRoutes } from './progress.js';
import { HtmlPage, htmlRoute } from './schemas.js';

export { catalogLaunchHandler } from './learner.js';

const ASSETS = {
  module: readFileSync(new URL('../assets/module.js', import.meta.url), 'utf8'),
  form: readFileSync(new URL('../assets/form.js', import.meta.url), 'utf8'),
};

/** The catalog's pages, forms and APIs, and its static assets. */
export async function catalogRoutes(app: FastifyInstance, options: { ctx: CatalogContext }): Promise<void> {
  app.get(
    '/assets/video-placeholder.html',
    { ...htmlRoute, schema: { response: { 200: HtmlPage } } },
    async (_request, reply) =>
      reply
        .header('cache-control', 'public, max-age=3600')
        .type('text/html; charset=utf-8')
        .send(renderVideoPlaceholder()),
  );
  for (const [name, source] of Object.entries(ASSETS)) {
    app.get(`/assets/catalog/${name}.js`, { schema: { response: { 200: Type.String() } } }, async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').type('text/javascript; charset=utf-8').send(source),
    );
  }
  await learnerRoutes(app, options);
  await profileRoutes(app, options);
  await progressRoutes(app, options);
  await courseTeamRoutes(app, options);
}
