import { largestRemainder } from '../common/rounding.js';
import { html, page, type SafeHtml } from '../http/html.js';
import { formatDuration } from './rules.js';
import type { LearnerTimes } from './service/times.js';

/** The learner's module page (the catalog's), reached again with the same session token. */
export const MODULE_PAGE_PATH = '/catalog/module';

const minutesText = (minutes: number) => formatDuration(minutes * 60_000);

/**
 * "Votre temps de connexion": the learner's credited time per module and in total, with one plain sentence
 * on how it is counted. Minutes per row are rounded by largest remainder (modules, then the LMS estimate)
 * so that the rows add up to the total shown, itself floored to the minute (docs/time-accounting.md).
 * A fragment the module page can embed (with its own `<h2>`), and a page of its own (`learnerTimesPage`).
 */
export function renderLearnerTimes(
  times: LearnerTimes,
  titles: ReadonlyMap<string, string> = new Map(),
  commonTrunkSeconds: number | null = null,
  options: { standalone?: boolean; awaitingLogsOf?: string | null } = {},
): SafeHtml {
  const awaitingLogsOf = options.awaitingLogsOf ?? null;
  const awaiting = awaitingLogsOf
    ? html` <span class="muted">(estimation en attente des journaux du ${awaitingLogsOf})</span>`
    : '';
  const modules = [...times.modules].sort((a, b) =>
    (titles.get(a.moduleId) ?? a.moduleId).localeCompare(titles.get(b.moduleId) ?? b.moduleId, 'fr'),
  );
  const parts = largestRemainder([...modules.map((m) => m.creditedSeconds), commonTrunkSeconds ?? 0], 60);
  const moduleMinutes = parts.slice(0, modules.length);
  const inModules = moduleMinutes.reduce((s, m) => s + m, 0);
  const estimate = commonTrunkSeconds === null ? null : (parts[modules.length] as number);
  // With no module row, the in-tool total stands alone (floored).
  const inTool = modules.length > 0 ? inModules : Math.floor(times.creditedSeconds / 60);
  const heading = options.standalone ? html`` : html`<h2 id="temps-connexion-titre">Votre temps de connexion</h2>`;
  return html`<section class="box temps-connexion" aria-labelledby="temps-connexion-titre">
${heading}
${
  estimate === null
    ? html`<p>Total : <strong>${minutesText(inTool)}</strong></p>${
        awaitingLogsOf
          ? html`
<p class="tronc-commun-attente">Tronc commun : estimation en attente des journaux du ${awaitingLogsOf}.</p>`
          : ''
      }`
    : html`<dl class="durees">
<dt>Mesuré dans les modules</dt><dd>${minutesText(inTool)}</dd>
<dt>Tronc commun, estimé d’après les journaux de la plateforme</dt><dd>${minutesText(estimate)}${awaiting}</dd>
<dt>Total</dt><dd><strong>${minutesText(inTool + estimate)}</strong></dd>
</dl>`
}
${
  modules.length === 0
    ? html`<p>Aucun temps n’est encore compté. Il le sera dès que vous suivrez un module.</p>`
    : html`<table>
<caption class="sr-only">Temps de connexion par module</caption>
<thead><tr><th scope="col">Module</th><th scope="col">Temps compté</th></tr></thead>
<tbody>
${modules.map(
  (m, i) =>
    html`<tr><td>${titles.get(m.moduleId) ?? m.moduleId}</td><td>${minutesText(moduleMinutes[i] as number)}${m.overCapSeconds > 0 ? html` <span class="muted">(maximum atteint)</span>` : ''}</td></tr>`,
)}
</tbody>
</table>`
}
<p class="muted">Le temps est compté seulement quand la page d’un module est affichée devant vous et que vous l’utilisez (ou qu’une vidéo est en cours) : dès que la page est cachée, ou après trois minutes sans aucune action, il s’arrête, et il reprend quand vous revenez. Le total est arrondi à la minute inférieure, et les lignes s’additionnent exactement jusqu’au total.${modules.length > 0 ? ' Pour chaque module, il ne dépasse pas trois fois la durée prévue.' : ''}${commonTrunkSeconds === null ? '' : ' Le temps passé sur les pages du cours autour des modules (tronc commun) n’est pas mesuré ici : il est estimé d’après les journaux de la plateforme, sans compter deux fois le temps déjà mesuré dans les modules.'}</p>
</section>`;
}

/** The page of its own: a `<h1>`, a clear way back to the module, then the figures. */
export function learnerTimesPage(
  times: LearnerTimes,
  titles: ReadonlyMap<string, string>,
  commonTrunkSeconds: number | null = null,
  sessionToken: string | null = null,
  awaitingLogsOf: string | null = null,
  extra: SafeHtml = html``,
): string {
  const back = sessionToken
    ? html`<p><a class="button" href="${MODULE_PAGE_PATH}?session_token=${encodeURIComponent(sessionToken)}">← Revenir au module</a></p>`
    : html`<p class="muted">Pour revenir au module, utilisez le lien du cours dans la plateforme.</p>`;
  return page({
    title: 'Votre temps de connexion',
    body: html`<h1 id="temps-connexion-titre">Votre temps de connexion</h1>
${back}
${renderLearnerTimes(times, titles, commonTrunkSeconds, { standalone: true, awaitingLogsOf })}
${sessionToken ? html`<p><a href="${MODULE_PAGE_PATH}?session_token=${encodeURIComponent(sessionToken)}">Revenir au module</a></p>` : ''}
${extra}`,
  });
}
