// One file: issuance, versions, revocation and verification share the record look-up, the facts and the signing key.
import { randomUUID } from 'node:crypto';
import type { Archiver } from 'archiver';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { BadRequestError, ConflictError, NotFoundError } from '../http/errors.js';
import { certificatesIssued } from '../metrics/index.js';
import { certificateZip } from './archive.js';
import { renderCertificatePdf } from './pdf.js';
import type { ProviderConfig } from './provider.js';
import * as repo from './repository.js';
import {
  buildCertificateData,
  type CertificateData,
  type CertificateFacts,
  type CertificateState,
  canonicalJson,
  certificateFileName,
  type Eligibility,
  eligibilityFacts,
  evaluateEligibility,
  formatCertificateNumber,
  type IssuanceKind,
  type IssuanceRule,
  type PublicSummary,
  parisDay,
  parseCertificateNumber,
  publicSummary,
  ruleProblems,
} from './rules.js';
import { currentSigningKey, publicKeyFor, publishedKeys, sha256Hex, signText, verifyText } from './signing.js';

/**
 * What the catalog (profiles, modules, completions) and the time tracking (credited seconds, algorithm)
 * say about one learner in one course. `null` when the learner has no profile yet: a certificate without
 * a name, a company and a fund cannot be issued.
 */
export interface FactsSource {
  load(learnerId: string, courseId: string): Promise<CertificateFacts | null>;
}

export interface IssueRequest {
  learnerId: string;
  courseId: string;
  kind: IssuanceKind;
  /** The LTI user who asked (the learner, a course team member); null for automatic or CLI issuance. */
  by: string | null;
  reason: string | null;
}

export interface IssuedCertificate {
  number: string;
  version: number;
  state: CertificateState;
  created: boolean;
}

export interface EligibilityReport {
  rule: IssuanceRule;
  eligibility: Eligibility | null;
  profileMissing: boolean;
}

export interface VerificationResult {
  summary: PublicSummary;
  /** Stored bytes and signature re-checked against the published key (a database edit would show). */
  integrity: { signature: boolean; dataHash: boolean; pdfHash: boolean };
}

const REASON_MAX = 500;

export class CertificateService {
  #facts: FactsSource;
  /** Whether a learner's personal data must stay off the public verification (set by src/privacy). */
  #personalDataHidden: ((learnerId: string) => Promise<boolean>) | null = null;

  constructor(
    private readonly deps: {
      db: Db;
      config: Config;
      provider: ProviderConfig;
      log: FastifyBaseLogger;
      facts: FactsSource;
    },
  ) {
    this.#facts = deps.facts;
  }

  get provider(): ProviderConfig {
    return this.deps.provider;
  }

  /** After an erasure the public verification shows the number, state and figures only (docs/privacy.md). */
  setPersonalDataHidden(check: (learnerId: string) => Promise<boolean>): void {
    this.#personalDataHidden = check;
  }

  /** Tests and the wiring in index.ts replace the source of facts (catalog + tracking). */
  setFactsSource(source: FactsSource): void {
    this.#facts = source;
  }

  // -------------------------------------------------------------------------------------------------
  // Rules

  async rule(courseId: string): Promise<{ rule: IssuanceRule; stored: boolean }> {
    return repo.ruleOrDefault(this.deps.db, courseId);
  }

  async saveRule(courseId: string, rule: IssuanceRule, by: string | null): Promise<void> {
    const problems = ruleProblems(rule);
    if (problems.length > 0) {
      throw new BadRequestError('rule_invalid', problems.join(' '), problems.join(' '), { problems });
    }
    await repo.saveRule(this.deps.db, courseId, rule, by);
  }

  async eligibility(learnerId: string, courseId: string): Promise<EligibilityReport> {
    const { rule } = await this.rule(courseId);
    const facts = await this.#facts.load(learnerId, courseId);
    if (!facts) return { rule, eligibility: null, profileMissing: true };
    return { rule, eligibility: evaluateEligibility(rule, eligibilityFacts(facts)), profileMissing: false };
  }

  // -------------------------------------------------------------------------------------------------
  // Issuance

  /**
   * Issues a first version. Automatic issuance and learner requests need the rule met; the course
   * team and operators may issue at any time but must give a reason, kept with the certificate.
   */
  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const reason = this.#reason(request.kind, request.reason);
    const { db } = this.deps;
    const existing = await repo.findValid(db, request.learnerId, request.courseId);
    if (existing) {
      if (request.kind === 'automatic' || request.kind === 'learner_request') {
        return { number: existing.number, version: existing.version, state: existing.state, created: false };
      }
      throw new ConflictError(
        'already_issued',
        'Un certificat valide existe déjà : pour le corriger, délivrez une nouvelle version.',
        `certificate ${existing.number} is valid`,
      );
    }
    if (request.kind === 'automatic' || request.kind === 'learner_request') {
      // After a revocation only the course team decides whether a new certificate is due.
      const history = await repo.listForLearner(db, request.learnerId, request.courseId);
      if (history.some((c) => c.state === 'revoked')) {
        throw new ConflictError(
          'revoked',
          'Votre certificat a été révoqué : écrivez à l’équipe du cours.',
          'a revoked certificate exists for this learner and course',
        );
      }
    }
    const { rule } = await this.rule(request.courseId);
    const facts = await this.#loadFacts(request.learnerId, request.courseId);
    if (request.kind === 'automatic' || request.kind === 'learner_request') {
      const eligibility = evaluateEligibility(rule, eligibilityFacts(facts));
      if (!eligibility.eligible) {
        throw new ConflictError(
          'not_eligible',
          `Le certificat ne peut pas encore être délivré : ${eligibility.missing.join(', ')}.`,
          'issuance rule not met',
        );
      }
    }
    try {
      return await this.#create({ facts, rule, kind: request.kind, by: request.by, reason, previous: null });
    } catch (error) {
      // Two issuances raced (say, an automatic one and the learner's click): the first one stands.
      const winner = isUniqueViolation(error)
        ? await repo.findValid(db, request.learnerId, request.courseId)
        : undefined;
      if (winner && (request.kind === 'automatic' || request.kind === 'learner_request')) {
        return { number: winner.number, version: winner.version, state: winner.state, created: false };
      }
      if (winner) throw new ConflictError('already_issued', 'Un certificat valide existe déjà.', winner.number);
      throw error;
    }
  }

  /**
   * Issues automatically when the course's rule allows it and is met, and the learner never had a
   * certificate in this course (a revoked one is not silently replaced). Returns null when nothing
   * was issued. Safe to call after every progress event: it is idempotent.
   */
  async issueIfEligible(learnerId: string, courseId: string): Promise<IssuedCertificate | null> {
    const { db } = this.deps;
    if (await repo.autoIssueDisabled(db, courseId)) return null;
    if ((await repo.countForLearner(db, learnerId, courseId)) > 0) return null;
    const report = await this.eligibility(learnerId, courseId);
    if (!report.eligibility?.eligible) return null;
    const issued = await this.issue({ learnerId, courseId, kind: 'automatic', by: null, reason: null });
    if (issued.created) this.deps.log.info({ number: issued.number }, 'certificate issued automatically');
    return issued;
  }

  /** A correction: a new version from today's facts that supersedes the valid one. */
  async correct(
    number: string,
    request: { kind: 'course_team' | 'operator'; by: string | null; reason: string | null },
  ) {
    const reason = this.#reason(request.kind, request.reason);
    const old = await this.#record(number);
    if (old.state !== 'valid') {
      throw new ConflictError(
        'not_valid',
        'Seul un certificat valide peut être corrigé.',
        `certificate ${old.number} is ${old.state}`,
      );
    }
    const { rule } = await this.rule(old.course_id);
    const facts = await this.#loadFacts(old.learner_id, old.course_id);
    return this.#create({ facts, rule, kind: request.kind, by: request.by, reason, previous: old });
  }

  /**
   * After the OPCO file number of the learner's company was set, changed or cleared: when the valid
   * certificate prints another number than today's, a new version from today's facts supersedes it
   * (issued automatically, the reason kept). Returns null when nothing was reissued.
   */
  async reissueForFileNumber(learnerId: string, courseId: string, reason: string): Promise<IssuedCertificate | null> {
    const old = await repo.findValid(this.deps.db, learnerId, courseId);
    if (!old) return null;
    const facts = await this.#loadFacts(learnerId, courseId);
    const printed = this.data(old).fund;
    if (
      (printed?.fileNumber ?? null) === (facts.fund?.fileNumber ?? null) &&
      (printed?.fileNumberToConfirm ?? false) === (facts.fund?.fileNumberToConfirm ?? false)
    ) {
      return null;
    }
    const { rule } = await this.rule(courseId);
    const issued = await this.#create({
      facts,
      rule,
      kind: 'automatic',
      by: null,
      reason: this.#reason('automatic', reason),
      previous: old,
    });
    this.deps.log.info({ number: issued.number, supersedes: old.number }, 'certificate reissued for a file number');
    return issued;
  }

  /**
   * After a closing group session's attendance was recorded or withdrawn (src/regroupement): when the
   * valid certificate prints other sessions than today's facts, a new version supersedes it. Returns null
   * when nothing was reissued (no certificate yet: the session will be on the first one).
   */
  async reissueForRegroupement(learnerId: string, courseId: string): Promise<IssuedCertificate | null> {
    const old = await repo.findValid(this.deps.db, learnerId, courseId);
    if (!old) return null;
    const facts = await this.#loadFacts(learnerId, courseId);
    const printed = JSON.stringify(this.data(old).groupSessions ?? []);
    if (printed === JSON.stringify(facts.groupSessions ?? [])) return null;
    const { rule } = await this.rule(courseId);
    const issued = await this.#create({
      facts,
      rule,
      kind: 'automatic',
      by: null,
      reason: this.#reason('automatic', 'présence au regroupement de fin de formation'),
      previous: old,
    });
    this.deps.log.info({ number: issued.number, supersedes: old.number }, 'certificate reissued for a regroupement');
    return issued;
  }

  async revoke(number: string, request: { by: string | null; reason: string | null }): Promise<void> {
    const reason = (request.reason ?? '').trim();
    if (reason.length === 0 || reason.length > REASON_MAX) {
      throw new BadRequestError('reason_required', 'Indiquez le motif de la révocation (500 caractères au plus).');
    }
    const record = await this.#record(number);
    const done = await repo.markRevoked(this.deps.db, record.id, request.by, reason, new Date());
    if (!done) throw new ConflictError('already_revoked', 'Ce certificat est déjà révoqué.', record.number);
    this.deps.log.info({ number: record.number }, 'certificate revoked');
  }

  #reason(kind: IssuanceKind, reason: string | null): string | null {
    const trimmed = reason?.trim() ?? '';
    if (trimmed.length > REASON_MAX) {
      throw new BadRequestError('reason_too_long', `Le motif ne doit pas dépasser ${REASON_MAX} caractères.`);
    }
    if ((kind === 'course_team' || kind === 'operator') && trimmed.length === 0) {
      throw new BadRequestError('reason_required', 'Indiquez le motif de cette délivrance : il est conservé.');
    }
    return trimmed.length > 0 ? trimmed : null;
  }

  async #loadFacts(learnerId: string, courseId: string): Promise<CertificateFacts> {
    const facts = await this.#facts.load(learnerId, courseId);
    if (!facts) {
      throw new ConflictError(
        'profile_missing',
        'Le profil de l’apprenant (nom, entreprise, OPCO) doit être complété avant la délivrance.',
        'no learner profile',
      );
    }
    return facts;
  }

  async #create(input: {
    facts: CertificateFacts;
    rule: IssuanceRule;
    kind: IssuanceKind;
    by: string | null;
    reason: string | null;
    previous: repo.CertificateRecord | null;
  }): Promise<IssuedCertificate> {
    const { db, config, provider } = this.deps;
    const issuedAt = new Date();
    const year = Number(parisDay(issuedAt).slice(0, 4));
    // The number is taken outside the insert's transaction: a failed issuance leaves a gap, never a
    // duplicate, and the PDF is rendered without holding a transaction open.
    const sequence = await repo.nextSequence(db, year);
    const number = formatCertificateNumber(year, sequence);
    const version = input.previous ? input.previous.version + 1 : 1;
    const data = buildCertificateData({
      facts: input.facts,
      rule: input.rule,
      provider: provider.data,
      number,
      version,
      supersedes: input.previous?.number ?? null,
      issuedAt,
      issuance: { kind: input.kind, reason: input.reason },
      publicUrl: config.publicUrl,
    });
    const canonical = canonicalJson(data);
    const dataSha256 = sha256Hex(canonical);
    const key = await currentSigningKey(db, config.appSecret);
    const signature = signText(key.privateKey, canonical);
    const pdf = await renderCertificatePdf(data, { signatureImage: provider.signatureImage, dataSha256 });
    const id = randomUUID();
    const row: repo.NewCertificate = {
      id,
      number,
      year,
      sequence,
      lineage_id: input.previous?.lineage_id ?? id,
      version,
      supersedes_id: input.previous?.id ?? null,
      learner_id: input.facts.learner.id,
      course_id: input.facts.course.id,
      fund_slug: input.facts.fund?.slug ?? null,
      data_canonical: canonical,
      data_sha256: dataSha256,
      signature,
      signing_kid: key.kid,
      pdf,
      pdf_sha256: sha256Hex(pdf),
      pdf_size: pdf.length,
      algorithm: data.timeAccounting.algorithm,
      issued_at: issuedAt,
      issuance_kind: input.kind,
      issued_by: input.by,
      issue_reason: input.reason,
    };
    await db.transaction().execute(async (trx) => {
      if (input.previous) {
        const superseded = await repo.markSuperseded(trx, input.previous.id, issuedAt);
        if (!superseded)
          throw new ConflictError('not_valid', 'Ce certificat vient d’être modifié : rechargez la page.');
      }
      await repo.insertCertificate(trx, row);
      if (input.previous) await repo.linkSuccessor(trx, input.previous.id, id);
    });
    certificatesIssued.inc({ kind: input.kind });
    return { number, version, state: 'valid', created: true };
  }

  // -------------------------------------------------------------------------------------------------
  // Reading

  async #record(numberInput: string): Promise<repo.CertificateRecord> {
    const parsed = parseCertificateNumber(numberInput);
    if (!parsed.ok) {
      throw new NotFoundError(
        parsed.reason === 'check' ? 'number_mistyped' : 'number_malformed',
        parsed.reason === 'check'
          ? 'Ce numéro de certificat contient une erreur de saisie : vérifiez-le.'
          : 'Ce numéro de certificat n’a pas le bon format (exemple : EMG-2026-000123-K).',
      );
    }
    const record = await repo.findByNumber(this.deps.db, parsed.number);
    if (!record) throw new NotFoundError('certificate_not_found', 'Aucun certificat ne porte ce numéro.');
    return record;
  }

  /** The record without the PDF bytes (callers check who may see it). */
  async find(number: string): Promise<repo.CertificateRecord> {
    return this.#record(number);
  }

  data(record: repo.CertificateRecord): CertificateData {
    return JSON.parse(record.data_canonical) as CertificateData;
  }

  async pdf(record: repo.CertificateRecord): Promise<{ bytes: Buffer; fileName: string }> {
    const bytes = await repo.findPdf(this.deps.db, record.number);
    if (!bytes) throw new NotFoundError('certificate_not_found');
    return { bytes, fileName: certificateFileName(this.data(record)) };
  }

  async listForLearner(learnerId: string, courseId: string): Promise<repo.CertificateRecord[]> {
    return repo.listForLearner(this.deps.db, learnerId, courseId);
  }

  async listForCourse(courseId: string): Promise<repo.CertificateRecord[]> {
    return repo.listForCourse(this.deps.db, courseId);
  }

  /** Whether the learner came to this course through the LMS (the course team acts only on those). */
  async learnerLaunchedIn(learnerId: string, courseId: string): Promise<boolean> {
    return repo.learnerLaunchedIn(this.deps.db, learnerId, courseId);
  }

  /** What the course team's page shows besides the certificates: the title, the learners, the funds. */
  async courseOverview(courseId: string) {
    const [title, learners, funds] = await Promise.all([
      repo.courseTitle(this.deps.db, courseId),
      repo.courseLearners(this.deps.db, courseId),
      repo.fundsInCourse(this.deps.db, courseId),
    ]);
    return { courseTitle: title ?? 'cours', learners, funds };
  }

  // -------------------------------------------------------------------------------------------------
  // Verification (public)

  async verify(numberInput: string): Promise<VerificationResult> {
    const record = await this.#record(numberInput);
    const data = this.data(record);
    const jwk = await publicKeyFor(this.deps.db, record.signing_kid);
    const pdf = await repo.findPdf(this.deps.db, record.number);
    const integrity = {
      signature: jwk !== null && verifyText(jwk, record.data_canonical, record.signature),
      dataHash: sha256Hex(record.data_canonical) === record.data_sha256,
      pdfHash: pdf !== null && sha256Hex(pdf) === record.pdf_sha256,
    };
    if (!integrity.signature || !integrity.dataHash || !integrity.pdfHash) {
      this.deps.log.error({ number: record.number, integrity }, 'stored certificate fails its integrity checks');
    }
    const supersededBy = await repo.findNumberById(this.deps.db, record.superseded_by_id);
    const hidden = (await this.#personalDataHidden?.(record.learner_id)) ?? false;
    return {
      summary: publicSummary(data, {
        personalDataHidden: hidden,
        state: record.state,
        supersededBy,
        revokedAt: record.revoked_at,
        pdfSha256: record.pdf_sha256,
        dataSha256: record.data_sha256,
        signature: record.signature,
        kid: record.signing_kid,
      }),
      integrity,
    };
  }

  /** Is this file the PDF we issued under this number? Compares SHA-256 with the stored one. */
  async verifyPdf(numberInput: string, bytes: Buffer) {
    const record = await this.#record(numberInput);
    const computed = sha256Hex(bytes);
    return {
      number: record.number,
      genuine: computed === record.pdf_sha256,
      state: record.state,
      expectedSha256: record.pdf_sha256,
      computedSha256: computed,
    };
  }

  /**
   * Is this signature ours over this certificate data? Checked against every published key, so a
   * certificate signed before a key rotation still verifies.
   */
  async verifySignature(dataText: string, signature: string) {
    let number: string | null = null;
    try {
      const parsed = JSON.parse(dataText) as { number?: unknown };
      if (typeof parsed.number === 'string') number = parsed.number;
    } catch {
      return { valid: false, number: null, state: null, kid: null };
    }
    for (const key of await publishedKeys(this.deps.db)) {
      if (verifyText(key, dataText, signature)) {
        const record = number ? await repo.findByNumber(this.deps.db, number) : undefined;
        return { valid: true, number, state: record?.state ?? null, kid: key.kid };
      }
    }
    return { valid: false, number, state: null, kid: null };
  }

  async publishedKeys() {
    return publishedKeys(this.deps.db);
  }

  // -------------------------------------------------------------------------------------------------
  // Bulk download

  /** A streamed ZIP of certificates with its index (archive.ts). */
  async archive(
    filter: repo.ArchiveFilter,
    options: { pageSize?: number; highWaterBytes?: number; onPage?: (rows: number) => void } = {},
  ): Promise<Archiver> {
    return certificateZip(this.deps, filter, options);
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === '23505' || /duplicate key|unique constraint/i.test(String((error as Error)?.message));
}

export type { CertificateRecord } from './repository.js';
