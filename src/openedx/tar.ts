import { gzipSync } from 'node:zlib';

/**
 * A minimal POSIX ustar writer for regular files, with fixed owner, mode and modification time, so the
 * same files give the same bytes; gzip without a file name and with mtime 0 (Node's zlib header), so the
 * `.tar.gz` is byte-for-byte reproducible. Directories are implied by the paths (tar and Studio create them).
 */
export interface TarFile {
  /** Relative path with forward slashes, at most 100 bytes (no prefix field needed for OLX names). */
  path: string;
  content: Buffer | string;
}

/** 2026-01-01T00:00:00Z: a fixed mtime, later than 1970 so that no extractor warns about it. */
export const FIXED_MTIME = 1_767_225_600;

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 octal digits followed by NUL.
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(path: string, size: number, mtime: number): Buffer {
  const name = Buffer.from(path, 'utf8');
  if (name.length > 100) throw new Error(`tar path longer than 100 bytes: ${path}`);
  const h = Buffer.alloc(BLOCK, 0);
  name.copy(h, 0);
  h.write(octal(0o644, 8), 100, 'ascii'); // mode
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum placeholder: 8 spaces
  h.write('0', 156, 'ascii'); // typeflag: regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii'); // uname
  h.write('root', 297, 'ascii'); // gname
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** The tar archive of `files`, sorted by path (the order of the input does not matter). */
export function tarBuffer(files: readonly TarFile[], mtime = FIXED_MTIME): Buffer {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  for (const f of sorted) {
    if (seen.has(f.path)) throw new Error(`duplicate tar path: ${f.path}`);
    seen.add(f.path);
    const body = typeof f.content === 'string' ? Buffer.from(f.content, 'utf8') : f.content;
    parts.push(header(f.path, body.length, mtime), body);
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0)); // end of archive
  return Buffer.concat(parts);
}

/** `tarBuffer` gzipped; Node writes a gzip header with mtime 0 and no name, so the bytes are stable. */
export function tarGz(files: readonly TarFile[]): Buffer {
  return gzipSync(tarBuffer(files), { level: 9 });
}
