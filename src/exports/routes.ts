import type { FastifyInstance } from 'fastify';
import { registerPortalCookies } from '../portal/index.js';
import { exportApiRoutes } from './api-routes.js';
import { exportPageRoutes } from './page-routes.js';

/** The routes of the exports capability, with the portal's session cookie. */
export async function exportsRoutes(fastify: FastifyInstance): Promise<void> {
  await registerPortalCookies(fastify);
  await fastify.register(exportPageRoutes);
  await fastify.register(exportApiRoutes);
}
