import { formatDuration } from '../../common/paris-time.js';
import { html, type SafeHtml } from '../../http/html.js';
import { catalogPage, type PageSession, withToken } from '../views.js';

/** "Mon parcours", the learner's programme page. */

export type ParcoursStatus = 'todo' | 'started' | 'done';

const STATUS_LABELS: Record<ParcoursStatus, string> = { todo: 'à faire', started: 'en cours', done: 'terminé' };

export interface ParcoursModule {
  id: string;
  title: string;
  themeTitle: string;
  nominalMinutes: number;
  status: ParcoursStatus;
  /** Credited time in seconds; null when the time tracking is not available. */
  creditedSeconds: number | null;
  href: string;
}

export interface ParcoursWeek {
  week: number | null;
  title: string;
  modules: ParcoursModule[];
}

export interface ParcoursCertificate {
  /** The download link of the valid certificate, once issued. */
  pdfHref: string | null;
  /** The certificate page (request, history). */
  pageHref: string;
  /** What is still missing, in plain French. */
  missing: string[];
}

export interface ParcoursPageOptions {
  session: PageSession;
  trackTitle: string;
  fundName: string | null;
  weeks: ParcoursWeek[];
  /** Sum of the nominal durations of the learner's modules. */
  plannedMinutes: number;
  /** Credited time over the whole course, in seconds; null when unknown. */
  totalSeconds: number | null;
  timeHref: string | null;
  certificate: ParcoursCertificate | null;
  notice?: string | undefined;
  /** Sections other capabilities add (registered fragments), shown before the certificate. */
  extra?: SafeHtml[];
}

/** "1 h 05", "45 min": how the learner reads a duration (the one style of src/common/paris-time.ts). */
export function formatMinutes(totalMinutes: number): string {
  return formatDuration(Math.round(totalMinutes) * 60);
}

/**
 * "Mon parcours": the learner's modules week by week with their status and time, one "what next" button,
 * their time against the planned duration, and their certificate.
 */
export function renderParcoursPage(o: ParcoursPageOptions): string {
  const all = o.weeks.flatMap((w) => w.modules);
  const done = all.filter((m) => m.status === 'done').length;
  const next = all.find((m) => m.status === 'started') ?? all.find((m) => m.status === 'todo') ?? null;
  const minutes = o.totalSeconds === null ? null : Math.floor(o.totalSeconds / 60);
  const nextButton = next
    ? html`<p><a class="button" id="parcours-suivant" href="${next.href}">${next.status === 'started' ? 'Reprendre' : all.some((m) => m.status !== 'todo') ? 'Continuer avec' : 'Commencer par'} : ${next.title}</a></p>`
    : o.certificate?.pdfHref
      ? html`<p><a class="button" id="parcours-suivant" href="${o.certificate.pdfHref}">Télécharger mon certificat</a></p>`
      : o.certificate
        ? html`<p><a class="button" id="parcours-suivant" href="${o.certificate.pageHref}">Voir mon certificat</a></p>`
        : html`<p id="parcours-suivant">Vous avez terminé tous vos modules.</p>`;
  const certificate = o.certificate
    ? o.certificate.pdfHref
      ? html`<p>Votre certificat de réalisation est délivré. <a href="${o.certificate.pdfHref}">Télécharger le certificat (PDF)</a> · <a href="${o.certificate.pageHref}">Détails</a></p>`
      : html`<p>Votre certificat sera délivré quand il ne manquera plus rien. Il manque encore :</p>
<ul>${o.certificate.missing.map((m) => html`<li>${m}</li>`)}</ul>
<p><a href="${o.certificate.pageHref}">Voir la page du certificat</a></p>`
    : html`<p class="muted">Le certificat n’est pas proposé dans ce cours.</p>`;
  const body = html`${o.notice ? html`<div class="box notice" role="status">${o.notice}</div>` : ''}
<p class="kicker">${o.trackTitle}${o.fundName ? ` · ${o.fundName}` : ''}</p>
<h1>Mon parcours</h1>
<div class="box parcours-summary">
<p><strong>Modules terminés : ${done} sur ${all.length}.</strong></p>
<p>Temps de formation enregistré : <strong>${minutes === null ? 'pas encore disponible' : formatMinutes(minutes)}</strong> sur ${formatMinutes(o.plannedMinutes)} prévues.${o.timeHref ? html` <a href="${o.timeHref}">Votre temps de connexion</a>` : ''}</p>
${nextButton}
</div>
${o.weeks.map(
  (w, wi) => html`<section class="week" aria-labelledby="semaine-${wi + 1}">
<h2 id="semaine-${wi + 1}">${w.title}</h2>
<ol class="parcours">${w.modules.map(
    (m) => html`<li class="parcours-module" data-status="${m.status}" data-module-id="${m.id}">
<a href="${m.href}">${m.title}</a>
<span class="muted">${m.themeTitle} · environ ${m.nominalMinutes} min</span>
<span class="status status-${m.status}">${m.status === 'done' ? html`<span aria-hidden="true">✓ </span>` : ''}${STATUS_LABELS[m.status]}${m.creditedSeconds !== null && m.creditedSeconds > 0 ? ` · ${formatMinutes(Math.floor(m.creditedSeconds / 60))} enregistrées` : ''}</span>
</li>`,
  )}</ol>
</section>`,
)}
${o.extra ?? []}
<section aria-labelledby="certificat"><h2 id="certificat">Mon certificat</h2>${certificate}</section>
<div class="actions"><a href="${withToken('/catalog/profile', o.session.token)}">Voir ou corriger mon profil</a></div>`;
  return catalogPage({
    title: 'Mon parcours',
    body,
    session: o.session,
    bodyData: { 'emargement-page': 'parcours' },
  });
}
