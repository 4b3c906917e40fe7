import { html, page, raw, type SafeHtml } from '../http/html.js';

// The catalog's layout, its styles (CATALOG_STYLE, PARCOURS_STYLE) and its static pages; each page group renders in views/.

/**
 * Server-rendered pages of the catalog, shown inside the Open edX iframe: French, usable with a keyboard
 * and a screen reader, readable from a 320 px phone to a small laptop. The session token lives in the
 * page (hidden fields, a meta tag) because third-party cookies are blocked in the iframe.
 */

const CATALOG_STYLE = `
body{background:#f6f8fa}
main{background:#fff;min-height:100vh}
@media (min-width:48rem){main{padding:1.5rem 2rem}}
.kicker{color:var(--muted);font-size:.95rem;margin:0}
.summary{font-size:1.05rem}
.progress{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid var(--line);padding:.5rem 0;margin:0 0 1rem}
.progress progress{width:100%;height:1rem;accent-color:var(--ok)}
.progress p{margin:.25rem 0 0;font-weight:600}
.toc ol{padding-left:1.25rem;margin:.25rem 0}
.toc .state{color:var(--ok);font-weight:600}
.block{border-top:2px solid var(--line);padding-top:.5rem;margin-top:1.5rem}
.block h2 .part{display:block;font-size:.85rem;font-weight:600;color:var(--muted)}
.frame{position:relative;width:100%;aspect-ratio:16/9;background:#1d1d1f;border-radius:.4rem;overflow:hidden}
.frame iframe,.frame video{position:absolute;inset:0;width:100%;height:100%;border:0}
details{border:1px solid var(--line);border-radius:.4rem;padding:.5rem .75rem;margin:.75rem 0}
summary{cursor:pointer;font-weight:600;padding:.25rem 0}
ol.steps>li{margin:0 0 1rem}
ol.steps h3{font-size:1.05rem;margin:.25rem 0}
figure.quote{margin:1rem 0;padding:1rem;border-left:4px solid var(--accent);background:#f6f8fa}
figure.quote blockquote{margin:0;font-size:1.05rem}
figure.quote figcaption{margin-top:.5rem;color:var(--muted)}
.seen-form{margin:1rem 0}
.done-mark{color:var(--ok);font-weight:600}
fieldset{border:1px solid var(--line);border-radius:.4rem;margin:1rem 0;padding:.5rem 1rem 1rem}
legend{font-weight:600;padding:0 .25rem}
fieldset.choices label{font-weight:400;display:flex;gap:.5rem;align-items:flex-start;margin:.4rem 0}
fieldset.choices input{width:auto;margin-top:.3rem;flex:none}
.feedback{margin:.5rem 0 0;padding:.5rem;border-radius:.3rem}
.feedback.right{background:#dafbe1}
.feedback.wrong{background:#fff1e5}
.notice{border-color:var(--ok);background:#f0fff4}
.complete{border-color:var(--ok);background:#dafbe1}
.field-error{color:var(--bad);font-weight:600;margin:.25rem 0}
.hint{color:var(--muted);margin:.1rem 0 .3rem;font-size:.95rem}
input[aria-invalid=true],select[aria-invalid=true]{border:2px solid var(--bad)}
.error-summary{border:2px solid var(--bad)}
.error-summary:focus{outline:3px solid #f59e0b}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:1rem 0}
.preview-banner{border-color:var(--warn);background:#fff8c5}
table.funds td,table.funds th{vertical-align:top}
@media (max-width:40rem){table.funds thead{display:none}table.funds tr{display:block;border-bottom:2px solid var(--line);padding:.5rem 0}table.funds td{display:block;border:0;padding:.15rem 0}}
button.link{background:none;border:0;color:var(--accent);text-decoration:underline;padding:0}
.module-nav{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;align-items:center;margin:0 0 .75rem}
.module-nav p{margin:0}
.activity-kind{color:var(--muted);font-weight:600;margin:.25rem 0}
ul.checklist,ol.checklist{padding-left:0;list-style:none}
ol.checklist{counter-reset:step}
.checklist li{margin:.4rem 0}
.checklist label{font-weight:400;display:flex;gap:.5rem;align-items:flex-start}
.checklist input{width:1.25rem;height:1.25rem;margin-top:.15rem;flex:none}
a.term{text-decoration-style:dotted}
.glossary dt{font-weight:600;margin-top:.5rem}
.glossary dd{margin:0 0 .5rem 0}
.further li{margin:.4rem 0}
p.next{margin:1.5rem 0}
`;

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
<style>${raw(CATALOG_STYLE)}</style>
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

export function renderVideoPlaceholder(): string {
  // Shown inside a video frame: the title comes from the query string and is set by a tiny script so
  // the page itself stays static (and cacheable).
  return `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vidéo bientôt disponible</title>
<style>
html,body{height:100%;margin:0}
body{display:flex;align-items:center;justify-content:center;background:#1d1d1f;color:#fff;font:16px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;text-align:center}
div{padding:1rem;max-width:30rem}
p{margin:.4rem 0}
.big{font-size:1.2rem;font-weight:600}
</style>
</head>
<body>
<div>
<p class="big">La vidéo arrive bientôt</p>
<p id="titre"></p>
<p>En attendant, tout ce qu’elle dit est écrit dans la transcription, juste en dessous.</p>
</div>
<script>
var t = new URLSearchParams(location.search).get('titre');
if (t) document.getElementById('titre').textContent = '« ' + t.slice(0, 200) + ' »';
</script>
</body>
</html>`;
}

export const PARCOURS_STYLE = `
ol.parcours{list-style:none;padding:0;margin:.5rem 0}
.parcours-module{display:flex;flex-direction:column;gap:.1rem;border:1px solid var(--line);border-radius:.4rem;padding:.5rem .75rem;margin:.4rem 0}
.parcours-module a{font-weight:600}
.status{font-weight:600}
.status-done{color:var(--ok)}
.status-started{color:#9a6700}
.parcours-summary p{margin:.4rem 0}
@media (min-width:48rem){.parcours-module{display:grid;grid-template-columns:1fr auto;column-gap:1rem}.parcours-module .status{grid-column:2;grid-row:1 / span 2;align-self:center}}
`;
