import { describe, expect, it } from 'vitest';
import {
  assessData,
  cohortForecast,
  conditionalSurvival,
  DAY_MS,
  type ForecastLearner,
  incidenceCurve,
  kaplanMeier,
  MIN_CERTIFICATES,
  MIN_LEARNERS,
  subjectsOf,
  survivalAt,
} from '../../src/exports/forecast.js';

/** A small seeded generator (mulberry32): the synthetic cohorts are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The known completion curve of the synthetic programme: 60 % of learners ever get the certificate,
 * those who do after an exponential delay of mean 20 days; the rest never do.
 */
const EVER = 0.6;
const MEAN_DAYS = 20;
const trueShare = (days: number) => (days <= 0 ? 0 : EVER * (1 - Math.exp(-days / MEAN_DAYS)));

const NOW = Date.UTC(2026, 11, 4, 12);

/** Weekly cohorts registered before NOW, each learner's certificate drawn from the known curve. */
function cohorts(random: () => number, weeks: number, perWeek: number): ForecastLearner[][] {
  const out: ForecastLearner[][] = [];
  for (let w = weeks; w >= 1; w--) {
    const weekStart = NOW - w * 7 * DAY_MS;
    const cohort: ForecastLearner[] = [];
    for (let i = 0; i < perWeek; i++) {
      const registeredAtMs = weekStart + random() * 7 * DAY_MS;
      const completes = random() < EVER;
      const delay = -Math.log(1 - random()) * MEAN_DAYS * DAY_MS;
      const at = registeredAtMs + delay;
      cohort.push({ registeredAtMs, certifiedAtMs: completes && at <= NOW ? at : null });
    }
    out.push(cohort);
  }
  return out;
}

describe('Kaplan–Meier with Greenwood’s log–log band', () => {
  it('gives the textbook figures (Freireich’s 6-MP group, as R’s survfit with conf.type = "log-log")', () => {
    const times = [6, 6, 6, -6, 7, -9, 10, -10, -11, 13, 16, -17, -19, -20, 22, 23, -25, -32, -32, -34, -35];
    const fit = kaplanMeier(times.map((t) => ({ time: Math.abs(t), event: t > 0 })));
    expect(fit.learners).toBe(21);
    expect(fit.events).toBe(9);
    expect(fit.maxTime).toBe(35);
    const at = (t: number) => survivalAt(fit, t);
    expect(at(5)).toMatchObject({ estimate: 1, lower: 1, upper: 1 });
    expect(at(6).estimate).toBeCloseTo(0.8571, 4);
    expect(at(6).lower).toBeCloseTo(0.6197, 3);
    expect(at(6).upper).toBeCloseTo(0.9516, 3);
    expect(at(12).estimate).toBeCloseTo(0.7529, 4);
    expect(at(23).estimate).toBeCloseTo(0.4482, 4);
    expect(at(23).lower).toBeCloseTo(0.1881, 3);
    expect(at(23).upper).toBeCloseTo(0.6801, 3);
    expect(at(40).extrapolated).toBe(true);
    // Greenwood's standard error at 13 days: 0.1068.
    const step = fit.steps.find((s) => s.time === 13);
    expect((step?.survival ?? 0) * Math.sqrt(step?.greenwood ?? 0)).toBeCloseTo(0.1068, 3);
  });

  it('conditions on the days already passed without a certificate', () => {
    const fit = kaplanMeier([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((t, i) => ({ time: t, event: i % 2 === 0 })));
    const c = conditionalSurvival(fit, 4, 9);
    expect(c.estimate).toBeCloseTo(survivalAt(fit, 9).estimate / survivalAt(fit, 4).estimate, 10);
    expect(c.lower).toBeLessThan(c.estimate);
    expect(c.upper).toBeGreaterThan(c.estimate);
    expect(conditionalSurvival(fit, 9, 4)).toMatchObject({ estimate: 1 });
  });
});

describe('completion forecast on synthetic cohorts with a known curve', () => {
  it('recovers the known curve within its band', () => {
    const all = cohorts(rng(7), 12, 40).flat();
    const subjects = subjectsOf(all, NOW);
    const fit = kaplanMeier(subjects);
    expect(assessData(fit)).toEqual({ sufficient: true });
    const curve = incidenceCurve(fit, subjects);
    expect(curve[0]).toMatchObject({ day: 0, share: 0, atRisk: all.length });
    for (const day of [3, 7, 14, 21, 28, 42, 56, 70]) {
      const point = curve[day];
      expect(point, `day ${day}`).toBeDefined();
      expect(point?.lower, `day ${day}`).toBeLessThanOrEqual(trueShare(day));
      expect(point?.upper, `day ${day}`).toBeGreaterThanOrEqual(trueShare(day));
      // And it is an estimate worth the name: within 8 points of the truth with 480 learners.
      expect(Math.abs((point?.share ?? 0) - trueShare(day))).toBeLessThan(0.08);
    }
    // The curve never decreases, nor does the number it rests on increase.
    for (let i = 1; i < curve.length; i++) {
      expect((curve[i] as { share: number }).share).toBeGreaterThanOrEqual((curve[i - 1] as { share: number }).share);
      expect((curve[i] as { atRisk: number }).atRisk).toBeLessThanOrEqual((curve[i - 1] as { atRisk: number }).atRisk);
    }
  });

  it('forecasts the current cohorts’ share by a date within its band', () => {
    const groups = cohorts(rng(11), 12, 40);
    const fit = kaplanMeier(subjectsOf(groups.flat(), NOW));
    const by = NOW + 28 * DAY_MS;
    for (const cohort of groups.slice(-4)) {
      const forecast = cohortForecast(fit, cohort, NOW, by);
      // What the known curve says for these very learners: those certified, plus each other learner's
      // chance of getting it between now and the date given that they have not yet.
      const truth =
        cohort.reduce((sum, l) => {
          if (l.certifiedAtMs !== null) return sum + 1;
          const a = (NOW - l.registeredAtMs) / DAY_MS;
          const d = (by - l.registeredAtMs) / DAY_MS;
          return sum + (trueShare(d) - trueShare(a)) / (1 - trueShare(a));
        }, 0) / cohort.length;
      expect(forecast.learners).toBe(40);
      expect(forecast.lower).toBeLessThanOrEqual(truth);
      expect(forecast.upper).toBeGreaterThanOrEqual(truth);
      expect(forecast.lower).toBeLessThanOrEqual(forecast.share);
      expect(forecast.share).toBeLessThanOrEqual(forecast.upper);
      expect(forecast.certifiedNow).toBe(cohort.filter((l) => l.certifiedAtMs !== null).length);
      expect(forecast.extrapolated).toBe(false);
    }
  });

  it('covers the true share about 95 % of the time (200 synthetic programmes)', () => {
    const random = rng(2026);
    let covered = 0;
    const runs = 200;
    for (let r = 0; r < runs; r++) {
      const subjects = subjectsOf(cohorts(random, 8, 30).flat(), NOW);
      const s = survivalAt(kaplanMeier(subjects), 21);
      if (1 - s.upper <= trueShare(21) && trueShare(21) <= 1 - s.lower) covered++;
    }
    expect(covered / runs).toBeGreaterThan(0.9);
    expect(covered / runs).toBeLessThanOrEqual(1);
  });

  it('gives what was observed for a date already past, and flags a date beyond the follow-up', () => {
    const learners: ForecastLearner[] = [
      { registeredAtMs: NOW - 30 * DAY_MS, certifiedAtMs: NOW - 10 * DAY_MS },
      { registeredAtMs: NOW - 30 * DAY_MS, certifiedAtMs: NOW - 2 * DAY_MS },
      { registeredAtMs: NOW - 30 * DAY_MS, certifiedAtMs: null },
      { registeredAtMs: NOW - 30 * DAY_MS, certifiedAtMs: null },
    ];
    const fit = kaplanMeier(subjectsOf(learners, NOW));
    const past = cohortForecast(fit, learners, NOW, NOW - 5 * DAY_MS);
    expect(past).toMatchObject({ share: 0.25, lower: 0.25, upper: 0.25, certifiedNow: 2, extrapolated: false });
    const later = cohortForecast(fit, learners, NOW, NOW + 60 * DAY_MS);
    expect(later.extrapolated).toBe(true);
    expect(later.share).toBeCloseTo(0.5, 10); // held flat past the last observed day: no invention
  });

  it('says when there is too little data', () => {
    const few = cohorts(rng(3), 2, 10).flat();
    const verdict = assessData(kaplanMeier(subjectsOf(few, NOW)));
    expect(verdict.sufficient).toBe(false);
    expect(MIN_LEARNERS).toBe(30);
    expect(MIN_CERTIFICATES).toBe(5);
    const noneCertified = Array.from({ length: 40 }, () => ({ registeredAtMs: NOW - 3 * DAY_MS, certifiedAtMs: null }));
    expect(assessData(kaplanMeier(subjectsOf(noneCertified, NOW)))).toEqual({
      sufficient: false,
      learners: 40,
      certificates: 0,
    });
  });
});
