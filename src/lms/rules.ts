import { createHash } from 'node:crypto';
import type { LmsSource } from './tables.js';

/**
 * Pure rules of the LMS-estimated common-trunk time (time-accounting.md, "Common-trunk time"): reading
 * one line of an Open edX tracking log or of an xAPI export, sessionizing a learner's events in a course,
 * and removing the time already measured inside the tool. No database, no clock.
 */

export const LMS_ALGORITHM = 'lms-sessions-v1';

export interface LmsParams {
  /** A gap between two events longer than this ends the session (30 min, as edX learning-analytics research). */
  sessionGapMs: number;
}

export const LMS_SESSIONS_V1: Readonly<LmsParams> = Object.freeze({ sessionGapMs: 30 * 60 * 1000 });

/** The parameters recorded with every total (and signed into certificates). */
export function lmsParamsRecord(params: LmsParams = LMS_SESSIONS_V1): Record<string, unknown> {
  return { algorithm: LMS_ALGORITHM, sessionGapMs: params.sessionGapMs, inToolOverlap: 'subtracted' };
}

// ───────────────────────────── reading events ─────────────────────────────

/** One event as stored: the minimum needed to sessionize and to show where a figure comes from. */
export interface LmsEvent {
  hash: string;
  source: LmsSource;
  lmsUsername: string;
  lmsUserId: string | null;
  courseContextId: string;
  occurredAt: Date;
  eventType: string;
  eventSource: string | null;
  sessionId: string | null;
}

export type LineResult =
  | { kind: 'event'; event: LmsEvent }
  /** Well-formed but not usable: no user (anonymous) or no course. Counted, not an error. */
  | { kind: 'skipped'; reason: 'anonymous' | 'no_course' }
  | { kind: 'malformed'; reason: string };

export const XAPI_SESSION_EXTENSION = 'https://w3id.org/xapi/openedx/extensions/session-id';

const COURSE_KEY = /course-v1:[^/?#\s"]+/;
const BLOCK_KEY = /block-v1:([^+/?#\s"]+)\+([^+/?#\s"]+)\+([^+/?#\s"]+)\+type@/;

/**
 * `course-v1:ORG+NUM+RUN` found in a URL or an id (`…/course/course-v1:…`, `…/courses/course-v1:…/…`), or
 * derived from a block usage key (`block-v1:ORG+NUM+RUN+type@…` belongs to `course-v1:ORG+NUM+RUN`).
 */
export function courseKeyIn(text: unknown): string | null {
  if (typeof text !== 'string') return null;
  const match = COURSE_KEY.exec(text);
  if (match) return decodeURIComponent(match[0]);
  const block = BLOCK_KEY.exec(text);
  return block ? decodeURIComponent(`course-v1:${block[1]}+${block[2]}+${block[3]}`) : null;
}

/**
 * Open edX writes `time` with microseconds and, in older logs, without a zone (UTC). Returns null when
 * the value is not a date.
 */
export function parseLmsTime(value: unknown): Date | null {
  if (typeof value !== 'string' || value.length < 10) return null;
  let text = value.trim();
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(text)) return null;
  text = text.replace(' ', 'T');
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(text)) text += 'Z';
  // Keep milliseconds: V8 reads longer fractions, other engines may not.
  text = text.replace(/(\.\d{3})\d+/, '$1');
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? new Date(ms) : null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function str(value: unknown): string | null {
  if (typeof value === 'string') return value.trim() === '' ? null : value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Which format a parsed JSON object is: an xAPI statement has an actor and a verb. */
export function detectFormat(value: unknown): LmsSource | null {
  if (!isObject(value)) return null;
  if ('actor' in value && 'verb' in value) return 'xapi';
  if ('time' in value && ('event_type' in value || 'name' in value)) return 'tracking-log';
  return null;
}

/** One Open edX tracking-log object (server, browser or mobile event). `line` is its raw text (for the hash). */
export function readTrackingLogEvent(value: unknown, line: string): LineResult {
  if (!isObject(value)) return { kind: 'malformed', reason: 'not a JSON object' };
  const occurredAt = parseLmsTime(value.time);
  if (!occurredAt) return { kind: 'malformed', reason: 'missing or invalid "time"' };
  const eventType = str(value.name) ?? str(value.event_type);
  if (!eventType) return { kind: 'malformed', reason: 'missing "event_type"' };
  if (value.username !== undefined && value.username !== null && typeof value.username !== 'string') {
    return { kind: 'malformed', reason: '"username" is not a string' };
  }
  const context = isObject(value.context) ? value.context : {};
  const username = str(value.username);
  if (!username) return { kind: 'skipped', reason: 'anonymous' };
  // Browser events often carry an empty context.course_id; their page URL names the course.
  const course = str(context.course_id) ?? courseKeyIn(value.page) ?? courseKeyIn(eventType);
  if (!course) return { kind: 'skipped', reason: 'no_course' };
  return {
    kind: 'event',
    event: {
      hash: sha256(`tracking-log\n${line.trim()}`),
      source: 'tracking-log',
      lmsUsername: username,
      lmsUserId: str(context.user_id),
      courseContextId: course,
      occurredAt,
      eventType: eventType.slice(0, 500),
      eventSource: str(value.event_source),
      sessionId: str(value.session),
    },
  };
}

/** One xAPI statement from event-routing-backends. The statement id (when present) identifies it. */
export function readXapiStatement(value: unknown, line: string): LineResult {
  if (!isObject(value)) return { kind: 'malformed', reason: 'not a JSON object' };
  const occurredAt = parseLmsTime(value.timestamp);
  if (!occurredAt) return { kind: 'malformed', reason: 'missing or invalid "timestamp"' };
  const actor = isObject(value.actor) ? value.actor : null;
  if (!actor) return { kind: 'malformed', reason: 'missing "actor"' };
  const account = isObject(actor.account) ? actor.account : {};
  const username = str(account.name) ?? str(actor.mbox) ?? str(actor.mbox_sha1sum);
  if (!username) return { kind: 'skipped', reason: 'anonymous' };
  const verb = isObject(value.verb) ? str(value.verb.id) : null;
  if (!verb) return { kind: 'malformed', reason: 'missing "verb.id"' };
  const context = isObject(value.context) ? value.context : {};
  const activities = isObject(context.contextActivities) ? context.contextActivities : {};
  const parents = Array.isArray(activities.parent) ? activities.parent : [];
  const extensions = isObject(context.extensions) ? context.extensions : {};
  const object = isObject(value.object) ? value.object : {};
  let course: string | null = null;
  for (const p of parents) course ??= isObject(p) ? courseKeyIn(p.id) : null;
  course ??= courseKeyIn(object.id);
  if (!course) return { kind: 'skipped', reason: 'no_course' };
  const id = str(value.id);
  return {
    kind: 'event',
    event: {
      hash: sha256(id ? `xapi-id\n${id}` : `xapi\n${line.trim()}`),
      source: 'xapi',
      lmsUsername: username,
      lmsUserId: null,
      courseContextId: course,
      occurredAt,
      eventType: verb.slice(0, 500),
      eventSource: null,
      sessionId: str(extensions[XAPI_SESSION_EXTENSION]),
    },
  };
}

/**
 * One line of a file: a JSON object (tracking log or xAPI statement) or, for xAPI exports, a JSON array
 * of statements. `format` forces the reading; without it each object says what it is.
 */
export function readLine(line: string, format: LmsSource | null): LineResult[] {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return [{ kind: 'malformed', reason: 'not valid JSON' }];
  }
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) return [];
  return items.map((item) => {
    const source = format ?? detectFormat(item);
    if (source === 'xapi') return readXapiStatement(item, Array.isArray(value) ? JSON.stringify(item) : line);
    if (source === 'tracking-log') return readTrackingLogEvent(item, line);
    return { kind: 'malformed', reason: 'neither a tracking-log event nor an xAPI statement' };
  });
}

// ───────────────────────────── sessions and the estimate ─────────────────────────────

export interface Interval {
  startMs: number;
  endMs: number;
}

export interface LmsSession extends Interval {
  eventCount: number;
}

/**
 * Sessions of one learner in one course: events sorted, a new session whenever the gap to the previous
 * event exceeds `sessionGapMs`; a session spans its first to its last event (nothing after the last one).
 */
export function sessionize(times: readonly number[], params: LmsParams = LMS_SESSIONS_V1): LmsSession[] {
  const sorted = times.filter((t) => Number.isFinite(t)).sort((a, b) => a - b);
  const sessions: LmsSession[] = [];
  let current: LmsSession | null = null;
  for (const t of sorted) {
    if (current && t - current.endMs <= params.sessionGapMs) {
      current.endMs = t;
      current.eventCount++;
    } else {
      current = { startMs: t, endMs: t, eventCount: 1 };
      sessions.push(current);
    }
  }
  return sessions;
}

/** The union of intervals, sorted and disjoint (touching intervals are joined; empty ones dropped). */
export function unionIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.endMs > i.startMs).sort((a, b) => a.startMs - b.startMs);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out.at(-1);
    if (last && i.startMs <= last.endMs) last.endMs = Math.max(last.endMs, i.endMs);
    else out.push({ startMs: i.startMs, endMs: i.endMs });
  }
  return out;
}

export function totalMs(intervals: readonly Interval[]): number {
  return unionIntervals(intervals).reduce((s, i) => s + (i.endMs - i.startMs), 0);
}

/** Length of the intersection of two sets of intervals (each unioned first). */
export function overlapMs(a: readonly Interval[], b: readonly Interval[]): number {
  const x = unionIntervals(a);
  const y = unionIntervals(b);
  let i = 0;
  let j = 0;
  let sum = 0;
  while (i < x.length && j < y.length) {
    const p = x[i] as Interval;
    const q = y[j] as Interval;
    const start = Math.max(p.startMs, q.startMs);
    const end = Math.min(p.endMs, q.endMs);
    if (end > start) sum += end - start;
    if (p.endMs < q.endMs) i++;
    else j++;
  }
  return sum;
}

export interface LmsEstimate {
  sessions: LmsSession[];
  eventCount: number;
  /** Sum of the sessions' spans. */
  sessionMs: number;
  /** The part of those spans during which the tool measured the learner (its own figure). */
  overlapMs: number;
  /** sessionMs − overlapMs: time on the LMS's own pages, never counted twice with in-tool time. */
  estimatedMs: number;
  estimatedSeconds: number;
  firstMs: number;
  lastMs: number;
}

/**
 * LMS-estimated time of one learner in one course: the sessions of their events, minus the time the
 * tool itself measured (in-tool presence intervals), so that the sum of the two figures is the union.
 * Null when there is no event.
 */
export function estimateLmsTime(
  eventTimes: readonly number[],
  inTool: readonly Interval[],
  params: LmsParams = LMS_SESSIONS_V1,
): LmsEstimate | null {
  const sessions = sessionize(eventTimes, params);
  if (sessions.length === 0) return null;
  const sessionMs = totalMs(sessions);
  const overlap = overlapMs(sessions, inTool);
  const estimatedMs = sessionMs - overlap;
  return {
    sessions,
    eventCount: sessions.reduce((n, s) => n + s.eventCount, 0),
    sessionMs,
    overlapMs: overlap,
    estimatedMs,
    estimatedSeconds: Math.floor(estimatedMs / 1000),
    firstMs: (sessions[0] as LmsSession).startMs,
    lastMs: (sessions.at(-1) as LmsSession).endMs,
  };
}

// ───────────────────────────── mapping files ─────────────────────────────

export interface MappingRow {
  line: number;
  lmsUsername: string;
  learner: string;
}

/**
 * A mapping CSV: `lms_username,learner` per line (`,` or `;`), where learner is the tool's learner id, the
 * LTI `sub` or the e-mail. A first line naming the columns is skipped. Returns rows and bad lines.
 */
export function parseMappingCsv(text: string): { rows: MappingRow[]; errors: Array<{ line: number; reason: string }> } {
  const rows: MappingRow[] = [];
  const errors: Array<{ line: number; reason: string }> = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '' || raw.trim().startsWith('#')) return;
    const cells = raw.split(/[;,]/).map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    if (index === 0 && /^(lms_?)?user(name)?$/i.test(cells[0] ?? '')) return;
    if (cells.length !== 2 || !cells[0] || !cells[1]) {
      errors.push({ line, reason: 'expected two values: LMS username, learner' });
      return;
    }
    rows.push({ line, lmsUsername: cells[0], learner: cells[1] });
  });
  return { rows, errors };
}
