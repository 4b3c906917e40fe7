import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { ForbiddenError, NotFoundError } from '../http/errors.js';
import type { LaunchSession } from '../lti/index.js';

/** What the learner's and the course team's routes share: schemas, options, the session checks. */

export const HtmlPage = Type.String({ description: 'French HTML page (shown inside the LMS iframe)' });
export const HTML_RESPONSES = {
  200: HtmlPage,
  400: HtmlPage,
  401: HtmlPage,
  403: HtmlPage,
  404: HtmlPage,
  409: HtmlPage,
};
export const SessionToken = Type.Optional(Type.String({ maxLength: 4096 }));
export const Text = Type.Optional(Type.String({ maxLength: 600 }));
export const SessionParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

export interface RegroupementOptions {
  /** Funds that plan a closing session (funds.json). */
  funds: ReadonlySet<string>;
  /** After an attendance changed: the certificate may need a new version. */
  attendanceChanged: (learnerId: string, courseId: string) => Promise<void>;
}

export function rawToken(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  const body = request.body as Record<string, unknown> | undefined;
  const query = request.query as Record<string, unknown> | undefined;
  const token = bearer ?? body?.session_token ?? query?.session_token;
  return typeof token === 'string' ? token : '';
}

export const inCourse = (session: LaunchSession): string => {
  if (session.courseId === null)
    throw new NotFoundError('no_course', 'Ouvrez cette page depuis un cours.', 'no course');
  return session.courseId;
};

export function courseTeamOnly(session: LaunchSession): LaunchSession {
  if (session.role !== 'course_team' && session.role !== 'staff') {
    throw new ForbiddenError(
      'course_team_only',
      'Cette page est réservée à l’équipe du cours.',
      `role ${session.role}`,
    );
  }
  return session;
}
