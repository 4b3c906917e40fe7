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
