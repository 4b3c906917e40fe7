import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotFoundError } from './errors.js';

/**
 * Static files of the pages (stylesheets, small scripts), served from memory under `/static/`:
 *
 * - at a content-hashed URL (`/static/catalog.3f2a1b0c9d8e7f60.css`), which never changes and is cached
 *   for good (`public, max-age=31536000, immutable`): the pages link this one;
 * - at the plain URL (`/static/catalog.css`), with an ETag and a 5-minute cache, for whoever needs a stable
 *   address.
 *
 * A file is declared once at module load (`defineAsset`; `stylesheet` and `script` in ./html.ts) next to the capability that
 * uses it (its `assets/` folder; the build copies those folders into dist). The one route is registered on the
 * root instance by `registerStaticAssets` (src/app.ts), so every capability's files are served.
 *
 * Learners open these pages on slow phones in an iframe: each page links **one** stylesheet, the base style
 * of `page()` and its capability's rules concatenated into one file (one request, cached across pages).
 *
 * Every file is compressed once per coding, the first time it is asked for in it (brotli and gzip at their best
 * levels; not at start, so that a process that serves none keeps neither the buffers nor the compressor's
 * memory), and sent in the best encoding the browser accepts (`Vary: Accept-Encoding`): a third of the bytes on a slow connection,
 * no CPU per request after the first. Only these public files are compressed; the pages themselves are not, since they carry the
 * session token next to text a request can influence (a compressed page would leak the token's bytes through
 * its length, the BREACH attack).
 */

export const STATIC_PREFIX = '/static/';

/** A static file as served: its type, the content hash its ETag carries, its body in each coding. */
export interface StaticFile {
  type: string;
  hash: string;
  /** The body in a given coding, compressed on first use (`precompress`). */
  encoded: (coding: Coding) => Buffer;
}

export interface Asset extends StaticFile {
  /** File name under /static/ without the hash, e.g. `catalog.css`. */
  name: string;
  /** The content-hashed URL pages link. */
  url: string;
  /** The stable URL (ETag, short cache). */
  plainUrl: string;
}

/** The content codings static files are sent in. */
export type Coding = 'identity' | 'br' | 'gzip';

/**
 * A static body's encodings, each compressed the first time it is asked for and kept: brotli (quality 11),
 * gzip (level 9).
 */
export function precompress(body: Buffer | string): (coding: Coding) => Buffer {
  const identity = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const made: Partial<Record<Coding, Buffer>> = { identity };
  return (coding) => {
    made[coding] ??= encode(identity, coding);
    return made[coding];
  };
}

function encode(identity: Buffer, coding: Coding): Buffer {
  if (coding === 'gzip') return gzipSync(identity, { level: 9 });
  if (coding === 'br') {
    return brotliCompressSync(identity, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: identity.length,
      },
    });
  }
  return identity;
}

/** Whether the Accept-Encoding header accepts `coding` (RFC 9110 §12.5.3: listed, or `*`, without `q=0`). */
export function acceptsEncoding(header: string | undefined, coding: 'br' | 'gzip'): boolean {
  if (!header) return false;
  let star = false;
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const accepted = !q || Number(q.slice(2)) > 0;
    if (name.trim() === coding) return accepted;
    if (name.trim() === '*') star = accepted;
  }
  return star;
}

/**
 * Answers a request for a static file: cached for good at a versioned URL (`immutable`), for 5 minutes with its
 * ETag otherwise; 304 when the browser holds this version; else the body in the best encoding the request
 * accepts (and `Vary: Accept-Encoding` on both, so that a cache keeps the encodings apart).
 */
export function sendStaticFile(request: FastifyRequest, reply: FastifyReply, file: StaticFile, immutable: boolean) {
  const etag = `"${file.hash}"`;
  reply
    .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'public, max-age=300')
    .header('etag', etag)
    .header('x-content-type-options', 'nosniff')
    .header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  const header = request.headers['accept-encoding'];
  const coding: Coding = acceptsEncoding(header, 'br') ? 'br' : acceptsEncoding(header, 'gzip') ? 'gzip' : 'identity';
  reply.type(file.type);
  if (coding !== 'identity') reply.header('content-encoding', coding);
  return reply.send(file.encoded(coding));
}

const TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
};

const byFile = new Map<string, { asset: Asset; hashed: boolean }>();

/** Declares a static file made of `sources` concatenated (read once, now). Names are unique. */
export function defineAsset(name: string, sources: readonly URL[]): Asset {
  const match = /^([a-z0-9-]+)\.(css|js)$/.exec(name);
  if (!match) throw new Error(`asset name ${name}: expected <name>.css or <name>.js`);
  const [, stem, ext] = match as unknown as [string, string, string];
  if (byFile.has(name)) throw new Error(`asset ${name} declared twice`);
  const text = sources.map((source) => readFileSync(source, 'utf8')).join('\n');
  const body = Buffer.from(ext === 'css' ? minifyCss(text) : text);
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const asset: Asset = {
    name,
    url: `${STATIC_PREFIX}${stem}.${hash}.${ext}`,
    plainUrl: `${STATIC_PREFIX}${name}`,
    type: TYPES[ext] as string,
    hash,
    encoded: precompress(body),
  };
  byFile.set(name, { asset, hashed: false });
  byFile.set(`${stem}.${hash}.${ext}`, { asset, hashed: true });
  return asset;
}

/**
 * The stylesheets are written formatted (the linter's style) and served compact: comments and the white space
 * around braces, semicolons, colons of declarations and commas go (none of our rules uses a string or a
 * selector where that white space would matter; `a :hover` would, and is not written).
 */
export function minifyCss(css: string): string {
  return css
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\s+/g, ' ')
    .replace(/\s*([{};,])\s*/g, '$1')
    .replace(/:\s+/g, ':')
    .replace(/;}/g, '}')
    .trim();
}

/** Serves every declared asset (GET /static/:file); call once on the root instance. */
export function registerStaticAssets(app: FastifyInstance): void {
  app.get<{ Params: { file: string } }>(
    `${STATIC_PREFIX}:file`,
    {
      schema: {
        params: Type.Object({ file: Type.String({ maxLength: 100 }) }),
      },
    },
    async (request, reply) => {
      const entry = byFile.get(request.params.file);
      if (!entry) throw new NotFoundError();
      return sendStaticFile(request, reply, entry.asset, entry.hashed);
    },
  );
}
