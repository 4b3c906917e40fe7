import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DomainError, NotFoundError } from '../http/errors.js';
import { sendPage } from '../http/html.js';
import { formPrincipal, principalOf, requireOperator, requirePageSession } from './auth.js';
import { accountsPage, journalPage, SECURITY_EVENT_LABELS, tokensPage } from './pages.js';
import {
  actorOf,
  auditEvent,
  createToken,
  findUserById,
  listAudit,
  listTokens,
  listUsers,
  resetPassword,
  revokeToken,
  setUserDisabled,
} from './service.js';

/** The signed-in pages of the portal: personal API tokens, and for operators the accounts and the journal. */

const HtmlPage = Type.String({ description: 'French HTML page' });
const Csrf = Type.String({ maxLength: 100 });
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const hidden = { hide: true } as const;

export async function accountRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const pageConfig = { html: true };

  // --- personal API tokens ------------------------------------------------------------------
  app.get(
    '/portal/jetons',
    { config: pageConfig, preHandler: requirePageSession, schema: { ...hidden, response: { 200: HtmlPage } } },
    async (request, reply) => {
      const principal = principalOf(request);
      return sendPage(reply, tokensPage({ request, principal, tokens: await listTokens(app.db, principal.userId) }));
    },
  );

  app.post(
    '/portal/jetons',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        body: Type.Object({
          nom: Type.String({ maxLength: 100 }),
          duree_jours: Type.Optional(Type.String({ maxLength: 4, pattern: '^[0-9]*$' })),
          _csrf: Type.Optional(Csrf),
        }),
        response: { 200: HtmlPage, 400: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = formPrincipal(request, request.body._csrf);
      const days = request.body.duree_jours ? Number(request.body.duree_jours) : null;
      try {
        const created = await createToken(app.db, principal.userId, request.body.nom, days);
        await auditEvent(app.db, actorOf(principal), 'token.created', { tokenId: created.id, prefix: created.prefix });
        const tokens = await listTokens(app.db, principal.userId);
        return sendPage(
          reply,
          tokensPage({ request, principal, tokens, created: { name: request.body.nom.trim(), token: created.token } }),
        );
      } catch (error) {
        if (!(error instanceof DomainError) || error.status !== 400) throw error;
        const tokens = await listTokens(app.db, principal.userId);
        return sendPage(reply, tokensPage({ request, principal, tokens, error: error.publicMessage }), 400);
      }
    },
  );

  app.post(
    '/portal/jetons/:id/revoquer',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        params: IdParams,
        body: Type.Object({ _csrf: Type.Optional(Csrf) }),
        response: { 200: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = formPrincipal(request, request.body._csrf);
      // Only the owner's token can match: another person's token id is "not found", not "forbidden".
      if (!(await revokeToken(app.db, principal.userId, request.params.id))) throw new NotFoundError('unknown_token');
      await auditEvent(app.db, actorOf(principal), 'token.revoked', { tokenId: request.params.id });
      const tokens = await listTokens(app.db, principal.userId);
      return sendPage(reply, tokensPage({ request, principal, tokens, notice: 'Le jeton a été révoqué.' }));
    },
  );

  // --- operators: accounts ------------------------------------------------------------------
  app.get(
    '/portal/comptes',
    { config: pageConfig, preHandler: requirePageSession, schema: { ...hidden, response: { 200: HtmlPage } } },
    async (request, reply) => {
      const principal = principalOf(request);
      requireOperator(principal);
      return sendPage(reply, accountsPage({ request, principal, accounts: await listUsers(app.db) }));
    },
  );

  const accountAction = (action: 'reinitialiser' | 'suspendre' | 'reactiver') =>
    app.post(
      `/portal/comptes/:id/${action}`,
      {
        config: pageConfig,
        preHandler: requirePageSession,
        schema: {
          ...hidden,
          params: IdParams,
          body: Type.Object({ _csrf: Type.Optional(Csrf) }),
          response: { 200: HtmlPage },
        },
      },
      async (request, reply) => {
        const principal = formPrincipal(request, request.body._csrf);
        requireOperator(principal);
        const target = await findUserById(app.db, request.params.id);
        if (!target) throw new NotFoundError('unknown_user');
        let reset: { username: string; password: string } | undefined;
        let notice: string | undefined;
        if (action === 'reinitialiser') {
          reset = { username: target.username, password: (await resetPassword(app.db, target.username)).password };
          await auditEvent(app.db, actorOf(principal), 'account.password_reset', { username: target.username });
        } else {
          if (target.id === principal.userId) throw new NotFoundError('unknown_user');
          await setUserDisabled(app.db, target.username, action === 'suspendre');
          await auditEvent(
            app.db,
            actorOf(principal),
            action === 'suspendre' ? 'account.disabled' : 'account.enabled',
            {
              username: target.username,
            },
          );
          notice =
            action === 'suspendre'
              ? `Le compte ${target.username} est suspendu.`
              : `Le compte ${target.username} est réactivé.`;
        }
        const accounts = await listUsers(app.db);
        return sendPage(
          reply,
          accountsPage({ request, principal, accounts, ...(reset ? { reset } : {}), ...(notice ? { notice } : {}) }),
        );
      },
    );
  accountAction('reinitialiser');
  accountAction('suspendre');
  accountAction('reactiver');

  // --- audit journal ------------------------------------------------------------------------
  app.get(
    '/portal/journal',
    { config: pageConfig, preHandler: requirePageSession, schema: { ...hidden, response: { 200: HtmlPage } } },
    async (request, reply) => {
      const principal = principalOf(request);
      const fundSlug = principal.role === 'operator' ? null : principal.fundSlug;
      const entries = await listAudit(app.db, { limit: 200, action: 'export.download', fundSlug });
      const securityEvents = await listAudit(app.db, {
        limit: 200,
        actions: Object.keys(SECURITY_EVENT_LABELS),
        fundSlug,
      });
      return sendPage(reply, journalPage({ request, principal, entries, securityEvents }));
    },
  );
}
