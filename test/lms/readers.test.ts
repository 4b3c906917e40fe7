import { describe, expect, it } from 'vitest';
import {
  CourseFilter,
  courseKeyIn,
  courseKeyInBytes,
  distinctEventCount,
  readLine,
  StatementSplitter,
  startsDocument,
  statementProblem,
  unwrapLine,
} from '../../src/lms/index.js';

/** Reading real platform logs: logging prefixes, Docker's wrapping, xAPI documents; no database. */

const EVENT = {
  username: 'marie_d',
  event_type: 'problem_check',
  name: 'problem_check',
  event_source: 'server',
  time: '2026-03-02T09:20:00.500000+00:00',
  context: { course_id: 'course-v1:FUN+TNUM+2026_T1', user_id: 41 },
};
const RAW = JSON.stringify(EVENT);
const TUTOR = `2026-03-02 09:20:00,500 INFO 20 [tracking] [user 41] [ip 192.0.2.10] logger.py:41 - ${RAW}`;
const DOCKER = JSON.stringify({ log: `${TUTOR}\n`, stream: 'stdout', time: '2026-03-02T09:20:00.501234567Z' });
const SYSLOG = `Mar  2 09:20:00 lms-1 tracking: ${RAW}`;

const STATEMENT = {
  id: '2f6d8f3c-0000-4000-8000-000000000001',
  actor: { objectType: 'Agent', account: { homePage: 'https://lms.fun.test', name: 'sub-paul' } },
  verb: { id: 'http://id.tincanapi.com/verb/viewed' },
  object: { id: 'https://lms.fun.test/xblock/block-v1:FUN+TNUM+2026_T1+type@vertical+block@v1' },
  timestamp: '2026-03-03T14:00:00.000Z',
  context: { contextActivities: { parent: [{ id: 'https://lms.fun.test/course/course-v1:FUN+TNUM+2026_T1' }] } },
};

describe('log lines behind a prefix or a wrapper', () => {
  it('Tutor, syslog and Docker json-file lines give the very event of the raw line (same hash)', () => {
    const [raw] = readLine(RAW, null);
    expect(raw?.kind).toBe('event');
    for (const line of [TUTOR, DOCKER, SYSLOG, `  ${RAW}\r`]) expect(readLine(line, null)).toEqual([raw]);
    expect(unwrapLine(DOCKER)).toBe(RAW);
    expect(unwrapLine(TUTOR)).toBe(RAW);
  });

  it('a prefixed line with no JSON object, or broken JSON, is malformed', () => {
    expect(readLine('2026-03-02 09:20:00,500 INFO 20 [tracking] nothing here', null)).toEqual([
      { kind: 'malformed', reason: 'no JSON object on this line' },
    ]);
    expect(readLine(`${TUTOR.slice(0, -10)}`, null)).toEqual([{ kind: 'malformed', reason: 'not valid JSON' }]);
    expect(readLine(JSON.stringify({ log: 'plain text\n', stream: 'stderr', time: 'x' }), null)).toEqual([
      { kind: 'malformed', reason: 'no JSON object on this line' },
    ]);
  });

  it('the username "anonymous" (management commands) is skipped as anonymous, not a user', () => {
    expect(readLine(JSON.stringify({ ...EVENT, username: 'anonymous' }), null)).toEqual([
      { kind: 'skipped', reason: 'anonymous' },
    ]);
  });

  it('a course key inside an escaped JSON string stops before the backslash', () => {
    const filter = new CourseFilter(['course-v1:FUN+TNUM+2026_T1']);
    expect(filter.mayMention(DOCKER)).toBe(true);
    expect(filter.mayMention(RAW.replaceAll('TNUM', 'OTHER'))).toBe(false);
    expect(filter.mayMention('…/courses/course-v1:FUN%2BTNUM%2B2026_T1/…')).toBe(true);
    expect(filter.keeps('course-v1:FUN+TNUM+2026_T1')).toBe(true);
    expect(filter.keeps('course-v1:FUN+OTHER+2026')).toBe(false);
  });

  it('reads the course key of a raw line from its bytes, as from the decoded line', () => {
    for (const line of [
      RAW,
      TUTOR,
      DOCKER,
      RAW.replaceAll('TNUM', 'OTHER'),
      '{"page": "/courses/course-v1:A%2BB%2BC/x"}',
    ]) {
      expect(courseKeyInBytes(Buffer.from(line))).toBe(courseKeyIn(line));
    }
    expect(courseKeyInBytes(Buffer.from('{"id": "block-v1:FUN+X+R+type@video+block@v"}'))).toBe('course-v1:FUN+X+R');
    expect(courseKeyInBytes(Buffer.from('{"username": "u", "event_type": "/dashboard"}'))).toBeNull();
  });

  it('a one-line StatementResult gives its statements', () => {
    const line = JSON.stringify({ statements: [STATEMENT, { ...STATEMENT, id: undefined }], more: '' });
    const results = readLine(line, null);
    expect(results.map((r) => r.kind)).toEqual(['event', 'event']);
  });
});

describe('xAPI documents over several lines', () => {
  const feed = (text: string) => {
    const splitter = new StatementSplitter();
    const items = text.split('\n').flatMap((line, i) => splitter.push(line, i + 1));
    return { items, splitter };
  };

  it('recognises a document from its first line', () => {
    expect(startsDocument('[')).toBe(true);
    expect(startsDocument('{')).toBe(true);
    expect(startsDocument('{"statements": [')).toBe(true);
    expect(startsDocument(JSON.stringify(STATEMENT))).toBe(false);
    expect(startsDocument('{"username": "x", "ti')).toBe(false);
    expect(startsDocument('2026-03-02 INFO [tracking] {')).toBe(false);
  });

  it('splits a pretty-printed array, a StatementResult and concatenated statements alike', () => {
    const tricky = { ...STATEMENT, id: '2f6d8f3c-0000-4000-8000-000000000002', result: { response: 'a } ] { "x' } };
    for (const text of [
      JSON.stringify([STATEMENT, tricky], null, 2),
      JSON.stringify({ more: '/xapi/statements?more=abc', statements: [STATEMENT, tricky] }, null, 4),
      `${JSON.stringify(STATEMENT, null, 2)}\n${JSON.stringify(tricky, null, 2)}`,
    ]) {
      const { items, splitter } = feed(text);
      expect(items.map((i) => JSON.parse(i.text))).toEqual([STATEMENT, tricky]);
      expect(splitter.unfinished).toBe(false);
      expect(splitter.stray).toEqual([]);
    }
    // Line numbers point at each statement's first line.
    const { items } = feed(JSON.stringify([STATEMENT, tricky], null, 2));
    expect(items[0]?.line).toBe(2);
    expect(items[1]?.line).toBeGreaterThan(10);
  });

  it('a truncated document is reported unfinished; statements before the cut are kept', () => {
    const text = JSON.stringify([STATEMENT, STATEMENT], null, 2);
    const { items, splitter } = feed(text.slice(0, text.length - 40));
    expect(items).toHaveLength(1);
    expect(splitter.unfinished).toBe(true);
  });
});

describe('statements checked as an LRS checks them', () => {
  it('accepts a statement as event-routing-backends sends it', () => {
    expect(statementProblem(STATEMENT)).toBeNull();
    expect(statementProblem({ ...STATEMENT, id: undefined, timestamp: undefined })).toBeNull();
    expect(statementProblem({ ...STATEMENT, actor: { mbox: 'mailto:paul@example.fr' } })).toBeNull();
  });

  it.each([
    [{ ...STATEMENT, id: 'not-a-uuid' }, '"id" must be a UUID'],
    [{ ...STATEMENT, actor: undefined }, '"actor" is missing'],
    [{ ...STATEMENT, actor: { mbox: 'mailto:a@b.c', account: STATEMENT.actor.account } }, 'exactly one'],
    [{ ...STATEMENT, actor: { mbox: 'paul@example.fr' } }, 'mailto:'],
    [{ ...STATEMENT, actor: { account: { name: 'x' } } }, '"homePage" and "name"'],
    [{ ...STATEMENT, verb: { display: { en: 'viewed' } } }, '"verb.id"'],
    [{ ...STATEMENT, object: undefined }, '"object" is missing'],
    [{ ...STATEMENT, timestamp: 'hier' }, '"timestamp"'],
    [[STATEMENT], 'JSON object'],
  ])('refuses %#', (statement, reason) => {
    expect(statementProblem(statement)).toContain(reason);
  });
});

describe('an activity seen in the tracking log and as its xAPI statement', () => {
  it('counts once per instant; two events of one source at one instant stay two', () => {
    expect(
      distinctEventCount([
        { ms: 1, source: 'tracking-log' },
        { ms: 1, source: 'xapi' },
        { ms: 2, source: 'tracking-log' },
        { ms: 2, source: 'tracking-log' },
        { ms: 2, source: 'xapi' },
        { ms: 3, source: 'xapi' },
      ]),
    ).toBe(4);
    expect(distinctEventCount([])).toBe(0);
  });
});
