import { getLearnerProfile, listCompletions, listFunds, listModules, parseLinkTarget } from '../catalog/index.js';
import type { Db } from '../db/index.js';
import type { LaunchSession } from '../lti/index.js';
import { findMembershipSync, findNrpsSource, listMemberships } from './membership-repository.js';
import { findCourse, findLaunchCustom, latestScoresOnLink, listCourseLearners } from './repository.js';

/**
 * The course team's follow-up of one link (the XBlock's author/instructor view): what it serves, and
 * each learner of THIS course with their progress on it and whether their score reached the gradebook.
 * Every query is bound to the session's course: other courses' learners never appear.
 */

export type ProgressState = 'completed' | 'started' | 'not_started';
/** `held`: pending, waiting for an operator (the component's registration was replaced or removed). */
export type ScoreState = 'sent' | 'pending' | 'held' | 'failed' | null;

export interface LinkLearnerRow {
  learnerId: string;
  name: string;
  company: string | null;
  fund: string | null;
  module: { id: string; title: string } | null;
  progress: ProgressState;
  startedAt: Date | null;
  completedAt: Date | null;
  score: ScoreState;
  scoreAt: Date | null;
  /** Connection time credited on that module (seconds; null: nothing measured). */
  creditedSeconds: number | null;
  /**
   * Plausibility flags, for review and never refusals (docs/time-accounting.md): `completed_quickly` (the
   * module completed with under a third of its nominal time credited), `regular_beats` (a run of over an
   * hour of perfectly regular beats with no input).
   */
  flags: Array<'completed_quickly' | 'regular_beats'>;
}

export interface CourseTeamView {
  courseTitle: string;
  serves: { kind: 'module'; title: string } | { kind: 'theme'; title: string; perFund: boolean } | { kind: 'nothing' };
  learners: LinkLearnerRow[];
  /** Enrolled as learners (NRPS), never launched the tool in this course. */
  neverLaunched: { name: string | null; status: string }[];
  nrps: { available: boolean; lastSyncedAt: Date | null; lastError: string | null };
}

/**
 * Where the view reads connection time and the plausibility rule from (the tracking capability registers
 * it: `registerCourseTeamTimes`), so that this capability never imports the tracking. Without one, the
 * view shows no time and no flag.
 */
export interface CourseTeamTimes {
  times(
    db: Db,
    courseId: string,
  ): Promise<
    ReadonlyArray<{
      learnerId: string;
      modules: ReadonlyArray<{ moduleId: string; creditedSeconds: number; flags: readonly string[] }>;
    }>
  >;
  /** "Parcouru rapidement": completed with credited time under a third of the nominal duration. */
  completedQuickly(completed: boolean, creditedSeconds: number, nominalMinutes: number): boolean;
}

export async function courseTeamView(
  db: Db,
  session: LaunchSession,
  timesSource?: CourseTeamTimes,
): Promise<CourseTeamView> {
  const courseId = session.courseId as string;
  const [course, custom, modules, funds, learners, completions, memberships, sync, source, times] = await Promise.all([
    findCourse(db, courseId),
    findLaunchCustom(db, session.launchId),
    listModules(db, { includeInactive: true }),
    listFunds(db, { includeInactive: true }),
    listCourseLearners(db, courseId, session.resourceLinkId),
    listCompletions(db, { courseId }),
    listMemberships(db, courseId),
    findMembershipSync(db, courseId),
    findNrpsSource(db, courseId),
    timesSource ? timesSource.times(db, courseId) : Promise.resolve([]),
  ]);
  const timesOf = new Map(times.map((t) => [t.learnerId, t]));
  const nominalOf = new Map(modules.map((m) => [m.id, m.nominalMinutes]));

  // Which modules this link can serve: its fixed module, or its theme's modules (of its fixed fund).
  const target = parseLinkTarget(custom);
  let onLink: Set<string>;
  let serves: CourseTeamView['serves'];
  if (target.module !== null) {
    onLink = new Set([target.module]);
    const m = modules.find((x) => x.id === target.module);
    serves = { kind: 'module', title: m?.title ?? target.module };
  } else if (target.theme !== null) {
    const themed = modules.filter(
      (m) =>
        m.theme === target.theme &&
        (target.track === null || m.trackId === target.track) &&
        (target.fund === null || m.fundSlug === null || m.fundSlug === target.fund),
    );
    onLink = new Set(themed.map((m) => m.id));
    serves = {
      kind: 'theme',
      title: themed[0]?.themeTitle ?? target.theme,
      perFund: themed.some((m) => m.trunk === 'sector') && target.fund === null,
    };
  } else {
    onLink = new Set();
    serves = { kind: 'nothing' };
  }

  const moduleTitle = new Map(modules.map((m) => [m.id, m.title]));
  const fundName = new Map(funds.map((f) => [f.slug, f.name]));
  const scores = new Map<string, { status: ScoreState; at: Date | null }>();
  if (session.resourceLinkId) {
    for (const s of await latestScoresOnLink(db, session.resourceLinkId)) {
      if (scores.has(s.learner_id) || s.status === 'superseded') continue;
      const status: ScoreState =
        s.status === 'sent' ? 'sent' : s.status === 'failed' ? 'failed' : s.held_reason ? 'held' : 'pending';
      scores.set(s.learner_id, { status, at: s.status === 'sent' ? s.sent_at : s.updated_at });
    }
  }

  const rows: LinkLearnerRow[] = [];
  for (const l of learners) {
    const profile = await getLearnerProfile(db, l.learner_id);
    const progress = completions
      .filter((c) => c.learnerId === l.learner_id && onLink.has(c.moduleId))
      .sort(
        (a, b) =>
          (b.completedAt?.getTime() ?? 0) - (a.completedAt?.getTime() ?? 0) ||
          b.startedAt.getTime() - a.startedAt.getTime(),
      )[0];
    const score = scores.get(l.learner_id);
    const time = progress
      ? timesOf.get(l.learner_id)?.modules.find((m) => m.moduleId === progress.moduleId)
      : undefined;
    const flags: LinkLearnerRow['flags'] = [];
    if (
      progress &&
      timesSource?.completedQuickly(
        progress.completedAt !== null,
        time?.creditedSeconds ?? 0,
        nominalOf.get(progress.moduleId) ?? 0,
      )
    ) {
      flags.push('completed_quickly');
    }
    if (time?.flags.includes('regular_beats')) flags.push('regular_beats');
    rows.push({
      learnerId: l.learner_id,
      name: profile
        ? `${profile.givenName} ${profile.familyName}`
        : (l.name ?? ([l.given_name, l.family_name].filter(Boolean).join(' ') || 'Apprenant sans nom')),
      company: profile?.companyName ?? null,
      fund: profile ? (fundName.get(profile.fundSlug) ?? profile.fundName) : null,
      module: progress
        ? { id: progress.moduleId, title: moduleTitle.get(progress.moduleId) ?? progress.moduleId }
        : null,
      progress: progress ? (progress.completedAt ? 'completed' : 'started') : 'not_started',
      startedAt: progress?.startedAt ?? null,
      completedAt: progress?.completedAt ?? null,
      score: score?.status ?? null,
      scoreAt: score?.at ?? null,
      creditedSeconds: time?.creditedSeconds ?? null,
      flags,
    });
  }

  const launched = new Set(learners.map((l) => l.learner_id));
  const neverLaunched = memberships
    .filter((m) => m.is_learner && m.removed_at === null && m.status !== 'Deleted')
    .filter((m) => m.learner_id === null || !launched.has(m.learner_id))
    .map((m) => ({
      name: m.name ?? ([m.given_name, m.family_name].filter(Boolean).join(' ') || null),
      status: m.status,
    }));

  return {
    courseTitle: course?.title ?? course?.label ?? 'Ce cours',
    serves,
    learners: rows,
    neverLaunched,
    nrps: {
      available: source !== undefined,
      lastSyncedAt: sync?.last_synced_at ?? null,
      lastError: sync?.last_error ?? null,
    },
  };
}
