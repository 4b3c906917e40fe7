import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendLearnerPage } from '../http/html.js';
import { type LaunchSession, requireRole, requireSession, viewTicketUrl } from '../lti/index.js';
import { courseTeamPage, learnerPage } from './pages.js';
import { assertCourse, assertMayRead, courseOf, head, issueForCourse, kindOf, tokenOf } from './route-common.js';
import type { IssuanceRule } from './rules.js';
import { Html, IssueBody, NumberParams, ReasonBody, RuleForm, TokenBody, TokenQuery } from './schemas.js';
import type { CertificateService } from './service.js';

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
 * The learner's and the course team's pages inside the LMS iframe (session token): GET /certificates,
 * POST /certificates/request, the PDF, the course team's forms under /certificates/manage/.
 */
export async function certificatePageRoutes(base: FastifyInstance, options: { service: CertificateService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const service = options.service;

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
      // Set first, so that an error answer from here on is not stored either.
      reply.header('cache-control', 'no-store');
      if (session.role === 'learner') {
        // Opening the page is also a moment to issue: the rule may have been met since the last visit.
        await service.issueIfEligible(session.learnerId, courseId);
        const records = await service.listForLearner(session.learnerId, courseId);
        const report = await service.eligibility(session.learnerId, courseId);
        return sendLearnerPage(
          reply,
          learnerPage({
            head: head(request, token, session),
            token,
            certificates: records.map((record) => ({ record, data: service.data(record) })),
            report,
            notice,
          }),
        );
      }
      const { rule, stored } = await service.rule(courseId);
      const records = await service.listForCourse(courseId);
      const overview = await service.courseOverview(courseId);
      return sendLearnerPage(
        reply,
        courseTeamPage({
          head: head(request, token, session),
          token,
          courseTitle: overview.courseTitle,
          rule,
          ruleStored: stored,
          certificates: records.map((record) => ({ record, data: service.data(record) })),
          learners: overview.learners,
          funds: overview.funds,
          notice,
        }),
      );
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
      await issueForCourse(service, session, request.body.learnerId, request.body.reason);
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
