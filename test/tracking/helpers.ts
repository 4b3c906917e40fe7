import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app.js';
import type { Db } from '../../src/db/index.js';
import { signSession } from '../../src/lti/index.js';
import { settleTracking } from '../../src/tracking/index.js';
import { configureIngest, trackerScript } from '../../src/tracking/plugin.js';
import { BEATS_PATH } from '../../src/tracking/routes.js';

/** A clock the tests move by hand (shared by several app instances when needed). */
export class TestClock {
  constructor(public nowMs = Date.parse('2025-06-02T07:00:00.000Z')) {}
  advance(ms: number): number {
    this.nowMs += ms;
    return this.nowMs;
  }
  readonly read = async (): Promise<number> => this.nowMs;
}

/**
 * Stamps inbox rows with the test clock. The crediting loop is stopped unless `consumer` is set: items are
 * credited when something reads time (read-your-writes) or when a test settles them.
 */
export async function useClock(
  app: App,
  clock: TestClock,
  options: {
    maxBatch?: number;
    maxConcurrent?: number;
    maxBacklog?: number;
    backlogCheckMs?: number;
    consumer?: boolean;
  } = {},
): Promise<void> {
  const { consumer, ...inbox } = options;
  await configureIngest(app, {
    ...inbox,
    clock: clock.read,
    consumer: consumer ? { settleLagMs: 0, idleMs: 20 } : false,
  });
}

/**
 * A learner's acknowledged items not yet credited: those still in journal rows (as the ingest wrote them) and
 * those already unpacked into the inbox, with their server time.
 */
export async function pendingItems(db: Db, learnerId: string): Promise<Array<{ seq: number; received_at: Date }>> {
  const inbox = await db
    .selectFrom('tracking_inbox')
    .select(['seq', 'received_at'])
    .where('learner_id', '=', learnerId)
    .execute();
  const journal = await db.selectFrom('tracking_journal').select(['body', 'received_at']).execute();
  const requestsOf = (body: string): Array<{ learner_id: string; items: Array<{ seq: number }> }> => {
    try {
      return JSON.parse(body);
    } catch {
      return []; // a row no ingest writes (tests of the quarantine): nobody's items
    }
  };
  const fromJournal = journal.flatMap((row) =>
    requestsOf(row.body)
      .filter((r) => r.learner_id === learnerId)
      .flatMap((r) => r.items.map((i) => ({ seq: i.seq, received_at: row.received_at }))),
  );
  return [...fromJournal, ...inbox];
}

/**
 * What became of each received item once credited, read back from the evidence: `accepted` (a beat inside one
 * of the tab's runs), `stored` (open/close), `rejected` with its reason; `duplicate`/`deferred` as answered.
 */
export async function creditedOutcomes(
  app: App,
  learnerId: string,
  tabId: string,
  results: Array<{ seq: number; status: string }>,
): Promise<Array<{ seq: number; status: string; reason?: string }>> {
  await settleTracking(app.db, { learnerId });
  const [events, runs] = await Promise.all([
    app.db
      .selectFrom('tracking_events')
      .select(['seq', 'kind', 'reason'])
      .where('tab_id', '=', tabId)
      .where('seq', 'is not', null)
      .execute(),
    app.db.selectFrom('tracking_runs').select(['first_seq', 'last_seq']).where('tab_id', '=', tabId).execute(),
  ]);
  return results.map((r) => {
    if (r.status !== 'received') return r;
    const e = events.find((x) => x.seq === r.seq);
    if (e?.kind === 'rejected') return { seq: r.seq, status: 'rejected', reason: e.reason as string };
    if (e) return { seq: r.seq, status: 'stored' };
    if (runs.some((x) => x.first_seq <= r.seq && r.seq <= x.last_seq)) return { seq: r.seq, status: 'accepted' };
    return { seq: r.seq, status: 'unaccounted' };
  });
}

const REGISTRATION = '00000000-0000-4000-8000-00000000aaaa';

/** A course row (once per database). */
export async function seedCourse(db: Db, courseId: string = randomUUID()): Promise<string> {
  await db
    .insertInto('courses')
    .values({ id: courseId, issuer: 'https://fun.test', context_id: `course-v1:FUN+${courseId.slice(0, 8)}` })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  return courseId;
}

export interface Learner {
  learnerId: string;
  courseId: string;
  token: string;
  role: 'learner' | 'course_team' | 'staff';
}

/** A learner row and a session token for them in a course (as a launch would leave them). */
export async function seedLearner(
  app: App,
  courseId: string,
  options: { role?: Learner['role']; learnerId?: string; name?: string } = {},
): Promise<Learner> {
  const learnerId = options.learnerId ?? randomUUID();
  await app.db
    .insertInto('learners')
    .values({ id: learnerId, issuer: 'https://fun.test', sub: learnerId, name: options.name ?? 'Léa Durand' })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  const role = options.role ?? 'learner';
  const token = await signSession(app, {
    learnerId,
    courseId,
    resourceLinkId: null,
    launchId: randomUUID(),
    registrationId: REGISTRATION,
    role,
  });
  return { learnerId, courseId, token, role };
}

/** The tracker configuration a module page would carry (its ticket binds the page to learner, course, module). */
export function pageConfig(
  app: App,
  learner: Learner,
  moduleId: string,
  nominalMinutes = 15,
): { ticket: string; endpoint: string; beatMs: number; idleMs: number; sessionToken: string } {
  const markup = trackerScript(app, {
    learnerId: learner.learnerId,
    courseId: learner.courseId,
    moduleId,
    moduleVersion: 1,
    nominalMinutes,
    sessionToken: learner.token,
  }).toString();
  const json = /<script type="application\/json" id="emargement-tracker-config">(.*?)<\/script>/s.exec(markup)?.[1];
  if (!json) throw new Error('no tracker config in markup');
  return JSON.parse(json);
}

export interface Item {
  kind: 'open' | 'beat' | 'close';
  seq: number;
  inputAgoMs?: number;
  media?: boolean;
  cause?: string;
  clientTime?: string;
}

/** A page (one tab) sending items the way the tracker does. */
export class TestTab {
  seq = 0;
  readonly ticket: string;
  constructor(
    readonly app: App,
    readonly learner: Learner,
    readonly moduleId: string,
    nominalMinutes = 15,
    readonly tabId: string = randomUUID(),
  ) {
    this.ticket = pageConfig(app, learner, moduleId, nominalMinutes).ticket;
  }
  next(kind: Item['kind'], extra: Partial<Item> = {}): Item {
    return { kind, seq: this.seq++, inputAgoMs: 1000, clientTime: new Date().toISOString(), ...extra };
  }
  /** Posts the items; unless `raw`, settles the learner's inbox and reports what each received item became. */
  async send(items: Item[], options: { app?: App; token?: string; raw?: boolean } = {}) {
    const res = await (options.app ?? this.app).inject({
      method: 'POST',
      url: BEATS_PATH,
      headers: { authorization: `Bearer ${options.token ?? this.learner.token}` },
      payload: { tabId: this.tabId, ticket: this.ticket, items },
    });
    const body = res.json();
    if (options.raw || res.statusCode !== 200) return { status: res.statusCode, body };
    const results = await creditedOutcomes(this.app, this.learner.learnerId, this.tabId, body.results);
    return { status: res.statusCode, body: { ...body, results }, received: body.results };
  }
  async open() {
    return this.send([this.next('open')]);
  }
  async beat(extra: Partial<Item> = {}) {
    return this.send([this.next('beat', extra)]);
  }
  async close() {
    return this.send([this.next('close')]);
  }
}
