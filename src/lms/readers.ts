import { createHash } from 'node:crypto';
import type { LmsSource } from './tables.js';

/** Reading Open edX tracking logs and xAPI statements, line by line, into LMS events (docs/lms-estimate.md). */

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
export const COURSE_KEY = /course-v1:[^/?#\s"\\]+/;
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

export function decodeKey(key: string): string {
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

export function isObject(value: unknown): value is Record<string, unknown> {
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
