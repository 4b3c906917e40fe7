/**
 * Pure rules of the certificates capability: numbering, canonical JSON, identifier checks, duration and
 * date wording, eligibility, verification summary. No I/O here: everything is unit-tested without a DB.
 * What a certificate shows and how it is verified: docs/certificates-and-exports.md.
 */

import { formatDuration, parisDay } from '../common/paris-time.js';
import { largestRemainder } from '../common/rounding.js';
import { LA_POSTE_SIREN, laPosteSiretValid, luhnValid } from '../common/siret.js';
import { stripSpoofingCharacters, stripSpoofingOptional } from '../common/text.js';

// ---------------------------------------------------------------------------------------------------
// Numbering: EMG-<year>-<sequence, 6+ digits>-<check letter>
// ---------------------------------------------------------------------------------------------------

export const NUMBER_PREFIX = 'EMG';

/**
 * Damm's quasigroup: its check digit catches every single-digit error and every adjacent transposition
 * (which ISO 7064 MOD 37,36 does not), the two mistakes people make when typing a number from paper.
 */
const DAMM: readonly (readonly number[])[] = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/**
 * The check digit is written as a letter so that it cannot be mistaken for part of the sequence;
 * letters that look like digits (B, G, I, O, S, Z) are left out.
 */
const CHECK_LETTERS = 'ACDEFHJKLN';

export function dammDigit(digits: string): number {
  let interim = 0;
  for (const ch of digits) {
    const d = ch.charCodeAt(0) - 48;
    if (d < 0 || d > 9) throw new Error(`not a digit: ${ch}`);
    interim = DAMM[interim]![d]!;
  }
  return interim;
}

export function checkLetter(year: number, sequence: number): string {
  return CHECK_LETTERS[dammDigit(`${year}${padSequence(sequence)}`)]!;
}

function padSequence(sequence: number): string {
  return String(sequence).padStart(6, '0');
}

export function formatCertificateNumber(year: number, sequence: number): string {
  if (!Number.isInteger(year) || year < 2000 || year > 9999) throw new Error(`bad year ${year}`);
  if (!Number.isInteger(sequence) || sequence < 1 || sequence > 999_999_999)
    throw new Error(`bad sequence ${sequence}`);
  return `${NUMBER_PREFIX}-${year}-${padSequence(sequence)}-${checkLetter(year, sequence)}`;
}

export type ParsedNumber =
  | { ok: true; number: string; year: number; sequence: number }
  | { ok: false; reason: 'format' | 'check' };

/**
 * Reads a number typed by a person: case, spaces and dash variants are forgiven; a wrong check letter
 * is reported as such, so a typo is told apart from a certificate that does not exist.
 */
export function parseCertificateNumber(input: string): ParsedNumber {
  const cleaned = input
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[\s\u2010-\u2015]+/g, (m) => (/\s/.test(m) ? '' : '-'));
  const match = /^EMG-?(\d{4})-?(\d{6,9})-?([A-Z])$/.exec(cleaned);
  if (!match) return { ok: false, reason: 'format' };
  const year = Number(match[1]);
  const sequence = Number(match[2]);
  if (year < 2000 || sequence < 1) return { ok: false, reason: 'format' };
  // A sequence under a million is always written on 6 digits: "0001234" is not the same text.
  if (match[2]!.length > 6 && match[2]!.startsWith('0')) return { ok: false, reason: 'format' };
  if (checkLetter(year, sequence) !== match[3]) return { ok: false, reason: 'check' };
  return { ok: true, number: formatCertificateNumber(year, sequence), year, sequence };
}

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
// Issuance rule
// ---------------------------------------------------------------------------------------------------

export type ModulesRequirement = 'none' | 'sector' | 'all';

export interface IssuanceRule {
  /** Which modules must be completed: none, every sector-trunk module, or every module. */
  modulesRequired: ModulesRequirement;
  /** Least credited time (modules + estimated common trunk), in minutes; null = no time condition. */
  minCreditedMinutes: number | null;
  /** Issue as soon as the rule is met, without waiting for the learner's request. */
  autoIssue: boolean;
  /**
   * The planned duration printed when the learner's programme does not give one; certificates print the
   * sum of the nominal durations of the learner's modules (docs/programme.md).
   */
  plannedMinutes: number;
  /** The session's dates, when the course has fixed ones; otherwise first and last activity. */
  sessionStart: string | null;
  sessionEnd: string | null;
}

export const DEFAULT_RULE: IssuanceRule = Object.freeze({
  modulesRequired: 'sector',
  minCreditedMinutes: null,
  autoIssue: true,
  plannedMinutes: 240,
  sessionStart: null,
  sessionEnd: null,
});

/** A rule without any condition would certify a learner who never came: refuse it. */
export function ruleProblems(rule: IssuanceRule): string[] {
  const problems: string[] = [];
  if (rule.modulesRequired === 'none' && (rule.minCreditedMinutes === null || rule.minCreditedMinutes <= 0)) {
    problems.push('La règle doit exiger des modules terminés, un temps minimum, ou les deux.');
  }
  if (rule.minCreditedMinutes !== null && (!Number.isInteger(rule.minCreditedMinutes) || rule.minCreditedMinutes < 0)) {
    problems.push('Le temps minimum doit être un nombre entier de minutes.');
  }
  if (!Number.isInteger(rule.plannedMinutes) || rule.plannedMinutes <= 0) {
    problems.push('La durée prévue doit être un nombre entier de minutes, plus grand que zéro.');
  }
  if ((rule.sessionStart === null) !== (rule.sessionEnd === null)) {
    problems.push('Indiquez les deux dates de la session, ou aucune.');
  } else if (rule.sessionStart !== null && rule.sessionEnd !== null && rule.sessionStart > rule.sessionEnd) {
    problems.push('La date de fin de session est avant la date de début.');
  }
  return problems;
}

/**
 * The rule in plain French, for the course-team page and "Mon parcours": what completion it requires,
 * the least time, and whether the certificate comes by itself.
 */
export function describeIssuanceRule(rule: IssuanceRule, programme?: { common: number; sector: number }): string {
  const parts: string[] = [];
  if (rule.modulesRequired === 'all') {
    parts.push(
      programme
        ? `les ${programme.common + programme.sector} modules du parcours de l’apprenant terminés (tronc commun et modules de son secteur)`
        : 'tous les modules du parcours de l’apprenant terminés (tronc commun et modules de son secteur)',
    );
  } else if (rule.modulesRequired === 'sector') {
    parts.push(
      programme
        ? `les ${programme.sector} modules de son secteur terminés (semaines du tronc sectoriel)`
        : 'tous les modules de son secteur terminés',
    );
  }
  if (rule.minCreditedMinutes !== null && rule.minCreditedMinutes > 0) {
    parts.push(`au moins ${formatDuration(rule.minCreditedMinutes * 60)} de temps de formation enregistré`);
  }
  const condition = parts.length > 0 ? parts.join(', et ') : 'aucune condition (règle incomplète)';
  const how = rule.autoIssue
    ? 'Le certificat est délivré automatiquement dès que la règle est remplie.'
    : 'L’apprenant demande son certificat une fois la règle remplie.';
  return `il faut ${condition}. ${how} « Modules terminés » et la durée prévue portent sur le parcours de l’apprenant (somme des durées des modules).`;
}

export interface EligibilityFacts {
  modules: ReadonlyArray<{ trunk: 'common' | 'sector'; completed: boolean }>;
  totalCreditedSeconds: number;
}

export interface Eligibility {
  eligible: boolean;
  /** What is still missing, in plain French, for the learner's page. */
  missing: string[];
  sectorCompleted: number;
  sectorTotal: number;
  allCompleted: number;
  allTotal: number;
}

export function evaluateEligibility(rule: IssuanceRule, facts: EligibilityFacts): Eligibility {
  const sector = facts.modules.filter((m) => m.trunk === 'sector');
  const sectorCompleted = sector.filter((m) => m.completed).length;
  const allCompleted = facts.modules.filter((m) => m.completed).length;
  const missing: string[] = [];
  if (ruleProblems(rule).length > 0) missing.push('La règle de délivrance de ce cours est incomplète.');
  if (rule.modulesRequired === 'sector') {
    if (sector.length === 0) missing.push('Aucun module de votre secteur n’est encore disponible.');
    else if (sectorCompleted < sector.length)
      missing.push(
        plural(
          sector.length - sectorCompleted,
          'module de votre secteur à terminer',
          'modules de votre secteur à terminer',
        ),
      );
  }
  if (rule.modulesRequired === 'all') {
    if (facts.modules.length === 0) missing.push('Aucun module n’est encore disponible.');
    else if (allCompleted < facts.modules.length)
      missing.push(plural(facts.modules.length - allCompleted, 'module à terminer', 'modules à terminer'));
  }
  if (rule.minCreditedMinutes !== null && rule.minCreditedMinutes > 0) {
    const needed = rule.minCreditedMinutes * 60 - facts.totalCreditedSeconds;
    if (needed > 0) missing.push(`encore ${formatDuration(Math.ceil(needed / 60) * 60)} de formation`);
  }
  return {
    eligible: missing.length === 0,
    missing,
    sectorCompleted,
    sectorTotal: sector.length,
    allCompleted,
    allTotal: facts.modules.length,
  };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n > 1 ? many : one}`;
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
