import type { Glossary, GlossaryEntry } from '../model.js';
import { GlossarySchema } from './schemas.js';
import { isObject, type Path, type SourceFile } from './source.js';
import { Validation } from './validate.js';

/** content/glossary/<area>.yaml: the terms and acronyms the module pages explain on first use. */
export const GLOSSARY_DIR = 'glossary';

export function readGlossary(src: SourceFile): GlossaryEntry[] {
  if (!src.ok) return [];
  if (src.data === null || src.data === undefined) return [];
  if (!Array.isArray(src.data)) {
    src.error([], 'a glossary file is a list of { term, expansion, definition }');
    return [];
  }
  const v = new Validation(src);
  v.check(GlossarySchema, src.data);
  const entries: GlossaryEntry[] = [];
  const seen = new Set<string>();
  (src.data as unknown[]).forEach((item, i) => {
    const p: Path = [i];
    if (!isObject(item)) return;
    const term = v.text(item, 'term', p);
    const expansion = v.text(item, 'expansion', p);
    const definition = v.text(item, 'definition', p);
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
export function mergeGlossary(files: { src: SourceFile; area: string; entries: GlossaryEntry[] }[]): Glossary {
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
