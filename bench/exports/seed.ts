import { sql } from 'kysely';
import type { Db } from '../../src/db/index.js';

/**
 * Seeds a benchmark database in a few set-based statements: N learners, each registered in one course
 * session with a profile (five funds, their branches), `modules` module-progress rows (half common trunk,
 * half their fund's sector trunk, on a bench track of `modules` themes), `modules` module time totals,
 * a course total, and a certificate for one learner in three.
 */
export async function seedBench(db: Db, learners: number, modules: number): Promise<void> {
  const half = Math.floor(modules / 2);
  await sql`insert into lti_registrations (name, issuer, client_id, deployment_ids, auth_login_url, access_token_url, jwks_url)
    values ('bench', 'https://bench.test', 'bench', '["1"]', 'https://bench.test/a', 'https://bench.test/t', 'https://bench.test/j')
    on conflict do nothing`.execute(db);
  await sql`insert into courses (id, issuer, context_id, label, title)
    values ('00000000-0000-4000-8000-000000000001', 'https://bench.test', 'course-v1:BENCH+TNUM+2026', 'Session bench', 'Transition numérique des TPE-PME')
    on conflict do nothing`.execute(db);

  // A bench track whose themes replace the content's: `modules` themes, one module each per fund.
  await sql`update modules set active = false where track_id <> 'bench'`.execute(db);
  await sql`insert into tracks (id, title, version) values ('bench', 'Bench', 1) on conflict do nothing`.execute(db);
  await sql`insert into themes (track_id, slug, title, trunk, position)
    select 'bench', 't' || lpad(k::text, 2, '0'), 'Thème ' || k, case when k <= ${sql.lit(half)} then 'common' else 'sector' end, k
    from generate_series(1, ${sql.lit(modules)}) k on conflict do nothing`.execute(db);
  await sql`insert into modules (id, track_id, theme_slug, fund_slug, title, nominal_minutes, current_version)
    select 'bench-c' || lpad(k::text, 2, '0'), 'bench', 't' || lpad(k::text, 2, '0'), null, 'Module commun ' || k, 15, 1
    from generate_series(1, ${sql.lit(half)}) k on conflict do nothing`.execute(db);
  await sql`insert into modules (id, track_id, theme_slug, fund_slug, title, nominal_minutes, current_version)
    select 'bench-' || f.slug || '-' || lpad(k::text, 2, '0'), 'bench', 't' || lpad(k::text, 2, '0'), f.slug,
      'Module ' || f.name || ' ' || k, 15, 1
    from funds f cross join generate_series(${sql.lit(half + 1)}, ${sql.lit(modules)}) k on conflict do nothing`.execute(
    db,
  );
  await sql`insert into module_versions (module_id, version, manifest, content_hash, source_path)
    select id, 1, '{}'::jsonb, 'bench', 'bench' from modules where track_id = 'bench' on conflict do nothing`.execute(
    db,
  );

  const lid = sql`(md5('bench-learner-' || g)::uuid)`;
  await sql`insert into learners (id, issuer, sub, name)
    select ${lid}, 'https://bench.test', 'sub-' || g, 'Apprenant ' || g from generate_series(1, ${sql.lit(learners)}) g`.execute(
    db,
  );
  await sql`insert into lti_launches (registration_id, learner_id, course_id, message_type, role, roles, deployment_id, target_link_uri, created_at)
    select (select id from lti_registrations where issuer = 'https://bench.test' limit 1), ${lid},
      '00000000-0000-4000-8000-000000000001', 'LtiResourceLinkRequest', 'learner', '[]', '1', 'https://tool.test/lti/launch',
      timestamptz '2026-03-02 08:00:00+00' + ((g % 56) || ' days')::interval + ((g % 600) || ' minutes')::interval
    from generate_series(1, ${sql.lit(learners)}) g`.execute(db);

  // Funds in turn; each learner's branch is one of their fund's, or none for one in ten.
  await sql`create temporary table bench_funds as
    select f.slug, row_number() over (order by f.slug) - 1 as i,
      (select array_agg(b.idcc order by b.idcc) from branches b where b.fund_slug = f.slug) as branches
    from funds f`.execute(db);
  await sql`insert into learner_profiles (learner_id, civility, family_name, given_name, company_name, company_siret,
      headcount_band, idcc, fund_slug, updated_by_role)
    select ${lid}, case when g % 2 = 0 then 'madame' else 'monsieur' end,
      'Nom' || g, 'Prénom' || g, 'Entreprise ' || (g % 5000) || ' SARL', '73282932000074', '10-49',
      case when g % 10 = 0 then null else bf.branches[1 + (g % cardinality(bf.branches))] end, bf.slug, 'learner'
    from generate_series(1, ${sql.lit(learners)}) g
    join bench_funds bf on bf.i = g % (select count(*) from bench_funds)`.execute(db);

  // Progress: learner g has done (g % (modules + 1)) modules, started one more (when any left).
  await sql`insert into module_progress (learner_id, course_id, module_id, module_version, fund_slug, quiz_answers,
      started_at, updated_at, completed_at)
    select p.learner_id, '00000000-0000-4000-8000-000000000001', m.id, 1, m.fund_slug,
      case when m.rn <= p.done then jsonb_build_object('answers', '[]'::jsonb, 'correct', 2, 'total', 3, 'answeredAt', '2026-03-10T10:00:00Z') end,
      timestamptz '2026-03-03 09:00:00+00' + (m.rn || ' hours')::interval,
      timestamptz '2026-03-03 09:15:00+00' + (m.rn || ' hours')::interval,
      case when m.rn <= p.done then timestamptz '2026-03-03 09:15:00+00' + (m.rn || ' hours')::interval end
    from (
      select lp.learner_id, lp.fund_slug, (abs(hashtext(lp.learner_id::text)) % ${sql.lit(modules + 1)}) as done
      from learner_profiles lp
    ) p
    join lateral (
      select mo.id, mo.fund_slug, row_number() over (order by mo.theme_slug) as rn
      from modules mo
      where mo.track_id = 'bench' and (mo.fund_slug is null or mo.fund_slug = p.fund_slug)
    ) m on true`.execute(db);

  await sql`insert into time_totals (learner_id, course_id, module_id, nominal_minutes, measured_ms, credited_ms,
      measured_seconds, credited_seconds, cap_seconds, first_at, last_at, rejected_items, flags, algorithm, params)
    select mp.learner_id, mp.course_id, mp.module_id, 15, 900000, 900000, 900, 900, 2700, mp.started_at, mp.updated_at,
      0, '[]'::jsonb, 'beats-v1', '{"algorithm":"beats-v1"}'::jsonb
    from module_progress mp where mp.course_id = '00000000-0000-4000-8000-000000000001'`.execute(db);
  await sql`insert into time_course_totals (learner_id, course_id, measured_ms, credited_ms, measured_seconds,
      credited_seconds, rejected_items, long_days, flags, algorithm, params)
    select learner_id, course_id, sum(measured_ms), sum(credited_ms), sum(measured_seconds), sum(credited_seconds), 0,
      '[]'::jsonb, '[]'::jsonb, 'beats-v1', '{"algorithm":"beats-v1"}'::jsonb
    from time_totals where course_id = '00000000-0000-4000-8000-000000000001' group by learner_id, course_id`.execute(
    db,
  );

  await sql`insert into certificate_signing_keys (kid, alg, public_jwk, private_key_sealed, status)
    select 'bench-kid', 'Ed25519', '{"kty":"OKP","crv":"Ed25519","x":"AAAA"}'::jsonb, 'sealed', 'retired'
    where not exists (select 1 from certificate_signing_keys where kid = 'bench-kid')`.execute(db);
  await sql`insert into certificates (number, year, sequence, lineage_id, version, learner_id, course_id, fund_slug,
      data_canonical, data_sha256, signature, signing_kid, pdf, pdf_sha256, pdf_size, algorithm, issued_at, issuance_kind)
    select 'EMG-2026-' || lpad(n::text, 7, '0'), 2026, n, gen_random_uuid(), 1, lp.learner_id,
      '00000000-0000-4000-8000-000000000001', lp.fund_slug,
      '{"fund":{"fileNumber":"DOSSIER-' || n || '"}}', md5(n::text), 'sig', 'bench-kid', '\\x25504446'::bytea, md5(n::text), 4,
      'beats-v1', timestamptz '2026-04-01 10:00:00+00', 'automatic'
    from (select learner_id, fund_slug, row_number() over (order by learner_id) as n from learner_profiles) lp
    where lp.n % 3 = 0`.execute(db);
  await sql`analyze`.execute(db);
}
