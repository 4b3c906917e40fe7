import { html, page, raw, type SafeHtml, script, stylesheet } from '../http/html.js';

// The catalog's layout (its stylesheet is assets/catalog.css) and its static pages; each page group renders in views/.

/**
 * Server-rendered pages of the catalog, shown inside the Open edX iframe: French, usable with a keyboard
 * and a screen reader, readable from a 320 px phone to a small laptop. The session token lives in the
 * page (hidden fields, a meta tag) because third-party cookies are blocked in the iframe.
 */

const CATALOG_STYLE = stylesheet('catalog', new URL('./assets/catalog.css', import.meta.url));

/** The session as a page carries it: the raw token for hidden fields and links, and the LTI capability's
 * <head> markup (meta tag + renewal script, `window.emargementSession`). */
export interface PageSession {
  token: string;
  head: SafeHtml;
}

/** `page()` with the catalog's style, the session markup and room for other capabilities' tags. */
export function catalogPage(options: {
  title: string;
  body: SafeHtml;
  session: PageSession | null;
  extraHead?: SafeHtml | undefined;
  bodyData?: Record<string, string> | undefined;
}): string {
  const head = html`${options.session ? options.session.head : raw('<meta name="referrer" content="no-referrer">')}
${CATALOG_STYLE}
${options.extraHead ?? ''}`;
  const out = page({ title: options.title, head, body: options.body });
  if (!options.bodyData) return out;
  const attrs = Object.entries(options.bodyData)
    .map(([k, v]) => html` data-${k}="${v}"`.value)
    .join('');
  return out.replace('<body>', `<body${attrs}>`);
}

export const withToken = (path: string, token: string) =>
  `${path}${path.includes('?') ? '&' : '?'}session_token=${encodeURIComponent(token)}`;

// ───────────────────────────── Messages ─────────────────────────────

/** A French page for a learner when the link cannot be served (unknown module or theme…). */
export function renderMessagePage(options: {
  title: string;
  message: string;
  advice: string;
  reference: string;
  session?: PageSession | null;
}): string {
  const body = html`<div class="box error" role="alert">
<h1>${options.title}</h1>
<p>${options.message}</p>
<p>${options.advice}</p>
<p class="muted">Référence à donner à l’équipe du cours : <code>${options.reference}</code></p>
</div>`;
  return catalogPage({ title: options.title, body, session: options.session ?? null });
}

const PLACEHOLDER_STYLE = stylesheet('video-placeholder', new URL('./assets/video-placeholder.css', import.meta.url), {
  base: false,
});
const PLACEHOLDER_SCRIPT = script('video-placeholder', new URL('./assets/video-placeholder.js', import.meta.url));

export function renderVideoPlaceholder(): string {
  // Shown inside a video frame: the title comes from the query string and is set by a tiny script so
  // the page itself stays static (and cacheable).
  return `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vidéo bientôt disponible</title>
${PLACEHOLDER_STYLE}
${PLACEHOLDER_SCRIPT}
</head>
<body>
<div>
<p class="big">La vidéo arrive bientôt</p>
<p id="titre"></p>
<p>En attendant, tout ce qu’elle dit est écrit dans la transcription, juste en dessous.</p>
</div>
</body>
</html>`;
}
