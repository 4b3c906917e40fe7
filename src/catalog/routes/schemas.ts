import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { requireRole, requireSession, sessionTokenOf } from '../../lti/index.js';

/** Schemas and request helpers shared by the catalog's route files. */

export const HtmlPage = Type.String({ description: 'French HTML page (shown inside the LMS iframe)' });
export const HTML_RESPONSES = { 200: HtmlPage, 401: HtmlPage, 403: HtmlPage, 404: HtmlPage, 422: HtmlPage };
export const htmlRoute = { config: { html: true } } as const;
export const TokenQuery = Type.Object({ session_token: Type.Optional(Type.String({ maxLength: 4096 })) });
/** The module page: opened with the session token, or with a view ticket after one of its forms. */
export const ModuleQuery = Type.Object({
  session_token: Type.Optional(Type.String({ maxLength: 4096 })),
  ticket: Type.Optional(Type.String({ maxLength: 100 })),
  erreur: Type.Optional(Type.Literal('quiz')),
  // Another module of the learner's programme, from the same session ("module suivant").
  module: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9-]+$' })),
});
export const MODULE_PATH = '/catalog/module';
const FormText = Type.Optional(Type.String({ maxLength: 2000 }));
/** Lenient on purpose: length and content are checked by the rules, which keep what was typed. */
export const ProfileBody = Type.Object({
  session_token: Type.Optional(Type.String({ maxLength: 4096 })),
  civility: FormText,
  familyName: FormText,
  givenName: FormText,
  companyName: FormText,
  siret: FormText,
  headcountBand: FormText,
  idcc: FormText,
  fund: FormText,
});
export const ModuleId = Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9-]+$' });
export const BlockId = Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9-]+$' });
export const LearnerParams = Type.Object({ learnerId: Type.String({ format: 'uuid' }) });

/**
 * The raw token the request was authenticated with (bearer, form field, query), or the fresh one of a
 * page opened with a view ticket, to put back into the page it receives.
 */
export function rawToken(request: FastifyRequest): string {
  return sessionTokenOf(request);
}

/** The session of a course-team member (or staff). */
export const courseTeam = async (request: FastifyRequest) =>
  requireRole(await requireSession(request), 'course_team', 'staff');
