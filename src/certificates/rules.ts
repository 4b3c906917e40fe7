/**
 * Pure rules of the certificates capability: numbering, canonical JSON, identifier checks, duration and
 * date wording, eligibility, verification summary. No I/O here: everything is unit-tested without a DB.
 * What a certificate shows and how it is verified: docs/certificates-and-exports.md.
 */

import { formatDuration, parisDay } from '../common/paris-time.js';
import { largestRemainder } from '../common/rounding.js';
import { LA_POSTE_SIREN, laPosteSiretValid, luhnValid } from '../common/siret.js';
import { stripSpoofingCharacters, stripSpoofingOptional } from '../common/text.js';
import type { EligibilityFacts, IssuanceRule } from './issuance-rule.js';

// Numbering (numbers.ts) and the issuance rule (issuance-rule.ts), re-exported: rules.ts stays the one
// entry point of the pure rules.
export {
  DEFAULT_RULE,
  describeIssuanceRule,
  type Eligibility,
  type EligibilityFacts,
  evaluateEligibility,
  type IssuanceRule,
  type ModulesRequirement,
  ruleProblems,
} from './issuance-rule.js';
export {
  checkLetter,
  dammDigit,
  formatCertificateNumber,
  NUMBER_PREFIX,
  type ParsedNumber,
  parseCertificateNumber,
} from './numbers.js';

// ---------------------------------------------------------------------------------------------------
// Canonical JSON: what is signed
// ---------------------------------------------------------------------------------------------------

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Deterministic JSON (the subset of RFC 8785 we need): object keys sorted by UTF-16 code units, no
 * whitespace, integers only (floats would make the text depend on the formatter), `undefined` refused.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new Error(`canonical JSON accepts safe integers only (got ${value})`);
      return String(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>);
      for (const [k, v] of entries) if (v === undefined) throw new Error(`canonical JSON: "${k}" is undefined`);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new Error(`canonical JSON cannot encode ${typeof value}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// French identifiers
// ---------------------------------------------------------------------------------------------------

export { luhnValid } from '../common/siret.js';

export function normaliseSiret(input: string): string {
  return input.replace(/[\s.\u00a0\u202f]/g, '');
}

/** A SIRET is 14 digits: a Luhn-valid SIREN (9) and an establishment number (5), Luhn-valid as a whole. */
export function siretValid(input: string): boolean {
  const siret = normaliseSiret(input);
  if (!/^\d{14}$/.test(siret)) return false;
  if (siret.startsWith(LA_POSTE_SIREN)) return laPosteSiretValid(siret);
  return luhnValid(siret.slice(0, 9)) && luhnValid(siret);
}

/** "123 456 789 00012", as printed on French documents. */
export function formatSiret(input: string): string {
  const s = normaliseSiret(input);
  return `${s.slice(0, 3)} ${s.slice(3, 6)} ${s.slice(6, 9)} ${s.slice(9)}`;
}

/** Numéro de déclaration d'activité: 11 digits (region code, department, serial, control). */
export function activityDeclarationValid(input: string): boolean {
  return /^\d{11}$/.test(input.replace(/\s/g, ''));
}

/** "11 75 12345 75", the way the prefecture writes it. */
export function formatActivityDeclaration(input: string): string {
  const s = input.replace(/\s/g, '');
  return `${s.slice(0, 2)} ${s.slice(2, 4)} ${s.slice(4, 9)} ${s.slice(9)}`;
}

// ---------------------------------------------------------------------------------------------------
// Durations and dates, in French
// ---------------------------------------------------------------------------------------------------

// One implementation for the whole service (src/common/paris-time.ts); the certificate's names for it.
export {
  formatDayLong as formatLongDay,
  formatDayNumeric as formatDay,
  formatDayRange,
  formatDuration,
  parisDay,
} from '../common/paris-time.js';

/** "Jean-Pierre" "de La Fontaine" → "J.-P. D." — the least that still lets a holder recognise theirs. */
export function initials(givenName: string | null, familyName: string | null): string {
  const part = (name: string | null): string => {
    if (!name) return '';
    return name
      .trim()
      .split(/\s+/)
      .filter((word) => !/^(de|du|des|la|le|d’|d')$/.test(word))
      .slice(0, 1)
      .map((word) =>
        word
          .split('-')
          .filter(Boolean)
          .map((p) => `${p.normalize('NFC').charAt(0).toLocaleUpperCase('fr-FR')}.`)
          .join('-'),
      )
      .join('');
  };
  return [part(givenName), part(familyName)].filter(Boolean).join(' ') || '—';
}

// ---------------------------------------------------------------------------------------------------
// Certificate data (the canonical document that is signed) and how it is built from facts
// ---------------------------------------------------------------------------------------------------

export const CERTIFICATE_SCHEMA = 'emargement.certificate/1';

export type IssuanceKind = 'automatic' | 'learner_request' | 'course_team' | 'operator';

export interface ProviderData {
  name: string;
  siret: string;
  activityDeclarationNumber: string;
  address: { lines: string[]; postalCode: string; city: string };
  signatory: { name: string; role: string };
  place: string;
  /** SHA-256 of the signature image printed on the PDF, so the signed data pins it too. */
  signatureImageSha256: string;
}

export interface ModuleLine {
  id: string;
  title: string;
  trunk: 'common' | 'sector';
  firstDay: string | null;
  lastDay: string | null;
  creditedSeconds: number;
  completed: boolean;
}

export interface CertificateData {
  schema: typeof CERTIFICATE_SCHEMA;
  number: string;
  version: number;
  supersedes: string | null;
  issuedAt: string;
  issuedDay: string;
  issuance: { kind: IssuanceKind; reason: string | null };
  provider: ProviderData;
  learner: { id: string; civility: string | null; familyName: string; givenName: string };
  company: { name: string | null; siret: string | null };
  action: {
    title: string;
    courseId: string;
    nature: 'action de formation';
    modality: 'à distance (SPOC)';
    startDay: string | null;
    endDay: string | null;
    datesFrom: 'session' | 'activity';
  };
  durations: {
    modulesSeconds: number;
    commonTrunkEstimatedSeconds: number | null;
    totalSeconds: number;
    plannedMinutes: number;
    modulesCompleted: number;
    modulesPlanned: number;
  };
  modules: ModuleLine[];
  /** fileNumberToConfirm: the company has a number, but the fund has not confirmed this learner's company. */
  fund: {
    slug: string;
    name: string;
    historicalName: string | null;
    fileNumber: string | null;
    fileNumberToConfirm?: boolean;
  } | null;
  timeAccounting: { algorithm: string; params: Json };
  verificationUrl: string;
  /**
   * Closing group sessions attended (« regroupement »), each printed as its own line. Absent when none, so
   * that certificates issued before it existed keep their data.
   */
  groupSessions?: GroupSessionLine[];
}

export interface GroupSessionLine {
  /** « Regroupement : classe virtuelle du 12 mars 2027, 1 h 30 » */
  line: string;
  day: string;
  mode: 'online' | 'onsite';
  minutes: number;
}

/** What the catalog and the time tracking tell about one learner in one course. */
export interface CertificateFacts {
  learner: { id: string; civility: string | null; familyName: string; givenName: string };
  company: { name: string | null; siret: string | null };
  course: { id: string; title: string };
  /** fileNumberToConfirm: the company has a number, but the fund has not confirmed this learner's company. */
  fund: {
    slug: string;
    name: string;
    historicalName: string | null;
    fileNumber: string | null;
    fileNumberToConfirm?: boolean;
  } | null;
  modules: Array<{
    id: string;
    title: string;
    trunk: 'common' | 'sector';
    order: number;
    creditedSeconds: number;
    firstActivityAt: Date | null;
    lastActivityAt: Date | null;
    completedAt: Date | null;
    /** false for a module worked on outside the learner's programme (e.g. before a change of fund). */
    planned?: boolean;
    nominalMinutes?: number;
  }>;
  /**
   * The planned duration: the sum of the nominal durations of the learner's programme modules. Absent:
   * the course rule's figure is printed.
   */
  plannedMinutes?: number;
  /** Time on the LMS's own pages, estimated from its logs (null: not available). */
  commonTrunkEstimatedSeconds: number | null;
  /** First and last LMS event behind that estimate: the action's dates include those days. */
  commonTrunkActivity?: { firstAt: Date; lastAt: Date } | null;
  /** The union total when the tracking computed one (LMS and in-tool intervals merged). */
  totalCreditedSeconds: number | null;
  timeAccounting: { algorithm: string; params: Json };
  /** Closing group sessions attended, already worded (src/regroupement). */
  groupSessions?: GroupSessionLine[];
}

export function eligibilityFacts(facts: CertificateFacts): EligibilityFacts {
  return {
    // The learner's programme: a module opened outside it (before a change of fund) is not required.
    modules: facts.modules
      .filter((m) => m.planned !== false)
      .map((m) => ({ trunk: m.trunk, completed: m.completedAt !== null })),
    totalCreditedSeconds: totalSeconds(facts),
  };
}

function totalSeconds(facts: CertificateFacts): number {
  if (facts.totalCreditedSeconds !== null) return facts.totalCreditedSeconds;
  return facts.modules.reduce((s, m) => s + m.creditedSeconds, 0) + (facts.commonTrunkEstimatedSeconds ?? 0);
}

export interface BuildInput {
  facts: CertificateFacts;
  rule: IssuanceRule;
  provider: ProviderData;
  number: string;
  version: number;
  supersedes: string | null;
  issuedAt: Date;
  issuance: { kind: IssuanceKind; reason: string | null };
  publicUrl: string;
}

export function verificationUrl(publicUrl: string, number: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/verify/${number}`;
}

export function buildCertificateData(input: BuildInput): CertificateData {
  const { facts, rule } = input;
  const modules: ModuleLine[] = [...facts.modules]
    .sort((a, b) => (a.trunk === b.trunk ? a.order - b.order : a.trunk === 'common' ? -1 : 1))
    .map((m) => ({
      id: m.id,
      title: m.title,
      trunk: m.trunk,
      firstDay: m.firstActivityAt ? parisDay(m.firstActivityAt) : null,
      lastDay: m.lastActivityAt ? parisDay(m.lastActivityAt) : m.completedAt ? parisDay(m.completedAt) : null,
      creditedSeconds: Math.max(0, Math.floor(m.creditedSeconds)),
      completed: m.completedAt !== null,
    }));
  const activityDays = modules.flatMap((m) => [m.firstDay, m.lastDay]).filter((d): d is string => d !== null);
  // Days of LMS-estimated time count too, as in the summary export's first and last activity.
  if (facts.commonTrunkActivity && facts.commonTrunkEstimatedSeconds !== null) {
    activityDays.push(parisDay(facts.commonTrunkActivity.firstAt), parisDay(facts.commonTrunkActivity.lastAt));
  }
  activityDays.sort();
  const useSession = rule.sessionStart !== null && rule.sessionEnd !== null;
  const modulesSeconds = modules.reduce((s, m) => s + m.creditedSeconds, 0);
  // "Modules terminés n / N" counts the learner's programme: N is its size, whatever else they opened.
  const plannedIds = new Set(facts.modules.filter((m) => m.planned !== false).map((m) => m.id));
  return {
    schema: CERTIFICATE_SCHEMA,
    number: input.number,
    version: input.version,
    supersedes: input.supersedes,
    issuedAt: input.issuedAt.toISOString(),
    issuedDay: parisDay(input.issuedAt),
    issuance: { kind: input.issuance.kind, reason: input.issuance.reason },
    provider: input.provider,
    // Person and company fields never carry bidi overrides or zero-width characters (src/common/text.ts).
    learner: {
      ...facts.learner,
      familyName: stripSpoofingCharacters(facts.learner.familyName),
      givenName: stripSpoofingCharacters(facts.learner.givenName),
    },
    company: { ...facts.company, name: stripSpoofingOptional(facts.company.name) },
    action: {
      title: facts.course.title,
      courseId: facts.course.id,
      nature: 'action de formation',
      modality: 'à distance (SPOC)',
      startDay: useSession ? rule.sessionStart : (activityDays[0] ?? null),
      endDay: useSession ? rule.sessionEnd : (activityDays.at(-1) ?? null),
      datesFrom: useSession ? 'session' : 'activity',
    },
    durations: {
      modulesSeconds,
      commonTrunkEstimatedSeconds:
        facts.commonTrunkEstimatedSeconds === null ? null : Math.max(0, Math.floor(facts.commonTrunkEstimatedSeconds)),
      totalSeconds: Math.max(0, Math.floor(totalSeconds(facts))),
      plannedMinutes: facts.plannedMinutes && facts.plannedMinutes > 0 ? facts.plannedMinutes : rule.plannedMinutes,
      modulesCompleted: modules.filter((m) => m.completed && plannedIds.has(m.id)).length,
      modulesPlanned: plannedIds.size,
    },
    modules,
    fund: facts.fund ? { ...facts.fund } : null,
    timeAccounting: facts.timeAccounting,
    verificationUrl: verificationUrl(input.publicUrl, input.number),
    ...(facts.groupSessions && facts.groupSessions.length > 0
      ? { groupSessions: facts.groupSessions.map((g) => ({ ...g })) }
      : {}),
  };
}

/**
 * The minutes printed per row (each module, then the LMS-estimated common trunk when known), rounded by
 * largest remainder so that they add up to the printed total: floor(total seconds / 60). Seconds are what
 * is signed; this is only how they are shown (docs/time-accounting.md, "Every figure adds up").
 */
export function printedMinutes(data: Pick<CertificateData, 'modules' | 'durations'>): {
  modules: number[];
  modulesTotal: number;
  commonTrunk: number | null;
  total: number;
} {
  const estimate = data.durations.commonTrunkEstimatedSeconds;
  const parts = largestRemainder([...data.modules.map((m) => m.creditedSeconds), estimate ?? 0], 60);
  const modules = parts.slice(0, data.modules.length);
  const modulesTotal = modules.reduce((s, m) => s + m, 0);
  const commonTrunk = estimate === null ? null : (parts[data.modules.length] as number);
  return { modules, modulesTotal, commonTrunk, total: modulesTotal + (commonTrunk ?? 0) };
}

/** The algorithms behind the printed times: in-tool, and the LMS estimate's when one is printed. */
export function timeAlgorithms(data: Pick<CertificateData, 'timeAccounting' | 'durations'>): string[] {
  const lms = (data.timeAccounting.params as { lms?: { algorithm?: unknown } } | null)?.lms?.algorithm;
  return data.durations.commonTrunkEstimatedSeconds !== null && typeof lms === 'string'
    ? [data.timeAccounting.algorithm, lms]
    : [data.timeAccounting.algorithm];
}

// ---------------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------------

export type CertificateState = 'valid' | 'superseded' | 'revoked';

export const STATE_LABELS: Record<CertificateState, string> = {
  valid: 'Certificat valide',
  superseded: 'Certificat remplacé par une version plus récente',
  revoked: 'Certificat révoqué',
};

/** The public summary: no more personal data than a holder needs to recognise the certificate. */
export interface PublicSummary {
  number: string;
  state: CertificateState;
  stateLabel: string;
  version: number;
  supersedes: string | null;
  supersededBy: string | null;
  revokedAt: string | null;
  /** null once the learner's personal data was erased (docs/privacy.md). */
  learnerInitials: string | null;
  course: string;
  provider: string;
  startDay: string | null;
  endDay: string | null;
  issuedDay: string;
  totalSeconds: number;
  totalTime: string;
  modulesCompleted: number;
  modulesPlanned: number;
  algorithm: string;
  pdfSha256: string;
  dataSha256: string;
  signature: { alg: 'Ed25519'; kid: string; value: string };
}

export function publicSummary(
  data: CertificateData,
  record: {
    personalDataHidden?: boolean;
    state: CertificateState;
    supersededBy: string | null;
    revokedAt: Date | null;
    pdfSha256: string;
    dataSha256: string;
    signature: string;
    kid: string;
  },
): PublicSummary {
  return {
    number: data.number,
    state: record.state,
    stateLabel: STATE_LABELS[record.state],
    version: data.version,
    supersedes: data.supersedes,
    supersededBy: record.supersededBy,
    revokedAt: record.revokedAt ? record.revokedAt.toISOString() : null,
    learnerInitials: record.personalDataHidden ? null : initials(data.learner.givenName, data.learner.familyName),
    course: data.action.title,
    provider: data.provider.name,
    startDay: data.action.startDay,
    endDay: data.action.endDay,
    issuedDay: data.issuedDay,
    totalSeconds: data.durations.totalSeconds,
    totalTime: formatDuration(data.durations.totalSeconds),
    modulesCompleted: data.durations.modulesCompleted,
    modulesPlanned: data.durations.modulesPlanned,
    algorithm: data.timeAccounting.algorithm,
    pdfSha256: record.pdfSha256,
    dataSha256: record.dataSha256,
    signature: { alg: 'Ed25519', kid: record.kid, value: record.signature },
  };
}

/** A file name that any OS and ZIP tool accepts: ASCII, no separators. */
export function certificateFileName(data: Pick<CertificateData, 'number' | 'learner'>): string {
  const ascii = (s: string) =>
    s
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40);
  const who = [ascii(data.learner.familyName), ascii(data.learner.givenName)].filter(Boolean).join('_');
  return `${data.number}${who ? `_${who}` : ''}.pdf`;
}

/** `;`-separated, CRLF, quoted when needed; cells a spreadsheet would run as a formula are neutralised. */
export function csvRow(cells: string[]): string {
  return `${cells
    .map((cell) => {
      const safe = /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
      return /[";\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
    })
    .join(';')}\r\n`;
}
