import { beatHash, evidenceHash, GENESIS_HASH, type Json } from './chain.js';
import {
  ALGORITHM,
  type Algorithm,
  addAttributed,
  addRejected,
  advanceSeq,
  type CourseTally,
  decideFocus,
  decideItem,
  type FocusMark,
  type FocusState,
  inputAtMs,
  NO_STOP,
  newTabState,
  noteModule,
  noteProfile,
  PARAMS,
  PROFILES,
  type RejectReason,
  type RunInterval,
  type RunProfile,
  type RunState,
  type SessionStanding,
  type TabState,
  type TrackedItem,
  tallyCourse,
  toV1Runs,
} from './rules.js';

/**
 * The ingest as a pure state machine over one learner's loaded state: the service loads rows under the
 * learner's row lock, runs this, and writes back what it marked. Nothing here reads a clock or a database,
 * so property tests drive it directly and several instances compute the same thing from the same rows.
 * One file on purpose: one state machine (tabs, runs, focus, the evidence chain, the tally's delta) whose
 * steps share one learner's working state.
 */

export type EventKind =
  | 'tab'
  | 'open'
  | 'close'
  | 'rejected'
  | 'run_start'
  | 'run_end'
  | 'focus'
  | 'late'
  /** A stop beat that found no run to end (beats-v2): kept, credits nothing. */
  | 'stop';

export interface TabMeta {
  tabId: string;
  learnerId: string;
  courseId: string;
  moduleId: string;
  moduleVersion: number | null;
  nominalMinutes: number;
  profile: RunProfile;
  /** The launch role the page was rendered for; only 'learner' tabs are ever credited. */
  role: string;
}

export interface TabRecord {
  meta: TabMeta;
  state: TabState;
  createdMs: number;
  userAgent: string | null;
  ipPrefix: string | null;
  rateWindowStartMs: number | null;
  rateWindowItems: number;
  droppedItems: number;
  isNew: boolean;
  changed: boolean;
}

export interface RunRecord {
  tabId: string;
  learnerId: string;
  courseId: string;
  moduleId: string;
  state: RunState;
  isNew: boolean;
  changed: boolean;
}

export interface NewEvent {
  learnerId: string;
  index: number;
  kind: EventKind;
  courseId: string | null;
  moduleId: string | null;
  tabId: string | null;
  seq: number | null;
  atMs: number;
  clientTime: string | null;
  reason: string | null;
  data: Json;
  prevHash: string;
  hash: string;
}

/** What one batch changes in one learner × course, for the totals. */
export interface CourseDelta {
  notes: Record<string, number>;
  profiles: string[];
  rejected: Record<string, number>;
  spans: Array<{ runId: string; moduleId: string; startMs: number; endMs: number }>;
  /**
   * Focus marks the batch wrote on this course's learner tabs. Marks on a tab of another course, or on a
   * tab that is never credited, are not here: this course's tally ignores them (`tallyFromEvidence`).
   */
  focus: FocusMark[];
}

export interface LearnerWork {
  learnerId: string;
  chainHead: string;
  chainLength: number;
  focus: FocusState;
  focusChanged: boolean;
  /** Tabs touched by the batch, and the tabs of the learner's unsealed runs. */
  tabs: Map<string, TabRecord>;
  /** The learner's unsealed runs and every run that ended within RECENT_WINDOW_MS. */
  runs: Map<string, RunRecord>;
  events: NewEvent[];
  courses: Map<string, CourseDelta>;
}

export type ItemStatus = 'accepted' | 'stored' | 'rejected' | 'duplicate';

export interface ItemResult {
  seq: number;
  status: ItemStatus;
  reason?: RejectReason;
}

/**
 * Runs ending earlier than this before `now` can no longer change anyone's attribution: a new beat extends
 * a run at most `gapMs` back, and a focus mark moves attribution at most `idleMs` back.
 */
export const RECENT_WINDOW_MS = Math.max(...Object.values(PROFILES).map((p) => Math.max(p.gapMs, p.idleMs)));

export function newLearnerWork(init: {
  learnerId: string;
  chainHead?: string;
  chainLength?: number;
  focus?: FocusState;
}): LearnerWork {
  return {
    learnerId: init.learnerId,
    chainHead: init.chainHead ?? GENESIS_HASH,
    chainLength: init.chainLength ?? 0,
    focus: init.focus ?? { tabId: null, inputMs: null, lastMarkMs: null },
    focusChanged: false,
    tabs: new Map(),
    runs: new Map(),
    events: [],
    courses: new Map(),
  };
}

function courseDelta(work: LearnerWork, courseId: string): CourseDelta {
  let d = work.courses.get(courseId);
  if (!d) {
    d = { notes: {}, profiles: [], rejected: {}, spans: [], focus: [] };
    work.courses.set(courseId, d);
  }
  return d;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

function append(
  work: LearnerWork,
  e: Omit<NewEvent, 'learnerId' | 'index' | 'prevHash' | 'hash' | 'data'> & { data?: Json },
): NewEvent {
  const index = work.chainLength + 1;
  const data = e.data ?? {};
  const hash = evidenceHash(work.chainHead, {
    learnerId: work.learnerId,
    index,
    kind: e.kind,
    courseId: e.courseId,
    moduleId: e.moduleId,
    tabId: e.tabId,
    seq: e.seq,
    at: iso(e.atMs),
    clientTime: e.clientTime,
    reason: e.reason,
    data,
  });
  const event: NewEvent = { ...e, data, learnerId: work.learnerId, index, prevHash: work.chainHead, hash };
  work.events.push(event);
  work.chainHead = hash;
  work.chainLength = index;
  return event;
}

/**
 * A record that is not an item of a known tab of this learner: an item of a tab id that belongs to another
 * page (`rejected`, reason `tab_mismatch`), or the note that an inbox row was credited later than received
 * (`late`). Never credited; kept in the learner's chain.
 */
export function appendNote(
  work: LearnerWork,
  note: {
    kind: 'rejected' | 'late';
    courseId: string;
    moduleId: string;
    atMs: number;
    reason: string | null;
    data: Json;
  },
): void {
  append(work, { ...note, tabId: null, seq: null, clientTime: null });
}

function tabEvent(tab: TabRecord, kind: EventKind, atMs: number) {
  return { kind, courseId: tab.meta.courseId, moduleId: tab.meta.moduleId, tabId: tab.meta.tabId, atMs };
}

function seal(work: LearnerWork, run: RunRecord, runId: string, atMs: number): void {
  if (run.state.sealed) return;
  run.state.sealed = true;
  run.changed = true;
  const s = run.state;
  append(work, {
    kind: 'run_end',
    courseId: run.courseId,
    moduleId: run.moduleId,
    tabId: run.tabId,
    seq: null,
    atMs,
    clientTime: null,
    reason: null,
    data: {
      runId,
      startAt: iso(s.startMs),
      lastBeatAt: iso(s.lastBeatMs),
      beatCount: s.beatCount,
      firstSeq: s.firstSeq,
      lastSeq: s.lastSeq,
      rollingHash: s.rollingHash,
      ...runEndV2(s),
    },
  });
}

/**
 * What beats-v2 adds to a run's sealed record: how it ended and the plausibility counters. Runs recorded
 * before beats-v2 have none of it (their records stay as they were; `time verify` compares what is there).
 */
export function runEndV2(s: RunState): Record<string, Json> {
  return {
    stopCause: s.stopCause,
    stopAt: s.stopAtMs === null ? null : iso(s.stopAtMs),
    beforeStopAt: s.beforeStopMs === null ? null : iso(s.beforeStopMs),
    minStepMs: s.minStepMs,
    maxStepMs: s.maxStepMs,
    inputBeats: s.inputBeats,
  };
}

/**
 * Seals the runs that can no longer grow (no beat within the gap): their final state enters the chain,
 * so a later edit of the run row is detectable. Deterministic order: by last beat, then id.
 */
export function sealStaleRuns(work: LearnerWork, nowMs: number): void {
  const stale = [...work.runs.entries()]
    .filter(([, r]) => !r.state.sealed)
    .filter(([, r]) => {
      const profile = work.tabs.get(r.tabId)?.meta.profile ?? PROFILES.standard;
      return nowMs - r.state.lastBeatMs > profile.gapMs;
    })
    .sort(([ia, a], [ib, b]) => a.state.lastBeatMs - b.state.lastBeatMs || (ia < ib ? -1 : ia > ib ? 1 : 0));
  for (const [id, run] of stale) seal(work, run, id, nowMs);
}

/** A tab seen for the first time: its parameters and context enter the chain before anything it sends. */
export function createTab(
  work: LearnerWork,
  meta: TabMeta,
  nowMs: number,
  context: { userAgent: string | null; ipPrefix: string | null },
): TabRecord {
  const tab: TabRecord = {
    meta,
    state: newTabState(),
    createdMs: nowMs,
    userAgent: context.userAgent,
    ipPrefix: context.ipPrefix,
    rateWindowStartMs: null,
    rateWindowItems: 0,
    droppedItems: 0,
    isNew: true,
    changed: true,
  };
  work.tabs.set(meta.tabId, tab);
  append(work, {
    ...tabEvent(tab, 'tab', nowMs),
    seq: null,
    clientTime: null,
    reason: null,
    data: {
      algorithm: ALGORITHM,
      profile: { ...meta.profile },
      moduleVersion: meta.moduleVersion,
      nominalMinutes: meta.nominalMinutes,
      role: meta.role,
      userAgent: context.userAgent,
      ipPrefix: context.ipPrefix,
    },
  });
  if (meta.role === 'learner') {
    const delta = courseDelta(work, meta.courseId);
    delta.notes[meta.moduleId] = Math.max(delta.notes[meta.moduleId] ?? 0, meta.nominalMinutes);
    if (!delta.profiles.includes(meta.profile.name)) delta.profiles.push(meta.profile.name);
  }
  return tab;
}

function focusOn(work: LearnerWork, tab: TabRecord, inputMs: number, nowMs: number): void {
  const mark = decideFocus(work.focus, tab.meta.tabId, inputMs);
  if (!mark) return;
  work.focusChanged = true;
  // A focus mark can move the owner of seconds already credited in this course, even in a batch that
  // grows no run: the course is revisited, and `canApplyIncrementally` decides whether it must be rebuilt.
  // Only a learner tab's marks are read by its course's tally.
  if (tab.meta.role === 'learner') courseDelta(work, tab.meta.courseId).focus.push(mark);
  append(work, {
    ...tabEvent(tab, 'focus', nowMs),
    seq: null,
    clientTime: null,
    reason: null,
    data: { focusAt: iso(mark.atMs) },
  });
}

/** Whether a beat reports an input since the beat before it (`sinceMs` ago): a page event, for plausibility. */
function reportsInput(item: TrackedItem, sinceMs: number): boolean {
  return item.inputAgoMs !== undefined && item.inputAgoMs !== null && item.inputAgoMs < sinceMs;
}

/** Processes one request's items for one tab at server time `nowMs`; returns one result per item. */
export function ingestItems(
  work: LearnerWork,
  tab: TabRecord,
  items: readonly TrackedItem[],
  nowMs: number,
  standing: SessionStanding,
  newRunId: () => string,
): ItemResult[] {
  const profile = tab.meta.profile;
  const credited = tab.meta.role === 'learner';
  const results: ItemResult[] = [];
  const ordered = [...items].sort((a, b) => a.seq - b.seq);
  for (const item of ordered) {
    const decision = decideItem(tab.state, item, nowMs, profile, standing);
    if (decision.status === 'duplicate') {
      results.push({ seq: item.seq, status: 'duplicate' });
      continue;
    }
    if (tab.rateWindowStartMs === null || nowMs - tab.rateWindowStartMs >= profile.rateWindowMs) {
      tab.rateWindowStartMs = nowMs;
      tab.rateWindowItems = 0;
    }
    tab.changed = true;
    if (tab.rateWindowItems >= profile.rateMaxItems) {
      // Flood guard: every item here was already acknowledged as received (the inbox), so one past the
      // per-tab limit is kept as `rejected` evidence (`rate_limited`), never credited, never dropped silently.
      tab.droppedItems++;
      advanceSeq(tab.state, item.seq);
      append(work, {
        ...tabEvent(tab, 'rejected', nowMs),
        seq: item.seq,
        clientTime: item.clientTime ?? null,
        reason: 'rate_limited',
        data: {
          item: item.kind,
          cause: item.cause ?? null,
          inputAgoMs: item.inputAgoMs ?? null,
          media: item.media ?? false,
        },
      });
      if (credited) {
        const d = courseDelta(work, tab.meta.courseId);
        d.rejected[tab.meta.moduleId] = (d.rejected[tab.meta.moduleId] ?? 0) + 1;
      }
      results.push({ seq: item.seq, status: 'rejected', reason: 'rate_limited' });
      continue;
    }
    tab.rateWindowItems++;
    advanceSeq(tab.state, item.seq);
    const clientTime = item.clientTime ?? null;
    const base = { ...tabEvent(tab, 'open', nowMs), seq: item.seq, clientTime };

    switch (decision.status) {
      case 'opened': {
        tab.state.openedMs = nowMs;
        append(work, { ...base, kind: 'open', reason: null });
        // Opening a page is the learner's own doing: the newest input, unless the page cannot be credited.
        if (credited && !standing.notLearner && !standing.expired) focusOn(work, tab, nowMs, nowMs);
        results.push({ seq: item.seq, status: 'stored' });
        break;
      }
      case 'closed': {
        if (tab.state.closedMs === null) tab.state.closedMs = nowMs;
        append(work, { ...base, kind: 'close', reason: null });
        const run = tab.state.run;
        if (decision.sealRun && run) {
          const record = work.runs.get(run.id);
          if (record) seal(work, record, run.id, nowMs);
        }
        results.push({ seq: item.seq, status: 'stored' });
        break;
      }
      case 'stop_without_run':
        append(work, {
          ...base,
          kind: 'stop',
          reason: null,
          data: { cause: decision.cause, inputAgoMs: item.inputAgoMs ?? null, media: item.media ?? false },
        });
        results.push({ seq: item.seq, status: 'stored' });
        break;
      case 'rejected':
        append(work, {
          ...base,
          kind: 'rejected',
          reason: decision.reason,
          data: {
            item: item.kind,
            cause: item.cause ?? null,
            inputAgoMs: item.inputAgoMs ?? null,
            media: item.media ?? false,
          },
        });
        if (credited)
          courseDelta(work, tab.meta.courseId).rejected[tab.meta.moduleId] =
            (courseDelta(work, tab.meta.courseId).rejected[tab.meta.moduleId] ?? 0) + 1;
        results.push({ seq: item.seq, status: 'rejected', reason: decision.reason });
        break;
      case 'accepted': {
        const beat = {
          tabId: tab.meta.tabId,
          seq: item.seq,
          at: iso(nowMs),
          clientTime,
          inputAgoMs: item.inputAgoMs ?? null,
          media: item.media ?? false,
          cause: item.cause ?? 'interval',
        };
        const previous = tab.state.run;
        if (decision.sealPrevious && previous) {
          const record = work.runs.get(previous.id);
          if (record) seal(work, record, previous.id, nowMs);
        }
        let runRecord: RunRecord;
        let spanStart: number;
        const endMs = decision.endMs;
        if (decision.run === 'extend' && previous) {
          runRecord = work.runs.get(previous.id) ?? {
            tabId: tab.meta.tabId,
            learnerId: tab.meta.learnerId,
            courseId: tab.meta.courseId,
            moduleId: tab.meta.moduleId,
            state: previous,
            isNew: false,
            changed: false,
          };
          work.runs.set(previous.id, runRecord);
          const st = runRecord.state;
          spanStart = st.lastBeatMs;
          if (decision.stop === null) {
            const step = nowMs - st.lastBeatMs;
            st.minStepMs = st.minStepMs === null ? step : Math.min(st.minStepMs, step);
            st.maxStepMs = st.maxStepMs === null ? step : Math.max(st.maxStepMs, step);
          } else {
            st.stopCause = decision.stop;
            st.stopAtMs = nowMs;
            st.beforeStopMs = st.lastBeatMs;
          }
          if (reportsInput(item, nowMs - st.lastBeatMs)) st.inputBeats++;
          st.lastBeatMs = endMs;
          st.beatCount++;
          st.lastSeq = item.seq;
          st.rollingHash = beatHash(st.rollingHash, beat);
          runRecord.changed = true;
        } else {
          const id = newRunId();
          const start = append(work, {
            ...tabEvent(tab, 'run_start', nowMs),
            seq: null,
            clientTime: null,
            reason: null,
            data: { runId: id, startAt: iso(decision.startMs), fromOpen: decision.startMs !== nowMs },
          });
          const state: RunState = {
            id,
            startMs: decision.startMs,
            lastBeatMs: endMs,
            beatCount: 1,
            firstSeq: item.seq,
            lastSeq: item.seq,
            rollingHash: beatHash(start.hash, beat),
            sealed: false,
            ...NO_STOP,
            inputBeats: reportsInput(item, nowMs - decision.startMs) ? 1 : 0,
            ...(decision.stop !== null ? { stopCause: decision.stop, stopAtMs: nowMs, beforeStopMs: null } : {}),
          };
          runRecord = {
            tabId: tab.meta.tabId,
            learnerId: tab.meta.learnerId,
            courseId: tab.meta.courseId,
            moduleId: tab.meta.moduleId,
            state,
            isNew: true,
            changed: true,
          };
          work.runs.set(id, runRecord);
          tab.state.run = state;
          spanStart = decision.startMs;
        }
        tab.state.lastAcceptedBeatMs = nowMs;
        if (credited && endMs > spanStart) {
          courseDelta(work, tab.meta.courseId).spans.push({
            runId: runRecord.state.id,
            moduleId: tab.meta.moduleId,
            startMs: spanStart,
            endMs,
          });
        }
        // A stop ends the run: it can no longer grow, so its final state enters the chain now.
        if (decision.stop !== null) seal(work, runRecord, runRecord.state.id, nowMs);
        focusOn(work, tab, inputAtMs(item, nowMs, profile), nowMs);
        results.push({ seq: item.seq, status: 'accepted' });
        break;
      }
    }
  }
  // Results in the order the items came.
  const bySeq = new Map<number, ItemResult[]>();
  for (const r of results) bySeq.set(r.seq, [...(bySeq.get(r.seq) ?? []), r]);
  return items.map((i) => (bySeq.get(i.seq) as ItemResult[]).shift() as ItemResult);
}

/**
 * Whether adding a batch's delta to the stored tally of one learner × course (`applyDelta`) gives exactly the
 * tally rebuilt from evidence (`tallyFromEvidence`); when not, the course is rebuilt. The whole decision of
 * the fast path, for the consumer (`totalsOf`) and for the tests' model.
 *
 * A tally is a sum over instants: each instant of the union of the course's learner runs counts for the
 * module of the run that owns it (`unionSegments`; how the instants are cut into segments changes no sum).
 * The owner of instant t is chosen among the runs active at t by `lastFocusAt(tab, t)` (the tab's latest
 * mark at or before t), then by start, tab id and run id. A batch only grows runs (its `spans`), adds focus
 * marks, and adds runs of length zero (which own nothing). So the delta is exact when:
 *
 * 1. no new span [startMs, endMs) of a run overlaps another run of the course (as the batch leaves it):
 *    each of its instants had no owner before and has its own run after, as `applyDelta` counts it;
 * 2. no two runs of different tabs overlap at or after the earliest new mark: a mark at `atMs` changes
 *    `lastFocusAt` only from `atMs` on, and focus only decides between runs of different tabs (runs of
 *    one tab are ordered by start and id alone). Where at most one tab has a run, nothing can move.
 *
 * Every other instant keeps its runs (no span covers it) and their focus, hence its owner. A page open marks
 * its own instant, which no run reaches past yet: it moves nothing, and a learner with one page at a time
 * never needs a rebuild. Runs with `endMs === startMs` own nothing and are ignored. Runs of tabs that are
 * never credited are not told apart (they can only cause a needless rebuild); their marks, and marks on
 * other courses' tabs, are not in the delta since this course's tally ignores them.
 *
 * `courseRuns`: the course's runs as the batch leaves them, at least every one that is unsealed or ended
 * less than RECENT_WINDOW_MS before the batch's first item (what the service and the tests' model load).
 * That covers every run the checks need: a span starts at most `gapMs` before its item (the run's last
 * beat, or the page open of its first beat), a mark at most `idleMs` before (`inputAtMs` clamps the
 * reported input to `idleMs`; a mark never precedes the input that placed it).
 */
export function canApplyIncrementally(delta: CourseDelta, courseRuns: readonly RunInterval[]): boolean {
  if (delta.spans.length === 0 && delta.focus.length === 0) return true;
  const live = courseRuns.filter((r) => r.endMs > r.startMs);
  for (const s of delta.spans) {
    if (live.some((r) => r.runId !== s.runId && r.startMs < s.endMs && r.endMs > s.startMs)) return false;
  }
  if (delta.focus.length === 0) return true;
  const markedFrom = Math.min(...delta.focus.map((f) => f.atMs));
  const late = live.filter((r) => r.endMs > markedFrom);
  for (let i = 0; i < late.length; i++) {
    const a = late[i] as RunInterval;
    for (let j = i + 1; j < late.length; j++) {
      const b = late[j] as RunInterval;
      if (a.tabId !== b.tabId && Math.max(a.startMs, b.startMs, markedFrom) < Math.min(a.endMs, b.endMs)) {
        return false;
      }
    }
  }
  return true;
}

/** Adds a batch's delta to a tally (the incremental path). */
export function applyDelta(tally: CourseTally, delta: CourseDelta): void {
  for (const [moduleId, nominal] of Object.entries(delta.notes)) noteModule(tally, moduleId, nominal);
  for (const p of delta.profiles) noteProfile(tally, p);
  for (const [moduleId, n] of Object.entries(delta.rejected)) addRejected(tally, moduleId, n);
  for (const s of delta.spans) addAttributed(tally, s.moduleId, s.startMs, s.endMs);
}

export function runInterval(id: string, r: RunRecord): RunInterval {
  return {
    runId: id,
    tabId: r.tabId,
    moduleId: r.moduleId,
    startMs: r.state.startMs,
    endMs: r.state.lastBeatMs,
    beatCount: r.state.beatCount,
    stopCause: r.state.stopCause,
    stopAtMs: r.state.stopAtMs,
    beforeStopMs: r.state.beforeStopMs,
  };
}

/** Everything stored about one learner in one course that crediting reads. */
export interface CourseEvidence {
  tabs: ReadonlyArray<{ tabId: string; moduleId: string; nominalMinutes: number; role: string; profile: string }>;
  runs: readonly RunInterval[];
  /** Focus marks of the learner; those of other courses' tabs are ignored. */
  focus: readonly FocusMark[];
  /** Rejected items, by tab. */
  rejected: ReadonlyArray<{ tabId: string }>;
}

/**
 * The tally rebuilt from evidence alone: the slow path of the ingest and `time recompute` both use it.
 * `beats-v1` re-derives the runs beats-v1 would have built from the same evidence (`toV1Runs`).
 */
export function tallyFromEvidence(evidence: CourseEvidence, algorithm: Algorithm = ALGORITHM): CourseTally {
  const learnerTabs = new Map(evidence.tabs.filter((t) => t.role === 'learner').map((t) => [t.tabId, t]));
  const nominal: Record<string, number> = {};
  for (const t of learnerTabs.values()) nominal[t.moduleId] = Math.max(nominal[t.moduleId] ?? 0, t.nominalMinutes);
  const rejected: Record<string, number> = {};
  for (const r of evidence.rejected) {
    const t = learnerTabs.get(r.tabId);
    if (t) rejected[t.moduleId] = (rejected[t.moduleId] ?? 0) + 1;
  }
  const v2Runs = evidence.runs.filter((r) => learnerTabs.has(r.tabId));
  const runs =
    algorithm === 'beats-v1' ? toV1Runs(v2Runs, (tabId) => profileOfName(learnerTabs.get(tabId)?.profile)) : v2Runs;
  const focus = evidence.focus.filter((f) => learnerTabs.has(f.tabId));
  const profiles = [...new Set([...learnerTabs.values()].map((t) => t.profile))];
  return tallyCourse(runs, focus, nominal, rejected, profiles);
}

function profileOfName(name: string | undefined): RunProfile {
  return PROFILES[name as RunProfile['name']] ?? PROFILES.standard;
}

/** Crediting parameters of an algorithm (for `finalizeTally`). */
export const paramsOf = (algorithm: Algorithm) => PARAMS[algorithm];
