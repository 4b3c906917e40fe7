import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../http/errors.js';
import { requireRole, requireSession } from '../lti/index.js';
import {
  principalOf,
  registerPortalCookies,
  requireApiToken,
  requirePageSession,
  scopedFund,
  startDownloadAudit,
} from '../portal/index.js';
import { courseOf } from './route-common.js';
import { ArchiveQuery, PortalArchiveQuery } from './schemas.js';
import type { CertificateService } from './service.js';

/**
 * ZIP downloads: the course team's (session bearer, or the form of its page) and a fund's in the funds'
 * portal (fund staff see only their fund; operators any), audited.
 */
export async function certificateArchiveRoutes(base: FastifyInstance, options: { service: CertificateService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const service = options.service;

  const courseArchive = async (request: FastifyRequest, reply: FastifyReply, filter: Static<typeof ArchiveQuery>) => {
    const session = requireRole(await requireSession(request), 'course_team', 'staff');
    const courseId = courseOf(session);
    const archive = await service.archive({ courseId, fundSlug: filter.fund, allStates: filter.all !== undefined });
    request.log.info({ courseId, fund: filter.fund ?? null }, 'certificate archive download');
    return sendZip(reply, archive, `certificats-${filter.fund ?? 'cours'}.zip`);
  };
  app.get('/api/certificates/archive.zip', { schema: { querystring: ArchiveQuery } }, async (request, reply) =>
    courseArchive(request, reply, request.query),
  );
  // The course team's page posts the session token in a form (no token in a URL).
  app.post(
    '/certificates/archive.zip',
    { schema: { body: ArchiveQuery }, config: { html: true } },
    async (request, reply) => courseArchive(request, reply, request.body),
  );

  // Funds' portal: a fund's certificates.

  const portalArchive = async (
    request: FastifyRequest<{ Querystring: Static<typeof PortalArchiveQuery> }>,
    reply: FastifyReply,
  ) => {
    const principal = principalOf(request);
    const scope = scopedFund(principal, request.query.fund);
    if (!scope.ok) throw new ForbiddenError('not_your_fund', 'Ce fonds ne vous est pas rattaché.');
    const filter = {
      fundSlug: scope.fund ?? undefined,
      courseId: request.query.course,
      allStates: request.query.all !== undefined,
    };
    const audit = await startDownloadAudit(request.server, principal, { export: 'certificates.zip', ...filter });
    let entries = 0;
    const archive = await service.archive(filter);
    archive.on('entry', () => {
      entries++;
      audit.progress(entries);
    });
    archive.on('end', () => void audit.finish(Math.max(0, entries - 1)).catch(() => undefined));
    archive.on('error', (error: Error) => void audit.fail(entries, error.message).catch(() => undefined));
    return sendZip(reply, archive, `certificats-${scope.fund ?? 'tous-fonds'}.zip`);
  };
  // The portal's page route reads the portal session cookie: it lives in a context of its own with the
  // portal's cookie parser (without it the session was never seen and the sign-in page sent the
  // operator back here, forever).
  await app.register(async (portalBase) => {
    await registerPortalCookies(portalBase);
    const portal = portalBase.withTypeProvider<TypeBoxTypeProvider>();
    portal.get(
      '/portal/certificats.zip',
      { schema: { querystring: PortalArchiveQuery }, preHandler: requirePageSession, config: { html: true } },
      portalArchive,
    );
  });
  app.get(
    '/api/portal/certificates.zip',
    { schema: { querystring: PortalArchiveQuery }, preHandler: requireApiToken },
    portalArchive,
  );
}

function sendZip(reply: FastifyReply, archive: NodeJS.ReadableStream, fileName: string) {
  return reply
    .header('content-disposition', `attachment; filename="${fileName}"`)
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .type('application/zip')
    .send(archive);
}
