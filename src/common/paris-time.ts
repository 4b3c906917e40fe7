/**
 * Europe/Paris days and French wording of days and durations: the one implementation every capability
 * uses (certificates, exports, tracking, the LMS estimate, personal data).
 *
 * - A day is a `YYYY-MM-DD` string naming a calendar day in Paris. The day of an instant is read on the
 *   Paris wall clock, so 23:30 UTC on 1 March is 2 March in Paris.
 * - Paris is UTC+1 in winter and UTC+2 in summer; the offset changes at 01:00 UTC on the last Sunday of
 *   March and of October (EU rule), so a Paris day lasts 23 h in March and 25 h in October. Day arithmetic
 *   (`addDays`, `nextDay`) is calendar arithmetic and never adds 24 h to an instant.
 * - Days are written the French way: « 3 mars 2026 », « 1er mars 2026 » (long), « 03/03/2026 » (numeric,
 *   forms and tables), « 02/03/2026 – 05/03/2026 » (a range).
 * - Durations have ONE style everywhere, floored to the minute (a started minute is not credited):
 *   « 0 min », « 45 min » under an hour; « 4 h » for whole hours; « 1 h 05 » otherwise (minutes on two
 *   digits, no unit after them, as French typography writes times of day and durations alike).
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const parisParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/Paris',
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

// Paris changes offset only on whole UTC hours, so the offset of an instant is the offset of its UTC
// hour: one Intl lookup per distinct hour, cached (exports read it for every row).
const offsetCache = new Map<number, number>();

const toMs = (instant: Date | number): number => (typeof instant === 'number' ? instant : instant.getTime());

/** Minutes to add to UTC to get the Paris wall clock at this instant (+60 in winter, +120 in summer). */
export function parisOffsetMinutes(instant: Date | number): number {
  const hour = Math.floor(toMs(instant) / HOUR_MS);
  const cached = offsetCache.get(hour);
  if (cached !== undefined) return cached;
  const probe = new Date(hour * HOUR_MS);
  const parts: Record<string, number> = {};
  for (const p of parisParts.formatToParts(probe)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(
    parts.year as number,
    (parts.month as number) - 1,
    parts.day as number,
    parts.hour as number,
    parts.minute as number,
    parts.second as number,
  );
  const offset = Math.round((wall - probe.getTime()) / 60_000);
  if (offsetCache.size > 100_000) offsetCache.clear();
  offsetCache.set(hour, offset);
  return offset;
}

/** A Date whose UTC fields read as the Paris wall clock (what a spreadsheet date cell stores). */
export function parisWallClock(instant: Date | number): Date {
  const ms = toMs(instant);
  return new Date(ms + parisOffsetMinutes(ms) * 60_000);
}

/** The Paris calendar day of an instant, `YYYY-MM-DD`. */
export function parisDay(instant: Date | number): string {
  return parisWallClock(instant).toISOString().slice(0, 10);
}

function dayParts(day: string): [number, number, number] {
  if (!isValidDay(day)) throw new Error(`not a day: ${day}`);
  return day.split('-').map(Number) as [number, number, number];
}

/** The instant a Paris calendar day starts (its midnight: 23:00 UTC the day before in winter, 22:00 in summer). */
export function parisDayStart(day: string): Date {
  const [y, m, d] = dayParts(day);
  const utcMidnight = Date.UTC(y, m - 1, d);
  // Midnight in Paris is never at a change of offset (changes happen at 02:00 and 03:00 Paris time), so
  // the offset in force one hour before UTC midnight is the one of Paris midnight.
  const offset = parisOffsetMinutes(utcMidnight - HOUR_MS);
  return new Date(utcMidnight - offset * 60_000);
}

/** Whether `day` is a real calendar day written `YYYY-MM-DD`. */
export function isValidDay(day: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return false;
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

/** The calendar day `n` days after `day` (n may be negative). Calendar arithmetic, so DST-proof. */
export function addDays(day: string, n: number): string {
  const [y, m, d] = dayParts(day);
  return new Date(Date.UTC(y, m - 1, d) + n * DAY_MS).toISOString().slice(0, 10);
}

/** The calendar day after `day`. */
export function nextDay(day: string): string {
  return addDays(day, 1);
}

/** The Paris days from `first` to `last`, both included (empty when `last` is before `first`). */
export function daysBetween(first: string, last: string): string[] {
  const days: string[] = [];
  for (let day = first; day <= last; day = nextDay(day)) days.push(day);
  return days;
}

const MONTHS = [
  'janvier',
  'février',
  'mars',
  'avril',
  'mai',
  'juin',
  'juillet',
  'août',
  'septembre',
  'octobre',
  'novembre',
  'décembre',
] as const;

/** « 3 mars 2026 », « 1er mars 2026 » from `YYYY-MM-DD`. */
export function formatDayLong(day: string): string {
  const [y, m, d] = dayParts(day);
  return `${d === 1 ? '1er' : d} ${MONTHS[m - 1]} ${y}`;
}

/** « 03/03/2026 » from `YYYY-MM-DD`. */
export function formatDayNumeric(day: string): string {
  dayParts(day);
  return `${day.slice(8, 10)}/${day.slice(5, 7)}/${day.slice(0, 4)}`;
}

/** « 3 mars 2026 »: the Paris day of an instant, as a learner reads it. */
export function formatInstantDay(instant: Date | number): string {
  return formatDayLong(parisDay(instant));
}

/** « 3 mars 2026 à 14:05 »: an instant on the Paris wall clock. */
export function formatInstant(instant: Date | number): string {
  const wall = parisWallClock(instant);
  const time = wall.toISOString().slice(11, 16);
  return `${formatDayLong(wall.toISOString().slice(0, 10))} à ${time}`;
}

/** « 02/03/2026 – 05/03/2026 », one day alone when first and last are the same, « — » without any. */
export function formatDayRange(first: string | null, last: string | null): string {
  if (!first) return '—';
  if (!last || last === first) return formatDayNumeric(first);
  return `${formatDayNumeric(first)} – ${formatDayNumeric(last)}`;
}

/**
 * A duration in seconds, the one French style: « 0 min », « 45 min », « 4 h », « 1 h 05 ». Floored to
 * the minute; negative durations read as zero.
 */
export function formatDuration(seconds: number): string {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return `${m} min`;
  if (m === 0) return `${h} h`;
  return `${h} h ${String(m).padStart(2, '0')}`;
}
