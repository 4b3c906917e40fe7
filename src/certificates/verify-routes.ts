import { readFileSync } from 'node:fs';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError } from '../http/errors.js';
import { sendPage } from '../http/html.js';
import { verifyFormPage, verifyPage } from './pages.js';
import { parseCertificateNumber } from './rules.js';
import { Html, Keys, NumberParams, PdfCheck, Problem, SignatureCheck, SignatureCheckBody, Summary } from './schemas.js';
import type { CertificateService } from './service.js';

/**
 * Public verification: GET /verify, /verify/keys, /verify/:number (page or JSON), POST /verify/:number/pdf,
 * POST /verify/signature. Rate-limited: numbers are sequential, so unthrottled look-ups would let anyone
 * walk the register (even if each answer shows only initials).
 */
export async function verificationRoutes(base: FastifyInstance, options: { service: CertificateService }) {
  const pub = base.withTypeProvider<TypeBoxTypeProvider>();
  const service = options.service;
  await pub.register(rateLimit, { max: 300, timeWindow: '1 minute' });
  pub.addContentTypeParser('application/pdf', { parseAs: 'buffer', bodyLimit: 10 * 1024 * 1024 }, (_req, body, done) =>
    done(null, body),
  );

  pub.get(
    '/verify',
    {
      schema: {
        querystring: Type.Object({ numero: Type.Optional(Type.String({ maxLength: 60 })) }),
        response: { 200: Html, 303: Type.Null() },
      },
      config: { html: true },
    },
    async (request, reply) => {
      const input = request.query.numero;
      if (!input) return sendPage(reply, verifyFormPage());
      const parsed = parseCertificateNumber(input);
      if (!parsed.ok) {
        return sendPage(
          reply,
          verifyFormPage(
            parsed.reason === 'check'
              ? 'Ce numéro contient une erreur de saisie : vérifiez chaque caractère.'
              : 'Ce numéro n’a pas le bon format (exemple : EMG-2026-000123-K).',
          ),
        );
      }
      return reply.redirect(`/verify/${parsed.number}`, 303);
    },
  );

  const pdfCheck = readFileSync(new URL('./assets/pdf-check.js', import.meta.url), 'utf8');
  pub.get('/verify/assets/pdf-check.js', { schema: { response: { 200: Type.String() } } }, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('text/javascript; charset=utf-8').send(pdfCheck),
  );

  pub.get('/verify/keys', { schema: { response: { 200: Keys } } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return { keys: await service.publishedKeys() };
  });

  pub.get(
    '/verify/:number',
    {
      schema: {
        params: NumberParams,
        response: {
          200: { content: { 'application/json': { schema: Summary }, 'text/html': { schema: Html } } },
        },
      },
    },
    async (request, reply) => {
      const result = await service.verify(request.params.number);
      reply.header('cache-control', 'no-store');
      reply.header('vary', 'accept');
      if (wantsJson(request)) {
        return reply.type('application/json; charset=utf-8').send({
          ...result.summary,
          integrity: result.integrity,
          verificationUrl: `${request.server.config.publicUrl}/verify/${result.summary.number}`,
        });
      }
      return sendPage(reply, verifyPage(result));
    },
  );

  pub.post(
    '/verify/:number/pdf',
    { schema: { params: NumberParams, response: { 200: PdfCheck, 415: Problem } } },
    async (request) => {
      if (!Buffer.isBuffer(request.body)) {
        throw new BadRequestError('pdf_required', 'Envoyez le fichier PDF (Content-Type: application/pdf).');
      }
      return service.verifyPdf(request.params.number, request.body);
    },
  );

  pub.post(
    '/verify/signature',
    { schema: { body: SignatureCheckBody, response: { 200: SignatureCheck } } },
    async (request) => service.verifySignature(request.body.data, request.body.signature),
  );
}

function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  if (accept.includes('application/json')) return true;
  return !accept.includes('text/html');
}
