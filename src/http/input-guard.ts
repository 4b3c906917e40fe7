import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError } from './errors.js';

/**
 * NUL (U+0000) and lone UTF-16 surrogates cannot be stored as PostgreSQL text ("invalid byte sequence for
 * encoding UTF8: 0x00") nor encoded as UTF-8: a request carrying one anywhere in its query, body or path
 * parameters is refused here, once for every route, before validation and before any SQL, with a 400
 * (a French page or problem details, by the shared error handler; logged at info, never as an error).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isEncodableText(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** The path (`body.a[0].b`) of the first string or key that cannot be stored, or null. */
export function findUnencodable(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return isEncodableText(value) ? null : path;
  if (value === null || typeof value !== 'object' || depth > 32) return null;
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnencodable(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (!isEncodableText(key)) return `${path} (a key)`;
    const found = findUnencodable(inner, `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return null;
}

export function assertEncodableRequest(request: FastifyRequest): void {
  const found =
    findUnencodable(request.params, 'params') ??
    findUnencodable(request.query, 'query') ??
    findUnencodable(request.body, 'body');
  if (found) {
    throw new BadRequestError(
      'unencodable_input',
      'Certaines informations envoyées contiennent des caractères invalides.',
      `NUL byte or lone surrogate in ${found}`,
    );
  }
}

/** Registers the guard on the root instance, so that every route of every plugin gets it. */
export function registerInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    assertEncodableRequest(request);
  });
}
