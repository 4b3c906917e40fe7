import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  courseKeyIn,
  estimateLmsTime,
  type Interval,
  LMS_SESSIONS_V1,
  overlapMs,
  parseLmsTime,
  parseMappingCsv,
  readLine,
  sessionize,
  totalMs,
  unionIntervals,
} from '../../src/lms/index.js';

const MIN = 60_000;
const T0 = Date.parse('2026-03-02T09:00:00Z');

describe('reading tracking-log lines', () => {
  const base = {
    username: 'marie_d',
    event_type: 'problem_check',
    event_source: 'server',
    time: '2026-03-02T09:20:00.500000+00:00',
    session: 'abc',
    context: { course_id: 'course-v1:FUN+TNUM+2026_T1', user_id: 41 },
    page: null,
    event: {},
  };

  it('reads a server event: user, course, time with microseconds, session', () => {
    const [r] = readLine(JSON.stringify(base), null);
    expect(r?.kind).toBe('event');
    if (r?.kind !== 'event') return;
    expect(r.event).toMatchObject({
      source: 'tracking-log',
      lmsUsername: 'marie_d',
      lmsUserId: '41',
      courseContextId: 'course-v1:FUN+TNUM+2026_T1',
      eventType: 'problem_check',
      eventSource: 'server',
      sessionId: 'abc',
    });
    expect(r.event.occurredAt.toISOString()).toBe('2026-03-02T09:20:00.500Z');
    expect(r.event.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('takes the course of a browser event from its page when the context has none; `event` is a JSON string', () => {
    const line = JSON.stringify({
      ...base,
      event_source: 'browser',
      event_type: 'seq_goto',
      context: { course_id: '', user_id: 41 },
      page: 'https://lms.test/courses/course-v1:FUN+TNUM+2026_T1/courseware/c/s/?x=1',
      event: JSON.stringify({ old: 1, new: 2 }),
    });
    const [r] = readLine(line, 'tracking-log');
    expect(r?.kind === 'event' && r.event.courseContextId).toBe('course-v1:FUN+TNUM+2026_T1');
  });

  it('prefers `name` over `event_type` (newer events)', () => {
    const [r] = readLine(JSON.stringify({ ...base, name: 'edx.grades.problem.submitted' }), null);
    expect(r?.kind === 'event' && r.event.eventType).toBe('edx.grades.problem.submitted');
  });

  it('skips anonymous events and events without a course; rejects bad JSON, a missing or bad time', () => {
    expect(readLine(JSON.stringify({ ...base, username: '' }), null)).toEqual([
      { kind: 'skipped', reason: 'anonymous' },
    ]);
    expect(readLine(JSON.stringify({ ...base, context: {} }), null)).toEqual([
      { kind: 'skipped', reason: 'no_course' },
    ]);
    expect(readLine('{ nope', null)[0]?.kind).toBe('malformed');
    expect(readLine(JSON.stringify({ ...base, time: 'hier' }), null)[0]).toMatchObject({ kind: 'malformed' });
    expect(readLine(JSON.stringify({ ...base, time: undefined }), 'tracking-log')[0]).toMatchObject({
      kind: 'malformed',
    });
    expect(readLine('42', null)[0]?.kind).toBe('malformed');
  });

  it('the same line gives the same hash; a different line another', () => {
    const a = readLine(JSON.stringify(base), null)[0];
    const b = readLine(JSON.stringify(base), null)[0];
    const c = readLine(JSON.stringify({ ...base, time: '2026-03-02T09:20:01Z' }), null)[0];
    expect(a?.kind === 'event' && b?.kind === 'event' && a.event.hash === b.event.hash).toBe(true);
    expect(a?.kind === 'event' && c?.kind === 'event' && a.event.hash !== c.event.hash).toBe(true);
  });

  it('reads zone-less times as UTC', () => {
    expect(parseLmsTime('2014-03-03T16:19:23.123456')?.toISOString()).toBe('2014-03-03T16:19:23.123Z');
    expect(parseLmsTime('2026-03-02 09:00:00+01:00')?.toISOString()).toBe('2026-03-02T08:00:00.000Z');
    expect(parseLmsTime('yesterday')).toBeNull();
    expect(parseLmsTime(12)).toBeNull();
  });
});

describe('reading xAPI statements', () => {
  const statement = {
    id: '2f6d8f3c-0000-4000-8000-000000000001',
    actor: { objectType: 'Agent', account: { homePage: 'https://lms.test', name: 'anon-1' } },
    verb: { id: 'http://id.tincanapi.com/verb/viewed' },
    object: { id: 'https://lms.test/xblock/block-v1:FUN+TNUM+2026_T1+type@vertical+block@v1' },
    timestamp: '2026-03-03T14:00:00.000Z',
    context: {
      contextActivities: { parent: [{ id: 'https://lms.test/course/course-v1:FUN+TNUM+2026_T1' }] },
      extensions: { 'https://w3id.org/xapi/openedx/extensions/session-id': 's-1' },
    },
  };

  it('reads actor, course (from the parent activity), session extension; detects the format', () => {
    const [r] = readLine(JSON.stringify(statement), null);
    expect(r?.kind).toBe('event');
    if (r?.kind !== 'event') return;
    expect(r.event).toMatchObject({
      source: 'xapi',
      lmsUsername: 'anon-1',
      courseContextId: 'course-v1:FUN+TNUM+2026_T1',
      sessionId: 's-1',
      eventType: 'http://id.tincanapi.com/verb/viewed',
    });
  });

  it('falls back on the object id for the course; the statement id is the identity', () => {
    const noParent = { ...statement, context: {} };
    const [r] = readLine(JSON.stringify(noParent), null);
    expect(r?.kind === 'event' && r.event.courseContextId).toBe('course-v1:FUN+TNUM+2026_T1');
    const [again] = readLine(JSON.stringify({ ...statement, stored: 'later' }), null);
    const [first] = readLine(JSON.stringify(statement), null);
    expect(again?.kind === 'event' && first?.kind === 'event' && again.event.hash === first.event.hash).toBe(true);
  });

  it('reads a JSON array of statements on one line; rejects a statement without verb or timestamp', () => {
    const results = readLine(JSON.stringify([statement, { ...statement, id: 'x2', timestamp: 'no' }]), null);
    expect(results.map((r) => r.kind)).toEqual(['event', 'malformed']);
    expect(readLine(JSON.stringify({ ...statement, verb: {} }), 'xapi')[0]?.kind).toBe('malformed');
  });

  it('finds course keys in URLs', () => {
    expect(courseKeyIn('https://x/courses/course-v1:A+B+C/courseware')).toBe('course-v1:A+B+C');
    expect(courseKeyIn('https://x/xblock/block-v1:A+B+C+type@video+block@v')).toBe('course-v1:A+B+C');
    expect(courseKeyIn('https://x/dashboard')).toBeNull();
  });
});

describe('sessions (lms-sessions-v1)', () => {
  it('breaks when the gap exceeds 30 min, credits gaps inside, nothing after the last event', () => {
    const times = [T0 + 40 * MIN, T0, T0 + 5 * MIN, T0 + 35 * MIN, T0 + 80 * MIN, T0 + 90 * MIN, T0 + 121 * MIN];
    const sessions = sessionize(times);
    expect(sessions).toEqual([
      { startMs: T0, endMs: T0 + 40 * MIN, eventCount: 4 },
      { startMs: T0 + 80 * MIN, endMs: T0 + 90 * MIN, eventCount: 2 },
      { startMs: T0 + 121 * MIN, endMs: T0 + 121 * MIN, eventCount: 1 },
    ]);
    // Exactly 30 min apart stays one session.
    expect(sessionize([T0, T0 + 30 * MIN])).toHaveLength(1);
    expect(sessionize([T0, T0 + 30 * MIN + 1])).toHaveLength(2);
  });

  it('subtracts the in-tool time inside the sessions, not the in-tool time outside them', () => {
    const estimate = estimateLmsTime(
      [T0, T0 + 20 * MIN, T0 + 40 * MIN],
      [
        { startMs: T0 + 10 * MIN, endMs: T0 + 25 * MIN },
        { startMs: T0 + 35 * MIN, endMs: T0 + 60 * MIN },
        { startMs: T0 + 120 * MIN, endMs: T0 + 130 * MIN },
      ],
    );
    expect(estimate).toMatchObject({
      sessionMs: 40 * MIN,
      overlapMs: 20 * MIN,
      estimatedMs: 20 * MIN,
      estimatedSeconds: 1200,
      eventCount: 3,
    });
    expect(estimateLmsTime([], [])).toBeNull();
  });

  it('unions and intersects intervals', () => {
    expect(
      unionIntervals([
        { startMs: 5, endMs: 10 },
        { startMs: 0, endMs: 6 },
        { startMs: 10, endMs: 12 },
        { startMs: 20, endMs: 20 },
      ]),
    ).toEqual([{ startMs: 0, endMs: 12 }]);
    expect(
      overlapMs(
        [{ startMs: 0, endMs: 10 }],
        [
          { startMs: 5, endMs: 7 },
          { startMs: 9, endMs: 30 },
        ],
      ),
    ).toBe(3);
  });

  const times = fc
    .array(fc.integer({ min: 0, max: 24 * 60 }), { maxLength: 40 })
    .map((xs) => xs.map((x) => T0 + x * MIN));
  const intervals = fc
    .array(fc.tuple(fc.integer({ min: 0, max: 24 * 60 }), fc.integer({ min: 0, max: 180 })), { maxLength: 10 })
    .map((xs) => xs.map(([s, d]): Interval => ({ startMs: T0 + s * MIN, endMs: T0 + (s + d) * MIN })));

  it('property: LMS-estimated + in-tool = the union of both; the estimate never exceeds the sessions', () => {
    fc.assert(
      fc.property(times, intervals, (ts, inTool) => {
        const e = estimateLmsTime(ts, inTool);
        if (ts.length === 0) return e === null;
        if (!e) return false;
        const union = totalMs([...e.sessions, ...inTool]);
        return (
          e.estimatedMs >= 0 &&
          e.estimatedMs <= e.sessionMs &&
          e.estimatedMs + totalMs(inTool) === union &&
          e.sessionMs <= e.lastMs - e.firstMs
        );
      }),
    );
  });

  it('property: order and duplicates of events do not matter; sessions never overlap and respect the gap', () => {
    fc.assert(
      fc.property(times, (ts) => {
        const a = sessionize(ts);
        const b = sessionize([...ts].reverse().concat(ts));
        const sameSpans =
          JSON.stringify(a.map((s) => [s.startMs, s.endMs])) === JSON.stringify(b.map((s) => [s.startMs, s.endMs]));
        const gapsOk = a.every(
          (s, i) => i === 0 || s.startMs - (a[i - 1] as Interval).endMs > LMS_SESSIONS_V1.sessionGapMs,
        );
        const insideOk = a.every((s) => s.endMs >= s.startMs);
        return sameSpans && gapsOk && insideOk;
      }),
    );
  });

  it('property: more in-tool time never raises the estimate; more events never lower the session time', () => {
    fc.assert(
      fc.property(times, intervals, intervals, times, (ts, inTool, more, extra) => {
        const base = estimateLmsTime(ts, inTool);
        const lessRoom = estimateLmsTime(ts, [...inTool, ...more]);
        const moreEvents = estimateLmsTime([...ts, ...extra], inTool);
        if (!base) return true;
        return (lessRoom?.estimatedMs ?? 0) <= base.estimatedMs && (moreEvents?.sessionMs ?? 0) >= base.sessionMs;
      }),
    );
  });
});

describe('mapping CSV', () => {
  it('reads pairs with , or ;, skips a header and comments, lists bad lines', () => {
    const { rows, errors } = parseMappingCsv(
      '\uFEFFlms_username;learner\r\nanon-1;sub-1\n# comment\n\nanon-2,marie@example.fr\nonly-one\n',
    );
    expect(rows).toEqual([
      { line: 2, lmsUsername: 'anon-1', learner: 'sub-1' },
      { line: 5, lmsUsername: 'anon-2', learner: 'marie@example.fr' },
    ]);
    expect(errors).toEqual([{ line: 6, reason: 'expected two values: LMS username, learner' }]);
  });
});
