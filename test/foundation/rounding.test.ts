import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { largestRemainder } from '../../src/common/rounding.js';

describe('largest-remainder rounding', () => {
  it('gives parts that add up to the floored whole, each within one unit of its own value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10_000_000 }), { maxLength: 20 }),
        fc.constantFrom(60, 1000),
        (values, unit) => {
          const parts = largestRemainder(values, unit);
          const whole = Math.floor(values.reduce((s, v) => s + v, 0) / unit);
          expect(parts.reduce((s, v) => s + v, 0)).toBe(whole);
          for (const [i, p] of parts.entries()) {
            expect(p).toBeGreaterThanOrEqual(Math.floor((values[i] as number) / unit));
            expect(p).toBeLessThanOrEqual(Math.floor((values[i] as number) / unit) + 1);
          }
        },
      ),
    );
  });

  it('gives the missing units to the largest remainders, ties to the earlier part', () => {
    // 50 + 50 + 40 s = 140 s = 2 min: floors are 0 each, the two 50 s rows get a minute.
    expect(largestRemainder([50, 50, 40], 60)).toEqual([1, 1, 0]);
    expect(largestRemainder([30, 30, 30, 30], 60)).toEqual([1, 1, 0, 0]);
    expect(largestRemainder([119, 1], 60)).toEqual([2, 0]);
    expect(largestRemainder([], 60)).toEqual([]);
  });
});
