import { html, page, raw, type SafeHtml, stylesheet } from '../http/html.js';
import type { RegistrationRow, SessionRow } from './repository.js';
import {
  CODE_MARGIN_MINUTES,
  dayFr,
  durationFr,
  MODE_LABELS,
  NEARLY_DONE_MAX_LEFT,
  type ScheduleForm,
  timeFr,
} from './rules.js';

/** Pages of the closing group session inside the LMS iframe (French, plain words, the session token carried). */

const STYLE = stylesheet('regroupement', new URL('./assets/regroupement.css', import.meta.url));

export interface PageSession {
  token: string;
  head: SafeHtml;
}

function regroupementPage(title: string, session: PageSession, body: SafeHtml): string {
  return page({ title, head: html`${session.head}${STYLE}`, body });
}

const withToken = (path: string, token: string) =>
  `${path}${path.includes('?') ? '&' : '?'}session_token=${encodeURIComponent(token)}`;

const when = (s: Pick<SessionRow, 'startsAt' | 'durationMinutes'>) =>
  `le ${dayFr(s.startsAt)} à ${timeFr(s.startsAt)} (${durationFr(s.durationMinutes)})`;

function where(s: Pick<SessionRow, 'mode' | 'location'>, linkable: boolean): SafeHtml {
  if (s.mode === 'online') {
    return linkable
      ? html`En ligne : <a href="${s.location}" target="_blank" rel="noopener">rejoindre la classe virtuelle</a>`
      : html`En ligne (le lien s’affiche pour les inscrits)`;
  }
  return html`Adresse : ${s.location}`;
}

// ─── Learner: the section of « Mon parcours » and the page ─────────────────────────────────────────

export interface LearnerSessionView {
  session: SessionRow;
  registered: boolean;
  attendedMinutes: number | null;
}

export interface LearnerSection {
  token: string;
  mayJoin: boolean;
  left: number;
  sessions: LearnerSessionView[];
  error?: string | undefined;
  notice?: string | undefined;
}

export function learnerSection(o: LearnerSection): SafeHtml {
  const attended = o.sessions.filter((s) => s.attendedMinutes !== null);
  const mine = o.sessions.find((s) => s.registered && !s.session.cancelledAt && s.attendedMinutes === null);
  const open = o.sessions.filter((s) => !s.session.cancelledAt && !s.registered && s.session.startsAt > new Date());
  const form = html`<form method="post" action="/regroupement/presence">
<input type="hidden" name="session_token" value="${o.token}">
<label for="code-presence">Vous êtes au regroupement ? Saisissez le code donné pendant la séance</label>
<input id="code-presence" name="code" autocomplete="off" inputmode="text" maxlength="12" required>
<p><button type="submit">Confirmer ma présence</button></p>
</form>`;
  return html`<section aria-labelledby="regroupement" class="regroupement">
<h2 id="regroupement">Le regroupement de fin de formation</h2>
${o.notice ? html`<div class="box notice" role="status"><p>${o.notice}</p></div>` : ''}
${o.error ? html`<div class="box error" role="alert"><p>${o.error}</p></div>` : ''}
${attended.map(
  (a) =>
    html`<p>Présence enregistrée au regroupement ${when(a.session)} : <strong>${durationFr(a.attendedMinutes as number)}</strong>. Elle figure sur votre certificat.</p>`,
)}
${o.sessions
  .filter((s) => s.registered && s.session.cancelledAt && s.attendedMinutes === null)
  .map(
    (s) =>
      html`<p class="box error">La séance du ${dayFr(s.session.startsAt)} à laquelle vous étiez inscrit(e) a été annulée${o.mayJoin ? ' : choisissez-en une autre' : ''}.</p>`,
  )}
${
  !o.mayJoin && attended.length === 0
    ? html`<p>Une séance collective clôture la formation. Vous pourrez vous y inscrire quand il ne vous restera plus que ${NEARLY_DONE_MAX_LEFT} modules à terminer (il vous en reste ${o.left}).</p>`
    : ''
}
${
  mine
    ? html`<div class="session" data-session-id="${mine.session.id}"><h3>Vous êtes inscrit(e) : ${MODE_LABELS[mine.session.mode]}</h3>
<p>${when(mine.session)}</p><p>${where(mine.session, true)}</p>
<form method="post" action="/regroupement/desinscription" class="inline">
<input type="hidden" name="session_token" value="${o.token}"><input type="hidden" name="session_id" value="${mine.session.id}">
<button type="submit" class="secondary">Annuler mon inscription</button></form></div>`
    : ''
}
${
  o.mayJoin && !mine && attended.length === 0
    ? open.length === 0
      ? html`<p>Aucune séance n’est prévue pour le moment. Revenez bientôt : l’équipe du cours les annonce ici.</p>`
      : html`<p>Choisissez une séance :</p>${open.map(
          (s) => html`<div class="session" data-session-id="${s.session.id}"><h3>${MODE_LABELS[s.session.mode]}</h3>
<p>${when(s.session)}</p><p>${where(s.session, false)}</p>
<p class="muted">${s.session.registered >= s.session.capacity ? 'Complet' : `${s.session.capacity - s.session.registered} place(s) libre(s)`}</p>
<form method="post" action="/regroupement/inscription" class="inline">
<input type="hidden" name="session_token" value="${o.token}"><input type="hidden" name="session_id" value="${s.session.id}">
<button type="submit">M’inscrire à cette séance</button></form></div>`,
        )}`
    : ''
}
${o.mayJoin || mine || attended.length > 0 ? form : ''}
</section>`;
}

export function renderLearnerPage(o: LearnerSection & { session: PageSession }): string {
  const body = html`<p><a href="${withToken('/catalog/parcours', o.token)}">← Mon parcours</a></p>
${learnerSection(o)}`;
  return regroupementPage('Regroupement', o.session, body);
}

// ─── Course team ────────────────────────────────────────────────────────────────────────────────────

export interface CourseTeamSession {
  session: SessionRow;
  fundName: string;
  registrations: RegistrationRow[];
  /** Every change, oldest first: when, who (a name when known) and what. */
  history: { at: Date; who: string; action: string }[];
}

const ACTION_LABELS: Record<string, string> = {
  schedule: 'séance programmée',
  cancel: 'séance annulée',
  register: 'inscription',
  unregister: 'inscription annulée',
  attendance_code: 'présence confirmée par code',
  attendance_list: 'présences notées par l’équipe',
};

export function renderCourseTeamPage(o: {
  session: PageSession;
  courseTitle: string;
  funds: { slug: string; name: string }[];
  sessions: CourseTeamSession[];
  form?: ScheduleForm;
  errors?: Record<string, string>;
  notice?: string;
  error?: string;
}): string {
  const t = o.session.token;
  const f = o.form ?? {};
  const err = (k: string) => (o.errors?.[k] ? html`<p class="field-error" id="err-${k}">${o.errors[k]}</p>` : '');
  const scheduleForm =
    o.funds.length === 0
      ? html`<p>Aucun fonds de formation de ce cours ne prévoit de regroupement (réglage <code>regroupement</code> de <code>funds.json</code>).</p>`
      : html`<form method="post" action="/regroupement/equipe/seances" novalidate>
<input type="hidden" name="session_token" value="${t}">
<label for="fund">Fonds de formation</label>${err('fund')}
<select id="fund" name="fund">${o.funds.map((x) => html`<option value="${x.slug}"${f.fund === x.slug ? raw(' selected') : ''}>${x.name}</option>`)}</select>
<label for="day">Date</label>${err('day')}<input id="day" name="day" type="date" value="${f.day ?? ''}">
<label for="time">Heure de début (heure de Paris)</label><input id="time" name="time" type="time" value="${f.time ?? ''}">
<label for="duration">Durée en minutes</label>${err('duration')}<input id="duration" name="duration" inputmode="numeric" value="${f.duration ?? '90'}">
<fieldset><legend>Modalité</legend>${err('mode')}
<label class="tick"><input type="radio" name="mode" value="online"${f.mode !== 'onsite' ? raw(' checked') : ''}> Classe virtuelle (lien en ligne)</label>
<label class="tick"><input type="radio" name="mode" value="onsite"${f.mode === 'onsite' ? raw(' checked') : ''}> Dans les locaux du fonds (adresse)</label></fieldset>
<label for="location">Lien de la classe virtuelle, ou adresse des locaux</label>${err('location')}<input id="location" name="location" value="${f.location ?? ''}">
<label for="capacity">Nombre de places</label>${err('capacity')}<input id="capacity" name="capacity" inputmode="numeric" value="${f.capacity ?? '20'}">
<p><button type="submit">Programmer la séance</button></p></form>`;
  const sessionBlock = (c: CourseTeamSession) => {
    const s = c.session;
    return html`<div class="session" data-session-id="${s.id}">
<h3>${MODE_LABELS[s.mode]} · ${c.fundName}${s.cancelledAt ? ' · annulée' : ''}</h3>
<p>${when(s)} · ${where(s, true)}</p>
<p>${s.registered} inscrit(s) sur ${s.capacity} places · ${s.attended} présent(s)</p>
<p>Code de présence à donner pendant la séance : <span class="code">${s.attendanceCode}</span>
<span class="muted">(valable de ${CODE_MARGIN_MINUTES} min avant le début à ${CODE_MARGIN_MINUTES} min après la fin)</span></p>
${
  c.registrations.length === 0
    ? html`<p class="muted">Personne n’est encore inscrit.</p>`
    : html`<form method="post" action="/regroupement/equipe/seances/${s.id}/presences">
<input type="hidden" name="session_token" value="${t}">
<fieldset><legend>Cochez les présents</legend>
${c.registrations.map(
  (r) =>
    html`<label class="tick"><input type="checkbox" name="present" value="${r.learnerId}"${r.attendedMinutes !== null ? raw(' checked') : ''}> ${r.givenName ?? ''} ${r.familyName ?? r.learnerId}${r.companyName ? ` (${r.companyName})` : ''}${r.attendanceSource === 'code' ? ' · présence confirmée par code' : ''}</label>`,
)}
</fieldset><p><button type="submit">Enregistrer les présences</button></p></form>`
}
<details><summary>Historique des modifications</summary><ul>${c.history.map(
      (h) => html`<li>${dayFr(h.at)} à ${timeFr(h.at)} · ${h.who} · ${ACTION_LABELS[h.action] ?? h.action}</li>`,
    )}</ul></details>
${
  s.cancelledAt
    ? ''
    : html`<form method="post" action="/regroupement/equipe/seances/${s.id}/annulation"><input type="hidden" name="session_token" value="${t}"><button type="submit" class="secondary">Annuler cette séance</button></form>`
}
</div>`;
  };
  const body = html`<p><a href="${withToken('/lti-services/course-team', t)}">← Suivi des apprenants</a></p>
<h1>Regroupement de fin de formation</h1>
<p class="kicker">${o.courseTitle}</p>
${o.notice ? html`<div class="box notice" role="status"><p>${o.notice}</p></div>` : ''}
${o.error ? html`<div class="box error" role="alert"><p>${o.error}</p></div>` : ''}
<p>Les apprenants qui ont terminé leur parcours, ou à qui il reste au plus ${NEARLY_DONE_MAX_LEFT} modules, voient les séances de leur fonds dans « Mon parcours » et s’y inscrivent. Notez la présence en cochant la liste, ou donnez le code pendant la séance : chacun le saisit dans « Mon parcours ». La durée de la séance figure alors sur son certificat.</p>
<h2>Séances programmées</h2>
${o.sessions.length === 0 ? html`<p>Aucune séance pour ce cours.</p>` : o.sessions.map(sessionBlock)}
<h2>Programmer une séance</h2>
${scheduleForm}`;
  return regroupementPage('Regroupement', o.session, body);
}
