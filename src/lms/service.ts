import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Db } from '../db/index.js';
import { getPresenceSessions } from '../tracking/index.js';
import * as repo from './repository.js';
import {
  estimateLmsTime,
  type Interval,
  LMS_ALGORITHM,
  LMS_SESSIONS_V1,
  type LmsEvent,
  type LmsParams,
  lmsParamsRecord,
  parseMappingCsv,
  readLine,
} from './rules.js';
import type { LmsSource } from './tables.js';

// ───────────────────────────── import ─────────────────────────────

export interface ImportOptions {
  /** Forces the reading of every line; without it each object says what it is. */
  format?: LmsSource | null;
  /** The LMS the file comes from (its issuer URL), when several platforms share course ids. */
  issuer?: string | null;
  /** How many malformed lines are listed (all are counted). */
  maxErrors?: number;
  batchSize?: number;
}

export interface ImportReport {
  importId: string;
  file: string;
  lines: number;
  events: number;
  inserted: number;
  duplicates: number;
  malformed: number;
  skipped: { anonymous: number; noCourse: number };
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
 * Imports one tracking log or xAPI file (gzip recognised by its magic bytes), streamed line by line in
 * batches: memory does not grow with the file. Events already stored (same hash) are left as they are, so
 * importing a file again changes nothing. A bad line is counted and listed, never fatal.
 */
export async function importLmsFile(db: Db, path: string, options: ImportOptions = {}): Promise<ImportReport> {
  const format = options.format ?? null;
  const issuer = options.issuer ?? null;
  const maxErrors = options.maxErrors ?? 20;
  const batchSize = options.batchSize ?? 1000;
  const gzip = await isGzip(path); // also fails early, before any row, on a missing file
  let input: Readable = createReadStream(path);
  if (gzip) input = input.pipe(createGunzip());
  const importId = await repo.startImport(db, { fileName: basename(path), format: format ?? 'auto', issuer });
  const report: ImportReport = {
    importId,
    file: path,
    lines: 0,
    events: 0,
    inserted: 0,
    duplicates: 0,
    malformed: 0,
    skipped: { anonymous: 0, noCourse: 0 },
    errors: [],
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
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of lines) {
      report.lines++;
      if (line.trim() === '') continue;
      for (const result of readLine(line, format)) {
        if (result.kind === 'malformed') {
          report.malformed++;
          if (report.errors.length < maxErrors) report.errors.push({ line: report.lines, reason: result.reason });
        } else if (result.kind === 'skipped') {
          if (result.reason === 'anonymous') report.skipped.anonymous++;
          else report.skipped.noCourse++;
        } else {
          report.events++;
          if (batch.has(result.event.hash)) report.duplicates++;
          else batch.set(result.event.hash, result.event);
        }
      }
      if (batch.size >= batchSize) await flush();
    }
  } catch (error) {
    // A truncated .gz (a file still being written, say): keep what was read, say where it stopped.
    report.malformed++;
    if (report.errors.length < maxErrors) {
      report.errors.push({ line: report.lines + 1, reason: `file unreadable from here: ${(error as Error).message}` });
    }
  }
  await flush();
  await repo.finishImport(db, importId, {
    lines: report.lines,
    inserted: report.inserted,
    duplicates: report.duplicates,
    malformed: report.malformed,
    skipped: report.skipped.anonymous + report.skipped.noCourse,
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

/**
 * An explicit mapping wins; otherwise the one learner of the course's platform whose launch carried this
 * username. Several learners with one username (cannot happen with one platform) is ambiguous, not guessed.
 */
function resolveUser(
  username: string,
  issuer: string,
  mappings: ReadonlyMap<string, string>,
  byUsername: ReadonlyArray<{ id: string; issuer: string; username: string }>,
): UserResolution {
  const mapped = mappings.get(username);
  if (mapped) return { learnerId: mapped };
  const candidates = byUsername.filter((l) => l.username === username && l.issuer === issuer);
  if (candidates.length === 1) return { learnerId: (candidates[0] as { id: string }).id };
  return { reason: candidates.length === 0 ? 'unknown_user' : 'ambiguous_user' };
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
): Promise<repo.TotalRow | null> {
  const times = await repo.eventTimes(db, course.contextId, course.issuer, usernames);
  if (times.length === 0) return null;
  const estimate = estimateLmsTime(times, await inToolIntervals(db, learnerId, course.id), params);
  if (!estimate) return null;
  return {
    learnerId,
    courseId: course.id,
    lmsUsernames: [...usernames].sort(),
    eventCount: estimate.eventCount,
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
 * presence intervals. Deterministic: the same events give the same totals.
 */
export async function recomputeLmsTotals(db: Db, params: LmsParams = LMS_SESSIONS_V1): Promise<RecomputeReport> {
  const groups = await repo.eventGroups(db);
  const courses = await repo.coursesByContext(db, [...new Set(groups.map((g) => g.courseContextId))]);
  const mappings = await repo.userMappings(db);
  const byUsername = await repo.learnersByUsername(db, [...new Set(groups.map((g) => g.lmsUsername))]);
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
    const user = resolveUser(g.lmsUsername, course.issuer, mappings, byUsername);
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

/**
 * The estimate of one learner in one course, computed now from the events and the tool's current
 * presence (so it never counts time the tool measured since the last recompute), and stored. Null when
 * no LMS event is attributed to this learner in this course.
 */
export async function lmsEstimateFor(db: Db, learnerId: string, courseId: string): Promise<LmsEstimateView | null> {
  const [course, learner] = await Promise.all([repo.courseById(db, courseId), repo.learnerById(db, learnerId)]);
  if (!course || !learner) return null;
  const candidates = new Set(await repo.mappingsOfLearner(db, learnerId));
  if (learner.username) candidates.add(learner.username);
  if (candidates.size === 0) return null;
  const mappings = await repo.userMappings(db, [...candidates]);
  const byUsername = await repo.learnersByUsername(db, [...candidates]);
  const usernames = [...candidates].filter((u) => {
    const r = resolveUser(u, course.issuer, mappings, byUsername);
    return 'learnerId' in r && r.learnerId === learnerId;
  });
  const total = await computeTotal(db, learnerId, course, usernames, LMS_SESSIONS_V1);
  await repo.storeTotal(db, learnerId, courseId, total);
  if (!total) return null;
  return {
    seconds: total.estimatedSeconds,
    algorithm: total.algorithm,
    params: total.params,
    sessionCount: total.sessionCount,
    eventCount: total.eventCount,
    firstAt: total.firstAt,
    lastAt: total.lastAt,
  };
}
