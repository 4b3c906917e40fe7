import fp from 'fastify-plugin';
import { healthRoutes } from './routes.js';

/** Liveness (`/health`) and readiness (`/ready`: database reachable, no migration pending). */
export const healthPlugin = fp(healthRoutes, { name: 'health', fastify: '5.x' });
