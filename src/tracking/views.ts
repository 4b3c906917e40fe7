import { html, page, type SafeHtml } from '../http/html.js';
import { formatDuration } from './rules.js';
import type { LearnerTimes } from './service.js';

/**
 * "Votre temps de connexion": the learner's credited time per module and in total, floored to the minute,
 * with one plain sentence on how it is counted. A fragment the module page can embed, and a page of its own.
 */
export function renderLearnerTimes(
  times: LearnerTimes,
  titles: ReadonlyMap<string, string> = new Map(),
  commonTrunkSeconds: number | null = null,
): SafeHtml {
  const modules = [...times.modules].sort((a, b) =>
    (titles.get(a.moduleId) ?? a.moduleId).localeCompare(titles.get(b.moduleId) ?? b.moduleId, 'fr'),
  );
  return html`<section class="box temps-connexion" aria-labelledby="temps-connexion-titre">
<h2 id="temps-connexion-titre">Votre temps de connexion</h2>
${
  commonTrunkSeconds === null
    ? html`<p>Total : <strong>${formatDuration(times.creditedSeconds * 1000)}</strong></p>`
    : html`<dl class="durees">
<dt>Mesuré dans les modules</dt><dd>${formatDuration(times.creditedSeconds * 1000)}</dd>
<dt>Tronc commun, estimé d’après les journaux de la plateforme</dt><dd>${formatDuration(commonTrunkSeconds * 1000)}</dd>
<dt>Total</dt><dd><strong>${formatDuration((times.creditedSeconds + commonTrunkSeconds) * 1000)}</strong></dd>
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
  (m) =>
    html`<tr><td>${titles.get(m.moduleId) ?? m.moduleId}</td><td>${formatDuration(m.creditedSeconds * 1000)}${m.overCapSeconds > 0 ? html` <span class="muted">(maximum atteint)</span>` : ''}</td></tr>`,
)}
</tbody>
</table>`
}
<p class="muted">Le temps est compté seulement quand la page d’un module est affichée devant vous et que vous l’utilisez (ou qu’une vidéo est en cours). Il est arrondi à la minute inférieure.${modules.length > 0 ? ' Pour chaque module, il ne dépasse pas trois fois la durée prévue.' : ''}${commonTrunkSeconds === null ? '' : ' Le temps passé sur les pages du cours autour des modules (tronc commun) n’est pas mesuré ici : il est estimé d’après les journaux de la plateforme, sans compter deux fois le temps déjà mesuré dans les modules.'}</p>
</section>`;
}

export function learnerTimesPage(
  times: LearnerTimes,
  titles: ReadonlyMap<string, string>,
  commonTrunkSeconds: number | null = null,
  extra: SafeHtml = html``,
): string {
  return page({
    title: 'Votre temps de connexion',
    body: html`${renderLearnerTimes(times, titles, commonTrunkSeconds)}${extra}`,
  });
}
