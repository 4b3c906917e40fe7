import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../http/errors.js';
import { exportDuration } from '../metrics/index.js';
import { principalOf } from '../portal/index.js';
import type { ExportKind } from './columns.js';
import { type ExportFormat, type FilterInput, resolveFilter, startExport } from './service.js';

/** Streams an export to the caller (portal page or API), audited and timed. */
export async function sendExport(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  kind: ExportKind,
  format: ExportFormat,
  input: FilterInput,
  ticket?: string,
  excel = false,
): Promise<FastifyReply> {
  const principal = principalOf(request);
  // A link on another site could make a signed-in browser download (and be audited) without its
  // owner asking: the cookie travels with top-level navigations (SameSite=Lax). Fetch Metadata tells.
  if (principal.via === 'session' && request.headers['sec-fetch-site'] === 'cross-site') {
    throw new ForbiddenError('cross_site_download', 'Lancez le téléchargement depuis la page des exports.');
  }
  const filter = resolveFilter(principal, input);
  const endTimer = exportDuration.startTimer({ kind, format });
  const started = await startExport(app, principal, { kind, format, filter, ticket, excel });
  // Measured to the last byte written (an aborted download is not a duration).
  reply.raw.once('finish', () => endTimer());
  request.log.info({ auditId: started.auditId, kind, format, via: principal.via }, 'export started');
  return reply
    .code(200)
    .header('content-type', started.contentType)
    .header('content-disposition', `attachment; filename="${started.filename}"`)
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .header('x-audit-id', started.auditId)
    .send(started.stream);
}
