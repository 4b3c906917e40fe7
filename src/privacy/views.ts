import { formatInstant } from '../common/paris-time.js';
import { html, PRIVACY_NOTICE_PATH, page, type SafeHtml, stylesheet } from '../http/html.js';
import type { LearnerDataExport } from './data-export.js';
import { frenchDay, frenchDuration, type RetentionPolicy } from './rules.js';

/** French pages of the privacy capability: the notice « Vos données », the download forms, the summary. */

export const EXPORT_PATH = '/privacy/export';

export interface Controller {
  name: string;
  address: string[];
}

const STYLE = stylesheet('privacy', new URL('./assets/privacy.css', import.meta.url));

function years(n: number): string {
  return `${n} an${n > 1 ? 's' : ''}`;
}

/** « Vos données »: the notice every learner page links to (public: it holds nothing about anyone). */
export function noticePage(options: { controller: Controller | null; policy: RetentionPolicy }): string {
  const { controller, policy } = options;
  const contact = policy.contact
    ? policy.contact.startsWith('https://')
      ? html`<a href="${policy.contact}">${policy.contact}</a>`
      : html`<a href="mailto:${policy.contact}">${policy.contact}</a>`
    : null;
  return page({
    title: 'Vos données',
    head: STYLE,
    privacyLink: false,
    body: html`<h1>Vos données personnelles</h1>
<p>Cette page explique ce que l’outil de suivi de la formation enregistre sur vous, pourquoi, qui le voit,
combien de temps c’est gardé, et comment exercer vos droits.</p>

<h2>Qui est responsable de vos données ?</h2>
${
  controller
    ? html`<p>L’organisme de formation : <strong>${controller.name}</strong>, ${controller.address.join(', ')}.</p>`
    : html`<p>L’organisme de formation qui vous propose ce cours.</p>`
}

<h2>Pourquoi ces données ?</h2>
<ul>
<li>Prouver que vous avez suivi la formation et combien de temps : c’est ce qui permet à votre OPCO de la financer.</li>
<li>Vous délivrer votre certificat de réalisation et permettre à tout le monde de vérifier qu’il est authentique.</li>
<li>Vous montrer votre progression et les modules de votre secteur.</li>
</ul>
<p><strong>Base légale :</strong> l’exécution de votre formation, et l’obligation légale de l’organisme de formation de
prouver à l’OPCO que la formation a bien été réalisée (justificatifs de réalisation).</p>

<h2>Ce qui est enregistré</h2>
<ul>
<li>Ce que la plateforme du cours nous transmet : votre identifiant, et si elle les partage votre nom, votre e-mail et votre nom d’utilisateur.</li>
<li>Votre profil : civilité, nom, prénom, entreprise (nom, SIRET, effectif, branche), OPCO.</li>
<li>Votre temps de connexion : les heures où une page de module était ouverte devant vous, les modules terminés, vos réponses aux quiz.</li>
<li>Pour prouver ce temps : l’appareil utilisé (le navigateur, réduit au type d’appareil après ${policy.userAgentDays} jours) et une adresse IP tronquée (on ne garde jamais l’adresse complète).</li>
<li>Les journaux de la plateforme FUN pour ce cours seulement, pour estimer le temps passé sur les pages du cours.</li>
<li>Vos certificats de réalisation.</li>
</ul>

<h2>Qui les reçoit ?</h2>
<ul>
<li>Votre OPCO, qui finance la formation : votre nom, votre entreprise, votre temps de formation et votre certificat.</li>
<li>L’organisme de formation et l’équipe du cours.</li>
<li>Personne d’autre. Toute personne qui a le numéro de votre certificat peut seulement vérifier qu’il est authentique (ses chiffres et vos initiales).</li>
</ul>

<h2>Combien de temps ?</h2>
<ul>
<li>Les preuves de connexion et les journaux de la plateforme : ${years(policy.rawYears)} après la fin de la session de formation.</li>
<li>Les certificats et les preuves qui les justifient : ${years(policy.certificateYears)} après leur délivrance.</li>
<li>Quand la formation est cofinancée par l’Union européenne : ${years(policy.euCofundedYears)}.</li>
<li>Si vous n’avez jamais terminé votre inscription : ${policy.onboardingDays} jours après votre dernière connexion.</li>
</ul>
<p>Ensuite, tout est supprimé automatiquement.</p>

<h2>Vos droits</h2>
<ul>
<li><strong>Voir et télécharger vos données</strong> : sur la page « Votre temps de connexion », choisissez « Télécharger mes données ».</li>
<li><strong>Corriger</strong> votre nom ou votre entreprise : dans votre profil, depuis un module du cours.</li>
<li><strong>Demander l’effacement</strong> : votre nom et vos coordonnées sont alors remplacés par un pseudonyme. Ce qui doit encore être gardé pour prouver la formation à votre OPCO (certificat, preuves de connexion) reste gardé jusqu’à sa date, puis est supprimé.</li>
<li><strong>Vous opposer</strong> à un traitement ou demander sa limitation.</li>
<li>Si vous pensez que vos droits ne sont pas respectés, vous pouvez vous adresser à la CNIL (www.cnil.fr).</li>
</ul>

<h2>Nous contacter</h2>
${
  contact
    ? html`<p>Pour toute demande sur vos données : ${contact}.</p>`
    : html`<p>Pour toute demande sur vos données, écrivez à l’organisme de formation${controller ? html` : ${controller.name}, ${controller.address.join(', ')}` : ''}, ou à l’équipe du cours.</p>`
}`,
  });
}

/**
 * The « Mes données » forms for a learner page: POST forms carrying the session token in their body (never in
 * a URL), answered with a file to download.
 */
export function exportForms(sessionToken: string): SafeHtml {
  const form = (format: 'html' | 'json', label: string) =>
    html`<form method="post" action="${EXPORT_PATH}" class="inline" data-privacy-export="${format}">
<input type="hidden" name="session_token" value="${sessionToken}">
<input type="hidden" name="format" value="${format}">
<button type="submit" class="secondary">${label}</button>
</form>`;
  return html`<section class="box mes-donnees" aria-labelledby="mes-donnees-titre">
<h2 id="mes-donnees-titre">Mes données</h2>
<p>Téléchargez tout ce que nous enregistrons sur vous : profil, entreprise, temps de connexion par jour et par module, certificats.</p>
${form('html', 'Télécharger mes données (résumé lisible)')}
${form('json', 'Télécharger mes données (fichier JSON)')}
<p class="muted"><a href="${PRIVACY_NOTICE_PATH}" target="_blank" rel="noopener">Vos données et vos droits</a></p>
</section>`;
}

const ROLE_TEXT: Record<string, string> = {
  learner: 'apprenant',
  course_team: 'équipe du cours',
  staff: 'administration de la plateforme',
};

const STATE_TEXT: Record<string, string> = { valid: 'valide', superseded: 'remplacé', revoked: 'révoqué' };

const KIND_TEXT: Record<string, string> = {
  tab: 'ouvertures de page (contexte)',
  open: 'pages ouvertes',
  close: 'pages fermées',
  rejected: 'signaux refusés',
  run_start: 'débuts de présence',
  run_end: 'fins de présence',
  focus: 'changements d’onglet',
  late: 'signaux arrivés en retard',
};

/** « 4 décembre 2026 à 14:05 », Paris time. */
const at = (iso: string): string => formatInstant(new Date(iso));

const or = (value: string | null | undefined, fallback = '—') =>
  value === null || value === undefined || value === '' ? fallback : value;

/** The readable French summary of a learner's data (the same content as the JSON file). */
export function summaryPage(data: LearnerDataExport): string {
  const l = data.learner;
  return page({
    title: 'Mes données',
    head: STYLE,
    body: html`<h1>Mes données enregistrées</h1>
<p class="muted">Document établi le ${at(data.generatedAt)}${data.controller ? html` par ${data.controller.name}` : ''}. Le fichier JSON contient les mêmes informations, dans un format réutilisable.</p>
${
  data.erasure
    ? html`<div class="box" role="note"><p><strong>Vos données ont été effacées le ${at(data.erasure.erasedAt)}.</strong>
Vous apparaissez sous le pseudonyme « ${data.erasure.pseudonym} ». Ce qui est encore gardé est listé en bas de page, avec sa date de suppression.</p></div>`
    : ''
}
<h2>Identité transmise par la plateforme du cours</h2>
<dl class="facts" data-section="identite">
<dt>Nom</dt><dd>${or(l.name ?? ([l.givenName, l.familyName].filter(Boolean).join(' ') || null))}</dd>
<dt>E-mail</dt><dd>${or(l.email)}</dd>
<dt>Nom d’utilisateur</dt><dd>${or(l.lmsUsername)}</dd>
<dt>Identifiant sur la plateforme</dt><dd>${l.platformUserId}</dd>
<dt>Première connexion</dt><dd>${at(l.firstSeenAt)}</dd>
</dl>

<h2>Profil et entreprise</h2>
${
  data.profile && data.company
    ? html`<dl class="facts" data-section="profil">
<dt>Nom</dt><dd>${data.profile.familyName}</dd>
<dt>Prénom</dt><dd>${or(data.profile.givenName)}</dd>
<dt>Entreprise</dt><dd>${data.company.name}</dd>
<dt>SIRET</dt><dd>${data.company.siret}</dd>
<dt>Effectif</dt><dd>${data.company.headcountBand}</dd>
<dt>Branche (IDCC)</dt><dd>${or(data.profile.branchIdcc)}</dd>
<dt>OPCO</dt><dd>${or(data.profile.fund.name, data.profile.fund.slug)}</dd>
</dl>`
    : html`<p>Vous n’avez pas rempli de profil.</p>`
}

<h2>Connexions depuis la plateforme</h2>
${
  data.launches.length === 0
    ? html`<p>Aucune.</p>`
    : html`<table data-section="connexions"><thead><tr><th>Date</th><th>Cours</th><th>En tant que</th></tr></thead><tbody>
${data.launches.map((x) => html`<tr><td>${at(x.at)}</td><td>${or(x.course)}</td><td>${ROLE_TEXT[x.role] ?? x.role}</td></tr>`)}
</tbody></table>`
}

<h2>Modules</h2>
${
  data.modules.length === 0
    ? html`<p>Aucun module commencé.</p>`
    : html`<table data-section="modules"><thead><tr><th>Module</th><th>Commencé</th><th>Terminé</th><th>Quiz</th></tr></thead><tbody>
${data.modules.map(
  (m) =>
    html`<tr><td>${or(m.title, m.moduleId)}</td><td>${at(m.startedAt)}</td><td>${m.completedAt ? at(m.completedAt) : 'non'}</td><td>${m.quiz ? `${m.quiz.correct} / ${m.quiz.total}` : '—'}</td></tr>`,
)}
</tbody></table>`
}

<h2>Temps de formation</h2>
${
  data.time.length === 0
    ? html`<p>Aucun temps enregistré.</p>`
    : data.time.map(
        (t) => html`<section data-section="temps">
<h3>${or(t.course, t.courseId)}</h3>
<p>Temps compté : <strong>${frenchDuration(t.creditedSeconds)}</strong> (mesuré : ${frenchDuration(t.measuredSeconds)}). Méthode de calcul : ${t.algorithm}.
${t.lmsEstimate ? html`Temps estimé d’après les journaux de la plateforme : ${frenchDuration(t.lmsEstimate.estimatedSeconds)} (méthode ${t.lmsEstimate.algorithm}).` : ''}</p>
${
  t.modules.length > 0
    ? html`<table><caption class="sr-only">Temps par module</caption><thead><tr><th>Module</th><th>Temps compté</th><th>Temps mesuré</th></tr></thead><tbody>
${t.modules.map((m) => html`<tr><td>${or(m.title, m.moduleId)}</td><td>${frenchDuration(m.creditedSeconds)}</td><td>${frenchDuration(m.measuredSeconds)}</td></tr>`)}
</tbody></table>`
    : ''
}
${
  t.days.length > 0
    ? html`<table><caption class="sr-only">Temps par jour</caption><thead><tr><th>Jour</th><th>Temps mesuré</th></tr></thead><tbody>
${t.days.map((d) => html`<tr><td>${frenchDay(d.day)}</td><td>${frenchDuration(d.measuredSeconds)}</td></tr>`)}
</tbody></table>`
    : ''
}
</section>`,
      )
}

<h2>Preuves enregistrées</h2>
<ul data-section="preuves">
${Object.entries(data.evidence.records).map(([kind, n]) => html`<li>${KIND_TEXT[kind] ?? kind} : ${n}</li>`)}
<li>pages de module ouvertes (onglets) : ${data.evidence.tabs}</li>
<li>périodes de présence : ${data.evidence.runs}</li>
<li>appareils : ${
      Object.entries(data.evidence.devices)
        .map(([d, n]) => `${d} (${n})`)
        .join(', ') || '—'
    }</li>
<li>événements des journaux de la plateforme : ${data.evidence.lmsEvents}</li>
</ul>

<h2>Certificats</h2>
${
  data.certificates.length === 0
    ? html`<p>Aucun certificat.</p>`
    : html`<table data-section="certificats"><thead><tr><th>Numéro</th><th>État</th><th>Délivré</th><th>Temps</th></tr></thead><tbody>
${data.certificates.map(
  (c) =>
    html`<tr><td>${c.number} (version ${c.version})</td><td>${STATE_TEXT[c.state] ?? c.state}</td><td>${at(c.issuedAt)}</td><td>${c.totalSeconds === null ? '—' : frenchDuration(c.totalSeconds)}</td></tr>`,
)}
</tbody></table>`
}

<h2>Jusqu’à quand c’est gardé</h2>
<ul data-section="conservation">
${data.retention.holds.map((h) => html`<li>${h.label} : jusqu’au ${frenchDay(h.releaseDay)} (${h.reason})</li>`)}
</ul>`,
  });
}
