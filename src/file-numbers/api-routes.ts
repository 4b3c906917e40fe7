import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DomainError } from '../http/errors.js';
import { ProblemDetails } from '../http/schemas.js';
import { principalOf, requireApiToken } from '../portal/index.js';
import { Uuid } from './page-forms.js';
import { changeFileNumber, confirmCompanyName, importFileNumbers, readCompanies } from './service.js';

const FundSlug = Type.String({ pattern: '^[a-z0-9-]{1,64}$', description: 'Fund slug' });
const CourseId = Type.String({
  pattern: Uuid,
  description: 'Course session (an Open edX course run), see /api/v1/filters',
});
const Siret = Type.String({ pattern: '^[0-9]{14}$', description: 'Company SIRET, 14 digits' });
const Problem = ProblemDetails;
const apiErrors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };
const security = [{ bearerAuth: [] }];
const NullableString = Type.Union([Type.String(), Type.Null()]);

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

/** The file-number API (personal tokens), described at /docs. */
export async function fileNumberApiRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

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
      const { fund, companies } = await readCompanies(app, principalOf(request), {
        fund: request.query.fund,
        courseId: request.query.courseId,
      });
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
