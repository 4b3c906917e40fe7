#!/usr/bin/env node
// The one entry point of the command line, in development and in production: `npm run cli -- <command>`
// (and `npm run migrate`, `npm run content`) run `node src/cli/run.mjs <command> …`.
//
// - Where TypeScript is installed (a development checkout), it first rebuilds dist/ when a source is newer
//   than the last build (`build.mjs --if-stale`, as `npm start` does), so the CLI never runs stale code.
// - Where it is not (the production image: production dependencies only), it runs the compiled build as is.
// Either way the command runs from dist/src/cli/index.js with plain node: no TypeScript runner at run time.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = join(root, 'dist', 'src', 'cli', 'index.js');

let canBuild = true;
try {
  createRequire(import.meta.url).resolve('typescript/package.json');
} catch {
  canBuild = false;
}
const builder = join(root, 'src', 'cli', 'build.mjs');
if (canBuild && existsSync(builder)) {
  const build = spawnSync(process.execPath, [builder, '--if-stale'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
if (!existsSync(entry)) {
  process.stderr.write('No compiled build in dist/: run `npm run build` (needs the dev dependencies).\n');
  process.exit(1);
}
// The compiled CLI reads its command from process.argv, as when started directly.
process.argv = [process.argv[0], entry, ...process.argv.slice(2)];
await import(pathToFileURL(entry).href);
