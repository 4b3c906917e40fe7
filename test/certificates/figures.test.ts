import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertificateData, formatDuration, printedMinutes } from '../../src/certificates/rules.js';
import { getLearnerTimes } from '../../src/tracking/index.js';
import { BEATS_PATH } from '../../src/tracking/routes.js';
import type { CatalogTestContext } from '../catalog/helpers.js';
import type { FakeComponent, FakeUser } from '../fixtures/openedx/index.js';
import { dom } from '../helpers/dom.js';
import { TestClock, useClock } from '../tracking/helpers.js';
import { completeModulePage, createSectorCourse, offeredCertificateNumber, openModule, pdfText } from './helpers.js';

/**
 * Every figure adds up, through the real chain: launch, onboarding, the tracker's beats on each module page
 * (its own ticket and token, a test clock for server time), completion, then the certificate. The per-module
 * seconds it signs add up to the learner's credited total, and the minutes it prints per row add up to the
 * total it prints.
 */
let ctx: CatalogTestContext;
let links: FakeComponent[];
const clock = new TestClock(Date.now() - 3600_000);

beforeAll(async () => {
  ({ ctx, links } = await createSectorCourse());
  await useClock(ctx.app, clock);
});
afterAll(() => ctx.close());

/** Opens the module, spends `beats` periodic beats `stepMs` apart on it and leaves 13.25 s after the last. */
async function visitAndComplete(user: FakeUser, link: FakeComponent, first: boolean, beats: number, stepMs: number) {
  const launch = await openModule(ctx, user, link, first);
  const { body } = launch;
  const document = dom(body);
  const config = JSON.parse(document.getElementById('emargement-tracker-config')?.textContent ?? 'null') as {
    ticket: string;
    sessionToken: string;
  };
  expect(config?.ticket).toBeTruthy();
  const tabId = randomUUID();
  let seq = 0;
  const send = async (items: object[]) => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: BEATS_PATH,
      headers: { authorization: `Bearer ${config.sessionToken}` },
      payload: { tabId, ticket: config.ticket, items },
    });
    expect(res.statusCode).toBe(200);
  };
  clock.advance(1_000);
  await send([{ kind: 'open', seq: seq++ }]);
  for (let i = 0; i < beats; i++) {
    clock.advance(stepMs);
    await send([{ kind: 'beat', seq: seq++, cause: 'periodic', inputAgoMs: 2_000 }]);
  }
  clock.advance(13_250);
  await send([
    { kind: 'beat', seq: seq++, cause: 'pagehide', inputAgoMs: 2_000 },
    { kind: 'close', seq: seq++ },
  ]);
  clock.advance(120_000);
  await completeModulePage(ctx, launch.sessionToken, body);
  return { token: launch.sessionToken };
}

describe('certificate figures', () => {
  it('signs per-module seconds that add up to the credited total, and prints rows that add up to its total', async () => {
    const user = ctx.fake.createUser({ name: 'Léa Durand' });
    let token = '';
    // Odd lengths: 3 × 30.7 s + 13.25 s, 4 × 29.9 s + 13.25 s… so that no row is a whole minute.
    for (const [i, link] of links.entries()) {
      token = (await visitAndComplete(user, link, i === 0, 3 + i, 29_900 + i * 400)).token;
    }
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${token}` });
    const number = offeredCertificateNumber(page.body) as string;
    expect(number).toBeTruthy();
    const row = await ctx.app.db
      .selectFrom('certificates')
      .select(['data_canonical', 'learner_id', 'course_id'])
      .where('number', '=', number)
      .executeTakeFirstOrThrow();
    const data = JSON.parse(row.data_canonical) as CertificateData;
    const times = await getLearnerTimes(ctx.app.db, row.learner_id, row.course_id);
    expect(times.algorithm).toBe('beats-v2');

    // Seconds: each module's row is the tracking's per-module figure, and they add up to its total.
    const tracked = new Map(times.modules.map((m) => [m.moduleId, m.creditedSeconds]));
    for (const m of data.modules) expect(m.creditedSeconds).toBe(tracked.get(m.id) ?? 0);
    const sum = data.modules.reduce((s, m) => s + m.creditedSeconds, 0);
    expect(sum).toBe(times.creditedSeconds);
    expect(data.durations.modulesSeconds).toBe(times.creditedSeconds);
    expect(data.durations.totalSeconds).toBe(times.creditedSeconds); // no LMS estimate here

    // Minutes: the rows printed add up to the total printed, which is the total floored to the minute.
    const printed = printedMinutes(data);
    expect(printed.modules.reduce((s, m) => s + m, 0)).toBe(printed.total);
    expect(printed.total).toBe(Math.floor(data.durations.totalSeconds / 60));
    // Flooring each row instead would have lost minutes here.
    const floored = data.modules.reduce((s, m) => s + Math.floor(m.creditedSeconds / 60), 0);
    expect(floored).toBeLessThan(printed.total);

    const pdf = await ctx.app.inject({ method: 'GET', url: `/certificates/${number}/pdf?session_token=${token}` });
    const text = pdfText(pdf.rawPayload).replace(/\s+/g, ' ');
    expect(text).toContain(formatDuration(printed.total * 60));
    expect(text).toContain('algorithme beats-v2');
  });
});
