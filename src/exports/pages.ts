import type { FastifyRequest } from 'fastify';
import { html, type SafeHtml, stylesheet } from '../http/html.js';
import { type Principal, portalPage } from '../portal/index.js';
import { cohortForecastChart, forecastCurveChart, funnelChart, groupedBarChart, STAGE_COLOURS } from './charts.js';
import type { ExportFilter } from './repository.js';
import {
  FUNNEL_LABELS,
  FUNNEL_STAGES,
  type FunnelCounts,
  formatCount,
  formatDayFr,
  formatPercent,
  STATUS_LABELS,
  STATUSES,
} from './rules.js';
import type { ForecastGroup, ForecastView, FunnelView } from './service.js';

export interface FilterChoices {
  funds: Array<{ slug: string; name: string; historical_name: string | null }>;
  branches: Array<{ idcc: string; name: string; fund_slug: string }>;
  courses: Array<{ id: string; title: string | null; label: string | null; context_id: string }>;
}

const CHART_STYLE = stylesheet('exports', new URL('./assets/exports.css', import.meta.url), { base: false });

function courseName(c: FilterChoices['courses'][number]): string {
  return [c.title, c.label].filter(Boolean).join(' — ') || c.context_id;
}

function filterFields(
  principal: Principal,
  choices: FilterChoices,
  filter: ExportFilter,
  withStatus: boolean,
): SafeHtml {
  const selected = (a: string | null | undefined, b: string) => (a === b ? html` selected` : '');
  const branches = choices.branches.filter((b) => !filter.fund || b.fund_slug === filter.fund);
  return html`<div class="filters">
${
  principal.role === 'operator'
    ? html`<div><label for="fund">Fonds</label><select id="fund" name="fund">
<option value="">Tous les fonds</option>
${choices.funds.map((f) => html`<option value="${f.slug}"${selected(filter.fund, f.slug)}>${f.name}</option>`)}
</select></div>`
    : ''
}
<div><label for="courseId">Session du cours</label><select id="courseId" name="courseId">
<option value="">Toutes les sessions</option>
${choices.courses.map((c) => html`<option value="${c.id}"${selected(filter.courseId, c.id)}>${courseName(c)}</option>`)}
</select></div>
<div><label for="branch">Branche (IDCC)</label><select id="branch" name="branch">
<option value="">Toutes les branches</option>
${branches.map((b) => html`<option value="${b.idcc}"${selected(filter.branch, b.idcc)}>${b.idcc} — ${b.name}</option>`)}
</select></div>
<div><label for="from">Du</label><input type="date" id="from" name="from" value="${filter.from ?? ''}"></div>
<div><label for="to">Au</label><input type="date" id="to" name="to" value="${filter.to ?? ''}"></div>
${
  withStatus
    ? html`<div><label for="status">Statut de l’apprenant</label><select id="status" name="status">
<option value="">Tous les statuts</option>
${STATUSES.map((s) => html`<option value="${s}"${selected(filter.status, s)}>${STATUS_LABELS[s]}</option>`)}
</select></div>`
    : ''
}
</div>`;
}

function stageCell(counts: FunnelCounts, stage: (typeof FUNNEL_STAGES)[number], commonKnown: boolean): SafeHtml {
  if (stage === 'commonDone' && !commonKnown) return html`<td class="num">non mesuré</td>`;
  return html`<td class="num">${formatCount(counts[stage])}${
    stage === 'registered' ? '' : html` <span class="muted">(${formatPercent(counts[stage], counts.registered)})</span>`
  }</td>`;
}

function figuresTable(
  caption: string,
  firstHeader: string,
  rows: Array<{ label: string; counts: FunnelCounts }>,
  commonKnown: boolean,
): SafeHtml {
  return html`<div class="table-wrap"><table class="figures">
<caption>${caption}</caption>
<thead><tr><th scope="col">${firstHeader}</th>${FUNNEL_STAGES.map((s) => html`<th scope="col" class="num">${FUNNEL_LABELS[s]}</th>`)}</tr></thead>
<tbody>
${rows.map((r) => html`<tr><th scope="row">${r.label}</th>${FUNNEL_STAGES.map((s) => stageCell(r.counts, s, commonKnown))}</tr>`)}
</tbody></table></div>`;
}

function describeScope(principal: Principal, choices: FilterChoices, filter: ExportFilter): string {
  const fund = filter.fund
    ? (choices.funds.find((f) => f.slug === filter.fund)?.name ?? filter.fund)
    : 'tous les fonds';
  const parts = [principal.role === 'operator' ? fund : `votre fonds (${fund})`];
  if (filter.branch) parts.push(`branche ${filter.branch}`);
  if (filter.courseId) {
    const c = choices.courses.find((x) => x.id === filter.courseId);
    parts.push(`session ${c ? courseName(c) : filter.courseId}`);
  }
  if (filter.from || filter.to) {
    parts.push(
      `inscrits ${filter.from ? `du ${formatDayFr(filter.from)}` : ''}${filter.from && filter.to ? ' ' : ''}${filter.to ? `au ${formatDayFr(filter.to)}` : ''}`,
    );
  }
  return parts.join(', ');
}

export function funnelPage(options: {
  request: FastifyRequest;
  principal: Principal;
  filter: ExportFilter;
  choices: FilterChoices;
  view: FunnelView;
  forecast: ForecastView;
}): string {
  const { request, principal, filter, choices, view, forecast } = options;
  const fundName = principal.fundSlug ? choices.funds.find((f) => f.slug === principal.fundSlug)?.name : undefined;
  const { total, commonKnown } = view;
  const stageRows = FUNNEL_STAGES.filter((s) => s !== 'commonDone' || commonKnown);
  const weekLabel = (monday: string) => `Semaine du ${formatDayFr(monday)}`;
  const seriesOf = (rows: Array<{ counts: FunnelCounts }>) => [
    {
      name: FUNNEL_LABELS.registered,
      short: 'inscrits',
      colour: STAGE_COLOURS.registered,
      values: rows.map((r) => r.counts.registered),
    },
    {
      name: FUNNEL_LABELS.sectorDone,
      short: 'tronc sectoriel',
      colour: STAGE_COLOURS.sectorDone,
      values: rows.map((r) => r.counts.sectorDone),
    },
    {
      name: FUNNEL_LABELS.certified,
      short: 'attestations',
      colour: STAGE_COLOURS.certified,
      values: rows.map((r) => r.counts.certified),
    },
  ];
  const showFunds = principal.role === 'operator' && !filter.fund;
  return portalPage({
    request,
    principal,
    title: 'Entonnoir : combien iront jusqu’au bout ?',
    current: '/portal/entonnoir',
    ...(fundName ? { fundName } : {}),
    head: CHART_STYLE,
    body: html`<h1>Combien iront jusqu’au bout ?</h1>
<p>De l’inscription à l’attestation, étape par étape : ${describeScope(principal, choices, filter)}.</p>
<form method="get" action="/portal/entonnoir" class="box" aria-label="Filtres de l’entonnoir">
${filterFields(principal, choices, filter, false)}
<div class="filters"><div><label for="by">Prévision au</label><input type="date" id="by" name="by" value="${forecast.by}" aria-describedby="by-help">
<p class="muted" id="by-help">Date pour laquelle on estime combien auront leur attestation.</p></div></div>
<p><button type="submit">Afficher</button> <a href="/portal/entonnoir">Tout effacer</a></p>
</form>

<section aria-labelledby="ensemble">
<h2 id="ensemble">Vue d’ensemble</h2>
${
  total.registered === 0
    ? html`<p>Aucun apprenant inscrit pour ces critères.</p>`
    : funnelChart({ id: 'entonnoir', title: 'Entonnoir, de l’inscription à l’attestation', counts: total, commonKnown })
}
<div class="table-wrap"><table class="figures" id="table-entonnoir">
<caption>Chiffres de l’entonnoir</caption>
<thead><tr><th scope="col">Étape</th><th scope="col" class="num">Apprenants</th><th scope="col" class="num">Part des inscrits</th><th scope="col" class="num">Part de l’étape précédente</th></tr></thead>
<tbody>
${FUNNEL_STAGES.map((s) => {
  if (s === 'commonDone' && !commonKnown) {
    return html`<tr><th scope="row">${FUNNEL_LABELS[s]}</th><td class="num" colspan="3">non mesuré</td></tr>`;
  }
  const previous = stageRows[stageRows.indexOf(s) - 1];
  return html`<tr><th scope="row">${FUNNEL_LABELS[s]}</th><td class="num">${formatCount(total[s])}</td>
<td class="num">${formatPercent(total[s], total.registered)}</td>
<td class="num">${previous ? formatPercent(total[s], total[previous]) : '—'}</td></tr>`;
})}
</tbody></table></div>
<p class="funnel-note">Les étapes s’emboîtent : chaque étape ne compte que les apprenants qui ont aussi franchi toutes les étapes précédentes.
« Ont ouvert un module » : au moins un module ouvert, avec du temps de connexion compté (remplir le profil ne suffit pas).
« Tronc commun terminé » et « tronc sectoriel terminé » : tous les modules de ce tronc terminés. « Attestation délivrée » : une attestation valable.</p>
${
  view.outOfOrder > 0
    ? html`<p class="funnel-note" id="hors-ordre"><strong>${formatCount(view.outOfOrder)} ${view.outOfOrder > 1 ? 'apprenants ont' : 'apprenant a'} franchi une étape dans le désordre</strong>
(par exemple le tronc sectoriel terminé avant le tronc commun, ou une attestation sans tous les modules) :
${view.outOfOrder > 1 ? 'ils sont comptés' : 'il est compté'} à la dernière étape atteinte dans l’ordre.</p>`
    : ''
}
</section>

${
  showFunds
    ? html`<section aria-labelledby="par-fonds">
<h2 id="par-fonds">Par fonds</h2>
${groupedBarChart({ id: 'fonds', title: 'Inscrits, tronc sectoriel terminé et attestations, par fonds', categories: view.byFund.map((f) => f.name), series: seriesOf(view.byFund) })}
${figuresTable(
  'Entonnoir par fonds',
  'Fonds',
  view.byFund.map((f) => ({ label: f.name, counts: f.counts })),
  commonKnown,
)}
</section>`
    : ''
}

<section aria-labelledby="par-branche">
<h2 id="par-branche">Par branche</h2>
${
  view.byBranch.length === 0
    ? html`<p>Aucune donnée.</p>`
    : html`${groupedBarChart({ id: 'branches', title: 'Inscrits, tronc sectoriel terminé et attestations, par branche', categories: view.byBranch.map((b) => b.name), series: seriesOf(view.byBranch) })}
${figuresTable(
  'Entonnoir par branche',
  'Branche',
  view.byBranch.map((b) => ({ label: showFunds ? `${b.name} (${b.fund})` : b.name, counts: b.counts })),
  commonKnown,
)}`
}
</section>

<section aria-labelledby="par-semaine">
<h2 id="par-semaine">Par semaine d’inscription</h2>
${
  view.byWeek.length === 0
    ? html`<p>Aucune donnée.</p>`
    : html`${groupedBarChart({ id: 'semaines', title: 'Inscrits, tronc sectoriel terminé et attestations, par semaine d’inscription', categories: view.byWeek.map((w) => weekLabel(w.monday)), series: seriesOf(view.byWeek) })}
${figuresTable(
  'Entonnoir par semaine d’inscription (semaine ISO, heure de Paris)',
  'Semaine',
  view.byWeek.map((w) => ({ label: `${weekLabel(w.monday)} (${w.week})`, counts: w.counts })),
  commonKnown,
)}`
}
</section>

${forecastSection(forecast)}`,
  });
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

/** The completion forecast: the scope's curve and cohorts, then each fund and branch, with tables. */
function forecastSection(forecast: ForecastView): SafeHtml {
  const [scope, ...others] = forecast.groups;
  const by = formatDayFr(forecast.by);
  return html`<section aria-labelledby="prevision">
<h2 id="prevision">Prévision : combien auront leur attestation d’ici le ${by} ?</h2>
<p>Estimation d’après le parcours réel des apprenants inscrits jusqu’ici (méthode de Kaplan–Meier) : pour chaque semaine
d’inscription, les attestations déjà délivrées, plus la probabilité, pour chaque apprenant qui ne l’a pas encore, de l’obtenir d’ici
cette date. L’intervalle dit à quel point l’estimation est sûre (95 chances sur 100 que la vraie valeur s’y trouve) ; il est
d’autant plus large que les données sont peu nombreuses. Pas de prévision en dessous de ${forecast.minLearners} apprenants inscrits et
${forecast.minCertificates} attestations délivrées dans un groupe.</p>
${scope ? forecastGroup(scope, 'prev-0', by, true) : ''}
${others.map(
  (g, i) => html`<details class="box"><summary><strong>${g.level === 'fund' ? 'Fonds' : 'Branche'} : ${g.label}</strong>
— ${formatCount(g.learners)} apprenant${g.learners > 1 ? 's' : ''}, ${formatCount(g.certificates)} attestation${g.certificates > 1 ? 's' : ''}${g.sufficient ? '' : ' (trop peu de données)'}</summary>
${forecastGroup(g, `prev-${i + 1}`, by, false)}</details>`,
)}
</section>`;
}

function forecastGroup(g: ForecastGroup, id: string, by: string, main: boolean): SafeHtml {
  const basis = html`<p>Estimation fondée sur <strong>${formatCount(g.learners)} apprenant${g.learners > 1 ? 's' : ''}</strong>
(${formatCount(g.certificates)} attestation${g.certificates > 1 ? 's' : ''} délivrée${g.certificates > 1 ? 's' : ''}, suivis jusqu’à ${formatCount(g.followUpDays)} jours après leur inscription).</p>`;
  if (!g.sufficient) {
    return html`${main ? html`<h3>${g.label}</h3>` : ''}<p class="alert" role="note">${g.message ?? ''}</p>
${
  g.cohorts.length > 0
    ? html`<div class="table-wrap"><table class="figures">
<caption>Attestations à ce jour par semaine d’inscription (${g.label})</caption>
<thead><tr><th scope="col">Semaine d’inscription</th><th scope="col" class="num">Inscrits</th><th scope="col" class="num">Attestations à ce jour</th></tr></thead>
<tbody>${g.cohorts.map((c) => html`<tr><th scope="row">Semaine du ${formatDayFr(c.monday)} (${c.week})</th><td class="num">${formatCount(c.learners)}</td><td class="num">${formatCount(c.certifiedNow)}</td></tr>`)}</tbody>
</table></div>`
    : ''
}`;
  }
  const weekly = g.curve.filter((p) => p.day > 0 && p.day % 7 === 0);
  const extrapolated = g.cohorts.some((c) => c.extrapolated);
  return html`${main ? html`<h3>${g.label}</h3>` : ''}${basis}
${forecastCurveChart({ id: `${id}-courbe`, title: `Part des apprenants ayant leur attestation selon le temps écoulé depuis l’inscription (${g.label})`, curve: g.curve })}
<div class="table-wrap"><table class="figures" id="${id}-courbe-table">
<caption>Part ayant leur attestation, semaine par semaine après l’inscription (${g.label})</caption>
<thead><tr><th scope="col">Depuis l’inscription</th><th scope="col" class="num">Part estimée</th><th scope="col" class="num">Intervalle à 95 %</th><th scope="col" class="num">Apprenants encore suivis</th></tr></thead>
<tbody>${weekly.map((p) => html`<tr><th scope="row">${p.day / 7} semaine${p.day > 7 ? 's' : ''} (${p.day} jours)</th><td class="num">${pct(p.share)}</td><td class="num">${pct(p.lower)} à ${pct(p.upper)}</td><td class="num">${formatCount(p.atRisk)}</td></tr>`)}</tbody>
</table></div>
${
  g.cohorts.length === 0
    ? html`<p>Aucune semaine d’inscription dans la période choisie.</p>`
    : html`${cohortForecastChart({
        id: `${id}-cohortes`,
        title: `Prévision au ${by} par semaine d’inscription (${g.label})`,
        cohorts: g.cohorts.map((c) => ({
          label: `Semaine du ${formatDayFr(c.monday)}`,
          share: c.share ?? 0,
          lower: c.lower ?? 0,
          upper: c.upper ?? 0,
          observed: c.learners > 0 ? c.certifiedNow / c.learners : 0,
        })),
      })}
<div class="table-wrap"><table class="figures" id="${id}-cohortes-table">
<caption>Prévision au ${by} par semaine d’inscription (${g.label})</caption>
<thead><tr><th scope="col">Semaine d’inscription</th><th scope="col" class="num">Inscrits</th><th scope="col" class="num">Attestations à ce jour</th><th scope="col" class="num">Attendus avec attestation au ${by}</th><th scope="col" class="num">Intervalle à 95 %</th><th scope="col">Remarque</th></tr></thead>
<tbody>${g.cohorts.map(
        (
          c,
        ) => html`<tr><th scope="row">Semaine du ${formatDayFr(c.monday)} (${c.week})</th><td class="num">${formatCount(c.learners)}</td>
<td class="num">${formatCount(c.certifiedNow)}</td>
<td class="num">${pct(c.share ?? 0)} (environ ${formatCount(Math.round((c.share ?? 0) * c.learners))})</td>
<td class="num">${pct(c.lower ?? 0)} à ${pct(c.upper ?? 0)}</td>
<td>${c.extrapolated ? 'date au-delà du recul observé : prévision sans doute basse' : ''}</td></tr>`,
      )}</tbody>
</table></div>`
}
${
  extrapolated
    ? html`<p class="funnel-note">Au-delà de ${formatCount(g.followUpDays)} jours après l’inscription, aucun apprenant n’a encore été suivi : la prévision
suppose qu’aucune attestation n’arrive après ce délai, elle est donc sans doute un peu basse pour ces semaines.</p>`
    : ''
}`;
}

export function exportsPage(options: {
  request: FastifyRequest;
  principal: Principal;
  filter: ExportFilter;
  choices: FilterChoices;
}): string {
  const { request, principal, filter, choices } = options;
  const fundName = principal.fundSlug ? choices.funds.find((f) => f.slug === principal.fundSlug)?.name : undefined;
  return portalPage({
    request,
    principal,
    title: 'Exports',
    current: '/portal/exports',
    ...(fundName ? { fundName } : {}),
    head: html`${CHART_STYLE}<script src="/portal/assets/exports.js" defer></script>`,
    body: html`<h1>Exports des apprenants</h1>
<p>Deux exports, au format CSV ou XLSX :</p>
<ul>
<li><strong>Synthèse</strong> : une ligne par apprenant et par session, avec l’entreprise, le temps de formation, les modules terminés, le statut et l’attestation.</li>
<li><strong>Journal des connexions</strong> : une ligne par séance de connexion (début, fin, durée, modules visités).</li>
</ul>
<p class="muted">Chaque téléchargement est inscrit au <a href="/portal/journal">journal des téléchargements</a> (qui, quand, quels filtres, combien de lignes).
Dates en heure de Paris, avec une colonne en heure universelle (UTC).</p>
<form method="get" action="/portal/exports/telecharger" class="box" id="export-form">
<fieldset class="choices"><legend>Export</legend>
<label><input type="radio" name="kind" value="summary" checked> Synthèse</label>
<label><input type="radio" name="kind" value="connections"> Journal des connexions</label>
</fieldset>
<fieldset class="choices" aria-describedby="format-help"><legend>Format</legend>
<label><input type="radio" name="format" value="csv-excel" checked> CSV pour Excel ou LibreOffice</label>
<label><input type="radio" name="format" value="xlsx"> XLSX (classeur Excel)</label>
<label><input type="radio" name="format" value="csv"> CSV exact, pour les scripts</label>
<div id="format-help" class="muted">
<p><strong>CSV pour Excel ou LibreOffice</strong> : s’ouvre d’un double-clic ; les SIRET, codes IDCC et numéros de dossier
gardent tous leurs chiffres (0218 reste 0218). Ces cellules y sont écrites sous la forme <code>="0218"</code>, qu’Excel et
LibreOffice affichent comme du texte : un programme qui lit le fichier doit plutôt prendre le CSV exact.</p>
<p><strong>XLSX</strong> : les durées sont de vraies durées (on peut en faire la somme), les dates de vraies dates.</p>
<p><strong>CSV exact</strong> : les valeurs telles quelles, pour un programme ou un script.</p>
</div>
</fieldset>
<fieldset><legend>Filtres</legend>
${filterFields(principal, choices, filter, true)}
<p class="muted">Période : apprenants inscrits ou actifs entre ces dates (journal des connexions : séances commencées entre ces dates).</p>
</fieldset>
<input type="hidden" name="ticket" value="">
<p><button type="submit">Télécharger</button></p>
</form>
<div id="export-progress" role="status" aria-live="polite" hidden>
<label for="export-bar">Avancement de l’export</label>
<progress id="export-bar" max="100"></progress>
<p id="export-text"></p>
</div>`,
  });
}

/** The page script: follows a long download's progress. Served from our origin (CSP: script-src 'self'). */
export const EXPORTS_SCRIPT = `(() => {
  'use strict';
  const form = document.getElementById('export-form');
  const box = document.getElementById('export-progress');
  if (!form || !box) return;
  const bar = document.getElementById('export-bar');
  const text = document.getElementById('export-text');
  const fmt = new Intl.NumberFormat('fr-FR');
  let timer = null;
  const newTicket = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  form.addEventListener('submit', () => {
    const ticket = newTicket();
    form.elements.namedItem('ticket').value = ticket;
    box.hidden = false;
    bar.removeAttribute('value');
    text.textContent = 'Préparation de l’export…';
    if (timer) clearInterval(timer);
    let misses = 0;
    const poll = async () => {
      let res;
      try {
        res = await fetch('/portal/exports/progression/' + ticket, { credentials: 'same-origin', headers: { accept: 'application/json' } });
      } catch {
        return;
      }
      if (!res.ok) {
        if (++misses > 60) { clearInterval(timer); text.textContent = 'Impossible de suivre l’avancement ; le téléchargement continue peut-être.'; }
        return;
      }
      const p = await res.json();
      if (p.expectedRows) { bar.max = Math.max(1, p.expectedRows); bar.value = Math.min(p.rows, p.expectedRows); }
      const total = p.expectedRows === null ? '' : ' sur ' + fmt.format(p.expectedRows);
      if (p.status === 'completed') {
        clearInterval(timer);
        bar.max = 1; bar.value = 1;
        text.textContent = 'Export terminé : ' + fmt.format(p.rows) + ' ligne' + (p.rows > 1 ? 's' : '') + '. Le fichier est dans vos téléchargements.';
      } else if (p.status === 'failed') {
        clearInterval(timer);
        text.textContent = 'L’export a été interrompu après ' + fmt.format(p.rows) + ' lignes. Relancez-le.';
      } else if (p.unit === 'learners') {
        text.textContent = fmt.format(p.rows) + ' apprenant' + (p.rows > 1 ? 's' : '') + total + ' traités…';
      } else {
        text.textContent = fmt.format(p.rows) + ' ligne' + (p.rows > 1 ? 's' : '') + total + ' écrites…';
      }
    };
    timer = setInterval(poll, 700);
  });
})();
`;
