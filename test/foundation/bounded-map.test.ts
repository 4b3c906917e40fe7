import { describe, expect, it } from 'vitest';
import { setBounded } from '../../src/common/bounded-map.js';

describe('setBounded', () => {
  it('keeps at most max entries, dropping the oldest first, and updates a key in place', () => {
    const m = new Map<string, number>();
    for (const [i, k] of ['a', 'b', 'c'].entries()) setBounded(m, k, i, 3);
    setBounded(m, 'b', 10, 3); // already there: nothing is dropped
    expect([...m]).toEqual([
      ['a', 0],
      ['b', 10],
      ['c', 2],
    ]);
    setBounded(m, 'd', 3, 3);
    expect([...m.keys()]).toEqual(['b', 'c', 'd']);
    expect(m.size).toBe(3);
  });
});
