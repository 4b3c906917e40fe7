import { describe, expect, it } from 'vitest';
import { escapeHtml, html, raw } from '../../src/http/html.js';
import { dom } from '../helpers/dom.js';

/** The page templates' escaping: every interpolated value is text, never markup, unless marked safe. */
describe('escapeHtml and html', () => {
  it('escapes the five characters that matter in text and quoted attributes, and leaves other text alone', () => {
    expect(escapeHtml(`<a href="x" title='y'>Tom & Jerry</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;',
    );
    for (const plain of ['', 'Nom de l’entreprise', 'IDCC 1486', 'champ-familyName', 'é — …']) {
      expect(escapeHtml(plain)).toBe(plain);
    }
    // Each character alone (a value holding only one of them must not pass as plain text).
    expect(['&', '<', '>', '"', "'"].map((c) => escapeHtml(`a${c}b`))).toEqual([
      'a&amp;b',
      'a&lt;b',
      'a&gt;b',
      'a&quot;b',
      'a&#39;b',
    ]);
    expect(escapeHtml(42)).toBe('42');
    expect(escapeHtml(null)).toBe('null');
  });

  it('keeps interpolated values as text and attribute values as a DOM parser reads them', () => {
    const hostile = `"><script>alert(1)</script><b title='x`;
    const fragment = html`<p data-v="${hostile}" data-w='${hostile}'>${hostile}${raw('<i>sûr</i>')}${[hostile, 1, null, false]}</p>`;
    const p = dom(fragment.value).querySelector('p');
    expect(p?.getAttribute('data-v')).toBe(hostile);
    expect(p?.getAttribute('data-w')).toBe(hostile);
    expect(p?.querySelector('script')).toBeNull();
    expect(p?.querySelectorAll('i')).toHaveLength(1);
    expect(p?.textContent).toBe(`${hostile}sûr${hostile}1`);
  });
});
