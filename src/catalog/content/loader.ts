import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { checkModules, checkTextStyle, type ModuleEstimate } from '../editorial.js';
import { COMMON_FUND, type ContentSet, type GlossaryEntry, type ModuleManifest, type TrackDef } from '../model.js';
import { namedThemes, readFunds, readTrack } from './funds-track.js';
import { GLOSSARY_DIR, mergeGlossary, readGlossary } from './glossary.js';
import { contentHash, trackHash } from './hash.js';
import { readModule } from './module.js';
import { checkProgramme, type Slot } from './programme.js';
import { type ContentProblem, SourceFile } from './source.js';

/**
 * Reads and validates a content directory (content/README.md): each file through its schema pass and
 * its own rules, then the rules between files (module ids, variants, the programme's structure and
 * duration, the glossary, the editorial checks of editorial.ts).
 */

export interface ContentLoad {
  problems: ContentProblem[];
  /** Present when there is no format error (warnings and editorial errors allowed). */
  content: ContentSet | null;
  /** Each module's time estimate (the time model of docs/content-style.md), in minutes. */
  estimates: ModuleEstimate[];
}

/** module.yaml, module-N.yaml (position N ≥ 2), and their branch variants module[-N].<variant>.yaml. */
const MODULE_FILE = /^module(?:-(\d+))?(?:\.([a-z0-9]+(?:-[a-z0-9]+)*))?\.yaml$/;

async function listDir(dir: string): Promise<{ name: string; isDir: boolean }[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => !e.name.startsWith('.'))
    .map((e) => ({ name: e.name, isDir: e.isDirectory() }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** What the editorial checks need of each module file. */
export interface LoadedModule {
  src: SourceFile;
  manifest: ModuleManifest;
  track: TrackDef | null;
  position: number;
  isVariant: boolean;
}

/** Loads and validates every file of a content directory; never throws for content problems. */
export async function loadContent(contentDir: string, options: { today?: Date } = {}): Promise<ContentLoad> {
  const problems: ContentProblem[] = [];
  const rel = (abs: string) => relative(contentDir, abs).split(sep).join('/');
  const fileProblem = (
    file: string,
    message: string,
    severity: ContentProblem['severity'] = 'error',
    editorial = false,
  ) => problems.push({ file, line: 1, column: 1, severity, message, ...(editorial ? { editorial: true } : {}) });

  try {
    if (!(await stat(contentDir)).isDirectory()) throw new Error('not a directory');
  } catch {
    fileProblem('.', `content directory ${contentDir} does not exist`);
    return { problems, content: null, estimates: [] };
  }

  const read = async (abs: string): Promise<SourceFile | null> => {
    try {
      return new SourceFile(rel(abs), await readFile(abs, 'utf8'), problems);
    } catch (error) {
      fileProblem(rel(abs), `cannot be read: ${(error as Error).message}`);
      return null;
    }
  };

  const fundsPath = join(contentDir, 'funds.json');
  const fundsSrc = await read(fundsPath);
  const funds = fundsSrc ? readFunds(fundsSrc) : null;

  const glossaryFiles: { src: SourceFile; area: string; entries: GlossaryEntry[] }[] = [];
  const tracks: ContentSet['tracks'] = [];
  const modules: ContentSet['modules'] = [];
  const loaded: LoadedModule[] = [];
  const moduleIds = new Map<string, string>();
  /** (track, fund, theme, position) → the default module and the variants, for coverage and overlap checks. */
  const slots = new Map<string, Slot>();

  for (const top of await listDir(contentDir)) {
    if (!top.isDir) {
      if (top.name !== 'funds.json' && top.name !== 'README.md')
        fileProblem(top.name, 'unexpected file (ignored)', 'warning');
      continue;
    }
    if (top.name === GLOSSARY_DIR) {
      // common.yaml first: general terms belong there, so a fund file repeating one is the one reported.
      const entries = (await listDir(join(contentDir, top.name))).sort(
        (a, b) => Number(b.name === 'common.yaml') - Number(a.name === 'common.yaml'),
      );
      for (const g of entries) {
        const abs = join(contentDir, top.name, g.name);
        const m = /^([a-z0-9-]+)\.yaml$/.exec(g.name);
        if (g.isDir || !m) {
          if (g.name !== 'README.md') fileProblem(rel(abs), 'unexpected file: glossary files are named <area>.yaml');
          continue;
        }
        const area = m[1] as string;
        if (area !== COMMON_FUND && funds && !funds.funds.some((f) => f.slug === area)) {
          fileProblem(rel(abs), `"${area}" is neither "common" nor a fund slug of funds.json`);
        }
        const src = await read(abs);
        if (src) {
          glossaryFiles.push({ src, area, entries: readGlossary(src) });
          // Definitions are shown to learners: same typography and spellings as the modules.
          if (src.ok) checkTextStyle(src);
        }
      }
      continue;
    }
    const trackDir = join(contentDir, top.name);
    const trackFile = join(trackDir, 'track.json');
    if (!(await stat(trackFile).catch(() => null))) {
      fileProblem(`${top.name}/track.json`, `missing: every track directory (here "${top.name}") has a track.json`);
      continue;
    }
    const trackSrc = await read(trackFile);
    if (!trackSrc) continue;
    const track = readTrack(trackSrc, top.name);
    if (track) tracks.push({ track, hash: trackHash(track), path: rel(join(trackDir, 'track.json')) });
    const trackModules: LoadedModule[] = [];

    for (const fundEntry of await listDir(trackDir)) {
      if (!fundEntry.isDir) {
        if (fundEntry.name !== 'track.json' && fundEntry.name !== 'README.md') {
          fileProblem(rel(join(trackDir, fundEntry.name)), 'unexpected file (ignored)', 'warning');
        }
        continue;
      }
      const fundDir = fundEntry.name;
      const fundPath = join(trackDir, fundDir);
      if (fundDir !== COMMON_FUND && funds && !funds.funds.some((f) => f.slug === fundDir)) {
        fileProblem(rel(fundPath), `directory "${fundDir}" is neither "common" nor a fund slug of funds.json`);
      }
      for (const themeEntry of await listDir(fundPath)) {
        const themePath = join(fundPath, themeEntry.name);
        if (!themeEntry.isDir) {
          fileProblem(rel(themePath), 'unexpected file: modules live in <fund>/<theme>/module.yaml', 'warning');
          continue;
        }
        for (const file of await listDir(themePath)) {
          const abs = join(themePath, file.name);
          const m = MODULE_FILE.exec(file.name);
          if (file.isDir || !m) {
            if (/\.ya?ml$/.test(file.name)) {
              fileProblem(
                rel(abs),
                "a module file is named module.yaml (or module-N.yaml for the theme's module N), or module[-N].<variant>.yaml for a branch variant",
              );
            } else if (file.name !== 'README.md') fileProblem(rel(abs), 'unexpected file (ignored)', 'warning');
            continue;
          }
          const position = m[1] === undefined ? 1 : Number(m[1]);
          if (m[1] !== undefined && (position < 2 || String(position) !== m[1])) {
            fileProblem(
              rel(abs),
              `the theme's first module is module.yaml; later ones are module-2.yaml, module-3.yaml…`,
            );
            continue;
          }
          const isVariant = m[2] !== undefined;
          const src = await read(abs);
          if (!src) continue;
          // Presence counts for coverage even when the file is invalid: its own errors say what is wrong.
          const key = `${top.name}/${fundDir}/${themeEntry.name}#${position}`;
          const slot = slots.get(key) ?? { defaults: 0, defaultMinutes: null, variants: [] };
          slots.set(key, slot);
          if (!isVariant) slot.defaults++;
          const manifest = readModule(src, {
            track,
            themeSlugs: namedThemes.get(trackSrc) ?? null,
            funds,
            fundDir,
            themeDir: themeEntry.name,
            isVariant,
            position,
          });
          if (isVariant)
            slot.variants.push({
              file: src.file,
              branches: manifest?.branches ?? [],
              src,
              minutes: manifest?.nominalMinutes ?? null,
            });
          else slot.defaultMinutes = manifest?.nominalMinutes ?? null;
          if (!manifest) continue;
          const previous = moduleIds.get(manifest.id);
          if (previous !== undefined) {
            src.error(['id'], `duplicate module id "${manifest.id}" (also in ${previous})`);
            continue;
          }
          moduleIds.set(manifest.id, src.file);
          if (isVariant) {
            for (const other of slot.variants) {
              if (other.src === src) continue;
              const shared = other.branches.filter((b) => manifest.branches.includes(b));
              if (shared.length > 0) {
                src.error(
                  ['branches'],
                  `IDCC ${shared.join(', ')} already has a variant for this module in ${other.file}`,
                );
              }
            }
          }
          modules.push({ manifest, track: top.name, hash: contentHash(manifest), path: src.file, position });
          const lm = { src, manifest, track, position, isVariant };
          loaded.push(lm);
          trackModules.push(lm);
        }
      }
    }

    if (track && funds) {
      checkProgramme({
        track,
        trackSrc,
        trackDirName: top.name,
        funds,
        slots,
        fileProblem,
      });
    }
  }

  if (tracks.length === 0 && !problems.some((p) => p.severity === 'error')) {
    fileProblem('.', 'no track found: expected <track>/track.json');
  }

  const glossary = mergeGlossary(glossaryFiles);
  const estimates = checkModules(loaded, glossary, {
    today: options.today ?? new Date(),
    folderProblem: (p) => fileProblem('.', p.message, p.severity, p.severity === 'error'),
  });

  const hasFormatErrors = problems.some((p) => p.severity === 'error' && !p.editorial);
  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  if (hasFormatErrors || !funds) return { problems, content: null, estimates };
  return {
    problems,
    content: { funds, fundsHash: contentHash(funds), tracks, modules, glossary },
    estimates,
  };
}

/**
 * A cheap fingerprint of every file under the content directory (names and bytes), so that a start-up
 * can skip parsing when nothing changed since the last import.
 */
export async function contentFingerprint(contentDir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const e of await listDir(dir)) {
      const abs = join(dir, e.name);
      if (e.isDir) await walk(abs);
      else {
        hash.update(`${relative(contentDir, abs)}\0`);
        hash.update(await readFile(abs));
        hash.update('\0');
      }
    }
  };
  await walk(contentDir);
  return hash.digest('hex');
}
