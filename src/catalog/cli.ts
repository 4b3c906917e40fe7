import { readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { loadConfig } from '../config/index.js';
import { createDatabase, migrateToLatest, pgliteDirFor } from '../db/index.js';
import { contentFingerprint, formatProblem, loadContent } from './content.js';
import { ContentImportError, importContent, summarizeImport } from './importer.js';

const USAGE = `Usage: npm run content -- <check|import> [--dir <content directory>]

  check    validate funds.json, track.json and every module package; problems as file:line:column
  import   check, then load new versions into the database (CONTENT_DIR / DATABASE_URL)
`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** `npm run content -- check|import`: returns the exit code (0 ok, 1 problems, 2 usage). */
export async function runContentCommand(args: string[], io: Io = stdio): Promise<number> {
  const [action, ...rest] = args;
  let dir: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--dir' && rest[i + 1]) dir = rest[++i];
    else {
      io.err(`Unknown argument "${rest[i]}".\n${USAGE}`);
      return 2;
    }
  }
  if (action !== 'check' && action !== 'import') {
    io.err(USAGE);
    return 2;
  }
  const contentDir = dir ? resolve(dir) : loadConfig(process.env, { persistSecret: action === 'import' }).contentDir;
  const shown = relative(process.cwd(), contentDir) || '.';
  const base = shown === '.' ? '' : `${shown}/`;

  const loaded = await loadContent(contentDir);
  for (const p of loaded.problems) (p.severity === 'error' ? io.err : io.out)(`${formatProblem(p, base)}\n`);
  const errors = loaded.problems.filter((p) => p.severity === 'error').length;
  const warnings = loaded.problems.length - errors;
  if (!loaded.content) {
    io.err(`${shown}: ${errors} error(s), ${warnings} warning(s). Nothing imported.\n`);
    return 1;
  }
  const c = loaded.content;
  io.out(
    `${shown}: valid — ${c.funds.funds.length} funds (v${c.funds.version}), ${c.funds.funds.reduce((n, f) => n + f.branches.length, 0)} branches, ${c.tracks.length} track(s), ${c.modules.length} modules; ${warnings} warning(s).\n`,
  );
  if (action === 'check') return 0;

  const config = loadConfig({ ...process.env, CONTENT_DIR: contentDir }, { persistSecret: true });
  const handle = await createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) });
  try {
    await migrateToLatest(handle.db);
    const report = await importContent(handle.db, c, { fingerprint: await contentFingerprint(contentDir) });
    io.out(`Imported: ${summarizeImport(report)}.\n`);
    return 0;
  } catch (error) {
    if (error instanceof ContentImportError) {
      for (const p of error.problems) {
        io.err(`${base}${p.file}:${await versionLine(join(contentDir, p.file))}: error: ${p.message}\n`);
      }
      io.err('Import refused: nothing was changed in the database.\n');
      return 1;
    }
    throw error;
  } finally {
    await handle.close();
  }
}

/** Conflicts with the database are about the "version" field: point at its line. */
async function versionLine(file: string): Promise<number> {
  try {
    const lines = (await readFile(file, 'utf8')).split('\n');
    const i = lines.findIndex((l) => /^\s*"?version"?\s*:/.test(l));
    return i < 0 ? 1 : i + 1;
  } catch {
    return 1;
  }
}
