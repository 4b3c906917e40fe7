import { courseKeyIn, decodeKey, isObject, parseLmsTime } from './readers.js';
import type { LmsSource } from './tables.js';

/**
 * Pure rules of the LMS-estimated common-trunk time (docs/lms-estimate.md): reading
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

export {
  ANONYMOUS_USERNAME,
  courseKeyIn,
  type DocumentItem,
  detectFormat,
  type LineResult,
  type LmsEvent,
  parseLmsTime,
  readLine,
  readTrackingLogEvent,
  readValue,
  readXapiStatement,
  StatementSplitter,
  startsDocument,
  unwrapLine,
  XAPI_SESSION_EXTENSION,
} from './readers.js';

// ───────────────────────────── keeping only this tool's courses ─────────────────────────────

/**
 * The courses an import keeps, and a cheap test on a raw line before any JSON parsing: a line that
 * mentions none of these course keys (as `ORG+NUM+RUN`, found in course ids, page URLs and block ids,
 * also URL-encoded) cannot hold an event of these courses.
 */
export class CourseFilter {
  readonly keys: ReadonlySet<string>;
  private readonly needles: string[];
  private readonly byteNeedles: Buffer[];

  constructor(contextIds: Iterable<string>) {
    this.keys = new Set(contextIds);
    const needles = new Set<string>();
    for (const key of this.keys) {
      const body = key.startsWith('course-v1:') ? key.slice('course-v1:'.length) : key;
      if (body === '') continue;
      needles.add(body);
      needles.add(encodeURIComponent(body));
    }
    this.needles = [...needles];
    this.byteNeedles = this.needles.map((n) => Buffer.from(n, 'utf8'));
  }

  /** False only when the line certainly holds no event of these courses. */
  mayMention(line: string): boolean {
    for (const n of this.needles) if (line.includes(n)) return true;
    return false;
  }

  /** The same test on the raw bytes of a line, before any decoding. */
  mayMentionBytes(line: Buffer): boolean {
    for (const n of this.byteNeedles) if (line.indexOf(n) !== -1) return true;
    return false;
  }

  keeps(courseContextId: string): boolean {
    return this.keys.has(courseContextId);
  }
}

const COURSE_PREFIX = Buffer.from('course-v1:');
const BLOCK_PREFIX = Buffer.from('block-v1:');
/** Bytes that end a course key: / ? # " \ and white space (see COURSE_KEY). */
const KEY_END = new Set([0x2f, 0x3f, 0x23, 0x22, 0x5c, 0x20, 0x09, 0x0a, 0x0d]);

/**
 * The first course key of a raw line, read from its bytes (only the key is decoded): what `courseKeyIn`
 * finds in the decoded line, without decoding the line. For counting the events of other courses.
 */
export function courseKeyInBytes(line: Buffer): string | null {
  const at = line.indexOf(COURSE_PREFIX);
  if (at === -1) return line.indexOf(BLOCK_PREFIX) === -1 ? null : courseKeyIn(line.toString('utf8'));
  let end = at + COURSE_PREFIX.length;
  while (end < line.length && !KEY_END.has(line[end] as number)) end++;
  if (end === at + COURSE_PREFIX.length) return null;
  return decodeKey(line.toString('utf8', at, end));
}

/** Counts per key, for the courses an import leaves out. */
export function countInto(counts: Map<string, number>, key: string, n = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

/** The largest counts first (ties by key), at most `limit`. */
export function topCounts(counts: ReadonlyMap<string, number>, limit: number): Array<[string, number]> {
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, limit);
}

// ───────────────────────────── events seen twice ─────────────────────────────

/**
 * How many events a learner did, when the same activity may reach the tool twice: once in the tracking
 * log and once as the xAPI statement event-routing-backends made of it (same instant, other source).
 * Per instant (ms), the larger of the two sources' counts: an instant seen through both counts once,
 * two events of one source at one instant count twice.
 */
export function distinctEventCount(events: ReadonlyArray<{ ms: number; source: LmsSource }>): number {
  const perInstant = new Map<number, { tracking: number; xapi: number }>();
  for (const e of events) {
    const c = perInstant.get(e.ms) ?? { tracking: 0, xapi: 0 };
    if (e.source === 'xapi') c.xapi++;
    else c.tracking++;
    perInstant.set(e.ms, c);
  }
  let n = 0;
  for (const c of perInstant.values()) n += Math.max(c.tracking, c.xapi);
  return n;
}

// ───────────────────────────── statements pushed to the LRS endpoint ─────────────────────────────

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/**
 * The checks an LRS makes on a statement it receives (xAPI 1.0.3, Data part 2.4), reduced to what this
 * tool reads: an `id`, when given, is a UUID; the actor is identified by exactly one inverse functional
 * identifier (`mbox`, `mbox_sha1sum`, `openid`, or an `account` with `homePage` and `name`); the verb has
 * an IRI `id`; there is an `object`; a `timestamp`, when given, is a date. Null when acceptable.
 */
export function statementProblem(value: unknown): string | null {
  if (!isObject(value)) return 'a statement must be a JSON object';
  if (value.id !== undefined && !isUuid(value.id)) return '"id" must be a UUID';
  const actor = value.actor;
  if (!isObject(actor)) return '"actor" is missing';
  const ifis = ['mbox', 'mbox_sha1sum', 'openid', 'account'].filter((k) => actor[k] !== undefined);
  if (ifis.length !== 1) return '"actor" must have exactly one of mbox, mbox_sha1sum, openid, account';
  if (actor.mbox !== undefined && !(typeof actor.mbox === 'string' && /^mailto:[^@\s]+@[^@\s]+$/i.test(actor.mbox))) {
    return '"actor.mbox" must be a mailto: IRI';
  }
  if (
    actor.mbox_sha1sum !== undefined &&
    !(typeof actor.mbox_sha1sum === 'string' && /^[0-9a-f]{40}$/i.test(actor.mbox_sha1sum))
  ) {
    return '"actor.mbox_sha1sum" must be a SHA-1 in hexadecimal';
  }
  if (actor.account !== undefined) {
    const a = actor.account;
    if (!isObject(a) || typeof a.homePage !== 'string' || typeof a.name !== 'string' || a.name.trim() === '') {
      return '"actor.account" must have "homePage" and "name"';
    }
  }
  if (!isObject(value.verb) || typeof value.verb.id !== 'string' || !/^[a-z][a-z0-9+.-]*:\S+$/i.test(value.verb.id)) {
    return '"verb.id" must be an IRI';
  }
  if (!isObject(value.object)) return '"object" is missing';
  if (value.timestamp !== undefined && parseLmsTime(value.timestamp) === null) return '"timestamp" is not a date';
  return null;
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
