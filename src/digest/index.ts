import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { runPeriodically } from '../common/periodic.js';
import { createMailer } from './mailer.js';
import { digestRoutes } from './routes.js';
import { sendDueDigests } from './service.js';

/** How often each instance looks for digests due (each is sent once, whoever sends it). */
const DIGEST_CHECK_MS = 30 * 60_000;

/**
 * The funds' weekly digest by e-mail: fund staff opt in on the portal (/portal/resume-hebdo); every
 * Monday they get, for their fund only, last week's registrations, certificates and learners who
 * went quiet. Sent from SCHEDULED_TASKS instances, once per person and week (docs/exports.md).
 */
export const digestPlugin = fp(
  async function digest(app: FastifyInstance): Promise<void> {
    const mailer = createMailer(app.config);
    if (!mailer) app.log.warn('SMTP_URL is not set: the weekly digests are not sent');
    app.addHook('onClose', async () => mailer?.close());
    await app.register(digestRoutes, { mailer });
    if (app.config.scheduledTasks) {
      runPeriodically(app, {
        name: 'weekly digests',
        everyMs: DIGEST_CHECK_MS,
        firstAfterMs: 2 * 60_000,
        task: () => sendDueDigests(app, mailer),
      });
    }
  },
  { name: 'digest', fastify: '5.x' },
);

export { createMailer, type Mailer, type OutgoingMail } from './mailer.js';
export { composeDigest, type DigestContent, digestWeek, recipientOf } from './rules.js';
export { digestContent, sendDueDigests, weekBefore } from './service.js';
