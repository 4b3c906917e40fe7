/**
 * Characters that change how text is displayed without being visible: bidirectional embeddings,
 * overrides and isolates (U+202A–U+202E, U+2066–U+2069), directional marks (U+200E, U+200F, U+061C),
 * zero-width characters (U+200B–U+200D, U+2060, U+FEFF, U+180E) and other invisible format characters
 * (U+2061–U+2064, U+206A–U+206F). In a person's or a company's name they can reverse how a name reads
 * ("Trojan Source", CVE-2021-42574) or make two different names look the same on a certificate, in an
 * export or in a file name. The one rule every capability uses for person and company fields: strip them.
 */
const SPOOFING = /[\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF]/g;

/** Does the text carry any of those characters? */
export function hasSpoofingCharacters(value: string): boolean {
  SPOOFING.lastIndex = 0;
  const found = SPOOFING.test(value);
  SPOOFING.lastIndex = 0;
  return found;
}

/** The text without bidirectional controls or zero-width characters (everything else kept as typed). */
export function stripSpoofingCharacters(value: string): string {
  return value.replace(SPOOFING, '');
}

/** `stripSpoofingCharacters` for optional values (claims, nullable columns). */
export function stripSpoofingOptional<T extends string | null | undefined>(value: T): T {
  return (typeof value === 'string' ? stripSpoofingCharacters(value) : value) as T;
}
