import { readFileSync } from 'node:fs';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError, ForbiddenError, NotFoundError } from '../http/errors.js';
import {
  type LaunchSession,
  requireRole,
  requireSession,
  sessionHead,
  sessionTokenOf,
  viewTicketUrl,
} from '../lti/index.js';
import {
  principalOf,
  registerPortalCookies,
  requireApiToken,
  requirePageSession,
  scopedFund,
  startDownloadAudit,
} from '../portal/index.js';
import { courseTeamPage, learnerPage, verifyFormPage, verifyPage } from './pages.js';
import * as repo from './repository.js';
import { type IssuanceRule, parseCertificateNumber } from './rules.js';
import type { CertificateService } from './service.js';

const NumberParams = Type.Object({ number: Type.String({ minLength: 1, maxLength: 40 }) });
const TokenQuery = Type.Object({ session_token: Type.Optional(Type.String({ maxLength: 4096 })) });
const TokenBody = Type.Object({ session_token: Type.Optional(Type.String({ maxLength: 4096 })) });
const Html = Type.String();
const Problem = Type.Object({ status: Type.Integer(), code: Type.String() }, { additionalProperties: true });

const Summary = Type.Object({
  number: Type.String(),
  state: Type.Union([Type.Literal('valid'), Type.Literal('superseded'), Type.Literal('revoked')]),
  stateLabel: Type.String(),
  version: Type.Integer(),
  supersedes: Type.Union([Type.String(), Type.Null()]),
  supersededBy: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  learnerInitials: Type.Union([Type.String(), Type.Null()]),
  course: Type.String(),
  provider: Type.String(),
  startDay: Type.Union([Type.String(), Type.Null()]),
  endDay: Type.Union([Type.String(), Type.Null()]),
  issuedDay: Type.String(),
  totalSeconds: Type.Integer(),
  totalTime: Type.String(),
  modulesCompleted: Type.Integer(),
  modulesPlanned: Type.Integer(),
  algorithm: Type.String(),
  pdfSha256: Type.String(),
  dataSha256: Type.String(),
  signature: Type.Object({ alg: Type.Literal('Ed25519'), kid: Type.String(), value: Type.String() }),
  integrity: Type.Object({ signature: Type.Boolean(), dataHash: Type.Boolean(), pdfHash: Type.Boolean() }),
  verificationUrl: Type.String(),
});

const Keys = Type.Object({
  keys: Type.Array(
    Type.Object({
      kid: Type.String(),
      kty: Type.Literal('OKP'),
      crv: Type.Literal('Ed25519'),
      x: Type.String(),
      alg: Type.Literal('EdDSA'),
      use: Type.Literal('sig'),
      status: Type.String(),
      created_at: Type.String(),
      retired_at: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});

const PdfCheck = Type.Object({
  number: Type.String(),
  genuine: Type.Boolean(),
  state: Type.String(),
  expectedSha256: Type.String(),
  computedSha256: Type.String(),
});

const SignatureCheckBody = Type.Object({
  data: Type.String({ minLength: 2, maxLength: 200_000, description: 'the canonical certificate JSON, as signed' }),
  signature: Type.String({ maxLength: 200 }),
});
const SignatureCheck = Type.Object({
  valid: Type.Boolean(),
  number: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([Type.String(), Type.Null()]),
  kid: Type.Union([Type.String(), Type.Null()]),
});

const RuleBody = Type.Object({
  modulesRequired: Type.Union([Type.Literal('none'), Type.Literal('sector'), Type.Literal('all')]),
  minCreditedMinutes: Type.Union([Type.Integer({ minimum: 0, maximum: 100_000 }), Type.Null()]),
  autoIssue: Type.Boolean(),
  plannedMinutes: Type.Integer({ minimum: 1, maximum: 100_000 }),
  sessionStart: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
  sessionEnd: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
});

/** The rule form of the course-team page: every value is text, checkboxes are absent when off. */
const RuleForm = Type.Object({
  session_token: Type.Optional(Type.String()),
  modulesRequired: Type.Union([Type.Literal('none'), Type.Literal('sector'), Type.Literal('all')]),
  minCreditedMinutes: Type.Optional(Type.String({ pattern: '^\\d{0,6}$' })),
  plannedMinutes: Type.String({ pattern: '^\\d{1,6}$' }),
  sessionStart: Type.Optional(Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' })),
  sessionEnd: Type.Optional(Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' })),
  autoIssue: Type.Optional(Type.Literal('on')),
});

const ReasonBody = Type.Object({
  session_token: Type.Optional(Type.String()),
  reason: Type.String({ minLength: 1, maxLength: 500 }),
});
const IssueBody = Type.Object({
  session_token: Type.Optional(Type.String()),
  learnerId: Type.String({ format: 'uuid' }),
  reason: Type.String({ minLength: 1, maxLength: 500 }),
});

const Issued = Type.Object({
  number: Type.String(),
  version: Type.Integer(),
  state: Type.String(),
  created: Type.Boolean(),
});

const ListItem = Type.Object({
  number: Type.String(),
  version: Type.Integer(),
  state: Type.String(),
  learnerId: Type.String(),
  learner: Type.String(),
  fund: Type.Union([Type.String(), Type.Null()]),
  issuedAt: Type.String(),
  issuanceKind: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  totalSeconds: Type.Integer(),
  pdfSha256: Type.String(),
  supersedes: Type.Union([Type.String(), Type.Null()]),
});

const ArchiveQuery = Type.Object({
  session_token: Type.Optional(Type.String({ maxLength: 4096 })),
  fund: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,60}$' })),
  all: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true')])),
});

const PortalArchiveQuery = Type.Object({
  fund: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,60}$' })),
  course: Type.Optional(Type.String({ format: 'uuid' })),
  all: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true')])),
});

function courseOf(session: LaunchSession): string {
  if (!session.courseId) {
    throw new ForbiddenError('no_course', 'Ouvrez cette page depuis un cours.', 'session has no course');
  }
  return session.courseId;
}

function kindOf(session: LaunchSession): 'course_team' | 'operator' {
  return session.role === 'staff' ? 'operator' : 'course_team';
}

function head(request: FastifyRequest, token: string, session: LaunchSession) {
  return sessionHead(token, session.exp, request.server.config.publicUrl);
}

function tokenOf(request: FastifyRequest): string {
  return sessionTokenOf(request);
}

/** Post/redirect/get with a single-use view ticket: the session token never goes into the URL. */
async function redirectWithTicket(
  request: FastifyRequest,
  reply: FastifyReply,
  session: LaunchSession,
  notice: string,
) {
  return reply.redirect(await viewTicketUrl(request.server, session, '/certificates', { notice }), 303);
}

const NOTICES: Record<string, string> = {
  issued: 'Le certificat a été délivré.',
  corrected: 'Une nouvelle version a été délivrée ; l’ancienne est marquée comme remplacée.',
  revoked: 'Le certificat a été révoqué.',
  rule: 'La règle de délivrance est enregistrée.',
};

/**
 * Routes of the certificates capability:
 * - public: GET /verify, /verify/keys, /verify/:number (page or JSON), POST /verify/:number/pdf,
 *   POST /verify/signature;
 * - in the LMS iframe (session token): GET /certificates, POST /certificates/request,
 *   GET /certificates/:number/pdf, the course team's forms under /certificates/manage/;
 * - course team API (session bearer): /api/certificates…, the course ZIP;
 * - funds' portal (portal session or API token): the fund ZIP.
 */
export async function certificateRoutes(base: FastifyInstance, options: { service: CertificateService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const service = options.service;

  // ------------------------------------------------------------------------------------------------
  // Public verification, rate-limited: numbers are sequential, so unthrottled look-ups would let anyone
  // walk the register (even if each answer shows only initials).
  await app.register(async (pubBase) => {
    const pub = pubBase.withTypeProvider<TypeBoxTypeProvider>();
    await pub.register(rateLimit, { max: 300, timeWindow: '1 minute' });
    pub.addContentTypeParser(
      'application/pdf',
      { parseAs: 'buffer', bodyLimit: 10 * 1024 * 1024 },
      (_req, body, done) => done(null, body),
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
        if (!input) return reply.type('text/html; charset=utf-8').send(verifyFormPage());
        const parsed = parseCertificateNumber(input);
        if (!parsed.ok) {
          return reply
            .type('text/html; charset=utf-8')
            .send(
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
        return reply.type('text/html; charset=utf-8').send(verifyPage(result));
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
  });

  // ------------------------------------------------------------------------------------------------
  // Learner and course team, inside the LMS iframe

  app.get(
    '/certificates',
    {
      schema: {
        querystring: Type.Object({
          session_token: Type.Optional(Type.String({ maxLength: 4096 })),
          ticket: Type.Optional(Type.String({ maxLength: 100 })),
          notice: Type.Optional(Type.String({ maxLength: 20 })),
        }),
        response: { 200: Html },
      },
      config: { html: true },
    },
    async (request, reply) => {
      const session = await requireSession(request);
      const courseId = courseOf(session);
      const token = tokenOf(request);
      const notice = request.query.notice ? NOTICES[request.query.notice] : undefined;
      reply.header('cache-control', 'no-store').type('text/html; charset=utf-8');
      if (session.role === 'learner') {
        // Opening the page is also a moment to issue: the rule may have been met since the last visit.
        await service.issueIfEligible(session.learnerId, courseId);
        const records = await service.listForLearner(session.learnerId, courseId);
        return learnerPage({
          head: head(request, token, session),
          token,
          certificates: records.map((record) => ({ record, data: service.data(record) })),
          report: await service.eligibility(session.learnerId, courseId),
          notice,
        });
      }
      const { rule, stored } = await service.rule(courseId);
      const records = await service.listForCourse(courseId);
      return courseTeamPage({
        head: head(request, token, session),
        token,
        courseTitle: (await repo.courseTitle(request.server.db, courseId)) ?? 'cours',
        rule,
        ruleStored: stored,
        certificates: records.map((record) => ({ record, data: service.data(record) })),
        learners: await repo.courseLearners(request.server.db, courseId),
        funds: await repo.fundsInCourse(request.server.db, courseId),
        notice,
      });
    },
  );

  app.post(
    '/certificates/request',
    {
      schema: { body: Type.Object({ session_token: Type.Optional(Type.String()) }), response: { 303: Type.Null() } },
      config: { html: true },
    },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'learner');
      await service.issue({
        learnerId: session.learnerId,
        courseId: courseOf(session),
        kind: 'learner_request',
        by: session.learnerId,
        reason: null,
      });
      return redirectWithTicket(request, reply, session, 'issued');
    },
  );

  const certificatePdf = async (
    request: FastifyRequest<{ Params: Static<typeof NumberParams> }>,
    reply: FastifyReply,
  ) => {
    const session = await requireSession(request);
    const record = await service.find(request.params.number);
    assertMayRead(session, record);
    const { bytes, fileName } = await service.pdf(record);
    return sendPdf(request, reply, bytes, fileName, record.pdf_sha256);
  };
  // GET for scripts (bearer header); the pages post the session token in a form (no token in a URL).
  app.get(
    '/certificates/:number/pdf',
    { schema: { params: NumberParams, querystring: TokenQuery }, config: { html: true } },
    certificatePdf,
  );
  app.post(
    '/certificates/:number/pdf',
    { schema: { params: NumberParams, body: TokenBody }, config: { html: true } },
    certificatePdf,
  );

  app.post(
    '/certificates/manage/rule',
    { schema: { body: RuleForm, response: { 303: Type.Null() } }, config: { html: true } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      const b = request.body;
      const rule: IssuanceRule = {
        modulesRequired: b.modulesRequired,
        minCreditedMinutes: b.minCreditedMinutes ? Number(b.minCreditedMinutes) : null,
        autoIssue: b.autoIssue === 'on',
        plannedMinutes: Number(b.plannedMinutes),
        sessionStart: b.sessionStart || null,
        sessionEnd: b.sessionEnd || null,
      };
      await service.saveRule(courseOf(session), rule, session.learnerId);
      return redirectWithTicket(request, reply, session, 'rule');
    },
  );

  app.post(
    '/certificates/manage/issue',
    { schema: { body: IssueBody, response: { 303: Type.Null() } }, config: { html: true } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      await issueForCourse(request.server, service, session, request.body.learnerId, request.body.reason);
      return redirectWithTicket(request, reply, session, 'issued');
    },
  );

  app.post(
    '/certificates/manage/:number/correct',
    { schema: { params: NumberParams, body: ReasonBody, response: { 303: Type.Null() } }, config: { html: true } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      const record = await service.find(request.params.number);
      assertCourse(session, record);
      await service.correct(record.number, {
        kind: kindOf(session),
        by: session.learnerId,
        reason: request.body.reason,
      });
      return redirectWithTicket(request, reply, session, 'corrected');
    },
  );

  app.post(
    '/certificates/manage/:number/revoke',
    { schema: { params: NumberParams, body: ReasonBody, response: { 303: Type.Null() } }, config: { html: true } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      const record = await service.find(request.params.number);
      assertCourse(session, record);
      await service.revoke(record.number, { by: session.learnerId, reason: request.body.reason });
      return redirectWithTicket(request, reply, session, 'revoked');
    },
  );

  // ------------------------------------------------------------------------------------------------
  // Course team API (session bearer token)

  app.get('/api/certificates', { schema: { response: { 200: Type.Array(ListItem) } } }, async (request) => {
    const session = requireRole(await requireSession(request), 'course_team', 'staff');
    const records = await service.listForCourse(courseOf(session));
    const numbers = new Map(records.map((r) => [r.id, r.number]));
    return records.map((r) => {
      const data = service.data(r);
      return {
        number: r.number,
        version: r.version,
        state: r.state,
        learnerId: r.learner_id,
        learner: `${data.learner.givenName} ${data.learner.familyName}`,
        fund: r.fund_slug,
        issuedAt: r.issued_at.toISOString(),
        issuanceKind: r.issuance_kind,
        reason: r.issue_reason,
        totalSeconds: data.durations.totalSeconds,
        pdfSha256: r.pdf_sha256,
        supersedes: r.supersedes_id ? (numbers.get(r.supersedes_id) ?? data.supersedes) : null,
      };
    });
  });

  app.get('/api/certificates/rule', { schema: { response: { 200: RuleBody } } }, async (request) => {
    const session = requireRole(await requireSession(request), 'course_team', 'staff');
    return (await service.rule(courseOf(session))).rule;
  });

  app.put('/api/certificates/rule', { schema: { body: RuleBody, response: { 200: RuleBody } } }, async (request) => {
    const session = requireRole(await requireSession(request), 'course_team', 'staff');
    await service.saveRule(courseOf(session), request.body, session.learnerId);
    return (await service.rule(courseOf(session))).rule;
  });

  app.get(
    '/api/certificates/eligibility/:learnerId',
    {
      schema: {
        params: Type.Object({ learnerId: Type.String({ format: 'uuid' }) }),
        response: {
          200: Type.Object({
            eligible: Type.Boolean(),
            profileMissing: Type.Boolean(),
            missing: Type.Array(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const session = await requireSession(request);
      if (session.role === 'learner' && session.learnerId !== request.params.learnerId) {
        throw new ForbiddenError('not_yours', 'Vous ne pouvez consulter que votre propre situation.');
      }
      const courseId = courseOf(session);
      // Only about someone who came to this course: a learner of another course is "not found" here.
      if (!(await repo.learnerLaunchedIn(request.server.db, request.params.learnerId, courseId))) {
        throw new NotFoundError('learner_not_in_course', 'Cet apprenant ne fait pas partie de ce cours.');
      }
      const report = await service.eligibility(request.params.learnerId, courseId);
      return {
        eligible: report.eligibility?.eligible ?? false,
        profileMissing: report.profileMissing,
        missing: report.eligibility?.missing ?? [],
      };
    },
  );

  app.post(
    '/api/certificates',
    {
      schema: {
        body: Type.Object({
          learnerId: Type.String({ format: 'uuid' }),
          reason: Type.String({ minLength: 1, maxLength: 500 }),
        }),
        response: { 201: Issued },
      },
    },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      const issued = await issueForCourse(
        request.server,
        service,
        session,
        request.body.learnerId,
        request.body.reason,
      );
      return reply.code(201).send(issued);
    },
  );

  app.post(
    '/api/certificates/request',
    { schema: { response: { 201: Issued, 200: Issued } } },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'learner');
      const issued = await service.issue({
        learnerId: session.learnerId,
        courseId: courseOf(session),
        kind: 'learner_request',
        by: session.learnerId,
        reason: null,
      });
      return reply.code(issued.created ? 201 : 200).send(issued);
    },
  );

  app.post(
    '/api/certificates/:number/versions',
    {
      schema: {
        params: NumberParams,
        body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }),
        response: { 201: Issued },
      },
    },
    async (request, reply) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      const record = await service.find(request.params.number);
      assertCourse(session, record);
      const issued = await service.correct(record.number, {
        kind: kindOf(session),
        by: session.learnerId,
        reason: request.body.reason,
      });
      return reply.code(201).send(issued);
    },
  );

  app.post(
    '/api/certificates/:number/revocation',
    {
      schema: {
        params: NumberParams,
        body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }),
        response: { 200: Type.Object({ number: Type.String(), state: Type.Literal('revoked') }) },
      },
    },
    async (request) => {
      const session = requireRole(await requireSession(request), 'course_team', 'staff');
      const record = await service.find(request.params.number);
      assertCourse(session, record);
      await service.revoke(record.number, { by: session.learnerId, reason: request.body.reason });
      return { number: record.number, state: 'revoked' as const };
    },
  );

  app.get(
    '/api/certificates/:number/signed-data',
    {
      schema: {
        params: NumberParams,
        response: {
          200: Type.Object({
            data: Type.String(),
            signature: Type.String(),
            kid: Type.String(),
            alg: Type.Literal('Ed25519'),
          }),
        },
      },
    },
    async (request) => {
      const session = await requireSession(request);
      const record = await service.find(request.params.number);
      assertMayRead(session, record);
      return {
        data: record.data_canonical,
        signature: record.signature,
        kid: record.signing_kid,
        alg: 'Ed25519' as const,
      };
    },
  );

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

  // ------------------------------------------------------------------------------------------------
  // Funds' portal: a fund's certificates (fund staff see only their fund; operators any), audited.

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

async function issueForCourse(
  app: FastifyInstance,
  service: CertificateService,
  session: LaunchSession,
  learnerId: string,
  reason: string,
) {
  const courseId = courseOf(session);
  // The course team may only issue to people who came to this course through the LMS.
  if (!(await repo.learnerLaunchedIn(app.db, learnerId, courseId))) {
    throw new ForbiddenError('not_in_course', 'Cet apprenant n’est pas inscrit dans ce cours.');
  }
  return service.issue({ learnerId, courseId, kind: kindOf(session), by: session.learnerId, reason });
}

/** A learner reads only their own certificates; the course team and staff those of their course. */
function assertMayRead(session: LaunchSession, record: repo.CertificateRecord): void {
  if (session.role === 'learner') {
    if (record.learner_id !== session.learnerId || record.course_id !== session.courseId) {
      throw new ForbiddenError(
        'not_yours',
        'Ce certificat ne vous appartient pas.',
        'learner asked for another learner’s certificate',
      );
    }
    return;
  }
  assertCourse(session, record);
}

function assertCourse(session: LaunchSession, record: repo.CertificateRecord): void {
  if (record.course_id !== session.courseId) {
    throw new ForbiddenError('other_course', 'Ce certificat relève d’un autre cours.', 'certificate of another course');
  }
}

function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  if (accept.includes('application/json')) return true;
  return !accept.includes('text/html');
}

function sendPdf(request: FastifyRequest, reply: FastifyReply, bytes: Buffer, fileName: string, sha256: string) {
  const etag = `"${sha256}"`;
  reply
    .header('etag', etag)
    .header('cache-control', 'private, no-cache')
    .header('content-disposition', `attachment; filename="${fileName}"`)
    .header('x-content-type-options', 'nosniff');
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  return reply.type('application/pdf').send(bytes);
}

function sendZip(reply: FastifyReply, archive: NodeJS.ReadableStream, fileName: string) {
  return reply
    .header('content-disposition', `attachment; filename="${fileName}"`)
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .type('application/zip')
    .send(archive);
}
