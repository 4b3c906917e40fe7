import { html, page, raw, type SafeHtml, stylesheet } from '../http/html.js';
import type { CertificateRecord } from './repository.js';
import {
  type CertificateData,
  describeIssuanceRule,
  formatDay,
  formatDuration,
  type IssuanceRule,
  initials,
  type PublicSummary,
  parisDay,
} from './rules.js';
import type { EligibilityReport } from './service.js';

/** Server-rendered French pages of the certificates capability (iframe pages and the public check). */

const STYLE = stylesheet('certificates', new URL('./assets/certificates.css', import.meta.url));

const STATE_TEXT: Record<CertificateRecord['state'], string> = {
  valid: 'valide',
  superseded: 'remplacé',
  revoked: 'révoqué',
};

function tokenField(token: string): SafeHtml {
  return html`<input type="hidden" name="session_token" value="${token}">`;
}

/**
 * A download as a small form posting the session token (never a link carrying it: URLs end up in
 * proxy logs and browser history). The answer is an attachment, so the page stays where it is.
 */
function downloadForm(action: string, token: string, label: SafeHtml | string, fields: Record<string, string> = {}) {
  return html`<form method="post" action="${action}" class="download">${tokenField(token)}${Object.entries(fields).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`,
  )}<button type="submit" class="link">${label}</button></form>`;
}

// ---------------------------------------------------------------------------------------------------
// Learner

export function learnerPage(options: {
  head: SafeHtml;
  token: string;
  certificates: Array<{ record: CertificateRecord; data: CertificateData }>;
  report: EligibilityReport;
  notice?: string | undefined;
}): string {
  const { certificates, report, token } = options;
  const valid = certificates.find((c) => c.record.state === 'valid');
  const others = certificates.filter((c) => c !== valid);
  let main: SafeHtml;
  if (valid) {
    main = html`<div class="box">
<p><strong>Votre certificat de réalisation est prêt.</strong></p>
<p>${downloadForm(`/certificates/${valid.record.number}/pdf`, token, 'Télécharger mon certificat (PDF)')}</p>
<p class="muted">Numéro ${valid.record.number}, délivré le ${formatDay(parisDay(valid.record.issued_at))}.
Temps de formation retenu : ${formatDuration(valid.data.durations.totalSeconds)}.
Toute personne peut vérifier ce certificat à l’adresse imprimée en bas de la page, ou avec le code QR.</p>
</div>`;
  } else if (report.profileMissing) {
    main = html`<div class="box"><p>Pour obtenir votre certificat, complétez d’abord votre profil (nom, entreprise, OPCO) dans le module du cours.</p></div>`;
  } else if (others.some((c) => c.record.state === 'revoked')) {
    main = html`<div class="box"><p>Votre certificat a été révoqué. Pour en savoir plus, écrivez à l’équipe du cours.</p></div>`;
  } else if (report.eligibility?.eligible) {
    main = html`<div class="box">
<p>Vous remplissez les conditions : vous pouvez obtenir votre certificat de réalisation.</p>
<form method="post" action="/certificates/request">${tokenField(token)}<button type="submit">Obtenir mon certificat</button></form>
</div>`;
  } else {
    const missing = report.eligibility?.missing ?? [];
    main = html`<div class="box">
<p>Votre certificat sera disponible quand vous aurez terminé la formation. Il vous reste :</p>
<ul>${missing.map((m) => html`<li>${m}</li>`)}</ul>
</div>`;
  }
  return page({
    title: 'Mon certificat',
    head: html`${options.head}${STYLE}`,
    body: html`<h1>Mon certificat de réalisation</h1>
${options.notice ? html`<p class="state valid" role="status">${options.notice}</p>` : ''}
${main}
${
  others.length > 0
    ? html`<h2>Versions précédentes</h2><ul>${others.map(
        (c) => html`<li>${c.record.number} (version ${c.record.version}) : ${STATE_TEXT[c.record.state]}</li>`,
      )}</ul>`
    : ''
}`,
  });
}

// ---------------------------------------------------------------------------------------------------
// Course team

export function courseTeamPage(options: {
  head: SafeHtml;
  token: string;
  courseTitle: string;
  rule: IssuanceRule;
  ruleStored: boolean;
  certificates: Array<{ record: CertificateRecord; data: CertificateData }>;
  learners: Array<{ id: string; label: string }>;
  funds: string[];
  notice?: string | undefined;
}): string {
  const { rule, token } = options;
  const radio = (value: IssuanceRule['modulesRequired'], label: string) =>
    html`<label class="plain"><input type="radio" name="modulesRequired" value="${value}" ${rule.modulesRequired === value ? raw('checked') : ''}> ${label}</label>`;
  const rows = options.certificates.map(
    ({ record, data }) => html`<tr>
<td>${downloadForm(`/certificates/${record.number}/pdf`, token, record.number)}<span class="muted">version ${record.version}</span></td>
<td>${data.learner.givenName} ${data.learner.familyName}<br><span class="muted">${data.company.name ?? ''}</span></td>
<td>${STATE_TEXT[record.state]}</td>
<td>${formatDay(parisDay(record.issued_at))}</td>
<td>${formatDuration(data.durations.totalSeconds)}</td>
<td class="actions">${
      record.state === 'valid'
        ? html`<form method="post" action="/certificates/manage/${record.number}/correct">${tokenField(token)}
<label for="c-${record.number}" class="sr-only">Motif de la correction</label>
<input id="c-${record.number}" name="reason" required maxlength="500" placeholder="Motif de la correction">
<button type="submit" class="secondary">Nouvelle version</button></form>
<form method="post" action="/certificates/manage/${record.number}/revoke">${tokenField(token)}
<label for="r-${record.number}" class="sr-only">Motif de la révocation</label>
<input id="r-${record.number}" name="reason" required maxlength="500" placeholder="Motif de la révocation">
<button type="submit" class="secondary">Révoquer</button></form>`
        : ''
    }</td>
</tr>`,
  );
  return page({
    title: 'Certificats du cours',
    head: html`${options.head}${STYLE}`,
    body: html`<h1>Certificats — ${options.courseTitle}</h1>
${options.notice ? html`<p class="state valid" role="status">${options.notice}</p>` : ''}
<h2>Règle de délivrance</h2>
<p id="regle-en-clair"><strong>En clair :</strong> ${describeIssuanceRule(rule)}</p>
<form method="post" action="/certificates/manage/rule" class="box">${tokenField(token)}
<fieldset><legend>Modules à terminer</legend>
${radio('sector', 'tous les modules du secteur de l’apprenant')}
${radio('all', 'tous les modules (tronc commun et secteur)')}
${radio('none', 'aucun (seulement le temps minimum)')}
</fieldset>
<label for="min">Temps minimum de formation, en minutes (laisser vide : aucun)</label>
<input id="min" name="minCreditedMinutes" type="number" min="0" max="100000" value="${rule.minCreditedMinutes ?? ''}">
<label for="planned">Durée prévue, en minutes, imprimée seulement quand le parcours de l’apprenant n’en donne pas (sinon : somme des durées de ses modules)</label>
<input id="planned" name="plannedMinutes" type="number" min="1" max="100000" required value="${rule.plannedMinutes}">
<label for="start">Début de la session (facultatif)</label>
<input id="start" name="sessionStart" type="date" value="${rule.sessionStart ?? ''}">
<label for="end">Fin de la session (facultatif)</label>
<input id="end" name="sessionEnd" type="date" value="${rule.sessionEnd ?? ''}">
<label class="plain"><input type="checkbox" name="autoIssue" value="on" ${rule.autoIssue ? raw('checked') : ''}> Délivrer automatiquement dès que la règle est remplie</label>
<p><button type="submit">Enregistrer la règle</button> ${options.ruleStored ? '' : html`<span class="muted">(règle par défaut, pas encore enregistrée)</span>`}</p>
</form>
<h2>Délivrer un certificat</h2>
<form method="post" action="/certificates/manage/issue" class="box">${tokenField(token)}
<label for="learner">Apprenant</label>
<select id="learner" name="learnerId" required>${options.learners.map((l) => html`<option value="${l.id}">${l.label}</option>`)}</select>
<label for="reason">Motif (conservé avec le certificat)</label>
<input id="reason" name="reason" required maxlength="500">
<p><button type="submit">Délivrer</button></p>
</form>
<h2>Certificats délivrés</h2>
<div class="downloads">${downloadForm('/certificates/archive.zip', token, 'Télécharger tous les certificats valides (ZIP)')}
${options.funds.map((f) => downloadForm('/certificates/archive.zip', token, html`Ceux de ${f} (ZIP)`, { fund: f }))}</div>
<table><thead><tr><th>Numéro</th><th>Apprenant</th><th>État</th><th>Délivré le</th><th>Temps</th><th>Actions</th></tr></thead>
<tbody>${rows.length > 0 ? rows : html`<tr><td colspan="6">Aucun certificat pour l’instant.</td></tr>`}</tbody></table>`,
  });
}

// ---------------------------------------------------------------------------------------------------
// Public verification

export function verifyFormPage(message?: string): string {
  return page({
    title: 'Vérifier un certificat',
    head: STYLE,
    body: html`<h1>Vérifier un certificat de réalisation</h1>
${message ? html`<p class="state broken" role="alert">${message}</p>` : ''}
<form method="get" action="/verify">
<label for="numero">Numéro du certificat (exemple : EMG-2026-000123-K)</label>
<input id="numero" name="numero" required autocomplete="off">
<p><button type="submit">Vérifier</button></p>
</form>`,
  });
}

export function verifyPage(result: { summary: PublicSummary; integrity: Record<string, boolean> }): string {
  const s = result.summary;
  const intact = Object.values(result.integrity).every(Boolean);
  const stateBox = !intact
    ? html`<p class="state broken" role="alert">Ce certificat ne peut pas être confirmé : ses données enregistrées ne correspondent plus à sa signature. Contactez l’organisme de formation.</p>`
    : s.state === 'valid'
      ? html`<p class="state valid" role="status">Certificat valide : il a bien été délivré par ${s.provider}.</p>`
      : s.state === 'superseded'
        ? html`<p class="state superseded" role="status">Ce certificat a été remplacé par une version plus récente${
            s.supersededBy ? html` : <a href="/verify/${s.supersededBy}">${s.supersededBy}</a>` : ''
          }. Il n’est plus valable.</p>`
        : html`<p class="state revoked" role="status">Ce certificat a été révoqué${
            s.revokedAt ? html` le ${formatDay(parisDay(new Date(s.revokedAt)))}` : ''
          }. Il n’est plus valable.</p>`;
  const dates = s.startDay && s.endDay ? `du ${formatDay(s.startDay)} au ${formatDay(s.endDay)}` : '—';
  return page({
    title: `Certificat ${s.number}`,
    head: STYLE,
    body: html`<h1>Vérification du certificat ${s.number}</h1>
${stateBox}
${s.learnerInitials === null ? html`<p class="muted">Les données personnelles du stagiaire ont été effacées à sa demande. Le certificat reste vérifiable : numéro, état et chiffres.</p>` : ''}
<dl class="facts">
<dt>Numéro</dt><dd>${s.number} (version ${s.version})</dd>
${s.supersedes ? html`<dt>Remplace</dt><dd><a href="/verify/${s.supersedes}">${s.supersedes}</a></dd>` : ''}
${s.learnerInitials === null ? '' : html`<dt>Stagiaire</dt><dd>${s.learnerInitials}</dd>`}
<dt>Formation</dt><dd>${s.course}</dd>
<dt>Organisme</dt><dd>${s.provider}</dd>
<dt>Dates</dt><dd>${dates}</dd>
<dt>Durée totale</dt><dd>${s.totalTime}</dd>
<dt>Modules terminés</dt><dd>${s.modulesCompleted} / ${s.modulesPlanned}</dd>
<dt>Délivré le</dt><dd>${formatDay(s.issuedDay)}</dd>
<dt>Calcul du temps</dt><dd>algorithme ${s.algorithm}</dd>
<dt>Empreinte SHA-256 du PDF</dt><dd><code class="hash" id="expected">${s.pdfSha256}</code></dd>
<dt>Signature</dt><dd>Ed25519, clé <a href="/verify/keys"><code class="hash">${s.signature.kid.slice(0, 16)}…</code></a></dd>
</dl>
<h2>Vérifier un fichier PDF</h2>
<p>Choisissez le fichier reçu : son empreinte est calculée sur votre appareil (le fichier n’est pas envoyé) et comparée à celle ci-dessus.</p>
<label for="pdf">Fichier PDF du certificat</label>
<input type="file" id="pdf" accept="application/pdf">
<p id="pdf-result" role="status" aria-live="polite"></p>
<script src="/verify/assets/pdf-check.js" defer></script>
<p class="muted"><a href="/verify">Vérifier un autre certificat</a></p>`,
  });
}

/** For the list of a course: the name as printed, or initials if data is missing. */
export function learnerLabel(data: CertificateData): string {
  return `${data.learner.givenName} ${data.learner.familyName}`.trim() || initials(null, null);
}
