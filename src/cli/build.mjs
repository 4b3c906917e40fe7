#!/usr/bin/env node
// Builds the production output: `tsc -p tsconfig.build.json` (src/ and migrations/ to <out>/src and
// <out>/migrations, same layout), then copies the files the code reads next to itself (tracker.js, the
// capabilities' stylesheets and page scripts in their assets/ folders, the certificate fonts) into <out>/src. The service then runs with plain
// `node dist/src/server.js`.
//
//   node src/cli/build.mjs                 always rebuild dist/
//   node src/cli/build.mjs --if-stale      rebuild only when a source is newer than the last build, or a
//                                          source was added or removed (what `npm start` runs first)
//   node src/cli/build.mjs --out <dir>     build elsewhere (a directory inside the project, so that the
//                                          output finds node_modules and package.json's "type": "module")
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const outArg = args.indexOf('--out');
const out = resolve(root, outArg >= 0 ? args[outArg + 1] : 'dist');
const stampFile = join(out, '.build-stamp.json');

/** Every file the build reads: sources, copied assets, and the compiler settings. */
function inputs() {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else files.push(rel);
    }
  };
  walk('src');
  walk('migrations');
  files.push('tsconfig.json', 'tsconfig.build.json', 'package.json');
  return files.sort();
}

function isStale(files) {
  if (!existsSync(stampFile)) return 'no previous build';
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    return 'unreadable build stamp';
  }
  if (JSON.stringify(stamp.files) !== JSON.stringify(files)) return 'sources added or removed';
  const newer = files.find((f) => statSync(join(root, f)).mtimeMs > stamp.builtAt);
  return newer ? `${newer} changed` : null;
}

const files = inputs();
if (args.includes('--if-stale')) {
  const reason = isStale(files);
  if (!reason) process.exit(0);
  process.stderr.write(`building ${relative(root, out) || '.'}/ (${reason})\n`);
}

let tsc;
try {
  tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  process.stderr.write('cannot build: typescript is not installed (run `npm ci`, with dev dependencies)\n');
  process.exit(1);
}
const builtAt = Date.now();
rmSync(out, { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out], {
  cwd: root,
  stdio: 'inherit',
});
if (result.status !== 0) {
  process.stderr.write(`build failed: tsc exited with ${result.status ?? result.signal}\n`);
  process.exit(1);
}

// Files read at run time relative to the module that reads them (`new URL('./…', import.meta.url)`).
for (const file of files) {
  if (!file.startsWith('src/') || file.endsWith('.ts') || file.endsWith('.md') || file === 'src/cli/build.mjs')
    continue;
  mkdirSync(dirname(join(out, file)), { recursive: true });
  cpSync(join(root, file), join(out, file));
}
writeFileSync(stampFile, `${JSON.stringify({ builtAt, files })}\n`);
