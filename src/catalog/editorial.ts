import { isMap, isPair, isScalar, isSeq, type LineCounter, type Node, Scalar } from 'yaml';
import type { Glossary, ModuleManifest } from './model.js';
import { COMMON_FUND } from './model.js';
import { typographyIssues } from './typography.js';

/**
 * The editorial rules of `content check` (docs/content-style.md): the time model, the quiz rules, the
 * house style (typography, one spelling per term, acronyms in the glossary), captions, sources and the
 * review date. They run on modules that loaded; what they find is an editorial error or a warning.
 */

type Path = (string | number)[];

/** What the checks need of a parsed module file (content.ts's SourceFile). */
export interface ModuleSource {
  readonly file: string;
  readonly text: string;
  readonly lines: LineCounter;
  readonly doc: { contents: unknown };
  editorial(path: Path, message: string): void;
  warn(path: Path, message: string): void;
  at(line: number, column: number, message: string, severity: 'error' | 'warning', editorial: boolean): void;
}

export interface CheckedModule {
  src: ModuleSource;
  manifest: ModuleManifest;
}

export interface ModuleEstimate {
  file: string;
  id: string;
  nominalMinutes: number;
  minutes: number;
  wordsRead: number;
  wordsSpoken: number;
  activityMinutes: number;
}

// ───────────────────────────── Time model ─────────────────────────────

export const READ_WORDS_PER_MINUTE = 200;
export const SPOKEN_WORDS_PER_MINUTE = 150;
/** An estimate outside [80 %, 130 %] of nominalMinutes fails the check. */
export const ESTIMATE_MIN_SHARE = 0.8;
export const ESTIMATE_MAX_SHARE = 1.3;

const WORD = /[\p{L}\p{N}]+(?:[’'-][\p{L}\p{N}]+)*/gu;

/** Words of a text, Markdown link targets and bare URLs left out. */
export function countWords(text: string): number {
  const clean = text.replace(/\]\([^)]*\)/g, ']').replace(/https?:\/\/\S+/g, ' ');
  return clean.match(WORD)?.length ?? 0;
}

/**
 * minutes = words read / 200 + words spoken / 150 + the activity's own minutes. Spoken: video
 * transcripts and the transcripts of testimonial videos; read: the summary, tutorial steps, text
 * testimonials' quotes and the quiz (prompts, choices, explanations).
 */
export function estimateModule(m: Pick<ModuleManifest, 'summary' | 'blocks'>): {
  minutes: number;
  wordsRead: number;
  wordsSpoken: number;
  activityMinutes: number;
} {
  let read = countWords(m.summary);
  let spoken = 0;
  let activity = 0;
  for (const b of m.blocks) {
    switch (b.type) {
      case 'video':
        spoken += countWords(b.transcript);
        break;
      case 'tutorial':
        for (const s of b.steps) read += countWords(s.title) + countWords(s.body);
        break;
      case 'testimonial':
        if (b.video !== null) spoken += countWords(b.transcript ?? b.quote);
        else read += countWords(b.quote);
        break;
      case 'activity':
        activity += b.minutes;
        break;
      case 'quiz':
        for (const q of b.questions) {
          read += countWords(q.prompt) + countWords(q.explanation);
          for (const c of q.choices) read += countWords(c);
        }
        break;
    }
  }
  const minutes = read / READ_WORDS_PER_MINUTE + spoken / SPOKEN_WORDS_PER_MINUTE + activity;
  return { minutes: Math.round(minutes * 10) / 10, wordsRead: read, wordsSpoken: spoken, activityMinutes: activity };
}

// ───────────────────────────── Quiz statistics ─────────────────────────────

/** The right answer is strictly longer than every other choice. */
export function answerIsLongest(q: { choices: string[]; answer: number }): boolean {
  const right = q.choices[q.answer]?.length ?? 0;
  return q.choices.every((c, i) => i === q.answer || c.length < right);
}

export const LONGEST_FOLDER_MAX = 0.4;
export const LONGEST_MODULE_MAX = 0.5;
export const POSITION_MAX = 0.45;

// ───────────────────────────── House style ─────────────────────────────

/** One spelling per term: the variants refused and the house spelling. */
export const SPELLINGS: readonly { pattern: RegExp; use: string }[] = [
  { pattern: /\bcourriels?\b/giu, use: 'e-mail' },
  { pattern: /(?<![\p{L}-])(?:e-?)?mails?\b/giu, use: 'e-mail' },
  { pattern: /(?<=[\p{Ll}\p{N},;’'] )Internet\b/gu, use: 'internet (en minuscule)' },
  { pattern: /\bsites? [wW]eb\b/gu, use: 'site internet' },
  { pattern: /\bréseaux-sociaux\b/giu, use: 'réseaux sociaux' },
  { pattern: /\b(?:on-line|online|en-ligne)\b/giu, use: 'en ligne' },
  { pattern: /\bsoftwares?\b/giu, use: 'logiciel' },
  { pattern: /\bGDPR\b|\bR\.G\.P\.D\b\.?/gu, use: 'RGPD' },
  { pattern: /\bT\.P\.E\b\.?|\btpe\b/gu, use: 'TPE' },
  { pattern: /\bP\.M\.E\b\.?|\bpme\b/gu, use: 'PME' },
];

/** Departures from SPELLINGS in a text (the house spelling « e-mail » itself matches the e-mail pattern: skipped). */
function spellingFindings(text: string): { index: number; found: string; use: string }[] {
  const out: { index: number; found: string; use: string }[] = [];
  const skip = protectedSpans(text);
  for (const s of SPELLINGS) {
    s.pattern.lastIndex = 0;
    for (const m of text.matchAll(s.pattern)) {
      if (inSpans(skip, m.index)) continue;
      if (/^e-mails?$/i.test(m[0])) continue;
      out.push({ index: m.index, found: m[0], use: s.use });
    }
  }
  return out;
}

const PROTECTED = /`[^`\n]*`|\]\([^)\s]*\)|<https?:[^>\s]*>|https?:\/\/[^\s<>)\]»"]*/g;

function protectedSpans(text: string): [number, number][] {
  return [...text.matchAll(PROTECTED)].map((m) => [m.index, m.index + m[0].length]);
}

function inSpans(spans: [number, number][], i: number): boolean {
  return spans.some(([a, b]) => i >= a && i < b);
}

const TOKEN = /[\p{L}\p{N}]+/gu;
const ROMAN = /^[IVXLC]+(?:e|er|ème|es)?$/u;

/** Acronyms of a text: words with two capitals or more and no more lower-case than capitals (SSCC, eIDAS). */
export function acronymsIn(text: string): { index: number; term: string }[] {
  const skip = protectedSpans(text);
  const out: { index: number; term: string }[] = [];
  for (const m of text.matchAll(TOKEN)) {
    const w = m[0];
    const upper = (w.match(/\p{Lu}/gu) ?? []).length;
    const lower = (w.match(/\p{Ll}/gu) ?? []).length;
    if (upper < 2 || lower > upper || ROMAN.test(w)) continue;
    if (inSpans(skip, m.index)) continue;
    out.push({ index: m.index, term: w });
  }
  return out;
}

/** Bare URLs in Markdown (not inside a link): they should be written as [texte](https://…). */
export function bareUrls(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/https?:\/\/[^\s)>\]]+/g)) {
    const before = text.slice(Math.max(0, m.index - 2), m.index);
    if (before.endsWith('](') || before.endsWith('<')) continue;
    out.push(m.index);
  }
  return out;
}

/** Keys whose values are not learner-facing text (identifiers, URLs, numbers). */
const NOT_TEXT = new Set([
  'id',
  'type',
  'src',
  'captions',
  'url',
  'video',
  'theme',
  'fund',
  'kind',
  'reviewedOn',
  'branches',
  'version',
  'nominalMinutes',
  'minutes',
  'answer',
]);

/** Keys holding Markdown (where a bare URL should be a link). */
const MARKDOWN_KEYS = new Set(['transcript', 'body', 'instructions', 'debrief']);

interface TextValue {
  path: Path;
  key: string;
  scalar: Scalar;
}

/** Every learner-facing string scalar of a YAML document, with its path. */
export function textScalars(contents: unknown): TextValue[] {
  const out: TextValue[] = [];
  const walk = (node: unknown, path: Path, key: string) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const k = String(pair.key.value);
        if (NOT_TEXT.has(k)) continue;
        walk(pair.value, [...path, k], k);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        walk(item, [...path, i], key);
      });
    } else if (isScalar(node) && typeof node.value === 'string') {
      out.push({ path, key, scalar: node });
    }
  };
  walk(contents, [], '');
  return out;
}

/** The line and column in the file of the character at `index` of a scalar's value. */
function locate(src: ModuleSource, scalar: Scalar, index: number): { line: number; column: number } {
  const start = (scalar as Node).range?.[0] ?? 0;
  const head = src.lines.linePos(start);
  const value = String(scalar.value);
  const before = value.slice(0, index);
  const nl = before.lastIndexOf('\n');
  const lineOffset = (before.match(/\n/g) ?? []).length;
  const block = scalar.type === Scalar.BLOCK_LITERAL || scalar.type === Scalar.BLOCK_FOLDED;
  if (block) {
    const line = head.line + 1 + lineOffset;
    const text = src.text.split('\n')[line - 1] ?? '';
    const indent = /^ */.exec(text)?.[0].length ?? 0;
    return { line, column: indent + (index - nl - 1) + 1 };
  }
  if (lineOffset === 0) {
    const quoted = scalar.type === Scalar.QUOTE_DOUBLE || scalar.type === Scalar.QUOTE_SINGLE;
    return { line: head.line, column: head.col + (quoted ? 1 : 0) + index };
  }
  return { line: head.line + lineOffset, column: 1 };
}

// ───────────────────────────── The checks ─────────────────────────────

export interface FolderProblem {
  message: string;
  severity: 'error' | 'warning';
}

/** Runs every editorial rule; returns each module's time estimate and the folder-wide problems. */
export function checkModules(
  modules: readonly CheckedModule[],
  glossary: Glossary,
  options: { today: Date; folderProblem: (p: FolderProblem) => void },
): ModuleEstimate[] {
  const estimates: ModuleEstimate[] = [];
  let questions = 0;
  let longest = 0;
  const positions = [0, 0, 0, 0, 0];
  const reviewLimit = new Date(options.today);
  reviewLimit.setUTCFullYear(reviewLimit.getUTCFullYear() - 1);

  for (const { src, manifest } of modules) {
    // Time model.
    const e = estimateModule(manifest);
    estimates.push({ file: src.file, id: manifest.id, nominalMinutes: manifest.nominalMinutes, ...e });
    const low = manifest.nominalMinutes * ESTIMATE_MIN_SHARE;
    const high = manifest.nominalMinutes * ESTIMATE_MAX_SHARE;
    if (e.minutes < low || e.minutes > high) {
      src.editorial(
        ['nominalMinutes'],
        `the module holds about ${e.minutes} min (${e.wordsRead} words read, ${e.wordsSpoken} spoken, activity ${e.activityMinutes} min), outside ${fmt(low)}–${fmt(high)} min (80–130 % of ${manifest.nominalMinutes}): ${e.minutes < low ? 'add content or an activity' : 'shorten it or split it'}`,
      );
    }

    // Review date.
    if (manifest.reviewedOn !== undefined && new Date(`${manifest.reviewedOn}T00:00:00Z`) < reviewLimit) {
      src.warn(['reviewedOn'], `last reviewed on ${manifest.reviewedOn}, more than 12 months ago: check its facts`);
    }

    // Quiz.
    manifest.blocks.forEach((b, bi) => {
      if (b.type !== 'quiz') return;
      if (b.questions.length < 3 || b.questions.length > 5) {
        src.editorial(['blocks', bi, 'questions'], `a quiz has 3 to 5 questions (has ${b.questions.length})`);
      }
      let moduleLongest = 0;
      b.questions.forEach((q, qi) => {
        if (q.choices.length < 3 || q.choices.length > 4) {
          src.editorial(
            ['blocks', bi, 'questions', qi, 'choices'],
            `a question has 3 or 4 choices (has ${q.choices.length})`,
          );
        }
        questions++;
        if (answerIsLongest(q)) {
          longest++;
          moduleLongest++;
        }
        if (q.answer < positions.length) positions[q.answer] = (positions[q.answer] ?? 0) + 1;
      });
      if (b.questions.length > 0 && moduleLongest / b.questions.length > LONGEST_MODULE_MAX) {
        src.warn(
          ['blocks', bi, 'questions'],
          `the right answer is the longest choice in ${moduleLongest} of ${b.questions.length} questions: vary the lengths`,
        );
      }
    });

    // Captions for real videos.
    manifest.blocks.forEach((b, bi) => {
      if (b.type === 'video' && b.src !== 'placeholder' && b.captions === null) {
        src.editorial(['blocks', bi, 'captions'], 'a real video needs captions (an https URL of a WebVTT file)');
      }
      if (b.type === 'testimonial' && b.video !== null && b.video !== 'placeholder' && b.captions === null) {
        src.editorial(['blocks', bi, 'captions'], 'a real video needs captions (an https URL of a WebVTT file)');
      }
    });

    // House style, over every learner-facing text of the file.
    const terms = glossaryTerms(glossary, manifest.fund);
    const reported = new Set<string>();
    for (const t of textScalars(src.doc.contents)) {
      const value = String(t.scalar.value);
      const issues = typographyIssues(value);
      for (const issue of issues) {
        const { line, column } = locate(src, t.scalar, issue.index);
        src.at(line, column, `${fmtPath(t.path)}: typography: ${issue.message}`, 'error', true);
      }
      for (const f of spellingFindings(value)) {
        const { line, column } = locate(src, t.scalar, f.index);
        src.at(line, column, `${fmtPath(t.path)}: spelling: "${f.found}", write « ${f.use} »`, 'error', true);
      }
      for (const a of acronymsIn(value)) {
        if (terms.has(a.term) || reported.has(a.term)) continue;
        reported.add(a.term);
        const { line, column } = locate(src, t.scalar, a.index);
        src.at(
          line,
          column,
          `${fmtPath(t.path)}: acronym "${a.term}" is not in the glossary (content/glossary/${manifest.fund === COMMON_FUND ? 'common' : `common.yaml or ${manifest.fund}`}.yaml)`,
          'error',
          true,
        );
      }
      if (MARKDOWN_KEYS.has(t.key)) {
        for (const i of bareUrls(value)) {
          const { line, column } = locate(src, t.scalar, i);
          src.at(
            line,
            column,
            `${fmtPath(t.path)}: a bare URL: write it as a link [texte](https://…)`,
            'warning',
            false,
          );
        }
      }
    }
  }

  if (questions > 0) {
    const share = longest / questions;
    if (share > LONGEST_FOLDER_MAX) {
      options.folderProblem({
        severity: 'error',
        message: `the right answer is the strictly longest choice in ${longest} of ${questions} questions (${pct(share)}), above ${pct(LONGEST_FOLDER_MAX)}: vary the lengths of the choices`,
      });
    }
    positions.forEach((n, i) => {
      if (n / questions > POSITION_MAX) {
        options.folderProblem({
          severity: 'warning',
          message: `the right answer is choice ${i + 1} in ${n} of ${questions} questions (${pct(n / questions)}), above ${pct(POSITION_MAX)}: vary its position`,
        });
      }
    });
  }
  return estimates;
}

/** Typography and one spelling per term over every learner-facing text of a file (a glossary file). */
export function checkTextStyle(src: ModuleSource): void {
  for (const t of textScalars(src.doc.contents)) {
    const value = String(t.scalar.value);
    for (const issue of typographyIssues(value)) {
      const { line, column } = locate(src, t.scalar, issue.index);
      src.at(line, column, `${fmtPath(t.path)}: typography: ${issue.message}`, 'error', true);
    }
    for (const f of spellingFindings(value)) {
      const { line, column } = locate(src, t.scalar, f.index);
      src.at(line, column, `${fmtPath(t.path)}: spelling: "${f.found}", write « ${f.use} »`, 'error', true);
    }
  }
}

/** The terms a module of this fund may use: general ones (common) and its fund's. */
export function glossaryTerms(glossary: Glossary, fund: string): Set<string> {
  const set = new Set<string>();
  for (const area of fund === COMMON_FUND ? [COMMON_FUND] : [COMMON_FUND, fund]) {
    for (const e of glossary[area] ?? []) set.add(e.term);
  }
  return set;
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function pct(x: number): string {
  return `${Math.round(x * 100)} %`;
}

function fmtPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
