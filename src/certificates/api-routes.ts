import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ForbiddenError, NotFoundError } from '../http/errors.js';
import { requireRole, requireSession } from '../lti/index.js';
import { assertCourse, assertMayRead, courseOf, issueForCourse, kindOf } from './route-common.js';
import { Issued, ListItem, NumberParams, RuleBody } from './schemas.js';
import type { CertificateService } from './service.js';

/** The course team's API (session bearer token): /api/certificates… */
export async function certificateApiRoutes(base: FastifyInstance, options: { service: CertificateService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const service = options.service;

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
      if (!(await service.learnerLaunchedIn(request.params.learnerId, courseId))) {
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
      const issued = await issueForCourse(service, session, request.body.learnerId, request.body.reason);
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
}
