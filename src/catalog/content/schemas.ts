import { type TSchema, Type } from '@sinclair/typebox';
import { FormatRegistry } from '@sinclair/typebox/type';
import { Lexer, type Token } from 'marked';

/**
 * The shape of each content file (content/README.md), as TypeBox schemas over the parsed YAML/JSON.
 * The schemas carry, beside the standard keywords, the hints the messages use (`patternHint`, `mismatch`,
 * `invalid`, `urlHint`): validate.ts turns each failure into the message course teams read. Rules that
 * span several values (references, uniqueness, ordering, durations) run after this pass: in the reader
 * of each file (funds-track.ts, module.ts, glossary.ts) and between files (loader.ts, programme.ts).
 */

export const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
export const IDCC = /^\d{4}$/;
export const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const SLUG_HINT = 'lower-case letters, digits and dashes';

// ───────────────────────────── Text formats ─────────────────────────────

/** Every text: not blank, no placeholder filler. */
export const TEXT = 'content-text';
/** Markdown of a content package: also no raw HTML, no heading, an alternative text on images. */
export const MARKDOWN = 'content-markdown';
/** An https URL. */
export const HTTPS_URL = 'content-https-url';
/** "placeholder" or an https URL (a video). */
export const MEDIA_URL = 'content-media-url';
/** A list item: not blank (no placeholder rule). */
export const NON_BLANK = 'content-non-blank';

export const isBlank = (v: string): boolean => v.trim() === '';
export const isFiller = (v: string): boolean => /lorem ipsum/i.test(v);

export function isHttpsUrl(v: string): 'ok' | 'http' | 'invalid' {
  try {
    return new URL(v).protocol === 'https:' ? 'ok' : 'http';
  } catch {
    return 'invalid';
  }
}

/** What the page would not render as intended: raw HTML and headings escape the page's own structure. */
export function markdownIssues(v: string): string[] {
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
  return [...problems];
}

const text = (v: string) => !isBlank(v) && !isFiller(v);
const formats: Record<string, (v: string) => boolean> = {
  [TEXT]: text,
  [NON_BLANK]: (v) => !isBlank(v),
  [MARKDOWN]: (v) => text(v) && markdownIssues(v).length === 0,
  [HTTPS_URL]: (v) => text(v) && isHttpsUrl(v) === 'ok',
  [MEDIA_URL]: (v) => text(v) && (v === 'placeholder' || isHttpsUrl(v) === 'ok'),
};
for (const [name, check] of Object.entries(formats)) if (!FormatRegistry.Has(name)) FormatRegistry.Set(name, check);

// ───────────────────────────── Building blocks ─────────────────────────────

interface TextOptions {
  max?: number;
  pattern?: RegExp;
  /** The message's end when `pattern` fails: `"<value>" is not valid: <patternHint>`. */
  patternHint?: string;
  /** The whole message when `pattern` fails, `{value}` standing for the value. */
  mismatch?: string;
  /** The whole message when the value is a number (e.g. an IDCC code that lost its quotes). */
  numberMessage?: string;
}

/** A non-empty text. */
export function Text(o: TextOptions = {}, format = TEXT) {
  return Type.String({
    format,
    ...(o.max !== undefined ? { maxLength: o.max } : {}),
    ...(o.pattern ? { pattern: o.pattern.source } : {}),
    ...(o.patternHint ? { patternHint: o.patternHint } : {}),
    ...(o.mismatch ? { mismatch: o.mismatch } : {}),
    ...(o.numberMessage ? { numberMessage: o.numberMessage } : {}),
  });
}

const Slug = (patternHint = SLUG_HINT) => Text({ pattern: SLUG, patternHint });
const Markdown = () => Type.String({ format: MARKDOWN });
/** `urlHint`: the message's end; `explainHttp`: an http URL is told why it is refused. */
const HttpsUrl = (max?: number, explainHttp = true) =>
  Type.String({
    format: HTTPS_URL,
    urlHint: 'must be an https URL',
    explainHttp,
    ...(max !== undefined ? { maxLength: max } : {}),
  });
const MediaUrl = () =>
  Type.String({ format: MEDIA_URL, urlHint: 'must be "placeholder" or an https URL', explainHttp: true });

/** A list item that is one message whatever is wrong with it; `{value}` stands for the described value. */
const Item = (invalid: string, extra: { pattern?: RegExp } = {}) =>
  Type.String({ format: NON_BLANK, invalid, ...(extra.pattern ? { pattern: extra.pattern.source } : {}) });

/** Absent, empty (`key:` in YAML) or the value. */
const Nullable = <T extends TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const Int = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });
const List = <T extends TSchema>(item: T, minItems: number, maxItems?: number) =>
  Type.Array(item, { minItems, ...(maxItems !== undefined ? { maxItems } : {}) });
/**
 * A mapping: unknown keys are refused, with the list of the allowed ones (in this order). `missingOrder`:
 * the order in which missing keys are reported, when it is not that one.
 */
function Mapping<T extends Record<string, TSchema>>(properties: T, missingOrder?: (keyof T & string)[]) {
  const schema = Type.Object(properties, { additionalProperties: false });
  if (missingOrder && schema.required) {
    const required = new Set(schema.required);
    schema.required = missingOrder.filter((k) => required.has(k));
  }
  return schema;
}

// ───────────────────────────── funds.json ─────────────────────────────

export const BranchSchema = Mapping({
  idcc: Text({
    pattern: IDCC,
    patternHint: 'an IDCC code is 4 digits, e.g. "1979"',
    numberMessage: 'must be a text of 4 digits in quotes (e.g. "0029"): a number loses its leading zeros',
  }),
  name: Text({ max: 300 }),
  historicalName: Type.Optional(Text({ max: 200 })),
});

export const FundSchema = Mapping({
  slug: Slug(),
  name: Text({ max: 200 }),
  historicalName: Nullable(Text({ max: 200 })),
  sectors: List(Item('must be a non-empty text'), 1),
  branches: List(BranchSchema, 0),
  // The fund plans a closing group session (docs/course-team.md §3).
  regroupement: Type.Optional(Type.Boolean({ invalid: 'must be true or false' })),
});

export const FundsSchema = Mapping({
  version: Int(1, 1_000_000),
  funds: List(FundSchema, 1),
});

// ───────────────────────────── track.json ─────────────────────────────

export const ThemeSchema = Mapping({
  slug: Slug(),
  title: Text({ max: 200 }),
  trunk: Text({ pattern: /^(?:common|sector)$/, mismatch: 'must be "common" or "sector" (got "{value}")' }),
  order: Int(1, 1000),
  modules: Type.Optional(Int(1, 9)),
});

export const WeekSchema = Mapping({
  week: Int(1, 52),
  title: Text({ max: 200 }),
  // Each item must also be a theme slug of the track (funds-track.ts).
  themes: List(Type.Unknown(), 1),
});

export const TrackSchema = Mapping({
  id: Slug(),
  title: Text({ max: 200 }),
  version: Int(1, 1_000_000),
  themes: List(ThemeSchema, 1),
  weeks: Type.Optional(Type.Union([List(WeekSchema, 1, 52), Type.Null()])),
  plannedMinutes: Type.Optional(Int(1, 100_000)),
});

// ───────────────────────────── module.yaml ─────────────────────────────

export const ACTIVITY_KINDS = ['checklist', 'worked-example', 'scenario'] as const;
const BlockId = () => Slug();

export const BLOCK_SCHEMAS = {
  video: Mapping({
    type: Type.Literal('video'),
    id: BlockId(),
    title: Text({ max: 200 }),
    src: MediaUrl(),
    captions: Nullable(HttpsUrl()),
    transcript: Markdown(),
  }),
  tutorial: Mapping({
    type: Type.Literal('tutorial'),
    id: BlockId(),
    title: Text({ max: 200 }),
    steps: List(Mapping({ title: Text({ max: 200 }), body: Markdown() }), 1, 12),
  }),
  testimonial: Mapping({
    type: Type.Literal('testimonial'),
    id: BlockId(),
    title: Nullable(Text({ max: 200 })),
    quote: Text({ max: 2000 }),
    person: Text({ max: 100 }),
    role: Text({ max: 200 }),
    video: Nullable(MediaUrl()),
    captions: Nullable(HttpsUrl()),
    transcript: Nullable(Markdown()),
  }),
  activity: Mapping({
    type: Type.Literal('activity'),
    id: BlockId(),
    kind: Text({
      pattern: new RegExp(`^(?:${ACTIVITY_KINDS.join('|')})$`),
      mismatch: `must be ${ACTIVITY_KINDS.join(', ')} (got "{value}")`,
    }),
    title: Text({ max: 200 }),
    minutes: Int(2, 8),
    instructions: Markdown(),
    items: List(Item('must be a non-empty text (got {value})'), 1, 12),
    debrief: Markdown(),
  }),
  quiz: Mapping({
    type: Type.Literal('quiz'),
    id: BlockId(),
    title: Text({ max: 200 }),
    questions: List(
      Mapping({
        prompt: Text({ max: 500 }),
        choices: List(Item('must be a non-empty text (got {value})'), 2, 5),
        // At most the last choice's index (module.ts).
        answer: Type.Integer(),
        explanation: Text({ max: 1000 }),
      }),
      2,
      5,
    ),
  }),
} as const;

export type BlockType = keyof typeof BLOCK_SCHEMAS;

export const SourceSchema = Mapping({
  title: Text({ max: 200 }),
  url: HttpsUrl(1000, false),
  supports: Text({ max: 500 }),
});

export const ModuleSchema = Mapping(
  {
    id: Slug(),
    version: Int(1, 1_000_000),
    title: Text({ max: 200 }),
    theme: Slug('a theme slug'),
    fund: Slug('a fund slug or "common"'),
    branches: Type.Optional(
      Type.Union([
        List(Item('{value} is not an IDCC code: write 4 digits in quotes, e.g. "2941"', { pattern: IDCC }), 0),
        Type.Null(),
      ]),
    ),
    nominalMinutes: Int(1, 120),
    summary: Text({ max: 600 }),
    // Each block is checked against BLOCK_SCHEMAS by its `type`.
    blocks: List(Type.Unknown(), 1),
    // Content model v2: their absence is an editorial error (module.ts).
    reviewedOn: Nullable(Text({ pattern: ISO_DATE, patternHint: 'an ISO date, e.g. "2026-12-01"' })),
    sources: Nullable(List(SourceSchema, 0, 20)),
  },
  // As the check has always listed them.
  ['id', 'version', 'title', 'summary', 'nominalMinutes', 'theme', 'fund', 'blocks'],
);

// ───────────────────────────── glossary/<area>.yaml ─────────────────────────────

export const GlossaryEntrySchema = Mapping({
  term: Text({ max: 80 }),
  expansion: Nullable(Text({ max: 200 })),
  definition: Text({ max: 600 }),
});

/** A glossary file is a list of entries. */
export const GlossarySchema = Type.Array(GlossaryEntrySchema);
