import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privacyCommand } from '../../src/privacy/cli.js';
import { eraseLearner, type LearnerDataExport } from '../../src/privacy/index.js';
import { addYears, pseudonymFor } from '../../src/privacy/rules.js';
import { ALGORITHM } from '../../src/tracking/rules.js';
import { verifyEvidence } from '../../src/tracking/service/maintenance.js';
import { type Person, seedCourse } from '../certificates/helpers.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { TestClock, useClock } from '../tracking/helpers.js';
import { addProfile, depsOf, digestToday, issueCertificate, someBeats, useFacts } from './helpers.js';

/**
 * Access (the learner's download and the operator's CLI export match the database) and erasure of a learner
 * with an issued certificate (pseudonym everywhere, the verification page without personal data, the chain
 * still verifying, the erasure audited).
 */

let ctx: TestContext;
let courseId: string;
let contextId: string;
let eloise: Person;
let marc: Person;
let eloiseNumber: string;
let marcNumber: string;
let moduleId: string;
const today = new Date().toISOString().slice(0, 10);

async function exportOf(token: string, format: 'json' | 'html') {
  return ctx.app.inject({
    method: 'POST',
    url: '/privacy/export',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ session_token: token, format }).toString(),
  });
}

beforeAll(async () => {
  ctx = await createTestApp();
  const { app } = ctx;
  const facts = useFacts(app);
  const clock = new TestClock(Date.now() - 3_600_000);
  await useClock(app, clock);
  const course = await seedCourse(app, {
    title: 'Transition numérique',
    people: [{ role: 'learner' }, { role: 'learner' }],
  });
  courseId = course.courseId;
  [eloise, marc] = course.people as [Person, Person];
  contextId = (
    await app.db.selectFrom('courses').select('context_id').where('id', '=', courseId).executeTakeFirstOrThrow()
  ).context_id;
  await app.db
    .updateTable('learners')
    .set({
      name: 'Éloïse Lefèvre',
      given_name: 'Éloïse',
      family_name: 'Lefèvre',
      email: 'eloise@hotel-du-parc.fr',
      username: 'eloise.l',
    })
    .where('id', '=', eloise.id)
    .execute();
  await addProfile(app.db, eloise.id, { given: 'Éloïse', family: 'Lefèvre' });
  await addProfile(app.db, marc.id, { given: 'Marc', family: 'Dupont' });
  const mod = await app.db
    .selectFrom('modules')
    .select(['id', 'current_version'])
    .where('fund_slug', '=', 'akto')
    .orderBy('id')
    .executeTakeFirstOrThrow();
  moduleId = mod.id;
  await app.db
    .insertInto('module_progress')
    .values({
      learner_id: marc.id,
      course_id: courseId,
      module_id: mod.id,
      module_version: mod.current_version,
      fund_slug: 'akto',
      quiz_answers: JSON.stringify({
        answers: [1, 2],
        correct: 2,
        total: 2,
        answeredAt: new Date().toISOString(),
      }) as never,
      completed_at: new Date(),
    })
    .execute();
  await someBeats(app, clock, eloise, courseId);
  await someBeats(app, clock, marc, courseId, mod.id);
  await someBeats(app, clock, marc, courseId, 'akto-clients');
  const imp = await app.db
    .insertInto('lms_imports')
    .values({ file_name: 'tracking.log', format: 'tracking-log' })
    .returning('id')
    .executeTakeFirstOrThrow();
  await app.db
    .insertInto('lms_user_mappings')
    .values({ lms_username: 'eloise.fun', learner_id: eloise.id, source: 'cli' })
    .execute();
  await app.db
    .insertInto('lms_events')
    .values(
      (['eloise.l', 'eloise.fun', 'eloise.fun'] as const).map((u, i) => ({
        hash: `e${i}`,
        source: 'tracking-log' as const,
        issuer: null,
        lms_username: u,
        lms_user_id: null,
        course_context_id: contextId,
        occurred_at: new Date(Date.now() - (i + 1) * 60_000),
        event_type: 'page_view',
        event_source: 'browser',
        session_id: null,
        import_id: imp.id,
      })),
    )
    .execute();
  eloiseNumber = await issueCertificate(app, facts, eloise, courseId, { given: 'Éloïse', family: 'Lefèvre' });
  marcNumber = await issueCertificate(app, facts, marc, courseId, { given: 'Marc', family: 'Dupont' });
  await digestToday(app.db);
});
afterAll(() => ctx.close());

describe('access and portability: the learner downloads their data', () => {
  it('as JSON that matches the database', async () => {
    const { db } = ctx.app;
    const res = await exportOf(marc.token, 'json');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="mes-donnees-\d{4}-\d{2}-\d{2}\.json"$/);
    expect(res.headers['cache-control']).toBe('no-store');
    const data = res.json() as LearnerDataExport;

    const profile = await db
      .selectFrom('learner_profiles')
      .selectAll()
      .where('learner_id', '=', marc.id)
      .executeTakeFirstOrThrow();
    expect(data.learner.id).toBe(marc.id);
    expect(data.profile).toMatchObject({
      familyName: profile.family_name,
      givenName: profile.given_name,
      fund: { slug: 'akto' },
    });
    expect(data.company).toEqual({
      name: profile.company_name,
      siret: profile.company_siret,
      headcountBand: profile.headcount_band,
    });

    const launches = await db
      .selectFrom('lti_launches')
      .select(['created_at', 'role'])
      .where('learner_id', '=', marc.id)
      .execute();
    expect(data.launches.map((l) => [l.at, l.role])).toEqual(launches.map((l) => [l.created_at.toISOString(), l.role]));
    expect(data.modules).toEqual([expect.objectContaining({ moduleId, quiz: { correct: 2, total: 2 } })]);
    expect(data.modules[0]?.title).toBeTruthy();

    const totals = await db
      .selectFrom('time_course_totals')
      .selectAll()
      .where('learner_id', '=', marc.id)
      .executeTakeFirstOrThrow();
    const [time] = data.time;
    expect(time).toMatchObject({ courseId, algorithm: totals.algorithm, creditedSeconds: totals.credited_seconds });
    expect(time?.creditedSeconds).toBeGreaterThan(0);
    const modules = await db
      .selectFrom('time_totals')
      .selectAll()
      .where('learner_id', '=', marc.id)
      .orderBy('module_id')
      .execute();
    expect(time?.modules.map((m) => [m.moduleId, m.creditedSeconds]).sort()).toEqual(
      modules.map((m) => [m.module_id, m.credited_seconds]),
    );
    const days = await db.selectFrom('time_day_totals').selectAll().where('learner_id', '=', marc.id).execute();
    expect(time?.days.map((d) => [d.day, d.measuredSeconds])).toEqual(
      days.map((d) => [d.day, Math.floor(Number(d.measured_ms) / 1000)]),
    );

    const events = await db.selectFrom('tracking_events').select('kind').where('learner_id', '=', marc.id).execute();
    expect(Object.values(data.evidence.records).reduce((a, b) => a + b, 0)).toBe(events.length);
    expect(data.evidence.tabs).toBe(2);
    expect(data.evidence.devices).toEqual({ desktop: 2 });
    expect(data.certificates).toEqual([expect.objectContaining({ number: marcNumber, state: 'valid', version: 1 })]);
    expect(data.retention.holds.map((h) => h.kind).sort()).toEqual(['certificate', 'evidence']);
  });

  it('as a readable French page with the same content', async () => {
    const res = await exportOf(marc.token, 'html');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="mes-donnees-.*\.html"$/);
    const { document } = parseHTML(res.body);
    expect(document.querySelector('h1')?.textContent).toBe('Mes données enregistrées');
    expect(document.querySelector('[data-section="profil"]')?.textContent).toContain('Dupont');
    expect(document.querySelector('[data-section="certificats"]')?.textContent).toContain(marcNumber);
    expect(document.querySelector('[data-section="modules"]')?.textContent).toContain('2 / 2');
    expect(document.querySelector('[data-section="temps"]')?.textContent).toContain(ALGORITHM);
  });

  it('refuses without a valid session, and never takes the token from the URL', async () => {
    const none = await ctx.app.inject({
      method: 'POST',
      url: '/privacy/export',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'format=json',
    });
    expect(none.statusCode).toBe(400);
    const bad = await exportOf('not-a-token', 'json');
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['content-type']).toMatch(/^text\/html/);
    expect(
      (await ctx.app.inject({ method: 'GET', url: `/privacy/export?session_token=${marc.token}&format=json` }))
        .statusCode,
    ).toBe(404);
    const wrongFormat = await exportOf(marc.token, 'pdf' as 'json');
    expect(wrongFormat.statusCode).toBe(400);
  });

  it('the time page offers the download as POST forms carrying the token in their body', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: `/tracking/time?session_token=${marc.token}` });
    const { document } = parseHTML(res.body);
    const forms = [...document.querySelectorAll('form[data-privacy-export]')];
    expect(forms.map((f) => f.getAttribute('data-privacy-export'))).toEqual(['html', 'json']);
    for (const form of forms) {
      expect(form.getAttribute('method')).toBe('post');
      expect(form.getAttribute('action')).toBe('/privacy/export');
      expect((form.querySelector('input[name="session_token"]') as unknown as { value: string }).value).toBe(
        marc.token,
      );
    }
  });

  it('the operator’s CLI writes the same data, and the access is audited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'privacy-export-'));
    try {
      const out: string[] = [];
      const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
      const file = join(dir, 'marc.json');
      expect(await privacyCommand(depsOf(ctx.app), ['export', marc.id, '--out', file], io)).toBe(0);
      const data = JSON.parse(readFileSync(file, 'utf8')) as LearnerDataExport;
      const web = (await exportOf(marc.token, 'json')).json() as LearnerDataExport;
      expect({ ...data, generatedAt: '' }).toEqual({ ...web, generatedAt: '', controller: null });
      expect(await privacyCommand(depsOf(ctx.app), ['export', marc.id, '--out', join(dir, 'marc.html')], io)).toBe(0);
      expect(readFileSync(join(dir, 'marc.html'), 'utf8')).toContain(marcNumber);
      expect(await privacyCommand(depsOf(ctx.app), ['export', 'personne@nulle.part', '--out', file], io)).toBe(1);
      expect(await privacyCommand(depsOf(ctx.app), ['export', marc.id, '--out', join(dir, 'x.txt')], io)).toBe(2);
      const audit = await ctx.app.db
        .selectFrom('audit_log')
        .select(['action', 'details'])
        .where('action', '=', 'privacy.export')
        .execute();
      expect(audit).toHaveLength(2);
      expect(audit[0]?.details).toMatchObject({ learnerId: marc.id });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('erasure of a learner with an issued certificate', () => {
  it('the verification page shows the initials before', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${eloiseNumber}`,
      headers: { accept: 'text/html' },
    });
    const { document } = parseHTML(res.body);
    expect([...document.querySelectorAll('dt')].map((d) => d.textContent)).toContain('Stagiaire');
  });

  it('pseudonymises the person, keeps what the proof needs with its release date, and audits it', async () => {
    const { db } = ctx.app;
    const pseudonym = pseudonymFor(eloise.id);
    const report = await eraseLearner(depsOf(ctx.app), eloise.id);
    expect(report).toMatchObject({
      learnerId: eloise.id,
      pseudonym,
      purgedNow: false,
      evidenceRecordsRedacted: 1,
      lmsEventsPseudonymised: 3,
    });
    expect(report.holds).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'certificate', label: eloiseNumber, releaseDay: addYears(today, 6) }),
        expect.objectContaining({ kind: 'evidence', releaseDay: addYears(today, 6) }),
      ]),
    );

    expect(
      await db.selectFrom('learners').selectAll().where('id', '=', eloise.id).executeTakeFirstOrThrow(),
    ).toMatchObject({
      name: null,
      given_name: null,
      family_name: null,
      email: null,
      username: pseudonym,
    });
    expect(
      await db
        .selectFrom('learner_profiles')
        .select(['family_name', 'given_name', 'company_siret'])
        .where('learner_id', '=', eloise.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ family_name: pseudonym, given_name: '', company_siret: '73282932000074' });
    // LMS usernames: the platform's and the mapped one, each with its pseudonym, in events and mapping.
    expect(
      (await db.selectFrom('lms_events').select('lms_username').orderBy('hash').execute()).map((e) => e.lms_username),
    ).toEqual([pseudonym, `${pseudonym}-2`, `${pseudonym}-2`]);
    expect(await db.selectFrom('lms_user_mappings').select(['lms_username', 'learner_id']).execute()).toEqual([
      { lms_username: `${pseudonym}-2`, learner_id: eloise.id },
    ]);
    // Evidence: no user agent beyond a device class, no IP, in the tab and in its hash-chained record.
    expect(
      await db
        .selectFrom('tracking_tabs')
        .select(['user_agent', 'ip_prefix'])
        .where('learner_id', '=', eloise.id)
        .execute(),
    ).toEqual([{ user_agent: 'device:desktop', ip_prefix: null }]);
    const record = await db
      .selectFrom('tracking_events')
      .select('data')
      .where('learner_id', '=', eloise.id)
      .where('kind', '=', 'tab')
      .executeTakeFirstOrThrow();
    expect(record.data).toMatchObject({ userAgent: 'device:desktop', ipPrefix: null });
    // The other learner is untouched.
    expect(
      (await db.selectFrom('tracking_tabs').select('ip_prefix').where('learner_id', '=', marc.id).execute())[0]
        ?.ip_prefix,
    ).toBe('127.0.0.0/24');
    // Every chain and digest still verifies.
    expect(await verifyEvidence(db)).toEqual([]);

    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'privacy.erase')
      .executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ actor_username: 'cli', via: 'cli', status: 'done' });
    expect(audit.details).toMatchObject({ learnerId: eloise.id, pseudonym });
  });

  it('the verification page still answers, with the number, state and figures only', async () => {
    const page = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${eloiseNumber}`,
      headers: { accept: 'text/html' },
    });
    expect(page.statusCode).toBe(200);
    const { document } = parseHTML(page.body);
    const text = document.querySelector('main')?.textContent ?? '';
    expect([...document.querySelectorAll('dt')].map((d) => d.textContent)).not.toContain('Stagiaire');
    expect(text).not.toMatch(/Lefèvre|Éloïse|É\. ?L\./);
    expect(text).toContain(eloiseNumber);
    expect(document.querySelector('.state.valid')).not.toBeNull();
    const json = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${eloiseNumber}`,
      headers: { accept: 'application/json' },
    });
    expect(json.json()).toMatchObject({
      number: eloiseNumber,
      state: 'valid',
      learnerInitials: null,
      integrity: { signature: true, dataHash: true, pdfHash: true },
    });
    // Marc's certificate still shows his initials.
    const other = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${marcNumber}`,
      headers: { accept: 'application/json' },
    });
    expect(other.json().learnerInitials).toBe('M. D.');
  });

  it('the learner’s own export shows the pseudonym and what is still kept, and no former identity', async () => {
    const res = await exportOf(eloise.token, 'json');
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toMatch(/Lefèvre|Éloïse|eloise@|eloise\.l|eloise\.fun/);
    const data = res.json() as LearnerDataExport;
    const pseudonym = pseudonymFor(eloise.id);
    expect(data.learner).toMatchObject({ name: null, email: null, lmsUsername: pseudonym });
    expect(data.profile?.familyName).toBe(pseudonym);
    expect(data.erasure?.pseudonym).toBe(pseudonym);
    expect(data.erasure?.holds.map((h) => h.label)).toContain(eloiseNumber);
    expect(data.evidence.lmsUsernames).toEqual([pseudonym, `${pseudonym}-2`]);
    expect(data.evidence.lmsEvents).toBe(3);
    expect(data.certificates.map((c) => c.number)).toEqual([eloiseNumber]);
    const html = await exportOf(eloise.token, 'html');
    expect(parseHTML(html.body).document.querySelector('[role="note"]')?.textContent).toContain(pseudonym);
  });

  it('erasing again changes nothing more, and an unknown learner is refused', async () => {
    const again = await eraseLearner(depsOf(ctx.app), eloise.id);
    expect(again).toMatchObject({ evidenceRecordsRedacted: 0, lmsEventsPseudonymised: 0 });
    expect(await verifyEvidence(ctx.app.db)).toEqual([]);
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    expect(await privacyCommand(depsOf(ctx.app), ['erase', 'personne@nulle.part'], io)).toBe(1);
    expect(out.join('')).toContain('no learner matches');
  });

  it('the daily purge deletes the erased learner once the holds are released', async () => {
    const { purge } = await import('../../src/privacy/index.js');
    const sevenYears = new Date(Date.parse(`${addYears(today, 7)}T12:00:00Z`));
    const report = await purge(depsOf(ctx.app), { apply: true, now: sevenYears });
    expect(report.learners.ids).toContain(eloise.id);
    expect(await ctx.app.db.selectFrom('privacy_erasures').selectAll().execute()).toEqual([]);
    expect(await verifyEvidence(ctx.app.db)).toEqual([]);
  });
});
