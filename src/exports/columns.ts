import type { FastifyInstance } from 'fastify';
import { largestRemainder } from '../common/rounding.js';
import type { Db } from '../db/index.js';
import { LMS_SESSIONS_V1, overlapMs, sessionize } from '../lms/index.js';
import type { ProgressUnit } from '../portal/index.js';
import { MODE_LABELS } from '../regroupement/index.js';
import {
  completedQuickly,
  deviceClass,
  type FocusMark,
  presenceSessions,
  type RunInterval,
} from '../tracking/index.js';
import * as connections from './connections-repository.js';
import * as repo from './repository.js';
import { decimalHours, evaluationSummary, nextDay, parisDay, parisDayStart, STATUS_LABELS } from './rules.js';
import { queryInTransaction, streamInTransaction } from './stream.js';
import type { CellValue, Column } from './writers.js';

/**
 * The two exports described in docs/exports.md, column by column. A definition
 * says where rows come from (a streamed query), how many there will be, and how a row becomes cells.
 */

export type ExportKind = 'summary' | 'connections';

export interface ExportContext {
  provider: { siret: string; activityDeclarationNumber: string; name: string } | null;
  moduleTitles: Map<string, string>;
  names: Awaited<ReturnType<typeof repo.namesForExport>>;
}

export interface ExportDefinition<Row> {
  kind: ExportKind;
  sheetName: string;
  columns: Column[];
  /** What the progress bar counts: one source row per file row, or one learner for many rows. */
  progressUnit: ProgressUnit;
  /** The rows of each source unit (one enrolment → one summary row, or its sessions), streamed. */
  rows(db: Db, filter: repo.ExportFilter): AsyncIterable<Row[]>;
  count(db: Db, filter: repo.ExportFilter): Promise<number>;
  toCells(row: Row, context: ExportContext): CellValue[];
  context(app: FastifyInstance): Promise<ExportContext>;
}

/** Rows per cursor fetch: fewer round trips, still a few megabytes at most in memory. */
const STREAM_CHUNK = 250;
export const MODALITY = 'à distance (SPOC)';
export const DEFAULT_PLANNED_MINUTES = 240;

/** As on certificates (src/regroupement MODE_LABELS). */
const REGROUPEMENT_MODE_LABELS: Record<string, string> = MODE_LABELS;

const CIVILITY_LABELS: Record<string, string> = { madame: 'Madame', monsieur: 'Monsieur', non_precise: '' };

async function exportContext(app: FastifyInstance): Promise<ExportContext> {
  const [moduleTitles, names] = await Promise.all([repo.moduleTitles(app.db), repo.namesForExport(app.db)]);
  // The training provider is the certificates capability's configuration (lti-config/provider.json).
  const data = app.certificates.provider.data;
  return {
    provider: { siret: data.siret, activityDeclarationNumber: data.activityDeclarationNumber, name: data.name },
    moduleTitles,
    names,
  };
}

// ---------------------------------------------------------------------------------------------
// Summary: one row per learner in a course session

export const SUMMARY_COLUMNS: Column[] = [
  { header: 'OPCO', kind: 'text', width: 24 },
  { header: 'OPCA (nom historique)', kind: 'text', width: 16 },
  { header: 'N° de dossier OPCO', kind: 'code', width: 16 },
  { header: 'SIRET de l’organisme de formation', kind: 'code', width: 18 },
  { header: 'N° de déclaration d’activité', kind: 'code', width: 16 },
  { header: 'SIRET de l’entreprise', kind: 'code', width: 18 },
  { header: 'Raison sociale de l’entreprise', kind: 'text', width: 30 },
  { header: 'IDCC', kind: 'code', width: 8 },
  { header: 'Branche', kind: 'text', width: 30 },
  { header: 'Identifiant apprenant', kind: 'text', width: 38 },
  { header: 'Civilité', kind: 'text', width: 10 },
  { header: 'Nom', kind: 'text', width: 20 },
  { header: 'Prénom', kind: 'text', width: 20 },
  { header: 'Intitulé de l’action', kind: 'text', width: 36 },
  { header: 'Session (cours)', kind: 'text', width: 30 },
  { header: 'Modalité', kind: 'text', width: 18 },
  { header: 'Date de début (Paris)', kind: 'parisDate', width: 12 },
  { header: 'Début (UTC, ISO 8601)', kind: 'isoUtc', width: 21 },
  { header: 'Date de fin (Paris)', kind: 'parisDate', width: 12 },
  { header: 'Fin (UTC, ISO 8601)', kind: 'isoUtc', width: 21 },
  { header: 'Durée prévue (heures)', kind: 'decimal', width: 10 },
  { header: 'Temps dans les modules (h:mm)', kind: 'hoursMinutes', width: 12 },
  { header: 'Temps dans les modules (heures)', kind: 'decimal', width: 12 },
  { header: 'Temps estimé sur le cours FUN (h:mm)', kind: 'hoursMinutes', width: 12 },
  { header: 'Temps estimé sur le cours FUN (heures)', kind: 'decimal', width: 12 },
  { header: 'Temps total (h:mm)', kind: 'hoursMinutes', width: 12 },
  { header: 'Temps total (heures)', kind: 'decimal', width: 12 },
  { header: 'Regroupement : date (Paris)', kind: 'parisDate', width: 12 },
  { header: 'Regroupement : modalité', kind: 'text', width: 20 },
  { header: 'Regroupement : durée (h:mm)', kind: 'hoursMinutes', width: 12 },
  { header: 'Regroupement : durée (heures)', kind: 'decimal', width: 12 },
  { header: 'Modules terminés', kind: 'integer', width: 10 },
  { header: 'Modules prévus', kind: 'integer', width: 10 },
  { header: 'Résultats aux quiz', kind: 'text', width: 16 },
  { header: 'Statut', kind: 'text', width: 20 },
  { header: 'N° d’attestation', kind: 'code', width: 18 },
  { header: 'Version de l’algorithme de temps', kind: 'text', width: 14 },
];

/** Dates of the action: the session's fixed dates when the course has them, else first and last activity. */
export function actionDates(row: repo.SummaryRow): { start: Date | null; end: Date | null } {
  if (row.session_start && row.session_end) {
    return {
      start: parisDayStart(row.session_start),
      end: new Date(parisDayStart(nextDay(row.session_end)).getTime() - 1000),
    };
  }
  return {
    start: row.first_activity_ms === null ? null : new Date(Number(row.first_activity_ms)),
    end: row.last_activity_ms === null ? null : new Date(Number(row.last_activity_ms)),
  };
}

async function* summaryRows(db: Db, filter: repo.ExportFilter): AsyncGenerator<repo.SummaryRow[]> {
  const batches = streamInTransaction(db, (trx) => repo.summaryRows(trx, filter).stream(STREAM_CHUNK));
  for await (const batch of batches) for (const row of batch) yield [row as repo.SummaryRow];
}

export const summaryDefinition: ExportDefinition<repo.SummaryRow> = {
  kind: 'summary',
  sheetName: 'Synthèse',
  columns: SUMMARY_COLUMNS,
  progressUnit: 'rows',
  rows: (db, filter) => summaryRows(db, filter),
  count: (db, filter) => queryInTransaction(db, (trx) => repo.countEnrolments(trx, filter)),
  context: exportContext,
  toCells(row, context) {
    const { start, end } = actionDates(row);
    const moduleSeconds = row.module_seconds ?? 0;
    const lmsSeconds = row.lms_seconds;
    const totalSeconds = row.total_seconds ?? moduleSeconds + (lmsSeconds ?? 0);
    // The learner's programme (sum of its modules' nominal durations), as on the certificate.
    const plannedMinutes = row.programme_minutes || row.planned_minutes || DEFAULT_PLANNED_MINUTES;
    const fund = context.names.funds.get(row.fund_slug);
    const course = context.names.courses.get(row.course_id);
    return [
      fund?.name ?? row.fund_slug,
      (row.idcc ? context.names.branchHistoricalNames.get(row.idcc) : undefined) ?? fund?.historicalName,
      row.file_number,
      context.provider?.siret,
      context.provider?.activityDeclarationNumber,
      row.company_siret,
      row.company_name,
      row.idcc,
      row.idcc ? context.names.branches.get(row.idcc) : null,
      row.learner_id,
      CIVILITY_LABELS[row.civility] ?? '',
      row.family_name,
      row.given_name,
      course?.title,
      course?.session,
      MODALITY,
      start,
      start,
      end,
      end,
      Math.round((plannedMinutes / 60) * 100) / 100,
      moduleSeconds,
      decimalHours(moduleSeconds),
      lmsSeconds,
      lmsSeconds === null ? null : decimalHours(lmsSeconds),
      totalSeconds,
      decimalHours(totalSeconds),
      // Closing group sessions attended (src/regroupement): the first one's day, the modalities, their time.
      row.regroupement_first_ms === null ? null : new Date(Number(row.regroupement_first_ms)),
      row.regroupement_modes ? row.regroupement_modes.map((m) => REGROUPEMENT_MODE_LABELS[m] ?? m).join(', ') : null,
      row.regroupement_minutes === null ? null : Number(row.regroupement_minutes) * 60,
      row.regroupement_minutes === null ? null : decimalHours(Number(row.regroupement_minutes) * 60),
      row.common_done + row.sector_done,
      row.common_planned + row.sector_planned,
      evaluationSummary(row.quiz_correct ?? 0, row.quiz_total ?? 0),
      STATUS_LABELS[row.status],
      row.certificate_number,
      row.algorithm,
    ];
  },
};

// ---------------------------------------------------------------------------------------------
// Connection log: one row per merged session (tracking's presence sessions: touching or overlapping
// runs of every tab and device joined, so no second appears twice), and one row per session of time
// estimated from the LMS's logs (source `lms-estimate`: its span minus what the tool measured itself).

export const CONNECTION_COLUMNS: Column[] = [
  { header: 'Identifiant apprenant', kind: 'text', width: 38 },
  { header: 'Nom', kind: 'text', width: 20 },
  { header: 'Prénom', kind: 'text', width: 20 },
  { header: 'OPCO', kind: 'text', width: 24 },
  { header: 'IDCC', kind: 'code', width: 8 },
  { header: 'Session (cours)', kind: 'text', width: 30 },
  { header: 'Date (Paris)', kind: 'parisDate', width: 12 },
  { header: 'Début (Paris)', kind: 'parisDateTime', width: 20 },
  { header: 'Fin (Paris)', kind: 'parisDateTime', width: 20 },
  { header: 'Début (UTC, ISO 8601)', kind: 'isoUtc', width: 21 },
  { header: 'Fin (UTC, ISO 8601)', kind: 'isoUtc', width: 21 },
  { header: 'Durée (hh:mm:ss)', kind: 'hms', width: 10 },
  { header: 'Durée (secondes)', kind: 'integer', width: 10 },
  { header: 'Modules visités', kind: 'text', width: 50 },
  { header: 'Battements reçus', kind: 'integer', width: 10 },
  { header: 'Appareil', kind: 'text', width: 14 },
  { header: 'Signalements', kind: 'text', width: 36 },
  { header: 'Version de l’algorithme de temps', kind: 'text', width: 14 },
  // Last, so that the earlier columns keep their places for existing scripts.
  { header: 'Source', kind: 'text', width: 13 },
];

/**
 * `module`: measured in the tool's modules; `lms-estimate`: estimated from the LMS's logs; `regroupement`: a
 * closing group session attended (src/regroupement), its planned duration.
 */
export type ConnectionSource = 'module' | 'lms-estimate' | 'regroupement';

export interface ConnectionRow {
  source: connections.ConnectionSourceRow;
  kind: ConnectionSource;
  algorithm: string | null;
  start: Date;
  end: Date;
  seconds: number;
  modules: string[];
  beats: number;
  devices: string[];
  flags: string[];
}

const DEVICE_LABELS: Record<string, string> = {
  desktop: 'ordinateur',
  mobile: 'téléphone',
  tablet: 'tablette',
  unknown: 'inconnu',
};

/** The merged sessions of one learner's runs, with the flags docs/certificates-and-exports.md asks for. */
export function sessionsOf(
  source: connections.ConnectionSourceRow,
  period: { from: Date | null; to: Date | null },
): ConnectionRow[] {
  const runs: RunInterval[] = (source.runs ?? []).map((r) => ({
    runId: r.id,
    tabId: r.tab,
    moduleId: r.module,
    startMs: Number(r.s),
    endMs: Number(r.e),
    beatCount: r.n,
  }));
  const agents = new Map((source.runs ?? []).map((r) => [r.tab, r.ua]));
  const focus: FocusMark[] = (source.focus ?? [])
    .map((f) => ({ tabId: f.tab, atMs: Date.parse(f.at) }))
    .filter((f) => Number.isFinite(f.atMs));
  const capped = new Set(source.capped_modules ?? []);
  const longDays = new Set(source.long_days ?? []);
  const rejected = (source.rejected ?? []).map(Number);
  // Plausibility (docs/time-accounting.md): a module completed with under a third of its nominal time credited.
  const quick = new Set(
    (source.completed_modules ?? [])
      .filter((m) => completedQuickly(true, Number(m.credited), Number(m.nominal)))
      .map((m) => m.module),
  );
  const inPeriod = (startMs: number) =>
    (!period.from || startMs >= period.from.getTime()) && (!period.to || startMs < period.to.getTime());
  const presence = presenceSessions(runs, focus);
  // Seconds per row by largest remainder: the rows of a learner add up to the floored total, to the second.
  const presenceSeconds = largestRemainder(
    presence.map((s) => s.measuredMs),
    1000,
  );
  const moduleRows: ConnectionRow[] = presence.flatMap((s, i) => {
    if (!inPeriod(s.startMs)) return [];
    const start = new Date(s.startMs);
    const end = new Date(s.endMs);
    const flags: string[] = [];
    if (s.moduleIds.some((m) => capped.has(m))) flags.push('plafond atteint');
    if (longDays.has(parisDay(start)) || longDays.has(parisDay(end))) flags.push('journée longue');
    const refused = rejected.filter((t) => t >= s.startMs && t <= s.endMs).length;
    if (refused > 0) flags.push(`battements rejetés : ${refused}`);
    if (s.moduleIds.some((m) => quick.has(m))) flags.push('parcouru rapidement');
    return [
      {
        source,
        kind: 'module' as const,
        algorithm: source.algorithm,
        start,
        end,
        seconds: presenceSeconds[i] as number,
        modules: s.moduleIds,
        beats: s.beatCount,
        devices: [...new Set(s.tabIds.map((t) => deviceClass(agents.get(t) ?? null)))].sort(),
        flags,
      },
    ];
  });
  // Closing group sessions attended (src/regroupement), one row each.
  const groupRows: ConnectionRow[] = (source.regroupements ?? [])
    .filter((g) => inPeriod(Number(g.s)))
    .map((g) => ({
      source,
      kind: 'regroupement' as const,
      algorithm: null,
      start: new Date(Number(g.s)),
      end: new Date(Number(g.s) + g.minutes * 60_000),
      seconds: g.minutes * 60,
      modules: [],
      beats: 0,
      devices: [],
      flags: [
        `${REGROUPEMENT_MODE_LABELS[g.mode] ?? g.mode}, présence ${g.via === 'code' ? 'confirmée par code' : 'notée par l’équipe'}`,
      ],
    }));
  return [...moduleRows, ...lmsRows(source, presence, inPeriod), ...groupRows].sort(
    (a, b) => a.start.getTime() - b.start.getTime() || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0),
  );
}

/**
 * The sessions of time estimated from the LMS's logs (lms-sessions-v1: events more than `sessionGapMs` apart
 * start a new session; a session spans its first to its last event), each less what the tool measured
 * itself meanwhile, so that no second is in two rows. Sessions entirely covered by the tool give no row.
 */
function lmsRows(
  source: connections.ConnectionSourceRow,
  inTool: ReadonlyArray<{ startMs: number; endMs: number }>,
  inPeriod: (startMs: number) => boolean,
): ConnectionRow[] {
  const times = (source.lms_times ?? []).map(Number).filter(Number.isFinite);
  if (times.length === 0) return [];
  const gap = Number(source.lms_params?.sessionGapMs);
  const sessions = sessionize(times, { sessionGapMs: gap > 0 ? gap : LMS_SESSIONS_V1.sessionGapMs });
  const intervals = inTool.map((s) => ({ startMs: s.startMs, endMs: s.endMs }));
  const estimated = sessions.map((s) => s.endMs - s.startMs - overlapMs([s], intervals));
  const seconds = largestRemainder(estimated, 1000);
  return sessions.flatMap((s, i) =>
    inPeriod(s.startMs) && (estimated[i] as number) > 0
      ? [
          {
            source,
            kind: 'lms-estimate' as const,
            algorithm: source.lms_algorithm,
            start: new Date(s.startMs),
            end: new Date(s.endMs),
            seconds: seconds[i] as number,
            modules: [],
            beats: 0,
            devices: [],
            flags: [],
          },
        ]
      : [],
  );
}

export const connectionsDefinition: ExportDefinition<ConnectionRow> = {
  kind: 'connections',
  sheetName: 'Journal des connexions',
  columns: CONNECTION_COLUMNS,
  progressUnit: 'learners',
  rows: (db, filter) => connectionRows(db, filter),
  count: (db, filter) => queryInTransaction(db, (trx) => connections.countConnectionSources(trx, filter)),
  context: exportContext,
  toCells(row, context) {
    const s = row.source;
    return [
      s.learner_id,
      s.family_name,
      s.given_name,
      context.names.funds.get(s.fund_slug)?.name ?? s.fund_slug,
      s.idcc,
      context.names.courses.get(s.course_id)?.session,
      row.start,
      row.start,
      row.end,
      row.start,
      row.end,
      row.seconds,
      row.seconds,
      row.kind === 'regroupement'
        ? 'Regroupement'
        : row.modules.map((m) => context.moduleTitles.get(m) ?? m).join(' | '),
      row.beats,
      row.devices.map((d) => DEVICE_LABELS[d] ?? d).join(', '),
      row.flags.join(', '),
      row.algorithm,
      row.kind,
    ];
  },
};

/** Source rows (one per learner and course) become their session rows as they stream. */
async function* connectionRows(db: Db, filter: repo.ExportFilter): AsyncGenerator<ConnectionRow[]> {
  const period = {
    from: filter.from ? parisDayStart(filter.from) : null,
    to: filter.to ? parisDayStart(nextDay(filter.to)) : null,
  };
  const batches = streamInTransaction(db, (trx) => connections.connectionSources(trx, filter).stream(STREAM_CHUNK));
  for await (const batch of batches) {
    for (const source of batch) yield sessionsOf(source as connections.ConnectionSourceRow, period);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: each definition is consistent with its own row type.
export type AnyExportDefinition = ExportDefinition<any>;

export function exportDefinition(kind: ExportKind): AnyExportDefinition {
  const definitions: Record<ExportKind, AnyExportDefinition> = {
    summary: summaryDefinition,
    connections: connectionsDefinition,
  };
  return definitions[kind];
}
