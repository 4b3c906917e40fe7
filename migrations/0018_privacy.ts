import { type Kysely, sql } from 'kysely';

/**
 * Personal data lifecycle (docs/privacy.md): the EU co-funding mark of a course session, erasures, signed
 * redactions of evidence records, signed summaries of purged evidence chains and of the daily digests they
 * rewrote, and the journal of purge runs. The append-only guards of evidence, LMS events and certificates
 * gain one narrow way through, for the privacy capability only: a transaction that sets the
 * `emargement.privacy` setting to `purge` may delete, to `redact` may change the `data` of an evidence
 * record (nothing else), to `erase` may change the LMS username of an LMS event (nothing else).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed loosely on purpose.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('privacy_course_sessions')
    .addColumn('course_id', 'uuid', (c) => c.primaryKey().references('courses.id').onDelete('cascade'))
    .addColumn('eu_cofunded', 'boolean', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // No foreign key: the row outlives nothing (deleted with the learner) but must not block that deletion.
  await db.schema
    .createTable('privacy_erasures')
    .addColumn('learner_id', 'uuid', (c) => c.primaryKey())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('erased_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('holds', 'jsonb', (c) => c.notNull())
    .execute();

  // A record of tracking_events whose personal fields were reduced: the statement signed (Ed25519, the
  // certificate key `kid`) binds the record's place in the chain (prev_hash, hash) to its reduced content.
  await db.schema
    .createTable('tracking_event_redactions')
    .addColumn('learner_id', 'uuid', (c) => c.notNull())
    .addColumn('chain_index', 'bigint', (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('redacted_at', 'timestamptz', (c) => c.notNull())
    .addColumn('kid', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('tracking_event_redactions_pk', ['learner_id', 'chain_index'])
    .execute();

  // A chain dropped at the end of its retention: its head and length as they were, signed.
  await db.schema
    .createTable('privacy_purged_chains')
    .addColumn('learner_id', 'uuid', (c) => c.primaryKey())
    .addColumn('chain_length', 'bigint', (c) => c.notNull())
    .addColumn('chain_head', 'text', (c) => c.notNull())
    .addColumn('purged_at', 'timestamptz', (c) => c.notNull())
    .addColumn('statement', 'text', (c) => c.notNull())
    .addColumn('kid', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .execute();

  // A daily digest rewritten without purged chains: before, after and the heads removed, signed.
  await db.schema
    .createTable('privacy_digest_reseals')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('day', 'date', (c) => c.notNull())
    .addColumn('resealed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('statement', 'text', (c) => c.notNull())
    .addColumn('kid', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('privacy_digest_reseals_day_idx').on('privacy_digest_reseals').column('day').execute();

  await db.schema
    .createTable('privacy_purge_runs')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addColumn('mode', 'text', (c) => c.notNull()) // 'dry-run' | 'apply'
    .addColumn('trigger', 'text', (c) => c.notNull()) // 'cli' | 'scheduled'
    .addColumn('report', 'jsonb')
    .execute();

  // Indexes the purge needs to find old rows without a full scan.
  await sql`create index if not exists portal_login_failures_created_idx on portal_login_failures (created_at)`.execute(
    db,
  );
  await sql`create index if not exists tracking_tabs_created_idx on tracking_tabs (created_at)`.execute(db);
  await sql`create index if not exists lms_events_occurred_idx on lms_events (occurred_at)`.execute(db);

  await sql`create or replace function tracking_events_append_only() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' and current_setting('emargement.privacy', true) = 'purge' then
    return old;
  end if;
  if tg_op = 'UPDATE' and current_setting('emargement.privacy', true) = 'redact'
     and (new.id, new.learner_id, new.chain_index, new.kind, new.course_id, new.module_id, new.tab_id, new.seq,
          new.server_time, new.client_time, new.reason, new.prev_hash, new.hash)
     is not distinct from
         (old.id, old.learner_id, old.chain_index, old.kind, old.course_id, old.module_id, old.tab_id, old.seq,
          old.server_time, old.client_time, old.reason, old.prev_hash, old.hash) then
    return new;
  end if;
  raise exception 'tracking_events is append-only (evidence)';
end $$`.execute(db);

  await sql`create or replace function lms_events_append_only() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' and current_setting('emargement.privacy', true) = 'purge' then
    return old;
  end if;
  if tg_op = 'UPDATE' and current_setting('emargement.privacy', true) = 'erase'
     and (new.hash, new.source, new.issuer, new.lms_user_id, new.course_context_id, new.occurred_at, new.event_type,
          new.event_source, new.session_id, new.import_id, new.imported_at)
     is not distinct from
         (old.hash, old.source, old.issuer, old.lms_user_id, old.course_context_id, old.occurred_at, old.event_type,
          old.event_source, old.session_id, old.import_id, old.imported_at) then
    return new;
  end if;
  raise exception 'lms_events is append-only';
end $$`.execute(db);

  await sql`
    create or replace function certificates_guard() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        if current_setting('emargement.privacy', true) = 'purge' then
          return old;
        end if;
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
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await sql`create or replace function tracking_events_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'tracking_events is append-only (evidence)';
end $$`.execute(db);
  await sql`create or replace function lms_events_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'lms_events is append-only';
end $$`.execute(db);
  await sql`
    create or replace function certificates_guard() returns trigger language plpgsql as $$
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
  await sql`drop index if exists lms_events_occurred_idx`.execute(db);
  await sql`drop index if exists tracking_tabs_created_idx`.execute(db);
  await sql`drop index if exists portal_login_failures_created_idx`.execute(db);
  for (const t of [
    'privacy_purge_runs',
    'privacy_digest_reseals',
    'privacy_purged_chains',
    'tracking_event_redactions',
    'privacy_erasures',
    'privacy_course_sessions',
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
