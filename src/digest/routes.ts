import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { html } from '../http/html.js';
import {
  actorOf,
  assertCsrf,
  auditEvent,
  csrfField,
  type Principal,
  portalPage,
  principalOf,
  registerPortalCookies,
  requirePageSession,
} from '../portal/index.js';
import type { Mailer } from './mailer.js';
import * as repo from './repository.js';
import { INACTIVE_DAYS, recipientOf } from './rules.js';

const HtmlPage = Type.String({ description: 'French HTML page' });
const hidden = { hide: true } as const;

function digestPage(options: {
  request: FastifyRequest;
  principal: Principal;
  subscribed: boolean;
  mailer: Mailer | null;
  done?: 'inscrit' | 'desinscrit' | undefined;
}): string {
  const { request, principal, subscribed, mailer, done } = options;
  const recipient = recipientOf(principal.username);
  const body = (() => {
    if (principal.role !== 'fund_staff' || !principal.fundSlug) {
      return html`<p>Le résumé hebdomadaire est destiné aux comptes d’un fonds : il ne porte que sur les apprenants de ce fonds.</p>`;
    }
    if (!recipient) {
      return html`<p class="alert">Votre identifiant (${principal.username}) n’est pas une adresse électronique : le résumé ne peut pas vous être envoyé.
Demandez à un opérateur de créer votre compte avec votre adresse.</p>`;
    }
    return html`${
      mailer
        ? ''
        : html`<p class="alert">L’envoi de courriels n’est pas encore configuré sur ce serveur : votre demande est enregistrée, les envois commenceront dès qu’il le sera.</p>`
    }
<p>${subscribed ? html`<strong>Vous recevez le résumé</strong> chaque lundi, à l’adresse ${recipient}.` : html`Vous ne recevez pas le résumé.`}</p>
<form method="post" action="/portal/resume-hebdo">${csrfField(request, principal)}
<input type="hidden" name="action" value="${subscribed ? 'desinscrire' : 'inscrire'}">
<button type="submit"${subscribed ? html` class="secondary"` : ''}>${subscribed ? 'Ne plus recevoir le résumé' : 'Recevoir le résumé chaque lundi'}</button>
</form>`;
  })();
  return portalPage({
    request,
    principal,
    title: 'Résumé hebdomadaire par courriel',
    current: '/portal/resume-hebdo',
    body: html`<h1>Résumé hebdomadaire par courriel</h1>
${done === 'inscrit' ? html`<p class="notice" role="status">C’est noté : vous recevrez le résumé chaque lundi.</p>` : ''}
${done === 'desinscrit' ? html`<p class="notice" role="status">C’est noté : vous ne recevrez plus le résumé.</p>` : ''}
<p>Chaque lundi, un courriel sur la semaine écoulée, pour les apprenants de votre fonds seulement :</p>
<ul>
<li>les nouvelles inscriptions ;</li>
<li>les attestations délivrées ;</li>
<li>les apprenants sans aucune activité depuis ${INACTIVE_DAYS} jours (et sans attestation), pour pouvoir les relancer.</li>
</ul>
${body}`,
  });
}

export async function digestRoutes(fastify: FastifyInstance, options: { mailer: Mailer | null }): Promise<void> {
  await registerPortalCookies(fastify);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const pageConfig = { html: true };

  app.get(
    '/portal/resume-hebdo',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        querystring: Type.Object({
          fait: Type.Optional(Type.Union([Type.Literal('inscrit'), Type.Literal('desinscrit'), Type.Literal('')])),
        }),
        response: { 200: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const subscribed = await repo.isSubscribed(app.db, principal.userId);
      return reply
        .type('text/html; charset=utf-8')
        .send(
          digestPage({ request, principal, subscribed, mailer: options.mailer, done: request.query.fait || undefined }),
        );
    },
  );

  app.post(
    '/portal/resume-hebdo',
    {
      config: pageConfig,
      preHandler: requirePageSession,
      schema: {
        ...hidden,
        body: Type.Object({
          action: Type.Union([Type.Literal('inscrire'), Type.Literal('desinscrire')]),
          _csrf: Type.Optional(Type.String({ maxLength: 100 })),
        }),
        response: { 303: Type.Null(), 403: HtmlPage },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      assertCsrf(request, principal, request.body._csrf);
      if (request.body.action === 'inscrire') {
        if (principal.role !== 'fund_staff' || !principal.fundSlug || !recipientOf(principal.username)) {
          return reply
            .code(403)
            .type('text/html; charset=utf-8')
            .send(digestPage({ request, principal, subscribed: false, mailer: options.mailer }));
        }
        await repo.subscribe(app.db, principal.userId);
      } else {
        await repo.unsubscribe(app.db, principal.userId);
      }
      await auditEvent(
        app.db,
        actorOf(principal),
        request.body.action === 'inscrire' ? 'digest.subscribed' : 'digest.unsubscribed',
        {},
      );
      return reply.redirect(
        `/portal/resume-hebdo?fait=${request.body.action === 'inscrire' ? 'inscrit' : 'desinscrit'}`,
        303,
      );
    },
  );
}
