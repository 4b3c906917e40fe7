import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError, DomainError } from '../http/errors.js';
import { sendPage } from '../http/html.js';
import { formPrincipal, formRoute, pageInput } from './page-forms.js';
import { fileNumbersPage } from './pages.js';
import { decodeImportFile, IMPORT_MAX_FILE_BYTES } from './rules.js';
import { importFileNumbers } from './service.js';

const NOTHING_TO_IMPORT = 'Choisissez un fichier CSV ou collez des lignes SIRET;numéro de dossier.';
/** The file, the pasted lines (500 000 characters, up to 3 bytes each in UTF-8) and the form's fields. */
const IMPORT_MAX_BODY_BYTES = 2_200_000;
const BOTH_TO_IMPORT = 'Choisissez un fichier ou collez des lignes, pas les deux : rien n’a été importé.';

// The import form posts multipart/form-data: a file chosen on the computer, or lines pasted in the box.
// Multipart is parsed in this plugin's context only; the file arrives as a binary string (one char per byte) and is
// decoded by `decodeImportFile`.
// - @fastify/multipart reads the stream itself, so BODY_LIMIT_BYTES does not apply: a body announced over
//   IMPORT_MAX_BODY_BYTES (or not announced: browsers always announce a form's) is refused before it is read.
// - A field over `fieldSize` is cut by busboy: 1.6 MB is past the body schema's 500 000 characters
//   whatever the encoding (3 bytes a character at most, or 4 for two UTF-16 units), so a cut field is
//   refused, never half-imported.
export async function fileNumberImportRoute(scope: FastifyInstance): Promise<void> {
  scope.addHook('onRequest', async (request) => {
    const length = Number(request.headers['content-length']);
    if (!Number.isSafeInteger(length) || length > IMPORT_MAX_BODY_BYTES) {
      throw new DomainError(
        413,
        'body_too_large',
        'L’envoi est trop volumineux : un fichier de 500 000 octets au plus. Découpez-le en plusieurs fichiers.',
        `multipart body of ${request.headers['content-length'] ?? 'unannounced'} bytes`,
      );
    }
  });
  await scope.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fileSize: IMPORT_MAX_FILE_BYTES, files: 1, fields: 6, parts: 7, fieldSize: 1_600_000 },
    onFile: async (part) => {
      (part as unknown as { value: string }).value = (await part.toBuffer()).toString('latin1');
    },
  });
  // A body busboy cannot read (cut short, no boundary…) throws a plain Error while it is parsed, between
  // preParsing and preHandler: that is the sender's fault, so it is answered 400 (French page). Any
  // other error (a database down during the session check, say) keeps its own answer.
  const parsing = new WeakSet<FastifyRequest>();
  scope.addHook('preParsing', async (request) => {
    parsing.add(request);
  });
  scope.addHook('preHandler', async (request) => {
    parsing.delete(request);
  });
  scope.setErrorHandler((error: Error & { statusCode?: number }, request) => {
    if (parsing.has(request) && !(typeof error.statusCode === 'number' && error.statusCode < 500)) {
      throw new BadRequestError(
        'invalid_form',
        'Le formulaire est arrivé incomplet. Rechargez la page et recommencez.',
        `multipart body: ${error.message}`,
      );
    }
    throw error;
  });
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/portal/dossiers/import',
    formRoute({
      csv: Type.Optional(Type.String({ maxLength: 500_000 })),
      fichier: Type.Optional(Type.String({ maxLength: IMPORT_MAX_FILE_BYTES })),
    }),
    async (request, reply) => {
      const principal = formPrincipal(request, request.body._csrf);
      const query = { fund: request.body.fund || undefined, courseId: request.body.courseId };
      const pasted = request.body.csv ?? '';
      const file = request.body.fichier ?? '';
      const source =
        file !== '' && pasted.trim() !== ''
          ? { ok: false as const, message: BOTH_TO_IMPORT }
          : file !== ''
            ? decodeImportFile(Buffer.from(file, 'latin1'))
            : { ok: true as const, value: pasted };
      const result =
        source.ok && source.value.trim() !== ''
          ? await importFileNumbers(scope, principal, { ...query, csv: source.value })
          : {
              problems: [{ line: 0, message: source.ok ? NOTHING_TO_IMPORT : source.message }],
              set: 0,
              unchanged: 0,
              reissued: [],
            };
      const input = await pageInput(scope, request, principal, query);
      if (result.problems.length > 0) {
        // What was pasted stays in the box; a file must be chosen again (browsers never refill a file input).
        return sendPage(reply, fileNumbersPage({ ...input, importText: pasted, importProblems: result.problems }), 400);
      }
      const reissued = result.reissued.length > 0 ? ` ${result.reissued.length} certificat(s) réédité(s).` : '';
      return sendPage(
        reply,
        fileNumbersPage({
          ...input,
          notice: `Import terminé : ${result.set} numéro(s) enregistré(s), ${result.unchanged} inchangé(s).${reissued}`,
        }),
      );
    },
  );
}
