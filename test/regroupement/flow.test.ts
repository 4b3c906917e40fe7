import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificateIfEligible } from '../../src/certificates/index.js';
import { connectionsDefinition, summaryDefinition } from '../../src/exports/columns.js';
import { certificateLine } from '../../src/regroupement/index.js';
import { dayFr } from '../../src/regroupement/rules.js';
import { type Person, pdfText, seedCourse } from '../certificates/helpers.js';
import { createTestApp, type TestContext } from '../helpers/app.js';

/**
 * The closing group session end to end, on the real content (Uniformation plans one, AKTO does not):
 * the course team schedules, learners who finished register, attendance by code and by the list, the
 * certificate's own line (pdftotext) and both exports; refusals at every boundary.
 */
let ctx: TestContext;
let courseId: string;
let otherCourseId: string;
let team: Person;
let a: Person; // finished, attends by code
let b: Person; // finished, registered to the small session
let e: Person; // finished, ticked on the list
let f: Person; // finished, finds the small session full
let c: Person; // has not finished
let akto: Person; // finished, fund without regroupement
let outsider: Person; // finished, in another course

const doc = (body: string) => parseHTML(body).document;
const text = (body: string) => (doc(body).querySelector('main')?.textContent ?? '').replace(/\s+/g, ' ');

async function form(url: string, token: string, fields: Record<string, string | string[]>) {
  const params = new URLSearchParams({ session_token: token });
  for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) params.append(k, x);
  return ctx.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: params.toString(),
  });
}

async function profile(p: Person, fund: string, family: string) {
  await ctx.app.db
    .insertInto('learner_profiles')
    .values({
      learner_id: p.id,
      civility: 'madame',
      family_name: family,
      given_name: 'Anne',
      company_name: `Association ${family}`,
      company_siret: '73282932000074',
      headcount_band: '10-49',
      idcc: null,
      fund_slug: fund,
      updated_by: null,
      updated_by_role: 'learner',
    })
    .execute();
}

/** Marks every module of the learner's programme complete (common trunk and the fund's default modules). */
async function finish(p: Person, fund: string, course: string) {
  const modules = await ctx.app.db
    .selectFrom('modules')
    .select(['id', 'current_version', 'fund_slug'])
    .where('active', '=', true)
    .where('branches', '=', '[]' as never)
    .where((eb) => eb.or([eb('fund_slug', 'is', null), eb('fund_slug', '=', fund)]))
    .execute();
  for (const m of modules) {
    await ctx.app.db
      .insertInto('module_progress')
      .values({
        learner_id: p.id,
        course_id: course,
        module_id: m.id,
        module_version: m.current_version,
        resource_link_id: null,
        fund_slug: m.fund_slug,
        quiz_answers: null,
        completed_at: new Date(),
      })
      .execute();
  }
}

const parisDate = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris' }).format(d);

async function sessionIds(): Promise<{ id: string; capacity: number; code: string }[]> {
  return (
    await ctx.app.db
      .selectFrom('regroupement_sessions')
      .select(['id', 'capacity', 'attendance_code'])
      .where('course_id', '=', courseId)
      .orderBy('capacity', 'desc')
      .execute()
  ).map((r) => ({ id: r.id, capacity: r.capacity, code: r.attendance_code }));
}

beforeAll(async () => {
  ctx = await createTestApp();
  const seeded = await seedCourse(ctx.app, {
    people: [
      { role: 'course_team' },
      { role: 'learner' },
      { role: 'learner' },
      { role: 'learner' },
      { role: 'learner' },
      { role: 'learner' },
      { role: 'learner' },
    ],
  });
  courseId = seeded.courseId;
  [team, a, b, e, f, c, akto] = seeded.people as [Person, Person, Person, Person, Person, Person, Person];
  const other = await seedCourse(ctx.app, { title: 'Autre session', people: [{ role: 'learner' }] });
  otherCourseId = other.courseId;
  outsider = other.people[0] as Person;
  for (const [p, fund, name] of [
    [a, 'uniformation', 'Arnaud'],
    [b, 'uniformation', 'Bernard'],
    [e, 'uniformation', 'Etienne'],
    [f, 'uniformation', 'Fabre'],
    [c, 'uniformation', 'Caron'],
    [akto, 'akto', 'Kone'],
    [outsider, 'uniformation', 'Ollivier'],
  ] as const) {
    await profile(p, fund, name);
  }
  for (const p of [a, b, e, f]) await finish(p, 'uniformation', courseId);
  await finish(akto, 'akto', courseId);
  await finish(outsider, 'uniformation', otherCourseId);
});
afterAll(() => ctx.close());

describe('the closing group session (regroupement)', () => {
  it('is reached from the course-team view and refused to learners', async () => {
    const view = await ctx.app.inject({ method: 'GET', url: `/lti-services/course-team?session_token=${team.token}` });
    const link = [...doc(view.body).querySelectorAll('a')].find((x) =>
      x.getAttribute('href')?.startsWith('/regroupement/equipe'),
    );
    expect(link).toBeTruthy();
    const page = await ctx.app.inject({ method: 'GET', url: link?.getAttribute('href') as string });
    expect(page.statusCode).toBe(200);
    const options = [...doc(page.body).querySelectorAll('select[name="fund"] option')].map((o) =>
      o.getAttribute('value'),
    );
    expect(options).toEqual(['uniformation']);
    const learner = await ctx.app.inject({ method: 'GET', url: `/regroupement/equipe?session_token=${a.token}` });
    expect(learner.statusCode).toBe(403);
  });

  it('checks the schedule form field by field and keeps what was typed', async () => {
    const res = await form('/regroupement/equipe/seances', team.token, {
      fund: 'akto',
      day: '2020-01-01',
      time: '14:00',
      duration: '5',
      mode: 'online',
      location: 'http://pas-sur.example',
      capacity: '0',
    });
    expect(res.statusCode).toBe(400);
    const d = doc(res.body);
    for (const field of ['fund', 'day', 'duration', 'location', 'capacity'])
      expect(d.getElementById(`err-${field}`)).toBeTruthy();
    expect((d.getElementById('location') as unknown as HTMLInputElement).getAttribute('value')).toBe(
      'http://pas-sur.example',
    );
    expect(await sessionIds()).toEqual([]);
  });

  it('schedules, shows the sessions to learners who finished, registers them, refuses a full session', async () => {
    const tomorrow = parisDate(new Date(Date.now() + 36 * 3600_000));
    for (const capacity of ['5', '1']) {
      const res = await form('/regroupement/equipe/seances', team.token, {
        fund: 'uniformation',
        day: tomorrow,
        time: '14:00',
        duration: '90',
        mode: 'online',
        location: 'https://visio.example.org/regroupement',
        capacity,
      });
      expect(res.statusCode).toBe(200);
      expect(text(res.body)).toContain('Séance programmée');
    }
    const [big, small] = await sessionIds();
    expect(big?.code).toMatch(/^[A-Z0-9]{6}$/);

    // « Mon parcours » of a learner who finished: the section, the sessions, no link before registering.
    const parcours = await ctx.app.inject({ method: 'GET', url: `/catalog/parcours?session_token=${a.token}` });
    expect(parcours.statusCode).toBe(200);
    const section = doc(parcours.body).getElementById('regroupement')?.parentElement;
    expect(section?.querySelectorAll('[data-session-id]').length).toBe(2);
    expect(section?.innerHTML).not.toContain('visio.example.org');

    // …of a learner of a fund without regroupement: nothing; of a learner far from the end: when it opens.
    const other = await ctx.app.inject({ method: 'GET', url: `/catalog/parcours?session_token=${akto.token}` });
    expect(doc(other.body).getElementById('regroupement')).toBeNull();
    const early = await ctx.app.inject({ method: 'GET', url: `/catalog/parcours?session_token=${c.token}` });
    expect(text(early.body)).toContain('quand il ne vous restera plus que 2 modules');
    const refused = await form('/regroupement/inscription', c.token, { session_id: big?.id as string });
    expect(refused.statusCode).toBe(403);
    expect(text(refused.body)).toContain('plus que deux modules');

    for (const p of [a, e]) {
      const ok = await form('/regroupement/inscription', p.token, { session_id: big?.id as string });
      expect(ok.statusCode).toBe(200);
      expect(text(ok.body)).toContain('Vous êtes inscrit(e)');
      expect(ok.body).toContain('https://visio.example.org/regroupement');
    }
    expect((await form('/regroupement/inscription', b.token, { session_id: small?.id as string })).statusCode).toBe(
      200,
    );
    const full = await form('/regroupement/inscription', f.token, { session_id: small?.id as string });
    expect(full.statusCode).toBe(409);
    expect(doc(full.body).querySelector('[role="alert"]')?.textContent).toContain(
      'est complète (1 places) : choisissez-en une autre',
    );
    // F takes a place in the big session, then withdraws: the place is freed.
    expect((await form('/regroupement/inscription', f.token, { session_id: big?.id as string })).statusCode).toBe(200);
    const leave = await form('/regroupement/desinscription', f.token, { session_id: big?.id as string });
    expect(leave.statusCode).toBe(200);
    expect(text(leave.body)).toContain('Votre inscription est annulée');
    const registered = await ctx.app.db
      .selectFrom('regroupement_registrations')
      .select('learner_id')
      .where('session_id', '=', big?.id as string)
      .execute();
    expect(registered.map((r) => r.learner_id).sort()).toEqual([a.id, e.id].sort());
    // The AKTO learner cannot join Uniformation's session; a session of another course is unknown.
    expect((await form('/regroupement/inscription', akto.token, { session_id: big?.id as string })).statusCode).toBe(
      403,
    );
    expect(
      (await form('/regroupement/inscription', outsider.token, { session_id: big?.id as string })).statusCode,
    ).toBe(404);
  });

  it('takes the code only during the session, only in its course; the list ticks the others', async () => {
    const [big, small] = await sessionIds();
    // A's certificate exists before the session (« Mon parcours » issued it): attending gives it a new version.
    await issueCertificateIfEligible(ctx.app, a.id, courseId);
    const first = (await ctx.app.certificates.listForLearner(a.id, courseId)).find((r) => r.state === 'valid');
    expect(first?.number).toBeTruthy();

    // Before the session: refused, with the window in plain words.
    const tooEarly = await form('/regroupement/presence', a.token, { code: big?.code as string });
    expect(tooEarly.statusCode).toBe(409);
    expect(text(tooEarly.body)).toContain('n’est valable que pendant la séance');

    // The session starts now (its start moved, as time passing would).
    const startsAt = new Date(Date.now() - 10 * 60_000);
    await ctx.app.db
      .updateTable('regroupement_sessions')
      .set({ starts_at: startsAt })
      .where('id', '=', big?.id as string)
      .execute();

    expect((await form('/regroupement/presence', a.token, { code: 'ZZZ' })).statusCode).toBe(400);
    const otherCourse = await form('/regroupement/presence', outsider.token, { code: big?.code as string });
    expect(otherCourse.statusCode).toBe(400);
    expect(text(otherCourse.body)).toContain('aucun regroupement de ce cours');
    const ok = await form('/regroupement/presence', a.token, {
      code: String(big?.code).toLowerCase().replace(/(...)/, '$1 '),
    });
    expect(ok.statusCode).toBe(200);
    expect(text(ok.body)).toContain('votre présence au regroupement est enregistrée');
    expect(text(ok.body)).toContain('1 h 30');

    // B's session is tomorrow: its code is refused today.
    expect((await form('/regroupement/presence', b.token, { code: small?.code as string })).statusCode).toBe(409);

    // The list: E ticked, A kept (already there by code).
    const list = await form(`/regroupement/equipe/seances/${big?.id}/presences`, team.token, { present: [a.id, e.id] });
    expect(list.statusCode).toBe(200);
    expect(text(list.body)).toContain('1 ajoutée(s), 0 retirée(s)');
    // A session not started yet cannot be ticked.
    const notYet = await form(`/regroupement/equipe/seances/${small?.id}/presences`, team.token, { present: [b.id] });
    expect(notYet.statusCode).toBe(409);

    const audit = await ctx.app.db
      .selectFrom('regroupement_audit')
      .select(['action', 'actor_learner_id'])
      .where('session_id', '=', big?.id as string)
      .orderBy('at')
      .execute();
    expect(audit.map((r) => r.action)).toEqual([
      'schedule',
      'register',
      'register',
      'register',
      'unregister',
      'attendance_code',
      'attendance_list',
    ]);
    expect(audit.at(-1)?.actor_learner_id).toBe(team.id);
    // The course team reads the history under the session.
    const teamPage = doc(
      (await ctx.app.inject({ method: 'GET', url: `/regroupement/equipe?session_token=${team.token}` })).body,
    );
    const history = teamPage.querySelector(`[data-session-id="${big?.id}"] details`)?.textContent ?? '';
    expect(history).toContain('Anne Fabre · inscription annulée');
    expect(history).toContain('présence confirmée par code');

    // The certificate: a new version with its own line.
    const line = certificateLine({ mode: 'online', startsAt, attendedMinutes: 90 });
    expect(line).toBe(`Regroupement : classe virtuelle du ${dayFr(startsAt)}, 1 h 30`);
    const valid = await ctx.app.certificates.listForLearner(a.id, courseId);
    const current = valid.find((r) => r.state === 'valid');
    expect(current?.number).not.toBe(first?.number);
    const pdf = await ctx.app.inject({
      method: 'GET',
      url: `/certificates/${current?.number}/pdf?session_token=${a.token}`,
    });
    expect(pdf.statusCode).toBe(200);
    const printed = pdfText(pdf.rawPayload).replace(/\s+/g, ' ');
    expect(printed).toContain(`Regroupement : classe virtuelle du ${dayFr(startsAt)}, 1 h 30`);

    // Both exports: the summary's columns, the connection log's row with source "regroupement".
    const context = await summaryDefinition.context(ctx.app);
    const headers = summaryDefinition.columns.map((col) => col.header);
    const rows: unknown[][] = [];
    for await (const batch of summaryDefinition.rows(ctx.app.db, { fund: 'uniformation', courseId })) {
      for (const r of batch) rows.push(summaryDefinition.toCells(r, context));
    }
    const rowOf = (id: string) => rows.find((r) => r[headers.indexOf('Identifiant apprenant')] === id) as unknown[];
    const cell = (id: string, h: string) => rowOf(id)[headers.indexOf(h)];
    expect(cell(a.id, 'Regroupement : modalité')).toBe('classe virtuelle');
    expect(cell(a.id, 'Regroupement : durée (h:mm)')).toBe(5400);
    expect(cell(a.id, 'Regroupement : durée (heures)')).toBe(1.5);
    expect((cell(a.id, 'Regroupement : date (Paris)') as Date).getTime()).toBe(startsAt.getTime());
    expect(cell(e.id, 'Regroupement : durée (heures)')).toBe(1.5);
    expect(cell(b.id, 'Regroupement : durée (heures)')).toBeNull();

    const cHeaders = connectionsDefinition.columns.map((col) => col.header);
    const logRows: unknown[][] = [];
    for await (const batch of connectionsDefinition.rows(ctx.app.db, { fund: 'uniformation', courseId })) {
      for (const r of batch) logRows.push(connectionsDefinition.toCells(r, context));
    }
    const aRows = logRows.filter((r) => r[cHeaders.indexOf('Identifiant apprenant')] === a.id);
    expect(aRows.map((r) => r[cHeaders.indexOf('Source')])).toEqual(['regroupement']);
    expect(aRows[0]?.[cHeaders.indexOf('Durée (secondes)')]).toBe(5400);
    expect(String(aRows[0]?.[cHeaders.indexOf('Signalements')])).toContain('confirmée par code');
    const eRow = logRows.find((r) => r[cHeaders.indexOf('Identifiant apprenant')] === e.id);
    expect(String(eRow?.[cHeaders.indexOf('Signalements')])).toContain('notée par l’équipe');
  });
});
