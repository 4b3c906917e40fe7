import { randomInt } from 'node:crypto';
import type { SessionMode } from './tables.js';

/**
 * Pure rules of the closing group session (« regroupement », docs/course-team.md §3): who sees the
 * sessions, the attendance code and its time window, the schedule form, and how a session is written on
 * the certificate and in the exports.
 */

/** A learner sees and may join the sessions once at most this many modules of their programme are left. */
export const NEARLY_DONE_MAX_LEFT = 2;

export function mayJoin(progress: { done: number; planned: number } | null): boolean {
  return progress !== null && progress.planned > 0 && progress.planned - progress.done <= NEARLY_DONE_MAX_LEFT;
}

/** Letters and digits nobody confuses when read aloud or on a screen (no 0/O, 1/I/L, 2/Z, 5/S, 8/B). */
export const CODE_ALPHABET = 'ACDEFGHJKMNPQRTUVWXY34679';
export const CODE_LENGTH = 6;

export function newAttendanceCode(random: (max: number) => number = randomInt): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[random(CODE_ALPHABET.length)];
  return code;
}

/** What the learner typed, upper-cased, spaces and dashes removed; null when it cannot be a code. */
export function normaliseCode(input: string): string | null {
  const c = input.toUpperCase().replace(/[\s-]/g, '');
  if (c.length !== CODE_LENGTH) return null;
  for (const ch of c) if (!CODE_ALPHABET.includes(ch)) return null;
  return c;
}

/** The code is accepted from a quarter of an hour before the start to a quarter of an hour after the end. */
export const CODE_MARGIN_MINUTES = 15;

export function codeWindow(s: { startsAt: Date; durationMinutes: number }): { from: Date; to: Date } {
  const margin = CODE_MARGIN_MINUTES * 60_000;
  return {
    from: new Date(s.startsAt.getTime() - margin),
    to: new Date(s.startsAt.getTime() + s.durationMinutes * 60_000 + margin),
  };
}

export function withinCodeWindow(s: { startsAt: Date; durationMinutes: number }, now: Date): boolean {
  const w = codeWindow(s);
  return now >= w.from && now <= w.to;
}

// ─── Dates in Paris ─────────────────────────────────────────────────────────────────────────────────

const PARIS_PARTS = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/Paris',
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

function parisParts(at: Date): Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', number> {
  const p = Object.fromEntries(PARIS_PARTS.formatToParts(at).map((x) => [x.type, Number(x.value)]));
  return {
    year: p.year ?? 0,
    month: p.month ?? 0,
    day: p.day ?? 0,
    hour: p.hour ?? 0,
    minute: p.minute ?? 0,
    second: p.second ?? 0,
  };
}

function parisOffsetMs(at: Date): number {
  const p = parisParts(at);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(at.getTime() / 1000) * 1000;
}

/** A wall-clock day and time in Paris as an instant (daylight saving time handled). */
export function parisInstant(day: string, time: string): Date | null {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  const t = /^(\d{1,2})[:hH](\d{2})$/.exec(time.trim());
  if (!d || !t) return null;
  const [y, mo, da, h, mi] = [d[1], d[2], d[3], t[1], t[2]].map(Number) as [number, number, number, number, number];
  if (mo < 1 || mo > 12 || da < 1 || da > 31 || h > 23 || mi > 59) return null;
  const wall = Date.UTC(y, mo - 1, da, h, mi);
  let guess = wall - parisOffsetMs(new Date(wall));
  guess = wall - parisOffsetMs(new Date(guess));
  const check = new Date(guess);
  const back = parisParts(check);
  if (back.day !== da || back.month !== mo) return null; // e.g. 31 February
  return check;
}

const DAY_FR = new Intl.DateTimeFormat('fr-FR', {
  timeZone: 'Europe/Paris',
  day: 'numeric',
  month: 'long',
  year: 'numeric',
});
const TIME_FR = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' });

/** « 12 mars 2027 » */
export const dayFr = (d: Date): string => DAY_FR.format(d);
/** « 14 h 00 » */
export const timeFr = (d: Date): string => TIME_FR.format(d).replace(':', ' h ');

/** « 1 h 30 », « 45 min », « 2 h » */
export function durationFr(minutes: number): string {
  const m = Math.max(0, Math.round(minutes));
  const h = Math.floor(m / 60);
  const rest = m % 60;
  if (h === 0) return `${rest} min`;
  return rest === 0 ? `${h} h` : `${h} h ${String(rest).padStart(2, '0')}`;
}

export const MODE_LABELS: Record<SessionMode, string> = {
  online: 'classe virtuelle',
  onsite: 'réunion dans les locaux du fonds',
};

/** The certificate's line: « Regroupement : classe virtuelle du 12 mars 2027, 1 h 30 ». */
export function certificateLine(s: { mode: SessionMode; startsAt: Date; attendedMinutes: number }): string {
  return `Regroupement : ${MODE_LABELS[s.mode]} du ${dayFr(s.startsAt)}, ${durationFr(s.attendedMinutes)}`;
}

// ─── The schedule form ──────────────────────────────────────────────────────────────────────────────

export interface ScheduleInput {
  fundSlug: string;
  startsAt: Date;
  durationMinutes: number;
  mode: SessionMode;
  location: string;
  capacity: number;
}

export type ScheduleForm = Partial<
  Record<'fund' | 'day' | 'time' | 'duration' | 'mode' | 'location' | 'capacity', string>
>;

/** Checks the course team's form; errors per field, in French, what was typed kept by the caller. */
export function validateSchedule(
  form: ScheduleForm,
  o: { funds: readonly string[]; now: Date },
): { ok: true; value: ScheduleInput } | { ok: false; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const fund = (form.fund ?? '').trim();
  if (!o.funds.includes(fund)) errors.fund = 'Choisissez le fonds de formation qui organise ce regroupement.';
  const startsAt = parisInstant((form.day ?? '').trim(), (form.time ?? '').trim());
  if (!startsAt) errors.day = 'Indiquez la date (jj/mm/aaaa) et l’heure de début (par exemple 14:00).';
  else if (startsAt <= o.now) errors.day = 'La séance doit commencer plus tard qu’aujourd’hui à cette heure-ci.';
  const duration = Number((form.duration ?? '').trim());
  if (!Number.isInteger(duration) || duration < 15 || duration > 480)
    errors.duration = 'Indiquez une durée en minutes, entre 15 et 480 (par exemple 90 pour 1 h 30).';
  const mode = form.mode === 'online' || form.mode === 'onsite' ? form.mode : null;
  if (!mode) errors.mode = 'Choisissez : classe virtuelle ou réunion dans les locaux du fonds.';
  const location = (form.location ?? '').trim().replace(/\s+/g, ' ');
  if (mode === 'online') {
    let ok = false;
    try {
      ok = new URL(location).protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok || location.length > 500)
      errors.location = 'Collez le lien de la classe virtuelle (il commence par https://).';
  } else if (mode === 'onsite' && (location.length < 5 || location.length > 300)) {
    errors.location = 'Indiquez l’adresse des locaux du fonds (rue, code postal, ville).';
  }
  const capacity = Number((form.capacity ?? '').trim());
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1000)
    errors.capacity = 'Indiquez le nombre de places, entre 1 et 1 000.';
  if (Object.keys(errors).length > 0 || !startsAt || !mode) return { ok: false, errors };
  return { ok: true, value: { fundSlug: fund, startsAt, durationMinutes: duration, mode, location, capacity } };
}
