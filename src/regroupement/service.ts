import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listFunds, programmeProgress } from '../catalog/index.js';
import type { Db } from '../db/index.js';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from '../http/errors.js';
import * as repo from './repository.js';
import {
  codeWindow,
  dayFr,
  mayJoin,
  newAttendanceCode,
  normaliseCode,
  type ScheduleInput,
  timeFr,
  withinCodeWindow,
} from './rules.js';
import type { LearnerSessionView } from './views.js';

/** Who acts: the LTI session's learner id (a course-team member is a learner row too) and role. */
export interface Actor {
  learnerId: string;
  role: string;
}

/**
 * The funds that plan a closing group session: `"regroupement": true` in `funds.json` (validated by the
 * catalog's content check; read here once at start).
 */
export async function loadRegroupementFunds(contentDir: string): Promise<Set<string>> {
  try {
    const data = JSON.parse(await readFile(join(contentDir, 'funds.json'), 'utf8')) as {
      funds?: Array<{ slug?: unknown; regroupement?: unknown }>;
    };
    return new Set(
      (data.funds ?? [])
        .filter((f) => f.regroupement === true && typeof f.slug === 'string')
        .map((f) => f.slug as string),
    );
  } catch {
    return new Set();
  }
}

export async function scheduleSession(db: Db, actor: Actor, courseId: string, input: ScheduleInput): Promise<string> {
  return db.transaction().execute(async (trx) => {
    const id = await repo.insertSession(trx, {
      courseId,
      ...input,
      attendanceCode: newAttendanceCode(),
      createdBy: actor.learnerId,
    });
    await repo.insertAudit(trx, {
      sessionId: id,
      actorLearnerId: actor.learnerId,
      actorRole: actor.role,
      action: 'schedule',
      details: {
        fund: input.fundSlug,
        startsAt: input.startsAt.toISOString(),
        durationMinutes: input.durationMinutes,
        mode: input.mode,
        location: input.location,
        capacity: input.capacity,
      },
    });
    return id;
  });
}

/** A session of this course, or a 404 (a session of another course is never revealed). */
export async function sessionOfCourse(db: Db, sessionId: string, courseId: string): Promise<repo.SessionRow> {
  const s = /^[0-9a-f-]{36}$/i.test(sessionId) ? await repo.findSession(db, sessionId) : null;
  if (!s || s.courseId !== courseId) {
    throw new NotFoundError('regroupement_not_found', 'Cette séance de regroupement n’existe pas dans ce cours.');
  }
  return s;
}

export async function cancelSession(db: Db, actor: Actor, session: repo.SessionRow): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await repo.cancelSession(trx, session.id);
    await repo.insertAudit(trx, {
      sessionId: session.id,
      actorLearnerId: actor.learnerId,
      actorRole: actor.role,
      action: 'cancel',
      details: { registered: session.registered },
    });
  });
}

/**
 * The course team ticks who was there: ticked learners get the session's duration (source `list`),
 * unticked ones lose an attendance recorded before. Only registered learners are listed. Returns what changed.
 */
export async function recordAttendanceList(
  db: Db,
  actor: Actor,
  session: repo.SessionRow,
  present: ReadonlySet<string>,
  now = new Date(),
): Promise<{ added: string[]; removed: string[] }> {
  if (session.cancelledAt) throw new ConflictError('regroupement_cancelled', 'Cette séance a été annulée.');
  if (now < codeWindow(session).from) {
    throw new ConflictError(
      'regroupement_not_started',
      'La présence se note à partir du début de la séance.',
      `session ${session.id} starts at ${session.startsAt.toISOString()}`,
    );
  }
  return db.transaction().execute(async (trx) => {
    const regs = await repo.listRegistrations(trx, session.id);
    const added: string[] = [];
    const removed: string[] = [];
    for (const r of regs) {
      const tick = present.has(r.learnerId);
      if (tick && r.attendedMinutes === null) {
        await repo.setAttendance(trx, session.id, r.learnerId, { minutes: session.durationMinutes, source: 'list' });
        added.push(r.learnerId);
      } else if (!tick && r.attendedMinutes !== null) {
        await repo.setAttendance(trx, session.id, r.learnerId, null);
        removed.push(r.learnerId);
      }
    }
    const unknown = [...present].filter((id) => !regs.some((r) => r.learnerId === id));
    if (unknown.length > 0) {
      throw new BadRequestError(
        'regroupement_not_registered',
        'Cette liste ne correspond plus aux inscrits : rechargez la page.',
      );
    }
    if (added.length > 0 || removed.length > 0) {
      await repo.insertAudit(trx, {
        sessionId: session.id,
        actorLearnerId: actor.learnerId,
        actorRole: actor.role,
        action: 'attendance_list',
        details: { added, removed },
      });
    }
    return { added, removed };
  });
}

/** What a learner needs to see the sessions: their fund plans them, and they finished (or nearly). */
export async function learnerStanding(
  db: Db,
  learnerId: string,
  courseId: string,
  funds: ReadonlySet<string>,
  fundSlug: string,
) {
  const progress = await programmeProgress(db, learnerId, courseId);
  return { fundPlans: funds.has(fundSlug), mayJoin: mayJoin(progress), progress };
}

export async function register(
  db: Db,
  learner: { learnerId: string; courseId: string; fundSlug: string },
  sessionId: string,
  o: { mayJoin: boolean; now?: Date },
): Promise<repo.SessionRow> {
  const now = o.now ?? new Date();
  const session = await sessionOfCourse(db, sessionId, learner.courseId);
  if (session.fundSlug !== learner.fundSlug) {
    throw new ForbiddenError(
      'regroupement_other_fund',
      'Cette séance est organisée pour les apprenants d’un autre fonds.',
    );
  }
  if (!o.mayJoin) {
    throw new ForbiddenError(
      'regroupement_not_yet',
      'L’inscription au regroupement s’ouvre quand il ne vous reste plus que deux modules à terminer.',
    );
  }
  if (session.cancelledAt)
    throw new ConflictError('regroupement_cancelled', 'Cette séance a été annulée : choisissez-en une autre.');
  if (session.startsAt <= now)
    throw new ConflictError('regroupement_past', 'Cette séance a déjà commencé : choisissez-en une autre.');
  await db.transaction().execute(async (trx) => {
    await repo.lockSession(trx, session.id);
    const mine = await repo.learnerRegistrations(trx, learner.learnerId, learner.courseId);
    if (mine.some((r) => r.sessionId === session.id)) return;
    const other = mine.find((r) => !r.session.cancelledAt && (r.session.startsAt > now || r.attendedMinutes !== null));
    if (other) {
      throw new ConflictError(
        'regroupement_already_registered',
        `Vous êtes déjà inscrit(e) au regroupement du ${dayFr(other.session.startsAt)} à ${timeFr(other.session.startsAt)}.`,
      );
    }
    const fresh = await repo.findSession(trx, session.id);
    if (!fresh || fresh.registered >= fresh.capacity) {
      throw new ConflictError(
        'regroupement_full',
        `La séance du ${dayFr(session.startsAt)} est complète (${session.capacity} places) : choisissez-en une autre.`,
      );
    }
    await repo.insertRegistration(trx, session.id, learner.learnerId);
    await repo.insertAudit(trx, {
      sessionId: session.id,
      actorLearnerId: learner.learnerId,
      actorRole: 'learner',
      action: 'register',
      details: {},
    });
  });
  return session;
}

/** A learner withdraws from a session that has not started yet (their place is freed). */
export async function unregister(
  db: Db,
  learner: { learnerId: string; courseId: string },
  sessionId: string,
  now = new Date(),
): Promise<repo.SessionRow> {
  const session = await sessionOfCourse(db, sessionId, learner.courseId);
  if (session.startsAt <= now) {
    throw new ConflictError(
      'regroupement_past',
      'Cette séance a déjà commencé : l’inscription ne peut plus être annulée.',
    );
  }
  await db.transaction().execute(async (trx) => {
    if (!(await repo.deleteRegistration(trx, session.id, learner.learnerId))) return;
    await repo.insertAudit(trx, {
      sessionId: session.id,
      actorLearnerId: learner.learnerId,
      actorRole: 'learner',
      action: 'unregister',
      details: {},
    });
  });
  return session;
}

/**
 * The learner types the code given during the session: accepted only for a session of THIS course, of
 * their fund, within its time window. Records the session's duration (source `code`); registers them if
 * they came without registering.
 */
export async function attendByCode(
  db: Db,
  learner: { learnerId: string; courseId: string; fundSlug: string },
  typed: string,
  now = new Date(),
): Promise<repo.SessionRow> {
  const code = normaliseCode(typed);
  if (!code) {
    throw new BadRequestError(
      'regroupement_bad_code',
      'Le code de présence a 6 caractères (lettres et chiffres) : vérifiez-le.',
    );
  }
  const sessions = (await repo.findByCode(db, learner.courseId, code)).filter((s) => s.fundSlug === learner.fundSlug);
  const session = sessions.find((s) => withinCodeWindow(s, now)) ?? sessions[0];
  if (!session) {
    throw new BadRequestError('regroupement_unknown_code', 'Ce code ne correspond à aucun regroupement de ce cours.');
  }
  if (!withinCodeWindow(session, now)) {
    const w = codeWindow(session);
    throw new ConflictError(
      'regroupement_code_window',
      `Ce code n’est valable que pendant la séance, le ${dayFr(session.startsAt)} de ${timeFr(w.from)} à ${timeFr(w.to)}.`,
      `code used at ${now.toISOString()}`,
    );
  }
  await db.transaction().execute(async (trx) => {
    await repo.lockSession(trx, session.id);
    await repo.insertRegistration(trx, session.id, learner.learnerId);
    const regs = await repo.learnerRegistrations(trx, learner.learnerId, learner.courseId);
    if (regs.find((r) => r.sessionId === session.id)?.attendedMinutes != null) return;
    await repo.setAttendance(trx, session.id, learner.learnerId, { minutes: session.durationMinutes, source: 'code' });
    await repo.insertAudit(trx, {
      sessionId: session.id,
      actorLearnerId: learner.learnerId,
      actorRole: 'learner',
      action: 'attendance_code',
      details: {},
    });
  });
  return session;
}

/** The closing sessions a learner attended in a course, for certificates and exports. */
export async function attendedFor(db: Db, learnerId: string, courseId: string) {
  const rows = await repo.attendedSessions(db, learnerId, courseId);
  return rows.map((r) => ({
    sessionId: r.id,
    startsAt: r.starts_at,
    mode: r.mode,
    attendedMinutes: r.attended_minutes as number,
    source: r.attendance_source,
  }));
}

/** Whether the learner holds any registration in this course's sessions (a cheap check for « Mon parcours »). */
export async function hasRegistration(db: Db, learnerId: string, courseId: string): Promise<boolean> {
  return (await repo.learnerRegistrations(db, learnerId, courseId)).length > 0;
}

/** What the learner's section shows: the sessions of their fund in this course, and their own standing. */
export async function learnerSectionData(
  db: Db,
  /** Funds that plan a closing session (funds.json). */
  funds: ReadonlySet<string>,
  learner: { learnerId: string; courseId: string; fundSlug: string },
  /** What « Mon parcours » already counted, to spare recounting it. */
  known?: { done: number; planned: number },
) {
  const standing = known
    ? { fundPlans: funds.has(learner.fundSlug), mayJoin: mayJoin(known), progress: known }
    : await learnerStanding(db, learner.learnerId, learner.courseId, funds, learner.fundSlug);
  const [sessions, mine] = await Promise.all([
    repo.listSessions(db, learner.courseId, learner.fundSlug),
    repo.learnerRegistrations(db, learner.learnerId, learner.courseId),
  ]);
  const byId = new Map(mine.map((r) => [r.sessionId, r]));
  const views: LearnerSessionView[] = sessions.map((s) => ({
    session: s,
    registered: byId.has(s.id),
    attendedMinutes: byId.get(s.id)?.attendedMinutes ?? null,
  }));
  const progress = standing.progress;
  return {
    fundPlans: standing.fundPlans || mine.length > 0,
    mayJoin: standing.mayJoin,
    left: progress ? Math.max(0, progress.planned - progress.done) : 0,
    sessions: views,
  };
}

/** The course team's page: the funds, the course's sessions with their registrations and history. */
export async function courseTeamOverview(db: Db, courseId: string) {
  const [funds, sessions, title] = await Promise.all([
    listFunds(db, { includeInactive: true }),
    repo.listSessions(db, courseId),
    repo.courseTitle(db, courseId),
  ]);
  const name = new Map(funds.map((f) => [f.slug, f.name]));
  const withRegs = await Promise.all(
    sessions.map(async (s) => {
      const [registrations, audit] = await Promise.all([repo.listRegistrations(db, s.id), repo.listAudit(db, s.id)]);
      const names = await repo.learnerNames(db, [...new Set(audit.map((a) => a.actor_learner_id))]);
      return {
        session: s,
        fundName: name.get(s.fundSlug) ?? s.fundSlug,
        registrations,
        history: audit.map((a) => ({
          at: a.at,
          who: names.get(a.actor_learner_id) ?? (a.actor_role === 'learner' ? 'un apprenant' : 'l’équipe du cours'),
          action: a.action,
        })),
      };
    }),
  );
  return { funds, sessions: withRegs, title };
}
