import { errorPage } from '../http/error-handler.js';
import { html, page, raw, type SafeHtml } from '../http/html.js';
import { ROLE_LABELS } from './rules.js';
import { SESSION_TOKEN_FIELD } from './session.js';
import type { LaunchRole } from './tables.js';
import type { CheckName } from './validator.js';

/**
 * Markup for the <head> of any page shown after a launch: the session token in a meta tag and a small
 * script that renews it before it expires while the page stays open, and keeps forms and links that carry
 * it (hidden `session_token` fields, `?session_token=` links) up to date. It exposes
 * `window.emargementSession.fetch(url, init)` which adds the bearer header.
 */
export function sessionHead(token: string, exp: number, publicUrl: string): SafeHtml {
  const renewUrl = JSON.stringify(`${publicUrl}/api/session/renew`).replace(/</g, '\\u003c');
  const field = JSON.stringify(SESSION_TOKEN_FIELD);
  return html`<meta name="emargement-session" content="${token}" data-exp="${exp}">
<meta name="referrer" content="no-referrer">
<script>
(function () {
  var meta = document.querySelector('meta[name="emargement-session"]');
  var field = ${raw(field)};
  function token() { return meta.getAttribute('content'); }
  function apply(t) {
    meta.setAttribute('content', t);
    document.querySelectorAll('input[name="' + field + '"]').forEach(function (i) { i.value = t; });
    document.querySelectorAll('a[href*="' + field + '="]').forEach(function (a) {
      var u = new URL(a.href); u.searchParams.set(field, t); a.href = u.toString();
    });
  }
  function schedule() {
    var exp = Number(meta.getAttribute('data-exp')) * 1000;
    // Renew five minutes before expiry (at once if the tab slept past that point).
    setTimeout(renew, Math.max(0, exp - Date.now() - 300000));
  }
  function renew() {
    fetch(${raw(renewUrl)}, { method: 'POST', headers: { authorization: 'Bearer ' + token() } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (b) { if (b) { meta.setAttribute('data-exp', String(b.exp)); apply(b.token); schedule(); } })
      .catch(function () { setTimeout(renew, 60000); });
  }
  window.emargementSession = {
    token: token,
    fetch: function (url, init) {
      init = init || {};
      var h = new Headers(init.headers || {});
      h.set('authorization', 'Bearer ' + token());
      init.headers = h;
      return fetch(url, init);
    }
  };
  apply(token());
  schedule();
})();
</script>`;
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
