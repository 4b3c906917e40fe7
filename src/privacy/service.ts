import { sql } from 'kysely';
import { signWithCertificateKey, verifyCertificateSignature } from '../certificates/index.js';
import type { Db } from '../db/index.js';
import { NotFoundError } from '../http/errors.js';
import { auditEvent } from '../portal/index.js';
import {
  digestOf,
  type EvidenceRecord,
  evidenceCanonicalJson,
  evidenceHash,
  getLearnerTimes,
  redactionStatement,
  settleTracking,
} from '../tracking/index.js';
import * as repo from './repository.js';
import {
  addYears,
  dayOf,
  type Hold,
  isPast,
  learnerHolds,
  lmsEventsReleaseDay,
  lmsPseudonym,
  pseudonymFor,
  type RetentionPolicy,
  reducedTabData,
  reducedUserAgent,
  subtractDays,
} from './rules.js';

/** The personal data lifecycle (docs/privacy.md): purge, minimisation, erasure, access export. */

export interface PrivacyDeps {
  db: Db;
  appSecret: string;
  policy: RetentionPolicy;
}

type AuditActor = Parameters<typeof auditEvent>[1];

export const CLI_ACTOR: AuditActor = {
  userId: null,
  username: 'cli',
  role: 'cli',
  fundSlug: null,
  via: 'cli',
  tokenId: null,
};

async function sign(deps: PrivacyDeps, text: string) {
  return signWithCertificateKey(deps.db, deps.appSecret, text);
}

function recordOf(e: repo.TabEventRow): EvidenceRecord {
  return {
    learnerId: e.learner_id,
    index: e.chain_index,
    kind: e.kind,
    courseId: e.course_id,
    moduleId: e.module_id,
    tabId: e.tab_id,
    seq: e.seq,
    at: new Date(e.server_time.getTime()).toISOString(),
    clientTime: e.client_time,
    reason: e.reason,
    data: e.data as EvidenceRecord['data'],
  };
}

// ───────────────────────────── redaction of evidence ─────────────────────────────

export class EvidenceIntegrityError extends Error {}

/**
 * Reduces the personal fields of the `tab` records of these tabs, each under a signed redaction that binds
 * its place in the chain to its reduced content (the chain keeps its hashes, so heads and digests stay).
 * A record is only reduced if it is intact now: its hash still matches, or its earlier redaction verifies.
 */
async function redactTabs(
  deps: PrivacyDeps,
  trx: repo.Trx,
  learnerId: string,
  tabs: ReadonlyArray<{ id: string; user_agent: string | null; ip_prefix: string | null }>,
  rule: 'user-agent-30d' | 'erasure',
  at: Date,
): Promise<number> {
  let reduced = 0;
  const events = new Map(
    (
      await repo.tabEvents(
        trx,
        learnerId,
        tabs.map((t) => t.id),
      )
    ).map((e) => [e.tab_id, e]),
  );
  for (const tab of tabs) {
    const event = events.get(tab.id);
    if (event) {
      const record = recordOf(event);
      await assertIntact(trx, event, record);
      const data = reducedTabData(event.data as Record<string, unknown>, rule);
      if (data) {
        const redactedAt = at.toISOString();
        const next = { ...record, data: data as EvidenceRecord['data'] };
        const statement = redactionStatement({
          learnerId,
          index: record.index,
          prevHash: event.prev_hash,
          hash: event.hash,
          record: next,
          rule,
          redactedAt,
        });
        const { kid, signature } = await sign(deps, statement);
        await repo.saveRedaction(trx, { learnerId, index: record.index, rule, redactedAt: at, kid, signature, data });
        reduced++;
      }
    }
    await repo.updateTabContext(trx, tab.id, {
      user_agent: reducedUserAgent(tab.user_agent),
      ...(rule === 'erasure' ? { ip_prefix: null } : {}),
    });
  }
  return reduced;
}

async function assertIntact(trx: repo.Trx, event: repo.TabEventRow, record: EvidenceRecord) {
  if (evidenceHash(event.prev_hash, record) === event.hash) return;
  const earlier = await repo.redactionOf(trx, event.learner_id, event.chain_index);
  if (earlier) {
    const key = await trx
      .selectFrom('certificate_signing_keys')
      .select('public_jwk')
      .where('kid', '=', earlier.kid)
      .executeTakeFirst();
    const statement = redactionStatement({
      learnerId: event.learner_id,
      index: event.chain_index,
      prevHash: event.prev_hash,
      hash: event.hash,
      record,
      rule: earlier.rule,
      redactedAt: earlier.redacted_at.toISOString(),
    });
    if (key && verifyCertificateSignature(key.public_jwk, statement, earlier.signature)) return;
  }
  throw new EvidenceIntegrityError(
    `evidence record ${event.chain_index} of learner ${event.learner_id} does not match its hash: not redacted (run time verify)`,
  );
}

// ───────────────────────────── the purge ─────────────────────────────

export interface PurgeReport {
  mode: 'dry-run' | 'apply';
  at: string;
  policy: RetentionPolicy;
  auditLog: number;
  loginFailures: number;
  quarantinedJournalRows: number;
  userAgentsReduced: number;
  learners: { purged: number; ids: string[]; kept: Array<{ learnerId: string; reason: string }> };
  lmsEvents: { deleted: number; courses: string[] };
  digestsResealed: number;
  problems: string[];
}

/**
 * Deletes (or, dry run, counts) what is past its date: the audit log, failed sign-ins, unreadable journal
 * rows, user agents older than their window (reduced to a device class), learners whose every retention date
 * passed (evidence chain, time, certificates, LMS data, the person), and each course's LMS events. In
 * batches; safe in several instances at once (each learner under its lock, the rest idempotent).
 */
export async function purge(
  deps: PrivacyDeps,
  options: { apply: boolean; now?: Date; trigger?: 'cli' | 'scheduled' },
): Promise<PurgeReport> {
  const { db, policy } = deps;
  const now = options.now ?? (await repo.databaseNow(db));
  const mode = options.apply ? 'apply' : 'dry-run';
  const runId = await repo.startRun(db, mode, options.trigger ?? 'cli', now);
  const report: PurgeReport = {
    mode,
    at: now.toISOString(),
    policy,
    auditLog: 0,
    loginFailures: 0,
    quarantinedJournalRows: 0,
    userAgentsReduced: 0,
    learners: { purged: 0, ids: [], kept: [] },
    lmsEvents: { deleted: 0, courses: [] },
    digestsResealed: 0,
    problems: [],
  };
  const batch = policy.batchSize;

  // 1. Simple windows.
  const auditBefore = subtractDays(now, policy.auditLogDays);
  const failuresBefore = subtractDays(now, policy.loginFailureDays);
  const quarantineBefore = new Date(`${addYears(dayOf(now), -policy.rawYears)}T00:00:00Z`);
  if (options.apply) {
    report.auditLog = await drain((n) => repo.deleteOlder(db, 'audit_log', 'at', auditBefore, n), batch);
    report.loginFailures = await drain(
      (n) => repo.deleteOlder(db, 'portal_login_failures', 'created_at', failuresBefore, n),
      batch,
    );
    report.quarantinedJournalRows = await drain((n) => repo.deleteQuarantineOlder(db, quarantineBefore, n), batch);
    // The purge's own journal (learner ids of what it deleted) goes with the audit log.
    await db.deleteFrom('privacy_purge_runs').where('started_at', '<', auditBefore).execute();
  } else {
    report.auditLog = await repo.countOlder(db, 'audit_log', 'at', auditBefore);
    report.loginFailures = await repo.countOlder(db, 'portal_login_failures', 'created_at', failuresBefore);
    report.quarantinedJournalRows = await repo.countOlder(
      db,
      'tracking_journal_quarantine',
      'received_at',
      quarantineBefore,
    );
  }

  // 2. Learners past every retention date (before the user agents: no point reducing what goes).
  const shortest = Math.min(policy.onboardingDays, policy.rawYears * 365, policy.certificateYears * 365);
  const quietSince = subtractDays(now, shortest - 1);
  let after: string | null = null;
  for (;;) {
    const learners = await repo.quietLearners(db, quietSince, after, batch);
    if (learners.length === 0) break;
    after = (learners[learners.length - 1] as repo.LearnerRow).id;
    for (const learner of learners) {
      const { releaseDay } = learnerHolds(await holdInput(db, learner), policy);
      if (!isPast(releaseDay, now)) continue;
      if (!options.apply) {
        report.learners.purged++;
        report.learners.ids.push(learner.id);
        continue;
      }
      try {
        const outcome = await purgeLearner(deps, learner.id, now);
        if (outcome.purged) {
          report.learners.purged++;
          report.learners.ids.push(learner.id);
          report.digestsResealed += outcome.digestsResealed;
        }
      } catch (err) {
        const code = (err as { code?: string }).code;
        report.learners.kept.push({
          learnerId: learner.id,
          reason:
            code === '23503'
              ? 'referenced by another record kept longer (e.g. a certificate this person issued as course team)'
              : (err as Error).message,
        });
      }
    }
  }
  // A digest computed while a chain was being purged may still hold it: reseal those too.
  if (options.apply) {
    const stale = await repo.purgedLearnersInDigests(db);
    if (stale.length > 0) {
      report.digestsResealed += await db.transaction().execute(async (trx) => {
        await repo.lockPrivacy(trx);
        return resealDigests(deps, trx, stale, now);
      });
    }
  }

  // 3. User agents reduced to a device class.
  const uaBefore = subtractDays(now, policy.userAgentDays);
  if (options.apply) {
    let afterLearner: string | null = null;
    for (;;) {
      const ids = await repo.learnersWithWholeUserAgents(db, uaBefore, afterLearner, batch);
      if (ids.length === 0) break;
      afterLearner = ids[ids.length - 1] as string;
      for (const learnerId of ids) {
        try {
          report.userAgentsReduced += await db.transaction().execute(async (trx) => {
            await repo.lockChain(trx, learnerId);
            const tabs = await repo.tabsOf(trx, learnerId, { before: uaBefore, wholeUserAgentOnly: true });
            await redactTabs(deps, trx, learnerId, tabs, 'user-agent-30d', now);
            return tabs.length;
          });
        } catch (err) {
          report.problems.push((err as Error).message);
        }
      }
    }
  } else {
    report.userAgentsReduced = await repo.countWholeUserAgents(db, uaBefore);
  }

  // 4. LMS events, course by course.
  for (const course of await repo.lmsCourses(db)) {
    const eu = course.eu === true;
    const filter: { contextId: string; before?: Date } = { contextId: course.context_id };
    if (course.known) {
      const lastCertificateRelease = course.last_certificate_at
        ? addYears(dayOf(course.last_certificate_at), eu ? policy.euCofundedYears : policy.certificateYears)
        : null;
      const release = lmsEventsReleaseDay(
        { sessionEnd: course.session_end, lastEventAt: course.last_event_at, euCofunded: eu, lastCertificateRelease },
        policy,
      );
      if (!isPast(release, now)) continue;
    } else {
      // Events of a course this tool does not serve: each goes `rawYears` after it happened.
      filter.before = new Date(`${addYears(dayOf(now), -policy.rawYears)}T00:00:00Z`);
    }
    let deleted = 0;
    if (options.apply) {
      deleted = await drain((n) => db.transaction().execute((trx) => repo.deleteLmsEvents(trx, filter, n)), batch);
    } else {
      const row = await db
        .selectFrom('lms_events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('course_context_id', '=', filter.contextId)
        .$if(filter.before !== undefined, (q) => q.where('occurred_at', '<', filter.before as Date))
        .executeTakeFirst();
      deleted = Number(row?.n ?? 0);
    }
    if (deleted > 0) {
      report.lmsEvents.deleted += deleted;
      report.lmsEvents.courses.push(course.context_id);
    }
  }

  await repo.finishRun(db, runId, report);
  return report;
}

async function drain(step: (limit: number) => Promise<number>, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await step(batch);
    total += n;
    if (n < batch) return total;
  }
}

async function holdInput(db: repo.Q, learner: repo.LearnerRow) {
  const facts = await repo.retentionFacts(db, learner);
  return {
    courses: facts.courses,
    certificates: facts.certificates,
    hasProfile: facts.hasProfile,
    lastLaunchAt: facts.lastLaunchAt,
    createdAt: learner.created_at,
  };
}

/**
 * Deletes one learner entirely when every retention date has passed (checked again under the lock): the
 * evidence chain is sealed first (its length and head, signed), and the daily digests that held it are
 * rewritten under a signed reseal. Returns purged: false when the learner is gone or still held.
 */
export async function purgeLearner(
  deps: PrivacyDeps,
  learnerId: string,
  now: Date,
): Promise<{ purged: boolean; digestsResealed: number }> {
  const { policy } = deps;
  await settleTracking(deps.db, { learnerId });
  return deps.db.transaction().execute(async (trx) => {
    await repo.lockPrivacy(trx);
    // Lock order: the chain row first (the tracking consumer takes it first too), then the person.
    const chain = await repo.lockChain(trx, learnerId);
    const learner = await repo.lockLearner(trx, learnerId);
    if (!learner) return { purged: false, digestsResealed: 0 };
    const { releaseDay } = learnerHolds(await holdInput(trx, learner), policy);
    if (!isPast(releaseDay, now)) return { purged: false, digestsResealed: 0 };
    if (chain && chain.chainLength > 0) {
      const purgedAt = now.toISOString();
      const statement = evidenceCanonicalJson({
        v: 1,
        type: 'evidence-chain-purge',
        learnerId,
        chainLength: chain.chainLength,
        chainHead: chain.chainHead,
        purgedAt,
        reason: `retention over (released ${releaseDay})`,
      });
      const { kid, signature } = await sign(deps, statement);
      await trx
        .insertInto('privacy_purged_chains')
        .values({
          learner_id: learnerId,
          chain_length: chain.chainLength,
          chain_head: chain.chainHead,
          purged_at: now,
          statement,
          kid,
          signature,
        })
        .onConflict((oc) => oc.column('learner_id').doNothing())
        .execute();
    }
    const usernames = await repo.lmsUsernamesOf(trx, learner);
    await repo.deleteLearnerEverywhere(trx, learner, usernames);
    const digestsResealed = await resealDigests(deps, trx, [learnerId], now);
    return { purged: true, digestsResealed };
  });
}

/** Rewrites every kept daily digest that holds these (purged) chains, each under a signed reseal. */
async function resealDigests(deps: PrivacyDeps, trx: repo.Trx, learnerIds: readonly string[], now: Date) {
  const gone = new Set(learnerIds);
  let count = 0;
  for (const d of await repo.digestsHolding(trx, learnerIds)) {
    const heads = d.heads.map((h) => [h[0], Number(h[1]), h[2]] as [string, number, string]);
    const kept = heads.filter((h) => !gone.has(h[0]));
    const removed = heads.filter((h) => gone.has(h[0]));
    const after = digestOf(d.day, kept);
    const statement = evidenceCanonicalJson({
      v: 1,
      type: 'digest-reseal',
      day: d.day,
      before: d.digest,
      after,
      removed,
      reason: 'evidence chains purged at the end of their retention',
      at: now.toISOString(),
    });
    const { kid, signature } = await sign(deps, statement);
    await trx
      .insertInto('privacy_digest_reseals')
      .values({ day: d.day, resealed_at: now, statement, kid, signature })
      .execute();
    await repo.rewriteDigest(trx, d.day, after, kept);
    count++;
  }
  return count;
}

// ───────────────────────────── erasure ─────────────────────────────

export interface ErasureReport {
  learnerId: string;
  pseudonym: string;
  /** What is kept for now, and until when; purged by the daily purge after its day. */
  holds: Hold[];
  releaseDay: string;
  evidenceRecordsRedacted: number;
  lmsEventsPseudonymised: number;
  /** Nothing was held any more: the learner was deleted at once. */
  purgedNow: boolean;
}

/**
 * Erasure (GDPR art. 17) with legal holds: the person's identity is replaced by a pseudonym everywhere the
 * tool keeps it (LTI identity, profile, course rosters, LMS usernames), the user agent and truncated IP of
 * every evidence record are removed under signed redactions, and what must still be kept (certificates,
 * evidence) is listed with its release day. Audited in the portal's audit log.
 */
export async function eraseLearner(
  deps: PrivacyDeps,
  learnerId: string,
  actor: AuditActor = CLI_ACTOR,
  now?: Date,
): Promise<ErasureReport> {
  const { db, policy } = deps;
  const at = now ?? (await repo.databaseNow(db));
  // Items acknowledged but not yet credited carry the user agent and IP: credit them first.
  await settleTracking(db, { learnerId });
  const report = await db.transaction().execute(async (trx) => {
    await repo.lockPrivacy(trx);
    // Lock order: the chain row first (the tracking consumer takes it first too), then the person.
    await repo.lockChain(trx, learnerId);
    const learner = await repo.lockLearner(trx, learnerId);
    if (!learner)
      throw new NotFoundError(
        'learner_not_found',
        'Aucune donnée n’est enregistrée à ce nom.',
        `no learner ${learnerId}`,
      );
    const pseudonym = pseudonymFor(learnerId);
    const usernames = await repo.lmsUsernamesOf(trx, learner);
    await repo.pseudonymiseIdentity(trx, learner, pseudonym);
    let lmsEventsPseudonymised = 0;
    for (const [i, username] of usernames.entries()) {
      const to = lmsPseudonym(learnerId, i);
      if (username !== to) lmsEventsPseudonymised += await repo.pseudonymiseLmsUsername(trx, learnerId, username, to);
    }
    const tabs = await repo.tabsOf(trx, learnerId);
    const evidenceRecordsRedacted = await redactTabs(deps, trx, learnerId, tabs, 'erasure', at);
    const updated = (await repo.learnerById(trx, learnerId)) as repo.LearnerRow;
    const { holds, releaseDay } = learnerHolds(await holdInput(trx, updated), policy);
    await repo.saveErasure(trx, learnerId, pseudonym, holds);
    return {
      learnerId,
      pseudonym,
      holds,
      releaseDay,
      evidenceRecordsRedacted,
      lmsEventsPseudonymised,
      purgedNow: false,
    };
  });
  await auditEvent(db, actor, 'privacy.erase', {
    learnerId,
    pseudonym: report.pseudonym,
    holds: report.holds,
    releaseDay: report.releaseDay,
    evidenceRecordsRedacted: report.evidenceRecordsRedacted,
    lmsEventsPseudonymised: report.lmsEventsPseudonymised,
  });
  if (isPast(report.releaseDay, at)) {
    report.purgedNow = (await purgeLearner(deps, learnerId, at)).purged;
  }
  return report;
}

export async function isErased(db: Db, learnerId: string): Promise<boolean> {
  return (await repo.erasureOf(db, learnerId)) !== undefined;
}

/** One learner from an operator's reference (id, LTI sub, e-mail, LMS username): exactly one must match. */
export async function resolveLearner(db: Db, ref: string): Promise<repo.LearnerRow> {
  const found = await repo.findLearners(db, ref);
  if (found.length === 0) throw new Error(`no learner matches "${ref}"`);
  if (found.length > 1) {
    throw new Error(
      `"${ref}" matches ${found.length} learners: give the learner id (${found.map((l) => l.id).join(', ')})`,
    );
  }
  return found[0] as repo.LearnerRow;
}

// ───────────────────────────── access export ─────────────────────────────

export interface LearnerDataExport {
  format: 'emargement-personal-data-v1';
  generatedAt: string;
  controller: { name: string; address: string[] } | null;
  learner: {
    id: string;
    platform: string;
    platformUserId: string;
    name: string | null;
    givenName: string | null;
    familyName: string | null;
    email: string | null;
    lmsUsername: string | null;
    firstSeenAt: string;
  };
  erasure: { pseudonym: string; erasedAt: string; holds: Hold[] } | null;
  profile: {
    civility: string;
    familyName: string;
    givenName: string;
    fund: { slug: string; name: string | null };
    branchIdcc: string | null;
    updatedAt: string;
  } | null;
  company: { name: string; siret: string; headcountBand: string } | null;
  launches: Array<{ at: string; course: string | null; role: string; messageType: string }>;
  modules: Array<{
    course: string | null;
    moduleId: string;
    title: string | null;
    version: number;
    startedAt: string;
    completedAt: string | null;
    quiz: { correct: number; total: number } | null;
  }>;
  time: Array<{
    courseId: string;
    course: string | null;
    algorithm: string;
    params: Record<string, unknown>;
    creditedSeconds: number;
    measuredSeconds: number;
    modules: Array<{ moduleId: string; title: string | null; creditedSeconds: number; measuredSeconds: number }>;
    days: Array<{ day: string; measuredSeconds: number; modules: Record<string, number> }>;
    lmsEstimate: { algorithm: string; estimatedSeconds: number; params: Record<string, unknown> } | null;
  }>;
  evidence: {
    records: Record<string, number>;
    tabs: number;
    runs: number;
    devices: Record<string, number>;
    lmsEvents: number;
    lmsUsernames: string[];
  };
  certificates: Array<{
    number: string;
    version: number;
    state: string;
    course: string | null;
    issuedAt: string;
    totalSeconds: number | null;
    fund: string | null;
  }>;
  retention: { holds: Hold[]; releaseDay: string };
}

/**
 * Everything the tool keeps about one learner (GDPR art. 15 and 20), read from the database: identity,
 * profile and company, launches, modules, time per course, module and day with the algorithm and its
 * parameters, evidence counts, certificates, and until when each is kept.
 */
export async function learnerDataExport(
  deps: PrivacyDeps,
  learnerId: string,
  controller: LearnerDataExport['controller'] = null,
): Promise<LearnerDataExport> {
  const { db, policy } = deps;
  const learner = await repo.learnerById(db, learnerId);
  if (!learner)
    throw new NotFoundError(
      'learner_not_found',
      'Aucune donnée n’est enregistrée à ce nom.',
      `no learner ${learnerId}`,
    );
  await settleTracking(db, { learnerId });
  const [erasure, profile, launches, progress, certificates, titles, courses] = await Promise.all([
    repo.erasureOf(db, learnerId),
    db
      .selectFrom('learner_profiles as p')
      .leftJoin('funds as f', 'f.slug', 'p.fund_slug')
      .selectAll('p')
      .select('f.name as fund_name')
      .where('p.learner_id', '=', learnerId)
      .executeTakeFirst(),
    db
      .selectFrom('lti_launches as l')
      .leftJoin('courses as c', 'c.id', 'l.course_id')
      .select(['l.created_at', 'l.role', 'l.message_type', 'c.title', 'c.context_id'])
      .where('l.learner_id', '=', learnerId)
      .orderBy('l.created_at')
      .execute(),
    db
      .selectFrom('module_progress as m')
      .leftJoin('courses as c', 'c.id', 'm.course_id')
      .select([
        'm.module_id',
        'm.module_version',
        'm.started_at',
        'm.completed_at',
        'm.quiz_answers',
        'c.title',
        'c.context_id',
      ])
      .where('m.learner_id', '=', learnerId)
      .orderBy('m.started_at')
      .execute(),
    db
      .selectFrom('certificates as x')
      .leftJoin('courses as c', 'c.id', 'x.course_id')
      .select([
        'x.number',
        'x.version',
        'x.state',
        'x.issued_at',
        'x.data_canonical',
        'x.fund_slug',
        'c.title',
        'c.context_id',
      ])
      .where('x.learner_id', '=', learnerId)
      .orderBy('x.issued_at')
      .execute(),
    db.selectFrom('modules').select(['id', 'title']).execute(),
    sql<{ course_id: string; title: string | null; context_id: string }>`
      select distinct c.id as course_id, c.title, c.context_id from courses c where c.id in (
        select course_id from time_course_totals where learner_id = ${learnerId}
        union select course_id from lms_time_totals where learner_id = ${learnerId}
        union select course_id from tracking_tabs where learner_id = ${learnerId}
        union select course_id from lti_launches where learner_id = ${learnerId} and course_id is not null)
      order by c.context_id`.execute(db),
  ]);
  const moduleTitle = new Map(titles.map((m) => [m.id, m.title]));
  const courseName = (title: string | null, contextId: string | null) => title ?? contextId ?? null;

  const time: LearnerDataExport['time'] = [];
  for (const c of courses.rows) {
    const times = await getLearnerTimes(db, learnerId, c.course_id);
    const [days, lms] = await Promise.all([
      db
        .selectFrom('time_day_totals')
        .selectAll()
        .where('learner_id', '=', learnerId)
        .where('course_id', '=', c.course_id)
        .orderBy('day')
        .execute(),
      db
        .selectFrom('lms_time_totals')
        .selectAll()
        .where('learner_id', '=', learnerId)
        .where('course_id', '=', c.course_id)
        .executeTakeFirst(),
    ]);
    time.push({
      courseId: c.course_id,
      course: courseName(c.title, c.context_id),
      algorithm: times.algorithm,
      params: times.params,
      creditedSeconds: times.creditedSeconds,
      measuredSeconds: times.measuredSeconds,
      modules: times.modules.map((m) => ({
        moduleId: m.moduleId,
        title: moduleTitle.get(m.moduleId) ?? null,
        creditedSeconds: m.creditedSeconds,
        measuredSeconds: m.measuredSeconds,
      })),
      days: days.map((d) => ({
        day: d.day,
        measuredSeconds: Math.floor(Number(d.measured_ms) / 1000),
        modules: Object.fromEntries(Object.entries(d.modules).map(([k, v]) => [k, Math.floor(Number(v) / 1000)])),
      })),
      lmsEstimate: lms
        ? { algorithm: lms.algorithm, estimatedSeconds: Number(lms.estimated_seconds), params: lms.params }
        : null,
    });
  }

  const usernames = await repo.lmsUsernamesOf(db, learner);
  const [kinds, tabs, runs, lmsEvents] = await Promise.all([
    db
      .selectFrom('tracking_events')
      .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
      .where('learner_id', '=', learnerId)
      .groupBy('kind')
      .orderBy('kind')
      .execute(),
    db.selectFrom('tracking_tabs').select(['user_agent']).where('learner_id', '=', learnerId).execute(),
    db
      .selectFrom('tracking_runs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('learner_id', '=', learnerId)
      .executeTakeFirst(),
    usernames.length === 0
      ? Promise.resolve({ n: 0 })
      : db
          .selectFrom('lms_events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('lms_username', 'in', usernames)
          .executeTakeFirst(),
  ]);
  const devices: Record<string, number> = {};
  for (const t of tabs) {
    const device = (reducedUserAgent(t.user_agent) ?? 'device:unknown').slice('device:'.length);
    devices[device] = (devices[device] ?? 0) + 1;
  }
  const retention = learnerHolds(await holdInput(db, learner), policy);

  return {
    format: 'emargement-personal-data-v1',
    generatedAt: new Date().toISOString(),
    controller,
    learner: {
      id: learner.id,
      platform: learner.issuer,
      platformUserId: learner.sub,
      name: learner.name,
      givenName: learner.given_name,
      familyName: learner.family_name,
      email: learner.email,
      lmsUsername: learner.username,
      firstSeenAt: learner.created_at.toISOString(),
    },
    erasure: erasure
      ? { pseudonym: erasure.pseudonym, erasedAt: erasure.erased_at.toISOString(), holds: erasure.holds as Hold[] }
      : null,
    profile: profile
      ? {
          civility: profile.civility,
          familyName: profile.family_name,
          givenName: profile.given_name,
          fund: { slug: profile.fund_slug, name: profile.fund_name ?? null },
          branchIdcc: profile.idcc,
          updatedAt: profile.updated_at.toISOString(),
        }
      : null,
    company: profile
      ? { name: profile.company_name, siret: profile.company_siret, headcountBand: profile.headcount_band }
      : null,
    launches: launches.map((l) => ({
      at: l.created_at.toISOString(),
      course: courseName(l.title, l.context_id),
      role: l.role,
      messageType: l.message_type,
    })),
    modules: progress.map((m) => ({
      course: courseName(m.title, m.context_id),
      moduleId: m.module_id,
      title: moduleTitle.get(m.module_id) ?? null,
      version: m.module_version,
      startedAt: m.started_at.toISOString(),
      completedAt: m.completed_at ? m.completed_at.toISOString() : null,
      quiz: m.quiz_answers ? { correct: m.quiz_answers.correct, total: m.quiz_answers.total } : null,
    })),
    time,
    evidence: {
      records: Object.fromEntries(kinds.map((k) => [k.kind, Number(k.n)])),
      tabs: tabs.length,
      runs: Number(runs?.n ?? 0),
      devices,
      lmsEvents: Number(lmsEvents?.n ?? 0),
      lmsUsernames: usernames,
    },
    certificates: certificates.map((c) => ({
      number: c.number,
      version: c.version,
      state: c.state,
      course: courseName(c.title, c.context_id),
      issuedAt: c.issued_at.toISOString(),
      totalSeconds: totalSecondsOf(c.data_canonical),
      fund: c.fund_slug,
    })),
    retention,
  };
}

function totalSecondsOf(dataCanonical: string): number | null {
  try {
    const data = JSON.parse(dataCanonical) as { durations?: { totalSeconds?: unknown } };
    return typeof data.durations?.totalSeconds === 'number' ? data.durations.totalSeconds : null;
  } catch {
    return null;
  }
}

// ───────────────────────────── course sessions ─────────────────────────────

export async function markEuCofunded(db: Db, courseRef: string, on: boolean) {
  const courses = await repo.findCourses(db, courseRef);
  if (courses.length === 0) throw new Error(`no course session matches "${courseRef}"`);
  if (courses.length > 1) {
    throw new Error(`"${courseRef}" matches ${courses.length} course sessions: give the course id`);
  }
  const course = courses[0] as (typeof courses)[number];
  await repo.setEuCofunded(db, course.id, on);
  return course;
}

// ───────────────────────────── audit of the seals ─────────────────────────────

/**
 * Rechecks what the purge signed: each sealed chain (signature with a published key, the statement matching
 * its columns, no record of it left) and each day's digest reseals (signatures, each `before` being the
 * previous `after`, the last `after` being the digest kept now). Returns the problems found (none: []).
 */
export async function verifySeals(db: Db): Promise<string[]> {
  const problems: string[] = [];
  const keys = new Map(
    (await db.selectFrom('certificate_signing_keys').select(['kid', 'public_jwk']).execute()).map((k) => [
      k.kid,
      k.public_jwk,
    ]),
  );
  const signed = (kid: string, text: string, signature: string) => {
    const jwk = keys.get(kid);
    return jwk !== undefined && verifyCertificateSignature(jwk, text, signature);
  };
  for (const seal of await db.selectFrom('privacy_purged_chains').selectAll().orderBy('purged_at').execute()) {
    const statement = JSON.parse(seal.statement) as { learnerId?: string; chainHead?: string; chainLength?: number };
    if (!signed(seal.kid, seal.statement, seal.signature)) {
      problems.push(`sealed chain of ${seal.learner_id}: signature does not verify`);
    }
    if (
      statement.learnerId !== seal.learner_id ||
      statement.chainHead !== seal.chain_head ||
      statement.chainLength !== Number(seal.chain_length)
    ) {
      problems.push(`sealed chain of ${seal.learner_id}: statement differs from the seal`);
    }
    const left = await db
      .selectFrom('tracking_events')
      .select('id')
      .where('learner_id', '=', seal.learner_id)
      .limit(1)
      .execute();
    if (left.length > 0) problems.push(`sealed chain of ${seal.learner_id}: records are still stored`);
  }
  const reseals = await db
    .selectFrom('privacy_digest_reseals')
    .selectAll()
    .orderBy('day')
    .orderBy('resealed_at')
    .execute();
  const byDay = new Map<string, typeof reseals>();
  for (const r of reseals) byDay.set(r.day, [...(byDay.get(r.day) ?? []), r]);
  for (const [day, rows] of byDay) {
    let previousAfter: string | null = null;
    for (const r of rows) {
      const s = JSON.parse(r.statement) as { day?: string; before?: string; after?: string };
      if (!signed(r.kid, r.statement, r.signature)) problems.push(`digest reseal of ${day}: signature does not verify`);
      if (s.day !== day) problems.push(`digest reseal of ${day}: statement names another day`);
      if (previousAfter !== null && s.before !== previousAfter) {
        problems.push(`digest reseal of ${day}: does not follow the previous reseal`);
      }
      previousAfter = s.after ?? null;
    }
    const kept = await db.selectFrom('tracking_digests').select('digest').where('day', '=', day).executeTakeFirst();
    if (kept && kept.digest !== previousAfter) problems.push(`digest of ${day}: differs from its last reseal`);
  }
  return problems;
}
