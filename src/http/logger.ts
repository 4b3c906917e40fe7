import { randomUUID } from 'node:crypto';
import type { FastifyServerOptions } from 'fastify';
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

export function loggerOptions(config: Pick<Config, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
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

export function requestIdOptions(): Pick<FastifyServerOptions, 'genReqId'> {
  return { genReqId: () => randomUUID() };
}
