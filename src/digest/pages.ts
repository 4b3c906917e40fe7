import type { FastifyRequest } from 'fastify';
import { html } from '../http/html.js';
import { csrfField, type Principal, portalPage } from '../portal/index.js';
import type { Mailer } from './mailer.js';
import { INACTIVE_DAYS, recipientOf } from './rules.js';

/** The portal page where fund staff subscribe to the weekly digest (or stop it). */
export function digestPage(options: {
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
