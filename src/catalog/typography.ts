/**
 * French typography of learner-facing text (docs/content-style.md): the house style that
 * `content check` enforces and `content fix-typography` applies.
 *
 * - apostrophe ’ (U+2019), never the typewriter '
 * - guillemets « » with a no-break space (U+00A0) inside, never typewriter "…"
 * - a narrow no-break space (U+202F) before ; ? ! and a no-break space (U+00A0) before :
 * - digit groups separated by a narrow no-break space (1 530), a no-break space before € and %
 *
 * URLs, inline code and Markdown link targets are left alone. Pure functions, no I/O.
 */

export const NBSP = '\u00a0';
export const NNBSP = '\u202f';

export interface TypographyIssue {
  /** Offset in the text. */
  index: number;
  rule: 'apostrophe' | 'quotes' | 'space-before-punctuation' | 'number-spacing';
  message: string;
}

/** Spans that typography must not touch: URLs, inline code, Markdown link targets, autolinks. */
const PROTECTED = /`[^`\n]*`|\]\([^)\s]*\)|<https?:[^>\s]*>|https?:\/\/[^\s<>)\]»"]*[^\s<>)\]»".,;:!?]/g;

function protectedRanges(text: string): [number, number][] {
  const ranges: [number, number][] = [];
  for (const m of text.matchAll(PROTECTED)) ranges.push([m.index, m.index + m[0].length]);
  return ranges;
}

function isProtected(ranges: [number, number][], index: number): boolean {
  for (const [a, b] of ranges) if (index >= a && index < b) return true;
  return false;
}

interface Rule {
  rule: TypographyIssue['rule'];
  pattern: RegExp;
  message: string;
  /** Replacement for the whole match (same groups as the pattern). */
  fix: (match: RegExpExecArray) => string;
}

const RULES: Rule[] = [
  {
    rule: 'apostrophe',
    pattern: /'/g,
    message: 'apostrophe droite : écrire ’',
    fix: () => '’',
  },
  {
    rule: 'quotes',
    pattern: /"([^"\n]*)"/g,
    message: 'guillemets droits : écrire « … » avec des espaces insécables',
    fix: (m) => `«${NBSP}${(m[1] ?? '').trim()}${NBSP}»`,
  },
  {
    rule: 'quotes',
    pattern: /«[ \u202f]|[ \u202f]»|«(?=[^\s\u00a0])|(?<=[^\s\u00a0])»/g,
    message: 'guillemets : une espace insécable (U+00A0) après « et avant »',
    fix: (m) => (m[0].startsWith('«') ? `«${NBSP}` : `${NBSP}»`),
  },
  {
    rule: 'space-before-punctuation',
    pattern: /(?:[ \u00a0]|(?<=[\p{L}\p{N})»%€]))([;?!])(?=\s|$|[)»"*_])/gu,
    message: 'une espace fine insécable (U+202F) avant ; ? !',
    fix: (m) => `${NNBSP}${m[1]}`,
  },
  {
    rule: 'space-before-punctuation',
    pattern: /(?:[ \u202f]|(?<=[\p{L})»]))(:)(?=\s|$|[*_])/gu,
    message: 'une espace insécable (U+00A0) avant :',
    fix: () => `${NBSP}:`,
  },
  {
    rule: 'number-spacing',
    pattern: /(\d)[ \u00a0](\d{3})(?!\d)/g,
    message: 'séparateur de milliers : une espace fine insécable (U+202F), comme dans 1 530',
    fix: (m) => `${m[1]}${NNBSP}${m[2]}`,
  },
  {
    rule: 'number-spacing',
    pattern: /(\d)(?: |\u202f)?([€%])/g,
    message: 'une espace insécable (U+00A0) entre le nombre et € ou %',
    fix: (m) => `${m[1]}${NBSP}${m[2]}`,
  },
];

/** Every departure from the house style, in text order (one per offending character run). */
export function typographyIssues(text: string): TypographyIssue[] {
  const ranges = protectedRanges(text);
  const issues: TypographyIssue[] = [];
  for (const r of RULES) {
    r.pattern.lastIndex = 0;
    for (let m = r.pattern.exec(text); m; m = r.pattern.exec(text)) {
      if (isProtected(ranges, m.index)) continue;
      if (r.fix(m) === m[0]) continue;
      issues.push({ index: m.index, rule: r.rule, message: r.message });
    }
  }
  return issues.sort((a, b) => a.index - b.index);
}

/** The text in the house style. Idempotent: fixing fixed text changes nothing. */
export function fixTypography(text: string): string {
  let out = text;
  for (const r of RULES) {
    const ranges = protectedRanges(out);
    r.pattern.lastIndex = 0;
    let result = '';
    let last = 0;
    for (let m = r.pattern.exec(out); m; m = r.pattern.exec(out)) {
      if (isProtected(ranges, m.index)) continue;
      result += out.slice(last, m.index) + r.fix(m);
      last = m.index + m[0].length;
      if (m[0].length === 0) r.pattern.lastIndex++;
    }
    out = result + out.slice(last);
  }
  return out;
}
