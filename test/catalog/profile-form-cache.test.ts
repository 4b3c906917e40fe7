import { parseHTML } from 'linkedom';
import { describe, expect, it } from 'vitest';
import { idccOptions } from '../../src/catalog/views/profile.js';

/** The collective-agreement options of the profile form, rendered once per catalogue snapshot. */
const funds = [
  { slug: 'akto', name: 'Akto', historicalName: null },
  { slug: 'atlas', name: 'Atlas', historicalName: 'Opcabaia' },
];
const branches = [
  { idcc: '1979', name: 'Hôtels, cafés, restaurants', fundSlug: 'akto' },
  { idcc: '1486', name: 'Bureaux d’études techniques', fundSlug: 'atlas' },
];

function options(markup: { toString(): string }) {
  const { document } = parseHTML(`<select>${markup.toString()}</select>`);
  return [...document.querySelectorAll('option')].map((o) => ({
    value: o.getAttribute('value'),
    text: o.textContent,
    selected: o.hasAttribute('selected'),
    group: o.parentElement?.getAttribute('label') ?? null,
  }));
}

describe('idccOptions', () => {
  it('renders every agreement under its fund, the selected one marked, and serves the same render again', () => {
    const first = idccOptions(funds, branches, null, '1486');
    expect(options(first)).toEqual([
      { value: '1979', text: 'Hôtels, cafés, restaurants (IDCC 1979)', selected: false, group: 'Akto' },
      {
        value: '1486',
        text: 'Bureaux d’études techniques (IDCC 1486)',
        selected: true,
        group: 'Atlas (anciennement Opcabaia)',
      },
    ]);
    expect(idccOptions(funds, branches, null, '1486')).toBe(first);
    // Another selection or a fixed fund is another render.
    expect(options(idccOptions(funds, branches, null, '')).filter((o) => o.selected)).toEqual([]);
    expect(options(idccOptions(funds, branches, 'akto', '')).map((o) => o.value)).toEqual(['1979']);
  });

  it('shows a catalogue change at once: a new snapshot (new arrays) is rendered again', () => {
    const before = idccOptions(funds, branches, null, '');
    const renamed = [{ ...(branches[0] as (typeof branches)[number]), name: 'Hôtellerie-restauration' }, branches[1]];
    const after = idccOptions(funds, renamed as typeof branches, null, '');
    expect(after).not.toBe(before);
    expect(options(after)[0]?.text).toBe('Hôtellerie-restauration (IDCC 1979)');
    const refunded = [{ slug: 'akto', name: 'Akto Nouveau', historicalName: null }, funds[1]];
    expect(options(idccOptions(refunded as typeof funds, branches, null, ''))[0]?.group).toBe('Akto Nouveau');
  });

  it('never keeps a render for a selection that is not a known agreement (what a refused form sent back)', () => {
    const odd = idccOptions(funds, branches, null, '<b>9999');
    expect(idccOptions(funds, branches, null, '<b>9999')).not.toBe(odd);
    expect(options(odd).some((o) => o.selected)).toBe(false);
  });
});
