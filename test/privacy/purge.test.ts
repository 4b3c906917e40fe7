import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCertificateSignature } from '../../src/certificates/index.js';
import { privacyCommand } from '../../src/privacy/cli.js';
import { markEuCofunded, purge, verifySeals } from '../../src/privacy/index.js';
import { addYears } from '../../src/privacy/rules.js';
import { digestOf } from '../../src/tracking/index.js';
import { verifyEvidence } from '../../src/tracking/service/maintenance.js';
import { seedCourse } from '../certificates/helpers.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { TestClock, useClock } from '../tracking/helpers.js';
import {
  addProfile,
  asPrivacy,
  DAY_MS,
  depsOf,
  digestToday,
  issueCertificate,
  someBeats,
  useFacts,
} from './helpers.js';

/**
 * The purge on a database holding data of every age: what goes, what stays, and every chain, digest and
 * remaining certificate still verifying afterwards.
 */

async function keys(ctx: TestContext) {
  const res = await ctx.app.inject({ method: 'GET', url: '/verify/keys' });
  return new Map(
    (res.json().keys as Array<{ kid: string; kty: 'OKP'; crv: 'Ed25519'; x: string }>).map((k) => [k.kid, k]),
  );
}

describe('short windows: audit log, failed sign-ins, unfinished onboarding, user agents', () => {
  let ctx: TestContext;
  const now = Date.now();
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ctx = await createTestApp();
    const { app } = ctx;
    const clock = new TestClock(now - 40 * DAY_MS);
    await useClock(app, clock);
    const course = await seedCourse(app, {
      people: [{ role: 'learner' }, { role: 'learner' }, { role: 'learner' }, { role: 'learner' }],
    });
    const [old, recent, onboardingOld, onboardingRecent] = course.people as [
      (typeof course.people)[number],
      (typeof course.people)[number],
      (typeof course.people)[number],
      (typeof course.people)[number],
    ];
    Object.assign(ids, {
      old: old.id,
      recent: recent.id,
      onboardingOld: onboardingOld.id,
      onboardingRecent: onboardingRecent.id,
    });
    await addProfile(app.db, old.id, { given: 'Ana', family: 'Ancien' });
    await addProfile(app.db, recent.id, { given: 'Rémi', family: 'Récent' });
    // Beats 40 days ago for one, today for the other.
    await someBeats(app, clock, old, course.courseId);
    clock.nowMs = now - 60_000;
    await someBeats(app, clock, recent, course.courseId);
    await digestToday(app.db);
    // Two learners who never finished onboarding: launched 400 and 10 days ago.
    for (const [id, days] of [
      [onboardingOld.id, 400],
      [onboardingRecent.id, 10],
    ] as const) {
      const at = new Date(now - days * DAY_MS);
      await app.db.updateTable('learners').set({ created_at: at }).where('id', '=', id).execute();
      await app.db.updateTable('lti_launches').set({ created_at: at }).where('learner_id', '=', id).execute();
    }
    for (const days of [400, 10]) {
      await app.db
        .insertInto('audit_log')
        .values({
          at: new Date(now - days * DAY_MS),
          actor_username: 'ops@fun-mooc.fr',
          actor_role: 'operator',
          via: 'session',
          action: `test.${days}`,
          details: JSON.stringify({}),
          status: 'done',
        })
        .execute();
      await app.db
        .insertInto('portal_login_failures')
        .values({
          username: `u${days}`,
          ip: '203.0.113.0',
          created_at: new Date(now - (days === 400 ? 100 : 10) * DAY_MS),
        })
        .execute();
    }
  });
  afterAll(() => ctx.close());

  it('a dry run reports what would go and changes nothing', async () => {
    const report = await purge(depsOf(ctx.app), { apply: false });
    expect(report).toMatchObject({
      mode: 'dry-run',
      auditLog: 1,
      loginFailures: 1,
      userAgentsReduced: 1,
      learners: { purged: 1, ids: [ids.onboardingOld] },
    });
    expect(await ctx.app.db.selectFrom('audit_log').select('id').execute()).toHaveLength(2);
    expect(await ctx.app.db.selectFrom('learners').select('id').execute()).toHaveLength(4);
    const tab = await ctx.app.db
      .selectFrom('tracking_tabs')
      .select('user_agent')
      .where('learner_id', '=', ids.old as string)
      .executeTakeFirstOrThrow();
    expect(tab.user_agent).toBe('lightMyRequest');
    const run = await ctx.app.db.selectFrom('privacy_purge_runs').selectAll().executeTakeFirstOrThrow();
    expect(run.mode).toBe('dry-run');
  });

  it('applies: the old rows go, the recent ones stay, and every chain still verifies', async () => {
    const { db } = ctx.app;
    const report = await purge(depsOf(ctx.app), { apply: true });
    expect(report).toMatchObject({ auditLog: 1, loginFailures: 1, userAgentsReduced: 1, problems: [] });
    expect(report.learners.ids).toEqual([ids.onboardingOld]);
    expect((await db.selectFrom('audit_log').select('action').execute()).map((r) => r.action)).toEqual(['test.10']);
    expect((await db.selectFrom('portal_login_failures').select('username').execute()).map((r) => r.username)).toEqual([
      'u10',
    ]);
    const learners = (await db.selectFrom('learners').select('id').execute()).map((r) => r.id).sort();
    expect(learners).toEqual([ids.old, ids.recent, ids.onboardingRecent].sort());
    expect(
      await db
        .selectFrom('lti_launches')
        .select('id')
        .where('learner_id', '=', ids.onboardingOld as string)
        .execute(),
    ).toEqual([]);

    // The 40-day-old tab keeps its device class only, in the table and in its evidence record; today's is whole.
    const tabs = await db.selectFrom('tracking_tabs').select(['learner_id', 'user_agent', 'ip_prefix']).execute();
    expect(tabs.find((t) => t.learner_id === ids.old)).toMatchObject({
      user_agent: 'device:desktop',
      ip_prefix: '127.0.0.0/24',
    });
    expect(tabs.find((t) => t.learner_id === ids.recent)?.user_agent).toBe('lightMyRequest');
    const record = await db
      .selectFrom('tracking_events')
      .select(['data', 'chain_index'])
      .where('learner_id', '=', ids.old as string)
      .where('kind', '=', 'tab')
      .executeTakeFirstOrThrow();
    expect(record.data).toMatchObject({ userAgent: 'device:desktop', ipPrefix: '127.0.0.0/24' });
    const redaction = await db.selectFrom('tracking_event_redactions').selectAll().executeTakeFirstOrThrow();
    expect(redaction).toMatchObject({ learner_id: ids.old, rule: 'user-agent-30d' });
    expect(await verifyEvidence(db)).toEqual([]);

    // A second run finds nothing more to do.
    const again = await purge(depsOf(ctx.app), { apply: true });
    expect(again).toMatchObject({ auditLog: 0, loginFailures: 0, userAgentsReduced: 0, learners: { purged: 0 } });
  });

  it('detects a reduced record edited afterwards, and a redaction whose signature is not ours', async () => {
    const { db } = ctx.app;
    const learnerId = ids.old as string;
    const before = await db
      .selectFrom('tracking_event_redactions')
      .selectAll()
      .where('learner_id', '=', learnerId)
      .executeTakeFirstOrThrow();
    const record = await db
      .selectFrom('tracking_events')
      .select(['data'])
      .where('learner_id', '=', learnerId)
      .where('kind', '=', 'tab')
      .executeTakeFirstOrThrow();
    await asPrivacy(db, 'redact', (trx) =>
      trx
        .updateTable('tracking_events')
        .set({ data: JSON.stringify({ ...(record.data as object), userAgent: 'device:mobile' }) })
        .where('learner_id', '=', learnerId)
        .where('kind', '=', 'tab')
        .execute(),
    );
    expect((await verifyEvidence(db, { learnerId })).map((p) => p.problem)).toEqual([
      expect.stringMatching(/chain breaks at record \d+ \(hash\)/),
    ]);
    await asPrivacy(db, 'redact', (trx) =>
      trx
        .updateTable('tracking_events')
        .set({ data: JSON.stringify(record.data) })
        .where('learner_id', '=', learnerId)
        .where('kind', '=', 'tab')
        .execute(),
    );
    expect(await verifyEvidence(db, { learnerId })).toEqual([]);
    const forged = `${before.signature.slice(0, -2)}${before.signature.endsWith('AA') ? 'BA' : 'AA'}`;
    await db
      .updateTable('tracking_event_redactions')
      .set({ signature: forged })
      .where('learner_id', '=', learnerId)
      .execute();
    expect(await verifyEvidence(db, { learnerId })).not.toEqual([]);
    await db
      .updateTable('tracking_event_redactions')
      .set({ signature: before.signature })
      .where('learner_id', '=', learnerId)
      .execute();
    expect(await verifyEvidence(db)).toEqual([]);
  });

  it('evidence stays append-only outside the purge', async () => {
    await expect(ctx.app.db.deleteFrom('tracking_events').execute()).rejects.toThrow(/append-only/);
    await expect(
      ctx.app.db
        .updateTable('tracking_events')
        .set({ data: JSON.stringify({}) })
        .execute(),
    ).rejects.toThrow(/append-only/);
    // The redact mode changes data only, never a hash.
    await expect(
      asPrivacy(ctx.app.db, 'redact', (trx) => trx.updateTable('tracking_events').set({ hash: 'x' }).execute()),
    ).rejects.toThrow(/append-only/);
  });
});

describe('long retention: chains and certificates past their date go, the others stay verifiable', () => {
  let ctx: TestContext;
  const now = Date.now();
  const today = new Date(now).toISOString().slice(0, 10);
  const people: Record<string, { id: string; number?: string }> = {};
  let contextA = '';

  beforeAll(async () => {
    ctx = await createTestApp();
    const { app } = ctx;
    const facts = useFacts(app);
    const clock = new TestClock(now - 3_600_000);
    await useClock(app, clock);
    const a = await seedCourse(app, { title: 'Session A', people: [{ role: 'learner' }] });
    const b = await seedCourse(app, { title: 'Session B (FSE)', people: [{ role: 'learner' }] });
    const c = await seedCourse(app, { title: 'Session C', people: [{ role: 'learner' }] });
    const course = await app.db
      .selectFrom('courses')
      .select('context_id')
      .where('id', '=', a.courseId)
      .executeTakeFirstOrThrow();
    contextA = course.context_id;
    const rule = (courseId: string, sessionEnd: string) =>
      app.db
        .insertInto('certificate_rules')
        .values({
          course_id: courseId,
          modules_required: 'sector',
          min_credited_minutes: null,
          auto_issue: true,
          planned_minutes: 600,
          session_start: null,
          session_end: sessionEnd,
        })
        .execute();
    await rule(a.courseId, today);
    await rule(b.courseId, today);
    await rule(c.courseId, addYears(today, 5));
    await markEuCofunded(app.db, b.courseId, true);
    for (const [key, seeded] of [
      ['a', a],
      ['b', b],
      ['c', c],
    ] as const) {
      const person = seeded.people[0] as (typeof seeded.people)[number];
      await addProfile(app.db, person.id, { given: 'Éloïse', family: `Lefèvre-${key}` });
      await someBeats(app, clock, person, seeded.courseId);
      people[key] = { id: person.id };
      if (key !== 'c') {
        (people[key] as { number?: string }).number = await issueCertificate(app, facts, person, seeded.courseId);
      }
    }
    // LMS events: course A's (mapped to learner A), and events of a course this tool does not serve.
    const imp = await app.db
      .insertInto('lms_imports')
      .values({ file_name: 'tracking.log', format: 'tracking-log' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await app.db
      .insertInto('lms_user_mappings')
      .values({ lms_username: 'lefevre-a', learner_id: people.a?.id as string, source: 'cli' })
      .execute();
    const event = (hash: string, context: string, occurred: number, username = 'lefevre-a') => ({
      hash,
      source: 'tracking-log' as const,
      issuer: null,
      lms_username: username,
      lms_user_id: null,
      course_context_id: context,
      occurred_at: new Date(occurred),
      event_type: 'page_view',
      event_source: 'browser',
      session_id: null,
      import_id: imp.id,
    });
    await app.db
      .insertInto('lms_events')
      .values([
        event('h1', contextA, now - DAY_MS),
        event('h2', contextA, now - 2 * DAY_MS),
        event('h3', 'course-v1:autre+cours', now - 7 * 366 * DAY_MS, 'someone'),
        event('h4', 'course-v1:autre+cours', now - DAY_MS, 'someone'),
      ])
      .execute();
    await digestToday(app.db, now);
    expect(await verifyEvidence(app.db)).toEqual([]);
  });
  afterAll(() => ctx.close());

  const later = () =>
    new Date(Date.parse(`${addYears(new Date(now).toISOString().slice(0, 10), 6)}T12:00:00Z`) + 30 * DAY_MS);

  it('today, only the unserved course’s seven-year-old LMS event is past its date', async () => {
    const report = await purge(depsOf(ctx.app), { apply: false });
    expect(report.learners.ids).toEqual([]);
    expect(report.lmsEvents).toEqual({ deleted: 1, courses: ['course-v1:autre+cours'] });
  });

  it('a dry run six years on names learner A only', async () => {
    const report = await purge(depsOf(ctx.app), { apply: false, now: later() });
    expect(report.learners.ids).toEqual([people.a?.id]);
    expect(report.lmsEvents).toEqual({ deleted: 4, courses: [contextA, 'course-v1:autre+cours'] });
    expect(await ctx.app.db.selectFrom('certificates').select('number').execute()).toHaveLength(2);
  });

  it('applies: A’s chain, certificate and LMS events go under a signed seal; B (EU co-funded) and C stay and verify', async () => {
    const { db } = ctx.app;
    const a = people.a as { id: string; number: string };
    const b = people.b as { id: string; number: string };
    const headBefore = await db
      .selectFrom('tracking_learners')
      .select(['chain_head', 'chain_length'])
      .where('learner_id', '=', a.id)
      .executeTakeFirstOrThrow();
    const digestBefore = await db.selectFrom('tracking_digests').selectAll().executeTakeFirstOrThrow();

    const report = await purge(depsOf(ctx.app), { apply: true, now: later() });
    expect(report.learners).toEqual({ purged: 1, ids: [a.id], kept: [] });
    expect(report.digestsResealed).toBe(1);
    expect(report.problems).toEqual([]);

    // Learner A is gone everywhere.
    expect(await db.selectFrom('learners').select('id').where('id', '=', a.id).execute()).toEqual([]);
    expect(await db.selectFrom('tracking_events').select('id').where('learner_id', '=', a.id).execute()).toEqual([]);
    expect(await db.selectFrom('certificates').select('number').where('learner_id', '=', a.id).execute()).toEqual([]);
    expect(
      await db.selectFrom('learner_profiles').select('learner_id').where('learner_id', '=', a.id).execute(),
    ).toEqual([]);
    expect(
      (await ctx.app.inject({ method: 'GET', url: `/verify/${a.number}`, headers: { accept: 'application/json' } }))
        .statusCode,
    ).toBe(404);
    // LMS events: course A's (its session ended six years ago), and the unserved course's, each six years old.
    expect(await db.selectFrom('lms_events').select('hash').execute()).toEqual([]);

    // The chain was sealed before it was dropped: its head and length, signed with a published key.
    const published = await keys(ctx);
    const seal = await db.selectFrom('privacy_purged_chains').selectAll().executeTakeFirstOrThrow();
    expect(seal).toMatchObject({
      learner_id: a.id,
      chain_head: headBefore.chain_head,
      chain_length: Number(headBefore.chain_length),
    });
    expect(JSON.parse(seal.statement)).toMatchObject({
      type: 'evidence-chain-purge',
      chainHead: headBefore.chain_head,
    });
    expect(verifyCertificateSignature(published.get(seal.kid) as never, seal.statement, seal.signature)).toBe(true);

    // The digest of the day was rewritten without A, under a signed reseal an auditor can replay.
    const reseal = await db.selectFrom('privacy_digest_reseals').selectAll().executeTakeFirstOrThrow();
    const statement = JSON.parse(reseal.statement);
    expect(verifyCertificateSignature(published.get(reseal.kid) as never, reseal.statement, reseal.signature)).toBe(
      true,
    );
    expect(statement.before).toBe(digestBefore.digest);
    expect(statement.removed.map((h: [string]) => h[0])).toEqual([a.id]);
    const digestAfter = await db.selectFrom('tracking_digests').selectAll().executeTakeFirstOrThrow();
    expect(digestAfter.digest).toBe(statement.after);
    expect(digestAfter.heads.map((h) => h[0])).not.toContain(a.id);
    const replayed = [...digestAfter.heads, ...statement.removed].sort((x, y) => (x[0] < y[0] ? -1 : 1));
    expect(digestOf(digestAfter.day, replayed)).toBe(digestBefore.digest);

    // `privacy verify` rechecks the seal and the reseal; an edited statement is caught.
    expect(await verifySeals(db)).toEqual([]);
    await db
      .updateTable('privacy_digest_reseals')
      .set({ statement: reseal.statement.replace(statement.before, '0'.repeat(64)) })
      .execute();
    expect(await verifySeals(db)).toEqual([`digest reseal of ${reseal.day}: signature does not verify`]);
    await db.updateTable('privacy_digest_reseals').set({ statement: reseal.statement }).execute();
    expect(await verifySeals(db)).toEqual([]);

    // Every chain and digest left verifies (what `time verify` runs), and B's certificate still verifies.
    expect(await verifyEvidence(db)).toEqual([]);
    const verified = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${b.number}`,
      headers: { accept: 'application/json' },
    });
    expect(verified.statusCode).toBe(200);
    expect(verified.json()).toMatchObject({
      state: 'valid',
      integrity: { signature: true, dataHash: true, pdfHash: true },
    });
    expect(
      await db
        .selectFrom('learners')
        .select('id')
        .where('id', 'in', [b.id, people.c?.id as string])
        .execute(),
    ).toHaveLength(2);
  });

  it('ten years on, the EU co-funded session goes too; C (session ending later) still stays', async () => {
    const tenYears = new Date(Date.parse(`${addYears(today, 10)}T12:00:00Z`) + 30 * DAY_MS);
    const report = await purge(depsOf(ctx.app), { apply: true, now: tenYears });
    expect(report.learners.ids).toEqual([people.b?.id]);
    expect(await verifyEvidence(ctx.app.db)).toEqual([]);
    // The day's digest was resealed twice; the reseals follow each other up to the digest kept.
    expect(await ctx.app.db.selectFrom('privacy_digest_reseals').select('id').execute()).toHaveLength(2);
    expect(await verifySeals(ctx.app.db)).toEqual([]);
    expect((await ctx.app.db.selectFrom('learners').select('id').execute()).map((l) => l.id)).toEqual([people.c?.id]);
  });
});

describe('several instances, and the operator’s commands', () => {
  let ctx: TestContext;
  const now = Date.now();
  let contextId = '';

  beforeAll(async () => {
    ctx = await createTestApp();
    const course = await seedCourse(ctx.app, {
      people: Array.from({ length: 6 }, () => ({ role: 'learner' as const })),
    });
    contextId = (
      await ctx.app.db
        .selectFrom('courses')
        .select('context_id')
        .where('id', '=', course.courseId)
        .executeTakeFirstOrThrow()
    ).context_id;
    const old = new Date(now - 500 * DAY_MS);
    for (const p of course.people.slice(0, 4)) {
      await ctx.app.db.updateTable('learners').set({ created_at: old }).where('id', '=', p.id).execute();
      await ctx.app.db.updateTable('lti_launches').set({ created_at: old }).where('learner_id', '=', p.id).execute();
    }
  });
  afterAll(() => ctx.close());

  it('two purges at once delete each learner once, without an error', async () => {
    const [first, second] = await Promise.all([
      purge(depsOf(ctx.app), { apply: true, trigger: 'scheduled' }),
      purge(depsOf(ctx.app), { apply: true, trigger: 'scheduled' }),
    ]);
    expect([...first.learners.ids, ...second.learners.ids]).toHaveLength(4);
    expect([...first.learners.kept, ...second.learners.kept]).toEqual([]);
    expect(await ctx.app.db.selectFrom('learners').select('id').execute()).toHaveLength(2);
    expect(await ctx.app.db.selectFrom('privacy_purge_runs').select('trigger').execute()).toEqual([
      { trigger: 'scheduled' },
      { trigger: 'scheduled' },
    ]);
  });

  it('the CLI prints the policy, a purge report, and marks a session EU co-funded', async () => {
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    const deps = depsOf(ctx.app);
    expect(await privacyCommand(deps, ['policy'], io)).toBe(0);
    expect(out.join('')).toContain('PRIVACY_EU_COFUNDED_YEARS');
    expect(await privacyCommand(deps, ['purge'], io)).toBe(2);
    expect(await privacyCommand(deps, ['purge', '--dry-run', '--apply'], io)).toBe(2);
    out.length = 0;
    expect(await privacyCommand(deps, ['purge', '--dry-run'], io)).toBe(0);
    expect(out.join('')).toContain('Privacy purge (dry-run)');
    expect(await privacyCommand(deps, ['purge', '--dry-run', '--json'], io)).toBe(0);
    expect(JSON.parse(out[out.length - 1] as string)).toMatchObject({ mode: 'dry-run' });
    expect(await privacyCommand(deps, ['session', contextId, '--eu-cofunded', 'yes'], io)).toBe(0);
    expect(await ctx.app.db.selectFrom('privacy_course_sessions').select('eu_cofunded').execute()).toEqual([
      { eu_cofunded: true },
    ]);
    out.length = 0;
    expect(await privacyCommand(deps, ['sessions'], io)).toBe(0);
    expect(out.join('')).toContain('EU co-funded: yes');
    expect(await privacyCommand(deps, ['session', 'course-v1:nulle+part', '--eu-cofunded', 'yes'], io)).toBe(1);
    expect(await privacyCommand(deps, ['session', contextId, '--eu-cofunded', 'peut-etre'], io)).toBe(2);
    expect(await privacyCommand(deps, ['nothing'], io)).toBe(2);
    out.length = 0;
    expect(await privacyCommand(deps, ['verify'], io)).toBe(0);
    expect(out.join('')).toContain('Every sealed chain and digest reseal verifies.');
    const audit = await ctx.app.db
      .selectFrom('audit_log')
      .select('action')
      .where('action', '=', 'privacy.session')
      .execute();
    expect(audit).toHaveLength(1);
  });
});
