import type { Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
import { launchedAsLearnerIn } from '../lti/index.js';
import { DEFAULT_RULE, type IssuanceRule } from './rules.js';
import type { CertificateStateColumn, CertificateTable, IssuanceKindColumn } from './tables.js';

type Executor = Db | Transaction<Database>;

// ---------------------------------------------------------------------------------------------------
// Rules

export async function findRule(db: Executor, courseId: string): Promise<IssuanceRule | null> {
  const row = await db.selectFrom('certificate_rules').selectAll().where('course_id', '=', courseId).executeTakeFirst();
  if (!row) return null;
  return {
    modulesRequired: row.modules_required,
    minCreditedMinutes: row.min_credited_minutes,
    autoIssue: row.auto_issue,
    plannedMinutes: row.planned_minutes,
    sessionStart: row.session_start,
    sessionEnd: row.session_end,
  };
}

export async function ruleOrDefault(db: Executor, courseId: string): Promise<{ rule: IssuanceRule; stored: boolean }> {
  const rule = await findRule(db, courseId);
  return rule ? { rule, stored: true } : { rule: { ...DEFAULT_RULE }, stored: false };
}

export async function saveRule(db: Executor, courseId: string, rule: IssuanceRule, updatedBy: string | null) {
  const values = {
    modules_required: rule.modulesRequired,
    min_credited_minutes: rule.minCreditedMinutes,
    auto_issue: rule.autoIssue,
    planned_minutes: rule.plannedMinutes,
    session_start: rule.sessionStart,
    session_end: rule.sessionEnd,
    updated_by: updatedBy,
    updated_at: new Date(),
  };
  await db
    .insertInto('certificate_rules')
    .values({ course_id: courseId, ...values })
    .onConflict((oc) => oc.column('course_id').doUpdateSet(values))
    .execute();
}

/** Courses whose rule issues automatically (a course without a stored rule uses the default: yes). */
export async function autoIssueDisabled(db: Executor, courseId: string): Promise<boolean> {
  const row = await db
    .selectFrom('certificate_rules')
    .select('auto_issue')
    .where('course_id', '=', courseId)
    .executeTakeFirst();
  return row ? !row.auto_issue : !DEFAULT_RULE.autoIssue;
}

// ---------------------------------------------------------------------------------------------------
// Numbers

/** Next sequence of the year; one statement, so two instances never get the same number. */
export async function nextSequence(db: Executor, year: number): Promise<number> {
  const row = await db
    .insertInto('certificate_counters')
    .values({ year, last_sequence: 1 })
    .onConflict((oc) =>
      oc.column('year').doUpdateSet((eb) => ({ last_sequence: eb('certificate_counters.last_sequence', '+', 1) })),
    )
    .returning('last_sequence')
    .executeTakeFirstOrThrow();
  return row.last_sequence;
}

// ---------------------------------------------------------------------------------------------------
// Certificates

/** Every column but the PDF bytes. */
const META = [
  'id',
  'number',
  'lineage_id',
  'version',
  'supersedes_id',
  'learner_id',
  'course_id',
  'fund_slug',
  'data_canonical',
  'data_sha256',
  'signature',
  'signing_kid',
  'pdf_sha256',
  'pdf_size',
  'algorithm',
  'issued_at',
  'issuance_kind',
  'issued_by',
  'issue_reason',
  'state',
  'superseded_by_id',
  'superseded_at',
  'revoked_at',
  'revoked_by',
  'revocation_reason',
] as const;

export interface CertificateRecord {
  id: string;
  number: string;
  lineage_id: string;
  version: number;
  supersedes_id: string | null;
  learner_id: string;
  course_id: string;
  fund_slug: string | null;
  data_canonical: string;
  data_sha256: string;
  signature: string;
  signing_kid: string;
  pdf_sha256: string;
  pdf_size: number;
  algorithm: string;
  issued_at: Date;
  issuance_kind: IssuanceKindColumn;
  issued_by: string | null;
  issue_reason: string | null;
  state: CertificateStateColumn;
  superseded_by_id: string | null;
  superseded_at: Date | null;
  revoked_at: Date | null;
  revoked_by: string | null;
  revocation_reason: string | null;
}

export async function findByNumber(db: Executor, number: string): Promise<CertificateRecord | undefined> {
  return db.selectFrom('certificates').select(META).where('number', '=', number).executeTakeFirst();
}

export async function findNumberById(db: Executor, id: string | null): Promise<string | null> {
  if (!id) return null;
  const row = await db.selectFrom('certificates').select('number').where('id', '=', id).executeTakeFirst();
  return row?.number ?? null;
}

export async function findPdf(db: Executor, number: string): Promise<Buffer | null> {
  const row = await db.selectFrom('certificates').select('pdf').where('number', '=', number).executeTakeFirst();
  return row ? toBuffer(row.pdf) : null;
}

export async function findValid(db: Executor, learnerId: string, courseId: string) {
  return db
    .selectFrom('certificates')
    .select(META)
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .where('state', '=', 'valid')
    .executeTakeFirst();
}

export async function listForLearner(db: Executor, learnerId: string, courseId: string): Promise<CertificateRecord[]> {
  return db
    .selectFrom('certificates')
    .select(META)
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .orderBy('issued_at', 'desc')
    .orderBy('version', 'desc')
    .execute();
}

export async function listForCourse(db: Executor, courseId: string, limit = 500): Promise<CertificateRecord[]> {
  return db
    .selectFrom('certificates')
    .select(META)
    .where('course_id', '=', courseId)
    .orderBy('number', 'desc')
    .limit(limit)
    .execute();
}

export async function countForLearner(db: Executor, learnerId: string, courseId: string): Promise<number> {
  const row = await db
    .selectFrom('certificates')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export type NewCertificate = Omit<
  CertificateTable,
  | 'id'
  | 'state'
  | 'created_at'
  | 'superseded_by_id'
  | 'superseded_at'
  | 'revoked_at'
  | 'revoked_by'
  | 'revocation_reason'
> & { id: string };

export async function insertCertificate(db: Executor, row: NewCertificate): Promise<void> {
  await db.insertInto('certificates').values(row).execute();
}

export async function markSuperseded(db: Executor, id: string, at: Date): Promise<boolean> {
  const result = await db
    .updateTable('certificates')
    .set({ state: 'superseded', superseded_at: at })
    .where('id', '=', id)
    .where('state', '=', 'valid')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function linkSuccessor(db: Executor, id: string, successorId: string): Promise<void> {
  await db.updateTable('certificates').set({ superseded_by_id: successorId }).where('id', '=', id).execute();
}

export async function markRevoked(
  db: Executor,
  id: string,
  revokedBy: string | null,
  reason: string,
  at: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('certificates')
    .set({ state: 'revoked', revoked_at: at, revoked_by: revokedBy, revocation_reason: reason })
    .where('id', '=', id)
    .where('state', 'in', ['valid', 'superseded'])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export interface ArchiveFilter {
  courseId?: string | undefined;
  fundSlug?: string | undefined;
  /** Include superseded and revoked versions too (an auditor's full record); default: valid only. */
  allStates?: boolean | undefined;
}

export interface ArchiveRow {
  number: string;
  state: CertificateStateColumn;
  issued_at: Date;
  data_canonical: string;
  pdf: Buffer;
}

/**
 * One page of an archive, in number order after `after`: keyset pagination keeps memory bounded by the
 * page size and holds no connection between pages (on PGlite a long cursor would block every request).
 */
export async function archivePage(
  db: Executor,
  filter: ArchiveFilter,
  after: string,
  limit: number,
): Promise<ArchiveRow[]> {
  let query = db
    .selectFrom('certificates')
    .select(['number', 'state', 'issued_at', 'data_canonical', 'pdf'])
    .where('number', '>', after)
    .orderBy('number')
    .limit(limit);
  if (filter.courseId) query = query.where('course_id', '=', filter.courseId);
  if (filter.fundSlug) query = query.where('fund_slug', '=', filter.fundSlug);
  if (!filter.allStates) query = query.where('state', '=', 'valid');
  const rows = await query.execute();
  return rows.map((r) => ({ ...r, pdf: toBuffer(r.pdf) }));
}

/** pg hands back a Buffer, PGlite a Uint8Array: callers always get a Buffer. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------------------------------------------
// LTI identity tables (shared by every capability: see src/lti/tables.ts)

export async function courseTitle(db: Executor, courseId: string): Promise<string | null> {
  const row = await db.selectFrom('courses').select(['title', 'label']).where('id', '=', courseId).executeTakeFirst();
  return row ? (row.title ?? row.label ?? null) : null;
}

/** Learners who launched the tool in this course: whom the course team may issue to. */
export async function courseLearners(db: Executor, courseId: string): Promise<Array<{ id: string; label: string }>> {
  const rows = await db
    .selectFrom('learners')
    .select(['learners.id', 'learners.name', 'learners.given_name', 'learners.family_name', 'learners.username'])
    .where(launchedAsLearnerIn(courseId))
    .orderBy('learners.family_name')
    .orderBy('learners.id')
    .limit(2000)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    label:
      [r.given_name, r.family_name].filter(Boolean).join(' ') ||
      r.name ||
      r.username ||
      `apprenant ${r.id.slice(0, 8)}`,
  }));
}

export async function learnerLaunchedIn(db: Executor, learnerId: string, courseId: string): Promise<boolean> {
  const row = await db
    .selectFrom('lti_launches')
    .select('id')
    .where('learner_id', '=', learnerId)
    .where('course_id', '=', courseId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function fundsInCourse(db: Executor, courseId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('certificates')
    .select('fund_slug')
    .distinct()
    .where('course_id', '=', courseId)
    .where('fund_slug', 'is not', null)
    .orderBy('fund_slug')
    .execute();
  return rows.map((r) => r.fund_slug as string);
}
