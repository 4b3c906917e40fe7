// One file (~520 lines): import, mapping and totals are one pipeline over the same events and estimates (docs/lms-estimate.md).
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createGunzip } from 'node:zlib';
import { formatInstantDay } from '../common/paris-time.js';
import type { Db } from '../db/index.js';
import { getPresenceSessions } from '../tracking/index.js';
import * as repo from './repository.js';
import {
  CourseFilter,
  countInto,
  courseKeyInBytes,
  distinctEventCount,
  estimateLmsTime,
  type Interval,
  type LineResult,
  LMS_ALGORITHM,
  LMS_SESSIONS_V1,
  type LmsEvent,
  type LmsParams,
  lmsParamsRecord,
  parseMappingCsv,
  readLine,
  readValue,
  StatementSplitter,
  startsDocument,
} from './rules.js';
import type { LmsSource } from './tables.js';

// ───────────────────────────── import ─────────────────────────────

export interface ImportOptions {
  /** Forces the reading of every line; without it each object says what it is. */
  format?: LmsSource | null;
  /** The LMS the file comes from (its issuer URL), when several platforms share course ids. */
  issuer?: string | null;
  /** Course keys kept besides those of the courses the tool knows (launched at least once). */
  courses?: readonly string[];
  /** How many malformed lines are listed (all are counted). */
  maxErrors?: number;
  batchSize?: number;
}

export interface ImportReport {
  importId: string;
  file: string;
  lines: number;
  /** Events of the courses kept (stored, or already stored). */
  events: number;
  inserted: number;
  duplicates: number;
  malformed: number;
  skipped: { anonymous: number; noCourse: number };
  /** Events of other courses: counted by course, never stored. */
  otherCourses: Map<string, number>;
  /** The first malformed lines, with their 1-based line numbers. */
  errors: Array<{ line: number; reason: string }>;
}

async function isGzip(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/**
 * A file's bytes, read into one buffer over and over: each chunk is valid until the next one is asked
 * for. A stream would allocate a new buffer per chunk, outside the JavaScript heap, freed only when the
 * collector gets to it: hundreds of MB of them for a platform's log.
 */
async function* readInPlace(path: string, size = 256 * 1024): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(size);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, size, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** The courses an import keeps: those the tool knows (of this issuer, when named), plus those named. */
export async function importFilter(
  db: Db,
  issuer: string | null,
  courses: readonly string[] = [],
): Promise<CourseFilter> {
  return new CourseFilter([
    ...(await repo.knownContextIds(db, issuer)),
    ...courses.map((c) => c.trim()).filter(Boolean),
  ]);
}

/**
 * Imports one tracking log or xAPI file (gzip recognised by its magic bytes), streamed line by line in
 * batches: memory does not grow with the file. Only the events of the courses this tool serves are
 * stored; a line that names none of them is not parsed at all (only its course is counted), so a whole
 * platform's log costs little more than reading it. Events already stored (same hash) are left as they
 * are, so importing a file again changes nothing. A bad line is counted and listed, never fatal.
 */
export async function importLmsFile(db: Db, path: string, options: ImportOptions = {}): Promise<ImportReport> {
  const format = options.format ?? null;
  const issuer = options.issuer ?? null;
  const maxErrors = options.maxErrors ?? 20;
  const batchSize = options.batchSize ?? 1000;
  const gzip = await isGzip(path); // also fails early, before any row, on a missing file
  const filter = await importFilter(db, issuer, options.courses);
  const importId = await repo.startImport(db, { fileName: basename(path), format: format ?? 'auto', issuer });
  const input = gzip ? createReadStream(path, { highWaterMark: 256 * 1024 }).pipe(createGunzip()) : readInPlace(path);
  const report: ImportReport = {
    importId,
    file: path,
    lines: 0,
    events: 0,
    inserted: 0,
    duplicates: 0,
    malformed: 0,
    skipped: { anonymous: 0, noCourse: 0 },
    otherCourses: new Map(),
    errors: [],
  };
  const malformed = (line: number, reason: string) => {
    report.malformed++;
    if (report.errors.length < maxErrors) report.errors.push({ line, reason });
  };
  let batch = new Map<string, LmsEvent>();
  const flush = async () => {
    if (batch.size === 0) return;
    const events = [...batch.values()];
    batch = new Map();
    const inserted = await repo.insertEvents(db, importId, issuer, events);
    report.inserted += inserted;
    report.duplicates += events.length - inserted;
  };
  const take = (result: LineResult, line: number) => {
    if (result.kind === 'malformed') malformed(line, result.reason);
    else if (result.kind === 'skipped') {
      if (result.reason === 'anonymous') report.skipped.anonymous++;
      else report.skipped.noCourse++;
    } else if (!filter.keeps(result.event.courseContextId)) {
      countInto(report.otherCourses, result.event.courseContextId);
    } else {
      report.events++;
      if (batch.has(result.event.hash)) report.duplicates++;
      else batch.set(result.event.hash, result.event);
    }
  };
  // Line by line, unless the first line opens a JSON document spread over lines (pretty-printed xAPI).
  // Lines are cut from the raw bytes: a line naming none of the kept courses is never decoded whole,
  // only its course key is, to count it.
  let splitter: StatementSplitter | null = null;
  let decided = false;
  const handleLine = (bytes: Buffer) => {
    const lineNo = ++report.lines;
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    if (end === 0) return;
    const b = end === bytes.length ? bytes : bytes.subarray(0, end);
    if (!decided) {
      const first = b.toString('utf8');
      if (first.trim() === '') return;
      decided = true;
      if (startsDocument(first)) splitter = new StatementSplitter();
    }
    if (splitter) {
      for (const item of splitter.push(b.toString('utf8'), lineNo)) {
        let value: unknown;
        try {
          value = JSON.parse(item.text);
        } catch {
          malformed(item.line, 'not valid JSON');
          continue;
        }
        take(readValue(value, format, item.text), item.line);
      }
      return;
    }
    // The cheap test first: a line naming none of the kept courses is only counted, by its course.
    if (!filter.mayMentionBytes(b)) {
      const other = courseKeyInBytes(b);
      if (other) {
        countInto(report.otherCourses, other);
        return;
      }
    }
    const line = b.toString('utf8');
    if (line.trim() === '') return;
    for (const result of readLine(line, format)) take(result, lineNo);
  };
  let pending: Buffer[] = [];
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        if (pending.length > 0) {
          handleLine(Buffer.concat([...pending, chunk.subarray(start, nl)]));
          pending = [];
        } else handleLine(chunk.subarray(start, nl));
        start = nl + 1;
      }
      // The chunk's memory is read into again: keep a copy of the line it cuts.
      if (start < chunk.length) pending.push(Buffer.from(chunk.subarray(start)));
      if (batch.size >= batchSize) await flush();
    }
    if (pending.length > 0) handleLine(Buffer.concat(pending));
    const s = splitter as StatementSplitter | null;
    if (s) {
      for (const line of s.stray) malformed(line, 'text outside any JSON value');
      if (s.unfinished) malformed(report.lines, 'the JSON document ends before it is complete');
    }
  } catch (error) {
    // A truncated .gz (a file still being written, say): keep what was read, say where it stopped.
    if (pending.length > 0) handleLine(Buffer.concat(pending));
    malformed(report.lines + 1, `file unreadable from here: ${(error as Error).message}`);
  }
  await flush();
  await repo.finishImport(db, importId, {
    lines: report.lines,
    inserted: report.inserted,
    duplicates: report.duplicates,
    malformed: report.malformed,
    skipped: report.skipped.anonymous + report.skipped.noCourse,
    otherCourses: Object.fromEntries(report.otherCourses),
  });
  return report;
}

// ───────────────────────────── mapping ─────────────────────────────

export class MappingError extends Error {}

/** Maps an LMS username to a learner named by id, LTI `sub` or e-mail; refuses an unknown or ambiguous one. */
export async function mapLmsUser(db: Db, lmsUsername: string, learnerRef: string, source = 'cli'): Promise<string> {
  const username = lmsUsername.trim();
  if (!username) throw new MappingError('the LMS username is empty');
  const found = await repo.findLearners(db, learnerRef.trim());
  if (found.length === 0) throw new MappingError(`no learner "${learnerRef}" (give a learner id, LTI sub or e-mail)`);
  if (found.length > 1) throw new MappingError(`"${learnerRef}" names ${found.length} learners: give the learner id`);
  await repo.upsertMapping(db, username, found[0] as string, source);
  return found[0] as string;
}

export async function unmapLmsUser(db: Db, lmsUsername: string): Promise<boolean> {
  return repo.deleteMapping(db, lmsUsername.trim());
}

export interface MappingFileReport {
  mapped: number;
  errors: Array<{ line: number; reason: string }>;
}

/** A CSV of `lms_username,learner` pairs; every good line is applied, bad lines are listed. */
export async function importMappingFile(db: Db, path: string): Promise<MappingFileReport> {
  const { rows, errors } = parseMappingCsv(await readFile(path, 'utf8'));
  let mapped = 0;
  for (const row of rows) {
    try {
      await mapLmsUser(db, row.lmsUsername, row.learner, `csv:${basename(path)}`);
      mapped++;
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      errors.push({ line: row.line, reason: error.message });
    }
  }
  errors.sort((a, b) => a.line - b.line);
  return { mapped, errors };
}

// ───────────────────────────── matching and totals ─────────────────────────────

export interface Unmatched {
  lmsUsername: string;
  courseContextId: string;
  events: number;
  reason: 'unknown_user' | 'ambiguous_user' | 'unknown_course' | 'ambiguous_course';
}

export interface RecomputeReport {
  totals: number;
  estimatedSeconds: number;
  matchedUsers: number;
  /** LMS users (per course) whose events credit nobody until they are mapped. Never guessed. */
  unmatched: Unmatched[];
}

type UserResolution = { learnerId: string } | { reason: 'unknown_user' | 'ambiguous_user' };

/** Whether an LMS user name designates this learner: username, LTI `sub`, or the e-mail of a `mailto:` actor. */
function designates(name: string, learner: repo.LearnerIdentity): boolean {
  if (learner.username === name || learner.sub === name) return true;
  return (
    /^mailto:/i.test(name) && learner.email !== null && learner.email.toLowerCase() === name.slice(7).toLowerCase()
  );
}

/**
 * An explicit mapping wins; otherwise the one learner of the course's platform this name designates (by
 * username, by LTI `sub`, by e-mail for `mailto:`). Several learners designated is ambiguous, not guessed.
 */
function resolveUser(
  username: string,
  issuer: string,
  mappings: ReadonlyMap<string, string>,
  identities: readonly repo.LearnerIdentity[],
): UserResolution {
  const mapped = mappings.get(username);
  if (mapped) return { learnerId: mapped };
  const candidates = new Set(identities.filter((l) => l.issuer === issuer && designates(username, l)).map((l) => l.id));
  if (candidates.size === 1) return { learnerId: [...candidates][0] as string };
  return { reason: candidates.size === 0 ? 'unknown_user' : 'ambiguous_user' };
}

async function inToolIntervals(db: Db, learnerId: string, courseId: string): Promise<Interval[]> {
  const sessions = await getPresenceSessions(db, learnerId, courseId);
  return sessions.map((s) => ({ startMs: s.startMs, endMs: s.endMs }));
}

async function computeTotal(
  db: Db,
  learnerId: string,
  course: repo.CourseRow,
  usernames: readonly string[],
  params: LmsParams,
  inTool?: Interval[],
): Promise<repo.TotalRow | null> {
  const events = await repo.eventTimes(db, course.contextId, course.issuer, usernames);
  if (events.length === 0) return null;
  const estimate = estimateLmsTime(
    events.map((e) => e.ms),
    inTool ?? (await inToolIntervals(db, learnerId, course.id)),
    params,
  );
  if (!estimate) return null;
  return {
    learnerId,
    courseId: course.id,
    lmsUsernames: [...usernames].sort(),
    // An activity seen both in the tracking log and as its xAPI statement is one event.
    eventCount: distinctEventCount(events),
    sessionCount: estimate.sessions.length,
    sessionMs: estimate.sessionMs,
    overlapMs: estimate.overlapMs,
    estimatedMs: estimate.estimatedMs,
    estimatedSeconds: estimate.estimatedSeconds,
    firstAt: new Date(estimate.firstMs),
    lastAt: new Date(estimate.lastMs),
    algorithm: LMS_ALGORITHM,
    params: lmsParamsRecord(params),
  };
}

/**
 * Rebuilds every learner × course estimate from the stored events, the mappings and the tool's own
 * presence intervals, one learner at a time (only one learner's event instants are in memory at once).
 * Deterministic: the same events give the same totals.
 */
export async function recomputeLmsTotals(db: Db, params: LmsParams = LMS_SESSIONS_V1): Promise<RecomputeReport> {
  const groups = await repo.eventGroups(db);
  const courses = await repo.coursesByContext(db, [...new Set(groups.map((g) => g.courseContextId))]);
  const mappings = await repo.userMappings(db);
  const identities = await repo.learnersByIdentity(db, [...new Set(groups.map((g) => g.lmsUsername))]);
  const unmatched: Unmatched[] = [];
  const pairs = new Map<string, { learnerId: string; course: repo.CourseRow; usernames: Set<string> }>();
  for (const g of groups) {
    const candidates = courses.filter((c) => c.contextId === g.courseContextId && (!g.issuer || c.issuer === g.issuer));
    const base = { lmsUsername: g.lmsUsername, courseContextId: g.courseContextId, events: g.events };
    if (candidates.length !== 1) {
      unmatched.push({ ...base, reason: candidates.length === 0 ? 'unknown_course' : 'ambiguous_course' });
      continue;
    }
    const course = candidates[0] as repo.CourseRow;
    const user = resolveUser(g.lmsUsername, course.issuer, mappings, identities);
    if ('reason' in user) {
      unmatched.push({ ...base, reason: user.reason });
      continue;
    }
    const key = `${user.learnerId}|${course.id}`;
    const pair = pairs.get(key) ?? { learnerId: user.learnerId, course, usernames: new Set<string>() };
    pair.usernames.add(g.lmsUsername);
    pairs.set(key, pair);
  }
  const totals: repo.TotalRow[] = [];
  for (const pair of pairs.values()) {
    const total = await computeTotal(db, pair.learnerId, pair.course, [...pair.usernames], params);
    if (total) totals.push(total);
  }
  await repo.replaceTotals(db, totals);
  const matchedUsers = new Set([...pairs.values()].flatMap((p) => [...p.usernames])).size;
  return {
    totals: totals.length,
    estimatedSeconds: totals.reduce((s, t) => s + t.estimatedSeconds, 0),
    matchedUsers,
    unmatched,
  };
}

export interface UnmatchedSummary {
  /** Distinct LMS user names left unmatched (in any course). */
  users: number;
  events: number;
  byReason: Record<Unmatched['reason'], number>;
  /** The unmatched user × course pairs with the most events, first. */
  top: Unmatched[];
}

/** A short account of the unmatched users: counts, and the `limit` with the most events. */
export function summariseUnmatched(unmatched: readonly Unmatched[], limit = 20): UnmatchedSummary {
  const byReason = { unknown_user: 0, ambiguous_user: 0, unknown_course: 0, ambiguous_course: 0 };
  for (const u of unmatched) byReason[u.reason]++;
  const top = [...unmatched]
    .sort(
      (a, b) =>
        b.events - a.events ||
        a.lmsUsername.localeCompare(b.lmsUsername) ||
        a.courseContextId.localeCompare(b.courseContextId),
    )
    .slice(0, limit);
  return {
    users: new Set(unmatched.map((u) => u.lmsUsername)).size,
    events: unmatched.reduce((n, u) => n + u.events, 0),
    byReason,
    top,
  };
}

export interface LmsEstimateView {
  seconds: number;
  algorithm: string;
  params: Record<string, unknown>;
  sessionCount: number;
  eventCount: number;
  /** First and last LMS event of the estimate (certificates date the action with them too). */
  firstAt: Date;
  lastAt: Date;
}

/** The LMS user names that may designate this learner and do, on the course's platform. */
async function usernamesOf(db: Db, learner: repo.LearnerIdentity, course: repo.CourseRow): Promise<string[]> {
  const candidates = new Set(await repo.mappingsOfLearner(db, learner.id));
  if (learner.username) candidates.add(learner.username);
  candidates.add(learner.sub);
  if (learner.email) candidates.add(`mailto:${learner.email}`);
  const mappings = await repo.userMappings(db, [...candidates]);
  const identities = await repo.learnersByIdentity(db, [...candidates]);
  return [...candidates].filter((u) => {
    const r = resolveUser(u, course.issuer, mappings, identities);
    return 'learnerId' in r && r.learnerId === learner.id;
  });
}

/**
 * The estimate of one learner in one course, computed now from the events and the tool's current
 * presence (so it never counts time the tool measured since the last recompute), and stored. Null when
 * no LMS event is attributed to this learner in this course.
 */
export async function lmsEstimateFor(db: Db, learnerId: string, courseId: string): Promise<LmsEstimateView | null> {
  return (await estimateWithPresence(db, learnerId, courseId))?.view ?? null;
}

async function estimateWithPresence(
  db: Db,
  learnerId: string,
  courseId: string,
): Promise<{ view: LmsEstimateView | null; course: repo.CourseRow; inTool: Interval[] } | null> {
  const [course, learner] = await Promise.all([repo.courseById(db, courseId), repo.learnerById(db, learnerId)]);
  if (!course || !learner) return null;
  const inTool = await inToolIntervals(db, learnerId, courseId);
  const usernames = await usernamesOf(db, learner, course);
  const total = await computeTotal(db, learnerId, course, usernames, LMS_SESSIONS_V1, inTool);
  await repo.storeTotal(db, learnerId, courseId, total);
  const view = total
    ? {
        seconds: total.estimatedSeconds,
        algorithm: total.algorithm,
        params: total.params,
        sessionCount: total.sessionCount,
        eventCount: total.eventCount,
        firstAt: total.firstAt,
        lastAt: total.lastAt,
      }
    : null;
  return { view, course, inTool };
}

export interface CommonTrunkFigure {
  /** The estimate, or null when no event of this learner has arrived. */
  seconds: number | null;
  /**
   * The first day whose platform logs have not arrived while the learner was in the tool (French, e.g.
   * "3 mars 2026"), or null when nothing is awaited.
   */
  awaitingLogsOf: string | null;
}

/**
 * The common-trunk figure shown to the learner: the live estimate, and whether logs are still awaited.
 * Logs are awaited when this course's platform does send logs (events of the course have arrived, or an
 * LRS credential of its platform is active) and the learner was in the tool after the latest event
 * received for the course: the platform's log of that day has not been imported or pushed yet.
 */
export async function commonTrunkFigureFor(db: Db, learnerId: string, courseId: string): Promise<CommonTrunkFigure> {
  const found = await estimateWithPresence(db, learnerId, courseId);
  if (!found) return { seconds: null, awaitingLogsOf: null };
  const { view, course, inTool } = found;
  const last = await repo.lastCourseEvent(db, course.contextId, course.issuer);
  const sendsLogs = last !== null || (await repo.hasActiveCredential(db, course.issuer));
  const coveredUntil = last?.getTime() ?? Number.NEGATIVE_INFINITY;
  const uncovered = sendsLogs ? inTool.find((i) => i.endMs > coveredUntil) : undefined;
  return {
    seconds: view?.seconds ?? null,
    awaitingLogsOf: uncovered ? frenchDay(Math.max(uncovered.startMs, coveredUntil)) : null,
  };
}

/** "3 mars 2026": the Europe/Paris day of an instant, as the learner reads it (src/common/paris-time.ts). */
export function frenchDay(ms: number): string {
  return formatInstantDay(ms);
}
