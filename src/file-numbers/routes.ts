import type { FastifyInstance } from 'fastify';
import { registerPortalCookies } from '../portal/index.js';
import { fileNumberApiRoutes } from './api-routes.js';
import { fileNumberImportRoute } from './import-route.js';
import { fileNumberPageRoutes } from './page-routes.js';

/** The routes of the file-numbers capability, with the portal's session cookie. */
export async function fileNumberRoutes(fastify: FastifyInstance): Promise<void> {
  await registerPortalCookies(fastify);
  await fastify.register(fileNumberPageRoutes);
  await fastify.register(fileNumberImportRoute);
  await fastify.register(fileNumberApiRoutes);
}
