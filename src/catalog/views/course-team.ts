import { html, type SafeHtml } from '../../http/html.js';
import { catalogPage, type PageSession, withToken } from '../views.js';
import { formatMinutes } from './parcours.js';

/** The course team's pages: the view of a link, the course's learners, progress by week. */

export interface OverviewRow {
  fund: { slug: string; name: string; historicalName: string | null } | null;
  module: { id: string; title: string; version: number } | null;
  variants: { id: string; title: string; version: number; branches: { idcc: string; name: string }[] }[];
  /** The theme's next modules (positions 2, 3…), shown after the first one ("module suivant"). */
  followedBy?: { id: string; title: string; version: number }[];
}

export interface OverviewOptions {
  session: PageSession;
  linkDescription: string;
  /** The link fixes a fund (custom `fund=`). */
  fixedFund: string | null;
  rows: OverviewRow[];
  problem?: string | undefined;
  themes: { trackTitle: string; slug: string; title: string; trunk: 'common' | 'sector' }[];
  modules: { id: string; title: string; fund: string }[];
  /** A parcours link: the course's progress by week. */
  courseProgress?: SafeHtml | undefined;
  /** The programme as funded: modules per learner and planned duration (from the modules' nominal durations). */
  programme?: { modules: number; plannedMinutes: number; weeks: number } | undefined;
  /** What the course's certificate requires, in plain French (the certificates' issuance rule). */
  issuanceRule?: string | undefined;
}

export function renderCourseTeamOverview(o: OverviewOptions): string {
  const previewButton = (moduleId: string, label: string, fund: string | null) =>
    html`<a class="button" href="${withToken(`/catalog/preview?module=${encodeURIComponent(moduleId)}${fund ? `&fund=${encodeURIComponent(fund)}` : ''}`, o.session.token)}">${label}</a>`;
  const body = html`<h1>Vue de l’équipe pédagogique</h1>
<p>${o.linkDescription}</p>
${o.problem ? html`<div class="box error" role="alert"><p>${o.problem}</p></div>` : ''}
${o.programme ? html`<p>Le parcours de chaque apprenant compte <strong>${o.programme.modules} modules</strong> sur ${o.programme.weeks} semaines, soit <strong>${formatMinutes(o.programme.plannedMinutes)}</strong> prévues (somme des durées des modules) : le tronc commun et les modules du fonds de l’apprenant.</p>` : ''}
${o.issuanceRule ? html`<div class="box" id="regle-certificat"><p><strong>Règle de délivrance du certificat :</strong> ${o.issuanceRule}</p></div>` : ''}
${o.courseProgress ?? ''}
${o.fixedFund ? html`<p class="box">Ce lien fixe le fonds (<code>fund=${o.fixedFund}</code>) : tous les apprenants voient le module de ce fonds, quelle que soit leur entreprise.</p>` : ''}
${
  o.rows.length > 0
    ? html`<table class="funds">
<caption class="sr-only">Module affiché pour chaque fonds de formation</caption>
<thead><tr><th scope="col">Fonds</th><th scope="col">Module affiché</th><th scope="col">Variantes de branche</th><th scope="col">Aperçu</th></tr></thead>
<tbody>
${o.rows.map(
  (r) => html`<tr>
<th scope="row">${r.fund ? html`${r.fund.name}${r.fund.historicalName ? html`<br><span class="muted">anciennement ${r.fund.historicalName}</span>` : ''}` : 'Tous les apprenants'}</th>
<td>${r.module ? html`${r.module.title}<br><span class="muted"><code>${r.module.id}</code>, version ${r.module.version}</span>${(r.followedBy ?? []).map((t) => html`<br>puis : ${t.title} <span class="muted"><code>${t.id}</code>, version ${t.version}</span>`)}` : html`<strong>Aucun module</strong> : ces apprenants verront un message d’erreur.`}</td>
<td>${
    r.variants.length === 0
      ? html`<span class="muted">Aucune</span>`
      : html`<ul>${r.variants.map(
          (va) =>
            html`<li>${va.title} — pour ${va.branches.map((b) => `${b.name} (IDCC ${b.idcc})`).join(', ')} ${previewButton(va.id, `Aperçu de la variante`, r.fund?.slug ?? null)}</li>`,
        )}</ul>`
  }</td>
<td>${r.module ? previewButton(r.module.id, r.fund ? `Aperçu comme ${r.fund.name}` : 'Aperçu', r.fund?.slug ?? null) : ''}</td>
</tr>`,
)}
</tbody></table>`
    : ''
}
<div class="actions"><a href="${withToken('/catalog/course/learners', o.session.token)}">Apprenants du cours et leurs profils</a> <a href="${withToken('/lti-services/course-team', o.session.token)}">Progression sur ce lien et notes transmises</a></div>
<details>
<summary>Comment paramétrer ce lien dans Studio</summary>
<p>Dans le composant LTI, champ « Custom parameters », ajoutez une ligne :</p>
<ul>
<li>rien, ou <code>view=parcours</code> : « Mon parcours », les modules de l’apprenant semaine par semaine, son temps et son certificat ;</li>
<li><code>theme=&lt;thème&gt;</code> : chaque apprenant voit les modules de son fonds pour ce thème, l’un après l’autre (c’est l’usage normal) ;</li>
<li><code>module=&lt;identifiant&gt;</code> : tout le monde voit le même module ;</li>
<li>en plus, facultatif : <code>fund=&lt;fonds&gt;</code> pour une session de cours réservée à un fonds.</li>
</ul>
<table><caption>Thèmes disponibles</caption><thead><tr><th scope="col">Paramètre</th><th scope="col">Thème</th><th scope="col">Tronc</th></tr></thead>
<tbody>${o.themes.map((t) => html`<tr><td><code>theme=${t.slug}</code></td><td>${t.title}</td><td>${t.trunk === 'common' ? 'commun' : 'sectoriel'}</td></tr>`)}</tbody></table>
<table><caption>Modules disponibles</caption><thead><tr><th scope="col">Paramètre</th><th scope="col">Module</th><th scope="col">Fonds</th></tr></thead>
<tbody>${o.modules.map((m) => html`<tr><td><code>module=${m.id}</code></td><td>${m.title}</td><td>${m.fund}</td></tr>`)}</tbody></table>
</details>`;
  return catalogPage({
    title: 'Vue de l’équipe pédagogique',
    body,
    session: o.session,
    bodyData: { 'emargement-page': 'course-team' },
  });
}

export interface LearnerListOptions {
  session: PageSession;
  courseTitle: string;
  learners: {
    id: string;
    name: string;
    company: string | null;
    fund: string | null;
    completed: number;
    started: number;
  }[];
}

export function renderCourseLearners(o: LearnerListOptions): string {
  const body = html`<h1>Apprenants du cours</h1>
<p>${o.courseTitle}. Les apprenants apparaissent ici après leur premier lancement d’un module.</p>
${
  o.learners.length === 0
    ? html`<p>Aucun apprenant pour l’instant.</p>`
    : html`<table>
<caption class="sr-only">Apprenants, entreprise, fonds et modules</caption>
<thead><tr><th scope="col">Apprenant</th><th scope="col">Entreprise</th><th scope="col">Fonds</th><th scope="col">Modules terminés</th><th scope="col">Profil</th></tr></thead>
<tbody>${o.learners.map(
        (
          l,
        ) => html`<tr><th scope="row">${l.name}</th><td>${l.company ?? html`<span class="muted">profil non rempli</span>`}</td><td>${l.fund ?? '—'}</td><td>${l.completed} sur ${l.started} commencés</td>
<td><a href="${withToken(`/catalog/course/learners/${l.id}/profile`, o.session.token)}">Corriger le profil<span class="sr-only"> de ${l.name}</span></a></td></tr>`,
      )}</tbody></table>`
}
<div class="actions"><a href="${withToken('/catalog/course', o.session.token)}">Retour à la vue de l’équipe pédagogique</a></div>`;
  return catalogPage({
    title: 'Apprenants du cours',
    body,
    session: o.session,
    bodyData: { 'emargement-page': 'course-learners' },
  });
}

// ───────────────────────────── Course progress by week (course team, parcours link) ─────────────────────────────

export interface CourseWeekProgress {
  title: string;
  done: number;
  started: number;
  notStarted: number;
}

export function renderCourseProgressByWeek(weeks: readonly CourseWeekProgress[], learners: number): SafeHtml {
  if (learners === 0) return html`<p>Aucun apprenant n’a encore ouvert son parcours dans ce cours.</p>`;
  return html`<table class="weeks">
<caption>Progression du cours par semaine (${learners} apprenant${learners > 1 ? 's' : ''} avec un profil)</caption>
<thead><tr><th scope="col">Semaine</th><th scope="col">Semaine terminée</th><th scope="col">En cours</th><th scope="col">Pas commencée</th></tr></thead>
<tbody>${weeks.map((w) => html`<tr><th scope="row">${w.title}</th><td>${w.done}</td><td>${w.started}</td><td>${w.notStarted}</td></tr>`)}</tbody>
</table>`;
}
