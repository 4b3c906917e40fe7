import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/index.js';

/** What the tracking's repositories share: a query runner (the database or a transaction) and date conversions. */

export type Q = Kysely<Database> | Transaction<Database>;
export const ms = (d: Date | null): number | null => (d === null ? null : d.getTime());
export const date = (v: number | null): Date | null => (v === null ? null : new Date(v));
export const toMs = (v: string | Date): number => (v instanceof Date ? v.getTime() : Date.parse(v));
export const toMsOrNull = (v: string | Date | null): number | null => (v === null ? null : toMs(v));
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
