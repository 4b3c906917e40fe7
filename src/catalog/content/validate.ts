import type { TSchema } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { HTTPS_URL, isBlank, isFiller, isHttpsUrl, MARKDOWN, MEDIA_URL, markdownIssues, NON_BLANK } from './schemas.js';
import { describe, isObject, type Path, type SourceFile } from './source.js';

/**
 * The schema pass: TypeBox finds the values that do not fit a file's schema (schemas.ts), and each
 * failure becomes one message at the value's file:line, worded as course teams know them. A value whose
 * failure makes it unusable (missing, wrong type, invalid) is remembered, so that the checks after this
 * pass skip it rather than report it again; a text that is only too long, say, stays usable.
 */
export class Validation {
  private readonly unusable = new Set<string>();

  constructor(readonly src: SourceFile) {}

  /** Checks `value` (found at `base` in the file) against `schema`; `skip` drops the failures it matches. */
  check(schema: TSchema, value: unknown, base: Path = [], skip?: (path: Path) => boolean): boolean {
    const groups = new Map<string, { path: Path; errors: ValueError[] }>();
    const collect = (e: ValueError) => {
      // A nullable value that is neither null nor fits: report what is wrong with the value itself.
      if (e.type === ValueErrorType.Union) {
        for (const inner of e.errors[0] ?? []) collect(inner);
        return;
      }
      const path = [...base, ...toPath(e.path, value)];
      const key = JSON.stringify(path);
      const group = groups.get(key) ?? { path, errors: [] };
      groups.set(key, group);
      group.errors.push(e);
    };
    for (const e of Value.Errors(schema, value)) collect(e);
    for (const { path, errors } of mappingOrder([...groups.values()])) {
      if (skip?.(path)) continue;
      for (const { message, unusable } of messages(path, errors)) {
        this.src.error(path, message);
        if (unusable) this.unusable.add(JSON.stringify(path));
      }
    }
    return groups.size === 0;
  }

  /** The value at `path` passed the schema (or only failed in a way that leaves it usable). */
  ok(path: Path): boolean {
    return !this.unusable.has(JSON.stringify(path));
  }

  /** Reports a value that a rule after the schema pass rejects, and marks it unusable. */
  reject(path: Path, message: string): void {
    this.src.error(path, message);
    this.unusable.add(JSON.stringify(path));
  }

  /** The text at `key` of `obj`, or null when absent, empty or rejected. */
  text(obj: Record<string, unknown>, key: string, path: Path): string | null {
    const v = obj[key];
    return typeof v === 'string' && this.ok([...path, key]) && !isBlank(v) ? v : null;
  }

  /** The integer at `key` of `obj`, or null when absent or rejected. */
  integer(obj: Record<string, unknown>, key: string, path: Path): number | null {
    const v = obj[key];
    return typeof v === 'number' && Number.isInteger(v) && this.ok([...path, key]) ? v : null;
  }

  /** The list at `key` of `obj`, or [] when absent or not a list. */
  list(obj: Record<string, unknown>, key: string): unknown[] {
    const v = obj[key];
    return Array.isArray(v) ? v : [];
  }
}

type Group = { path: Path; errors: ValueError[] };

/**
 * TypeBox reports a mapping's missing keys before its unknown ones; a writer reads the unknown key (often
 * the typo that makes the other one missing) first, as the check has always printed them.
 */
function mappingOrder(groups: Group[]): Group[] {
  const kind = (g: Group) =>
    g.errors.some((e) => e.type === ValueErrorType.ObjectRequiredProperty)
      ? 'missing'
      : g.errors[0]?.type === ValueErrorType.ObjectAdditionalProperties
        ? 'unknown'
        : 'other';
  const parent = (g: Group) => JSON.stringify(g.path.slice(0, -1));
  const out: Group[] = [];
  let i = 0;
  while (i < groups.length) {
    const g = groups[i]!;
    if (kind(g) !== 'missing') {
      out.push(g);
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && kind(groups[j]!) === 'missing' && parent(groups[j]!) === parent(g)) j++;
    let k = j;
    while (k < groups.length && kind(groups[k]!) === 'unknown' && parent(groups[k]!) === parent(g)) k++;
    out.push(...groups.slice(j, k), ...groups.slice(i, j));
    i = k;
  }
  return out;
}

/** A JSON pointer of TypeBox (`/blocks/0/id`) as a path: segments under a list are indexes. */
function toPath(pointer: string, root: unknown): Path {
  const path: Path = [];
  let at: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(at)) {
      path.push(Number(seg));
      at = at[Number(seg)];
    } else {
      path.push(seg);
      at = isObject(at) ? at[seg] : undefined;
    }
  }
  return path;
}

interface Message {
  message: string;
  /** The value cannot be used: what depends on it is not built. */
  unusable: boolean;
}

/** The messages for one value, from every failure TypeBox reported on it. */
function messages(path: Path, errors: ValueError[]): Message[] {
  const has = (t: ValueErrorType) => errors.find((e) => e.type === t);
  const fail = (message: string): Message[] => [{ message, unusable: true }];
  const first = errors[0]!;
  const schema = first.schema as Record<string, unknown>;
  const v = first.value;

  if (has(ValueErrorType.ObjectRequiredProperty)) return fail('is required');
  if (has(ValueErrorType.Object)) return fail('must be a mapping (key: value)');
  if (first.type === ValueErrorType.ObjectAdditionalProperties) {
    const allowed = Object.keys((schema.properties as object | undefined) ?? {}).join(', ');
    return [{ message: `unknown key "${String(path.at(-1))}" (allowed: ${allowed})`, unusable: false }];
  }
  if (typeof schema.invalid === 'string') return fail(schema.invalid.replace('{value}', describe(v)));
  switch (first.type) {
    case ValueErrorType.String:
      if (v === null) return fail('must not be empty');
      if (typeof v === 'number' && typeof schema.numberMessage === 'string') return fail(schema.numberMessage);
      return fail(`must be a text (got ${describe(v)})`);
    case ValueErrorType.Integer:
      return fail(v === null ? 'is required' : `must be an integer (got ${describe(v)})`);
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
      return fail(`must be between ${schema.minimum} and ${schema.maximum} (got ${v})`);
    case ValueErrorType.Array:
      return fail(v === null ? 'is required' : `must be a list (got ${describe(v)})`);
  }
  if (Array.isArray(v)) {
    const min = schema.minItems as number;
    const max = schema.maxItems as number;
    const out: Message[] = [];
    if (has(ValueErrorType.ArrayMinItems))
      out.push({
        message: min === 1 ? 'must not be empty' : `needs at least ${min} items (has ${v.length})`,
        unusable: false,
      });
    if (has(ValueErrorType.ArrayMaxItems))
      out.push({ message: `has at most ${max} items (has ${v.length})`, unusable: false });
    return out;
  }
  if (typeof v !== 'string') return fail(first.message);
  return textMessages(schema, v, errors);
}

/** A text: empty; placeholder filler; not matching its pattern, or too long; not an https URL; Markdown. */
function textMessages(schema: Record<string, unknown>, v: string, errors: ValueError[]): Message[] {
  if (isBlank(v)) return [{ message: 'must not be empty', unusable: true }];
  const out: Message[] = [];
  if (schema.format !== NON_BLANK && isFiller(v))
    out.push({ message: 'placeholder text (lorem ipsum) is not allowed', unusable: false });
  if (errors.some((e) => e.type === ValueErrorType.StringPattern)) {
    const message =
      typeof schema.mismatch === 'string'
        ? schema.mismatch.replace('{value}', v)
        : `"${v}" is not valid: ${schema.patternHint ?? `must match /${schema.pattern}/`}`;
    return [...out, { message, unusable: true }];
  }
  if (errors.some((e) => e.type === ValueErrorType.StringMaxLength))
    out.push({ message: `is too long (${v.length} > ${schema.maxLength})`, unusable: false });
  if (
    (schema.format === HTTPS_URL || schema.format === MEDIA_URL) &&
    !(schema.format === MEDIA_URL && v === 'placeholder')
  ) {
    const url = isHttpsUrl(v);
    if (url !== 'ok') {
      const why = url === 'http' && schema.explainHttp === true ? ' (no http: the tool page is served over https)' : '';
      out.push({ message: `"${v}" ${schema.urlHint}${why}`, unusable: true });
    }
  }
  if (schema.format === MARKDOWN) for (const m of markdownIssues(v)) out.push({ message: m, unusable: false });
  return out;
}
