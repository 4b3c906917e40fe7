import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Lexer, type Token } from 'marked';
import { type Document, isCollection, isNode, LineCounter, type Node, parseDocument } from 'yaml';
import { checkModules, checkTextStyle, type ModuleEstimate } from './editorial.js';
import {
  type ActivityBlock,
  type Block,
  type BranchDef,
  COMMON_FUND,
  type ContentSet,
  type FundDef,
  type FundsFile,
  type Glossary,
  type GlossaryEntry,
  type ModuleManifest,
  type QuizQuestion,
  type SourceRef,
  type ThemeDef,
  type TrackDef,
  type TutorialStep,
  type WeekDef,
} from './model.js';

/**
 * Reads and validates a content directory (content/README.md). Every problem is reported with the file
 * and line it comes from: YAML (and JSON, a subset of YAML) is parsed into a document that keeps node
 * ranges, a LineCounter turns offsets into lines, and each check names the path of the value it rejects.
 */

export interface ContentProblem {
  /** Path relative to the content directory, with forward slashes. */
  file: string;
  line: number;
  column: number;
  severity: 'error' | 'warning';
  message: string;
  /**
   * An editorial error (programme structure, time model, quiz and house-style rules, sources): it fails
   * `content check` and the CLI import, but the content can still be loaded, so that a service restarted
   * on content being rewritten keeps importing it (and logs these errors). Absent for format errors.
   */
  editorial?: true;
}

export interface ContentLoad {
  problems: ContentProblem[];
  /** Present when there is no format error (warnings and editorial errors allowed). */
  content: ContentSet | null;
  /** Each module's time estimate (the time model of docs/content-style.md), in minutes. */
  estimates: ModuleEstimate[];
}

export type { ModuleEstimate };

export function formatProblem(p: ContentProblem, base = ''): string {
  // A folder-wide problem ('.') is shown as the folder itself.
  const file = p.file === '.' && base !== '' ? base.replace(/\/$/, '') : `${base}${p.file}`;
  return `${file}:${p.line}:${p.column}: ${p.severity}: ${p.message}`;
}

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const IDCC = /^\d{4}$/;

type Path = (string | number)[];

/** One parsed file and the problems found in it. */
export class SourceFile {
  readonly lines = new LineCounter();
  readonly doc: Document.Parsed;
  readonly data: unknown;

  constructor(
    readonly file: string,
    readonly text: string,
    private readonly problems: ContentProblem[],
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const e of this.doc.errors) {
      const pos = this.lines.linePos(e.pos[0]);
      this.problems.push({
        file,
        line: pos.line,
        column: pos.col,
        severity: 'error',
        message: `syntax: ${e.message.split('\n')[0]}`,
      });
    }
    this.data = this.doc.errors.length === 0 ? this.doc.toJS({ maxAliasCount: 100 }) : undefined;
  }

  get ok(): boolean {
    return this.doc.errors.length === 0;
  }

  /** The position of the value at `path`, or of its closest existing ancestor (e.g. for a missing key). */
  position(path: Path): { line: number; column: number } {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      if (isNode(node) && (node as Node).range) {
        // For a key that exists, point at the key's line rather than at its (possibly multi-line) value.
        const offset =
          n === path.length ? (this.keyOffset(path) ?? (node as Node).range![0]) : (node as Node).range![0];
        const pos = this.lines.linePos(offset);
        return { line: pos.line, column: pos.col };
      }
    }
    return { line: 1, column: 1 };
  }

  private keyOffset(path: Path): number | undefined {
    if (path.length === 0) return undefined;
    const parent = path.length === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1), true);
    if (!isCollection(parent)) return undefined;
    const last = path[path.length - 1];
    for (const item of parent.items as unknown[]) {
      const pair = item as { key?: unknown };
      if (pair && typeof pair === 'object' && 'key' in pair && isNode(pair.key)) {
        const key = pair.key as Node & { value?: unknown };
        if (key.value === last && key.range) return key.range[0];
      }
    }
    return undefined;
  }

  error(path: Path, message: string): void {
    this.report(path, message, 'error');
  }

  warn(path: Path, message: string): void {
    this.report(path, message, 'warning');
  }

  /** An editorial error (see ContentProblem.editorial). */
  editorial(path: Path, message: string): void {
    this.report(path, message, 'error', true);
  }

  /** A problem at an exact line and column (house-style findings inside a text). */
  at(line: number, column: number, message: string, severity: ContentProblem['severity'], editorial: boolean): void {
    this.problems.push({ file: this.file, line, column, severity, message, ...(editorial ? { editorial: true } : {}) });
  }

  private report(path: Path, message: string, severity: ContentProblem['severity'], editorial = false): void {
    const { line, column } = this.position(path);
    const where = path.length > 0 ? `${formatPath(path)}: ` : '';
    this.problems.push({
      file: this.file,
      line,
      column,
      severity,
      message: `${where}${message}`,
      ...(editorial ? { editorial: true } : {}),
    });
  }
}

function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Typed readers that report what is wrong and return a usable fallback so checking goes on. */
class Reader {
  constructor(readonly src: SourceFile) {}

  object(value: unknown, path: Path, allowed: readonly string[]): Record<string, unknown> | null {
    if (!isObject(value)) {
      this.src.error(path, 'must be a mapping (key: value)');
      return null;
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key))
        this.src.error([...path, key], `unknown key "${key}" (allowed: ${allowed.join(', ')})`);
    }
    return value;
  }

  string(
    obj: Record<string, unknown>,
    key: string,
    path: Path,
    opts: { optional?: boolean; nullable?: boolean; pattern?: RegExp; patternHint?: string; max?: number } = {},
  ): string | null {
    const p = [...path, key];
    const v = obj[key];
    if (v === undefined || v === null) {
      if (v === undefined && !opts.optional && !opts.nullable) this.src.error(p, 'is required');
      else if (v === null && !opts.nullable) this.src.error(p, 'must not be empty');
      return null;
    }
    if (typeof v !== 'string') {
      this.src.error(p, `must be a text (got ${describe(v)})`);
      return null;
    }
    if (v.trim() === '') {
      this.src.error(p, 'must not be empty');
      return null;
    }
    if (/lorem ipsum/i.test(v)) this.src.error(p, 'placeholder text (lorem ipsum) is not allowed');
    if (opts.pattern && !opts.pattern.test(v)) {
      this.src.error(p, `"${v}" is not valid: ${opts.patternHint ?? `must match ${opts.pattern}`}`);
      return null;
    }
    if (opts.max !== undefined && v.length > opts.max) this.src.error(p, `is too long (${v.length} > ${opts.max})`);
    return v;
  }

  integer(obj: Record<string, unknown>, key: string, path: Path, min: number, max: number): number | null {
    const p = [...path, key];
    const v = obj[key];
    if (v === undefined || v === null) {
      this.src.error(p, 'is required');
      return null;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.src.error(p, `must be an integer (got ${describe(v)})`);
      return null;
    }
    if (v < min || v > max) {
      this.src.error(p, `must be between ${min} and ${max} (got ${v})`);
      return null;
    }
    return v;
  }

  array(
    obj: Record<string, unknown>,
    key: string,
    path: Path,
    min: number,
    max = Infinity,
    optional = false,
  ): unknown[] {
    const p = [...path, key];
    const v = obj[key];
    if (v === undefined || v === null) {
      if (!optional) this.src.error(p, 'is required');
      return [];
    }
    if (!Array.isArray(v)) {
      this.src.error(p, `must be a list (got ${describe(v)})`);
      return [];
    }
    if (v.length < min)
      this.src.error(p, min === 1 ? 'must not be empty' : `needs at least ${min} items (has ${v.length})`);
    if (v.length > max) this.src.error(p, `has at most ${max} items (has ${v.length})`);
    return v;
  }

  /** "placeholder", or an https URL. */
  mediaUrl(obj: Record<string, unknown>, key: string, path: Path, opts: { nullable: boolean }): string | null {
    const v = this.string(obj, key, path, { nullable: opts.nullable, optional: opts.nullable });
    if (v === null || v === 'placeholder') return v;
    return this.checkHttps(v, [...path, key], 'must be "placeholder" or an https URL');
  }

  httpsUrl(obj: Record<string, unknown>, key: string, path: Path): string | null {
    const v = this.string(obj, key, path, { nullable: true, optional: true });
    if (v === null) return null;
    return this.checkHttps(v, [...path, key], 'must be an https URL');
  }

  private checkHttps(v: string, p: Path, hint: string): string | null {
    try {
      const u = new URL(v);
      if (u.protocol !== 'https:') {
        this.src.error(p, `"${v}" ${hint} (no http: the tool page is served over https)`);
        return null;
      }
      return v;
    } catch {
      this.src.error(p, `"${v}" ${hint}`);
      return null;
    }
  }

  /** Markdown from a content package: raw HTML and headings would escape the page's own structure. */
  markdown(obj: Record<string, unknown>, key: string, path: Path, opts: { optional?: boolean } = {}): string | null {
    const v = this.string(obj, key, path, { optional: opts.optional ?? false, nullable: opts.optional ?? false });
    if (v === null) return null;
    const problems = new Set<string>();
    const walk = (tokens: Token[]) => {
      for (const t of tokens) {
        if (t.type === 'html') problems.add('raw HTML is not allowed in Markdown (write plain Markdown)');
        if (t.type === 'heading') problems.add('headings are not allowed in Markdown (the page sets its own headings)');
        if (t.type === 'image' && !(t as { text?: string }).text?.trim()) {
          problems.add('an image needs a text alternative: ![description](url)');
        }
        const children = (t as { tokens?: Token[] }).tokens;
        if (children) walk(children);
        const items = (t as { items?: { tokens?: Token[] }[] }).items;
        if (items) for (const item of items) if (item.tokens) walk(item.tokens);
      }
    };
    walk(new Lexer().lex(v));
    for (const m of problems) this.src.error([...path, key], m);
    return v;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** A stable hash of a validated value: formatting and comments do not change it, content does. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

// ───────────────────────────── funds.json ─────────────────────────────

function readFunds(src: SourceFile): FundsFile | null {
  if (!src.ok) return null;
  const r = new Reader(src);
  const root = r.object(src.data, [], ['version', 'funds']);
  if (!root) return null;
  const version = r.integer(root, 'version', [], 1, 1_000_000);
  const items = r.array(root, 'funds', [], 1);
  const funds: FundDef[] = [];
  const slugs = new Set<string>();
  const idccs = new Map<string, string>();
  items.forEach((item, i) => {
    const p: Path = ['funds', i];
    const o = r.object(item, p, ['slug', 'name', 'historicalName', 'sectors', 'branches']);
    if (!o) return;
    const slug = r.string(o, 'slug', p, { pattern: SLUG, patternHint: 'lower-case letters, digits and dashes' });
    if (slug === COMMON_FUND) src.error([...p, 'slug'], '"common" is reserved for the common trunk');
    else if (slug !== null && slugs.has(slug)) src.error([...p, 'slug'], `duplicate fund slug "${slug}"`);
    if (slug !== null) slugs.add(slug);
    const name = r.string(o, 'name', p, { max: 200 });
    const historicalName = r.string(o, 'historicalName', p, { optional: true, nullable: true, max: 200 });
    const sectors = r.array(o, 'sectors', p, 1).map((s, j) => {
      if (typeof s !== 'string' || s.trim() === '') src.error([...p, 'sectors', j], 'must be a non-empty text');
      return String(s);
    });
    const branches: BranchDef[] = [];
    r.array(o, 'branches', p, 0).forEach((b, j) => {
      const bp: Path = [...p, 'branches', j];
      const bo = r.object(b, bp, ['idcc', 'name', 'historicalName']);
      if (!bo) return;
      if (typeof bo.idcc === 'number') {
        src.error(
          [...bp, 'idcc'],
          'must be a text of 4 digits in quotes (e.g. "0029"): a number loses its leading zeros',
        );
        return;
      }
      const idcc = r.string(bo, 'idcc', bp, { pattern: IDCC, patternHint: 'an IDCC code is 4 digits, e.g. "1979"' });
      const bname = r.string(bo, 'name', bp, { max: 300 });
      if (idcc !== null) {
        const other = idccs.get(idcc);
        if (other !== undefined) {
          src.error(
            [...bp, 'idcc'],
            `IDCC ${idcc} is already listed under fund "${other}": a branch belongs to one fund`,
          );
        }
        idccs.set(idcc, slug ?? '?');
      }
      const bhist = r.string(bo, 'historicalName', bp, { optional: true, max: 200 });
      // Only when present: a funds.json without it keeps the content hash it had.
      if (idcc !== null && bname !== null)
        branches.push({ idcc, name: bname, ...(bhist ? { historicalName: bhist } : {}) });
    });
    if (slug !== null && name !== null) funds.push({ slug, name, historicalName, sectors, branches });
  });
  if (version === null) return null;
  return { version, funds };
}

// ───────────────────────────── track.json ─────────────────────────────

/** Theme slugs named by each track.json, even in an invalid entry: a module naming one is not reported again. */
const namedThemes = new WeakMap<SourceFile, Set<string>>();

function readTrack(src: SourceFile, dirName: string): TrackDef | null {
  if (!src.ok) return null;
  const r = new Reader(src);
  const root = r.object(src.data, [], ['id', 'title', 'version', 'themes', 'weeks', 'plannedMinutes']);
  if (!root) return null;
  const id = r.string(root, 'id', [], { pattern: SLUG, patternHint: 'lower-case letters, digits and dashes' });
  if (id !== null && id !== dirName) src.error(['id'], `"${id}" must be the name of its directory ("${dirName}")`);
  const title = r.string(root, 'title', [], { max: 200 });
  const version = r.integer(root, 'version', [], 1, 1_000_000);
  const themes: ThemeDef[] = [];
  const slugs = new Set<string>();
  const orders = new Set<number>();
  r.array(root, 'themes', [], 1).forEach((t, i) => {
    const p: Path = ['themes', i];
    const o = r.object(t, p, ['slug', 'title', 'trunk', 'order', 'modules']);
    if (!o) return;
    const slug = r.string(o, 'slug', p, { pattern: SLUG, patternHint: 'lower-case letters, digits and dashes' });
    if (slug !== null && slugs.has(slug)) src.error([...p, 'slug'], `duplicate theme slug "${slug}"`);
    if (slug !== null) slugs.add(slug);
    const ttitle = r.string(o, 'title', p, { max: 200 });
    const trunk = r.string(o, 'trunk', p);
    if (trunk !== null && trunk !== 'common' && trunk !== 'sector') {
      src.error([...p, 'trunk'], `must be "common" or "sector" (got "${trunk}")`);
    }
    const order = r.integer(o, 'order', p, 1, 1000);
    if (order !== null && orders.has(order)) src.error([...p, 'order'], `duplicate order ${order}`);
    if (order !== null) orders.add(order);
    const modules = o.modules === undefined ? 1 : r.integer(o, 'modules', p, 1, 9);
    if (slug && ttitle && (trunk === 'common' || trunk === 'sector') && order !== null && modules !== null) {
      themes.push({ slug, title: ttitle, trunk, order, modules, week: null });
    }
  });
  namedThemes.set(src, slugs);

  let plannedMinutes: number | null = null;
  if (root.plannedMinutes !== undefined) plannedMinutes = r.integer(root, 'plannedMinutes', [], 1, 100_000);

  const weeks: WeekDef[] = [];
  const inWeek = new Map<string, number>();
  r.array(root, 'weeks', [], 1, 52, true).forEach((w, i) => {
    const p: Path = ['weeks', i];
    const o = r.object(w, p, ['week', 'title', 'themes']);
    if (!o) return;
    const week = r.integer(o, 'week', p, 1, 52);
    if (week !== null && week !== i + 1)
      src.error([...p, 'week'], `weeks are numbered in order from 1: expected ${i + 1}`);
    const wtitle = r.string(o, 'title', p, { max: 200 });
    const wthemes: string[] = [];
    r.array(o, 'themes', p, 1).forEach((slug, j) => {
      if (typeof slug !== 'string' || !slugs.has(slug)) {
        src.error([...p, 'themes', j], `${describe(slug)} is not a theme slug of this track`);
        return;
      }
      const other = inWeek.get(slug);
      if (other !== undefined) src.error([...p, 'themes', j], `theme "${slug}" is already in week ${other}`);
      inWeek.set(slug, i + 1);
      wthemes.push(slug);
    });
    if (week !== null && wtitle !== null) weeks.push({ week, title: wtitle, themes: wthemes });
  });
  if (root.weeks !== undefined) {
    for (const t of themes) {
      const week = inWeek.get(t.slug);
      if (week === undefined) src.error(['weeks'], `theme "${t.slug}" is in no week: every theme belongs to one week`);
      else t.week = week;
    }
  }
  if (id === null || title === null || version === null) return null;
  return { id, title, version, themes: themes.sort((a, b) => a.order - b.order), weeks, plannedMinutes };
}

/**
 * The hash of a track: a track.json without pacing hashes as before pacing existed, so that a database
 * holding it does not see a change that is not one.
 */
export function trackHash(track: TrackDef): string {
  const paced = track.weeks.length > 0 || track.plannedMinutes !== null || track.themes.some((t) => t.modules !== 1);
  if (paced) return contentHash(track);
  return contentHash({
    id: track.id,
    title: track.title,
    version: track.version,
    themes: track.themes.map(({ slug, title, trunk, order }) => ({ slug, title, trunk, order })),
  });
}

// ───────────────────────────── module.yaml ─────────────────────────────

const MODULE_KEYS = [
  'id',
  'version',
  'title',
  'theme',
  'fund',
  'branches',
  'nominalMinutes',
  'summary',
  'blocks',
  'reviewedOn',
  'sources',
];
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

interface ModuleContext {
  track: TrackDef | null;
  /** Every theme slug track.json names (valid entry or not). */
  themeSlugs: Set<string> | null;
  funds: FundsFile | null;
  /** From the path: content/<track>/<fundDir>/<themeDir>/<file>. */
  fundDir: string;
  themeDir: string;
  isVariant: boolean;
  /** The module's place in its theme, from its file name. */
  position: number;
}

function readModule(src: SourceFile, ctx: ModuleContext): ModuleManifest | null {
  if (!src.ok) return null;
  const r = new Reader(src);
  const root = r.object(src.data, [], MODULE_KEYS);
  if (!root) return null;

  const id = r.string(root, 'id', [], { pattern: SLUG, patternHint: 'lower-case letters, digits and dashes' });
  const version = r.integer(root, 'version', [], 1, 1_000_000);
  const title = r.string(root, 'title', [], { max: 200 });
  const summary = r.string(root, 'summary', [], { max: 600 });
  const nominalMinutes = r.integer(root, 'nominalMinutes', [], 1, 120);

  const theme = r.string(root, 'theme', [], { pattern: SLUG, patternHint: 'a theme slug' });
  let themeDef: ThemeDef | undefined;
  if (theme !== null) {
    if (theme !== ctx.themeDir) src.error(['theme'], `"${theme}" must match its directory "${ctx.themeDir}"`);
    themeDef = ctx.track?.themes.find((t) => t.slug === theme);
    if (ctx.track && !themeDef && !ctx.themeSlugs?.has(theme)) {
      src.error(
        ['theme'],
        `unknown theme "${theme}" (themes of ${ctx.track.id}: ${ctx.track.themes.map((t) => t.slug).join(', ')})`,
      );
    }
  }

  const fund = r.string(root, 'fund', [], { pattern: SLUG, patternHint: 'a fund slug or "common"' });
  const fundDef = ctx.funds?.funds.find((f) => f.slug === fund);
  if (fund !== null) {
    if (fund !== ctx.fundDir) src.error(['fund'], `"${fund}" must match its directory "${ctx.fundDir}"`);
    if (fund !== COMMON_FUND && ctx.funds && !fundDef) {
      src.error(
        ['fund'],
        `unknown fund "${fund}" (funds.json: ${ctx.funds.funds.map((f) => f.slug).join(', ')}, or "common")`,
      );
    }
    if (themeDef) {
      if (fund === COMMON_FUND && themeDef.trunk !== 'common') {
        src.error(
          ['fund'],
          `theme "${themeDef.slug}" is in the sector trunk: its modules belong to a fund, not "common"`,
        );
      }
      if (fund !== COMMON_FUND && themeDef.trunk === 'common') {
        src.error(['fund'], `theme "${themeDef.slug}" is in the common trunk: its module goes under common/`);
      }
    }
  }

  const branches: string[] = [];
  const rawBranches = r.array(root, 'branches', [], 0, Infinity, true);
  rawBranches.forEach((b, i) => {
    const p: Path = ['branches', i];
    if (typeof b !== 'string' || !IDCC.test(b)) {
      src.error(p, `${describe(b)} is not an IDCC code: write 4 digits in quotes, e.g. "2941"`);
      return;
    }
    if (fund === COMMON_FUND) src.error(p, 'common-trunk modules have no branch variants');
    else if (fundDef && !fundDef.branches.some((x) => x.idcc === b)) {
      src.error(p, `IDCC ${b} is not a branch of fund "${fundDef.slug}" in funds.json`);
    }
    if (branches.includes(b)) src.error(p, `IDCC ${b} is listed twice`);
    branches.push(b);
  });
  if (ctx.isVariant && rawBranches.length === 0) {
    src.error(['branches'], 'a branch variant (module.<variant>.yaml) needs a non-empty list of IDCC codes');
  }
  if (!ctx.isVariant && rawBranches.length > 0) {
    src.error(['branches'], 'the default module (module.yaml) has no branches: put a variant in module.<variant>.yaml');
  }

  const blocks = readBlocks(r, root);

  // Content model v2 fields: missing ones are editorial errors (the module still loads).
  let reviewedOn: string | undefined;
  if (root.reviewedOn === undefined || root.reviewedOn === null) {
    src.editorial(['reviewedOn'], 'is required: the date of the last factual review, e.g. "2026-12-01"');
  } else {
    const v = r.string(root, 'reviewedOn', [], { pattern: ISO_DATE, patternHint: 'an ISO date, e.g. "2026-12-01"' });
    if (v !== null) {
      const d = new Date(`${v}T00:00:00Z`);
      if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== v)
        src.error(['reviewedOn'], `"${v}" is not a date`);
      else reviewedOn = v;
    }
  }
  let sources: SourceRef[] | undefined;
  if (root.sources === undefined || root.sources === null) {
    src.editorial(['sources'], 'is required: at least one source, shown to the learner as « Pour aller plus loin »');
  } else {
    sources = [];
    const list = r.array(root, 'sources', [], 0, 20);
    if (Array.isArray(root.sources) && list.length === 0) src.editorial(['sources'], 'needs at least one source');
    list.forEach((item, i) => {
      const p: Path = ['sources', i];
      const o = r.object(item, p, ['title', 'url', 'supports']);
      if (!o) return;
      const stitle = r.string(o, 'title', p, { max: 200 });
      const url = r.string(o, 'url', p, { max: 1000 });
      let okUrl: string | null = null;
      if (url !== null) {
        try {
          const u = new URL(url);
          if (u.protocol !== 'https:') src.error([...p, 'url'], `"${url}" must be an https URL`);
          else okUrl = url;
        } catch {
          src.error([...p, 'url'], `"${url}" must be an https URL`);
        }
      }
      const supports = r.string(o, 'supports', p, { max: 500 });
      if (stitle !== null && okUrl !== null && supports !== null)
        sources?.push({ title: stitle, url: okUrl, supports });
    });
  }

  if (
    id === null ||
    version === null ||
    title === null ||
    summary === null ||
    nominalMinutes === null ||
    theme === null ||
    fund === null ||
    blocks === null
  ) {
    return null;
  }
  const manifest: ModuleManifest = { id, version, title, theme, fund, branches, nominalMinutes, summary, blocks };
  // Only when present: a file without them keeps the content hash it had before they existed.
  if (reviewedOn !== undefined) manifest.reviewedOn = reviewedOn;
  if (sources !== undefined) manifest.sources = sources;
  return manifest;
}

function readBlocks(r: Reader, root: Record<string, unknown>): Block[] | null {
  const src = r.src;
  const items = r.array(root, 'blocks', [], 1);
  const blocks: Block[] = [];
  const ids = new Set<string>();
  let failed = items.length === 0;
  let quizzes = 0;
  let activities = 0;
  items.forEach((item, i) => {
    const p: Path = ['blocks', i];
    if (!isObject(item)) {
      src.error(p, 'must be a mapping with a "type"');
      failed = true;
      return;
    }
    const type = item.type;
    const ok = (() => {
      switch (type) {
        case 'video':
          return readVideo(r, item, p);
        case 'tutorial':
          return readTutorial(r, item, p);
        case 'testimonial':
          return readTestimonial(r, item, p);
        case 'activity':
          activities++;
          return readActivity(r, item, p);
        case 'quiz':
          quizzes++;
          if (i !== items.length - 1) src.error([...p, 'type'], 'the quiz must be the last block');
          return readQuiz(r, item, p);
        default:
          src.error([...p, 'type'], `${describe(type)}: type must be video, tutorial, testimonial, activity or quiz`);
          return null;
      }
    })();
    if (ok === null) {
      failed = true;
      return;
    }
    if (ids.has(ok.id)) {
      src.error([...p, 'id'], `duplicate block id "${ok.id}"`);
      failed = true;
    }
    ids.add(ok.id);
    blocks.push(ok);
  });
  if (items.length > 0 && quizzes === 0) {
    src.error(['blocks'], 'needs a quiz block (a short self-check, placed last)');
    failed = true;
  }
  if (quizzes > 1) {
    src.error(['blocks'], `has ${quizzes} quiz blocks: exactly one, placed last`);
    failed = true;
  }
  if (items.length > 0 && activities === 0) {
    src.editorial(['blocks'], 'needs an activity block (a checklist, worked example or scenario, before the quiz)');
  }
  if (activities > 1) src.editorial(['blocks'], `has ${activities} activity blocks: exactly one`);
  return failed ? null : blocks;
}

const BLOCK_ID = { pattern: SLUG, patternHint: 'lower-case letters, digits and dashes' };

function readVideo(r: Reader, o: Record<string, unknown>, p: Path): Block | null {
  r.object(o, p, ['type', 'id', 'title', 'src', 'captions', 'transcript']);
  const id = r.string(o, 'id', p, BLOCK_ID);
  const title = r.string(o, 'title', p, { max: 200 });
  const src = r.mediaUrl(o, 'src', p, { nullable: false });
  const captions = r.httpsUrl(o, 'captions', p);
  const transcript = r.markdown(o, 'transcript', p);
  if (id === null || title === null || src === null || transcript === null) return null;
  return { type: 'video', id, title, src, captions, transcript };
}

function readTutorial(r: Reader, o: Record<string, unknown>, p: Path): Block | null {
  r.object(o, p, ['type', 'id', 'title', 'steps']);
  const id = r.string(o, 'id', p, BLOCK_ID);
  const title = r.string(o, 'title', p, { max: 200 });
  const steps: TutorialStep[] = [];
  let failed = false;
  r.array(o, 'steps', p, 1, 12).forEach((s, j) => {
    const sp: Path = [...p, 'steps', j];
    const so = r.object(s, sp, ['title', 'body']);
    if (!so) {
      failed = true;
      return;
    }
    const stitle = r.string(so, 'title', sp, { max: 200 });
    const body = r.markdown(so, 'body', sp);
    if (stitle === null || body === null) failed = true;
    else steps.push({ title: stitle, body });
  });
  if (id === null || title === null || failed || steps.length === 0) return null;
  return { type: 'tutorial', id, title, steps };
}

function readTestimonial(r: Reader, o: Record<string, unknown>, p: Path): Block | null {
  r.object(o, p, ['type', 'id', 'title', 'quote', 'person', 'role', 'video', 'captions', 'transcript']);
  const id = r.string(o, 'id', p, BLOCK_ID);
  const title = r.string(o, 'title', p, { optional: true, nullable: true, max: 200 });
  const quote = r.string(o, 'quote', p, { max: 2000 });
  const person = r.string(o, 'person', p, { max: 100 });
  const role = r.string(o, 'role', p, { max: 200 });
  const video = r.mediaUrl(o, 'video', p, { nullable: true });
  const captions = r.httpsUrl(o, 'captions', p);
  const transcript = r.markdown(o, 'transcript', p, { optional: true });
  if (id === null || quote === null || person === null || role === null) return null;
  return { type: 'testimonial', id, title, quote, person, role, video, captions, transcript };
}

const ACTIVITY_KINDS = ['checklist', 'worked-example', 'scenario'] as const;

function readActivity(r: Reader, o: Record<string, unknown>, p: Path): Block | null {
  r.object(o, p, ['type', 'id', 'kind', 'title', 'minutes', 'instructions', 'items', 'debrief']);
  const id = r.string(o, 'id', p, BLOCK_ID);
  const kind = r.string(o, 'kind', p);
  if (kind !== null && !(ACTIVITY_KINDS as readonly string[]).includes(kind)) {
    r.src.error([...p, 'kind'], `must be ${ACTIVITY_KINDS.join(', ')} (got "${kind}")`);
  }
  const title = r.string(o, 'title', p, { max: 200 });
  const minutes = r.integer(o, 'minutes', p, 2, 8);
  const instructions = r.markdown(o, 'instructions', p);
  const items: string[] = [];
  const raw = r.array(o, 'items', p, 1, 12);
  raw.forEach((c, k) => {
    if (typeof c !== 'string' || c.trim() === '')
      r.src.error([...p, 'items', k], `must be a non-empty text (got ${describe(c)})`);
    else items.push(c);
  });
  if (kind === 'checklist' && (raw.length < 4 || raw.length > 10)) {
    r.src.editorial([...p, 'items'], `a checklist has 4 to 10 items (has ${raw.length})`);
  }
  const debrief = r.markdown(o, 'debrief', p);
  if (
    id === null ||
    kind === null ||
    !(ACTIVITY_KINDS as readonly string[]).includes(kind) ||
    title === null ||
    minutes === null ||
    instructions === null ||
    debrief === null ||
    items.length !== raw.length ||
    items.length === 0
  ) {
    return null;
  }
  return {
    type: 'activity',
    id,
    kind: kind as ActivityBlock['kind'],
    title,
    minutes,
    instructions,
    items,
    debrief,
  };
}

function readQuiz(r: Reader, o: Record<string, unknown>, p: Path): Block | null {
  r.object(o, p, ['type', 'id', 'title', 'questions']);
  const id = r.string(o, 'id', p, BLOCK_ID);
  const title = r.string(o, 'title', p, { max: 200 });
  const questions: QuizQuestion[] = [];
  let failed = false;
  r.array(o, 'questions', p, 2, 5).forEach((q, j) => {
    const qp: Path = [...p, 'questions', j];
    const qo = r.object(q, qp, ['prompt', 'choices', 'answer', 'explanation']);
    if (!qo) {
      failed = true;
      return;
    }
    const prompt = r.string(qo, 'prompt', qp, { max: 500 });
    const rawChoices = r.array(qo, 'choices', qp, 2, 5);
    const choices: string[] = [];
    rawChoices.forEach((c, k) => {
      if (typeof c !== 'string' || c.trim() === '') {
        r.src.error([...qp, 'choices', k], `must be a non-empty text (got ${describe(c)})`);
        failed = true;
      } else choices.push(c);
    });
    if (new Set(choices).size !== choices.length) r.src.error([...qp, 'choices'], 'two choices are identical');
    const answer = r.integer(qo, 'answer', qp, 0, Math.max(0, rawChoices.length - 1));
    const explanation = r.string(qo, 'explanation', qp, { max: 1000 });
    if (prompt === null || answer === null || explanation === null || choices.length < 2) failed = true;
    else questions.push({ prompt, choices, answer, explanation });
  });
  if (id === null || title === null || failed || questions.length < 2) return null;
  return { type: 'quiz', id, title, questions };
}

// ───────────────────────────── The directory ─────────────────────────────

// ───────────────────────────── Glossary ─────────────────────────────

/** content/glossary/<area>.yaml: the terms and acronyms the module pages explain on first use. */
export const GLOSSARY_DIR = 'glossary';

function readGlossary(src: SourceFile): GlossaryEntry[] {
  if (!src.ok) return [];
  const r = new Reader(src);
  if (src.data === null || src.data === undefined) return [];
  if (!Array.isArray(src.data)) {
    src.error([], 'a glossary file is a list of { term, expansion, definition }');
    return [];
  }
  const entries: GlossaryEntry[] = [];
  const seen = new Set<string>();
  (src.data as unknown[]).forEach((item, i) => {
    const p: Path = [i];
    const o = r.object(item, p, ['term', 'expansion', 'definition']);
    if (!o) return;
    const term = r.string(o, 'term', p, { max: 80 });
    const expansion = r.string(o, 'expansion', p, { optional: true, nullable: true, max: 200 });
    const definition = r.string(o, 'definition', p, { max: 600 });
    if (term === null || definition === null) return;
    if (seen.has(term)) {
      src.editorial([...p, 'term'], `"${term}" is defined twice in this file`);
      return;
    }
    seen.add(term);
    entries.push({ term, expansion, definition });
  });
  return entries;
}

/** One definition per term across every glossary file; a term defined in two files is an error. */
function mergeGlossary(files: { src: SourceFile; area: string; entries: GlossaryEntry[] }[]): Glossary {
  const glossary: Glossary = {};
  const where = new Map<string, string>();
  for (const f of files) {
    const kept: GlossaryEntry[] = [];
    f.entries.forEach((e) => {
      const other = where.get(e.term);
      if (other !== undefined) {
        const i = (f.src.data as { term?: unknown }[]).findIndex((x) => x?.term === e.term);
        f.src.editorial([i, 'term'], `"${e.term}" is already defined in ${other}: a term is defined once`);
        return;
      }
      where.set(e.term, f.src.file);
      kept.push(e);
    });
    glossary[f.area] = kept;
  }
  return glossary;
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
  const slots = new Map<
    string,
    {
      defaults: number;
      defaultMinutes: number | null;
      variants: { file: string; branches: string[]; src: SourceFile; minutes: number | null }[];
    }
  >();

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
 * The programme's structure, as track.json states it: for the common trunk and for each fund, every theme
 * holds exactly `modules` modules (positions 1…n, no gap); a branch variant has the default module of its
 * position beside it and the same nominal duration; and a learner's modules add up to `plannedMinutes`.
 * An owner (common or a fund) with no module at all in the track only gets warnings: its learners would
 * see « module pas encore disponible ».
 */
function checkProgramme(o: {
  track: TrackDef;
  trackSrc: SourceFile;
  trackDirName: string;
  funds: FundsFile;
  slots: Map<
    string,
    {
      defaults: number;
      defaultMinutes: number | null;
      variants: { file: string; branches: string[]; src: SourceFile; minutes: number | null }[];
    }
  >;
  fileProblem: (file: string, message: string, severity?: ContentProblem['severity'], editorial?: boolean) => void;
}): void {
  const { track, trackSrc, trackDirName, funds, slots, fileProblem } = o;
  const trackFile = trackSrc.file;
  // Variants without a default of their position.
  for (const [key, slot] of slots) {
    if (!key.startsWith(`${trackDirName}/`) || slot.defaults > 0) continue;
    const [, owner, theme, pos] = /^[^/]+\/([^/]+)\/([^#]+)#(\d+)$/.exec(key) ?? [];
    const expected = pos === '1' ? 'module.yaml' : `module-${pos}.yaml`;
    for (const v of slot.variants) {
      v.src.error(
        [],
        `branch variant without a default module: add ${trackDirName}/${owner}/${theme}/${expected} for the fund's other branches`,
      );
    }
  }
  for (const slot of slots.values()) {
    for (const v of slot.variants) {
      if (slot.defaultMinutes !== null && v.minutes !== null && v.minutes !== slot.defaultMinutes) {
        v.src.editorial(
          ['nominalMinutes'],
          `a branch variant lasts as long as the default module it replaces (${slot.defaultMinutes} min): every learner's programme has the same planned duration`,
        );
      }
    }
  }

  const owners = [COMMON_FUND, ...funds.funds.map((f) => f.slug)];
  for (const owner of owners) {
    const themes = track.themes.filter((t) => (owner === COMMON_FUND ? t.trunk === 'common' : t.trunk === 'sector'));
    if (themes.length === 0) continue;
    const ownerName = owner === COMMON_FUND ? 'the common trunk' : `fund "${owner}"`;
    const hasAny = [...slots.keys()].some((k) => k.startsWith(`${trackDirName}/${owner}/`));
    let found = 0;
    for (const theme of themes) {
      const present: number[] = [];
      for (const [key, slot] of slots) {
        const m = /^[^/]+\/([^/]+)\/([^#]+)#(\d+)$/.exec(key);
        if (!m || !key.startsWith(`${trackDirName}/`) || m[1] !== owner || m[2] !== theme.slug) continue;
        if (slot.defaults > 0) present.push(Number(m[3]));
      }
      present.sort((a, b) => a - b);
      found += present.length;
      if (!hasAny) {
        fileProblem(
          trackFile,
          `theme "${theme.slug}" has no module for ${ownerName} (expected ${owner}/${theme.slug}/module.yaml)`,
          'warning',
        );
        continue;
      }
      const expected = Array.from({ length: theme.modules }, (_, i) => i + 1);
      const missing = expected.filter((n) => !present.includes(n));
      const extra = present.filter((n) => n > theme.modules);
      if (missing.length > 0 || extra.length > 0) {
        const name = (n: number) => `${owner}/${theme.slug}/${n === 1 ? 'module.yaml' : `module-${n}.yaml`}`;
        const parts = [
          `theme "${theme.slug}" holds ${theme.modules} module(s) for ${ownerName} in track.json, found ${present.length}`,
        ];
        if (missing.length > 0) parts.push(`missing ${missing.map(name).join(', ')}`);
        if (extra.length > 0) parts.push(`beyond the count: ${extra.map(name).join(', ')}`);
        const rawThemes = (trackSrc.data as { themes?: { slug?: unknown }[] } | undefined)?.themes ?? [];
        const themeIndex = rawThemes.findIndex((t) => t?.slug === theme.slug);
        const { line, column } = trackSrc.position(['themes', themeIndex, 'modules']);
        trackSrc.at(line, column, parts.join('; '), 'error', true);
      }
    }
    const planned = themes.reduce((n, t) => n + t.modules, 0);
    if (hasAny && found !== planned) {
      const { line, column } = trackSrc.position(['themes']);
      trackSrc.at(
        line,
        column,
        `${owner === COMMON_FUND ? 'the common trunk' : `the sector trunk of fund "${owner}"`} has ${found} module(s); track.json plans ${planned} over its ${themes.length} themes`,
        'error',
        true,
      );
    }
  }
  // The planned duration: every learner follows the common trunk and the sector trunk of their fund.
  if (track.plannedMinutes !== null) {
    const trunkMinutes = (owner: string) => {
      let total = 0;
      for (const [key, slot] of slots) {
        const m = /^[^/]+\/([^/]+)\/([^#]+)#(\d+)$/.exec(key);
        if (!m || !key.startsWith(`${trackDirName}/`) || m[1] !== owner || slot.defaults === 0) continue;
        const theme = track.themes.find((t) => t.slug === m[2]);
        if (!theme || Number(m[3]) > theme.modules) continue;
        total += slot.defaultMinutes ?? 0;
      }
      return total;
    };
    const common = trunkMinutes(COMMON_FUND);
    for (const f of funds.funds) {
      const sector = trunkMinutes(f.slug);
      if (sector === 0) continue;
      if (common + sector !== track.plannedMinutes) {
        const { line, column } = trackSrc.position(['plannedMinutes']);
        trackSrc.at(
          line,
          column,
          `plannedMinutes: a learner of fund "${f.slug}" has ${common} min of common trunk + ${sector} min of sector trunk = ${common + sector} min, not the planned ${track.plannedMinutes} min (nominalMinutes of the modules)`,
          'error',
          true,
        );
      }
    }
  }
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
