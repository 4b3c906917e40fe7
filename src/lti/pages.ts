import { defineAsset } from '../http/assets.js';
import { errorPage } from '../http/error-handler.js';
import { html, page, raw, type SafeHtml, script } from '../http/html.js';
import { ROLE_LABELS } from './rules.js';
import { SESSION_TOKEN_FIELD } from './session.js';
import type { LaunchRole } from './tables.js';
import type { CheckName } from './validator.js';

/**
 * Where the LTI capability serves the page scripts of ./assets (no inline script: see docs/security.md). Pages
 * link them at content-hashed URLs cached for good (src/http/assets.ts); these older addresses stay served
 * (5-minute cache) for pages rendered before the hashed ones.
 */
export const SESSION_SCRIPT_PATH = '/assets/lti/session.js';
export const AUTO_POST_SCRIPT_PATH = '/assets/lti/auto-post.js';

/** Not deferred: it keeps the page's forms and links supplied with a fresh token from the start. */
const SESSION_SCRIPT = raw(
  `<script src="${defineAsset('lti-session.js', [new URL('./assets/session.js', import.meta.url)]).url}"></script>`,
);
/** The auto-submitting form's script (deep-linking response, score forms), for other capabilities' pages. */
export const AUTO_POST_SCRIPT = script('lti-auto-post', new URL('./assets/auto-post.js', import.meta.url));

/**
 * Markup for the <head> of any page shown after a launch: the session token in a meta tag and the small
 * script (./assets/session.js) that renews it before it expires while the page stays open, and keeps the
 * forms that carry it (hidden `session_token` fields) up to date. It exposes
 * `window.emargementSession.fetch(url, init)` which adds the bearer header.
 */
export function sessionHead(token: string, exp: number, publicUrl: string): SafeHtml {
  return html`<meta name="emargement-session" content="${token}" data-exp="${exp}" data-field="${SESSION_TOKEN_FIELD}" data-renew-url="${publicUrl}/api/session/renew">
<meta name="referrer" content="no-referrer">
${SESSION_SCRIPT}`;
}

/** The default page of a resource-link launch (until the catalog registers its handler). */
export function launchSuccessPage(options: {
  role: LaunchRole;
  courseTitle: string | null;
  sessionToken: string;
  exp: number;
  publicUrl: string;
  deepLinking: boolean;
}): string {
  return page({
    title: 'Connexion réussie',
    head: sessionHead(options.sessionToken, options.exp, options.publicUrl),
    body: html`<div class="box" role="status">
<h1>Connexion réussie</h1>
<p>Vous êtes connecté en tant que : <strong>${ROLE_LABELS[options.role]}</strong>.</p>
${options.courseTitle ? html`<p>Cours : <strong>${options.courseTitle}</strong></p>` : ''}
${
  options.deepLinking
    ? html`<p>Le choix des contenus à ajouter au cours n’est pas encore disponible ici.</p>`
    : html`<p>Vos modules apparaîtront ici.</p>`
}
</div>`,
  });
}

/** What the learner reads when a launch is refused: what happened, what to do; the log has the check. */
export function launchErrorPage(check: CheckName, reference: string): { status: number; body: string } {
  const { status, message, advice } = explain(check);
  return { status, body: errorPage({ status, message, ...(advice ? { advice } : {}), reference }) };
}

function explain(check: CheckName): { status: number; message: string; advice?: string } {
  switch (check) {
    case 'jwks':
      return {
        status: 503,
        message: 'La plateforme du cours ne répond pas pour le moment.',
        advice: 'Réessayez dans quelques minutes en rechargeant la page du cours.',
      };
    case 'platform_error':
      return {
        status: 401,
        message: 'La plateforme du cours n’a pas pu confirmer qui vous êtes.',
        advice: 'Vérifiez que vous êtes toujours connecté au cours, puis rechargez la page.',
      };
    case 'state_expiry':
    case 'nonce_expiry':
    case 'exp':
      return {
        status: 401,
        message: 'La connexion a pris trop de temps.',
        advice: 'Rechargez la page du cours : une nouvelle connexion sera faite.',
      };
    case 'nonce_unused':
      return {
        status: 401,
        message: 'Ce lien de connexion a déjà servi.',
        advice: 'Rechargez la page du cours : une nouvelle connexion sera faite.',
      };
    case 'registration':
    case 'deployment_id':
      return {
        status: 400,
        message: 'Ce cours n’est pas encore relié à Émargement.',
        advice: 'Signalez-le à l’équipe du cours en donnant la référence ci-dessous.',
      };
    case 'login_request':
    case 'request':
    case 'token_size':
    case 'token_format':
      return { status: 400, message: 'La demande de connexion reçue est incomplète ou abîmée.' };
    default:
      return { status: 401, message: 'La connexion depuis le cours n’a pas pu être vérifiée.' };
  }
}
