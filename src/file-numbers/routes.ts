import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type TProperties, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError, DomainError } from '../http/errors.js';
import { ProblemDetails } from '../http/schemas.js';
import {
  actorOf,
  assertCsrf,
  auditEvent,
  type Principal,
  principalOf,
  requireApiToken,
  requirePageSession,
} from '../portal/index.js';
import { type FileNumbersPageInput, fileNumbersPage } from './pages.js';
import * as repo from './repository.js';
import { decodeImportFile, formatSiret, IMPORT_MAX_FILE_BYTES } from './rules.js';
import {
  type ChangeResult,
  changeFileNumber,
  confirmCompanyName,
  importFileNumbers,
  requireCourse,
  resolveFund,
} from './service.js';

const Uuid = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const FundSlug = Type.String({ pattern: '^[a-z0-9-]{1,64}$', description: 'Fund slug' });
const CourseId = Type.String({
  pattern: Uuid,
  description: 'Course session (an Open edX course run), see /api/v1/filters',
});
const Siret = Type.String({ pattern: '^[0-9]{14}$', description: 'Company SIRET, 14 digits' });
const Csrf = Type.String({ maxLength: 100 });
const HtmlPage = Type.String({ description: 'French HTML page' });
const hidden = { hide: true } as const;
const pageConfig = { html: true };
const Problem = ProblemDetails;
const apiErrors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };
const security = [{ bearerAuth: [] }];
const NullableString = Type.Union([Type.String(), Type.Null()]);
const NOTHING_TO_IMPORT = 'Choisissez un fichier CSV ou collez des lignes SIRET;numéro de dossier.';
/** The file, the pasted lines (500 000 characters, up to 3 bytes each in UTF-8) and the form's fields. */
const IMPORT_MAX_BODY_BYTES = 2_200_000;
const BOTH_TO_IMPORT = 'Choisissez un fichier ou collez des lignes, pas les deux : rien n’a été importé.';

const DeclaredName = Type.Object({
  name: Type.String({ description: 'as a learner declared it' }),
  learners: Type.Integer({ description: 'learners who declared this name (compared after normalisation)' }),
  confirmed: Type.Boolean({ description: 'the fund confirmed this name for the SIRET' }),
});
const Company = Type.Object({
  siret: Type.String(),
  name: Type.Union([Type.String(), Type.Null()], {
    description: 'the name most learners declared; null: no learner of this company yet',
  }),
  names: Type.Array(DeclaredName, { description: 'every name declared for this SIRET, with counts' }),
  conflict: Type.Boolean({
    description:
      'several names declared for one SIRET: the file number applies only to learners whose name the fund confirmed',
  }),
  learners: Type.Integer({ description: 'learners of the fund from this company who launched the tool here' }),
  certificates: Type.Integer({ description: 'their valid certificates in this course session' }),
  fileNumber: NullableString,
  setBy: NullableString,
  setAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
const ListReply = Type.Object({ fund: Type.String(), courseId: Type.String(), companies: Type.Array(Company) });
const ChangeReply = Type.Object({
  fund: Type.String(),
  courseId: Type.String(),
  siret: Type.String(),
  previous: NullableString,
  fileNumber: NullableString,
  changed: Type.Boolean({ description: 'false: the number was already this one' }),
  reissued: Type.Array(Type.String(), { description: 'certificates issued as new versions carrying the number' }),
  reissueFailed: Type.Integer(),
});
const ImportReply = Type.Object({
  fund: Type.String(),
  courseId: Type.String(),
  set: Type.Integer(),
  unchanged: Type.Integer(),
  reissued: Type.Array(Type.String()),
  reissueFailed: Type.Integer(),
});

/** A form of the page: its fields after the fund and course it is about, and the CSRF token. */
function formRoute<Fields extends TProperties>(fields: Fields) {
  return {
    config: pageConfig,
    // Before the body is read: a visitor without a session never gets an upload parsed.
    onRequest: requirePageSession,
    schema: {
      ...hidden,
      body: Type.Object({
        fund: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{0,64}$' })),
        courseId: Type.String({ pattern: Uuid }),
        ...fields,
        _csrf: Type.Optional(Csrf),
      }),
      response: { 200: HtmlPage, 400: HtmlPage },
    },
  };
}

function sendPage(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

function formPrincipal(request: FastifyRequest, token: string | undefined): Principal {
  const principal = principalOf(request);
  assertCsrf(request, principal, token);
  return principal;
}

function isFieldError(error: unknown): error is DomainError {
  return error instanceof DomainError && error.status === 400 && typeof error.extra?.field === 'string';
}

/** Who read which fund's company list (SIRETs, names, file numbers): audited like a download. */
async function auditCompanyListRead(
  app: FastifyInstance,
  principal: Principal,
  fund: string,
  courseId: string,
  companies: number,
): Promise<void> {
  await auditEvent(app.db, actorOf(principal), 'file_numbers.read', { fund, courseId, companies });
}

/** Everything the page shows for one fund and course (both optional until chosen). */
async function pageInput(
  app: FastifyInstance,
  request: FastifyRequest,
  principal: Principal,
  query: { fund?: string | undefined; courseId?: string | undefined },
): Promise<FileNumbersPageInput> {
  const operator = principal.role === 'operator';
  const funds = await repo.listFunds(app.db, operator ? null : principal.fundSlug);
  const fund = operator && !query.fund ? null : await resolveFund(app, principal, query.fund || undefined);
  const courses = fund ? await repo.listCourses(app.db, fund) : [];
  let courseId: string | null = null;
  if (fund && query.courseId) {
    const course = await requireCourse(app, query.courseId);
    if (!courses.some((c) => c.id === course.id)) courses.push(course);
    courseId = course.id;
  }
  const [companies, history] =
    fund && courseId
      ? await Promise.all([repo.listCompanies(app.db, fund, courseId), repo.history(app.db, fund, courseId, 20)])
      : [[], []];
  if (fund && courseId) await auditCompanyListRead(app, principal, fund, courseId, companies.length);
  return { request, principal, funds, fund, courses, courseId, companies, history };
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

export async function fileNumberRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  // --- portal pages ----------------------------------------------------------------------------
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
        200,
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
        return sendPage(reply, 200, fileNumbersPage({ ...input, notice }));
      }
      try {
        const result = await changeFileNumber(app, principal, {
          fund: query.fund,
          courseId: body.courseId,
          siret: body.siret,
          fileNumber: clear ? null : (body.numero ?? ''),
        });
        const input = await pageInput(app, request, principal, query);
        return sendPage(reply, 200, fileNumbersPage({ ...input, notice: changeNotice(result) }));
      } catch (error) {
        if (!isFieldError(error)) throw error;
        const input = await pageInput(app, request, principal, query);
        const field = error.extra?.field === 'siret' ? 'siret' : 'fileNumber';
        return sendPage(
          reply,
          400,
          fileNumbersPage({
            ...input,
            typed: { siret: body.siret, fileNumber: body.numero ?? '', error: error.publicMessage, field },
          }),
        );
      }
    },
  );

  // The import form posts multipart/form-data: a file chosen on the computer, or lines pasted in the box.
  // Multipart is parsed in this scope only; the file arrives as a binary string (one char per byte) and is
  // decoded by `decodeImportFile`.
  // - @fastify/multipart reads the stream itself, so BODY_LIMIT_BYTES does not apply: a body announced over
  //   IMPORT_MAX_BODY_BYTES (or not announced: browsers always announce a form's) is refused before it is read.
  // - A field over `fieldSize` is cut by busboy: 1.6 MB is past the body schema's 500 000 characters
  //   whatever the encoding (3 bytes a character at most, or 4 for two UTF-16 units), so a cut field is
  //   refused, never half-imported.
  await app.register(async (scope) => {
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
            ? await importFileNumbers(app, principal, { ...query, csv: source.value })
            : {
                problems: [{ line: 0, message: source.ok ? NOTHING_TO_IMPORT : source.message }],
                set: 0,
                unchanged: 0,
                reissued: [],
              };
        const input = await pageInput(app, request, principal, query);
        if (result.problems.length > 0) {
          // What was pasted stays in the box; a file must be chosen again (browsers never refill a file input).
          return sendPage(
            reply,
            400,
            fileNumbersPage({ ...input, importText: pasted, importProblems: result.problems }),
          );
        }
        const reissued = result.reissued.length > 0 ? ` ${result.reissued.length} certificat(s) réédité(s).` : '';
        return sendPage(
          reply,
          200,
          fileNumbersPage({
            ...input,
            notice: `Import terminé : ${result.set} numéro(s) enregistré(s), ${result.unchanged} inchangé(s).${reissued}`,
          }),
        );
      },
    );
  });

  // --- API (personal tokens) ---------------------------------------------------------------------
  const KeyParams = Type.Object({ fund: FundSlug, courseId: CourseId, siret: Siret });
  app.get(
    '/api/v1/file-numbers',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['file-numbers'],
        summary: 'Companies of a course session and their OPCO file numbers',
        description:
          'The companies of the fund’s learners who launched the tool in this course session, with their OPCO file ' +
          'number (« numéro de dossier »). Fund staff: their fund only (another fund is refused, 403).',
        querystring: Type.Object({ fund: Type.Optional(FundSlug), courseId: CourseId }),
        response: { 200: ListReply, ...apiErrors },
        security,
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const fund = await resolveFund(app, principal, request.query.fund);
      await requireCourse(app, request.query.courseId);
      const companies = await repo.listCompanies(app.db, fund, request.query.courseId);
      await auditCompanyListRead(app, principal, fund, request.query.courseId, companies.length);
      return {
        fund,
        courseId: request.query.courseId,
        companies: companies.map((c) => ({ ...c, setAt: c.setAt ? c.setAt.toISOString() : null })),
      };
    },
  );

  app.put(
    '/api/v1/file-numbers/:fund/:courseId/:siret',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['file-numbers'],
        summary: 'Set or change a company’s OPCO file number',
        description:
          'Sets the number (1–50 printable characters) for this fund, course session and company. Valid certificates ' +
          'of the company’s learners printing another number are reissued as new versions (returned in `reissued`). ' +
          'Audited.',
        params: KeyParams,
        body: Type.Object({ fileNumber: Type.String({ minLength: 1, maxLength: 200 }) }),
        response: { 200: ChangeReply, ...apiErrors },
        security,
      },
    },
    async (request) =>
      changeFileNumber(app, principalOf(request), { ...request.params, fileNumber: request.body.fileNumber }),
  );

  app.put(
    '/api/v1/file-numbers/:fund/:courseId/:siret/names',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['file-numbers'],
        summary: 'Confirm a company name declared for a SIRET',
        description:
          'Any learner may declare any SIRET: the file number applies to a learner’s certificate only when the name ' +
          'they declared is confirmed here, or, while none is, when all learners of the SIRET declared the same ' +
          'name. Confirming reissues the certificates concerned (returned in `reissued`). Audited.',
        params: KeyParams,
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 300 }) }),
        response: {
          200: Type.Object({
            fund: Type.String(),
            courseId: Type.String(),
            siret: Type.String(),
            name: Type.String(),
            confirmed: Type.Boolean({ description: 'false: already confirmed' }),
            reissued: Type.Array(Type.String()),
            reissueFailed: Type.Integer(),
          }),
          ...apiErrors,
        },
        security,
      },
    },
    async (request) => confirmCompanyName(app, principalOf(request), { ...request.params, name: request.body.name }),
  );

  app.delete(
    '/api/v1/file-numbers/:fund/:courseId/:siret',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['file-numbers'],
        summary: 'Clear a company’s OPCO file number',
        description: 'Clears the number; certificates printing it are reissued without it. Audited.',
        params: KeyParams,
        response: { 200: ChangeReply, ...apiErrors },
        security,
      },
    },
    async (request) => changeFileNumber(app, principalOf(request), { ...request.params, fileNumber: null }),
  );

  app.post(
    '/api/v1/file-numbers/import',
    {
      preHandler: requireApiToken,
      schema: {
        tags: ['file-numbers'],
        summary: 'Import OPCO file numbers from CSV text (SIRET;number per line)',
        description:
          'All or nothing on format errors (400 with `problems`, one per bad line); then one audited change per line.',
        body: Type.Object({
          fund: Type.Optional(FundSlug),
          courseId: CourseId,
          csv: Type.String({ maxLength: 500_000 }),
        }),
        response: { 200: ImportReply, ...apiErrors },
        security,
      },
    },
    async (request) => {
      const { fund, courseId, csv } = request.body;
      const result = await importFileNumbers(app, principalOf(request), { fund, courseId, csv });
      if (result.problems.length > 0) {
        throw new DomainError(
          400,
          'invalid_import',
          'Le fichier n’a pas été importé : des lignes sont erronées.',
          result.problems.map((p) => `line ${p.line}: ${p.message}`).join('; '),
          { problems: result.problems },
        );
      }
      const { problems: _problems, ...rest } = result;
      return rest;
    },
  );
}
