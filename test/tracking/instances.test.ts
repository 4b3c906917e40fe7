import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { createDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { getCourseTimes } from '../../src/tracking/index.js';
import { recomputeTotals, verifyEvidence } from '../../src/tracking/service/maintenance.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { withDatabase } from '../helpers/global-setup.js';
import { type Item, type Learner, seedCourse, seedLearner, TestClock, TestTab, useClock } from './helpers.js';

/**
 * Several instances behind one load balancer, one database: the same timeline of requests is played
 * against two app instances sharing a database (requests of a step sent concurrently, spread over both,
 * some delivered twice — once to each) and against a single instance on a database of its own. Both must
 * credit exactly the same, to the millisecond.
 */

const COURSE = randomUUID();
const LEARNERS = Array.from({ length: 6 }, () => randomUUID());
const MODULES = ['common-digitalisation', 'common-obligations-protection', 'common-fonctions-numerisables'];

interface Send {
  learner: number;
  tab: number;
  items: Item[];
  twice: boolean;
}

/** A seeded timeline: per step at most one tab per learner sends (concurrent requests of one learner at one instant have no order). */
function timeline(seed: number) {
  let state = seed;
  const rand = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const tabs = LEARNERS.flatMap((_, l) =>
    Array.from({ length: 2 }, (_, t) => ({
      learner: l,
      tab: t,
      id: randomUUID(),
      module: MODULES[(l + t) % 3] as string,
      seq: 0,
      open: false,
      closed: false,
    })),
  );
  const steps: Array<{ dt: number; sends: Send[] }> = [];
  for (let s = 0; s < 40; s++) {
    const sends: Send[] = [];
    for (let l = 0; l < LEARNERS.length; l++) {
      if (rand() < 0.25) continue;
      const tab = tabs.find((t) => t.learner === l && t.tab === (rand() < 0.7 ? 0 : 1) && !t.closed);
      if (!tab) continue;
      const items: Item[] = [];
      const ago = 1000 + l * 97 + tab.tab * 13 + s;
      if (!tab.open) {
        items.push({ kind: 'open', seq: tab.seq++ });
        tab.open = true;
      } else if (rand() < 0.05) {
        items.push({ kind: 'close', seq: tab.seq++ });
        tab.closed = true;
      } else {
        items.push({ kind: 'beat', seq: tab.seq++, inputAgoMs: ago });
        if (rand() < 0.15) items.push({ kind: 'beat', seq: tab.seq++, inputAgoMs: ago });
        if (rand() < 0.1) tab.seq++; // a lost beat: a gap in seq
      }
      // Delivered twice (a retry whose first answer was lost), to each instance at the same time.
      sends.push({ learner: l, tab: tab.tab, items, twice: rand() < 0.3 });
    }
    steps.push({ dt: 5_000 + Math.floor(rand() * 40_000), sends });
  }
  return { tabs, steps };
}

async function seed(app: App): Promise<Learner[]> {
  await seedCourse(app.db, COURSE);
  return Promise.all(LEARNERS.map((id) => seedLearner(app, COURSE, { learnerId: id })));
}

async function play(
  apps: App[],
  clock: TestClock,
  learners: Learner[],
  plan: ReturnType<typeof timeline>,
): Promise<void> {
  const tabs = new Map(
    plan.tabs.map((t) => [
      `${t.learner}/${t.tab}`,
      new TestTab(apps[0] as App, learners[t.learner] as Learner, t.module, 15, t.id),
    ]),
  );
  let n = 0;
  for (const step of plan.steps) {
    clock.advance(step.dt);
    await Promise.all(
      step.sends.flatMap((s) => {
        const tab = tabs.get(`${s.learner}/${s.tab}`) as TestTab;
        const first = apps[n++ % apps.length] as App;
        const other = apps[n % apps.length] as App;
        const sends = [tab.send(s.items, { app: first, raw: true })];
        if (s.twice) sends.push(tab.send(s.items, { app: other, raw: true }));
        return sends;
      }),
    ).then((results) => {
      for (const r of results) expect(r.status).toBe(200);
    });
  }
}

async function snapshot(app: App) {
  const times = await getCourseTimes(app.db, COURSE);
  const runs = await app.db
    .selectFrom('tracking_runs')
    .select(['tab_id', 'started_at', 'last_beat_at', 'beat_count', 'first_seq', 'last_seq', 'sealed'])
    .orderBy('tab_id')
    .orderBy('started_at')
    .execute();
  const events = await app.db
    .selectFrom('tracking_events')
    .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('kind')
    .orderBy('kind')
    .execute();
  return { times, runs, events };
}

let single: TestContext;
let shared: TestContext;
let second: App;
let secondDb: DatabaseHandle | null = null;

beforeAll(async () => {
  single = await createTestApp();
  shared = await createTestApp();
  const target = inject('testDb');
  if (target.kind === 'pg') {
    // A second instance = its own connection pool to the same PostgreSQL database.
    const { rows } = await (await import('kysely')).sql<{ db: string }>`select current_database() as db`.execute(
      shared.app.db,
    );
    secondDb = await createDatabase({
      databaseUrl: withDatabase(target.url, (rows[0] as { db: string }).db),
      poolMax: 5,
    });
  }
  // On PGlite (one embedded backend) the second instance shares the handle: still its own app and queue.
  second = await buildApp({ config: shared.config, database: secondDb ?? shared.database, closeDatabase: false });
  await second.ready();
});

afterAll(async () => {
  await second?.close();
  await secondDb?.close();
  await shared?.close();
  await single?.close();
});

describe('two instances on one database', () => {
  it('credit exactly as one instance, with each item stored once', async () => {
    const plan = timeline(20_250_602);
    const clockOne = new TestClock();
    const clockTwo = new TestClock();
    // Every instance runs its crediting loop, as in production; the two of the shared database compete for it.
    await useClock(single.app, clockOne, { maxConcurrent: 1, consumer: true });
    await useClock(shared.app, clockTwo, { maxConcurrent: 3, maxBatch: 4, consumer: true });
    await useClock(second, clockTwo, { maxConcurrent: 2, consumer: true });

    await play([single.app], clockOne, await seed(single.app), plan);
    await play([shared.app, second], clockTwo, await seed(shared.app), plan);

    const a = await snapshot(single.app);
    const b = await snapshot(shared.app);
    expect(a.times.length).toBe(LEARNERS.length);
    expect(a.times.reduce((n, t) => n + t.creditedSeconds, 0)).toBeGreaterThan(600);
    expect(b.times).toEqual(a.times);
    expect(b.runs).toEqual(a.runs);
    expect(b.events).toEqual(a.events);
    for (const app of [single.app, shared.app]) {
      expect((await recomputeTotals(app.db, {}, { write: false })).differing).toEqual([]);
      expect(await verifyEvidence(app.db)).toEqual([]);
    }
  });
});
