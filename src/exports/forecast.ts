/**
 * Completion forecast: how many learners of a cohort will hold their certificate by a given date.
 * Pure functions, no clock, no I/O (docs/exports.md, "Completion forecast", states the method).
 *
 * Time runs from registration (the learner's first launch in the course session) to the certificate's
 * first issuance. Learners without a certificate are censored at their current age: they are known not
 * to have it after that many days, nothing more. The Kaplan–Meier estimator of S(t), the share still
 * without a certificate t days after registration, uses every learner of the group, earlier and current
 * cohorts alike; the share expected to hold one by a date follows from it, learner by learner.
 *
 * Uncertainty: Greenwood's variance with the log–log ("exponential Greenwood", Kalbfleisch–Prentice)
 * transform, whose bounds stay inside [0, 1] and behave better than the plain ones on small groups.
 */

export const DAY_MS = 86_400_000;

/** Below these, a group's estimate is not shown as a forecast (too little data, said plainly). */
export const MIN_LEARNERS = 30;
export const MIN_CERTIFICATES = 5;

/** Two-sided 95 % normal quantile. */
export const Z95 = 1.959963984540054;

export interface SurvivalSubject {
  /** Days from registration to the certificate (event) or to now (censored). */
  time: number;
  event: boolean;
}

export interface KmStep {
  /** An event time, in days. */
  time: number;
  /** Learners still without a certificate just before `time` (censored at `time` included). */
  atRisk: number;
  events: number;
  /** Ŝ just after `time`. */
  survival: number;
  /** Greenwood's Σ d/(n(n−d)) up to and including `time` (Infinity once Ŝ reaches 0). */
  greenwood: number;
}

export interface KmFit {
  learners: number;
  events: number;
  /** The longest follow-up observed (event or censoring), in days: beyond it the curve is not known. */
  maxTime: number;
  steps: KmStep[];
}

export function kaplanMeier(subjects: readonly SurvivalSubject[]): KmFit {
  const sorted = subjects
    .filter((s) => Number.isFinite(s.time) && s.time >= 0)
    .slice()
    .sort((a, b) => a.time - b.time);
  const steps: KmStep[] = [];
  let atRisk = sorted.length;
  let survival = 1;
  let greenwood = 0;
  let events = 0;
  for (let i = 0; i < sorted.length; ) {
    const time = (sorted[i] as SurvivalSubject).time;
    let d = 0;
    let leaving = 0;
    while (i < sorted.length && (sorted[i] as SurvivalSubject).time === time) {
      if ((sorted[i] as SurvivalSubject).event) d++;
      leaving++;
      i++;
    }
    if (d > 0) {
      survival *= 1 - d / atRisk;
      greenwood = d === atRisk ? Number.POSITIVE_INFINITY : greenwood + d / (atRisk * (atRisk - d));
      steps.push({ time, atRisk, events: d, survival, greenwood });
      events += d;
    }
    atRisk -= leaving;
  }
  const maxTime = sorted.length === 0 ? 0 : (sorted[sorted.length - 1] as SurvivalSubject).time;
  return { learners: sorted.length, events, maxTime, steps };
}

/** Index of the last step at or before t (−1 before the first event). */
function stepIndex(fit: KmFit, t: number): number {
  let lo = 0;
  let hi = fit.steps.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((fit.steps[mid] as KmStep).time <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export interface Interval {
  estimate: number;
  lower: number;
  upper: number;
}

/**
 * A survival probability and its log–log band from its Greenwood sum: with v = Σ/(ln S)², the band is
 * S^exp(±z√v). S = 1 (no event yet) and S = 0 have no spread.
 */
export function logLogBand(survival: number, greenwood: number, z = Z95): Interval {
  if (survival >= 1) return { estimate: 1, lower: 1, upper: 1 };
  if (survival <= 0 || !Number.isFinite(greenwood)) return { estimate: Math.max(0, survival), lower: 0, upper: 0 };
  const logS = Math.log(survival);
  const se = Math.sqrt(greenwood) / Math.abs(logS);
  return {
    estimate: survival,
    lower: survival ** Math.exp(z * se),
    upper: survival ** Math.exp(-z * se),
  };
}

/** Ŝ(t) with its band; `extrapolated` when t lies beyond the longest follow-up. */
export function survivalAt(fit: KmFit, t: number, z = Z95): Interval & { extrapolated: boolean } {
  const i = stepIndex(fit, t);
  const step = i < 0 ? null : (fit.steps[i] as KmStep);
  return { ...logLogBand(step?.survival ?? 1, step?.greenwood ?? 0, z), extrapolated: t > fit.maxTime };
}

/**
 * The conditional survival S(d)/S(a): the chance that a learner still without a certificate a days after
 * registration is still without one d days after (a ≤ d), with the Greenwood sum over the event times
 * in (a, d] and its log–log band.
 */
export function conditionalSurvival(fit: KmFit, a: number, d: number, z = Z95): Interval {
  if (d <= a) return { estimate: 1, lower: 1, upper: 1 };
  const ia = stepIndex(fit, a);
  const id = stepIndex(fit, d);
  if (id === ia) return { estimate: 1, lower: 1, upper: 1 };
  const sa = ia < 0 ? 1 : (fit.steps[ia] as KmStep).survival;
  const ga = ia < 0 ? 0 : (fit.steps[ia] as KmStep).greenwood;
  const sd = (fit.steps[id] as KmStep).survival;
  const gd = (fit.steps[id] as KmStep).greenwood;
  if (sa <= 0) return { estimate: 0, lower: 0, upper: 0 };
  return logLogBand(sd / sa, gd - ga, z);
}

export interface ForecastLearner {
  registeredAtMs: number;
  /** First issuance of the learner's valid certificate, if any. */
  certifiedAtMs: number | null;
}

export interface CohortForecast {
  learners: number;
  /** Certificates held now. */
  certifiedNow: number;
  /** Expected share with a certificate by the date, and its band (fractions of 1). */
  share: number;
  lower: number;
  upper: number;
  /** Some learner would be followed beyond the longest follow-up observed: the curve is held flat there. */
  extrapolated: boolean;
}

/**
 * The share of a cohort expected to hold a certificate by `byMs`: 1 for a learner who has one by then;
 * for one still without it now, the chance of getting it between their age now and their age at the
 * date, 1 − S(d)/S(a) on the group's curve; averaged over the cohort. A date already past gives what
 * was observed. The band averages each learner's log–log band: the terms share one estimated curve, so
 * their errors move together. It is the uncertainty of the expected share, not of a cohort's chance.
 */
export function cohortForecast(
  fit: KmFit,
  learners: readonly ForecastLearner[],
  nowMs: number,
  byMs: number,
  z = Z95,
): CohortForecast {
  let share = 0;
  let lower = 0;
  let upper = 0;
  let certifiedNow = 0;
  let extrapolated = false;
  for (const l of learners) {
    if (l.certifiedAtMs !== null && l.certifiedAtMs <= nowMs) certifiedNow++;
    if (l.certifiedAtMs !== null && l.certifiedAtMs <= Math.min(byMs, nowMs)) {
      share++;
      lower++;
      upper++;
      continue;
    }
    if (byMs <= nowMs || l.certifiedAtMs !== null) continue;
    const a = Math.max(0, (nowMs - l.registeredAtMs) / DAY_MS);
    const d = Math.max(0, (byMs - l.registeredAtMs) / DAY_MS);
    if (d > fit.maxTime) extrapolated = true;
    const c = conditionalSurvival(fit, a, d, z);
    share += 1 - c.estimate;
    lower += 1 - c.upper;
    upper += 1 - c.lower;
  }
  const n = learners.length;
  return {
    learners: n,
    certifiedNow,
    share: n > 0 ? share / n : 0,
    lower: n > 0 ? lower / n : 0,
    upper: n > 0 ? upper / n : 0,
    extrapolated,
  };
}

export interface CurvePoint {
  day: number;
  /** Share with a certificate `day` days after registration, 1 − Ŝ, and its band. */
  share: number;
  lower: number;
  upper: number;
  /** Learners the point rests on: still followed and without a certificate at that day. */
  atRisk: number;
}

/** The cumulative share certified, one point a day from registration to the longest follow-up. */
export function incidenceCurve(fit: KmFit, subjects: readonly SurvivalSubject[], z = Z95): CurvePoint[] {
  const last = Math.floor(fit.maxTime);
  const times = subjects.map((s) => s.time).sort((a, b) => a - b);
  const points: CurvePoint[] = [];
  let j = 0;
  for (let day = 0; day <= last; day++) {
    while (j < times.length && (times[j] as number) < day) j++;
    const s = survivalAt(fit, day, z);
    points.push({ day, share: 1 - s.estimate, lower: 1 - s.upper, upper: 1 - s.lower, atRisk: times.length - j });
  }
  return points;
}

export type DataVerdict = { sufficient: true } | { sufficient: false; learners: number; certificates: number };

/** Whether a group holds enough to forecast (MIN_LEARNERS learners and MIN_CERTIFICATES certificates). */
export function assessData(fit: KmFit): DataVerdict {
  return fit.learners >= MIN_LEARNERS && fit.events >= MIN_CERTIFICATES
    ? { sufficient: true }
    : { sufficient: false, learners: fit.learners, certificates: fit.events };
}

/** The subjects of a group: days to the certificate, or days followed so far. */
export function subjectsOf(learners: readonly ForecastLearner[], nowMs: number): SurvivalSubject[] {
  return learners
    .filter((l) => l.registeredAtMs <= nowMs)
    .map((l) =>
      l.certifiedAtMs !== null && l.certifiedAtMs <= nowMs
        ? { time: Math.max(0, (l.certifiedAtMs - l.registeredAtMs) / DAY_MS), event: true }
        : { time: (nowMs - l.registeredAtMs) / DAY_MS, event: false },
    );
}
