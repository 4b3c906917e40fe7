import { randomUUID } from 'node:crypto';
import type { FastifyServerOptions } from 'fastify';
import pino from 'pino';
import type { Config } from '../config/index.js';

/** Paths pino replaces with "[redacted]": credentials, LTI tokens, personal data. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.authorization',
  '*.cookie',
  '*.id_token',
  '*.idToken',
  '*.JWT',
  '*.jwt',
  '*.state',
  '*.nonce',
  '*.token',
  '*.accessToken',
  '*.access_token',
  '*.client_assertion',
  '*.password',
  '*.secret',
  '*.email',
  '*.name',
  '*.given_name',
  '*.family_name',
  '*.login_hint',
  '*.lti_message_hint',
];

/** pino's options for the service; `stream` is where lines go (pino's default, standard output, without it). */
export function loggerOptions(
  config: Pick<Config, 'logLevel'>,
  stream?: pino.DestinationStream,
): FastifyServerOptions['logger'] {
  return {
    ...(stream ? { stream } : {}),
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      // The query string can carry login_hint (the learner's sub) and hints: log the path only.
      req: (req: { method: string; url: string; id: string }) => ({
        id: req.id,
        method: req.method,
        path: req.url.split('?')[0],
      }),
    },
  };
}

/** Bytes of log lines held before they are written (one write for about ten launch lines). */
export const LOG_BUFFER_BYTES = 4096;
/** Longest a held line waits before it is written, even on an idle service. */
export const LOG_FLUSH_MS = 500;

/**
 * The service's log destination: standard output, written asynchronously and in chunks. pino's default
 * writes every line on its own asynchronous write, each a hop through libuv's thread pool; on the launch path
 * that hop cost about as much CPU as the line itself. Lines are held until LOG_BUFFER_BYTES have gathered or
 * LOG_FLUSH_MS have passed, and whatever is held is written when the process exits (pino flushes its
 * destination on `exit`, a crash included); only a process killed outright (SIGKILL, out of memory) loses
 * what it held, at most LOG_FLUSH_MS of lines.
 */
export function logDestination(): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
}

export function requestIdOptions(): Pick<FastifyServerOptions, 'genReqId'> {
  return { genReqId: () => randomUUID() };
}
