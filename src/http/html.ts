import type { FastifyReply } from 'fastify';
import { defineAsset } from './assets.js';

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
const SPECIAL = /[&<>"']/;

export function escapeHtml(value: unknown): string {
  const text = String(value);
  // Most values (ids, labels, numbers) have nothing to escape: a test is a third of a replace's cost.
  return SPECIAL.test(text) ? text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string) : text;
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
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
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

/** The base style of every page (./assets/base.css). */
export const BASE_CSS = new URL('./assets/base.css', import.meta.url);
const BASE_STYLESHEET = defineAsset('base.css', [BASE_CSS]);

/** Marks our stylesheet links: `page()` links the base style only when the head has none of them. */
const STYLESHEET_MARK = 'data-stylesheet';

function stylesheetLink(url: string): SafeHtml {
  return new SafeHtml(`<link rel="stylesheet" href="${url}" ${STYLESHEET_MARK}>`);
}

/**
 * A capability's stylesheet (a .css file of its assets/ folder), served at a content-hashed URL with the base
 * style before its own rules, as one file: the `<link>` for the page's head (`page()` then links no other
 * stylesheet, so a page costs one stylesheet request). `base: false`: the file's own rules only, for a page
 * whose layout already links a stylesheet (a portal page's charts).
 */
export function stylesheet(name: string, source: URL, options: { base?: boolean } = {}): SafeHtml {
  const asset = defineAsset(`${name}.css`, options.base === false ? [source] : [BASE_CSS, source]);
  return stylesheetLink(asset.url);
}

/** A script of our own (a .js file of a capability's assets/ folder): `<script src=… defer>` at a hashed URL. */
export function script(name: string, source: URL): SafeHtml {
  return new SafeHtml(`<script src="${defineAsset(`${name}.js`, [source]).url}" defer></script>`);
}

export function page(options: PageOptions): string {
  return `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)} — Émargement</title>
${options.head?.value.includes(STYLESHEET_MARK) ? '' : stylesheetLink(BASE_STYLESHEET.url).value}
${options.head?.value ?? ''}
</head>
<body>
<main id="contenu">
${options.body.value}
</main>
${
  (options.privacyLink ?? options.frameable !== false)
    ? `<footer class="muted site-footer"><a href="${PRIVACY_NOTICE_PATH}" target="_blank" rel="noopener" data-privacy-notice>Vos données personnelles</a></footer>`
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
