import type { FastifyReply } from 'fastify';

/**
 * Server-rendered HTML without a template engine: `html` is a tagged template that escapes every
 * interpolated value unless it is already `SafeHtml`. Pages are French and small enough for an iframe.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

type Interpolation = SafeHtml | string | number | boolean | null | undefined | readonly Interpolation[];

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(value);
}

export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** Marks trusted markup (e.g. Markdown rendered from our own content packages) as safe. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

export interface PageOptions {
  title: string;
  body: SafeHtml;
  /** Extra markup for <head> (styles, scripts of our own origin). */
  head?: SafeHtml;
  /** Allows framing by any origin: LTI pages live in the LMS iframe. Portal pages set false. */
  frameable?: boolean;
  /** The « Vos données » link at the foot of the page (default: on every page but the portal's). */
  privacyLink?: boolean;
}

/** The public notice on personal data (src/privacy): linked from every learner page. */
export const PRIVACY_NOTICE_PATH = '/vos-donnees';

export const BASE_STYLE = `
:root{--ink:#1d1d1f;--muted:#555;--accent:#0b5cad;--ok:#1a7f37;--warn:#9a6700;--bad:#b42318;--line:#d0d7de;--bg:#fff}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:46rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
a{color:var(--accent)}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.box{border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:1rem 0}
.error{border-color:var(--bad)}
.muted{color:var(--muted);font-size:.9rem}
button,.button{font:inherit;background:var(--accent);color:#fff;border:0;border-radius:.4rem;padding:.6rem 1rem;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#fff;color:var(--accent);border:1px solid var(--accent)}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input,select,textarea{font:inherit;padding:.5rem;border:1px solid #8c959f;border-radius:.3rem;width:100%;max-width:30rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem;border-bottom:1px solid var(--line)}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;

export function page(options: PageOptions): string {
  return `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)} — Émargement</title>
<style>${BASE_STYLE}</style>
${options.head?.value ?? ''}
</head>
<body>
<main id="contenu">
${options.body.value}
</main>
${
  (options.privacyLink ?? options.frameable !== false)
    ? `<footer class="muted" style="max-width:46rem;margin:0 auto;padding:0 1rem 1rem"><a href="${PRIVACY_NOTICE_PATH}" target="_blank" rel="noopener" data-privacy-notice>Vos données personnelles</a></footer>`
    : ''
}
</body>
</html>`;
}

/**
 * Sends a page of the LMS iframe or of a learner flow: never cached (it carries a session's data) and
 * never leaking its URL (which may carry a view ticket) to other sites. The one reply helper for such pages.
 */
export function sendLearnerPage(reply: FastifyReply, body: string | SafeHtml, status = 200): FastifyReply {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .type('text/html; charset=utf-8')
    .send(String(body));
}

/** Sends a page outside the iframe (portal, verification): the headers of src/http/security-headers.ts apply. */
export function sendPage(reply: FastifyReply, body: string | SafeHtml, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(String(body));
}
