import { describe, expect, it } from 'vitest';
import {
  CODE_ALPHABET,
  certificateLine,
  codeWindow,
  durationFr,
  mayJoin,
  newAttendanceCode,
  normaliseCode,
  parisInstant,
  validateSchedule,
  withinCodeWindow,
} from '../../src/regroupement/rules.js';

describe('regroupement rules', () => {
  it('opens registration when at most two modules are left', () => {
    expect(mayJoin({ done: 16, planned: 16 })).toBe(true);
    expect(mayJoin({ done: 14, planned: 16 })).toBe(true);
    expect(mayJoin({ done: 13, planned: 16 })).toBe(false);
    expect(mayJoin({ done: 0, planned: 0 })).toBe(false);
    expect(mayJoin(null)).toBe(false);
  });

  it('makes codes of unambiguous characters and reads what a learner types', () => {
    const code = newAttendanceCode();
    expect(code).toHaveLength(6);
    for (const ch of code) expect(CODE_ALPHABET).toContain(ch);
    expect(CODE_ALPHABET).not.toMatch(/[0O1IL2Z5S8B]/);
    expect(normaliseCode(' ac-d efg ')).toBe('ACDEFG');
    expect(normaliseCode('ACDEF')).toBeNull();
    expect(normaliseCode('ACDEF0')).toBeNull();
  });

  it('accepts the code from 15 minutes before the start to 15 minutes after the end', () => {
    const s = { startsAt: new Date('2027-03-12T13:00:00Z'), durationMinutes: 90 };
    expect(codeWindow(s)).toEqual({ from: new Date('2027-03-12T12:45:00Z'), to: new Date('2027-03-12T14:45:00Z') });
    expect(withinCodeWindow(s, new Date('2027-03-12T12:44:59Z'))).toBe(false);
    expect(withinCodeWindow(s, new Date('2027-03-12T12:45:00Z'))).toBe(true);
    expect(withinCodeWindow(s, new Date('2027-03-12T14:45:00Z'))).toBe(true);
    expect(withinCodeWindow(s, new Date('2027-03-12T14:45:01Z'))).toBe(false);
  });

  it('reads Paris wall-clock times across daylight saving time', () => {
    expect(parisInstant('2027-03-12', '14:00')?.toISOString()).toBe('2027-03-12T13:00:00.000Z');
    expect(parisInstant('2027-07-01', '14h30')?.toISOString()).toBe('2027-07-01T12:30:00.000Z');
    expect(parisInstant('2027-02-31', '14:00')).toBeNull();
    expect(parisInstant('12/03/2027', '14:00')).toBeNull();
  });

  it('words the certificate line', () => {
    expect(durationFr(90)).toBe('1 h 30');
    expect(durationFr(45)).toBe('45 min');
    expect(durationFr(120)).toBe('2 h');
    expect(certificateLine({ mode: 'online', startsAt: new Date('2027-03-12T13:00:00Z'), attendedMinutes: 90 })).toBe(
      'Regroupement : classe virtuelle du 12 mars 2027, 1 h 30',
    );
    expect(certificateLine({ mode: 'onsite', startsAt: new Date('2027-03-12T13:00:00Z'), attendedMinutes: 120 })).toBe(
      'Regroupement : réunion dans les locaux du fonds du 12 mars 2027, 2 h',
    );
  });

  it('validates the schedule form: online needs an https link, on site an address', () => {
    const now = new Date('2027-03-01T00:00:00Z');
    const base = { fund: 'uniformation', day: '2027-03-12', time: '14:00', duration: '90', capacity: '12' };
    const online = validateSchedule(
      { ...base, mode: 'online', location: 'https://visio.example.org/x' },
      { funds: ['uniformation'], now },
    );
    expect(online).toMatchObject({ ok: true, value: { durationMinutes: 90, capacity: 12, mode: 'online' } });
    const onsite = validateSchedule(
      { ...base, mode: 'onsite', location: '43 boulevard Diderot, 75012 Paris' },
      { funds: ['uniformation'], now },
    );
    expect(onsite.ok).toBe(true);
    const bad = validateSchedule(
      { ...base, fund: 'akto', mode: 'online', location: 'visio.example.org', duration: '600', capacity: '0' },
      { funds: ['uniformation'], now },
    );
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(Object.keys(bad.errors).sort()).toEqual(['capacity', 'duration', 'fund', 'location']);
    const past = validateSchedule(
      { ...base, mode: 'onsite', location: 'Paris 12e', day: '2027-02-01' },
      { funds: ['uniformation'], now },
    );
    expect(past.ok).toBe(false);
  });
});
