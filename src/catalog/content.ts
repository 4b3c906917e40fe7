import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Lexer, type Token } from 'marked';
import { type Document, isCollection, isNode, LineCounter, type Node, parseDocument } from 'yaml';
import {
  type Block,
  type BranchDef,
  COMMON_FUND,
  type ContentSet,
  type FundDef,
  type FundsFile,
  type ModuleManifest,
  type QuizQuestion,
  type ThemeDef,
  type TrackDef,
  type TutorialStep,
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
}

export interface ContentLoad {
  problems: ContentProblem[];
  /** Present when there is no error (warnings allowed). */
  content: ContentSet | null;
}

export function formatProblem(p: ContentProblem, base = ''): string {
  return `${base}${p.file}:${p.line}:${p.column}: ${p.severity}: ${p.message}`;
}

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const IDCC = /^\d{4}$/;
const VIDEO_FILE = /\.(mp4|webm|ogv|ogg|m4v|mov)(\?.*)?$/i;

type Path = (string | number)[];

/** One parsed file and the problems found in it. */
class SourceFile {
  readonly lines = new LineCounter();
  readonly doc: Document.Parsed;
  readonly data: unknown;

  constructor(
    readonly file: string,
    text: string,
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

  private report(path: Path, message: string, severity: ContentProblem['severity']): void {
    const { line, column } = this.position(path);
    const where = path.length > 0 ? `${formatPath(path)}: ` : '';
    this.problems.push({ file: this.file, line, column, severity, message: `${where}${message}` });
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
      const bo = r.object(b, bp, ['idcc', 'name']);
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
      if (idcc !== null && bname !== null) branches.push({ idcc, name: bname });
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
  const root = r.object(src.data, [], ['id', 'title', 'version', 'themes']);
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
    const o = r.object(t, p, ['slug', 'title', 'trunk', 'order']);
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
    if (slug && ttitle && (trunk === 'common' || trunk === 'sector') && order !== null) {
      themes.push({ slug, title: ttitle, trunk, order });
    }
  });
  namedThemes.set(src, slugs);
  if (id === null || title === null || version === null) return null;
  return { id, title, version, themes: themes.sort((a, b) => a.order - b.order) };
}

// ───────────────────────────── module.yaml ─────────────────────────────

const MODULE_KEYS = ['id', 'version', 'title', 'theme', 'fund', 'branches', 'nominalMinutes', 'summary', 'blocks'];

interface ModuleContext {
  track: TrackDef | null;
  /** Every theme slug track.json names (valid entry or not). */
  themeSlugs: Set<string> | null;
  funds: FundsFile | null;
  /** From the path: content/<track>/<fundDir>/<themeDir>/<file>. */
  fundDir: string;
  themeDir: string;
  isVariant: boolean;
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
  return { id, version, title, theme, fund, branches, nominalMinutes, summary, blocks };
}

function readBlocks(r: Reader, root: Record<string, unknown>): Block[] | null {
  const src = r.src;
  const items = r.array(root, 'blocks', [], 1);
  const blocks: Block[] = [];
  const ids = new Set<string>();
  let failed = items.length === 0;
  let quizzes = 0;
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
        case 'quiz':
          quizzes++;
          if (i !== items.length - 1) src.error([...p, 'type'], 'the quiz must be the last block');
          return readQuiz(r, item, p);
        default:
          src.error([...p, 'type'], `${describe(type)}: type must be video, tutorial, testimonial or quiz`);
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
  if (src !== null && src !== 'placeholder' && !VIDEO_FILE.test(src) && captions !== null) {
    r.src.warn([...p, 'captions'], 'captions are used with a video file only; an embedded player shows its own');
  }
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

const MODULE_FILE = /^module(?:\.([a-z0-9]+(?:-[a-z0-9]+)*))?\.yaml$/;

async function listDir(dir: string): Promise<{ name: string; isDir: boolean }[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => !e.name.startsWith('.'))
    .map((e) => ({ name: e.name, isDir: e.isDirectory() }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Loads and validates every file of a content directory; never throws for content problems. */
export async function loadContent(contentDir: string): Promise<ContentLoad> {
  const problems: ContentProblem[] = [];
  const rel = (abs: string) => relative(contentDir, abs).split(sep).join('/');
  const fileProblem = (file: string, message: string, severity: ContentProblem['severity'] = 'error') =>
    problems.push({ file, line: 1, column: 1, severity, message });

  try {
    if (!(await stat(contentDir)).isDirectory()) throw new Error('not a directory');
  } catch {
    fileProblem('.', `content directory ${contentDir} does not exist`);
    return { problems, content: null };
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

  const tracks: ContentSet['tracks'] = [];
  const modules: ContentSet['modules'] = [];
  const moduleIds = new Map<string, string>();
  /** (track, fund, theme) → the default module and the variants, for coverage and overlap checks. */
  const slots = new Map<
    string,
    { defaults: number; variants: { file: string; branches: string[]; src: SourceFile }[] }
  >();

  for (const top of await listDir(contentDir)) {
    if (!top.isDir) {
      if (top.name !== 'funds.json' && top.name !== 'README.md')
        fileProblem(top.name, 'unexpected file (ignored)', 'warning');
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
    if (track) tracks.push({ track, hash: contentHash(track), path: rel(join(trackDir, 'track.json')) });

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
                'a module file is named module.yaml, or module.<variant>.yaml for a branch variant',
              );
            } else if (file.name !== 'README.md') fileProblem(rel(abs), 'unexpected file (ignored)', 'warning');
            continue;
          }
          const src = await read(abs);
          if (!src) continue;
          // Presence counts for coverage even when the file is invalid: its own errors say what is wrong.
          const key = `${top.name}/${fundDir}/${themeEntry.name}`;
          const slot = slots.get(key) ?? { defaults: 0, variants: [] };
          slots.set(key, slot);
          if (m[1] === undefined) slot.defaults++;
          const manifest = readModule(src, {
            track,
            themeSlugs: namedThemes.get(trackSrc) ?? null,
            funds,
            fundDir,
            themeDir: themeEntry.name,
            isVariant: m[1] !== undefined,
          });
          if (m[1] !== undefined) slot.variants.push({ file: src.file, branches: manifest?.branches ?? [], src });
          if (!manifest) continue;
          const previous = moduleIds.get(manifest.id);
          if (previous !== undefined) {
            src.error(['id'], `duplicate module id "${manifest.id}" (also in ${previous})`);
            continue;
          }
          moduleIds.set(manifest.id, src.file);
          if (m[1] !== undefined) {
            for (const other of slot.variants) {
              if (other.src === src) continue;
              const shared = other.branches.filter((b) => manifest.branches.includes(b));
              if (shared.length > 0) {
                src.error(
                  ['branches'],
                  `IDCC ${shared.join(', ')} already has a variant for this theme in ${other.file}`,
                );
              }
            }
          }
          modules.push({ manifest, track: top.name, hash: contentHash(manifest), path: src.file });
        }
      }
    }

    // Coverage: a learner of any fund must find a module for every theme of the track.
    if (track && funds) {
      for (const theme of track.themes) {
        const owners = theme.trunk === 'common' ? [COMMON_FUND] : funds.funds.map((f) => f.slug);
        for (const owner of owners) {
          const slot = slots.get(`${top.name}/${owner}/${theme.slug}`);
          if (!slot || slot.defaults === 0) {
            if (slot && slot.variants.length > 0) {
              for (const v of slot.variants) {
                v.src.error(
                  [],
                  `branch variant without a default module: add ${top.name}/${owner}/${theme.slug}/module.yaml for the fund's other branches`,
                );
              }
            } else {
              fileProblem(
                rel(join(trackDir, 'track.json')),
                `theme "${theme.slug}" has no module for ${owner === COMMON_FUND ? 'the common trunk' : `fund "${owner}"`} (expected ${owner}/${theme.slug}/module.yaml)`,
                'warning',
              );
            }
          }
        }
      }
    }
  }

  if (tracks.length === 0 && !problems.some((p) => p.severity === 'error')) {
    fileProblem('.', 'no track found: expected <track>/track.json');
  }

  const hasErrors = problems.some((p) => p.severity === 'error');
  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  if (hasErrors || !funds) return { problems, content: null };
  return { problems, content: { funds, fundsHash: contentHash(funds), tracks, modules } };
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
