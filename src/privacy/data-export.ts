import { sql } from 'kysely';
import { NotFoundError } from '../http/errors.js';
import { getLearnerTimes, settleTracking } from '../tracking/index.js';
import * as repo from './repository.js';
import { type Hold, learnerHolds, reducedUserAgent } from './rules.js';
import { holdInput, type PrivacyDeps } from './service.js';

/** The learner's access and portability export (GDPR art. 15 and 20, docs/privacy.md). */

// ───────────────────────────── access export ─────────────────────────────

export interface LearnerDataExport {
  format: 'emargement-personal-data-v1';
  generatedAt: string;
  controller: { name: string; address: string[] } | null;
  learner: {
    id: string;
    platform: string;
    platformUserId: string;
    name: string | null;
    givenName: string | null;
    familyName: string | null;
    email: string | null;
    lmsUsername: string | null;
    firstSeenAt: string;
  };
  erasure: { pseudonym: string; erasedAt: string; holds: Hold[] } | null;
  profile: {
    civility: string;
    familyName: string;
    givenName: string;
    fund: { slug: string; name: string | null };
    branchIdcc: string | null;
    updatedAt: string;
  } | null;
  company: { name: string; siret: string; headcountBand: string } | null;
  launches: Array<{ at: string; course: string | null; role: string; messageType: string }>;
  modules: Array<{
    course: string | null;
    moduleId: string;
    title: string | null;
    version: number;
    startedAt: string;
    completedAt: string | null;
    quiz: { correct: number; total: number } | null;
  }>;
  time: Array<{
    courseId: string;
    course: string | null;
    algorithm: string;
    params: Record<string, unknown>;
    creditedSeconds: number;
    measuredSeconds: number;
    modules: Array<{ moduleId: string; title: string | null; creditedSeconds: number; measuredSeconds: number }>;
    days: Array<{ day: string; measuredSeconds: number; modules: Record<string, number> }>;
    lmsEstimate: { algorithm: string; estimatedSeconds: number; params: Record<string, unknown> } | null;
  }>;
  evidence: {
    records: Record<string, number>;
    tabs: number;
    runs: number;
    devices: Record<string, number>;
    lmsEvents: number;
    lmsUsernames: string[];
  };
  certificates: Array<{
    number: string;
    version: number;
    state: string;
    course: string | null;
    issuedAt: string;
    totalSeconds: number | null;
    fund: string | null;
  }>;
  retention: { holds: Hold[]; releaseDay: string };
}

/**
 * Everything the tool keeps about one learner (GDPR art. 15 and 20), read from the database: identity,
 * profile and company, launches, modules, time per course, module and day with the algorithm and its
 * parameters, evidence counts, certificates, and until when each is kept.
 */
export async function learnerDataExport(
  deps: PrivacyDeps,
  learnerId: string,
  controller: LearnerDataExport['controller'] = null,
): Promise<LearnerDataExport> {
  const { db, policy } = deps;
  const learner = await repo.learnerById(db, learnerId);
  if (!learner)
    throw new NotFoundError(
      'learner_not_found',
      'Aucune donnée n’est enregistrée à ce nom.',
      `no learner ${learnerId}`,
    );
  await settleTracking(db, { learnerId });
  const [erasure, profile, launches, progress, certificates, titles, courses] = await Promise.all([
    repo.erasureOf(db, learnerId),
    db
      .selectFrom('learner_profiles as p')
      .leftJoin('funds as f', 'f.slug', 'p.fund_slug')
      .selectAll('p')
      .select('f.name as fund_name')
      .where('p.learner_id', '=', learnerId)
      .executeTakeFirst(),
    db
      .selectFrom('lti_launches as l')
      .leftJoin('courses as c', 'c.id', 'l.course_id')
      .select(['l.created_at', 'l.role', 'l.message_type', 'c.title', 'c.context_id'])
      .where('l.learner_id', '=', learnerId)
      .orderBy('l.created_at')
      .execute(),
    db
      .selectFrom('module_progress as m')
      .leftJoin('courses as c', 'c.id', 'm.course_id')
      .select([
        'm.module_id',
        'm.module_version',
        'm.started_at',
        'm.completed_at',
        'm.quiz_answers',
        'c.title',
        'c.context_id',
      ])
      .where('m.learner_id', '=', learnerId)
      .orderBy('m.started_at')
      .execute(),
    db
      .selectFrom('certificates as x')
      .leftJoin('courses as c', 'c.id', 'x.course_id')
      .select([
        'x.number',
        'x.version',
        'x.state',
        'x.issued_at',
        'x.data_canonical',
        'x.fund_slug',
        'c.title',
        'c.context_id',
      ])
      .where('x.learner_id', '=', learnerId)
      .orderBy('x.issued_at')
      .execute(),
    db.selectFrom('modules').select(['id', 'title']).execute(),
    sql<{ course_id: string; title: string | null; context_id: string }>`
      select distinct c.id as course_id, c.title, c.context_id from courses c where c.id in (
        select course_id from time_course_totals where learner_id = ${learnerId}
        union select course_id from lms_time_totals where learner_id = ${learnerId}
        union select course_id from tracking_tabs where learner_id = ${learnerId}
        union select course_id from lti_launches where learner_id = ${learnerId} and course_id is not null)
      order by c.context_id`.execute(db),
  ]);
  const moduleTitle = new Map(titles.map((m) => [m.id, m.title]));
  const courseName = (title: string | null, contextId: string | null) => title ?? contextId ?? null;

  const time: LearnerDataExport['time'] = [];
  for (const c of courses.rows) {
    const times = await getLearnerTimes(db, learnerId, c.course_id);
    const [days, lms] = await Promise.all([
      db
        .selectFrom('time_day_totals')
        .selectAll()
        .where('learner_id', '=', learnerId)
        .where('course_id', '=', c.course_id)
        .orderBy('day')
        .execute(),
      db
        .selectFrom('lms_time_totals')
        .selectAll()
        .where('learner_id', '=', learnerId)
        .where('course_id', '=', c.course_id)
        .executeTakeFirst(),
    ]);
    time.push({
      courseId: c.course_id,
      course: courseName(c.title, c.context_id),
      algorithm: times.algorithm,
      params: times.params,
      creditedSeconds: times.creditedSeconds,
      measuredSeconds: times.measuredSeconds,
      modules: times.modules.map((m) => ({
        moduleId: m.moduleId,
        title: moduleTitle.get(m.moduleId) ?? null,
        creditedSeconds: m.creditedSeconds,
        measuredSeconds: m.measuredSeconds,
      })),
      days: days.map((d) => ({
        day: d.day,
        measuredSeconds: Math.floor(Number(d.measured_ms) / 1000),
        modules: Object.fromEntries(Object.entries(d.modules).map(([k, v]) => [k, Math.floor(Number(v) / 1000)])),
      })),
      lmsEstimate: lms
        ? { algorithm: lms.algorithm, estimatedSeconds: Number(lms.estimated_seconds), params: lms.params }
        : null,
    });
  }

  const usernames = await repo.lmsUsernamesOf(db, learner);
  const [kinds, tabs, runs, lmsEvents] = await Promise.all([
    db
      .selectFrom('tracking_events')
      .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
      .where('learner_id', '=', learnerId)
      .groupBy('kind')
      .orderBy('kind')
      .execute(),
    db.selectFrom('tracking_tabs').select(['user_agent']).where('learner_id', '=', learnerId).execute(),
    db
      .selectFrom('tracking_runs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('learner_id', '=', learnerId)
      .executeTakeFirst(),
    usernames.length === 0
      ? Promise.resolve({ n: 0 })
      : db
          .selectFrom('lms_events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('lms_username', 'in', usernames)
          .executeTakeFirst(),
  ]);
  const devices: Record<string, number> = {};
  for (const t of tabs) {
    const device = (reducedUserAgent(t.user_agent) ?? 'device:unknown').slice('device:'.length);
    devices[device] = (devices[device] ?? 0) + 1;
  }
  const retention = learnerHolds(await holdInput(db, learner), policy);

  return {
    format: 'emargement-personal-data-v1',
    generatedAt: new Date().toISOString(),
    controller,
    learner: {
      id: learner.id,
      platform: learner.issuer,
      platformUserId: learner.sub,
      name: learner.name,
      givenName: learner.given_name,
      familyName: learner.family_name,
      email: learner.email,
      lmsUsername: learner.username,
      firstSeenAt: learner.created_at.toISOString(),
    },
    erasure: erasure
      ? { pseudonym: erasure.pseudonym, erasedAt: erasure.erased_at.toISOString(), holds: erasure.holds as Hold[] }
      : null,
    profile: profile
      ? {
          civility: profile.civility,
          familyName: profile.family_name,
          givenName: profile.given_name,
          fund: { slug: profile.fund_slug, name: profile.fund_name ?? null },
          branchIdcc: profile.idcc,
          updatedAt: profile.updated_at.toISOString(),
        }
      : null,
    company: profile
      ? { name: profile.company_name, siret: profile.company_siret, headcountBand: profile.headcount_band }
      : null,
    launches: launches.map((l) => ({
      at: l.created_at.toISOString(),
      course: courseName(l.title, l.context_id),
      role: l.role,
      messageType: l.message_type,
    })),
    modules: progress.map((m) => ({
      course: courseName(m.title, m.context_id),
      moduleId: m.module_id,
      title: moduleTitle.get(m.module_id) ?? null,
      version: m.module_version,
      startedAt: m.started_at.toISOString(),
      completedAt: m.completed_at ? m.completed_at.toISOString() : null,
      quiz: m.quiz_answers ? { correct: m.quiz_answers.correct, total: m.quiz_answers.total } : null,
    })),
    time,
    evidence: {
      records: Object.fromEntries(kinds.map((k) => [k.kind, Number(k.n)])),
      tabs: tabs.length,
      runs: Number(runs?.n ?? 0),
      devices,
      lmsEvents: Number(lmsEvents?.n ?? 0),
      lmsUsernames: usernames,
    },
    certificates: certificates.map((c) => ({
      number: c.number,
      version: c.version,
      state: c.state,
      course: courseName(c.title, c.context_id),
      issuedAt: c.issued_at.toISOString(),
      totalSeconds: totalSecondsOf(c.data_canonical),
      fund: c.fund_slug,
    })),
    retention,
  };
}

function totalSecondsOf(dataCanonical: string): number | null {
  try {
    const data = JSON.parse(dataCanonical) as { durations?: { totalSeconds?: unknown } };
    return typeof data.durations?.totalSeconds === 'number' ? data.durations.totalSeconds : null;
  } catch {
    return null;
  }
}
