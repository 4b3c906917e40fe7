import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { transformWithOxc } from 'vite';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Runs the rules of `.dependency-cruiser.cjs` (no import cycle between capability folders, another
 * capability only through its index.ts) over src/. dependency-cruiser cannot read .ts files with the
 * installed TypeScript (no JavaScript API), so each file is first copied without its types into a scratch
 * directory, every import kept except `import type` (which does not exist at run time).
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const depcruise = join(root, 'node_modules', '.bin', 'depcruise');
const config = join(root, '.dependency-cruiser.cjs');
const scratch = mkdtempSync(join(tmpdir(), 'emargement-architecture-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Violations accepted for now, each with its reason ("rule: from → to"). Empty: keep it so, or say why
 * an entry cannot be fixed yet.
 */
const KNOWN: Record<string, string> = {};

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
  cycle?: { name: string }[];
}

async function stripTypes(from: string, to: string): Promise<number> {
  let count = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of readdirSync(join(from, dir), { withFileTypes: true })) {
      const rel = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(rel);
        continue;
      }
      if (!/\.(ts|js|mjs)$/.test(entry.name)) continue;
      const source = readFileSync(join(from, rel), 'utf8');
      const code = entry.name.endsWith('.ts')
        ? (await transformWithOxc(source, rel, { lang: 'ts', typescript: { onlyRemoveTypeImports: true } })).code
        : source;
      const target = join(to, rel.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, code);
      count++;
    }
  };
  await walk('src');
  return count;
}

async function cruise(dir: string): Promise<{ modules: number; violations: Violation[] }> {
  // depcruise exits non-zero when it finds a violation; the JSON report is on stdout either way.
  const result = await promisify(execFile)(depcruise, ['src', '--config', config, '--output-type', 'json'], {
    cwd: dir,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: { stdout?: string; stderr?: string }) => {
    if (!error.stdout) throw new Error(`depcruise failed: ${error.stderr ?? String(error)}`);
    return { stdout: error.stdout };
  });
  const report = JSON.parse(result.stdout) as { modules: unknown[]; summary: { violations: Violation[] } };
  return { modules: report.modules.length, violations: report.summary.violations };
}

const describeViolation = (v: Violation): string =>
  `${v.rule.name}: ${v.cycle ? [v.from, ...v.cycle.map((c) => c.name)].join(' → ') : `${v.from} → ${v.to}`}`;
const keyOf = (v: Violation): string => `${v.rule.name}: ${v.from} → ${v.to}`;

/** Files that must explain themselves: no citation of documents outside the repository, issues or machine paths. */
function selfContainedFiles(): string[] {
  const files: string[] = ['README.md', 'content/README.md'];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'results') walk(rel);
      } else if (/\.(ts|mts|js|mjs|cjs|md|json|sql|ya?ml)$/.test(entry.name)) files.push(rel);
    }
  };
  for (const dir of ['src', 'test', 'bench', 'migrations', 'lti-config', 'docs']) walk(dir);
  return files;
}

const OUTSIDE_CITATIONS: [RegExp, string][] = [
  [/\/work\/|\.\.\/shared\/|\bshared\/reference\b/, 'a machine path or the shared reference folder'],
  [/openedx-lti13\.md|certificate-and-exports\.md|spoc-and-opca/, 'a document outside this repository'],
  [/\bissue #?\d+|\(#\d+\)/i, 'an issue number'],
];
/** Outside docs/ (where files cite their neighbours), a doc is cited by its path: docs/time-accounting.md. */
const BARE_DOC =
  /(?<!docs\/)\b(time-accounting|lms-estimate|certificates-and-exports|openedx-lti|score-outbox|privacy|programme|content-style)\.md/;

describe('architecture of src/', () => {
  it('has no cycle between capabilities and reaches each capability through its index.ts', async () => {
    const files = await stripTypes(root, join(scratch, 'project'));
    const { modules, violations } = await cruise(join(scratch, 'project'));
    // Every source file was read (a parser that silently skipped files would find nothing wrong).
    expect(modules).toBeGreaterThanOrEqual(files);
    const unexpected = violations.filter((v) => !(keyOf(v) in KNOWN)).map(describeViolation);
    expect(unexpected).toEqual([]);
    const stale = Object.keys(KNOWN).filter((k) => !violations.some((v) => keyOf(v) === k));
    expect(stale, 'known violations that are gone: remove them from KNOWN').toEqual([]);
  });

  it('keeps files under ~500 lines, or says at the top why one is whole', () => {
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
        const rel = join(dir, entry.name);
        if (entry.isDirectory()) walk(rel);
        else if (/\.(ts|js|mjs)$/.test(entry.name)) {
          const lines = readFileSync(join(root, rel), 'utf8').split('\n');
          const reason = lines.slice(0, 40).some((line) => /\bOne file\b/.test(line));
          if (lines.length > 520 && !reason)
            found.push(`${rel}: ${lines.length} lines, no "One file …" reason at its top`);
        }
      }
    };
    walk('src');
    expect(found).toEqual([]);
  });

  it('cites only its own documents: no issue number, machine path or outside reference', () => {
    const found: string[] = [];
    for (const file of selfContainedFiles()) {
      if (file === 'test/foundation/architecture.test.ts') continue;
      const lines = readFileSync(join(root, file), 'utf8').split('\n');
      for (const [i, line] of lines.entries()) {
        for (const [pattern, what] of OUTSIDE_CITATIONS) {
          if (pattern.test(line)) found.push(`${file}:${i + 1}: ${what}: ${line.trim()}`);
        }
        if (!file.startsWith('docs/') && BARE_DOC.test(line)) {
          found.push(`${file}:${i + 1}: a doc without its docs/ path: ${line.trim()}`);
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('reports a cycle between two capabilities, an import past an index.ts and a route file reaching a repository', async () => {
    const dir = join(scratch, 'fixture');
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    write('src/alpha/index.js', "import { b } from '../beta/index.js';\nexport const a = () => b;\n");
    write('src/beta/index.js', "import { a } from '../alpha/index.js';\nexport const b = () => a;\n");
    write('src/gamma/index.js', "import { inner } from '../beta/inner.js';\nexport const g = inner;\n");
    write('src/beta/inner.js', 'export const inner = 1;\n');
    write('src/common/util.js', "import { g } from '../gamma/index.js';\nexport const u = g;\n");
    write('src/gamma/page-routes.js', "import { rows } from './repository/rows.js';\nexport const routes = rows;\n");
    write('src/gamma/repository/rows.js', 'export const rows = [];\n');
    write('src/gamma/service.js', "import { rows } from './repository/rows.js';\nexport const list = () => rows;\n");
    const { violations } = await cruise(dir);
    const rules = new Set(violations.map((v) => v.rule.name));
    expect([...rules].sort()).toEqual([
      'capability-through-index',
      'foundation-imports-no-capability',
      'no-capability-cycle',
      'routes-through-services',
    ]);
    // A service may read a repository; a route file may not.
    expect(violations.filter((v) => v.rule.name === 'routes-through-services').map((v) => v.from)).toEqual([
      'src/gamma/page-routes.js',
    ]);
    expect(violations.find((v) => v.rule.name === 'capability-through-index')?.to).toBe('src/beta/inner.js');
  });
});
