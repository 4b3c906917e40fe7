import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from '../http/errors.js';
import { type LaunchSession, sessionHead, sessionTokenOf } from '../lti/index.js';
import type { CertificateRecord, CertificateService } from './service.js';

/** What the certificates routes share: the session's course, who acts, who may read a certificate. */

export function courseOf(session: LaunchSession): string {
  if (!session.courseId) {
    throw new ForbiddenError('no_course', 'Ouvrez cette page depuis un cours.', 'session has no course');
  }
  return session.courseId;
}

export function kindOf(session: LaunchSession): 'course_team' | 'operator' {
  return session.role === 'staff' ? 'operator' : 'course_team';
}

export function head(request: FastifyRequest, token: string, session: LaunchSession) {
  return sessionHead(token, session.exp, request.server.config.publicUrl);
}

export function tokenOf(request: FastifyRequest): string {
  return sessionTokenOf(request);
}

/** The course team issues only to people who came to this course through the LMS. */
export async function issueForCourse(
  service: CertificateService,
  session: LaunchSession,
  learnerId: string,
  reason: string,
) {
  const courseId = courseOf(session);
  if (!(await service.learnerLaunchedIn(learnerId, courseId))) {
    throw new ForbiddenError('not_in_course', 'Cet apprenant n’est pas inscrit dans ce cours.');
  }
  return service.issue({ learnerId, courseId, kind: kindOf(session), by: session.learnerId, reason });
}

/** A learner reads only their own certificates; the course team and staff those of their course. */
export function assertMayRead(session: LaunchSession, record: CertificateRecord): void {
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

export function assertCourse(session: LaunchSession, record: CertificateRecord): void {
  if (record.course_id !== session.courseId) {
    throw new ForbiddenError('other_course', 'Ce certificat relève d’un autre cours.', 'certificate of another course');
  }
}
