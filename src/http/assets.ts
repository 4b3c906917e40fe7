import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
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
 */

export const STATIC_PREFIX = '/static/';

export interface Asset {
  /** File name under /static/ without the hash, e.g. `catalog.css`. */
  name: string;
  /** The content-hashed URL pages link. */
  url: string;
  /** The stable URL (ETag, short cache). */
  plainUrl: string;
  type: string;
  body: Buffer;
  hash: string;
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
    body,
    hash,
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
      const { asset, hashed } = entry;
      const etag = `"${asset.hash}"`;
      reply
        .header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'public, max-age=300')
        .header('etag', etag)
        .header('x-content-type-options', 'nosniff');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type(asset.type).send(asset.body);
    },
  );
}
