import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailer, digestContent, sendDueDigests, weekBefore } from '../../src/digest/index.js';
import { composeDigest, INACTIVE_DAYS, recipientOf } from '../../src/digest/rules.js';
import { certify, moduleIds, progress, seedCourse, seedLearner, seedRegistration } from '../exports/seed.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { addUser, type Browser, csrfOf, get, post, signIn } from '../portal/helpers.js';

/**
 * The weekly digest: for the week of 23–29 March 2026 (sent on Monday 30 March), AKTO's staff get
 * AKTO's registrations, certificates and newly inactive learners; Atlas has the same three kinds of
 * learner, whose names must never reach AKTO.
 */
let ctx: TestContext;
let mailDir: string;
let akto: Browser;
let ops: Browser;
let aktoId: string;
let atlasId: string;
const NOW = Date.UTC(2026, 2, 30, 8); // Monday 30 March 2026, 10:00 in Paris
const at = (iso: string) => new Date(iso);

beforeAll(async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'emargement-digest-'));
  ctx = await createTestApp({ env: { DATA_DIR: dataDir } });
  mailDir = ctx.config.mailDir;
  const db = ctx.app.db;
  const reg = await seedRegistration(db);
  const course = await seedCourse(db, 'course-v1:FUN+TNUM+2026_T1', 'Transition numérique', 'Printemps');
  const modules = await moduleIds(db, 'akto');
  for (const [fund, idcc, prefix] of [
    ['akto', '1979', 'Akto'],
    ['atlas', '2120', 'Secretatlas'],
  ] as const) {
    const learner = (family: string, registeredAt: string) =>
      seedLearner(db, {
        registrationId: reg,
        courseId: course,
        fund,
        idcc,
        familyName: `${prefix}${family}`,
        givenName: fund === 'atlas' ? 'Invisible' : 'Visible',
        companyName: `Entreprise ${prefix}`,
        registeredAt: at(registeredAt),
      });
    await learner('Nouveau', '2026-03-24T09:00:00Z');
    const certified = await learner('Diplome', '2026-03-02T09:00:00Z');
    await certify(db, certified, course, {
      number: fund === 'akto' ? 'EMG-2026-000001' : 'EMG-2026-000002',
      fund,
      fileNumber: null,
      issuedAt: at('2026-03-25T10:00:00Z'),
    });
    const quiet = await learner('Silencieux', '2026-03-05T09:00:00Z');
    await progress(db, quiet, course, modules.common[0] as string, { startedAt: at('2026-03-11T09:00:00Z') });
    // Registered in the week before: neither new, nor inactive long enough, nor certified.
    await learner('Actif', '2026-03-20T09:00:00Z');
  }
  aktoId = await addUser(db, 'staff@akto.test', 'fund_staff', 'akto');
  atlasId = await addUser(db, 'staff@atlas.test', 'fund_staff', 'atlas');
  await addUser(db, 'ops@fun.test', 'operator', null);
  akto = await signIn(ctx.app, 'staff@akto.test');
  ops = await signIn(ctx.app, 'ops@fun.test');
});
afterAll(async () => {
  await ctx.close();
  await rm(join(ctx.config.dataDir), { recursive: true, force: true });
});

describe('digest rules', () => {
  it('covers the last complete ISO week in Paris time, across a clock change', () => {
    const week = weekBefore(NOW);
    expect(week).toMatchObject({ monday: '2026-03-23', sunday: '2026-03-29' });
    expect(new Date(week.startMs).toISOString()).toBe('2026-03-22T23:00:00.000Z'); // winter time
    expect(new Date(week.endMs).toISOString()).toBe('2026-03-29T22:00:00.000Z'); // summer time
    expect(weekBefore(Date.UTC(2026, 2, 29, 21)).monday).toBe('2026-03-16'); // Sunday 23:00 Paris
  });

  it('writes every section in French, with counts, and lists at most 30 names', () => {
    const someone = {
      familyName: 'Dupont',
      givenName: 'Marie',
      companyName: 'Hôtel <b>',
      idcc: '1979',
      day: '24/03/2026',
    };
    const message = composeDigest({
      fundName: 'AKTO',
      displayName: 'Claire',
      from: '23/03/2026',
      to: '29/03/2026',
      registrations: Array.from({ length: 31 }, () => someone),
      certificates: [],
      newlyInactive: [someone],
      inactiveTotal: 4,
      portalUrl: 'https://tool.test',
    });
    expect(message.subject).toBe('Émargement — AKTO : résumé de la semaine du 23/03/2026 au 29/03/2026');
    expect(message.text).toContain('Nouvelles inscriptions : 31');
    expect(message.text).toContain('et 1 autres (voir le portail)');
    expect(message.text).toContain('Aucune attestation délivrée cette semaine.');
    expect(message.text).toContain(`Sans activité depuis ${INACTIVE_DAYS} jours (devenus inactifs cette semaine) : 1`);
    expect(message.text).toContain('En tout, 4 apprenants n’ont aucune activité');
    expect(message.text).toContain('https://tool.test/portal/resume-hebdo');
    const { document } = parseHTML(message.html);
    expect(document.querySelectorAll('li')).toHaveLength(30 + 1 + 1);
    expect(message.html).not.toContain('<b>');
  });

  it('has no mailer in production without SMTP_URL, and then sends nothing', async () => {
    expect(createMailer({ ...ctx.config, nodeEnv: 'production', smtpUrl: undefined })).toBeNull();
    expect(createMailer({ ...ctx.config, smtpUrl: 'smtp://127.0.0.1:2525' })?.kind).toBe('smtp');
    expect(await sendDueDigests(ctx.app, null, NOW)).toEqual({ week: '2026-03-23', sent: 0, failed: 0, skipped: 0 });
  });

  it('sends only to usernames that are e-mail addresses', () => {
    expect(recipientOf('claire@akto.fr')).toBe('claire@akto.fr');
    expect(recipientOf('claire')).toBeNull();
    expect(recipientOf('a@b')).toBeNull();
  });
});

describe('digest content', () => {
  it('holds the fund’s registrations, certificates and newly inactive learners — never another fund’s', async () => {
    const week = weekBefore(NOW);
    const content = await digestContent(ctx.app, 'akto', week, 'Claire');
    expect(content.fundName).toBe('AKTO');
    expect(content.registrations.map((l) => l.familyName)).toEqual(['AktoNouveau']);
    expect(content.certificates.map((l) => l.familyName)).toEqual(['AktoDiplome']);
    expect(content.newlyInactive.map((l) => `${l.familyName} ${l.day}`)).toEqual(['AktoSilencieux 11/03/2026']);
    expect(content.inactiveTotal).toBe(1);
    const text = JSON.stringify(content) + JSON.stringify(composeDigest(content));
    expect(text).not.toMatch(/Secretatlas|Invisible/);
    const other = await digestContent(ctx.app, 'atlas', week, 'Paul');
    expect(other.registrations.map((l) => l.familyName)).toEqual(['SecretatlasNouveau']);
    expect(JSON.stringify(other)).not.toContain('Akto');
  });
});

describe('opting in on the portal and weekly sending', () => {
  it('lets fund staff opt in and out (CSRF-checked, audited); operators are told it is for funds', async () => {
    const page = await get(ctx.app, akto, '/portal/resume-hebdo');
    expect(page.statusCode).toBe(200);
    const { document } = parseHTML(page.body);
    expect(document.querySelector('form[action="/portal/resume-hebdo"] button')?.textContent).toBe(
      'Recevoir le résumé chaque lundi',
    );
    expect((await post(ctx.app, akto, '/portal/resume-hebdo', { action: 'inscrire' })).statusCode).toBe(403);
    const csrf = await csrfOf(ctx.app, akto, '/portal/resume-hebdo');
    const done = await post(ctx.app, akto, '/portal/resume-hebdo', { action: 'inscrire', _csrf: csrf });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe('/portal/resume-hebdo?fait=inscrit');
    const after = parseHTML((await get(ctx.app, akto, '/portal/resume-hebdo?fait=inscrit')).body).document;
    expect(after.querySelector('.notice')?.textContent).toContain('vous recevrez le résumé chaque lundi');
    expect(after.querySelector('form[action="/portal/resume-hebdo"] button')?.textContent).toBe(
      'Ne plus recevoir le résumé',
    );
    const audit = await ctx.app.db
      .selectFrom('audit_log')
      .select(['action', 'actor_username'])
      .where('action', 'like', 'digest.%')
      .execute();
    expect(audit).toEqual([{ action: 'digest.subscribed', actor_username: 'staff@akto.test' }]);

    const opsPage = await get(ctx.app, ops, '/portal/resume-hebdo');
    expect(opsPage.body).toContain('destiné aux comptes d’un fonds');
    const opsCsrf = await csrfOf(ctx.app, ops, '/portal/resume-hebdo');
    expect((await post(ctx.app, ops, '/portal/resume-hebdo', { action: 'inscrire', _csrf: opsCsrf })).statusCode).toBe(
      403,
    );
    expect(await ctx.app.db.selectFrom('digest_subscriptions').select('user_id').execute()).toEqual([
      { user_id: aktoId },
    ]);
  });

  it('sends each digest once even when several instances run at once, each with its fund only', async () => {
    await ctx.app.db.insertInto('digest_subscriptions').values({ user_id: atlasId }).execute();
    // Both asked before the week covered ended.
    await ctx.app.db
      .updateTable('digest_subscriptions')
      .set({ subscribed_at: at('2026-03-01T00:00:00Z') })
      .execute();
    const mailer = createMailer(ctx.config);
    expect(mailer?.kind).toBe('file');
    const runs = await Promise.all([
      sendDueDigests(ctx.app, mailer, NOW),
      sendDueDigests(ctx.app, mailer, NOW),
      sendDueDigests(ctx.app, mailer, NOW),
    ]);
    expect(runs.reduce((n, r) => n + r.sent, 0)).toBe(2);
    expect(runs.reduce((n, r) => n + r.failed, 0)).toBe(0);
    expect((await sendDueDigests(ctx.app, mailer, NOW + 3_600_000)).sent).toBe(0);
    const files = (await readdir(mailDir)).filter((f) => f.endsWith('.eml'));
    expect(files).toHaveLength(2);
    const mails = await Promise.all(files.map((f) => readFile(join(mailDir, f), 'utf8')));
    const toAkto = mails.find((m) => /^To: staff@akto\.test$/m.test(m)) as string;
    const toAtlas = mails.find((m) => /^To: staff@atlas\.test$/m.test(m)) as string;
    expect(toAkto).toBeDefined();
    expect(toAtlas).toBeDefined();
    const decoded = (mail: string) => mail.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, '%$1');
    expect(decodeURIComponent(decoded(toAkto))).toContain('AktoNouveau');
    expect(decodeURIComponent(decoded(toAkto))).not.toMatch(/Secretatlas|Invisible/);
    expect(decodeURIComponent(decoded(toAtlas))).not.toContain('Akto');
    const sent = await ctx.app.db.selectFrom('digests_sent').select(['user_id', 'week_start', 'status']).execute();
    expect(sent).toHaveLength(2);
    expect(sent.every((s) => s.week_start === '2026-03-23' && s.status === 'sent')).toBe(true);
  });

  it('records a failed send and retries it on the next run; nothing goes to someone who opted out', async () => {
    const failing = {
      kind: 'file' as const,
      send: async () => {
        throw new Error('SMTP refusé');
      },
      close: () => undefined,
    };
    const later = NOW + 7 * 86_400_000; // the next week's digest
    const failed = await sendDueDigests(ctx.app, failing, later);
    expect(failed).toMatchObject({ week: '2026-03-30', sent: 0, failed: 2 });
    const rows = await ctx.app.db
      .selectFrom('digests_sent')
      .select(['status', 'error'])
      .where('week_start', '=', '2026-03-30')
      .execute();
    expect(rows).toEqual([
      { status: 'failed', error: 'SMTP refusé' },
      { status: 'failed', error: 'SMTP refusé' },
    ]);
    const csrf = await csrfOf(ctx.app, akto, '/portal/resume-hebdo');
    await post(ctx.app, akto, '/portal/resume-hebdo', { action: 'desinscrire', _csrf: csrf });
    const retried = await sendDueDigests(ctx.app, createMailer(ctx.config), later);
    expect(retried).toMatchObject({ sent: 1, failed: 0 });
    const last = await ctx.app.db
      .selectFrom('digests_sent')
      .select(['user_id', 'status'])
      .where('week_start', '=', '2026-03-30')
      .where('status', '=', 'sent')
      .execute();
    expect(last).toEqual([{ user_id: atlasId, status: 'sent' }]);
  });
});
