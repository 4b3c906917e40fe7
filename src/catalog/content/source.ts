import { type Document, isCollection, isNode, LineCounter, type Node, parseDocument } from 'yaml';

/**
 * One parsed content file and where its values are. YAML (and JSON, a subset of YAML) is parsed into a
 * document that keeps node ranges; a LineCounter turns offsets into lines, so every problem names the
 * file, line and column of the value it rejects.
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

export function formatProblem(p: ContentProblem, base = ''): string {
  // A folder-wide problem ('.') is shown as the folder itself.
  const file = p.file === '.' && base !== '' ? base.replace(/\/$/, '') : `${base}${p.file}`;
  return `${file}:${p.line}:${p.column}: ${p.severity}: ${p.message}`;
}

/** The path of a value inside a file: keys and list indexes, e.g. ['blocks', 4, 'questions', 1]. */
export type Path = (string | number)[];

/** `blocks[4].questions[1].answer`: how a message names the value it is about. */
export function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as messages show it: `string "x"`, `number 3`, `a list`, `nothing`. */
export function describe(v: unknown): string {
  if (v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

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
