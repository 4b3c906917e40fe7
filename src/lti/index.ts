import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { deriveKey } from '../config/secrets.js';
import { ensureCurrentKey, keyEncryptionKey, ToolKeyStore } from './keys.js';
import { PlatformKeyCache } from './platform-keys.js';
import { upsertRegistration } from './repository.js';
import { ltiRoutes } from './routes.js';
import type { MessageType } from './rules.js';
import { parseRegistration } from './rules.js';
import {
  type LaunchHandler,
  type LaunchRead,
  type LtiRuntime,
  loadRegistrationsFile,
  syncRegistrations,
} from './service.js';
import { openedWithTicket, sessionJwtOptions } from './session.js';
import { importStateKey } from './state.js';
import { LaunchValidator } from './validator.js';

/**
 * LTI 1.3 launch from Open edX (LTI Core 1.3, 1EdTech Security Framework 1.0), on `jose`. What Open edX
 * sends, claim by claim: docs/openedx-lti.md.
 * The only file other capabilities import from src/lti/.
 */
export { registerLtiCommands } from './cli.js';
export { AUTO_POST_SCRIPT, sessionHead } from './pages.js';
export { launchedAsLearnerIn, platformOrigins } from './queries.js';
export { type MessageType, mapRoles, toolUrls } from './rules.js';
export type { LaunchHandler, LaunchRead, ValidatedLaunch } from './service.js';
export {
  type LaunchSession,
  openedWithTicket,
  requireRole,
  requireSession,
  sessionTokenOf,
  signSession,
} from './session.js';
export type { LaunchRole } from './tables.js';
export { VIEW_TICKET_FIELD, viewTicketUrl } from './tickets.js';

declare module 'fastify' {
  interface FastifyInstance {
    ltiRuntime: LtiRuntime;
  }
}

/**
 * Registers the LTI routes (GET /.well-known/jwks.json, GET|POST /lti/login, POST /lti/launch,
 * POST /lti/deep-linking, POST /api/session/renew). At registration it loads and validates the registrations
 * file (a bad entry stops the start, naming the entry and field), upserts it, and makes sure a tool key exists.
 * A fastify-plugin named 'lti': its decorations are shared with the whole app so that `requireSession`,
 * `registerLaunchHandler` and `getCurrentToolKey` work from any other capability's plugin, which lists 'lti'
 * in its dependencies (fastify-plugin then checks the registration order).
 */
export const ltiPlugin = fp(
  async function lti(app: FastifyInstance): Promise<void> {
    const { config, db } = app;
    const registrations = await loadRegistrationsFile(config);
    await syncRegistrations(db, registrations, app.log);

    const kek = keyEncryptionKey(config.appSecret);
    await ensureCurrentKey(db, kek);

    await app.register(fastifyJwt, sessionJwtOptions(deriveKey(config.appSecret, 'session-token')));

    const platformKeys = new PlatformKeyCache();
    const key = importStateKey(config.appSecret);
    const runtime: LtiRuntime = {
      validator: new LaunchValidator({ db, publicUrl: config.publicUrl, stateKey: key, platformKeys }),
      toolKeys: new ToolKeyStore(db, kek),
      platformKeys,
      stateKey: key,
      handlers: new Map(),
      reads: new Map(),
      lastNoncePurge: 0,
    };
    app.decorate('ltiRuntime', runtime);
    // A page opened with a view ticket may stay in the browser's history (Back shows it again without asking
    // to resend a form, and without reusing the spent ticket), but is never stored by a shared cache.
    app.addHook('onSend', async (request, reply, payload) => {
      if (openedWithTicket(request) && String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
        reply.header('cache-control', 'private, no-cache');
      }
      return payload;
    });
    // Routes live in their own encapsulated context.
    await app.register(ltiRoutes, { runtime });
  },
  { name: 'lti', fastify: '5.x' },
);

/**
 * After a launch of this message type is validated and recorded, the LTI routes call `handler` to answer
 * (render the page). One handler per message type; without one, a simple French page is shown. `read`: what
 * the handler needs from the database, read by the launch's own statement (see `LaunchRead`).
 */
export function registerLaunchHandler(
  app: FastifyInstance,
  messageType: MessageType,
  handler: LaunchHandler,
  options: { read?: LaunchRead } = {},
): void {
  const { handlers, reads } = app.ltiRuntime;
  if (handlers.has(messageType)) throw new Error(`an LTI handler for ${messageType} is already registered`);
  handlers.set(messageType, handler);
  if (options.read) reads.set(messageType, options.read);
}

/** The tool's current signing key (deep-linking responses, client assertions): kid + RS256 private key. */
export async function getCurrentToolKey(
  app: FastifyInstance,
): Promise<{ kid: string; alg: 'RS256'; privateKey: CryptoKey }> {
  return app.ltiRuntime.toolKeys.current();
}

/**
 * Adds or updates a platform registration from code, as `npm run cli -- platforms add` does (source "cli",
 * so that the registrations file never removes it). Used by the development demo LMS to register itself.
 */
export async function registerPlatform(
  app: FastifyInstance,
  input: {
    name: string;
    issuer: string;
    clientId: string;
    deploymentIds: string[];
    authLoginUrl: string;
    accessTokenUrl: string;
    jwksUrl: string;
  },
): Promise<void> {
  const reg = parseRegistration(input, 'registration', { requireHttps: app.config.nodeEnv === 'production' });
  await upsertRegistration(app.db, reg, 'cli');
}
