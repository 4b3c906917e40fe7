import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotFoundError, UnauthorizedError } from '../http/errors.js';
import { readSessionCookie } from './auth.js';
import * as repo from './repository.js';
import { type Principal, sha256 } from './rules.js';
import { resolveSession } from './service.js';

/**
 * Every download is written to the audit log before its first byte leaves (who, what filter, when),
 * and completed with its row count at the end — or marked failed if the stream breaks, so an
 * interrupted download is still on record.
 *
 * The same row carries the progress of a long export. The browser follows it with the ticket it chose;
 * the instance serving the download also keeps it in memory, because on the embedded database the one
 * connection is held by the export's cursor until the end (a progress write would wait for it).
 */
export interface DownloadAudit {
  readonly id: string;
  /** The total the progress counts towards, when it becomes known (counted beside the download). */
  expect(total: number): Promise<void>;
  progress(rows: number): void;
  finish(rows: number): Promise<void>;
  fail(rows: number, reason: string): Promise<void>;
}

export interface DownloadProgress {
  status: 'started' | 'completed' | 'failed';
  /** While started: units done (rows written, or learners read); once finished: rows written. */
  rows: number;
  expectedRows: number | null;
  unit: ProgressUnit;
}

/** What progress counts while the export runs: file rows, or source learners (one learner → many rows). */
export type ProgressUnit = 'rows' | 'learners';

interface ProgressEntry extends DownloadProgress {
  userId: string;
  sessionHash: string | null;
}

const TICKET = /^[A-Za-z0-9_-]{16,64}$/;
const DB_PROGRESS_EVERY_MS = 1000;
const KEEP_FINISHED_MS = 10 * 60 * 1000;
const trackers = new WeakMap<object, Map<string, ProgressEntry>>();

function trackerOf(app: FastifyInstance): Map<string, ProgressEntry> {
  let map = trackers.get(app.db);
  if (!map) {
    map = new Map();
    trackers.set(app.db, map);
  }
  return map;
}

export function isProgressTicket(ticket: unknown): ticket is string {
  return typeof ticket === 'string' && TICKET.test(ticket);
}

export async function startDownloadAudit(
  app: FastifyInstance,
  principal: Principal,
  details: Record<string, unknown>,
  options: { ticket?: string | undefined; expectedRows?: number | null; unit?: ProgressUnit } = {},
): Promise<DownloadAudit> {
  const unit = options.unit ?? 'rows';
  const ticket = isProgressTicket(options.ticket) ? options.ticket : undefined;
  const expectedRows = options.expectedRows ?? null;
  const id = await repo.insertAudit(app.db, {
    actorUserId: principal.userId,
    actorUsername: principal.username,
    actorRole: principal.role,
    actorFundSlug: principal.fundSlug,
    via: principal.via,
    tokenId: principal.tokenId,
    action: 'export.download',
    details: { ...details, progressUnit: unit },
    status: 'started',
    rowCount: 0,
    expectedRows,
    progressTicket: ticket ?? null,
  });
  const tracker = trackerOf(app);
  const entry: ProgressEntry | undefined = ticket
    ? { status: 'started', rows: 0, expectedRows, unit, userId: principal.userId, sessionHash: principal.sessionHash }
    : undefined;
  if (ticket && entry) tracker.set(ticket, entry);

  const writeProgress = app.dbKind === 'pg' && ticket !== undefined;
  let lastWrite = Date.now();
  let inFlight: Promise<void> | undefined;
  let ended = false;

  const end = async (status: 'completed' | 'failed', rows: number, extra?: Record<string, unknown>) => {
    if (ended) return;
    ended = true;
    if (entry) {
      entry.status = status;
      entry.rows = rows;
      setTimeout(() => tracker.delete(ticket as string), KEEP_FINISHED_MS).unref();
    }
    await inFlight;
    await repo.finishAudit(app.db, id, status, rows, extra);
  };

  return {
    id,
    async expect(total) {
      if (entry) entry.expectedRows = total;
      if (app.dbKind === 'pg') await repo.setAuditExpected(app.db, id, total);
    },
    progress(rows) {
      if (entry) entry.rows = rows;
      if (!writeProgress || inFlight || Date.now() - lastWrite < DB_PROGRESS_EVERY_MS) return;
      lastWrite = Date.now();
      inFlight = repo
        .updateAuditProgress(app.db, id, rows)
        .catch((err: unknown) => app.log.warn({ err }, 'export progress not recorded'))
        .finally(() => {
          inFlight = undefined;
        });
    },
    finish: (rows) => end('completed', rows),
    fail: (rows, reason) => end('failed', rows, { failure: reason }),
  };
}

/**
 * Progress of one of the caller's own downloads. A browser polling the instance that serves its
 * download is answered from memory (the session cookie is checked against the one that started it,
 * without touching the database); elsewhere the session and the audit row are read.
 */
export async function readDownloadProgress(request: FastifyRequest, ticket: string): Promise<DownloadProgress> {
  if (!isProgressTicket(ticket)) throw new NotFoundError('unknown_download');
  const cookie = readSessionCookie(request);
  const entry = trackerOf(request.server).get(ticket);
  if (entry && cookie && entry.sessionHash !== null && sha256(cookie) === entry.sessionHash) return publicView(entry);
  const principal = await resolveSession(request.server.db, cookie);
  if (!principal) throw new UnauthorizedError('not_signed_in', 'Connectez-vous pour continuer.');
  if (entry && entry.userId === principal.userId) return publicView(entry);
  const row = await repo.findAuditByTicket(request.server.db, principal.userId, ticket);
  if (!row) throw new NotFoundError('unknown_download');
  const status = row.status === 'completed' || row.status === 'failed' ? row.status : 'started';
  const unit = (row.details as { progressUnit?: ProgressUnit }).progressUnit === 'learners' ? 'learners' : 'rows';
  return {
    status,
    rows: row.row_count ?? 0,
    expectedRows: row.expected_rows,
    unit: status === 'started' ? unit : 'rows',
  };
}

function publicView(entry: ProgressEntry): DownloadProgress {
  return {
    status: entry.status,
    rows: entry.rows,
    expectedRows: entry.expectedRows,
    unit: entry.status === 'started' ? entry.unit : 'rows',
  };
}
