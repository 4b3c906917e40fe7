import cookie from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { CliContext } from '../common/cli-context.js';
import { accountRoutes } from './account-routes.js';
import { usersCommand } from './cli.js';
import { portalRoutes } from './routes.js';

/**
 * The funds' portal: accounts of fund staff (one fund) and operators (all funds), server-side
 * sessions, CSRF, sign-in throttling, personal API tokens and the audit log. Other capabilities use
 * the guards and the layout exported here; the exports capability serves the data pages and the API.
 */
export const portalPlugin = fp(
  async function portal(app: FastifyInstance): Promise<void> {
    // The portal's pages and their cookie parsing, in their own context.
    await app.register(async function portalPages(pages: FastifyInstance) {
      await registerPortalCookies(pages);
      await pages.register(portalRoutes);
      await pages.register(accountRoutes);
    });
  },
  { name: 'portal', fastify: '5.x' },
);

/**
 * Cookie parsing for a plugin that serves portal pages (the session cookie). Registered per context,
 * not app-wide: LTI pages in the LMS iframe have no use for it.
 */
export async function registerPortalCookies(app: FastifyInstance): Promise<void> {
  await app.register(cookie, { hook: 'onRequest' });
}

/** Adds `npm run cli -- users …` (accounts, provisional passwords, API tokens, audit log). */
export function registerPortalCommands(
  register: (name: string, summary: string, run: (args: string[], cli: CliContext) => Promise<number>) => void,
): void {
  register('users', 'portal accounts, password resets, API tokens, audit log', usersCommand);
}

export {
  assertCsrf,
  csrfField,
  principalOf,
  registerAccessAudit,
  requireApiToken,
  requireOperator,
  requirePageSession,
  setPortalPageHeaders,
} from './auth.js';
export {
  type DownloadAudit,
  type DownloadProgress,
  isProgressTicket,
  type ProgressUnit,
  readDownloadProgress,
  startDownloadAudit,
} from './downloads.js';
export { describeFilter, formatParis, portalPage } from './pages.js';
export { type Principal, scopedFund } from './rules.js';
export { actorOf, auditEvent, createToken, createUser, hashPassword, openSession } from './service.js';
export type { PortalRole, PortalTables } from './tables.js';
