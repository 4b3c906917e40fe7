/**
 * Sets `key` in a memo that holds at most `max` entries: when it is full, the oldest entry (the first in the
 * map's insertion order) makes room. For in-process memos whose loss only costs a recomputation.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value as K);
  map.set(key, value);
}
