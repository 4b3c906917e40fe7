import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DomainError } from '../http/errors.js';
import { sendPage } from '../http/html.js';
import { principalOf, requirePageSession } from '../portal/index.js';
import { formPrincipal, formRoute, HtmlPage, hidden, pageConfig, pageInput, Uuid } from './page-forms.js';
import { fileNumbersPage } from './pages.js';
import { formatSiret } from './rules.js';
import { type ChangeResult, changeFileNumber, confirmCompanyName } from './service.js';

function isFieldError(error: unknown): error is DomainError {
  return error instanceof DomainError && error.status === 400 && typeof error.extra?.field === 'string';
}

function changeNotice(r: ChangeResult): string {
  const what = !r.changed
    ? `Le numéro de dossier de l’entreprise ${formatSiret(r.siret)} était déjà celui-ci.`
    : r.fileNumber === null
      ? `Le numéro de dossier de l’entreprise ${formatSiret(r.siret)} est retiré.`
      : `Le numéro de dossier de l’entreprise ${formatSiret(r.siret)} est enregistré : ${r.fileNumber}.`;
  const reissued =
    r.reissued.length > 0
      ? ` ${r.reissued.length} certificat(s) réédité(s) : ${r.reissued.join(', ')} (la version précédente est remplacée).`
      : '';
  const failed =
    r.reissueFailed > 0 ? ` ${r.reissueFailed} certificat(s) n’ont pas pu être réédités : réessayez plus tard.` : '';
  return what + reissued + failed;
}

/** The portal page /portal/dossiers: the company list of a fund's course session and its forms. */
export async function fileNumberPageRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/portal/dossiers',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        querystring: Type.Object({
          fund: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{0,64}$' })),
          courseId: Type.Optional(Type.String({ pattern: `^(${Uuid.slice(1, -1)})?$` })),
        }),
        response: { 200: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return sendPage(
        reply,
        fileNumbersPage(
          await pageInput(app, request, principal, {
            fund: request.query.fund || undefined,
            courseId: request.query.courseId || undefined,
          }),
        ),
      );
    },
  );

  app.post(
    '/portal/dossiers',
    formRoute({
      siret: Type.String({ maxLength: 40 }),
      numero: Type.Optional(Type.String({ maxLength: 200 })),
      nom: Type.Optional(Type.String({ maxLength: 300 })),
      action: Type.Optional(
        Type.Union([Type.Literal('enregistrer'), Type.Literal('retirer'), Type.Literal('confirmer-nom')]),
      ),
    }),
    async (request, reply) => {
      const principal = formPrincipal(request, request.body._csrf);
      const { body } = request;
      const query = { fund: body.fund || undefined, courseId: body.courseId };
      const clear = body.action === 'retirer';
      if (body.action === 'confirmer-nom') {
        const result = await confirmCompanyName(app, principal, {
          fund: query.fund,
          courseId: body.courseId,
          siret: body.siret,
          name: body.nom ?? '',
        });
        const notice = `Le nom « ${result.name} » est confirmé pour l’entreprise ${formatSiret(result.siret)}.${
          result.reissued.length > 0
            ? ` ${result.reissued.length} certificat(s) réédité(s) avec le numéro de dossier.`
            : ''
        }`;
        const input = await pageInput(app, request, principal, query);
        return sendPage(reply, fileNumbersPage({ ...input, notice }));
      }
      try {
        const result = await changeFileNumber(app, principal, {
          fund: query.fund,
          courseId: body.courseId,
          siret: body.siret,
          fileNumber: clear ? null : (body.numero ?? ''),
        });
        const input = await pageInput(app, request, principal, query);
        return sendPage(reply, fileNumbersPage({ ...input, notice: changeNotice(result) }));
      } catch (error) {
        if (!isFieldError(error)) throw error;
        const input = await pageInput(app, request, principal, query);
        const field = error.extra?.field === 'siret' ? 'siret' : 'fileNumber';
        return sendPage(
          reply,
          fileNumbersPage({
            ...input,
            typed: { siret: body.siret, fileNumber: body.numero ?? '', error: error.publicMessage, field },
          }),
          400,
        );
      }
    },
  );
}
