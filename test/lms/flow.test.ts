import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUMMARY_COLUMNS } from '../../src/exports/columns.js';
import { dailyLmsRebuild, importLmsFile, lmsCommand, lmsEstimateFor, recomputeLmsTotals } from '../../src/lms/index.js';
import { signSession } from '../../src/lti/index.js';
import { registerCommonTrunkEstimate } from '../../src/tracking/index.js';
import { pdfText } from '../certificates/helpers.js';
import { parseCsv } from '../exports/csv.js';
import { moduleIds, seedCourse, seedLearner, seedRegistration, trackTime } from '../exports/seed.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { addToken, addUser, bearer } from '../portal/helpers.js';

/**
 * Open edX logs → mapping → estimates → certificate and export, on the fixtures of test/fixtures/lms:
 * a tracking log (server and browser events, a duplicate, malformed lines, an anonymous event, an unknown
 * user, an unknown course), its rotated continuation gzipped (the second session, 39 min later), and an
 * xAPI export of a learner whose platform shares no username (mapped explicitly).
 */
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'lms');
const CONTEXT = 'course-v1:FUN+TNUM+2026_T1';
const ANON = '9c1f0e2a-6b7d-4c1e-8f00-3a2b1c0d9e8f';
const at = (iso: string) => new Date(iso);

let ctx: TestContext;
let dir: string;
let courseId: string;
let marie: string;
let paul: string;
let opsToken: string;
const files: Record<string, string> = {};

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) } };
}

/** A session token of a learner launched into the course (for the learner's own pages). */
async function learnerToken(learnerId: string): Promise<string> {
  const reg = await ctx.app.db.selectFrom('lti_registrations').select('id').executeTakeFirstOrThrow();
  return signSession(ctx.app, {
    learnerId,
    courseId,
    resourceLinkId: null,
    launchId: randomUUID(),
    registrationId: reg.id,
    role: 'learner',
  });
}

async function totals() {
  return ctx.app.db.selectFrom('lms_time_totals').selectAll().orderBy('learner_id').execute();
}

beforeAll(async () => {
  ctx = await createTestApp();
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  courseId = await seedCourse(db, CONTEXT, 'Transition numérique des TPE-PME', 'Session printemps 2026');
  const modules = await moduleIds(db, 'akto');
  marie = await seedLearner(db, {
    registrationId: reg,
    courseId,
    fund: 'akto',
    idcc: null,
    familyName: 'Dupont',
    givenName: 'Marie',
    registeredAt: at('2026-03-01T08:00:00Z'),
  });
  paul = await seedLearner(db, {
    registrationId: reg,
    courseId,
    fund: 'akto',
    idcc: null,
    familyName: 'Martin',
    givenName: 'Paul',
    registeredAt: at('2026-03-01T08:00:00Z'),
  });
  // Marie's launch carried preferred_username (PII sharing on); Paul's did not.
  await db.updateTable('learners').set({ username: 'marie_d' }).where('id', '=', marie).execute();
  await db.updateTable('learners').set({ sub: 'sub-paul' }).where('id', '=', paul).execute();
  // Marie's time in the tool: 09:10–09:25 inside her first LMS session, 11:00–11:10 after both.
  await trackTime(db, marie, courseId, [
    {
      moduleId: modules.common[0] as string,
      start: at('2026-03-02T09:10:00Z'),
      end: at('2026-03-02T09:25:00Z'),
      beats: 30,
    },
    {
      moduleId: modules.common[1] as string,
      start: at('2026-03-02T11:00:00Z'),
      end: at('2026-03-02T11:10:00Z'),
      beats: 20,
    },
  ]);
  opsToken = await addToken(db, await addUser(db, 'ops@fun.test', 'operator', null));

  dir = mkdtempSync(join(tmpdir(), 'lms-'));
  files.log = join(dir, 'tracking.log');
  copyFileSync(join(FIXTURES, 'tracking.log'), files.log);
  files.gz = join(dir, 'tracking.log-20260303.gz');
  writeFileSync(files.gz, gzipSync(readFileSync(join(FIXTURES, 'tracking-2026-03-02-1.log'))));
  files.xapi = join(dir, 'statements.jsonl');
  copyFileSync(join(FIXTURES, 'xapi.jsonl'), files.xapi);
});
afterAll(async () => {
  await ctx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('import, mapping and estimates', () => {
  it('imports a tracking log and its gzipped rotation, reports malformed lines by number, unmatched users', async () => {
    const c = io();
    const code = await lmsCommand(ctx.app.db, ['import', files.log as string, files.gz as string], c.io);
    const out = c.out.join('');
    expect(code, c.err.join('')).toBe(0);
    expect(out).toContain(
      `${files.log}: 12 lines, 7 events, 6 new, 1 already imported, 3 malformed, skipped 1 anonymous and 0 without course`,
    );
    // The platform's other course is counted, never stored.
    expect(out).toContain('  other courses, not stored: 1 events in 1 courses (most: course-v1:FUN+OTHER+2026 1)\n');
    expect(out).toContain('  line 4: not valid JSON\n');
    expect(out).toContain('  line 6: neither a tracking-log event nor an xAPI statement\n');
    expect(out).toContain('  line 11: missing or invalid "time"\n');
    expect(out).toContain(`${files.gz}: 2 lines, 2 events, 2 new, 0 already imported, 0 malformed`);
    expect(out).toContain('1 learner × course totals');
    expect(out).toContain(`unmatched: ghost42 in ${CONTEXT} (2 events, unknown_user)`);
    expect(out).toContain('Unmatched: 1 LMS users, 2 events (unknown_user 1)');
    const stored = await ctx.app.db.selectFrom('lms_events').select('course_context_id').distinct().execute();
    expect(stored.map((r) => r.course_context_id)).toEqual([CONTEXT]);

    // Marie: 09:00:00.123–09:40:00.900 and 10:20–10:30 (39 min gap: two sessions) = 3 000 777 ms; the tool
    // measured 15 min inside the first session: 2 100 777 ms estimated on the LMS's own pages.
    const [row] = await totals();
    expect(row).toMatchObject({
      learner_id: marie,
      course_id: courseId,
      lms_usernames: ['marie_d'],
      event_count: 6,
      session_count: 2,
      session_ms: 3_000_777,
      overlap_ms: 900_000,
      estimated_ms: 2_100_777,
      estimated_seconds: 2100,
      algorithm: 'lms-sessions-v1',
      params: { algorithm: 'lms-sessions-v1', sessionGapMs: 1_800_000, inToolOverlap: 'subtracted' },
    });
    // The unmatched user's events are kept, to be credited once mapped.
    const ghost = await ctx.app.db
      .selectFrom('lms_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('lms_username', '=', 'ghost42')
      .executeTakeFirstOrThrow();
    expect(Number(ghost.n)).toBe(2);
  });

  it('importing the same files again changes nothing', async () => {
    const before = await totals();
    const count = async () =>
      Number(
        (
          await ctx.app.db
            .selectFrom('lms_events')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const events = await count();
    const again = await importLmsFile(ctx.app.db, files.log as string);
    expect(again).toMatchObject({ lines: 12, events: 7, inserted: 0, duplicates: 7, malformed: 3 });
    expect((await importLmsFile(ctx.app.db, files.gz as string)).inserted).toBe(0);
    await recomputeLmsTotals(ctx.app.db);
    expect(await count()).toBe(events);
    const after = await totals();
    expect(after.map(({ computed_at: _c, ...r }) => r)).toEqual(before.map(({ computed_at: _c, ...r }) => r));
    // Evidence is append-only.
    await expect(ctx.app.db.deleteFrom('lms_events').execute()).rejects.toThrow(/append-only/);
  });

  it('xAPI: an anonymised actor stays unmatched until mapped explicitly, then is credited', async () => {
    const c = io();
    expect(await lmsCommand(ctx.app.db, ['import', '--format', 'xapi', files.xapi as string], c.io)).toBe(0);
    const out = c.out.join('');
    expect(out).toContain(`${files.xapi}: 6 lines, 5 events, 4 new, 1 already imported, 1 malformed`);
    expect(out).toContain('  line 6: missing or invalid "timestamp"\n');
    expect(out).toContain(`unmatched: ${ANON} in ${CONTEXT} (4 events, unknown_user)`);
    expect((await totals()).map((t) => t.learner_id)).toEqual([marie]);

    const bad = io();
    expect(await lmsCommand(ctx.app.db, ['map', ANON, 'nobody'], bad.io)).toBe(1);
    expect(bad.err.join('')).toContain('no learner "nobody"');

    const m = io();
    expect(await lmsCommand(ctx.app.db, ['map', ANON, 'sub-paul'], m.io)).toBe(0);
    expect(m.out.join('')).toContain(`${ANON} → learner ${paul}`);
    expect(m.out.join('')).not.toContain(`unmatched: ${ANON}`);
    // 14:00, 14:10, 14:25, then 15:30 alone (nothing after a last event): 25 min.
    const row = (await totals()).find((t) => t.learner_id === paul);
    expect(row).toMatchObject({ event_count: 4, session_count: 2, estimated_seconds: 1500, overlap_ms: 0 });
  });

  it('a mapping CSV maps the remaining user; unmap and recompute take it back', async () => {
    const csv = join(dir, 'mapping.csv');
    writeFileSync(csv, `lms_username;learner\nghost42;${marie}\nmissing;nobody@example.fr\n`);
    const c = io();
    expect(await lmsCommand(ctx.app.db, ['map', '--file', csv], c.io)).toBe(1);
    expect(c.out.join('')).toContain('1 mappings recorded');
    expect(c.out.join('')).toContain('  line 3: no learner "nobody@example.fr"');
    // ghost42's 09:31 and 09:50 events join Marie's first session, and 09:50 → 10:20 is exactly 30 min:
    // the gap does not exceed the cutoff, so 09:00:00.123–10:30 is now one session.
    let row = (await totals()).find((t) => t.learner_id === marie);
    expect(row?.lms_usernames).toEqual(['ghost42', 'marie_d']);
    expect(row).toMatchObject({ session_count: 1, event_count: 8, session_ms: 5_399_877 });
    const u = io();
    expect(await lmsCommand(ctx.app.db, ['unmap', 'ghost42'], u.io)).toBe(0);
    row = (await totals()).find((t) => t.learner_id === marie);
    expect(row?.estimated_seconds).toBe(2100);
  });

  it('the estimate follows in-tool time measured later (no second counted twice)', async () => {
    const modules = await moduleIds(ctx.app.db, 'akto');
    await trackTime(ctx.app.db, paul, courseId, [
      {
        moduleId: modules.common[2] as string,
        start: at('2026-03-03T14:05:00Z'),
        end: at('2026-03-03T14:15:00Z'),
        beats: 20,
      },
    ]);
    const estimate = await lmsEstimateFor(ctx.app.db, paul, courseId);
    expect(estimate).toMatchObject({ seconds: 900, algorithm: 'lms-sessions-v1', sessionCount: 2, eventCount: 4 });
    expect((await totals()).find((t) => t.learner_id === paul)?.estimated_seconds).toBe(900);
    expect(await recomputeLmsTotals(ctx.app.db)).toMatchObject({ totals: 2, estimatedSeconds: 3000 });
  });
});

describe('what people see', () => {
  it('the certificate states the common-trunk time estimated from the logs, and the total', async () => {
    const issued = await ctx.app.certificates.issue({
      learnerId: marie,
      courseId,
      kind: 'operator',
      by: null,
      reason: 'test des journaux',
    });
    const record = await ctx.app.certificates.find(issued.number);
    const data = JSON.parse(record.data_canonical);
    expect(data.durations).toMatchObject({
      modulesSeconds: 1500,
      commonTrunkEstimatedSeconds: 2100,
      totalSeconds: 3600,
    });
    expect(data.timeAccounting.params.lms).toEqual({
      algorithm: 'lms-sessions-v1',
      sessionGapMs: 1_800_000,
      inToolOverlap: 'subtracted',
    });
    const text = pdfText((await ctx.app.certificates.pdf(record)).bytes).replace(/\s+/g, ' ');
    // pdftotext reads the two columns' labels first, then their values: 25 min measured, 35 min estimated,
    // then the total (1 h), the planned duration and the modules completed.
    expect(text).toMatch(/Tronc commun, estimée d.après les journaux de la plateforme 25 min 35 min/);
    expect(text).toMatch(/Durée totale réalisée Durée prévue Modules terminés 1 ?h \d/);
  });

  it("the learner's time page shows the same estimate beside the time measured in the modules", async () => {
    const token = await learnerToken(marie);
    const res = await ctx.app.inject({ method: 'GET', url: `/tracking/time?session_token=${token}` });
    expect(res.statusCode).toBe(200);
    const text = res.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    // 25 min measured in the tool, 35 min estimated from the logs (the in-tool minutes taken out), 1 h in all.
    expect(text).toContain('Mesuré dans les modules 25 min');
    expect(text).toContain('Tronc commun, estimé d’après les journaux de la plateforme 35 min');
    expect(text).toContain('Total 1 h');
    expect(text).toContain('sans compter deux fois le temps déjà mesuré dans les modules');
  });

  it('a learner without any LMS event keeps "non disponible"', async () => {
    const db = ctx.app.db;
    const reg = await db.selectFrom('lti_registrations').select('id').executeTakeFirstOrThrow();
    const other = await seedLearner(db, {
      registrationId: reg.id,
      courseId,
      fund: 'akto',
      idcc: null,
      familyName: 'Sans',
      givenName: 'Journaux',
      registeredAt: at('2026-03-01T08:00:00Z'),
    });
    const issued = await ctx.app.certificates.issue({
      learnerId: other,
      courseId,
      kind: 'operator',
      by: null,
      reason: 'test',
    });
    const record = await ctx.app.certificates.find(issued.number);
    expect(JSON.parse(record.data_canonical).durations.commonTrunkEstimatedSeconds).toBeNull();
    expect(pdfText((await ctx.app.certificates.pdf(record)).bytes).replace(/\s+/g, ' ')).toContain('non disponible');
    // …and their time page shows the time measured in the tool alone, with no estimate line.
    const token = await learnerToken(other);
    const page = await ctx.app.inject({ method: 'GET', url: `/tracking/time?session_token=${token}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Total : <strong>0 min</strong>');
    expect(page.body).not.toContain('Tronc commun');
  });

  it('the summary export fills the LMS-estimated and total columns', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/api/v1/exports/summary?format=csv&courseId=${courseId}`,
      headers: bearer(opsToken),
    });
    expect(res.statusCode, res.body).toBe(200);
    const rows = parseCsv(res.body);
    const header = rows[0] as string[];
    expect(header).toEqual(SUMMARY_COLUMNS.map((c) => c.header));
    const col = (name: string) => header.indexOf(name);
    const id = col('Identifiant apprenant');
    const lms = col('Temps estimé sur le cours FUN (h:mm)');
    const lmsHours = col('Temps estimé sur le cours FUN (heures)');
    const total = col('Temps total (h:mm)');
    const byLearner = new Map(rows.slice(1).map((r) => [r[id], r]));
    expect(byLearner.get(marie)?.[lms]).toBe('0:35');
    expect(byLearner.get(marie)?.[lmsHours]).toBe('0,58');
    expect(byLearner.get(marie)?.[total]).toBe('1:00');
    // Paul: 10 min in the tool, 15 min on the LMS's own pages.
    expect(byLearner.get(paul)?.[lms]).toBe('0:15');
    expect(byLearner.get(paul)?.[total]).toBe('0:25');
    const none = rows.slice(1).find((r) => r[id] !== marie && r[id] !== paul);
    expect(none?.[lms]).toBe('');
  });

  it('rebuilds the stored estimates once per Paris day in a process', async () => {
    const rebuild = dailyLmsRebuild(ctx.app.db);
    const morning = Date.parse('2026-03-10T07:00:00Z');
    expect(await rebuild(morning)).toMatchObject({ totals: 2 });
    expect(await rebuild(morning + 3 * 3600_000)).toBeNull();
    // 23:30 UTC is already the next day in Paris.
    expect(await rebuild(Date.parse('2026-03-10T23:30:00Z'))).toMatchObject({ totals: 2 });
  });

  it.runIf(process.env.TEST_DATABASE_URL)(
    'a rebuild never fails on an estimate stored by a page at the same moment (PostgreSQL)',
    async () => {
      const db = ctx.app.db;
      const before = await totals();
      const mine = before.find((t) => t.learner_id === marie);
      if (!mine) throw new Error('no stored estimate for Marie');
      await db.deleteFrom('lms_time_totals').where('learner_id', '=', marie).execute();
      // Another connection stores Marie's estimate and holds its transaction open…
      let release = () => {};
      const released = new Promise<void>((r) => {
        release = r;
      });
      let stored = () => {};
      const storedOnce = new Promise<void>((r) => {
        stored = r;
      });
      const page = db.transaction().execute(async (trx) => {
        await trx
          .insertInto('lms_time_totals')
          .values({
            ...mine,
            lms_usernames: JSON.stringify(mine.lms_usernames),
            params: JSON.stringify(mine.params),
            estimated_seconds: 1,
          })
          .execute();
        stored();
        await released;
      });
      await storedOnce;
      // …while the rebuild deletes every row (not that one: it is not committed) and inserts Marie's:
      // its insert waits on the open transaction's row.
      const rebuild = recomputeLmsTotals(db);
      // Waits for the lock wait itself (an observed state, not a timer); the test's timeout is the outer limit.
      for (;;) {
        const waiting = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
        if ((waiting.rows[0]?.n ?? 0) > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      release();
      await page;
      await expect(rebuild).resolves.toMatchObject({ totals: 2 });
      expect(await totals()).toEqual(before.map((t) => ({ ...t, computed_at: expect.any(Date) })));
    },
    180_000,
  );

  // Last in the file: it replaces the estimate the lms plugin gave the tracking.
  it("a failing estimate leaves the learner's page with the time measured in the modules", async () => {
    const token = await learnerToken(marie);
    registerCommonTrunkEstimate(ctx.app, async () => {
      throw new Error('lms_time_totals unavailable');
    });
    const res = await ctx.app.inject({ method: 'GET', url: `/tracking/time?session_token=${token}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Total : <strong>25 min</strong>');
    expect(res.body).not.toContain('Tronc commun');
  });
});
