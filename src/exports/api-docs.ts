import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * The OpenAPI description of the funds' API at /docs. Registered on the instance it is given (the
 * exports plugin's, shared with the app): it lists the tagged routes registered after it, those of this
 * capability and of src/file-numbers.
 */
export async function registerApiDocs(fastify: FastifyInstance): Promise<void> {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Émargement — API des fonds',
        description:
          'Exports and completion funnel for training funds (OPCO). Authenticate with a personal API token ' +
          '(`Authorization: Bearer emt_…`) created on the portal page « Jetons d’API » or with ' +
          '`npm run cli -- users tokens create`. A token has its owner’s scope: fund staff only ever see ' +
          'their fund’s learners; asking for another fund answers 403. Every download is written to the audit log.',
        version: '1.0.0',
      },
      servers: [{ url: fastify.config.publicUrl }],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'Personal API token (emt_…)' } },
      },
      tags: [
        { name: 'exports', description: 'Attendance exports (summary, connection log), streamed' },
        { name: 'funnel', description: 'Registered → started → common trunk → sector trunk → certificate' },
        { name: 'account', description: 'The token’s account and what it may filter on' },
        {
          name: 'file-numbers',
          description: 'OPCO file numbers (numéro de dossier) per fund, course session and company',
        },
      ],
    },
    hideUntagged: true,
  });
  await fastify.register(swaggerUi, { routePrefix: '/docs' });
}
