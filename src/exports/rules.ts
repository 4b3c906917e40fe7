/**
 * Pure rules of the exports: cell encoding (CSV for French Excel, formula neutralisation), Europe/Paris
 * time without a per-cell Intl call, durations, learner status and the funnel arithmetic.
 */

import { parisWallClock } from '../common/paris-time.js';

// ---------------------------------------------------------------------------------------------
// Formula (CSV) injection — OWASP "CSV Injection": a cell starting with one of these characters is
// read as a formula by Excel, LibreOffice or Google Sheets. A leading apostrophe makes it text. The
// full-width forms are included because some locales of Excel accept them as formula signs.

const FORMULA_START = /^[=+\-@\t\r\n\uFF1D\uFF0B\uFF0D\uFF20]/;

export function neutraliseFormula(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

export function isNeutralised(value: string): boolean {
  return !FORMULA_START.test(value);
}

/** One CSV field (RFC 4180 quoting; `;` separator as French Excel expects). */
export function csvField(value: string): string {
  return /[";\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

// ---------------------------------------------------------------------------------------------
// Europe/Paris time: one implementation for the whole service (src/common/paris-time.ts).

export {
  formatDayNumeric as formatDayFr,
  isValidDay,
  nextDay,
  parisDay,
  parisDayStart,
  parisOffsetMinutes,
  parisWallClock,
} from '../common/paris-time.js';

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** `dd/mm/yyyy hh:mm:ss` from a Date's UTC fields. */
export function formatUtcFieldsDateTime(d: Date): string {
  return `${pad2(d.getUTCDate())}/${pad2(d.getUTCMonth() + 1)}/${d.getUTCFullYear()} ${pad2(d.getUTCHours())}:${pad2(
    d.getUTCMinutes(),
  )}:${pad2(d.getUTCSeconds())}`;
}

export function formatUtcFieldsDate(d: Date): string {
  return `${pad2(d.getUTCDate())}/${pad2(d.getUTCMonth() + 1)}/${d.getUTCFullYear()}`;
}

export function formatParisDateTime(instant: Date): string {
  return formatUtcFieldsDateTime(parisWallClock(instant));
}

export function formatParisDate(instant: Date): string {
  return formatUtcFieldsDate(parisWallClock(instant));
}

/** ISO 8601 in UTC to the second: `2026-11-29T09:30:00Z`. */
export function isoUtc(instant: Date): string {
  return `${instant.toISOString().slice(0, 19)}Z`;
}

/** ISO 8601 week of a Paris calendar day: `{ key: '2026-W48', monday: '2026-11-23' }`. */
export function isoWeek(day: string): { key: string; monday: string } {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const date = new Date(Date.UTC(y, m - 1, d));
  const weekday = (date.getUTCDay() + 6) % 7; // Monday = 0
  const monday = new Date(date.getTime() - weekday * 86_400_000);
  const thursday = new Date(monday.getTime() + 3 * 86_400_000);
  const weekYear = thursday.getUTCFullYear();
  const jan1 = Date.UTC(weekYear, 0, 1);
  const week = Math.floor((thursday.getTime() - jan1) / (7 * 86_400_000)) + 1;
  return { key: `${weekYear}-W${pad2(week)}`, monday: monday.toISOString().slice(0, 10) };
}

// ---------------------------------------------------------------------------------------------
// Durations: stored in seconds; displayed floored to the minute (docs/time-accounting.md).

export function hoursMinutes(seconds: number): string {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  return `${Math.floor(minutes / 60)}:${pad2(minutes % 60)}`;
}

export function hoursMinutesSeconds(seconds: number): string {
  const s = Math.floor(Math.max(0, seconds));
  return `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
}

/** Decimal hours of the floored minutes, rounded to the hundredth: the same time as the h:mm column. */
export function decimalHours(seconds: number): number {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  return Math.round((minutes / 60) * 100) / 100;
}

/** French decimal comma, two decimals. */
export function frenchDecimal(value: number): string {
  return value.toFixed(2).replace('.', ',');
}

// ---------------------------------------------------------------------------------------------
// Learner status

export type LearnerStatus = 'not_started' | 'in_progress' | 'completed' | 'certificate_issued';

export const STATUS_LABELS: Record<LearnerStatus, string> = {
  not_started: 'non commencé',
  in_progress: 'en cours',
  completed: 'terminé',
  certificate_issued: 'attestation délivrée',
};

export const STATUSES = Object.keys(STATUS_LABELS) as LearnerStatus[];

/**
 * A certificate outranks everything; "completed" means every module of the learner's path done
 * (common trunk, when the tool serves it, and sector trunk); any activity means "in progress".
 */
export function learnerStatus(facts: {
  certificateIssued: boolean;
  modulesCompleted: number;
  modulesPlanned: number;
  started: boolean;
}): LearnerStatus {
  if (facts.certificateIssued) return 'certificate_issued';
  if (facts.modulesPlanned > 0 && facts.modulesCompleted >= facts.modulesPlanned) return 'completed';
  if (facts.started || facts.modulesCompleted > 0) return 'in_progress';
  return 'not_started';
}

/** Quiz results over the modules answered: `12/15 (80 %)`; empty when none. */
export function evaluationSummary(correct: number, total: number): string {
  if (total <= 0) return '';
  return `${correct}/${total} (${Math.round((correct / total) * 100)} %)`;
}

// ---------------------------------------------------------------------------------------------
// Funnel: registered → started → common trunk done → sector trunk done → certificate issued.
// The stages nest: a learner counts at a stage only when they passed it and every stage before it.

export const FUNNEL_STAGES = ['registered', 'started', 'commonDone', 'sectorDone', 'certified'] as const;
export type FunnelStage = (typeof FUNNEL_STAGES)[number];
export type FunnelCounts = Record<FunnelStage, number>;

export const FUNNEL_LABELS: Record<FunnelStage, string> = {
  registered: 'Inscrits',
  started: 'Ont ouvert un module',
  commonDone: 'Tronc commun terminé',
  sectorDone: 'Tronc sectoriel terminé',
  certified: 'Attestation délivrée',
};

/** What is known of one enrolment, before nesting. */
export interface StageFacts {
  /** Modules opened, and the connection time credited in them. */
  modulesOpened: number;
  creditedSeconds: number;
  commonDone: number;
  /** 0: the catalog offers no common-trunk module to this learner, so that stage is not measured. */
  commonPlanned: number;
  sectorDone: number;
  sectorPlanned: number;
  certified: boolean;
}

export interface NestedStages {
  stages: Record<FunnelStage, boolean>;
  /** A later stage was passed while an earlier one was not (e.g. the sector trunk before the common one). */
  outOfOrder: boolean;
}

/**
 * The nested stages of one enrolment (the funnel query applies the same rule in SQL): started means a
 * module opened with credited time; a stage is reached only when every stage before it is. A common
 * trunk with nothing planned is "not measured" and lets the learner through; a sector trunk with
 * nothing planned cannot be finished.
 */
export function nestStages(f: StageFacts): NestedStages {
  const started = f.modulesOpened > 0 && f.creditedSeconds > 0;
  const commonRaw = f.commonPlanned > 0 && f.commonDone >= f.commonPlanned;
  const commonPasses = f.commonPlanned === 0 || commonRaw;
  const sectorRaw = f.sectorPlanned > 0 && f.sectorDone >= f.sectorPlanned;
  const commonDone = started && commonRaw;
  const sectorDone = started && commonPasses && sectorRaw;
  const certified = sectorDone && f.certified;
  return {
    stages: { registered: true, started, commonDone, sectorDone, certified },
    outOfOrder: (commonRaw && !commonDone) || (sectorRaw && !sectorDone) || (f.certified && !certified),
  };
}

export interface FunnelCell extends FunnelCounts {
  fund: string;
  branch: string | null;
  /** ISO week of registration (Paris), e.g. 2026-W48. */
  week: string;
  weekStart: string;
  outOfOrder: number;
}

export interface FunnelTally {
  counts: FunnelCounts;
  outOfOrder: number;
}

export function emptyCounts(): FunnelCounts {
  return { registered: 0, started: 0, commonDone: 0, sectorDone: 0, certified: 0 };
}

export function addCounts(into: FunnelCounts, from: FunnelCounts): FunnelCounts {
  for (const s of FUNNEL_STAGES) into[s] += from[s];
  return into;
}

/** Sums the cells by a key (fund, branch, week…), sorted by key. */
export function groupFunnel<K extends string>(
  cells: readonly FunnelCell[],
  keyOf: (c: FunnelCell) => K,
): Array<{ key: K } & FunnelTally> {
  const map = new Map<K, FunnelTally>();
  for (const c of cells) {
    const k = keyOf(c);
    let tally = map.get(k);
    if (!tally) {
      tally = { counts: emptyCounts(), outOfOrder: 0 };
      map.set(k, tally);
    }
    addCounts(tally.counts, c);
    tally.outOfOrder += c.outOfOrder;
  }
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, tally]) => ({ key, ...tally }));
}

export function totalFunnel(cells: readonly FunnelCell[]): FunnelCounts {
  return cells.reduce((acc, c) => addCounts(acc, c), emptyCounts());
}

/** True when each stage is at most the one before (what nesting guarantees); an unmeasured common trunk is skipped. */
export function isNested(counts: FunnelCounts, commonKnown = true): boolean {
  const stages = FUNNEL_STAGES.filter((s) => commonKnown || s !== 'commonDone');
  return stages.every((s, i) => i === 0 || counts[s] <= counts[stages[i - 1] as FunnelStage]);
}

/** Share of the registered, as a whole percentage (0 when nobody registered). */
export function shareOf(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 100) : 0;
}

export function formatPercent(part: number, whole: number): string {
  return whole > 0 ? `${shareOf(part, whole)} %` : '—';
}

const frInt = new Intl.NumberFormat('fr-FR');
export function formatCount(n: number): string {
  return frInt.format(n);
}
