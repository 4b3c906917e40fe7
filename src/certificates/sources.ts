import {
  getLearnerProfile,
  type LearnerProfile,
  listCompletions,
  listFunds,
  listModules,
  listThemes,
  type ModuleCompletion,
  type ModuleInfo,
} from '../catalog/index.js';
import type { Db } from '../db/index.js';
import { fileNumberFor } from '../file-numbers/index.js';
import { courseTitle } from './repository.js';
import { type CertificateFacts, formatSiret, type Json, normaliseSiret } from './rules.js';
import type { FactsSource } from './service.js';

/** What the time tracking states for one learner in one course (the subset certificates print). */
export interface LearnerTimesView {
  algorithm: string;
  params: Record<string, unknown>;
  modules: Array<{ moduleId: string; creditedSeconds: number; firstAt: Date | null; lastAt: Date | null }>;
  /** Time on the LMS's own pages estimated from its logs; null while no estimate exists. */
  lmsEstimatedSeconds?: number | null;
  /** First and last LMS event behind that estimate (the certificate's dates include them). */
  lmsActivity?: { firstAt: Date; lastAt: Date } | null;
}

export type TimesPort = (db: Db, learnerId: string, courseId: string) => Promise<LearnerTimesView>;

const CIVILITY: Record<LearnerProfile['civility'], string | null> = {
  madame: 'Madame',
  monsieur: 'Monsieur',
  non_precise: null,
};

/**
 * The learner's path: per theme of the track and per position in the theme (module.yaml, module-2.yaml…),
 * the common-trunk module, or their fund's module (the branch variant when their company's IDCC is
 * listed). Modules they actually worked on are kept too (say, before a change of fund): their time was
 * spent and is shown; `planned` tells the programme's modules from those.
 */
export function learnerPath(
  profile: Pick<LearnerProfile, 'fundSlug' | 'idcc'>,
  modules: readonly ModuleInfo[],
  started: ReadonlySet<string>,
): (ModuleInfo & { planned: boolean })[] {
  const path: (ModuleInfo & { planned: boolean })[] = [];
  const slots = new Map<string, ModuleInfo[]>();
  for (const m of modules) {
    if (!m.active) continue;
    const key = `${m.trackId}|${m.theme}|${m.position ?? 1}`;
    slots.set(key, [...(slots.get(key) ?? []), m]);
  }
  for (const candidates of slots.values()) {
    const common = candidates.find((m) => m.fundSlug === null);
    if (common) {
      path.push({ ...common, planned: true });
      continue;
    }
    const ofFund = candidates.filter((m) => m.fundSlug === profile.fundSlug);
    const variant = profile.idcc ? ofFund.find((m) => m.branches.includes(profile.idcc as string)) : undefined;
    const chosen = variant ?? ofFund.find((m) => m.branches.length === 0);
    if (chosen) path.push({ ...chosen, planned: true });
  }
  const inPath = new Set(path.map((m) => m.id));
  for (const m of modules) if (started.has(m.id) && !inPath.has(m.id)) path.push({ ...m, planned: false });
  return path;
}

export function assembleFacts(input: {
  learnerId: string;
  course: { id: string; title: string };
  profile: LearnerProfile;
  /** fileNumber: the OPCO's file number for the learner's company in this course session, when known. */
  fund: { slug: string; name: string; historicalName: string | null; fileNumber?: string | null } | null;
  modules: readonly ModuleInfo[];
  themePositions: ReadonlyMap<string, number>;
  completions: readonly ModuleCompletion[];
  times: LearnerTimesView;
}): CertificateFacts {
  const byModule = new Map(input.completions.map((c) => [c.moduleId, c]));
  const timeOf = new Map(input.times.modules.map((t) => [t.moduleId, t]));
  const started = new Set([...byModule.keys(), ...timeOf.keys()]);
  const path = learnerPath(input.profile, input.modules, started);
  return {
    learner: {
      id: input.learnerId,
      civility: CIVILITY[input.profile.civility],
      familyName: input.profile.familyName,
      givenName: input.profile.givenName,
    },
    company: { name: input.profile.companyName, siret: printableSiret(input.profile.companySiret) },
    course: input.course,
    fund: input.fund ? { ...input.fund, fileNumber: input.fund.fileNumber ?? null } : null,
    // The planned duration is the sum of the nominal durations of the learner's programme modules.
    plannedMinutes: path.filter((m) => m.planned).reduce((n, m) => n + m.nominalMinutes, 0),
    modules: path.map((m) => {
      const done = byModule.get(m.id);
      const time = timeOf.get(m.id);
      return {
        id: m.id,
        title: m.title,
        trunk: m.trunk,
        // Theme order first, then the module's place in its theme.
        order: (input.themePositions.get(`${m.trackId}|${m.theme}`) ?? 999) * 100 + (m.position ?? 1),
        planned: m.planned,
        nominalMinutes: m.nominalMinutes,
        creditedSeconds: time?.creditedSeconds ?? 0,
        firstActivityAt: time?.firstAt ?? done?.startedAt ?? null,
        lastActivityAt: time?.lastAt ?? done?.completedAt ?? null,
        completedAt: done?.completedAt ?? null,
      };
    }),
    commonTrunkEstimatedSeconds: input.times.lmsEstimatedSeconds ?? null,
    commonTrunkActivity: input.times.lmsActivity ?? null,
    // Per-module credited time has each second in one module only, so the sum is the in-tool total.
    totalCreditedSeconds: null,
    timeAccounting: { algorithm: input.times.algorithm, params: toJson(input.times.params) },
  };
}

/** "123 456 782 00002" as on French documents, whatever spacing the profile was typed with. */
function printableSiret(siret: string): string {
  const digits = normaliseSiret(siret);
  return /^\d{14}$/.test(digits) ? formatSiret(digits) : siret;
}

/** Parameters are printed and signed: keep them to canonical-JSON values (integers, text, flags). */
function toJson(value: unknown): Json {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : String(value);
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toJson(v)]),
    );
  }
  return String(value);
}

/** Facts from the catalog (profile, modules, completions) and the time tracking. */
export function catalogFactsSource(db: Db, times: TimesPort): FactsSource {
  return {
    load: async (learnerId, courseId) => {
      const profile = await getLearnerProfile(db, learnerId);
      if (!profile) return null;
      const [funds, modules, themes, completions, view, title] = await Promise.all([
        listFunds(db, { includeInactive: true }),
        listModules(db, { includeInactive: true }),
        listThemes(db),
        listCompletions(db, { learnerId, courseId }),
        times(db, learnerId, courseId),
        courseTitle(db, courseId),
      ]);
      const fund = funds.find((f) => f.slug === profile.fundSlug);
      // Taken at issue time: a number set later reissues the certificate (src/file-numbers).
      const fileNumber = fund
        ? await fileNumberFor(db, { fundSlug: fund.slug, courseId, siret: profile.companySiret })
        : null;
      return assembleFacts({
        learnerId,
        course: { id: courseId, title: title ?? themes[0]?.trackTitle ?? 'Formation' },
        profile,
        // The OPCA of 2017 is the branch's own where it was not the fund's (funds.json).
        fund: fund
          ? {
              slug: fund.slug,
              name: fund.name,
              historicalName: profile.branchHistoricalName ?? fund.historicalName,
              fileNumber,
            }
          : null,
        modules,
        themePositions: new Map(themes.map((t) => [`${t.trackId}|${t.slug}`, t.position])),
        completions,
        times: view,
      });
    },
  };
}

/**
 * (learner, course) pairs that may have just met their course's rule: a module completed since `since`,
 * or, in courses whose rule is time only, enough credited time. The sweep checks each with the full rule.
 */
export async function candidatePairs(
  db: Db,
  since: Date,
  courseTimes: (db: Db, courseId: string) => Promise<Array<{ learnerId: string; creditedSeconds: number }>>,
): Promise<Array<{ learnerId: string; courseId: string }>> {
  const pairs = new Map<string, { learnerId: string; courseId: string }>();
  for (const c of await listCompletions(db, { completedOnly: true })) {
    if (c.completedAt && c.completedAt >= since) pairs.set(`${c.learnerId}|${c.courseId}`, c);
  }
  const timeOnly = await db
    .selectFrom('certificate_rules')
    .select(['course_id', 'min_credited_minutes'])
    .where('auto_issue', '=', true)
    .where('modules_required', '=', 'none')
    .execute();
  for (const rule of timeOnly) {
    for (const t of await courseTimes(db, rule.course_id)) {
      if (t.creditedSeconds >= (rule.min_credited_minutes ?? 0) * 60) {
        pairs.set(`${t.learnerId}|${rule.course_id}`, { learnerId: t.learnerId, courseId: rule.course_id });
      }
    }
  }
  if (pairs.size === 0) return [];
  const issued = await db.selectFrom('certificates').select(['learner_id', 'course_id']).distinct().execute();
  for (const c of issued) pairs.delete(`${c.learner_id}|${c.course_id}`);
  return [...pairs.values()];
}
