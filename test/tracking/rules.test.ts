import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJournalV1 } from '../../src/tracking/inbox/journal.js';
import {
  addDays,
  BEATS_V2,
  type CourseTally,
  creditCourse,
  decideFocus,
  decideItem,
  digestDaysDue,
  type FocusMark,
  finalizeTally,
  formatDuration,
  NO_STOP,
  newTabState,
  nextParisMidnight,
  PROFILES,
  parisDay,
  presenceSessions,
  type RunInterval,
  splitByParisDay,
  tallyCourse,
  toV1Runs,
  unionSegments,
} from '../../src/tracking/rules.js';

const MODULES = ['m-a', 'm-b', 'm-c'];
const TABS = ['tab-1', 'tab-2', 'tab-3', 'tab-4'];

/** Runs on a small integer timeline so that coverage can be checked millisecond by millisecond. */
const runArb = (horizon: number) =>
  fc
    .record({
      tab: fc.integer({ min: 0, max: TABS.length - 1 }),
      module: fc.integer({ min: 0, max: MODULES.length - 1 }),
      start: fc.integer({ min: 0, max: horizon }),
      len: fc.integer({ min: 0, max: horizon / 2 }),
    })
    .map(
      (r): Omit<RunInterval, 'runId'> => ({
        tabId: TABS[r.tab] as string,
        moduleId: MODULES[r.module] as string,
        startMs: r.start,
        endMs: r.start + r.len,
      }),
    );
const runsArb = (horizon = 2000, max = 8) =>
  fc
    .array(runArb(horizon), { maxLength: max })
    .map((rs) => rs.map((r, i) => ({ ...r, runId: `run-${String(i).padStart(3, '0')}` })));
const focusArb = (horizon = 2000) =>
  fc.array(fc.record({ tabId: fc.constantFrom(...TABS), atMs: fc.integer({ min: 0, max: horizon }) }), {
    maxLength: 6,
  });
const nominalArb = fc.record({
  'm-a': fc.integer({ min: 0, max: 3 }),
  'm-b': fc.integer({ min: 0, max: 3 }),
  'm-c': fc.integer({ min: 0, max: 3 }),
});
// Tiny caps in "minutes" relative to a 2-second horizon would never bind; scale caps to the horizon.
const SMALL = { ...BEATS_V2, capFactor: (3 / 60_000) * 100 }; // 3 × nominal × 100 ms

function coveredMs(runs: readonly RunInterval[]): number {
  const covered = new Set<number>();
  for (const r of runs) for (let t = r.startMs; t < r.endMs; t++) covered.add(t);
  return covered.size;
}

const BIG_NOMINAL = { 'm-a': 10_000, 'm-b': 10_000, 'm-c': 10_000 };

describe('union of runs', () => {
  it('counts exactly the covered milliseconds: never a second twice, never more than wall-clock', () => {
    fc.assert(
      fc.property(runsArb(), focusArb(), (runs, focus) => {
        const segments = unionSegments(runs, focus);
        const union = segments.reduce((n, s) => n + s.endMs - s.startMs, 0);
        expect(union).toBe(coveredMs(runs));
        // Segments are disjoint and ordered.
        for (let i = 1; i < segments.length; i++) {
          expect((segments[i] as (typeof segments)[0]).startMs).toBeGreaterThanOrEqual(
            (segments[i - 1] as (typeof segments)[0]).endMs,
          );
        }
        // Each piece lies inside the run it is attributed to.
        for (const s of segments) {
          const run = runs.find((r) => r.runId === s.runId) as RunInterval;
          expect(run.startMs).toBeLessThanOrEqual(s.startMs);
          expect(s.endMs).toBeLessThanOrEqual(run.endMs);
          expect(s.moduleId).toBe(run.moduleId);
        }
        const live = runs.filter((r) => r.endMs > r.startMs);
        const wall = live.length ? Math.max(...live.map((r) => r.endMs)) - Math.min(...live.map((r) => r.startMs)) : 0;
        const credit = creditCourse({ runs, focus, nominalMinutes: BIG_NOMINAL });
        expect(credit.measuredMs).toBe(union);
        expect(credit.measuredMs).toBeLessThanOrEqual(wall);
        expect(credit.creditedMs).toBeLessThanOrEqual(credit.measuredMs);
        expect(credit.modules.reduce((n, m) => n + m.measuredMs, 0)).toBe(credit.measuredMs);
        expect(credit.days.reduce((n, d) => n + d.measuredMs, 0)).toBe(credit.measuredMs);
      }),
      { numRuns: 400 },
    );
  });

  it('adding evidence never lowers the union, nor the time of the module the new run belongs to', () => {
    fc.assert(
      fc.property(runsArb(), runArb(2000), focusArb(), nominalArb, (runs, extra, focus, nominal) => {
        const before = creditCourse({ runs, focus, nominalMinutes: nominal, params: SMALL });
        const after = creditCourse({
          runs: [...runs, { ...extra, runId: 'run-new' }],
          focus,
          nominalMinutes: nominal,
          params: SMALL,
        });
        expect(after.measuredMs).toBeGreaterThanOrEqual(before.measuredMs);
        const mod = (c: typeof before) => c.modules.find((m) => m.moduleId === extra.moduleId);
        expect(mod(after)?.measuredMs ?? 0).toBeGreaterThanOrEqual(mod(before)?.measuredMs ?? 0);
        expect(mod(after)?.creditedMs ?? 0).toBeGreaterThanOrEqual(mod(before)?.creditedMs ?? 0);
        for (const d of before.days) {
          expect(after.days.find((x) => x.day === d.day)?.measuredMs ?? 0).toBeGreaterThanOrEqual(d.measuredMs);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('adding evidence never lowers the credited total while no cap binds', () => {
    fc.assert(
      fc.property(runsArb(), runArb(2000), focusArb(), focusArb(), (runs, extra, focus, moreFocus) => {
        const before = creditCourse({ runs, focus, nominalMinutes: BIG_NOMINAL });
        const after = creditCourse({
          runs: [...runs, { ...extra, runId: 'run-new' }],
          focus: [...focus, ...moreFocus],
          nominalMinutes: BIG_NOMINAL,
        });
        expect(after.creditedMs).toBeGreaterThanOrEqual(before.creditedMs);
      }),
      { numRuns: 300 },
    );
  });

  it('extending a run (a later beat) never lowers the union or its module', () => {
    fc.assert(
      fc.property(runsArb(2000, 6), fc.nat(), fc.integer({ min: 1, max: 500 }), (runs, pick, more) => {
        fc.pre(runs.length > 0);
        const i = pick % runs.length;
        const grown = runs.map((r, k) => (k === i ? { ...r, endMs: r.endMs + more } : r));
        const before = creditCourse({ runs, nominalMinutes: BIG_NOMINAL });
        const after = creditCourse({ runs: grown, nominalMinutes: BIG_NOMINAL });
        expect(after.measuredMs).toBeGreaterThanOrEqual(before.measuredMs);
        const m = (runs[i] as RunInterval).moduleId;
        const get = (c: typeof before) => c.modules.find((x) => x.moduleId === m)?.measuredMs ?? 0;
        expect(get(after)).toBeGreaterThanOrEqual(get(before));
      }),
      { numRuns: 300 },
    );
  });

  it('caps hold: credited = min(measured, 3 × nominal), the rest is kept and flagged', () => {
    fc.assert(
      fc.property(runsArb(), focusArb(), nominalArb, (runs, focus, nominal) => {
        const c = creditCourse({ runs, focus, nominalMinutes: nominal, params: SMALL });
        for (const m of c.modules) {
          const cap = Math.round(SMALL.capFactor * m.nominalMinutes * 60_000);
          expect(m.capMs).toBe(cap);
          expect(m.creditedMs).toBe(Math.min(m.measuredMs, cap));
          expect(m.creditedMs).toBeLessThanOrEqual(cap);
          expect(m.overCapMs).toBe(m.measuredMs - m.creditedMs);
          expect(m.flags.includes('over_cap')).toBe(m.measuredMs > cap);
        }
        expect(c.creditedMs).toBe(c.modules.reduce((n, m) => n + m.creditedMs, 0));
        expect(c.flags.includes('over_cap')).toBe(c.modules.some((m) => m.overCapMs > 0));
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic: same evidence in any order gives the same figures', () => {
    fc.assert(
      fc.property(runsArb(), focusArb(), nominalArb, fc.nat(), (runs, focus, nominal, seed) => {
        const shuffle = <T>(xs: T[]) =>
          xs
            .map((x, i) => ({ x, k: (i * 7919 + seed) % 104_729 }))
            .sort((a, b) => a.k - b.k)
            .map((p) => p.x);
        const a = creditCourse({ runs, focus, nominalMinutes: nominal, params: SMALL });
        const b = creditCourse({
          runs: shuffle([...runs]),
          focus: shuffle([...focus]),
          nominalMinutes: nominal,
          params: SMALL,
        });
        expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      }),
      { numRuns: 300 },
    );
  });

  it('counts one stretch once when two tabs are open together', () => {
    const runs: RunInterval[] = [
      { runId: 'r1', tabId: 'A', moduleId: 'm-a', startMs: 0, endMs: 600_000 },
      { runId: 'r2', tabId: 'B', moduleId: 'm-b', startMs: 300_000, endMs: 900_000 },
    ];
    const c = creditCourse({ runs, nominalMinutes: { 'm-a': 15, 'm-b': 15 } });
    expect(c.measuredMs).toBe(900_000);
    // Without focus marks the tab opened last owns the overlap.
    expect(c.modules.map((m) => [m.moduleId, m.measuredMs])).toEqual([
      ['m-a', 300_000],
      ['m-b', 600_000],
    ]);
  });

  it('attributes overlapping seconds to the tab with the most recent input', () => {
    const runs: RunInterval[] = [
      { runId: 'r1', tabId: 'A', moduleId: 'm-a', startMs: 0, endMs: 600_000 },
      { runId: 'r2', tabId: 'B', moduleId: 'm-b', startMs: 100_000, endMs: 600_000 },
    ];
    const focus: FocusMark[] = [
      { tabId: 'A', atMs: 0 },
      { tabId: 'B', atMs: 100_000 },
      { tabId: 'A', atMs: 400_000 },
    ];
    const c = creditCourse({ runs, focus, nominalMinutes: { 'm-a': 15, 'm-b': 15 } });
    expect(c.modules.map((m) => [m.moduleId, m.measuredMs])).toEqual([
      ['m-a', 100_000 + 200_000],
      ['m-b', 300_000],
    ]);
  });

  it('documents the one case where more evidence lowers the credited total: time moves to a capped module', () => {
    // B holds 10 min alone; new evidence shows A (already at its 45-min cap) had the input then.
    const base: RunInterval[] = [
      { runId: 'a1', tabId: 'A', moduleId: 'm-a', startMs: 0, endMs: 50 * 60_000 },
      { runId: 'b1', tabId: 'B', moduleId: 'm-b', startMs: 50 * 60_000, endMs: 60 * 60_000 },
    ];
    const nominal = { 'm-a': 15, 'm-b': 15 };
    const before = creditCourse({ runs: base, nominalMinutes: nominal });
    const after = creditCourse({
      runs: [...base, { runId: 'a2', tabId: 'A2', moduleId: 'm-a', startMs: 50 * 60_000, endMs: 60 * 60_000 }],
      focus: [{ tabId: 'A2', atMs: 50 * 60_000 }],
      nominalMinutes: nominal,
    });
    expect(after.measuredMs).toBe(before.measuredMs);
    expect(before.creditedMs).toBe(45 * 60_000 + 10 * 60_000);
    expect(after.creditedMs).toBe(45 * 60_000);
    expect(after.modules.find((m) => m.moduleId === 'm-a')?.overCapMs).toBe(15 * 60_000);
  });

  it('credits nothing inside a zero-length run and nothing for a module with no nominal duration noted', () => {
    expect(
      creditCourse({
        runs: [{ runId: 'r', tabId: 't', moduleId: 'm', startMs: 5, endMs: 5 }],
        nominalMinutes: { m: 15 },
      }).measuredMs,
    ).toBe(0);
    expect(() =>
      creditCourse({
        runs: [{ runId: 'r', tabId: 't', moduleId: 'x', startMs: 0, endMs: 5 }],
        nominalMinutes: { m: 15 },
      }),
    ).toThrow(/no nominal/);
  });

  it('merges presence into sessions for the connection log', () => {
    const sessions = presenceSessions([
      { runId: 'r1', tabId: 'A', moduleId: 'm-a', startMs: 0, endMs: 100, beatCount: 3 },
      { runId: 'r2', tabId: 'B', moduleId: 'm-b', startMs: 50, endMs: 200, beatCount: 4 },
      { runId: 'r3', tabId: 'C', moduleId: 'm-a', startMs: 500, endMs: 600, beatCount: 2 },
      { runId: 'r4', tabId: 'D', moduleId: 'm-c', startMs: 520, endMs: 530, beatCount: 1 },
    ]);
    expect(sessions).toEqual([
      { startMs: 0, endMs: 200, measuredMs: 200, moduleIds: ['m-a', 'm-b'], tabIds: ['A', 'B'], beatCount: 7 },
      { startMs: 500, endMs: 600, measuredMs: 100, moduleIds: ['m-a', 'm-c'], tabIds: ['C', 'D'], beatCount: 3 },
    ]);
  });
});

describe('Europe/Paris days and the long-day flag', () => {
  it('finds midnight across both daylight-saving changes', () => {
    // 2025-03-30: clocks go 02:00 → 03:00; midnight that evening is 22:00 UTC.
    expect(new Date(nextParisMidnight(Date.parse('2025-03-30T10:00:00Z'))).toISOString()).toBe(
      '2025-03-30T22:00:00.000Z',
    );
    expect(new Date(nextParisMidnight(Date.parse('2025-03-29T10:00:00Z'))).toISOString()).toBe(
      '2025-03-29T23:00:00.000Z',
    );
    // 2025-10-26: 03:00 → 02:00; midnight that evening is 23:00 UTC.
    expect(new Date(nextParisMidnight(Date.parse('2025-10-26T01:30:00Z'))).toISOString()).toBe(
      '2025-10-26T23:00:00.000Z',
    );
    expect(parisDay(Date.parse('2025-10-25T22:30:00Z'))).toBe('2025-10-26');
    expect(parisDay(Date.parse('2025-10-25T21:30:00Z'))).toBe('2025-10-25');
  });

  it('counts calendar days, and finds the digests due, across DST changes', () => {
    expect(addDays('2025-03-31', -1)).toBe('2025-03-30');
    expect(addDays('2025-03-01', -1)).toBe('2025-02-28');
    expect(addDays('2024-12-31', 1)).toBe('2025-01-01');
    // 00:30 in Paris the day after the 23-hour day (spring forward): yesterday is that day, not the one before.
    const afterSpring = Date.parse('2025-03-30T22:30:00Z');
    expect(parisDay(afterSpring)).toBe('2025-03-31');
    expect(digestDaysDue(null, afterSpring)).toEqual(['2025-03-30']);
    expect(digestDaysDue('2025-03-30', afterSpring)).toEqual([]);
    expect(digestDaysDue('2025-03-31', afterSpring)).toEqual([]);
    // Not before 00:10 in Paris: a beat acknowledged at 23:59:59 may still be committing.
    expect(digestDaysDue('2025-03-29', Date.parse('2025-03-30T22:05:00Z'))).toEqual([]);
    expect(digestDaysDue('2025-03-29', Date.parse('2025-03-30T22:11:00Z'))).toEqual(['2025-03-30']);
    // 00:30 after the 25-hour day (fall back).
    expect(digestDaysDue(null, Date.parse('2025-10-26T23:30:00Z'))).toEqual(['2025-10-26']);
    // Catching up after a stop, at most maxDays, oldest first.
    expect(digestDaysDue('2025-03-27', afterSpring)).toEqual(['2025-03-28', '2025-03-29', '2025-03-30']);
    expect(digestDaysDue('2025-01-01', afterSpring, 3)).toEqual(['2025-03-28', '2025-03-29', '2025-03-30']);
  });

  it('splits any span at Paris midnights without losing a millisecond', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.parse('2024-01-01T00:00:00Z'), max: Date.parse('2027-01-01T00:00:00Z') }),
        fc.integer({ min: 0, max: 5 * 86_400_000 }),
        (start, len) => {
          const parts = splitByParisDay(start, start + len);
          expect(parts.reduce((n, p) => n + p.endMs - p.startMs, 0)).toBe(len);
          for (const p of parts) {
            expect(parisDay(p.startMs)).toBe(p.day);
            expect(parisDay(p.endMs - 1)).toBe(p.day);
          }
          expect(new Set(parts.map((p) => p.day)).size).toBe(parts.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('flags a Paris day with more than 4 h measured, and the modules that had time that day', () => {
    const day = Date.parse('2025-06-02T06:00:00Z'); // 08:00 in Paris
    const runs: RunInterval[] = [
      { runId: 'r1', tabId: 'A', moduleId: 'm-a', startMs: day, endMs: day + 3 * 3600_000 },
      { runId: 'r2', tabId: 'B', moduleId: 'm-b', startMs: day + 3 * 3600_000, endMs: day + 4 * 3600_000 + 1000 },
      { runId: 'r3', tabId: 'C', moduleId: 'm-c', startMs: day + 86_400_000, endMs: day + 86_400_000 + 60_000 },
    ];
    const c = creditCourse({ runs, nominalMinutes: { 'm-a': 120, 'm-b': 120, 'm-c': 15 } });
    expect(c.days.map((d) => [d.day, d.longDay])).toEqual([
      ['2025-06-02', true],
      ['2025-06-03', false],
    ]);
    expect(c.flags).toContain('long_day');
    expect(c.modules.map((m) => [m.moduleId, m.flags.includes('long_day')])).toEqual([
      ['m-a', true],
      ['m-b', true],
      ['m-c', false],
    ]);
    // Exactly 4 h is not "more than 4 h".
    const exact = creditCourse({
      runs: [{ runId: 'r', tabId: 'A', moduleId: 'm-a', startMs: day, endMs: day + 4 * 3600_000 }],
      nominalMinutes: { 'm-a': 120 },
    });
    expect(exact.flags).not.toContain('long_day');
  });
});

describe('ingest decisions', () => {
  const P = PROFILES.standard;
  const learner = { expired: false, notLearner: false };
  const beat = (seq: number) => ({ kind: 'beat' as const, seq });

  it('starts the first run at the page-open event when the first beat follows within the gap', () => {
    const tab = { ...newTabState(), openedMs: 1000, lastSeq: 0 };
    expect(decideItem(tab, beat(1), 31_000, P, learner)).toEqual({
      status: 'accepted',
      run: 'start',
      startMs: 1000,
      sealPrevious: false,
      stop: null,
      endMs: 31_000,
    });
    expect(decideItem(tab, beat(1), 1000 + 75_001, P, learner)).toMatchObject({ run: 'start', startMs: 76_001 });
  });

  it('extends a run while beats are at most 75 s apart, and starts a new one after a longer gap', () => {
    const run = {
      id: 'r',
      startMs: 0,
      lastBeatMs: 30_000,
      beatCount: 2,
      firstSeq: 1,
      lastSeq: 2,
      rollingHash: 'h',
      sealed: false,
      ...NO_STOP,
    };
    const tab = { ...newTabState(), openedMs: 0, lastSeq: 2, lastAcceptedBeatMs: 30_000, run };
    expect(decideItem(tab, beat(3), 105_000, P, learner)).toMatchObject({ status: 'accepted', run: 'extend' });
    expect(decideItem(tab, beat(3), 105_001, P, learner)).toEqual({
      status: 'accepted',
      run: 'start',
      startMs: 105_001,
      sealPrevious: true,
      stop: null,
      endMs: 105_001,
    });
  });

  it('rejects each case of the specification and keeps duplicates apart', () => {
    const run = {
      id: 'r',
      startMs: 0,
      lastBeatMs: 30_000,
      beatCount: 2,
      firstSeq: 1,
      lastSeq: 5,
      rollingHash: 'h',
      sealed: false,
      ...NO_STOP,
    };
    const tab = {
      ...newTabState(),
      openedMs: 0,
      lastSeq: 5,
      missing: [[3, 3]] as Array<[number, number]>,
      lastAcceptedBeatMs: 30_000,
      run,
    };
    expect(decideItem(tab, beat(4), 60_000, P, learner)).toEqual({ status: 'duplicate' });
    expect(decideItem(tab, beat(5), 60_000, P, learner)).toEqual({ status: 'duplicate' });
    expect(decideItem(tab, beat(3), 60_000, P, learner)).toEqual({ status: 'rejected', reason: 'seq_not_increasing' });
    expect(decideItem(tab, beat(6), 49_999, P, learner)).toEqual({ status: 'rejected', reason: 'too_frequent' });
    expect(decideItem(tab, beat(6), 60_000, P, { expired: true, notLearner: false })).toEqual({
      status: 'rejected',
      reason: 'session_expired',
    });
    expect(decideItem(tab, beat(6), 60_000, P, { expired: false, notLearner: true })).toEqual({
      status: 'rejected',
      reason: 'not_learner',
    });
    expect(decideItem({ ...tab, closedMs: 40_000 }, beat(6), 60_000, P, learner)).toEqual({
      status: 'rejected',
      reason: 'tab_closed',
    });
    expect(decideItem(tab, { kind: 'open', seq: 6 }, 60_000, P, learner)).toEqual({
      status: 'rejected',
      reason: 'already_open',
    });
  });

  it('beats-v2: a stop ends the live run at once, is never refused for spacing, and no run bridges it', () => {
    const run = {
      id: 'r',
      startMs: 0,
      lastBeatMs: 30_000,
      beatCount: 2,
      firstSeq: 1,
      lastSeq: 2,
      rollingHash: 'h',
      sealed: false,
      ...NO_STOP,
    };
    const tab = { ...newTabState(), openedMs: 0, lastSeq: 2, lastAcceptedBeatMs: 30_000, run };
    const stop = (cause: 'hidden' | 'idle' | 'pagehide', inputAgoMs = 1_000) => ({
      kind: 'beat' as const,
      seq: 3,
      cause,
      inputAgoMs,
    });
    // 1 s after a periodic beat: a periodic one is refused, a stop is taken and ends the run there.
    expect(decideItem(tab, { ...beat(3), cause: 'periodic' }, 31_000, P, learner)).toEqual({
      status: 'rejected',
      reason: 'too_frequent',
    });
    expect(decideItem(tab, stop('hidden'), 31_000, P, learner)).toEqual({
      status: 'accepted',
      run: 'extend',
      startMs: 0,
      sealPrevious: false,
      stop: 'hidden',
      endMs: 31_000,
    });
    // An idle beat ends the run where the grace ended (input + idleMs), never before the run's end.
    expect(decideItem(tab, stop('idle', 200_000), 50_000, P, learner)).toMatchObject({ stop: 'idle', endMs: 30_000 });
    expect(decideItem(tab, stop('idle', 180_000), 50_000, P, learner)).toMatchObject({ stop: 'idle', endMs: 50_000 });
    // After a stop: the next periodic beat starts a new run at once, at its own time (no spacing, no bridge).
    const stopped = {
      ...tab,
      lastAcceptedBeatMs: 31_000,
      run: { ...run, lastBeatMs: 31_000, stopCause: 'hidden' as const, sealed: true },
    };
    expect(decideItem(stopped, { ...beat(4), cause: 'periodic' }, 32_000, P, learner)).toEqual({
      status: 'accepted',
      run: 'start',
      startMs: 32_000,
      sealPrevious: false,
      stop: null,
      endMs: 32_000,
    });
    // A stop with no run to end is kept, credits nothing; right after the page open, it ends the open's run.
    expect(decideItem(stopped, { ...stop('pagehide'), seq: 4 }, 32_000, P, learner)).toEqual({
      status: 'stop_without_run',
      cause: 'pagehide',
    });
    const fresh = { ...newTabState(), openedMs: 1_000, lastSeq: 0 };
    expect(decideItem(fresh, { ...stop('pagehide'), seq: 1 }, 9_000, P, learner)).toMatchObject({
      status: 'accepted',
      run: 'start',
      startMs: 1_000,
      stop: 'pagehide',
      endMs: 9_000,
    });
  });

  it('re-derives beats-v1 runs from beats-v2 evidence', () => {
    const tabRuns: RunInterval[] = [
      // Hidden 10 s after a beat (v1 refused it: the run ends at 30 s), back at 100 s: v1 bridged.
      {
        runId: 'a',
        tabId: 't',
        moduleId: 'm',
        startMs: 0,
        endMs: 40_000,
        beatCount: 2,
        stopCause: 'hidden',
        stopAtMs: 40_000,
        beforeStopMs: 30_000,
      },
      { runId: 'b', tabId: 't', moduleId: 'm', startMs: 100_000, endMs: 160_000, beatCount: 3 },
      // After a gap of more than 75 s, a run on its own.
      {
        runId: 'c',
        tabId: 't',
        moduleId: 'm',
        startMs: 300_000,
        endMs: 330_000,
        beatCount: 2,
        stopCause: 'idle',
        stopAtMs: 360_000,
        beforeStopMs: 330_000,
      },
    ];
    expect(toV1Runs(tabRuns, () => P).map((r) => [r.runId, r.startMs, r.endMs])).toEqual([
      ['a', 0, 160_000],
      ['c', 300_000, 360_000],
    ]);
    // Runs without stops come out unchanged.
    const plain = tabRuns.map(({ stopCause: _s, stopAtMs: _a, beforeStopMs: _b, ...r }) => r);
    expect(toV1Runs(plain, () => P).map((r) => [r.startMs, r.endMs])).toEqual(plain.map((r) => [r.startMs, r.endMs]));
  });

  it('moves the focus only to a tab with more recent input, and never back in time', () => {
    const state = { tabId: null, inputMs: null, lastMarkMs: null };
    expect(decideFocus(state, 'A', 100)).toEqual({ tabId: 'A', atMs: 100 });
    expect(decideFocus(state, 'A', 200)).toBeNull();
    expect(decideFocus(state, 'B', 150)).toBeNull();
    expect(decideFocus(state, 'B', 250)).toEqual({ tabId: 'B', atMs: 250 });
    expect(decideFocus(state, 'A', 260)).toEqual({ tabId: 'A', atMs: 260 });
  });
});

describe('display', () => {
  it('floors to the minute', () => {
    expect(formatDuration(59_999)).toBe('0 min');
    expect(formatDuration(60_000)).toBe('1 min');
    expect(formatDuration(3_899_999)).toBe('1 h 04');
    expect(formatDuration(7_200_000)).toBe('2 h');
  });

  it('finalizes a stored tally exactly as a recomputed one', () => {
    const runs: RunInterval[] = [{ runId: 'r', tabId: 't', moduleId: 'm-a', startMs: 0, endMs: 61_000 }];
    const tally: CourseTally = tallyCourse(runs, [], { 'm-a': 15 });
    expect(finalizeTally(JSON.parse(JSON.stringify(tally)))).toEqual(
      creditCourse({ runs, nominalMinutes: { 'm-a': 15 } }),
    );
  });
});

describe('the journal format (journal-v1)', () => {
  const request = {
    learner_id: '0b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b',
    course_id: '1b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b',
    tab_id: '2b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b',
    module_id: 'common-digitalisation',
    module_version: 3,
    nominal_minutes: 45,
    role: 'learner',
    profile: 'standard',
    token_expired: false,
    not_learner: false,
    ip_prefix: '203.0.113.0/24',
    user_agent: 'Mozilla/5.0',
    items: [{ seq: 0, kind: 'open', client_time: null, input_ago_ms: null, media: null, cause: null }],
  };
  const body = (patch: Record<string, unknown>, item: Record<string, unknown> = {}) =>
    JSON.stringify([{ ...request, ...patch, items: [{ ...request.items[0], ...item }] }]);

  it('accepts what the ingest writes, and tells each kind of malformed row', () => {
    expect(isJournalV1(JSON.stringify([request]))).toBe(true);
    expect(isJournalV1(body({ module_version: null, ip_prefix: null, user_agent: null }))).toBe(true);
    expect(isJournalV1(JSON.stringify([request]).slice(0, 40))).toBe(false); // cut
    expect(isJournalV1(body({ learner_id: 'zz' }))).toBe(false);
    expect(isJournalV1(body({ nominal_minutes: 2 ** 31 }))).toBe(false); // past PostgreSQL's integer
    expect(isJournalV1(body({}, { seq: 1.5 }))).toBe(false);
    expect(isJournalV1(body({ user_agent: 'a\u0000b' }))).toBe(false); // jsonb refuses NUL
    expect(isJournalV1(body({}, { client_time: '\ud800' }))).toBe(false); // and lone surrogates
    const { role: _role, ...noRole } = request;
    expect(isJournalV1(JSON.stringify([noRole]))).toBe(false);
    expect(isJournalV1('{}')).toBe(false);
  });
});
