import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { getLearnerProfile, registerParcoursFragment } from '../catalog/index.js';
import type { Db } from '../db/index.js';
import { regroupementRoutes } from './routes.js';
import { attendedFor, hasRegistration, learnerSectionData, loadRegroupementFunds } from './service.js';
import { courseTeamRoutes } from './team-routes.js';
import { learnerSection } from './views.js';

/**
 * The closing group session (« regroupement », docs/course-team.md §3): per fund (funds.json) and course
 * session, the course team schedules sessions; learners who finished (or nearly) register from « Mon
 * parcours »; attendance by the course team's list or by a code given during the session; the attended
 * duration on the certificate and in the exports. The only file other capabilities import from src/regroupement/.
 */
export { certificateLine, MODE_LABELS } from './rules.js';
export type { RegroupementTables, SessionMode } from './tables.js';

export interface AttendedGroupSession {
  sessionId: string;
  startsAt: Date;
  mode: 'online' | 'onsite';
  attendedMinutes: number;
  source: 'list' | 'code' | null;
}

/** The closing sessions a learner attended in a course (oldest first): certificates print them. */
export function attendedGroupSessions(db: Db, learnerId: string, courseId: string): Promise<AttendedGroupSession[]> {
  return attendedFor(db, learnerId, courseId);
}

/**
 * Routes (course team: /regroupement/equipe; learner: /regroupement, its forms), and the section of « Mon
 * parcours ». Register after catalogPlugin and certificatesPlugin.
 */
async function regroupement(app: FastifyInstance): Promise<void> {
  const funds = await loadRegroupementFunds(app.config.contentDir);
  const options = {
    funds,
    attendanceChanged: async (learnerId: string, courseId: string) => {
      // A certificate already issued gets a new version carrying the session (or no longer carrying it).
      try {
        await app.certificates.reissueForRegroupement(learnerId, courseId);
      } catch (err) {
        app.log.warn({ err }, 'certificate not reissued after a regroupement attendance change');
      }
    },
  };
  await app.register(regroupementRoutes, options);
  await app.register(courseTeamRoutes, options);
  registerParcoursFragment(app, async (ctx) => {
    const profile = await getLearnerProfile(app.db, ctx.learnerId);
    if (!profile) return null;
    // Nothing to look up for a fund without regroupement, unless the learner has a registration here.
    if (!funds.has(profile.fundSlug) && !(await hasRegistration(app.db, ctx.learnerId, ctx.courseId))) return null;
    const data = await learnerSectionData(
      app.db,
      funds,
      { learnerId: ctx.learnerId, courseId: ctx.courseId, fundSlug: profile.fundSlug },
      { done: ctx.modulesDone, planned: ctx.modulesPlanned },
    );
    if (!data.fundPlans) return null;
    return learnerSection({
      token: ctx.sessionToken,
      mayJoin: data.mayJoin,
      left: data.left,
      sessions: data.sessions,
    });
  });
}

export const regroupementPlugin = fp(regroupement, {
  name: 'regroupement',
  dependencies: ['catalog', 'certificates'],
  fastify: '5.x',
});
