import { type Kysely, sql } from 'kysely';

/**
 * Attendance certificates: the tool's Ed25519 signing keys, yearly number counters, the issuance rule of
 * each course, and the certificates themselves. An issued certificate is immutable (a trigger refuses
 * any change to what was signed and printed, and any deletion); only its state moves, one way:
 * valid → superseded | revoked, superseded → revoked.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('certificate_signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'jsonb', (c) => c.notNull())
    .addColumn('private_key_sealed', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('retired_at', 'timestamptz')
    .addCheckConstraint('certificate_signing_keys_status_ck', sql`status in ('current', 'retired')`)
    .execute();
  // At most one current key, even when two instances create one at the same time.
  await sql`create unique index certificate_signing_keys_current_uq on certificate_signing_keys (status) where status = 'current'`.execute(
    db,
  );

  await db.schema
    .createTable('certificate_counters')
    .addColumn('year', 'integer', (c) => c.primaryKey())
    .addColumn('last_sequence', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('certificate_rules')
    .addColumn('course_id', 'uuid', (c) => c.primaryKey().references('courses.id').onDelete('cascade'))
    .addColumn('modules_required', 'text', (c) => c.notNull())
    .addColumn('min_credited_minutes', 'integer')
    .addColumn('auto_issue', 'boolean', (c) => c.notNull())
    .addColumn('planned_minutes', 'integer', (c) => c.notNull())
    .addColumn('session_start', 'date')
    .addColumn('session_end', 'date')
    .addColumn('updated_by', 'uuid', (c) => c.references('learners.id'))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('certificate_rules_modules_ck', sql`modules_required in ('none', 'sector', 'all')`)
    .addCheckConstraint(
      'certificate_rules_condition_ck',
      sql`modules_required <> 'none' or coalesce(min_credited_minutes, 0) > 0`,
    )
    .execute();

  await db.schema
    .createTable('certificates')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('number', 'text', (c) => c.notNull().unique())
    .addColumn('year', 'integer', (c) => c.notNull())
    .addColumn('sequence', 'integer', (c) => c.notNull())
    .addColumn('lineage_id', 'uuid', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('supersedes_id', 'uuid', (c) => c.references('certificates.id'))
    .addColumn('learner_id', 'uuid', (c) => c.notNull().references('learners.id'))
    .addColumn('course_id', 'uuid', (c) => c.notNull().references('courses.id'))
    .addColumn('fund_slug', 'text')
    .addColumn('data_canonical', 'text', (c) => c.notNull())
    .addColumn('data_sha256', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('signing_kid', 'text', (c) => c.notNull().references('certificate_signing_keys.kid'))
    .addColumn('pdf', 'bytea', (c) => c.notNull())
    .addColumn('pdf_sha256', 'text', (c) => c.notNull())
    .addColumn('pdf_size', 'integer', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull())
    .addColumn('issuance_kind', 'text', (c) => c.notNull())
    .addColumn('issued_by', 'uuid', (c) => c.references('learners.id'))
    .addColumn('issue_reason', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('valid'))
    .addColumn('superseded_by_id', 'uuid', (c) => c.references('certificates.id'))
    .addColumn('superseded_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('revoked_by', 'uuid', (c) => c.references('learners.id'))
    .addColumn('revocation_reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('certificates_year_sequence_uq', ['year', 'sequence'])
    .addUniqueConstraint('certificates_lineage_version_uq', ['lineage_id', 'version'])
    .addCheckConstraint('certificates_state_ck', sql`state in ('valid', 'superseded', 'revoked')`)
    .addCheckConstraint(
      'certificates_kind_ck',
      sql`issuance_kind in ('automatic', 'learner_request', 'course_team', 'operator')`,
    )
    .addCheckConstraint(
      'certificates_reason_ck',
      sql`issuance_kind not in ('course_team', 'operator') or length(trim(issue_reason)) > 0`,
    )
    .addCheckConstraint(
      'certificates_revocation_ck',
      sql`(state = 'revoked') = (revoked_at is not null) and (revoked_at is null or length(trim(revocation_reason)) > 0)`,
    )
    .execute();
  // One valid certificate per learner and course: two automatic issuances racing cannot both land.
  await sql`create unique index certificates_one_valid_uq on certificates (learner_id, course_id) where state = 'valid'`.execute(
    db,
  );
  await db.schema.createIndex('certificates_course_idx').on('certificates').columns(['course_id', 'number']).execute();
  await db.schema.createIndex('certificates_fund_idx').on('certificates').columns(['fund_slug', 'number']).execute();
  await db.schema
    .createIndex('certificates_learner_idx')
    .on('certificates')
    .columns(['learner_id', 'course_id'])
    .execute();

  await sql`
    create function certificates_guard() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        raise exception 'issued certificates are kept: % cannot be deleted', old.number;
      end if;
      if (new.id, new.number, new.year, new.sequence, new.lineage_id, new.version, new.supersedes_id,
          new.learner_id, new.course_id, new.fund_slug, new.data_canonical, new.data_sha256, new.signature,
          new.signing_kid, new.pdf, new.pdf_sha256, new.pdf_size, new.algorithm, new.issued_at,
          new.issuance_kind, new.issued_by, new.issue_reason, new.created_at)
         is distinct from
         (old.id, old.number, old.year, old.sequence, old.lineage_id, old.version, old.supersedes_id,
          old.learner_id, old.course_id, old.fund_slug, old.data_canonical, old.data_sha256, old.signature,
          old.signing_kid, old.pdf, old.pdf_sha256, old.pdf_size, old.algorithm, old.issued_at,
          old.issuance_kind, old.issued_by, old.issue_reason, old.created_at) then
        raise exception 'issued certificate % is immutable', old.number;
      end if;
      if new.state is distinct from old.state and not (
           (old.state = 'valid' and new.state in ('superseded', 'revoked'))
        or (old.state = 'superseded' and new.state = 'revoked')) then
        raise exception 'certificate % cannot go from % to %', old.number, old.state, new.state;
      end if;
      if old.state = 'revoked' and (new.revoked_at, new.revoked_by, new.revocation_reason)
         is distinct from (old.revoked_at, old.revoked_by, old.revocation_reason) then
        raise exception 'revocation of % is final', old.number;
      end if;
      return new;
    end
    $$`.execute(db);
  await sql`create trigger certificates_guard_trg before update or delete on certificates
    for each row execute function certificates_guard()`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists certificates_guard_trg on certificates`.execute(db);
  await sql`drop function if exists certificates_guard()`.execute(db);
  for (const t of ['certificates', 'certificate_rules', 'certificate_counters', 'certificate_signing_keys']) {
    await db.schema.dropTable(t).execute();
  }
}
