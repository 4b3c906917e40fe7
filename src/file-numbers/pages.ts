import type { FastifyRequest } from 'fastify';
import { html, type SafeHtml } from '../http/html.js';
import { csrfField, formatParis, type Principal, portalPage } from '../portal/index.js';
import type { CompanyRow, CourseChoice, FundChoice } from './repository.js';
import { FILE_NUMBER_MAX_LENGTH, formatSiret, type ImportProblem } from './rules.js';

export interface HistoryView {
  company_siret: string;
  previous_number: string | null;
  file_number: string | null;
  set_by_username: string;
  at: Date;
}

export interface FileNumbersPageInput {
  request: FastifyRequest;
  principal: Principal;
  funds: FundChoice[];
  fund: string | null;
  courses: CourseChoice[];
  courseId: string | null;
  companies: CompanyRow[];
  history: HistoryView[];
  notice?: string;
  /** A refused change: the values typed, kept, and the French reason. */
  typed?: { siret: string; fileNumber: string; error: string; field: 'siret' | 'fileNumber' | null };
  importText?: string;
  importProblems?: ImportProblem[];
}

export function courseName(c: CourseChoice): string {
  return c.title ?? c.label ?? c.contextId;
}

function hiddenKey(input: FileNumbersPageInput): SafeHtml {
  return html`<input type="hidden" name="fund" value="${input.fund ?? ''}"><input type="hidden" name="courseId" value="${input.courseId ?? ''}">`;
}

/** The page where fund staff (their fund) and operators (any fund) keep the OPCO file numbers. */
export function fileNumbersPage(input: FileNumbersPageInput): string {
  const { request, principal } = input;
  const selected = (a: string | null, b: string) => (a === b ? html` selected` : '');
  const typed = input.typed;
  const listed = new Set(input.companies.map((c) => c.siret));
  const typedOnRow = typed && listed.has(typed.siret) ? typed.siret : null;
  const chooser = html`<form method="get" action="/portal/dossiers" class="filters">
${
  principal.role === 'operator'
    ? html`<div><label for="fund">Fonds</label><select id="fund" name="fund">
<option value="">Choisir un fonds</option>
${input.funds.map((f) => html`<option value="${f.slug}"${selected(input.fund, f.slug)}>${f.name}</option>`)}
</select></div>`
    : ''
}
${
  input.fund
    ? html`<div><label for="courseId">Session du cours</label><select id="courseId" name="courseId">
<option value="">Choisir une session</option>
${input.courses.map((c) => html`<option value="${c.id}"${selected(input.courseId, c.id)}>${courseName(c)}</option>`)}
</select></div>`
    : ''
}
<div><button type="submit">Afficher</button></div>
</form>`;

  const rows = input.companies.map((c) => {
    const isTyped = typedOnRow === c.siret;
    const value = isTyped ? (typed?.fileNumber ?? '') : (c.fileNumber ?? '');
    const id = `numero-${c.siret}`;
    return html`<tr>
<td>${
      c.names.length === 0
        ? html`<span class="muted">aucun apprenant pour l’instant</span>`
        : html`${c.conflict ? html`<p class="alert"><strong>Noms différents pour ce SIRET</strong> : le numéro ne s’applique qu’aux apprenants dont vous confirmez le nom.</p>` : ''}<ul class="names">${c.names.map(
            (n) =>
              html`<li>${n.name} <span class="muted">(${n.learners} apprenant${n.learners > 1 ? 's' : ''})</span>${
                n.confirmed
                  ? html` <span class="muted">— confirmé</span>`
                  : c.conflict
                    ? html`<form method="post" action="/portal/dossiers" class="inline">${csrfField(request, principal)}${hiddenKey(input)}
<input type="hidden" name="siret" value="${c.siret}"><input type="hidden" name="nom" value="${n.name}">
<button type="submit" name="action" value="confirmer-nom" class="secondary">Confirmer ce nom</button></form>`
                    : ''
              }</li>`,
          )}</ul>`
    }</td>
<td>${formatSiret(c.siret)}</td>
<td class="num">${c.learners}</td>
<td class="num">${c.certificates}</td>
<td><form method="post" action="/portal/dossiers" class="row-actions">${csrfField(request, principal)}${hiddenKey(input)}
<input type="hidden" name="siret" value="${c.siret}">
<label class="sr-only" for="${id}">N° de dossier de ${c.name ?? formatSiret(c.siret)}</label>
<input id="${id}" name="numero" value="${value}" maxlength="${FILE_NUMBER_MAX_LENGTH * 2}"${isTyped ? html` aria-invalid="true" aria-describedby="${id}-erreur"` : ''}>
<button type="submit" name="action" value="enregistrer">Enregistrer</button>
${c.fileNumber ? html`<button type="submit" name="action" value="retirer" class="secondary">Retirer</button>` : ''}
${isTyped ? html`<p id="${id}-erreur" class="alert" role="alert">${typed?.error}</p>` : ''}
</form></td>
<td>${c.setBy ? html`${c.setBy}<br><span class="muted">${formatParis(c.setAt)}</span>` : ''}</td>
</tr>`;
  });

  const other = typed && !typedOnRow ? typed : undefined;
  const course = input.courses.find((c) => c.id === input.courseId);
  const body = html`<h1>Numéros de dossier OPCO</h1>
<p>Le numéro de dossier de prise en charge est attribué par l’OPCO quand il accepte la demande d’une entreprise.
Il est imprimé sur les certificats et dans la colonne « N° de dossier OPCO » de l’export de synthèse.
Quand un numéro est saisi ou modifié après la délivrance d’un certificat, une nouvelle version du certificat
remplace l’ancienne.</p>
${chooser}
${input.notice ? html`<div class="notice" role="status">${input.notice}</div>` : ''}
${
  input.fund && input.courseId && course
    ? html`<h2>${courseName(course)}</h2>
<div class="table-wrap"><table>
<caption class="sr-only">Entreprises et numéros de dossier</caption>
<thead><tr><th scope="col">Entreprise</th><th scope="col">SIRET</th><th scope="col">Apprenants</th><th scope="col">Certificats valides</th><th scope="col">N° de dossier</th><th scope="col">Modifié par</th></tr></thead>
<tbody>${rows.length > 0 ? rows : html`<tr><td colspan="6">Aucun apprenant de ce fonds dans cette session pour l’instant.</td></tr>`}</tbody>
</table></div>
<h2>Autre entreprise</h2>
<form method="post" action="/portal/dossiers">${csrfField(request, principal)}${hiddenKey(input)}
${other ? html`<p class="alert" role="alert" id="autre-erreur">${other.error}</p>` : ''}
<div class="filters">
<div><label for="siret">SIRET de l’entreprise</label><input id="siret" name="siret" inputmode="numeric" maxlength="40" required value="${other?.siret ?? ''}"${other?.field === 'siret' ? html` aria-invalid="true" aria-describedby="autre-erreur"` : ''}></div>
<div><label for="numero">N° de dossier</label><input id="numero" name="numero" maxlength="${FILE_NUMBER_MAX_LENGTH * 2}" required value="${other?.fileNumber ?? ''}"${other?.field === 'fileNumber' ? html` aria-invalid="true" aria-describedby="autre-erreur"` : ''}></div>
</div>
<button type="submit" name="action" value="enregistrer">Enregistrer</button>
</form>
<h2>Importer un fichier</h2>
<form method="post" action="/portal/dossiers/import" enctype="multipart/form-data">${csrfField(request, principal)}${hiddenKey(input)}
<p>Une entreprise par ligne : <code>SIRET;numéro de dossier</code>. Choisissez le fichier CSV enregistré
depuis votre tableur, ou collez les lignes. Rien n’est enregistré si une ligne est erronée.</p>
${
  input.importProblems && input.importProblems.length > 0
    ? html`<div class="alert" role="alert" id="import-erreurs"><p>Le fichier n’a pas été importé :</p><ul>
${input.importProblems.map((p) => html`<li>${p.line > 0 ? html`Ligne ${p.line} : ` : ''}${p.message}</li>`)}</ul></div>`
    : ''
}
<label for="fichier">Fichier CSV</label>
<input type="file" id="fichier" name="fichier" accept=".csv,.txt,text/csv,text/plain">
<label for="csv">ou lignes à coller</label>
<textarea id="csv" name="csv" rows="6" cols="60">${input.importText ?? ''}</textarea>
<p><button type="submit">Importer</button></p>
</form>
${
  input.history.length > 0
    ? html`<h2>Dernières modifications</h2><ul>
${input.history.map(
  (h) =>
    html`<li>${formatParis(h.at)} — ${h.set_by_username} — ${formatSiret(h.company_siret)} : ${h.previous_number ?? '(aucun)'} → ${h.file_number ?? '(retiré)'}</li>`,
)}</ul>`
    : ''
}`
    : ''
}`;
  return portalPage({ request, principal, title: 'Numéros de dossier OPCO', current: '/portal/dossiers', body });
}
