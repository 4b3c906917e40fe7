import type { FastifyInstance } from 'fastify';
import { certificateApiRoutes } from './api-routes.js';
import { certificateArchiveRoutes } from './archive-routes.js';
import { certificatePageRoutes } from './page-routes.js';
import type { CertificateService } from './service.js';
import { verificationRoutes } from './verify-routes.js';

/**
 * Routes of the certificates capability:
 * - public: GET /verify, /verify/keys, /verify/:number (page or JSON), POST /verify/:number/pdf,
 *   POST /verify/signature;
 * - in the LMS iframe (session token): GET /certificates, POST /certificates/request,
 *   GET /certificates/:number/pdf, the course team's forms under /certificates/manage/;
 * - course team API (session bearer): /api/certificates…, the course ZIP;
 * - funds' portal (portal session or API token): the fund ZIP.
 */
export async function certificateRoutes(app: FastifyInstance, options: { service: CertificateService }) {
  await app.register(verificationRoutes, options);
  await app.register(certificatePageRoutes, options);
  await app.register(certificateApiRoutes, options);
  await app.register(certificateArchiveRoutes, options);
}
