import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../../src/http/error-handler.js';
import { lmsCommand, lrsRoutes, recomputeLmsTotals } from '../../src/lms/index.js';
import { signSession } from '../../src/lti/index.js';
import { enrol, moduleIds, seedCourse, seedLearner, seedRegistration, trackTime } from '../exports/seed.js';
import { createTestApp, type TestContext } from '../helpers/app.js';

/**
 * Real platforms: the same learners' activity arriving as raw tracking-log lines, behind Tutor's logging
 * prefix, wrapped by Docker's json-file driver, as xAPI statements one per line, in a pretty-printed
 * array, in an LRS StatementResult, or pushed to the statements endpoint. Each way has its own course
 * (same learners, same instants), so the figures of every way can be compared in one database.
 */

const ISSUER = 'https://fun.test';
const WAYS = ['raw', 'tutor', 'docker', 'jsonl', 'array', 'result', 'push'] as const;
type Way = (typeof WAYS)[number];
const courseKey = (way: Way | 'both') => `course-v1:FUN+${way.toUpperCase()}+2026`;
const OTHER = 'course-v1:OTHERORG+BIG+2026';

let ctx: TestContext;
let dir: string;
let marie: string;
let paul: string;
const courseIds = new Map<string, string>();
let key = '';
let secret = '';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) } };
}

/** Marie's activity in a course, as tracking-log events: two sessions (39 min apart), a browser event. */
function trackingEvents(course: string): object[] {
  const ev = (time: string, type: string, extra: object = {}) => ({
    username: 'marie_d',
    event_type: type,
    name: type,
    event_source: 'server',
    time,
    session: 'a1b2',
    context: { course_id: course, user_id: 41, org_id: 'FUN', path: '/event' },
    page: null,
    event: { POST: {}, GET: {} },
    ...extra,
  });
  return [
    ev('2026-03-02T09:00:00.123456+00:00', `/courses/${course}/courseware/chap1/`),
    ev('2026-03-02T09:05:00.000000+00:00', 'seq_goto', {
      event_source: 'browser',
      context: { course_id: '', user_id: 41, org_id: '', path: '/event' },
      page: `https://lms.fun.test/courses/${course}/courseware/chap1/seq1/`,
      event: JSON.stringify({ old: 1, new: 2, id: `block-v1:${course.slice(10)}+type@sequential+block@s1` }),
    }),
    ev('2026-03-02T09:40:00.900000+00:00', 'play_video'),
    ev('2026-03-02T10:19:00+00:00', 'problem_check'),
    ev('2026-03-02T10:30:00+00:00', 'problem_check'),
    // A management command: written as "anonymous", not a learner.
    ev('2026-03-02T10:31:00+00:00', 'edx.grades.course.grade_calculated', { username: 'anonymous' }),
  ];
}

/** The platform's noise around it: other courses and events without course. */
function noise(i: number): object[] {
  return [
    {
      username: `user${i}`,
      event_type: 'problem_check',
      time: '2026-03-02T09:01:00+00:00',
      context: { course_id: OTHER, user_id: 1000 + i },
    },
    { username: `user${i}`, event_type: '/dashboard', time: '2026-03-02T09:02:00+00:00', context: { user_id: 7 } },
  ];
}

function trackingLine(way: 'raw' | 'tutor' | 'docker', event: object): string {
  const json = JSON.stringify(event);
  if (way === 'raw') return json;
  const tutor = `2026-03-02 09:00:00,123 INFO 20 [tracking] [user 41] [ip 192.0.2.10] logger.py:41 - ${json}`;
  if (way === 'tutor') return tutor;
  return JSON.stringify({ log: `${tutor}\n`, stream: 'stdout', time: '2026-03-02T09:00:00.123456789Z' });
}

/** Paul's activity (actor: his LTI sub) and Marie's (actor: her e-mail) as xAPI statements. */
function statements(course: string, n: number): Array<Record<string, unknown>> {
  const id = (i: number) => `00000000-0000-4000-8000-${String(n * 100 + i).padStart(12, '0')}`;
  const st = (i: number, actor: object, timestamp: string, verb = 'http://id.tincanapi.com/verb/viewed') => ({
    id: id(i),
    actor: { objectType: 'Agent', ...actor },
    verb: { id: verb, display: { en: 'viewed' } },
    object: { id: `https://lms.fun.test/xblock/block-v1:${course.slice(10)}+type@vertical+block@v${i}` },
    timestamp,
    version: '1.0.3',
    context: {
      contextActivities: { parent: [{ id: `https://lms.fun.test/course/${course}`, objectType: 'Activity' }] },
      extensions: { 'https://w3id.org/xapi/openedx/extensions/session-id': 's1' },
    },
  });
  const pauls = { account: { homePage: 'https://lms.fun.test', name: 'sub-paul' } };
  const maries = { mbox: 'mailto:Marie.Dupont@example.fr' };
  return [
    st(1, pauls, '2026-03-03T14:00:00.000Z'),
    st(2, pauls, '2026-03-03T14:10:00.000Z', 'https://w3id.org/xapi/video/verbs/played'),
    st(3, pauls, '2026-03-03T14:25:00.000Z'),
    st(4, pauls, '2026-03-03T15:30:00.000Z'),
    st(5, maries, '2026-03-04T08:00:00.000Z'),
    st(6, maries, '2026-03-04T08:20:00.000Z'),
  ];
}

const basic = (k: string, s: string) => `Basic ${Buffer.from(`${k}:${s}`).toString('base64')}`;

function push(body: unknown, headers: Record<string, string> = {}, method: 'POST' | 'PUT' = 'POST', query = '') {
  return ctx.app.inject({
    method,
    url: `/xapi/statements${query}`,
    headers: {
      authorization: basic(key, secret),
      'x-experience-api-version': '1.0.3',
      'content-type': 'application/json',
      ...headers,
    },
    payload: JSON.stringify(body),
  });
}

async function counts() {
  const db = ctx.app.db;
  const events = await db
    .selectFrom('lms_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  const imports = await db
    .selectFrom('lms_imports')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return { events: Number(events.n), imports: Number(imports.n) };
}

/** The stored figures of one learner in one way's course, without what differs by course. */
async function figures(learnerId: string, way: Way | 'both') {
  const row = await ctx.app.db
    .selectFrom('lms_time_totals')
    .selectAll()
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseIds.get(way) as string)
    .executeTakeFirst();
  if (!row) return null;
  const { computed_at: _c, course_id: _course, ...rest } = row;
  return rest;
}

function file(name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  for (const way of [...WAYS, 'both' as const]) {
    courseIds.set(way, await seedCourse(db, courseKey(way), `Cours ${way}`, '2026'));
  }
  const base = { registrationId: reg, fund: 'akto', idcc: null, registeredAt: new Date('2026-03-01T08:00:00Z') };
  marie = await seedLearner(db, {
    ...base,
    courseId: courseIds.get('raw') as string,
    familyName: 'Dupont',
    givenName: 'Marie',
  });
  paul = await seedLearner(db, {
    ...base,
    courseId: courseIds.get('raw') as string,
    familyName: 'Martin',
    givenName: 'Paul',
  });
  for (const way of [...WAYS, 'both' as const]) {
    if (way === 'raw') continue;
    await enrol(db, marie, reg, courseIds.get(way) as string, base.registeredAt);
    await enrol(db, paul, reg, courseIds.get(way) as string, base.registeredAt);
  }
  await db
    .updateTable('learners')
    .set({ username: 'marie_d', email: 'marie.dupont@example.fr' })
    .where('id', '=', marie)
    .execute();
  await db.updateTable('learners').set({ sub: 'sub-paul' }).where('id', '=', paul).execute();
  dir = mkdtempSync(join(tmpdir(), 'lms-platform-'));

  const c = io();
  expect(await lmsCommand(db, ['lrs-credentials', 'add', '--issuer', `${ISSUER}/`, '--label', 'FUN prod'], c.io)).toBe(
    0,
  );
  const out = c.out.join('');
  key = /key: +(\S+)/.exec(out)?.[1] as string;
  secret = /secret: +(\S+)/.exec(out)?.[1] as string;
  expect(key).toMatch(/^lrs-/);
});
afterAll(async () => {
  await ctx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tracking logs as platforms write them', () => {
  it('raw, Tutor-prefixed and Docker-wrapped lines of the same events give identical figures', async () => {
    for (const way of ['raw', 'tutor', 'docker'] as const) {
      const lines = [...trackingEvents(courseKey(way)), ...noise(1), ...noise(2)].map((e) => trackingLine(way, e));
      const path = file(`tracking-${way}.log.gz`, gzipSync(`${lines.join('\n')}\n`));
      const c = io();
      expect(await lmsCommand(ctx.app.db, ['import', path, '--no-recompute'], c.io)).toBe(0);
      expect(c.out.join('')).toContain(
        `${path}: 10 lines, 5 events, 5 new, 0 already imported, 0 malformed, skipped 1 anonymous and 2 without course`,
      );
      expect(c.out.join('')).toContain(`  other courses, not stored: 2 events in 1 courses (most: ${OTHER} 2)\n`);
    }
    await recomputeLmsTotals(ctx.app.db);
    const raw = await figures(marie, 'raw');
    // 09:00:00.123–09:05, 09:40:00.900 alone (35 min after), 10:19–10:30 (39 min after): three sessions.
    expect(raw).toMatchObject({ event_count: 5, session_count: 3, session_ms: 299_877 + 660_000, overlap_ms: 0 });
    expect(await figures(marie, 'tutor')).toEqual(raw);
    expect(await figures(marie, 'docker')).toEqual(raw);
  });

  it('other courses are counted, never stored; the count is kept with the import', async () => {
    const stored = await ctx.app.db.selectFrom('lms_events').select('course_context_id').distinct().execute();
    expect(stored.map((r) => r.course_context_id).sort()).toEqual(
      [courseKey('docker'), courseKey('raw'), courseKey('tutor')].sort(),
    );
    const imports = await ctx.app.db.selectFrom('lms_imports').select('other_courses').execute();
    expect(imports.map((i) => i.other_courses)).toEqual([{ [OTHER]: 2 }, { [OTHER]: 2 }, { [OTHER]: 2 }]);
  });

  it('--course keeps a course the tool has not seen launched yet', async () => {
    const extra = 'course-v1:FUN+NEXT+2026';
    const path = file('next.log', `${JSON.stringify({ ...noise(3)[0], context: { course_id: extra } })}\n`);
    const without = io();
    await lmsCommand(ctx.app.db, ['import', path, '--no-recompute'], without.io);
    expect(without.out.join('')).toContain('1 lines, 0 events');
    expect(without.out.join('')).toContain(
      '(kept: the courses launched in the tool at least once, and those named with --course)',
    );
    const withIt = io();
    await lmsCommand(ctx.app.db, ['import', path, '--course', extra, '--no-recompute'], withIt.io);
    expect(withIt.out.join('')).toContain('1 lines, 1 events, 1 new');
  });

  it('a truncated .gz keeps what was read and says where it stopped; a truncated document too', async () => {
    const lines = trackingEvents(courseKey('raw')).map((e) => trackingLine('tutor', e));
    const gz = gzipSync(`${lines.join('\n')}\n`.repeat(200));
    const path = file('truncated.log.gz', gz.subarray(0, Math.floor(gz.length * 0.6)));
    const c = io();
    expect(await lmsCommand(ctx.app.db, ['import', path, '--no-recompute'], c.io)).toBe(0);
    expect(c.out.join('')).toMatch(/line \d+: file unreadable from here: unexpected end of file/);
    expect(c.out.join('')).not.toContain(' 0 events');

    const doc = JSON.stringify(statements(OTHER, 30), null, 2);
    const cut = file('truncated.json', doc.slice(0, Math.floor(doc.length * 0.7)));
    const d = io();
    await lmsCommand(ctx.app.db, ['import', cut, '--no-recompute'], d.io);
    expect(d.out.join('')).toMatch(/1 malformed/);
    expect(d.out.join('')).toMatch(/line \d+: the JSON document ends before it is complete/);
  });

  it('unmatched users are summarised; --list and --csv give them all', async () => {
    const c = io();
    await lmsCommand(ctx.app.db, ['recompute'], c.io);
    expect(c.out.join('')).toContain('Unmatched: 1 LMS users, 1 events (unknown_course 1)');
    const csv = join(dir, 'unmatched.csv');
    const l = io();
    await lmsCommand(ctx.app.db, ['recompute', '--list', '--csv', csv], l.io);
    expect(l.out.join('')).toContain('  unmatched: user3 in course-v1:FUN+NEXT+2026 (1 events, unknown_course)');
    expect((await import('node:fs')).readFileSync(csv, 'utf8')).toBe(
      'lms_username,course,events,reason\nuser3,course-v1:FUN+NEXT+2026,1,unknown_course\n',
    );
  });
});

describe('xAPI statements, by file and by push', () => {
  it('one per line, a pretty-printed array, a StatementResult and a push give identical figures', async () => {
    const ways = ['jsonl', 'array', 'result', 'push'] as const;
    for (const [n, way] of ways.entries()) {
      const list = [...statements(courseKey(way), n + 1), ...statements(OTHER, n + 11)];
      if (way === 'push') {
        for (let i = 0; i < list.length; i += 4) {
          const res = await push(list.slice(i, i + 4));
          expect(res.statusCode, res.body).toBe(200);
          expect(res.headers['x-experience-api-version']).toBe('1.0.3');
          expect(res.json()).toEqual(list.slice(i, i + 4).map((s) => s.id));
        }
        continue;
      }
      const text =
        way === 'jsonl'
          ? list.map((s) => JSON.stringify(s)).join('\n')
          : way === 'array'
            ? JSON.stringify(list, null, 2)
            : JSON.stringify({ statements: list, more: '' }, null, 2);
      const path = file(`${way}.json`, text);
      const c = io();
      expect(await lmsCommand(ctx.app.db, ['import', path, '--no-recompute'], c.io)).toBe(0);
      expect(c.out.join('')).toContain('6 events, 6 new, 0 already imported, 0 malformed');
      expect(c.out.join('')).toContain(`other courses, not stored: 6 events in 1 courses (most: ${OTHER} 6)`);
    }
    await recomputeLmsTotals(ctx.app.db);
    // Paul matched by his LTI sub (the platform's anonymous id is his sub), Marie by her e-mail.
    const paulJsonl = await figures(paul, 'jsonl');
    expect(paulJsonl).toMatchObject({
      lms_usernames: ['sub-paul'],
      event_count: 4,
      session_count: 2,
      estimated_seconds: 1500,
    });
    const marieJsonl = await figures(marie, 'jsonl');
    expect(marieJsonl).toMatchObject({ lms_usernames: ['mailto:Marie.Dupont@example.fr'], estimated_seconds: 1200 });
    for (const way of ['array', 'result', 'push'] as const) {
      expect(await figures(paul, way)).toEqual(paulJsonl);
      expect(await figures(marie, way)).toEqual(marieJsonl);
    }
  });

  it('the pushes are journaled with the counts of what was left out', async () => {
    const rows = await ctx.app.db
      .selectFrom('lms_imports')
      .select(['file_name', 'lines', 'inserted', 'skipped', 'other_courses', 'credential_id'])
      .where('file_name', '=', `lrs:${key}`)
      .execute();
    expect(rows).toHaveLength(3);
    expect(rows.reduce((n, r) => n + r.inserted, 0)).toBe(6);
    expect(rows.reduce((n, r) => n + r.skipped, 0)).toBe(6);
    expect(rows.reduce((n, r) => n + (r.other_courses[OTHER] ?? 0), 0)).toBe(6);
    expect(rows.every((r) => r.credential_id !== null)).toBe(true);
  });

  it('a line longer than a read chunk (a one-line array of many statements) is read whole', async () => {
    const many = Array.from({ length: 400 }, (_, i) => ({
      ...statements(courseKey('jsonl'), 90)[0],
      id: `00000000-0000-4000-8000-0000001${String(i).padStart(5, '0')}`,
      padding: 'x'.repeat(800),
    }));
    const path = file('long-line.jsonl', `${JSON.stringify(many)}\r\n${JSON.stringify(statements(OTHER, 91)[0])}`);
    const c = io();
    await lmsCommand(ctx.app.db, ['import', path, '--no-recompute'], c.io);
    expect(c.out.join('')).toContain(`${path}: 2 lines, 400 events, 400 new, 0 already imported, 0 malformed`);
  });

  it('a statement arriving by push and by file is one event', async () => {
    const before = await counts();
    const list = statements(courseKey('push'), 4);
    const path = file('pushed-again.jsonl', list.map((s) => JSON.stringify(s)).join('\n'));
    const c = io();
    await lmsCommand(ctx.app.db, ['import', path, '--no-recompute'], c.io);
    expect(c.out.join('')).toContain('6 events, 0 new, 6 already imported');
    expect((await counts()).events).toBe(before.events);
  });

  it('an activity in both the tracking log and its xAPI statement counts once in event_count', async () => {
    const course = courseKey('both');
    const tracking = trackingEvents(course).filter((e) => (e as { username: string }).username === 'marie_d');
    const asStatements = tracking.map((e, i) => ({
      ...statements(course, 50)[4],
      id: `00000000-0000-4000-8000-0000000090${String(i).padStart(2, '0')}`,
      timestamp: (e as { time: string }).time,
    }));
    await lmsCommand(
      ctx.app.db,
      ['import', file('both.log', tracking.map((e) => JSON.stringify(e)).join('\n')), '--no-recompute'],
      io().io,
    );
    const res = await push(asStatements);
    expect(res.statusCode, res.body).toBe(200);
    await recomputeLmsTotals(ctx.app.db);
    const both = await figures(marie, 'both');
    const rawOnly = await figures(marie, 'raw');
    expect(both?.lms_usernames).toEqual(['mailto:Marie.Dupont@example.fr', 'marie_d']);
    expect(both).toMatchObject({
      event_count: rawOnly?.event_count,
      session_count: rawOnly?.session_count,
      session_ms: rawOnly?.session_ms,
    });
  });
});

describe('the statements endpoint refuses what it must', () => {
  const one = () => statements(courseKey('push'), 60);

  it('refuses a push without credentials, with a wrong secret, or with a revoked key (problem+json)', async () => {
    const before = await counts();
    const none = await push(one(), { authorization: '' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['content-type']).toContain('application/problem+json');
    expect(none.headers['www-authenticate']).toContain('Basic');
    expect(none.headers['x-experience-api-version']).toBe('1.0.3');
    expect((await push(one(), { authorization: basic(key, `${secret}x`) })).statusCode).toBe(401);
    expect((await push(one(), { authorization: basic('lrs-nobody', secret) })).statusCode).toBe(401);

    const c = io();
    expect(await lmsCommand(ctx.app.db, ['lrs-credentials', 'add', '--issuer', ISSUER], c.io)).toBe(0);
    const k2 = /key: +(\S+)/.exec(c.out.join(''))?.[1] as string;
    const s2 = /secret: +(\S+)/.exec(c.out.join(''))?.[1] as string;
    expect((await push([], { authorization: basic(k2, s2) })).statusCode).toBe(400); // authenticated, empty
    expect(await lmsCommand(ctx.app.db, ['lrs-credentials', 'revoke', k2], io().io)).toBe(0);
    expect((await push(one(), { authorization: basic(k2, s2) })).statusCode).toBe(401);
    const list = io();
    await lmsCommand(ctx.app.db, ['lrs-credentials', 'list'], list.io);
    expect(list.out.join('')).toContain(`${k2}\t${ISSUER}\t`);
    expect(list.out.join('')).toMatch(new RegExp(`${k2}.*revoked`));
    expect(list.out.join('')).not.toContain(s2);
    // Only a hash of the secret is stored.
    const stored = await ctx.app.db.selectFrom('lms_lrs_credentials').select('secret_hash').execute();
    expect(stored.every((r) => r.secret_hash.startsWith('scrypt$') && !r.secret_hash.includes(secret))).toBe(true);
    expect(await lmsCommand(ctx.app.db, ['lrs-credentials', 'add', '--issuer', 'https://unknown.test'], io().io)).toBe(
      1,
    );
    expect(await counts()).toEqual(before);
  });

  it('refuses a push without X-Experience-API-Version, or with an unsupported one', async () => {
    const res = await push(one(), { 'x-experience-api-version': '' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'xapi_version_missing' });
    expect(res.headers['x-experience-api-version']).toBe('1.0.3');
    expect((await push(one(), { 'x-experience-api-version': '2.0.0' })).json()).toMatchObject({
      code: 'xapi_version_unsupported',
    });
    // The About resource answers anyone, with the version spoken.
    const about = await ctx.app.inject({ method: 'GET', url: '/xapi/about' });
    expect(about.statusCode).toBe(200);
    expect(about.json()).toEqual({ version: ['1.0.3'] });
  });

  it('a malformed statement in a batch stores nothing of the batch', async () => {
    const before = await counts();
    const batch = one();
    batch[3] = { ...batch[3], verb: { display: { en: 'viewed' } } };
    const res = await push(batch);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ code: 'invalid_statements', errors: [{ index: 3 }] });
    expect(await counts()).toEqual(before);
    // Two statements with one id in a batch: refused too.
    const twice = one();
    twice[1] = { ...twice[1], id: twice[0]?.id };
    expect((await push(twice)).statusCode).toBe(400);
    expect((await push('not a statement')).statusCode).toBe(400);
    expect(await counts()).toEqual(before);
  });

  it('a batch sent again stores nothing new and answers the same ids (no 409)', async () => {
    const batch = one();
    const first = await push(batch);
    expect(first.statusCode).toBe(200);
    const after = await counts();
    const again = await push(batch);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
    expect((await counts()).events).toBe(after.events);
  });

  it('PUT with statementId stores one statement, idempotently; an id mismatch is refused', async () => {
    const s = { ...statements(courseKey('push'), 70)[0] };
    const id = s.id as string;
    delete s.id;
    const res = await push(s, {}, 'PUT', `?statementId=${id}`);
    expect(res.statusCode, res.body).toBe(204);
    expect(res.headers['x-experience-api-version']).toBe('1.0.3');
    const after = await counts();
    expect((await push(s, {}, 'PUT', `?statementId=${id}`)).statusCode).toBe(204);
    expect((await counts()).events).toBe(after.events);
    const other = '00000000-0000-4000-8000-999999999999';
    expect((await push({ ...s, id }, {}, 'PUT', `?statementId=${other}`)).statusCode).toBe(400);
    expect((await push(s, {}, 'PUT', '?statementId=nope')).statusCode).toBe(400);
    expect((await push(s, {}, 'PUT')).statusCode).toBe(400);
  });

  it('a statement without id or timestamp gets them from the endpoint', async () => {
    const s = { ...statements(courseKey('push'), 80)[0] };
    delete s.id;
    delete s.timestamp;
    const res = await push(s);
    expect(res.statusCode).toBe(200);
    expect(res.json()[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('limits the rate, the body and the number of statements per request', async () => {
    const app = Fastify();
    app.decorate('db', ctx.app.db);
    registerErrorHandling(app);
    await app.register(lrsRoutes, { rateLimitPerMinute: 3, bodyLimit: 4000, maxStatements: 2 });
    await app.ready();
    try {
      const send = (body: unknown) =>
        app.inject({
          method: 'POST',
          url: '/xapi/statements',
          headers: {
            authorization: basic(key, secret),
            'x-experience-api-version': '1.0.3',
            'content-type': 'application/json',
          },
          payload: JSON.stringify(body),
        });
      expect((await send(one().slice(0, 3))).statusCode).toBe(413);
      expect((await send([...one(), ...one(), ...one()])).statusCode).toBe(413);
      expect((await send(one().slice(0, 1))).statusCode).toBe(200);
      const limited = await send(one().slice(0, 1));
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['content-type']).toContain('application/problem+json');
      // Refused attempts count too: guessing a secret is throttled like pushing.
      const guess = () =>
        app.inject({
          method: 'POST',
          url: '/xapi/statements',
          headers: { authorization: basic('lrs-guessed', 'x'), 'x-experience-api-version': '1.0.3' },
          payload: '[]',
        });
      expect((await guess()).statusCode).toBe(401);
      expect((await guess()).statusCode).toBe(401);
      expect((await guess()).statusCode).toBe(401);
      expect((await guess()).statusCode).toBe(429);
    } finally {
      await app.close();
    }
  });
});

describe('what the learner sees while logs are awaited', () => {
  async function page(learnerId: string, way: Way) {
    const reg = await ctx.app.db.selectFrom('lti_registrations').select('id').executeTakeFirstOrThrow();
    const token = await signSession(ctx.app, {
      learnerId,
      courseId: courseIds.get(way) as string,
      resourceLinkId: null,
      launchId: crypto.randomUUID(),
      registrationId: reg.id,
      role: 'learner',
    });
    const res = await ctx.app.inject({ method: 'GET', url: `/tracking/time?session_token=${token}` });
    expect(res.statusCode).toBe(200);
    return parseHTML(res.body).document;
  }

  it('time in the tool after the last log received shows "estimation en attente des journaux du …"', async () => {
    const modules = await moduleIds(ctx.app.db, 'akto');
    // The latest event received for the jsonl course is Marie's, 4 March 08:20 UTC; Paul is in the tool on
    // 5 March: that day's logs have not arrived.
    await trackTime(ctx.app.db, paul, courseIds.get('jsonl') as string, [
      {
        moduleId: modules.common[0] as string,
        start: new Date('2026-03-05T09:00:00Z'),
        end: new Date('2026-03-05T09:20:00Z'),
        beats: 40,
      },
    ]);
    const doc = await page(paul, 'jsonl');
    const dd = [...doc.querySelectorAll('dt')].find((d) =>
      d.textContent?.startsWith('Tronc commun'),
    )?.nextElementSibling;
    expect(dd?.textContent).toBe('25 min (estimation en attente des journaux du 5 mars 2026)');

    // A learner with no event yet but time in the tool: the wording alone, beside the measured total.
    const reg = await ctx.app.db.selectFrom('lti_registrations').select('id').executeTakeFirstOrThrow();
    const lea = await seedLearner(ctx.app.db, {
      registrationId: reg.id,
      courseId: courseIds.get('jsonl') as string,
      fund: 'akto',
      idcc: null,
      familyName: 'Sans',
      givenName: 'Léa',
      registeredAt: new Date('2026-03-01T08:00:00Z'),
    });
    await trackTime(ctx.app.db, lea, courseIds.get('jsonl') as string, [
      {
        moduleId: modules.common[0] as string,
        start: new Date('2026-03-06T22:30:00Z'),
        end: new Date('2026-03-06T22:50:00Z'),
        beats: 40,
      },
    ]);
    const leaPage = await page(lea, 'jsonl');
    expect(leaPage.querySelector('.tronc-commun-attente')?.textContent).toBe(
      'Tronc commun : estimation en attente des journaux du 6 mars 2026.',
    );
    // Marie was in no module after the last log: no waiting shown.
    const mariePage = await page(marie, 'jsonl');
    expect(mariePage.body.textContent).not.toContain('en attente');
  });
});
