import { html, type SafeHtml } from '../http/html.js';
import {
  FUNNEL_LABELS,
  FUNNEL_STAGES,
  type FunnelCounts,
  type FunnelStage,
  formatCount,
  formatPercent,
} from './rules.js';

/**
 * Server-rendered SVG charts: no script, no library, readable without colours (every bar carries its
 * figure as text) and described for screen readers (role="img", <title>, <desc> with every figure).
 * The same figures are always given as a table next to the chart.
 */

// Hues apart for the common colour-vision deficiencies, each at least 3:1 against the white page
// (WCAG 1.4.11, graphical objects; tested). Colour never carries meaning alone: every bar has its
// figure, and in grouped charts its series name, written beside it in ink.
export const STAGE_COLOURS: Record<FunnelStage, string> = {
  registered: '#0072B2',
  started: '#5E3C99',
  commonDone: '#00796B',
  sectorDone: '#B35806',
  certified: '#A4133C',
};

export const INK = '#1d1d1f';

/** WCAG 2 contrast ratio of two `#rrggbb` colours. */
export function contrastRatio(a: string, b: string): number {
  const luminance = (hex: string) => {
    const [r, g, bl] = [1, 3, 5].map((i) => {
      const v = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [luminance(a), luminance(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

const WIDTH = 720;
const LABEL_WIDTH = 230;
const VALUE_WIDTH = 160;
const BAR_AREA = WIDTH - LABEL_WIDTH - VALUE_WIDTH;

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The five stages as horizontal bars scaled on the registered count. */
export function funnelChart(options: {
  id: string;
  title: string;
  counts: FunnelCounts;
  commonKnown: boolean;
}): SafeHtml {
  const { counts, id } = options;
  const stages = FUNNEL_STAGES.filter((s) => s !== 'commonDone' || options.commonKnown);
  const rowHeight = 34;
  const top = 8;
  const height = top + stages.length * rowHeight + 8;
  const max = Math.max(1, counts.registered);
  const desc = stages
    .map(
      (s) =>
        `${FUNNEL_LABELS[s]} : ${formatCount(counts[s])} (${formatPercent(counts[s], counts.registered)} des inscrits)`,
    )
    .join(' ; ');
  return html`<figure class="chart">
<svg role="img" aria-labelledby="${id}-t ${id}-d" viewBox="0 0 ${WIDTH} ${height}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="14">
<title id="${id}-t">${options.title}</title>
<desc id="${id}-d">${desc}${options.commonKnown ? '' : ' ; tronc commun : non mesuré'}.</desc>
${stages.map((s, i) => {
  const y = top + i * rowHeight;
  const w = counts[s] === 0 ? 0 : Math.max(2, Math.round((counts[s] / max) * BAR_AREA));
  return html`<g>
<text x="${LABEL_WIDTH - 8}" y="${y + 21}" text-anchor="end" fill="#1d1d1f">${FUNNEL_LABELS[s]}</text>
<rect x="${LABEL_WIDTH}" y="${y + 4}" width="${w}" height="24" rx="3" fill="${STAGE_COLOURS[s]}"></rect>
<text x="${LABEL_WIDTH + w + 8}" y="${y + 21}" fill="#1d1d1f">${formatCount(counts[s])} · ${formatPercent(counts[s], counts.registered)}</text>
</g>`;
})}
</svg>
<figcaption class="muted">${options.title}${options.commonKnown ? '' : ' (tronc commun : non mesuré, il n’est pas suivi par l’outil)'}</figcaption>
</figure>`;
}

export interface Series {
  name: string;
  /** Written beside each bar with its figure, so that the colour is never the only key. */
  short: string;
  colour: string;
  values: number[];
}

/** Horizontal grouped bars: one group per category (fund, branch, week), one bar per series. */
export function groupedBarChart(options: {
  id: string;
  title: string;
  categories: string[];
  series: Series[];
}): SafeHtml {
  const { id, categories, series } = options;
  const barHeight = 14;
  const gap = 3;
  const groupHeight = series.length * (barHeight + gap) + 12;
  const legendHeight = 28;
  const height = legendHeight + Math.max(1, categories.length) * groupHeight + 8;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const desc = categories
    .map((c, i) => `${c} : ${series.map((s) => `${s.name} ${formatCount(s.values[i] ?? 0)}`).join(', ')}`)
    .join(' ; ');
  let legendX = LABEL_WIDTH;
  const legend = series.map((s) => {
    const x = legendX;
    legendX += 28 + s.name.length * 8;
    return html`<rect x="${x}" y="6" width="14" height="14" fill="${s.colour}"></rect><text x="${x + 20}" y="18" fill="#1d1d1f">${s.name}</text>`;
  });
  return html`<figure class="chart">
<svg role="img" aria-labelledby="${id}-t ${id}-d" viewBox="0 0 ${WIDTH} ${height}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="13">
<title id="${id}-t">${options.title}</title>
<desc id="${id}-d">${categories.length === 0 ? 'Aucune donnée.' : `${desc}.`}</desc>
<g aria-hidden="true">${legend}</g>
${categories.map((c, ci) => {
  const y0 = legendHeight + ci * groupHeight;
  return html`<g>
<text x="${LABEL_WIDTH - 8}" y="${y0 + (series.length * (barHeight + gap)) / 2 + 4}" text-anchor="end" fill="#1d1d1f"><title>${c}</title>${truncate(c, 30)}</text>
${series.map((s, si) => {
  const v = s.values[ci] ?? 0;
  const w = v === 0 ? 0 : Math.max(2, Math.round((v / max) * BAR_AREA));
  const y = y0 + si * (barHeight + gap);
  return html`<rect x="${LABEL_WIDTH}" y="${y}" width="${w}" height="${barHeight}" fill="${s.colour}"></rect>
<text x="${LABEL_WIDTH + w + 6}" y="${y + barHeight - 3}" fill="#1d1d1f">${s.short} ${formatCount(v)}</text>`;
})}
</g>`;
})}
</svg>
</figure>`;
}

export interface CurvePointLike {
  day: number;
  share: number;
  lower: number;
  upper: number;
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

/**
 * The share holding a certificate by day since registration: the estimate as a solid step line, its
 * 95 % band as dashed lines around a light area (line style, not colour, tells them apart), axes
 * labelled in text. The description gives the figures week by week.
 */
export function forecastCurveChart(options: { id: string; title: string; curve: readonly CurvePointLike[] }): SafeHtml {
  const { id, curve } = options;
  const left = 56;
  const right = WIDTH - 16;
  const top = 34;
  const bottom = 250;
  const height = bottom + 40;
  const lastDay = Math.max(7, curve.length > 0 ? (curve[curve.length - 1] as CurvePointLike).day : 7);
  const x = (day: number) => Math.round((left + (day / lastDay) * (right - left)) * 10) / 10;
  const y = (share: number) => Math.round((bottom - share * (bottom - top)) * 10) / 10;
  // A step line: level until the next day, then up to that day's level.
  const step = (value: (p: CurvePointLike) => number) =>
    curve.map((p, i) => (i === 0 ? `M${x(p.day)},${y(value(p))}` : `H${x(p.day)}V${y(value(p))}`)).join('');
  const band =
    curve.length === 0
      ? ''
      : `${curve.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.day)},${y(p.upper)}`).join('')}${[...curve]
          .reverse()
          .map((p) => `L${x(p.day)},${y(p.lower)}`)
          .join('')}Z`;
  const weeks: number[] = [];
  for (let d = 0; d <= lastDay; d += 7) weeks.push(d);
  const desc =
    curve.length === 0
      ? 'Aucune donnée.'
      : `${weeks
          .filter((d) => d > 0 && d < curve.length)
          .map((d) => {
            const p = curve[d] as CurvePointLike;
            return `après ${d} jours : ${pct(p.share)} (entre ${pct(p.lower)} et ${pct(p.upper)})`;
          })
          .join(' ; ')}.`;
  return html`<figure class="chart">
<svg role="img" aria-labelledby="${id}-t ${id}-d" viewBox="0 0 ${WIDTH} ${height}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="13">
<title id="${id}-t">${options.title}</title>
<desc id="${id}-d">Part des apprenants ayant leur attestation, selon le nombre de jours depuis l’inscription : ${desc}</desc>
<g aria-hidden="true">
${[0, 0.25, 0.5, 0.75, 1].map(
  (s) =>
    html`<line x1="${left}" x2="${right}" y1="${y(s)}" y2="${y(s)}" stroke="#d0d7de"></line><text x="${left - 6}" y="${y(s) + 4}" text-anchor="end" fill="${INK}">${pct(s)}</text>`,
)}
${weeks.map(
  (d) =>
    html`<text x="${x(d)}" y="${bottom + 18}" text-anchor="middle" fill="${INK}">${d === 0 ? 'inscription' : `J+${d}`}</text>`,
)}
<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle" fill="${INK}">jours depuis l’inscription</text>
<line x1="${left}" x2="${left + 28}" y1="14" y2="14" stroke="${STAGE_COLOURS.certified}" stroke-width="3"></line>
<text x="${left + 34}" y="18" fill="${INK}">part estimée (trait plein)</text>
<line x1="${left + 230}" x2="${left + 258}" y1="14" y2="14" stroke="${STAGE_COLOURS.registered}" stroke-width="2" stroke-dasharray="6 4"></line>
<text x="${left + 264}" y="18" fill="${INK}">intervalle de confiance à 95 % (tirets)</text>
</g>
${
  curve.length === 0
    ? ''
    : html`<path d="${band}" fill="${STAGE_COLOURS.registered}" fill-opacity="0.12" stroke="none"></path>
<path d="${step((p) => p.upper)}" fill="none" stroke="${STAGE_COLOURS.registered}" stroke-width="2" stroke-dasharray="6 4"></path>
<path d="${step((p) => p.lower)}" fill="none" stroke="${STAGE_COLOURS.registered}" stroke-width="2" stroke-dasharray="6 4"></path>
<path d="${step((p) => p.share)}" fill="none" stroke="${STAGE_COLOURS.certified}" stroke-width="3"></path>`
}
</svg>
<figcaption class="muted">${options.title}</figcaption>
</figure>`;
}

export interface CohortBar {
  label: string;
  share: number;
  lower: number;
  upper: number;
  observed: number;
}

/**
 * One row per cohort: the share already certified as a bar, the expected share by the date as a
 * diamond with its band as a whisker, the figures written at the end of the row.
 */
export function cohortForecastChart(options: { id: string; title: string; cohorts: readonly CohortBar[] }): SafeHtml {
  const { id, cohorts } = options;
  const rowHeight = 26;
  const top = 30;
  const height = top + Math.max(1, cohorts.length) * rowHeight + 10;
  const area = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  const x = (share: number) => Math.round((LABEL_WIDTH + share * area) * 10) / 10;
  const desc = cohorts
    .map(
      (c) =>
        `${c.label} : ${pct(c.observed)} ont déjà leur attestation, ${pct(c.share)} attendus (entre ${pct(c.lower)} et ${pct(c.upper)})`,
    )
    .join(' ; ');
  return html`<figure class="chart">
<svg role="img" aria-labelledby="${id}-t ${id}-d" viewBox="0 0 ${WIDTH} ${height}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="13">
<title id="${id}-t">${options.title}</title>
<desc id="${id}-d">${cohorts.length === 0 ? 'Aucune donnée.' : `${desc}.`}</desc>
<g aria-hidden="true">
<rect x="8" y="8" width="14" height="12" fill="${STAGE_COLOURS.sectorDone}"></rect><text x="28" y="18" fill="${INK}">déjà attestés aujourd’hui (barre)</text>
<path d="M${LABEL_WIDTH + 30},14 l6,-6 l6,6 l-6,6 z" fill="${STAGE_COLOURS.certified}"></path><text x="${LABEL_WIDTH + 48}" y="18" fill="${INK}">prévision (losange), intervalle à 95 % (trait)</text>
</g>
${cohorts.map((c, i) => {
  const cy = top + i * rowHeight + rowHeight / 2;
  return html`<g>
<text x="${LABEL_WIDTH - 8}" y="${cy + 4}" text-anchor="end" fill="${INK}">${truncate(c.label, 30)}</text>
<rect x="${LABEL_WIDTH}" y="${cy - 6}" width="${Math.max(0, x(c.observed) - LABEL_WIDTH)}" height="12" fill="${STAGE_COLOURS.sectorDone}"></rect>
<line x1="${x(c.lower)}" x2="${x(c.upper)}" y1="${cy}" y2="${cy}" stroke="${INK}" stroke-width="2"></line>
<line x1="${x(c.lower)}" x2="${x(c.lower)}" y1="${cy - 6}" y2="${cy + 6}" stroke="${INK}" stroke-width="2"></line>
<line x1="${x(c.upper)}" x2="${x(c.upper)}" y1="${cy - 6}" y2="${cy + 6}" stroke="${INK}" stroke-width="2"></line>
<path d="M${x(c.share)},${cy - 7} l7,7 l-7,7 l-7,-7 z" fill="${STAGE_COLOURS.certified}" stroke="#fff"></path>
<text x="${WIDTH - VALUE_WIDTH}" y="${cy + 4}" fill="${INK}">${pct(c.share)} (${pct(c.lower)}–${pct(c.upper)})</text>
</g>`;
})}
</svg>
<figcaption class="muted">${options.title}</figcaption>
</figure>`;
}
