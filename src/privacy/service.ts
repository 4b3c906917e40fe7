import type { Db } from '../db/index.js';
import { NotFoundError } from '../http/errors.js';
import { auditEvent } from '../portal/index.js';
import { digestOf, evidenceCanonicalJson, settleTracking } from '../tracking/index.js';
import * as repo from './repository.js';
import {
  addYears,
  dayOf,
  type Hold,
  isPast,
  learnerHolds,
  lmsEventsReleaseDay,
  lmsPseudonym,
  type PrivacyDeps,
  pseudonymFor,
  type RetentionPolicy,
  subtractDays,
} from './rules.js';
import { redactTabs, sign } from './seals.js';

/** The personal data lifecycle (docs/privacy.md): purge, minimisation, erasure (the access export: ./data-export.ts). */

export type { PrivacyDeps } from './rules.js';

type AuditActor = Parameters<typeof auditEvent>[1];

export const CLI_ACTOR: AuditActor = {
  userId: null,
  username: 'cli',
  role: 'cli',
  fundSlug: null,
  via: 'cli',
  tokenId: null,
};

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

/** What the retention rules need to know about a learner (the purge, the access export). */
export async function holdInput(db: repo.Q, learner: repo.LearnerRow) {
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
