import { createHash, randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/index.js';

/**
 * Rows of other capabilities written directly, as they would be after launches, onboarding, module
 * progress, tracked time and certificate issuance: the exports read these tables and nothing else.
 */

export async function seedRegistration(db: Db): Promise<string> {
  const row = await db
    .insertInto('lti_registrations')
    .values({
      name: 'FUN (test)',
      issuer: 'https://fun.test',
      client_id: 'emargement',
      deployment_ids: JSON.stringify(['1']),
      auth_login_url: 'https://fun.test/auth',
      access_token_url: 'https://fun.test/token',
      jwks_url: 'https://fun.test/jwks',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function seedCourse(db: Db, contextId: string, title: string, label: string): Promise<string> {
  const row = await db
    .insertInto('courses')
    .values({ issuer: 'https://fun.test', context_id: contextId, title, label })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export interface LearnerSeed {
  registrationId: string;
  courseId: string;
  fund: string;
  idcc: string | null;
  familyName: string;
  givenName: string;
  companyName?: string;
  companySiret?: string;
  civility?: 'madame' | 'monsieur' | 'non_precise';
  registeredAt: Date;
}

export async function seedLearner(db: Db, seed: LearnerSeed): Promise<string> {
  const learner = await db
    .insertInto('learners')
    .values({ issuer: 'https://fun.test', sub: randomUUID(), name: `${seed.givenName} ${seed.familyName}` })
    .returning('id')
    .executeTakeFirstOrThrow();
  await enrol(db, learner.id, seed.registrationId, seed.courseId, seed.registeredAt);
  await db
    .insertInto('learner_profiles')
    .values({
      learner_id: learner.id,
      civility: seed.civility ?? 'madame',
      family_name: seed.familyName,
      given_name: seed.givenName,
      company_name: seed.companyName ?? 'Hôtel du Parc',
      company_siret: seed.companySiret ?? '73282932000074',
      headcount_band: '10-49',
      idcc: seed.idcc,
      fund_slug: seed.fund,
      updated_by_role: 'learner',
    })
    .execute();
  return learner.id;
}

/** A launch of the learner in a course: what makes them registered in that session. */
export async function enrol(
  db: Db,
  learnerId: string,
  registrationId: string,
  courseId: string,
  at: Date,
): Promise<void> {
  await db
    .insertInto('lti_launches')
    .values({
      registration_id: registrationId,
      learner_id: learnerId,
      course_id: courseId,
      message_type: 'LtiResourceLinkRequest',
      role: 'learner',
      roles: JSON.stringify(['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner']) as unknown as string[],
      deployment_id: '1',
      target_link_uri: 'https://tool.test/lti/launch',
      created_at: at,
    })
    .execute();
}

export async function moduleIds(db: Db, fund: string): Promise<{ common: string[]; sector: string[] }> {
  const rows = await db
    .selectFrom('modules as m')
    .innerJoin('themes as t', (j) => j.onRef('t.track_id', '=', 'm.track_id').onRef('t.slug', '=', 'm.theme_slug'))
    .select(['m.id', 't.trunk', 'm.fund_slug', 'm.branches'])
    .where('m.active', '=', true)
    .orderBy('t.position')
    .execute();
  return {
    common: rows.filter((r) => r.trunk === 'common').map((r) => r.id),
    sector: rows
      .filter((r) => r.trunk === 'sector' && r.fund_slug === fund && r.branches.length === 0)
      .map((r) => r.id),
  };
}

export async function progress(
  db: Db,
  learnerId: string,
  courseId: string,
  moduleId: string,
  options: { startedAt: Date; completedAt?: Date | null; quiz?: { correct: number; total: number } },
): Promise<void> {
  const m = await db
    .selectFrom('modules')
    .select(['current_version', 'fund_slug'])
    .where('id', '=', moduleId)
    .executeTakeFirstOrThrow();
  await db
    .insertInto('module_progress')
    .values({
      learner_id: learnerId,
      course_id: courseId,
      module_id: moduleId,
      module_version: m.current_version,
      fund_slug: m.fund_slug,
      quiz_answers: options.quiz
        ? (JSON.stringify({
            answers: [],
            ...options.quiz,
            answeredAt: options.startedAt.toISOString(),
          }) as unknown as null)
        : null,
      started_at: options.startedAt,
      updated_at: options.completedAt ?? options.startedAt,
      completed_at: options.completedAt ?? null,
    })
    .execute();
}

export interface RunSeed {
  moduleId: string;
  start: Date;
  end: Date;
  beats: number;
  userAgent?: string;
}

/**
 * Tracked time: one tab and run per given run, the module totals and the course total (credited =
 * measured here, no caps), as the tracking ingest leaves them.
 */
export async function trackTime(
  db: Db,
  learnerId: string,
  courseId: string,
  runs: RunSeed[],
  options: { cappedModules?: string[]; longDays?: string[]; rejectedAt?: Date[] } = {},
): Promise<number> {
  const params = JSON.stringify({ algorithm: 'beats-v1', capFactor: 3 });
  const perModule = new Map<string, { ms: number; first: Date; last: Date }>();
  for (const run of runs) {
    const tabId = randomUUID();
    await db
      .insertInto('tracking_tabs')
      .values({
        id: tabId,
        learner_id: learnerId,
        course_id: courseId,
        module_id: run.moduleId,
        module_version: 1,
        nominal_minutes: 15,
        role: 'learner',
        profile: 'standard',
        params,
        user_agent: run.userAgent ?? 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120',
        created_at: run.start,
        opened_at: run.start,
        closed_at: run.end,
        last_seq: run.beats,
        missing_seqs: '[]',
        last_accepted_beat_at: run.end,
        current_run_id: null,
        rate_window_start: null,
        rate_window_items: 0,
        dropped_items: 0,
      })
      .execute();
    await db
      .insertInto('tracking_runs')
      .values({
        id: randomUUID(),
        tab_id: tabId,
        learner_id: learnerId,
        course_id: courseId,
        module_id: run.moduleId,
        started_at: run.start,
        last_beat_at: run.end,
        beat_count: run.beats,
        first_seq: 0,
        last_seq: run.beats,
        rolling_hash: '0'.repeat(64),
        sealed: true,
      })
      .execute();
    const m = perModule.get(run.moduleId);
    const ms = run.end.getTime() - run.start.getTime();
    if (m) {
      m.ms += ms;
      if (run.start < m.first) m.first = run.start;
      if (run.end > m.last) m.last = run.end;
    } else perModule.set(run.moduleId, { ms, first: run.start, last: run.end });
  }
  let totalMs = 0;
  for (const [moduleId, m] of perModule) {
    totalMs += m.ms;
    await db
      .insertInto('time_totals')
      .values({
        learner_id: learnerId,
        course_id: courseId,
        module_id: moduleId,
        nominal_minutes: 15,
        measured_ms: m.ms,
        credited_ms: m.ms,
        measured_seconds: Math.floor(m.ms / 1000),
        credited_seconds: Math.floor(m.ms / 1000),
        cap_seconds: 2700,
        first_at: m.first,
        last_at: m.last,
        rejected_items: 0,
        flags: JSON.stringify(options.cappedModules?.includes(moduleId) ? ['over_cap'] : []),
        algorithm: 'beats-v1',
        params,
      })
      .execute();
  }
  await db
    .insertInto('time_course_totals')
    .values({
      learner_id: learnerId,
      course_id: courseId,
      measured_ms: totalMs,
      credited_ms: totalMs,
      measured_seconds: Math.floor(totalMs / 1000),
      credited_seconds: Math.floor(totalMs / 1000),
      rejected_items: options.rejectedAt?.length ?? 0,
      long_days: JSON.stringify(options.longDays ?? []),
      flags: JSON.stringify(options.longDays?.length ? ['long_day'] : []),
      algorithm: 'beats-v1',
      params,
    })
    .execute();
  let index = 0;
  for (const at of options.rejectedAt ?? []) {
    await db
      .insertInto('tracking_events')
      .values({
        learner_id: learnerId,
        chain_index: index++,
        kind: 'rejected',
        course_id: courseId,
        module_id: runs[0]?.moduleId ?? null,
        tab_id: null,
        seq: null,
        server_time: at,
        client_time: null,
        reason: 'too_frequent',
        data: JSON.stringify({}),
        prev_hash: '0'.repeat(64),
        hash: '1'.repeat(64),
      })
      .execute();
  }
  return Math.floor(totalMs / 1000);
}

/** A valid certificate row as the certificates capability stores it (content irrelevant to exports). */
export async function certify(
  db: Db,
  learnerId: string,
  courseId: string,
  options: { number: string; fund: string; fileNumber: string | null; issuedAt: Date },
): Promise<void> {
  let key = await db
    .selectFrom('certificate_signing_keys')
    .select('kid')
    .where('status', '=', 'current')
    .executeTakeFirst();
  if (!key) {
    key = { kid: 'test-kid' };
    await db
      .insertInto('certificate_signing_keys')
      .values({
        kid: key.kid,
        alg: 'Ed25519',
        public_jwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }) as never,
        private_key_sealed: 'sealed',
        status: 'current',
      })
      .execute();
  }
  const data = JSON.stringify({ fund: { slug: options.fund, fileNumber: options.fileNumber } });
  const pdf = Buffer.from('%PDF-1.7 test');
  await db
    .insertInto('certificates')
    .values({
      id: randomUUID(),
      number: options.number,
      year: options.issuedAt.getUTCFullYear(),
      sequence: Number(options.number.replace(/\D/g, '').slice(-6)) || 1,
      lineage_id: randomUUID(),
      version: 1,
      supersedes_id: null,
      learner_id: learnerId,
      course_id: courseId,
      fund_slug: options.fund,
      data_canonical: data,
      data_sha256: createHash('sha256').update(data).digest('hex'),
      signature: 'sig',
      signing_kid: key.kid,
      pdf,
      pdf_sha256: createHash('sha256').update(pdf).digest('hex'),
      pdf_size: pdf.length,
      algorithm: 'beats-v1',
      issued_at: options.issuedAt,
      issuance_kind: 'automatic',
      issued_by: null,
      issue_reason: null,
    })
    .execute();
}

/** An OPCO file number for a company in a course session (src/file-numbers), as the portal stores it. */
export async function seedFileNumber(
  db: Db,
  key: { fund: string; courseId: string; siret: string; fileNumber: string },
): Promise<void> {
  await db
    .insertInto('fund_file_numbers')
    .values({
      fund_slug: key.fund,
      course_id: key.courseId,
      company_siret: key.siret,
      file_number: key.fileNumber,
      set_by_user_id: null,
      set_by_username: 'seed',
    })
    .execute();
}
