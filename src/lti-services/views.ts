import { html, page, raw, type SafeHtml, stylesheet } from '../http/html.js';
import { AUTO_POST_SCRIPT } from '../lti/index.js';
import type { CourseTeamView, LinkLearnerRow } from './course-team.js';
import type { PickerCatalogue, PickerEntry } from './deep-linking.js';

/**
 * Pages of the course team inside the Open edX iframe (Studio's deep-linking modal, the LTI component's
 * instructor view): French, keyboard and screen-reader friendly, the session token carried in the page.
 */

const STYLE = stylesheet('lti-services', new URL('./assets/lti-services.css', import.meta.url));

export interface PageSession {
  token: string;
  head: SafeHtml;
}

function servicesPage(title: string, session: PageSession | null, body: SafeHtml): string {
  const head = html`${session ? session.head : raw('<meta name="referrer" content="no-referrer">')}${STYLE}`;
  return page({ title, head, body });
}

const withToken = (path: string, token: string) =>
  `${path}${path.includes('?') ? '&' : '?'}session_token=${encodeURIComponent(token)}`;

const PARIS = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Paris' });
const dateFr = (d: Date) => PARIS.format(d);

// ─── Deep Linking picker ────────────────────────────────────────────────────────────────────────────

export function renderPicker(o: {
  session: PageSession;
  catalogue: PickerCatalogue;
  multiple: boolean;
  error?: string;
}): string {
  const type = o.multiple ? 'checkbox' : 'radio';
  const choice = (e: PickerEntry) =>
    html`<label class="choice"><input type="${type}" name="item" value="${e.value}"><span>${e.title}<span class="detail">${e.detail}</span></span></label>`;
  const body = html`<h1>Ajouter des modules au cours</h1>
<p>Cochez ${o.multiple ? 'les contenus' : 'le contenu'} à placer à cet endroit du cours, puis validez : Studio crée ${o.multiple ? 'un composant par contenu choisi' : 'le composant'}, noté sur l’achèvement du module.</p>
${o.error ? html`<div class="box error" role="alert"><p>${o.error}</p></div>` : ''}
<form method="post" action="/lti-services/deep-linking">
<input type="hidden" name="session_token" value="${o.session.token}">
<fieldset>
<legend>Le parcours complet — « Mon parcours »</legend>
<p class="muted">Une seule page où chaque apprenant retrouve ses modules semaine par semaine, où il en est, son temps et son certificat. Un lien sans paramètre affiche aussi cette page.</p>
${o.catalogue.parcours.map(choice)}
</fieldset>
<fieldset>
<legend>Thèmes du tronc sectoriel — le contenu s’adapte au fonds de l’apprenant</legend>
<p class="muted">Chaque apprenant voit le module de son fonds de formation (OPCO) pour ce thème. C’est le choix habituel.</p>
${o.catalogue.themes.length > 0 ? o.catalogue.themes.map(choice) : html`<p>Aucun thème sectoriel dans le catalogue.</p>`}
</fieldset>
<fieldset>
<legend>Thèmes du tronc commun — leurs modules l’un après l’autre, les mêmes pour tous</legend>
${o.catalogue.commonThemes.length > 0 ? o.catalogue.commonThemes.map(choice) : html`<p>Aucun thème du tronc commun dans le catalogue.</p>`}
</fieldset>
<fieldset>
<legend>Modules du tronc commun — les mêmes pour tous</legend>
${o.catalogue.common.length > 0 ? o.catalogue.common.map(choice) : html`<p>Aucun module du tronc commun dans le catalogue.</p>`}
</fieldset>
<fieldset>
<legend>Le module d’un fonds précis — le même pour tous les apprenants</legend>
<p class="muted">À réserver à une session du cours ouverte aux adhérents d’un seul fonds.</p>
${o.catalogue.funds.map(
  (
    f,
  ) => html`<details><summary>${f.name}${f.historicalName ? html` <span class="muted">(anciennement ${f.historicalName})</span>` : ''}</summary>
${f.modules.length > 0 ? f.modules.map(choice) : html`<p>Aucun module pour ce fonds.</p>`}
</details>`,
)}
</fieldset>
<div class="actions">
<button type="submit" name="action" value="add">Ajouter au cours</button>
<button type="submit" name="action" value="cancel" class="secondary" formnovalidate>Ne rien ajouter</button>
</div>
</form>`;
  return servicesPage('Ajouter des modules au cours', o.session, body);
}

/**
 * Deep Linking 2.0 §4.4: the response goes back through the browser, as a form POST to the platform
 * (the LMS session cookie must travel with it). Sent at once by script; a button when scripts are off.
 */
export function renderAutoPost(o: { returnUrl: string; jwt: string; count: number }): string {
  const body = html`<h1>Envoi de votre choix à la plateforme…</h1>
<p>${o.count === 0 ? 'Aucun contenu ne sera ajouté.' : `${o.count} contenu${o.count > 1 ? 's' : ''} à ajouter au cours.`}</p>
<form id="dl-response" method="post" action="${o.returnUrl}" data-auto-submit>
<input type="hidden" name="JWT" value="${o.jwt}">
<noscript><button type="submit">Continuer</button></noscript>
</form>
${AUTO_POST_SCRIPT}`;
  return servicesPage('Envoi de votre choix', null, body);
}

// ─── Course-team view of a link ─────────────────────────────────────────────────────────────────────

const PROGRESS_LABEL = { completed: 'Terminé', started: 'Commencé', not_started: 'Pas encore commencé' } as const;

function progressCell(r: LinkLearnerRow): SafeHtml {
  if (r.progress === 'completed' && r.completedAt) {
    return html`<span class="state-completed">Terminé</span> le ${dateFr(r.completedAt)}`;
  }
  if (r.progress === 'started' && r.startedAt) return html`Commencé le ${dateFr(r.startedAt)}`;
  return html`${PROGRESS_LABEL[r.progress]}`;
}

/** Connection time credited on the module, and the plausibility flags (to review, never refusals). */
function timeCell(r: LinkLearnerRow): SafeHtml {
  const minutes = r.creditedSeconds === null ? null : Math.floor(r.creditedSeconds / 60);
  const time = minutes === null ? html`<span class="muted">—</span>` : html`${minutes} min`;
  const flags = r.flags.map((f) =>
    f === 'completed_quickly'
      ? html`<br><span class="flag">Parcouru rapidement</span> (moins du tiers de la durée prévue)`
      : html`<br><span class="flag">À vérifier</span> : plus d’une heure de signaux parfaitement réguliers, sans action`,
  );
  return html`${time}${flags}`;
}

function scoreCell(r: LinkLearnerRow): SafeHtml {
  switch (r.score) {
    case 'sent':
      return html`Transmise${r.scoreAt ? html` le ${dateFr(r.scoreAt)}` : ''}`;
    case 'pending':
      return html`En attente d’envoi`;
    case 'held':
      return html`<span class="state-failed">En attente</span> : le composant LTI a changé, signalez-le à l’exploitant`;
    case 'failed':
      return html`<span class="state-failed">Non transmise</span> : signalez-le à l’exploitant`;
    default:
      return html`<span class="muted">—</span>`;
  }
}

export function renderCourseTeamView(o: {
  session: PageSession;
  view: CourseTeamView;
  notice?: string;
  error?: string;
}): string {
  const v = o.view;
  const serves =
    v.serves.kind === 'module'
      ? html`Ce lien affiche le module « ${v.serves.title} », le même pour tous les apprenants.`
      : v.serves.kind === 'theme'
        ? v.serves.perFund
          ? html`Ce lien affiche le thème « ${v.serves.title} » : chaque apprenant voit le module de son fonds de formation.`
          : html`Ce lien affiche le thème « ${v.serves.title} ».`
        : html`Ce lien n’indique pas encore quel module ou quel thème afficher.`;
  const completed = v.learners.filter((l) => l.progress === 'completed').length;
  const body = html`<h1>Suivi des apprenants sur ce lien</h1>
<p class="kicker">${v.courseTitle}</p>
<p>${serves} <a href="${withToken('/catalog/course', o.session.token)}">Voir le module de chaque fonds et les aperçus</a></p>
<p><a href="${withToken('/regroupement/equipe', o.session.token)}">Regroupement de fin de formation : programmer les séances, noter les présences</a></p>
${o.notice ? html`<div class="box notice" role="status"><p>${o.notice}</p></div>` : ''}
${o.error ? html`<div class="box error" role="alert"><p>${o.error}</p></div>` : ''}
<h2>Apprenants qui ont ouvert le cours</h2>
${
  v.learners.length === 0
    ? html`<p>Aucun apprenant n’a encore ouvert ce cours.</p>`
    : html`<p>${completed} sur ${v.learners.length} ont terminé le module de ce lien.</p>
<table class="learners">
<caption class="sr-only">Apprenants du cours, leur progression sur ce lien et l’envoi de leur note</caption>
<thead><tr><th scope="col">Apprenant</th><th scope="col">Fonds</th><th scope="col">Module</th><th scope="col">Progression</th><th scope="col">Temps de connexion</th><th scope="col">Note dans Open edX</th></tr></thead>
<tbody>${v.learners.map(
        (
          r,
        ) => html`<tr><th scope="row">${r.name}${r.company ? html`<br><span class="muted">${r.company}</span>` : ''}</th>
<td>${r.fund ?? html`<span class="muted">profil non rempli</span>`}</td>
<td>${r.module ? r.module.title : html`<span class="muted">—</span>`}</td>
<td>${progressCell(r)}</td>
<td>${timeCell(r)}</td>
<td>${scoreCell(r)}</td></tr>`,
      )}</tbody></table>`
}
<h2>Inscrits qui n’ont jamais ouvert le cours</h2>
${
  !v.nrps.available
    ? html`<p>La liste des inscrits n’est pas disponible : activez le service « Names and Roles Provisioning » (NRPS) dans le composant LTI de Studio, puis ouvrez à nouveau cette page.</p>`
    : html`${
        v.nrps.lastSyncedAt
          ? html`<p>${
              v.neverLaunched.length === 0
                ? 'Tous les inscrits ont ouvert le cours au moins une fois.'
                : `${v.neverLaunched.length} inscrit${v.neverLaunched.length > 1 ? 's' : ''} n’${v.neverLaunched.length > 1 ? 'ont' : 'a'} jamais ouvert le cours.`
            } <span class="muted">Liste du ${dateFr(v.nrps.lastSyncedAt)}.</span></p>
${
  v.neverLaunched.some((m) => m.name)
    ? html`<ul>${v.neverLaunched.map((m) => html`<li>${m.name ?? html`<span class="muted">nom non partagé par la plateforme</span>`}</li>`)}</ul>`
    : ''
}`
          : html`<p>La liste des inscrits n’a pas encore été lue.</p>`
      }
${v.nrps.lastError ? html`<p class="muted">Dernière lecture impossible : la plateforme n’a pas répondu correctement.</p>` : ''}
<form method="post" action="/lti-services/course-team/memberships">
<input type="hidden" name="session_token" value="${o.session.token}">
<button type="submit" class="secondary">Mettre à jour la liste des inscrits</button>
</form>`
}`;
  return servicesPage('Suivi des apprenants sur ce lien', o.session, body);
}
