import { readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { CliContext } from '../common/cli-context.js';
import { contentFingerprint, formatProblem, loadContent } from './content.js';
import { fixYamlTypography } from './fix-typography.js';
import { ContentImportError, importContent, summarizeImport } from './importer.js';

const USAGE = `Usage: npm run content -- <check|import> [--dir <content directory>] [--times]
       npm run content -- fix-typography <file.yaml>…

  check           validate funds.json, track.json, the glossary and every module package; problems as
                  file:line:column (--times: print each module's time estimate)
  import          check, then load new versions into the database (CONTENT_DIR / DATABASE_URL)
  fix-typography  rewrite the text values of YAML files in the French house style, keeping their layout
`;

/** The CLI context (src/cli/context.ts); `check --dir` and `fix-typography` need only its output. */
type Io = Pick<CliContext, 'out' | 'err'> & Partial<Pick<CliContext, 'config' | 'db'>>;

function from<T>(part: (() => T) | undefined, what: string): T {
  if (!part) throw new Error(`content: this action needs the ${what} of the CLI context`);
  return part();
}

/** `npm run content -- check|import`: returns the exit code (0 ok, 1 problems, 2 usage). */
export async function runContentCommand(args: string[], io: Io): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'fix-typography') return fixTypographyCommand(rest, io);
  let dir: string | undefined;
  let times = false;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--dir' && rest[i + 1]) dir = rest[++i];
    else if (rest[i] === '--times' && action === 'check') times = true;
    else {
      io.err(`Unknown argument "${rest[i]}".\n${USAGE}`);
      return 2;
    }
  }
  if (action !== 'check' && action !== 'import') {
    io.err(USAGE);
    return 2;
  }
  const contentDir = dir ? resolve(dir) : from(io.config, 'configuration').contentDir;
  const shown = relative(process.cwd(), contentDir) || '.';
  const base = shown === '.' ? '' : `${shown}/`;

  const loaded = await loadContent(contentDir);
  for (const p of loaded.problems) (p.severity === 'error' ? io.err : io.out)(`${formatProblem(p, base)}\n`);
  const errors = loaded.problems.filter((p) => p.severity === 'error').length;
  const warnings = loaded.problems.length - errors;
  if (times) {
    io.out('Time estimates (words read / 200 + words spoken / 150 + activity minutes):\n');
    for (const e of [...loaded.estimates].sort((a, b) => a.file.localeCompare(b.file))) {
      const share = Math.round((e.minutes / e.nominalMinutes) * 100);
      io.out(
        `${base}${e.file}: ${e.minutes} min for ${e.nominalMinutes} planned (${share} %): ${e.wordsRead} words read, ${e.wordsSpoken} spoken, activity ${e.activityMinutes} min\n`,
      );
    }
  }
  if (!loaded.content || errors > 0) {
    io.err(`${shown}: ${errors} error(s), ${warnings} warning(s). Nothing imported.\n`);
    return 1;
  }
  const c = loaded.content;
  io.out(
    `${shown}: valid — ${c.funds.funds.length} funds (v${c.funds.version}), ${c.funds.funds.reduce((n, f) => n + f.branches.length, 0)} branches, ${c.tracks.length} track(s), ${c.modules.length} modules; ${warnings} warning(s).\n`,
  );
  if (action === 'check') return 0;

  const db = await from(io.db, 'database');
  try {
    const report = await importContent(db, c, { fingerprint: await contentFingerprint(contentDir) });
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

/**
 * `content fix-typography <files…>`: every learner-facing string value of each YAML file goes through
 * fixTypography; keys, comments, quoting style and line layout stay as they were (the yaml Document API
 * rewrites only the scalars whose value changed).
 */
async function fixTypographyCommand(files: string[], io: Io): Promise<number> {
  if (files.length === 0 || files.some((f) => f.startsWith('--'))) {
    io.err(USAGE);
    return 2;
  }
  let failed = 0;
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      io.err(`${file}: cannot be read: ${(error as Error).message}\n`);
      failed++;
      continue;
    }
    const result = fixYamlTypography(text);
    if (!result.ok) {
      io.err(`${file}: not rewritten: ${result.error}\n`);
      failed++;
      continue;
    }
    if (result.changed === 0) {
      io.out(`${file}: already in the house style\n`);
      continue;
    }
    await writeFile(file, result.text);
    io.out(`${file}: ${result.changed} text(s) fixed\n`);
  }
  return failed > 0 ? 1 : 0;
}
