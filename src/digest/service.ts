import type { FastifyInstance } from 'fastify';
import { formatDayFr, isoWeek, parisDay, parisDayStart } from '../exports/index.js';
import { actorOf, auditEvent, type Principal } from '../portal/index.js';
import type { Mailer } from './mailer.js';
import * as repo from './repository.js';
import {
  composeDigest,
  type DigestContent,
  type DigestLearner,
  type DigestMessage,
  type DigestWeek,
  digestWeek,
  INACTIVE_DAYS,
  inactivityWindow,
  recipientOf,
} from './rules.js';

const DAY_MS = 86_400_000;

/** The week the digest sent at `nowMs` covers: the last complete ISO week, Paris time. */
export function weekBefore(nowMs: number): DigestWeek {
  return digestWeek(
    parisDay(new Date(nowMs)),
    (day) => isoWeek(day).monday,
    (day) => parisDayStart(day).getTime(),
  );
}

function learner(row: repo.DigestLearnerRow): DigestLearner {
  return {
    familyName: row.family_name,
    givenName: row.given_name,
    companyName: row.company_name,
    idcc: row.idcc,
    day: formatDayFr(parisDay(new Date(row.at_ms))),
  };
}

/** What the digest of one fund says for one week (every query scoped to that fund). */
export async function digestContent(
  app: FastifyInstance,
  fund: string,
  week: DigestWeek,
  displayName: string,
): Promise<DigestContent> {
  const window = inactivityWindow(week);
  const [fundName, registrations, certificates, inactive, inactiveTotal] = await Promise.all([
    repo.fundName(app.db, fund),
    repo.registrations(app.db, fund, week.startMs, week.endMs),
    repo.certificates(app.db, fund, week.startMs, week.endMs),
    repo.inactive(app.db, fund, window.fromMs, window.toMs),
    repo.inactiveCount(app.db, fund, week.endMs - INACTIVE_DAYS * DAY_MS),
  ]);
  return {
    fundName,
    displayName,
    from: formatDayFr(week.monday),
    to: formatDayFr(week.sunday),
    registrations: registrations.map(learner),
    certificates: certificates.map(learner),
    newlyInactive: inactive.map(learner),
    inactiveTotal,
    portalUrl: app.config.publicUrl,
  };
}

export interface DigestRun {
  week: string;
  sent: number;
  failed: number;
  skipped: number;
}

/**
 * Sends last week's digest to everyone who asked for it and has not had it: each is claimed first
 * (digests_sent), so several instances running this at once send each digest once; a failed send is
 * recorded and retried on a later run.
 */
export async function sendDueDigests(
  app: FastifyInstance,
  mailer: Mailer | null,
  nowMs = Date.now(),
): Promise<DigestRun> {
  const week = weekBefore(nowMs);
  const run: DigestRun = { week: week.monday, sent: 0, failed: 0, skipped: 0 };
  if (!mailer) return run;
  for (const due of await repo.dueDigests(app.db, week.monday, week.endMs)) {
    const recipient = recipientOf(due.username);
    if (!recipient) {
      run.skipped++;
      app.log.warn({ userId: due.user_id }, 'digest not sent: the username is not an e-mail address');
      continue;
    }
    const key = { userId: due.user_id, weekStart: week.monday };
    if (!(await repo.claimDigest(app.db, { ...key, recipient, fund: due.fund_slug }))) continue;
    let message: DigestMessage;
    try {
      message = composeDigest(await digestContent(app, due.fund_slug, week, due.display_name));
      const sent = await mailer.send({ to: recipient, ...message });
      await repo.markDigest(app.db, key, { sent: true, messageId: sent.messageId });
      run.sent++;
    } catch (error) {
      run.failed++;
      const detail = error instanceof Error ? error.message : String(error);
      app.log.error({ err: error, userId: due.user_id, week: week.monday }, 'digest not sent');
      await repo.markDigest(app.db, key, { sent: false, error: detail });
    }
  }
  if (run.sent + run.failed > 0) app.log.info(run, 'weekly digests');
  return run;
}

/** Whether this portal account receives the weekly digest. */
export async function isSubscribed(app: FastifyInstance, principal: Principal): Promise<boolean> {
  return repo.isSubscribed(app.db, principal.userId);
}

/** Only fund staff whose username is an e-mail address may subscribe: the digest covers one fund. */
export function mayReceiveDigest(principal: Principal): boolean {
  return principal.role === 'fund_staff' && Boolean(principal.fundSlug) && Boolean(recipientOf(principal.username));
}

/** Subscribes or unsubscribes the account (audited). Check `mayReceiveDigest` before subscribing. */
export async function setSubscription(app: FastifyInstance, principal: Principal, subscribed: boolean): Promise<void> {
  if (subscribed) await repo.subscribe(app.db, principal.userId);
  else await repo.unsubscribe(app.db, principal.userId);
  await auditEvent(app.db, actorOf(principal), subscribed ? 'digest.subscribed' : 'digest.unsubscribed', {});
}
