/**
 * Connection-time crediting, `beats-v2` (specification: docs/time-accounting.md; implementation notes:
 * src/tracking/README.md). Pure functions over milliseconds of server time: the ingest, the
 * `time recompute` command, the certificates and the exports all credit through these, so the same
 * evidence always gives the same figures, to the second.
 * One file on purpose: these are the pure rules of one specification (profiles, per-item decisions, union,
 * attribution, cap, flags, days), sharing the profile and parameter types; no I/O, all tested together.
 */

import { addDays, formatDuration as formatSeconds, parisDay, parisDayStart } from '../common/paris-time.js';

/** The algorithm every total is computed with now (docs/time-accounting.md, "Versions"). */
export const ALGORITHM = 'beats-v2' as const;
export const ALGORITHMS = ['beats-v1', 'beats-v2'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/**
 * How a tab's beats become runs. `standard` is the specification's; `accelerated` is the same rules at
 * 1/30 of the time scale so that a real-browser test fits in seconds. The profile of each tab is chosen
 * by the server (it is sealed in the tracker ticket), recorded on the tab and in its open event, and
 * refused in production unless `standard`.
 */
export interface RunProfile {
  readonly name: 'standard' | 'accelerated';
  /** The client beats this often while the page is visible and the learner active. */
  readonly beatIntervalMs: number;
  /** No input for this long (and no media playing) = idle. */
  readonly idleMs: number;
  /** Consecutive accepted beats at most this far apart belong to one run (2.5 × the interval). */
  readonly gapMs: number;
  /** A beat closer than this to the tab's previous accepted beat is rejected ("more than one per 20 s"). */
  readonly minSpacingMs: number;
  /** Flood guard: at most `rateMaxItems` items per tab per window; beyond, items are counted, not stored. */
  readonly rateWindowMs: number;
  readonly rateMaxItems: number;
}

export const PROFILES: Readonly<Record<RunProfile['name'], RunProfile>> = Object.freeze({
  standard: Object.freeze({
    name: 'standard',
    beatIntervalMs: 30_000,
    idleMs: 180_000,
    gapMs: 75_000,
    minSpacingMs: 20_000,
    rateWindowMs: 60_000,
    rateMaxItems: 20,
  }),
  accelerated: Object.freeze({
    name: 'accelerated',
    beatIntervalMs: 1_000,
    idleMs: 6_000,
    gapMs: 2_500,
    minSpacingMs: 666,
    rateWindowMs: 2_000,
    rateMaxItems: 20,
  }),
});

/** Crediting parameters, recorded beside every total. */
export interface CreditParams {
  readonly algorithm: Algorithm;
  /** Credited time per module ≤ capFactor × nominal duration. */
  readonly capFactor: number;
  /** A (Europe/Paris) day with more measured time than this is flagged for review. */
  readonly longDayMs: number;
  readonly timeZone: 'Europe/Paris';
}

/**
 * beats-v1: a run ends only at a gap or the tab's close (it bridged stop beats), and every beat, stop beats
 * included, obeyed the spacing rule. Kept to re-derive v1 figures from the same evidence (`toV1Runs`).
 */
export const BEATS_V1: CreditParams = Object.freeze({
  algorithm: 'beats-v1',
  capFactor: 3,
  longDayMs: 4 * 3600_000,
  timeZone: 'Europe/Paris',
});

/**
 * beats-v2: a stop beat (`hidden`, `idle`, `pagehide`) ends its run at its receive time and no run bridges
 * a stop; the spacing rule applies to periodic beats only; the idle grace is credited up to the idle beat.
 */
export const BEATS_V2: CreditParams = Object.freeze({
  algorithm: 'beats-v2',
  capFactor: 3,
  longDayMs: 4 * 3600_000,
  timeZone: 'Europe/Paris',
});

export const PARAMS: Readonly<Record<Algorithm, CreditParams>> = Object.freeze({
  'beats-v1': BEATS_V1,
  'beats-v2': BEATS_V2,
});

/** Plausibility thresholds (flags for review, never refusals): docs/time-accounting.md, "Plausibility flags". */
export const PLAUSIBILITY = Object.freeze({
  /** A module completed with credited time under this share of its nominal duration: "parcouru rapidement". */
  completedQuicklyRatio: 1 / 3,
  /** A run longer than this whose beats are perfectly regular and report no input: flagged for review. */
  regularRunMs: 3600_000,
  /** "Perfectly regular": the longest and shortest steps between periodic beats differ by at most this. */
  regularToleranceMs: 1_000,
});

// ---------------------------------------------------------------------------------------------------------
// Europe/Paris days

// One implementation for the whole service (src/common/paris-time.ts); `parisDay` takes an instant in ms
// here as well.
export { addDays, parisDay };

/** A day's digest waits this long after Paris midnight, for the beats acknowledged at 23:59:59 to commit. */
export const DIGEST_DELAY_MS = 10 * 60_000;

/**
 * The Europe/Paris days whose digest is due at `now`, oldest first: yesterday (from 00:10, see
 * DIGEST_DELAY_MS), and the days before it since the last kept digest (a service stopped for a few days
 * catches up), at most `maxDays` of them. None when yesterday's is kept.
 */
export function digestDaysDue(lastKeptDay: string | null, now: number, maxDays = 7): string[] {
  const yesterday = addDays(parisDay(now - DIGEST_DELAY_MS), -1);
  let first = lastKeptDay === null ? yesterday : addDays(lastKeptDay, 1);
  const earliest = addDays(yesterday, -(maxDays - 1));
  if (first < earliest) first = earliest;
  const days: string[] = [];
  for (let d = first; d <= yesterday; d = addDays(d, 1)) days.push(d);
  return days;
}

/**
 * The first instant of the Paris day after the one containing `ms`. Paris changes its offset at 02:00 or
 * 03:00, never at midnight, so midnight exists once and is 22:00 or 23:00 UTC the evening before.
 */
export function nextParisMidnight(ms: number): number {
  return parisDayStart(addDays(parisDay(ms), 1)).getTime();
}

/** Splits [startMs, endMs) at Paris midnights. */
export function splitByParisDay(
  startMs: number,
  endMs: number,
): Array<{ day: string; startMs: number; endMs: number }> {
  const out: Array<{ day: string; startMs: number; endMs: number }> = [];
  let a = startMs;
  while (a < endMs) {
    const b = Math.min(endMs, nextParisMidnight(a));
    out.push({ day: parisDay(a), startMs: a, endMs: b });
    a = b;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Crediting: runs → union per learner and course → attribution per module → caps and flags

/** A run: [startMs, endMs] = [page open or first beat, last accepted beat] of one tab. */
export interface RunInterval {
  runId: string;
  tabId: string;
  moduleId: string;
  startMs: number;
  endMs: number;
  beatCount?: number;
  /** beats-v2 evidence: the stop beat that ended the run, its receive time, and the run's end before it. */
  stopCause?: StopCause | null;
  stopAtMs?: number | null;
  beforeStopMs?: number | null;
}

/** The tab that had the most recent input from `atMs` on (server-side "focus" events). */
export interface FocusMark {
  tabId: string;
  atMs: number;
}

/**
 * The measured (pre-cap) tally of one learner in one course: what totals rows store. Credited figures,
 * caps and flags are derived from it by `finalizeTally`, so the incremental path and the full recompute
 * share every rule after the union.
 */
export interface CourseTally {
  /** Union of all runs, ms. */
  measuredMs: number;
  modules: Record<string, ModuleTally>;
  /** Per Paris day: union ms, and how much of it each module was attributed. */
  days: Record<string, { measuredMs: number; modules: Record<string, number> }>;
  /** Run profiles of the tabs whose runs were credited (sorted): which run parameters applied. */
  profiles: string[];
}

export interface ModuleTally {
  /** Largest nominal duration among the learner's tabs of this module (a new module version may change it). */
  nominalMinutes: number;
  /** Union seconds attributed to this module, ms, before the cap. */
  measuredMs: number;
  firstMs: number | null;
  lastMs: number | null;
  /** Items of this module's tabs refused by the ingest (kept as evidence): shown as a flag. */
  rejectedItems: number;
}

/**
 * `regular_beats` (a run over an hour of perfectly regular beats reporting no input) is added when totals are
 * read, from the runs; `completed_quickly` is decided where completion is known (`completedQuickly`).
 */
export type ModuleFlag = 'over_cap' | 'long_day' | 'rejected_items' | 'regular_beats';
export type CourseFlag = ModuleFlag;

export interface ModuleCredit {
  moduleId: string;
  nominalMinutes: number;
  capMs: number;
  measuredMs: number;
  creditedMs: number;
  /** Kept and flagged, not credited. */
  overCapMs: number;
  firstMs: number | null;
  lastMs: number | null;
  /** Paris days with time in this module. */
  days: string[];
  rejectedItems: number;
  flags: ModuleFlag[];
}

export interface DayCredit {
  day: string;
  measuredMs: number;
  modules: Record<string, number>;
  longDay: boolean;
}

export interface CourseCredit {
  algorithm: Algorithm;
  params: CreditParams;
  /** The run parameters that built the runs credited here, by profile name. */
  runProfiles: Record<string, RunProfile>;
  measuredMs: number;
  creditedMs: number;
  rejectedItems: number;
  modules: ModuleCredit[];
  days: DayCredit[];
  flags: CourseFlag[];
}

export function emptyTally(): CourseTally {
  return { measuredMs: 0, modules: {}, days: {}, profiles: [] };
}

export function noteProfile(tally: CourseTally, profile: string): void {
  if (!tally.profiles.includes(profile)) tally.profiles = [...tally.profiles, profile].sort();
}

/** Records a module's nominal duration (from a tab of it); the largest one wins, so evidence only raises caps. */
export function noteModule(tally: CourseTally, moduleId: string, nominalMinutes: number): void {
  const m = tally.modules[moduleId];
  if (m) m.nominalMinutes = Math.max(m.nominalMinutes, nominalMinutes);
  else tally.modules[moduleId] = { nominalMinutes, measuredMs: 0, firstMs: null, lastMs: null, rejectedItems: 0 };
}

export function addRejected(tally: CourseTally, moduleId: string, count = 1): void {
  const m = tally.modules[moduleId];
  if (!m) throw new Error(`addRejected: module ${moduleId} has no nominal duration noted`);
  m.rejectedItems += count;
}

/**
 * Adds [startMs, endMs) of union time attributed to a module. Callers guarantee the span is not already
 * counted (the union sweep, or an extension that overlaps no other run).
 */
export function addAttributed(tally: CourseTally, moduleId: string, startMs: number, endMs: number): void {
  if (endMs <= startMs) return;
  const m = tally.modules[moduleId];
  if (!m) throw new Error(`addAttributed: module ${moduleId} has no nominal duration noted`);
  const len = endMs - startMs;
  m.measuredMs += len;
  m.firstMs = m.firstMs === null ? startMs : Math.min(m.firstMs, startMs);
  m.lastMs = m.lastMs === null ? endMs : Math.max(m.lastMs, endMs);
  tally.measuredMs += len;
  for (const part of splitByParisDay(startMs, endMs)) {
    let day = tally.days[part.day];
    if (!day) {
      day = { measuredMs: 0, modules: {} };
      tally.days[part.day] = day;
    }
    const l = part.endMs - part.startMs;
    day.measuredMs += l;
    day.modules[moduleId] = (day.modules[moduleId] ?? 0) + l;
  }
}

/** One elementary piece of the union: [startMs, endMs) credited to one run. */
export interface UnionSegment {
  startMs: number;
  endMs: number;
  runId: string;
  tabId: string;
  moduleId: string;
}

/**
 * The union of the runs, cut into pieces each attributed to one run. Where runs overlap, the piece goes to
 * the tab with the most recent input: the tab whose latest focus mark at the piece's start is the most
 * recent; without focus marks, the run that started last (the tab the learner turned to last); remaining
 * ties by tab id then run id, so the result never depends on input order.
 */
export function unionSegments(runs: readonly RunInterval[], focus: readonly FocusMark[] = []): UnionSegment[] {
  const live = runs.filter((r) => r.endMs > r.startMs);
  if (live.length === 0) return [];
  const focusByTab = new Map<string, number[]>();
  for (const f of [...focus].sort((a, b) => a.atMs - b.atMs)) {
    const list = focusByTab.get(f.tabId) ?? [];
    list.push(f.atMs);
    focusByTab.set(f.tabId, list);
  }
  const lastFocusAt = (tabId: string, at: number): number => {
    const list = focusByTab.get(tabId);
    if (!list) return Number.NEGATIVE_INFINITY;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid] as number) <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? Number.NEGATIVE_INFINITY : (list[lo - 1] as number);
  };

  const minStart = Math.min(...live.map((r) => r.startMs));
  const maxEnd = Math.max(...live.map((r) => r.endMs));
  const cuts = new Set<number>();
  for (const r of live) {
    cuts.add(r.startMs);
    cuts.add(r.endMs);
  }
  for (const f of focus) if (f.atMs > minStart && f.atMs < maxEnd) cuts.add(f.atMs);
  const points = [...cuts].sort((a, b) => a - b);

  const byStart = [...live].sort((a, b) => a.startMs - b.startMs);
  let next = 0;
  let active: RunInterval[] = [];
  const out: UnionSegment[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i] as number;
    const b = points[i + 1] as number;
    while (next < byStart.length && (byStart[next] as RunInterval).startMs <= a)
      active.push(byStart[next++] as RunInterval);
    active = active.filter((r) => r.endMs > a);
    if (active.length === 0) continue;
    let winner = active[0] as RunInterval;
    let winnerFocus = lastFocusAt(winner.tabId, a);
    for (let k = 1; k < active.length; k++) {
      const r = active[k] as RunInterval;
      const f = lastFocusAt(r.tabId, a);
      if (
        f > winnerFocus ||
        (f === winnerFocus &&
          (r.startMs > winner.startMs ||
            (r.startMs === winner.startMs &&
              (r.tabId > winner.tabId || (r.tabId === winner.tabId && r.runId > winner.runId)))))
      ) {
        winner = r;
        winnerFocus = f;
      }
    }
    const last = out[out.length - 1];
    if (last && last.endMs === a && last.runId === winner.runId) last.endMs = b;
    else out.push({ startMs: a, endMs: b, runId: winner.runId, tabId: winner.tabId, moduleId: winner.moduleId });
  }
  return out;
}

/** The full tally from evidence: what `time recompute` rebuilds. */
export function tallyCourse(
  runs: readonly RunInterval[],
  focus: readonly FocusMark[],
  nominalMinutes: Readonly<Record<string, number>>,
  rejectedItems: Readonly<Record<string, number>> = {},
  profiles: readonly string[] = [],
): CourseTally {
  const tally = emptyTally();
  for (const p of profiles) noteProfile(tally, p);
  for (const moduleId of Object.keys(nominalMinutes).sort()) {
    noteModule(tally, moduleId, nominalMinutes[moduleId] as number);
  }
  for (const moduleId of Object.keys(rejectedItems).sort()) {
    if (moduleId in nominalMinutes) addRejected(tally, moduleId, rejectedItems[moduleId]);
  }
  for (const r of runs) {
    if (!(r.moduleId in nominalMinutes)) throw new Error(`tallyCourse: no nominal duration for module ${r.moduleId}`);
  }
  for (const s of unionSegments(runs, focus)) addAttributed(tally, s.moduleId, s.startMs, s.endMs);
  return tally;
}

/** Applies caps and flags. Credited per module = min(measured, capFactor × nominal); the rest is kept, flagged. */
export function finalizeTally(tally: CourseTally, params: CreditParams = BEATS_V2): CourseCredit {
  const days: DayCredit[] = Object.keys(tally.days)
    .sort()
    .map((day) => {
      const d = tally.days[day] as CourseTally['days'][string];
      const modules: Record<string, number> = {};
      for (const k of Object.keys(d.modules).sort()) modules[k] = d.modules[k] as number;
      return { day, measuredMs: d.measuredMs, modules, longDay: d.measuredMs > params.longDayMs };
    });
  const modules: ModuleCredit[] = Object.keys(tally.modules)
    .sort()
    .map((moduleId) => {
      const m = tally.modules[moduleId] as ModuleTally;
      const capMs = Math.round(params.capFactor * m.nominalMinutes * 60_000);
      const creditedMs = Math.min(m.measuredMs, capMs);
      const moduleDays = days.filter((d) => (d.modules[moduleId] ?? 0) > 0);
      const flags: ModuleFlag[] = [];
      if (m.measuredMs > capMs) flags.push('over_cap');
      if (moduleDays.some((d) => d.longDay)) flags.push('long_day');
      if (m.rejectedItems > 0) flags.push('rejected_items');
      return {
        moduleId,
        nominalMinutes: m.nominalMinutes,
        capMs,
        measuredMs: m.measuredMs,
        creditedMs,
        overCapMs: m.measuredMs - creditedMs,
        firstMs: m.firstMs,
        lastMs: m.lastMs,
        days: moduleDays.map((d) => d.day),
        rejectedItems: m.rejectedItems,
        flags,
      };
    });
  const flags: CourseFlag[] = [];
  if (modules.some((m) => m.flags.includes('over_cap'))) flags.push('over_cap');
  if (days.some((d) => d.longDay)) flags.push('long_day');
  if (modules.some((m) => m.rejectedItems > 0)) flags.push('rejected_items');
  const runProfiles: Record<string, RunProfile> = {};
  for (const name of tally.profiles) {
    const profile = PROFILES[name as RunProfile['name']];
    if (profile) runProfiles[name] = profile;
  }
  return {
    algorithm: params.algorithm,
    params,
    runProfiles,
    measuredMs: tally.measuredMs,
    creditedMs: modules.reduce((sum, m) => sum + m.creditedMs, 0),
    rejectedItems: modules.reduce((sum, m) => sum + m.rejectedItems, 0),
    modules,
    days,
    flags,
  };
}

/** Runs + focus marks + nominal durations → credited figures of one learner in one course. */
export function creditCourse(input: {
  runs: readonly RunInterval[];
  focus?: readonly FocusMark[];
  nominalMinutes: Readonly<Record<string, number>>;
  rejectedItems?: Readonly<Record<string, number>>;
  params?: CreditParams;
}): CourseCredit {
  return finalizeTally(
    tallyCourse(input.runs, input.focus ?? [], input.nominalMinutes, input.rejectedItems ?? {}),
    input.params ?? BEATS_V2,
  );
}

/**
 * The runs beats-v1 would have built from the same evidence (`time diff-versions`, `time recompute
 * --algorithm beats-v1`). beats-v1 differed in two ways: a stop beat closer than `minSpacingMs` to the
 * run's previous beat was refused (the run ended at that previous beat), and a run went on through a stop
 * when the next beat came within `gapMs`. So, per tab in time order, a run ended by a stop is joined to the
 * next run when that run's first beat is within `gapMs` of where v1 ended it. A lone beat closer than
 * `minSpacingMs` to that end was refused by v1 and is skipped. Runs recorded without stop beats (every run
 * of beats-v1 evidence, and of a tracker that sends no cause) come out unchanged. Approximation, documented
 * in docs/time-accounting.md: when a run's first beat was refused by v1 but its later beats were not,
 * the join is made at the first beat rather than the second, which can only differ when the second beat
 * arrived more than `gapMs` after v1's end.
 */
export function toV1Runs(runs: readonly RunInterval[], profileOfTab: (tabId: string) => RunProfile): RunInterval[] {
  const byTab = new Map<string, RunInterval[]>();
  for (const r of runs) byTab.set(r.tabId, [...(byTab.get(r.tabId) ?? []), r]);
  const v1End = (r: RunInterval, profile: RunProfile): number => {
    if (!r.stopCause) return r.endMs;
    const stopAt = r.stopAtMs ?? r.endMs;
    if (r.beforeStopMs !== null && r.beforeStopMs !== undefined && stopAt - r.beforeStopMs < profile.minSpacingMs) {
      return r.beforeStopMs;
    }
    return stopAt;
  };
  const out: RunInterval[] = [];
  for (const tabId of [...byTab.keys()].sort()) {
    const profile = profileOfTab(tabId);
    const list = (byTab.get(tabId) as RunInterval[]).sort(
      (a, b) => a.startMs - b.startMs || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0),
    );
    let cur: RunInterval | null = null;
    let curStopped = false;
    for (const r of list) {
      if (cur && curStopped && r.startMs >= cur.endMs && r.startMs - cur.endMs <= profile.gapMs) {
        if (r.startMs - cur.endMs < profile.minSpacingMs && (r.beatCount ?? 1) <= 1) continue;
        cur.endMs = Math.max(cur.endMs, v1End(r, profile));
        cur.beatCount = (cur.beatCount ?? 0) + (r.beatCount ?? 0);
        curStopped = Boolean(r.stopCause);
        continue;
      }
      if (cur) out.push(cur);
      cur = {
        runId: r.runId,
        tabId: r.tabId,
        moduleId: r.moduleId,
        startMs: r.startMs,
        endMs: Math.max(r.startMs, v1End(r, profile)),
        ...(r.beatCount !== undefined ? { beatCount: r.beatCount } : {}),
      };
      curStopped = Boolean(r.stopCause);
    }
    if (cur) out.push(cur);
  }
  return out;
}

/**
 * Whether a run looks scripted: longer than `regularRunMs`, its periodic beats perfectly regular (steps
 * within `regularToleranceMs` of each other), and not one beat reporting an input. Flagged for review only.
 */
export function isRegularRun(run: {
  startMs: number;
  endMs: number;
  beatCount: number;
  minStepMs: number | null;
  maxStepMs: number | null;
  inputBeats: number;
}): boolean {
  return (
    run.endMs - run.startMs > PLAUSIBILITY.regularRunMs &&
    run.beatCount >= 3 &&
    run.minStepMs !== null &&
    run.maxStepMs !== null &&
    run.maxStepMs - run.minStepMs <= PLAUSIBILITY.regularToleranceMs &&
    run.inputBeats === 0
  );
}

/** A module marked completed with credited time under a third of its nominal duration: "parcouru rapidement". */
export function completedQuickly(completed: boolean, creditedSeconds: number, nominalMinutes: number): boolean {
  return completed && creditedSeconds < PLAUSIBILITY.completedQuicklyRatio * nominalMinutes * 60;
}

/** A merged stretch of presence (the exports' "connection log" rows): touching or overlapping runs joined. */
export interface PresenceSession {
  startMs: number;
  endMs: number;
  measuredMs: number;
  moduleIds: string[];
  tabIds: string[];
  beatCount: number;
}

export function presenceSessions(runs: readonly RunInterval[], focus: readonly FocusMark[] = []): PresenceSession[] {
  const segments = unionSegments(runs, focus);
  const sessions: PresenceSession[] = [];
  const runsById = new Map(runs.map((r) => [r.runId, r]));
  let current: (PresenceSession & { runIds: Set<string> }) | null = null;
  const close = () => {
    if (!current) return;
    current.beatCount = [...current.runIds].reduce((n, id) => n + (runsById.get(id)?.beatCount ?? 0), 0);
    const { runIds: _ignored, ...session } = current;
    sessions.push({ ...session, moduleIds: [...new Set(session.moduleIds)].sort() });
    current = null;
  };
  for (const s of segments) {
    if (!current || current.endMs !== s.startMs) {
      close();
      current = {
        startMs: s.startMs,
        endMs: s.endMs,
        measuredMs: 0,
        moduleIds: [],
        tabIds: [],
        beatCount: 0,
        runIds: new Set(),
      };
    }
    current.endMs = s.endMs;
    current.measuredMs += s.endMs - s.startMs;
    current.moduleIds.push(s.moduleId);
    if (!current.tabIds.includes(s.tabId)) current.tabIds.push(s.tabId);
    current.runIds.add(s.runId);
  }
  close();
  // Runs hidden entirely behind another tab still belong to the stretch they fall in.
  for (const r of runs) {
    if (r.endMs <= r.startMs) continue;
    const session = sessions.find((x) => x.startMs <= r.startMs && r.endMs <= x.endMs);
    if (session && !session.tabIds.includes(r.tabId)) session.tabIds.push(r.tabId);
  }
  return sessions;
}

// ---------------------------------------------------------------------------------------------------------
// Ingest: one item (open, beat, close) of one tab against that tab's state, at server time `nowMs`

export type ItemKind = 'open' | 'beat' | 'close';
/** Why a beat was sent. `interval` and `resume` are what trackers before beats-v2 called a periodic beat. */
export type BeatCause = 'periodic' | 'hidden' | 'idle' | 'pagehide' | 'interval' | 'resume';
export type StopCause = 'hidden' | 'idle' | 'pagehide';

/** A stop beat ends its run (beats-v2). A beat without a cause (a tracker older than causes) is periodic. */
export function stopCauseOf(cause: BeatCause | undefined): StopCause | null {
  return cause === 'hidden' || cause === 'idle' || cause === 'pagehide' ? cause : null;
}

export interface TrackedItem {
  kind: ItemKind;
  seq: number;
  clientTime?: string | null;
  /** Milliseconds since the learner's last input, measured by the page's own monotonic clock. */
  inputAgoMs?: number | null;
  media?: boolean;
  cause?: BeatCause;
}

export type RejectReason =
  | 'seq_not_increasing'
  | 'too_frequent'
  | 'tab_closed'
  | 'session_expired'
  | 'not_learner'
  | 'already_open'
  /** Beyond the per-tab flood guard, once acknowledged (inbox): kept as evidence, never credited. */
  | 'rate_limited'
  /** The tab id belongs to another page (another learner, module or profile): kept, never credited. */
  | 'tab_mismatch';

export interface RunState {
  id: string;
  startMs: number;
  /** The end of the run: its last periodic beat, or where its stop beat ended it. */
  lastBeatMs: number;
  beatCount: number;
  firstSeq: number;
  lastSeq: number;
  rollingHash: string;
  sealed: boolean;
  /** The stop beat that ended the run (beats-v2), null when a gap or the tab's close ended it. */
  stopCause: StopCause | null;
  /** Receive time of that stop beat. */
  stopAtMs: number | null;
  /** The run's end just before its stop beat (what beats-v1 would have kept had it refused the stop). */
  beforeStopMs: number | null;
  /** Shortest and longest step between consecutive periodic beats of the run (plausibility). */
  minStepMs: number | null;
  maxStepMs: number | null;
  /** Beats of the run that reported an input since the beat before (plausibility). */
  inputBeats: number;
}

/** The fields of a run that beats-v2 adds to the v1 ones, empty. */
export const NO_STOP: Pick<
  RunState,
  'stopCause' | 'stopAtMs' | 'beforeStopMs' | 'minStepMs' | 'maxStepMs' | 'inputBeats'
> = Object.freeze({
  stopCause: null,
  stopAtMs: null,
  beforeStopMs: null,
  minStepMs: null,
  maxStepMs: null,
  inputBeats: 0,
});

export interface TabState {
  openedMs: number | null;
  closedMs: number | null;
  lastSeq: number | null;
  /** Seqs below lastSeq never received, as inclusive ranges: only these may still arrive (late, rejected). */
  missing: Array<[number, number]>;
  lastAcceptedBeatMs: number | null;
  run: RunState | null;
}

export const MAX_MISSING_RANGES = 32;

export function newTabState(): TabState {
  return { openedMs: null, closedMs: null, lastSeq: null, missing: [], lastAcceptedBeatMs: null, run: null };
}

export type ItemDecision =
  | { status: 'duplicate' }
  | { status: 'rejected'; reason: RejectReason }
  | { status: 'opened' }
  | { status: 'closed'; sealRun: boolean }
  /** A stop beat with no run to end (the run already ended at a gap or an earlier stop): kept, credits nothing. */
  | { status: 'stop_without_run'; cause: StopCause }
  | {
      status: 'accepted';
      run: 'extend' | 'start';
      startMs: number;
      sealPrevious: boolean;
      /** Set for a stop beat: the run ends at `endMs` and is sealed. */
      stop: StopCause | null;
      /** Where the run ends after this beat (its receive time, or the idle grace's end for an idle beat). */
      endMs: number;
    };

export interface SessionStanding {
  /** The bearer token (or the tracker ticket) was genuine but expired: the item is kept as evidence only. */
  expired: boolean;
  /** Course team, staff, or anyone "viewing as" a learner: never credited. */
  notLearner: boolean;
}

function inMissing(missing: ReadonlyArray<[number, number]>, seq: number): boolean {
  return missing.some(([a, b]) => a <= seq && seq <= b);
}

function removeFromMissing(missing: Array<[number, number]>, seq: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [a, b] of missing) {
    if (seq < a || seq > b) out.push([a, b]);
    else {
      if (a < seq) out.push([a, seq - 1]);
      if (seq < b) out.push([seq + 1, b]);
    }
  }
  return out;
}

/**
 * Where an idle beat ends its run: the idle grace is credited up to the idle beat and nothing after. The
 * page sends it `idleMs` after the last input; a beat that arrives later (a throttled timer) ends the run
 * at the grace's end, `idleMs` after the reported input, never before the run's previous end.
 */
export function idleEndMs(item: TrackedItem, nowMs: number, previousEndMs: number, profile: RunProfile): number {
  if (item.media || item.inputAgoMs === undefined || item.inputAgoMs === null) return nowMs;
  const graceEnd = nowMs - Math.max(0, item.inputAgoMs) + profile.idleMs;
  return Math.max(previousEndMs, Math.min(nowMs, graceEnd));
}

/**
 * Decides what an item does under beats-v2, without side effects. Idempotence on (tabId, seq): a seq at or
 * below the highest seen that was not a known gap has been received before → `duplicate`, nothing changes.
 *
 * - A periodic beat closer than `minSpacingMs` to the tab's previous accepted beat is refused
 *   (`too_frequent`), unless that beat was a stop: the run ended there, and a learner coming back starts a
 *   new run at once.
 * - A stop beat is never refused for spacing. It ends the live run at its receive time (an idle beat: at the
 *   end of the idle grace); with no live run it is kept and credits nothing, except right after the page
 *   open, where it ends the run the open started.
 * - No run bridges a stop: the beat after a stop starts a new run at its own receive time.
 */
export function decideItem(
  tab: TabState,
  item: TrackedItem,
  nowMs: number,
  profile: RunProfile,
  standing: SessionStanding,
): ItemDecision {
  if (tab.lastSeq !== null && item.seq <= tab.lastSeq) {
    if (!inMissing(tab.missing, item.seq)) return { status: 'duplicate' };
    // A seq that skipped ahead earlier and arrives now: never credited, kept as evidence.
    if (item.kind === 'beat') return { status: 'rejected', reason: 'seq_not_increasing' };
  }
  if (item.kind === 'open') {
    if (tab.openedMs !== null || tab.run !== null || tab.lastSeq !== null) {
      return { status: 'rejected', reason: 'already_open' };
    }
    return { status: 'opened' };
  }
  if (item.kind === 'close') return { status: 'closed', sealRun: tab.run !== null && !tab.run.sealed };
  if (standing.notLearner) return { status: 'rejected', reason: 'not_learner' };
  if (standing.expired) return { status: 'rejected', reason: 'session_expired' };
  if (tab.closedMs !== null) return { status: 'rejected', reason: 'tab_closed' };
  const stop = stopCauseOf(item.cause);
  const run = tab.run;
  const afterStop = run !== null && run.stopCause !== null;
  if (
    stop === null &&
    !afterStop &&
    tab.lastAcceptedBeatMs !== null &&
    nowMs - tab.lastAcceptedBeatMs < profile.minSpacingMs
  ) {
    return { status: 'rejected', reason: 'too_frequent' };
  }
  const live =
    run !== null &&
    !run.sealed &&
    run.stopCause === null &&
    nowMs - run.lastBeatMs <= profile.gapMs &&
    nowMs >= run.lastBeatMs;
  const endOf = (previousEndMs: number) => (stop === 'idle' ? idleEndMs(item, nowMs, previousEndMs, profile) : nowMs);
  if (live) {
    const r = run as RunState;
    return {
      status: 'accepted',
      run: 'extend',
      startMs: r.startMs,
      sealPrevious: false,
      stop,
      endMs: endOf(r.lastBeatMs),
    };
  }
  // A tab's first run starts at its page-open event when the first beat follows it within the gap.
  const fromOpen =
    run === null && tab.openedMs !== null && nowMs - tab.openedMs <= profile.gapMs && nowMs >= tab.openedMs;
  const startMs = fromOpen ? (tab.openedMs as number) : nowMs;
  if (stop !== null && !fromOpen) return { status: 'stop_without_run', cause: stop };
  return {
    status: 'accepted',
    run: 'start',
    startMs,
    sealPrevious: run !== null && !run.sealed,
    stop,
    endMs: stop === null ? nowMs : endOf(startMs),
  };
}

/** The tab's seq bookkeeping after any non-duplicate item. */
export function advanceSeq(tab: TabState, seq: number): void {
  if (tab.lastSeq === null) {
    if (seq > 0) tab.missing = [[0, seq - 1]];
    tab.lastSeq = seq;
  } else if (seq > tab.lastSeq) {
    if (seq > tab.lastSeq + 1) tab.missing.push([tab.lastSeq + 1, seq - 1]);
    tab.lastSeq = seq;
  } else {
    tab.missing = removeFromMissing(tab.missing, seq);
  }
  // Bounded: the oldest gaps are forgotten, so a very late arrival there reads as a duplicate (never credited either way).
  if (tab.missing.length > MAX_MISSING_RANGES) tab.missing = tab.missing.slice(-MAX_MISSING_RANGES);
}

/** When the learner's latest input happened, by server time: the page reports "ms since input", never a clock. */
export function inputAtMs(item: TrackedItem, nowMs: number, profile: RunProfile): number {
  if (item.media) return nowMs;
  const ago = Math.min(Math.max(0, Math.round(item.inputAgoMs ?? profile.idleMs)), profile.idleMs);
  return nowMs - ago;
}

/** Per-learner focus state: which tab had the most recent input, so overlaps can be attributed. */
export interface FocusState {
  tabId: string | null;
  inputMs: number | null;
  lastMarkMs: number | null;
}

/**
 * An accepted beat may move the focus to its tab: when the tab is not the focused one and reports input
 * more recent than the focused tab's. Marks never go back in time.
 */
export function decideFocus(state: FocusState, tabId: string, inputMs: number): FocusMark | null {
  if (state.tabId === tabId) {
    state.inputMs = state.inputMs === null ? inputMs : Math.max(state.inputMs, inputMs);
    return null;
  }
  if (state.inputMs !== null && inputMs <= state.inputMs) return null;
  const atMs = state.lastMarkMs === null ? inputMs : Math.max(inputMs, state.lastMarkMs);
  state.tabId = tabId;
  state.inputMs = inputMs;
  state.lastMarkMs = atMs;
  return { tabId, atMs };
}

// ---------------------------------------------------------------------------------------------------------
// Display

/** Seconds stored, minutes shown: both floor, never round up. */
export function msToSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

export function floorMinutes(ms: number): number {
  return Math.floor(ms / 60_000);
}

/** Milliseconds in the one French duration style (src/common/paris-time.ts): « 1 h 05 », « 4 h », « 12 min ». */
export function formatDuration(ms: number): string {
  return formatSeconds(floorMinutes(ms) * 60);
}
