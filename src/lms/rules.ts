import { createHash } from 'node:crypto';
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

/** The username Open edX writes for events without a request user (management commands, tasks). */
export const ANONYMOUS_USERNAME = 'anonymous';

export const XAPI_SESSION_EXTENSION = 'https://w3id.org/xapi/openedx/extensions/session-id';

// A key ends at a URL separator, a space, a quote or a backslash (a key inside an escaped JSON string).
const COURSE_KEY = /course-v1:[^/?#\s"\\]+/;
const BLOCK_KEY = /block-v1:([^+/?#\s"\\]+)\+([^+/?#\s"\\]+)\+([^+/?#\s"\\]+)\+type@/;

/**
 * `course-v1:ORG+NUM+RUN` found in a URL or an id (`…/course/course-v1:…`, `…/courses/course-v1:…/…`), or
 * derived from a block usage key (`block-v1:ORG+NUM+RUN+type@…` belongs to `course-v1:ORG+NUM+RUN`).
 */
export function courseKeyIn(text: unknown): string | null {
  if (typeof text !== 'string') return null;
  const match = COURSE_KEY.exec(text);
  if (match) return decodeKey(match[0]);
  const block = BLOCK_KEY.exec(text);
  return block ? decodeKey(`course-v1:${block[1]}+${block[2]}+${block[3]}`) : null;
}

function decodeKey(key: string): string {
  try {
    return decodeURIComponent(key);
  } catch {
    return key; // a stray "%" is not an encoding: keep the key as written
  }
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
  // Management commands and tasks run outside a request write "anonymous": no learner is behind them.
  if (!username || username === ANONYMOUS_USERNAME) return { kind: 'skipped', reason: 'anonymous' };
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
 * The JSON text of one log line, without what a logging pipeline put around it:
 * - a line that is JSON already (`{…}` or `[…]`) is kept as it is;
 * - Docker's json-file driver wraps each line as `{"log":"…\n","stream":"stdout","time":"…"}`: the `log`
 *   string is the line (itself read again, as it may carry a prefix);
 * - any prefix before the first `{` is dropped: Tutor's
 *   `2023-05-23 13:53:13,461 INFO 20 [tracking] [user 6] [ip 127.0.0.1] logger.py:41 - {…}`, syslog's
 *   `Mar  3 10:00:00 host tracking: {…}`, a container runtime's `2026-03-02T09:00:00Z stdout F {…}`.
 * Null when the line holds no JSON object at all.
 */
export function unwrapLine(line: string): string | null {
  const text = line.trim();
  if (text === '') return null;
  const first = text.charCodeAt(0);
  if (first === 0x7b /* { */) {
    if (text.startsWith('{"log":')) {
      try {
        const wrapper: unknown = JSON.parse(text);
        if (isObject(wrapper) && typeof wrapper.log === 'string' && !('event_type' in wrapper)) {
          return unwrapLine(wrapper.log);
        }
      } catch {
        return text; // not a wrapper after all: the caller reports the bad JSON
      }
    }
    return text;
  }
  if (first === 0x5b /* [ */ && (text.length === 1 || text[1] === '{' || text[1] === ']' || /^\[\s/.test(text))) {
    return text;
  }
  const brace = text.indexOf('{');
  return brace < 0 ? null : text.slice(brace);
}

/** The statements of a parsed value: one statement, an array of them, or an LRS `StatementResult`. */
function statementsOf(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (isObject(value) && Array.isArray(value.statements) && !('actor' in value)) return value.statements;
  return [value];
}

/**
 * One line of a file: a JSON object (tracking log or xAPI statement), possibly behind a logging prefix or
 * inside a Docker wrapper (see `unwrapLine`), or for xAPI a JSON array of statements or a one-line
 * `StatementResult`. `format` forces the reading; without it each object says what it is.
 */
export function readLine(line: string, format: LmsSource | null): LineResult[] {
  const text = unwrapLine(line);
  if (text === null) return [{ kind: 'malformed', reason: 'no JSON object on this line' }];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [{ kind: 'malformed', reason: 'not valid JSON' }];
  }
  const items = statementsOf(value);
  if (items.length === 0) return [];
  const single = items.length === 1 && items[0] === value;
  return items.map((item) => readValue(item, format, single ? text : null));
}

/** One parsed object; `text` is its exact JSON text when known (the hash of a tracking-log event covers it). */
export function readValue(item: unknown, format: LmsSource | null, text: string | null): LineResult {
  const source = format ?? detectFormat(item);
  if (source === 'xapi') return readXapiStatement(item, text ?? JSON.stringify(item));
  if (source === 'tracking-log') return readTrackingLogEvent(item, text ?? JSON.stringify(item));
  return { kind: 'malformed', reason: 'neither a tracking-log event nor an xAPI statement' };
}

/**
 * Whether a file is one JSON document spread over several lines (a pretty-printed statement, array or
 * `StatementResult`) rather than one value per line, judged from its first non-empty line: that line is
 * not JSON on its own, starts a JSON value, and stops where a value goes on (`{`, `[` or `,`).
 */
export function startsDocument(firstLine: string): boolean {
  const text = firstLine.trim();
  if (!(text.startsWith('{') || text.startsWith('['))) return false;
  if (!/[[{,]$/.test(text)) return false;
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
}

export interface DocumentItem {
  /** 1-based line where the statement starts. */
  line: number;
  text: string;
}

/**
 * Splits one JSON document, fed line by line, into its statements without holding the whole document:
 * the elements of a top-level array, the elements of the `statements` array of a top-level object (an
 * LRS `StatementResult`), or each top-level object (one or several pretty-printed statements). Tracks
 * strings and escapes, so braces inside strings do not count.
 */
export class StatementSplitter {
  /** Open containers: `{` or `[`, and for arrays whether their elements are statements. */
  private stack: Array<{ kind: '{' | '['; statements: boolean }> = [];
  private inString = false;
  private escaped = false;
  /** Text of the statement being read (from its `{`), or null. */
  private capture: string[] | null = null;
  private captureDepth = 0;
  private captureLine = 0;
  /** Whether the top-level object turned out to be a StatementResult (its own text is then not a statement). */
  private topIsResult = false;
  private key = '';
  private keyBuf: string[] | null = null;
  private lastKey = '';
  /** Characters outside any value other than whitespace and commas, by line. */
  readonly stray: number[] = [];

  push(lineText: string, lineNo: number): DocumentItem[] {
    const out: DocumentItem[] = [];
    const text = `${lineText}\n`;
    let captureFrom = this.capture ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') {
          this.inString = false;
          if (this.keyBuf) {
            this.key = this.keyBuf.join('');
            this.keyBuf = null;
          }
        } else if (this.keyBuf && this.keyBuf.length < 64) this.keyBuf.push(c);
        continue;
      }
      if (c === '"') {
        this.inString = true;
        // Keys of the top-level object are remembered (to find "statements").
        if (this.stack.length === 1 && this.stack[0]?.kind === '{') this.keyBuf = [];
        continue;
      }
      if (c === ':' && this.stack.length === 1) {
        this.lastKey = this.key;
        continue;
      }
      if (c === '{' || c === '[') {
        const depth = this.stack.length;
        const parent = this.stack[depth - 1];
        const isStatementStart =
          c === '{' && this.capture === null && (depth === 0 || (parent?.kind === '[' && parent.statements));
        const statements =
          c === '[' && (depth === 0 || (depth === 1 && parent?.kind === '{' && this.lastKey === 'statements'));
        if (c === '[' && depth === 1 && statements) {
          // A StatementResult: drop the capture of the top-level object, keep its statements one by one.
          this.topIsResult = true;
          this.capture = null;
          captureFrom = -1;
        }
        this.stack.push({ kind: c, statements });
        if (isStatementStart) {
          this.capture = [];
          captureFrom = i;
          this.captureDepth = this.stack.length;
          this.captureLine = lineNo;
          if (depth === 0) this.topIsResult = false;
        }
        continue;
      }
      if (c === '}' || c === ']') {
        const depth = this.stack.length;
        this.stack.pop();
        if (this.capture && c === '}' && depth === this.captureDepth) {
          this.capture.push(text.slice(captureFrom, i + 1));
          out.push({ line: this.captureLine, text: this.capture.join('') });
          this.capture = null;
          captureFrom = -1;
        }
        if (depth === 1) this.lastKey = '';
        continue;
      }
      if (this.stack.length === 0 && c !== ',' && c.trim() !== '' && this.stray.at(-1) !== lineNo) {
        this.stray.push(lineNo);
      }
    }
    if (this.capture && captureFrom >= 0) this.capture.push(text.slice(captureFrom));
    return out;
  }

  /** Whether the document ended inside a value (a truncated file). */
  get unfinished(): boolean {
    return this.stack.length > 0 || this.inString;
  }

  /** Whether the top-level object read was a StatementResult. */
  get sawStatementResult(): boolean {
    return this.topIsResult;
  }
}

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
