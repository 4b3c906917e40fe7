/**
 * Largest-remainder rounding (Hamilton's method), so that rounded parts add up to the rounded whole:
 * each part is floored to a multiple of `unit`, then the units still missing to reach the floored sum
 * (`floor(Σ values / unit)`) go one each to the parts with the largest remainders, ties to the earlier part.
 * Returns whole numbers of units. Used for seconds per module (from milliseconds) and minutes per row of a
 * certificate (from seconds): docs/time-accounting.md, "Every figure adds up".
 */
export function largestRemainder(values: readonly number[], unit: number): number[] {
  if (!(unit > 0)) throw new Error('largestRemainder: unit must be positive');
  const parts = values.map((v) => Math.max(0, v));
  const floors = parts.map((v) => Math.floor(v / unit));
  const total = Math.floor(parts.reduce((s, v) => s + v, 0) / unit);
  let missing = total - floors.reduce((s, v) => s + v, 0);
  const order = parts
    .map((v, i) => ({ i, remainder: v - (floors[i] as number) * unit }))
    .sort((a, b) => b.remainder - a.remainder || a.i - b.i);
  const out = [...floors];
  for (const { i } of order) {
    if (missing <= 0) break;
    out[i] = (out[i] as number) + 1;
    missing--;
  }
  return out;
}
