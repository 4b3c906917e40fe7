import { describe, expect, it } from 'vitest';
import {
  addDays,
  daysBetween,
  formatDayLong,
  formatDayNumeric,
  formatDayRange,
  formatDuration,
  formatInstant,
  formatInstantDay,
  isValidDay,
  nextDay,
  parisDay,
  parisDayStart,
  parisOffsetMinutes,
} from '../../src/common/paris-time.js';

const at = (iso: string) => new Date(iso);

describe('Europe/Paris days', () => {
  it('reads the day on the Paris wall clock, winter (UTC+1) and summer (UTC+2)', () => {
    expect(parisDay(at('2026-01-15T22:59:59Z'))).toBe('2026-01-15');
    expect(parisDay(at('2026-01-15T23:00:00Z'))).toBe('2026-01-16');
    expect(parisDay(at('2026-07-15T21:59:59Z'))).toBe('2026-07-15');
    expect(parisDay(at('2026-07-15T22:00:00Z'))).toBe('2026-07-16');
    // Milliseconds are accepted as well as Dates.
    expect(parisDay(Date.parse('2026-07-15T22:00:00Z'))).toBe('2026-07-16');
  });

  it('follows the change to summer time (last Sunday of March, 01:00 UTC)', () => {
    expect(parisOffsetMinutes(at('2026-03-29T00:59:59Z'))).toBe(60);
    expect(parisOffsetMinutes(at('2026-03-29T01:00:00Z'))).toBe(120);
    expect(parisDayStart('2026-03-29').toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(parisDayStart('2026-03-30').toISOString()).toBe('2026-03-29T22:00:00.000Z');
    // That day lasts 23 hours.
    expect(parisDayStart('2026-03-30').getTime() - parisDayStart('2026-03-29').getTime()).toBe(23 * 3_600_000);
    expect(parisDay(at('2026-03-29T21:59:59Z'))).toBe('2026-03-29');
    expect(parisDay(at('2026-03-29T22:00:00Z'))).toBe('2026-03-30');
  });

  it('follows the change to winter time (last Sunday of October, 01:00 UTC)', () => {
    expect(parisOffsetMinutes(at('2026-10-25T00:59:59Z'))).toBe(120);
    expect(parisOffsetMinutes(at('2026-10-25T01:00:00Z'))).toBe(60);
    expect(parisDayStart('2026-10-25').toISOString()).toBe('2026-10-24T22:00:00.000Z');
    expect(parisDayStart('2026-10-26').toISOString()).toBe('2026-10-25T23:00:00.000Z');
    // That day lasts 25 hours.
    expect(parisDayStart('2026-10-26').getTime() - parisDayStart('2026-10-25').getTime()).toBe(25 * 3_600_000);
    expect(parisDay(at('2026-10-25T22:59:59Z'))).toBe('2026-10-25');
    expect(parisDay(at('2026-10-25T23:00:00Z'))).toBe('2026-10-26');
  });

  it('is the day its own start belongs to, for every day of a year', () => {
    for (const day of daysBetween('2026-01-01', '2026-12-31')) {
      const start = parisDayStart(day);
      expect(parisDay(start)).toBe(day);
      expect(parisDay(start.getTime() - 1)).toBe(addDays(day, -1));
    }
  });

  it('counts days on the calendar, across a change of offset and the end of a month or year', () => {
    expect(nextDay('2026-03-28')).toBe('2026-03-29');
    expect(nextDay('2026-10-25')).toBe('2026-10-26');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(daysBetween('2026-10-24', '2026-10-26')).toEqual(['2026-10-24', '2026-10-25', '2026-10-26']);
    expect(daysBetween('2026-10-26', '2026-10-24')).toEqual([]);
    expect(daysBetween('2026-12-31', '2027-01-01')).toHaveLength(2);
  });

  it('refuses what is not a calendar day', () => {
    expect(isValidDay('2026-02-29')).toBe(false);
    expect(isValidDay('2028-02-29')).toBe(true);
    expect(isValidDay('2026-2-3')).toBe(false);
    expect(() => parisDayStart('2026-13-01')).toThrow(/not a day/);
    expect(() => formatDayLong('hier')).toThrow(/not a day/);
    expect(() => addDays('2026-02-30', 1)).toThrow(/not a day/);
  });
});

describe('French wording', () => {
  it('writes days the French way', () => {
    expect(formatDayLong('2026-03-03')).toBe('3 mars 2026');
    expect(formatDayLong('2026-03-01')).toBe('1er mars 2026');
    expect(formatDayLong('2026-08-15')).toBe('15 août 2026');
    expect(formatDayNumeric('2026-03-03')).toBe('03/03/2026');
    expect(formatDayRange(null, null)).toBe('—');
    expect(formatDayRange('2026-03-02', null)).toBe('02/03/2026');
    expect(formatDayRange('2026-03-02', '2026-03-02')).toBe('02/03/2026');
    expect(formatDayRange('2026-03-02', '2026-03-05')).toBe('02/03/2026 – 05/03/2026');
  });

  it('writes an instant on the Paris wall clock, both sides of midnight and of a change of offset', () => {
    expect(formatInstantDay(at('2026-03-02T23:30:00Z'))).toBe('3 mars 2026');
    expect(formatInstantDay(Date.parse('2026-03-02T22:30:00Z'))).toBe('2 mars 2026');
    expect(formatInstant(at('2026-03-29T00:30:00Z'))).toBe('29 mars 2026 à 01:30');
    expect(formatInstant(at('2026-03-29T01:30:00Z'))).toBe('29 mars 2026 à 03:30');
    expect(formatInstant(at('2026-10-25T00:30:00Z'))).toBe('25 octobre 2026 à 02:30');
    expect(formatInstant(at('2026-10-25T01:30:00Z'))).toBe('25 octobre 2026 à 02:30');
    expect(formatInstant(at('2026-12-01T13:05:00Z'))).toBe('1er décembre 2026 à 14:05');
  });

  it('has one duration style: « 45 min », « 4 h », « 1 h 05 », floored to the minute', () => {
    expect(formatDuration(0)).toBe('0 min');
    expect(formatDuration(-30)).toBe('0 min');
    expect(formatDuration(59)).toBe('0 min');
    expect(formatDuration(45 * 60 + 59)).toBe('45 min');
    expect(formatDuration(3600)).toBe('1 h');
    expect(formatDuration(4 * 3600 + 59)).toBe('4 h');
    expect(formatDuration(3600 + 5 * 60)).toBe('1 h 05');
    expect(formatDuration(35 * 3600 + 50 * 60)).toBe('35 h 50');
  });
});
