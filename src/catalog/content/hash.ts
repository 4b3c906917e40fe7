import { createHash } from 'node:crypto';
import type { TrackDef } from '../model.js';
import { isObject } from './source.js';

/** A stable hash of a validated value: formatting and comments do not change it, content does. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The hash of a track: a track.json without pacing hashes as before pacing existed, so that a database
 * holding it does not see a change that is not one.
 */
export function trackHash(track: TrackDef): string {
  const paced = track.weeks.length > 0 || track.plannedMinutes !== null || track.themes.some((t) => t.modules !== 1);
  if (paced) return contentHash(track);
  return contentHash({
    id: track.id,
    title: track.title,
    version: track.version,
    themes: track.themes.map(({ slug, title, trunk, order }) => ({ slug, title, trunk, order })),
  });
}
