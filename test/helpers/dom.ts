import { parseHTML } from 'linkedom';

/**
 * HTML assertions through a DOM parser (linkedom) rather than regular expressions over the markup:
 * attribute order, quoting, whitespace and escaping no longer matter, only what a browser would see.
 */

export type Dom = ReturnType<typeof parseHTML>['document'];

/** Parses a whole page (or a fragment, wrapped in a page). */
export function dom(html: string): Dom {
  return parseHTML(/<html[\s>]/i.test(html) ? html : `<!doctype html><html><body>${html}</body></html>`).document;
}

/** Visible text with runs of white space (including no-break spaces) collapsed to one space, trimmed. */
export function normalise(text: string | null | undefined): string {
  return (text ?? '').replace(/[\s\u00a0\u202f]+/g, ' ').trim();
}

/** The text of the first element matching `selector`, normalised; null when there is none. */
export function text(doc: Dom, selector: string): string | null {
  const element = doc.querySelector(selector);
  return element ? normalise(element.textContent) : null;
}

/** The texts of every element matching `selector`, normalised. */
export function texts(doc: Dom, selector: string): string[] {
  return [...doc.querySelectorAll(selector)].map((e) => normalise(e.textContent));
}

/** An attribute of the first element matching `selector`; null when the element or the attribute is missing. */
export function attr(doc: Dom, selector: string, name: string): string | null {
  return doc.querySelector(selector)?.getAttribute(name) ?? null;
}

/** The attribute `name` of every element matching `selector` (elements without it are skipped). */
export function attrs(doc: Dom, selector: string, name: string): string[] {
  return [...doc.querySelectorAll(selector)].map((e) => e.getAttribute(name)).filter((v): v is string => v !== null);
}

/** Whether an element matches `selector`. */
export function has(doc: Dom, selector: string): boolean {
  return doc.querySelector(selector) !== null;
}

/**
 * Every row of the first table matching `selector`, as arrays of normalised cell texts (`th` and `td`),
 * header rows included, in document order.
 */
export function tableRows(doc: Dom, selector = 'table'): string[][] {
  const table = doc.querySelector(selector);
  if (!table) throw new Error(`no table matches ${selector}`);
  return [...table.querySelectorAll('tr')].map((row) =>
    [...row.querySelectorAll('th, td')].map((cell) => normalise(cell.textContent)),
  );
}

/** The rows of a table keyed by their header row: one object per body row. */
export function tableRecords(doc: Dom, selector = 'table'): Record<string, string>[] {
  const [header, ...rows] = tableRows(doc, selector);
  if (!header) return [];
  return rows.map((cells) => Object.fromEntries(header.map((name, i) => [name, cells[i] ?? ''])));
}

/** The value a form control submits: checked radio, selected option, or an input's value. */
export function fieldValue(doc: Dom, name: string): string | null {
  const checked = doc.querySelector(`input[name="${name}"]:checked, input[name="${name}"][checked]`);
  if (checked) return checked.getAttribute('value');
  const select = doc.querySelector(`select[name="${name}"]`);
  if (select) return select.querySelector('option[selected]')?.getAttribute('value') ?? null;
  const input = doc.querySelector(`input[name="${name}"]:not([type="radio"]):not([type="checkbox"])`);
  return input?.getAttribute('value') ?? null;
}
