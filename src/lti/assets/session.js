// Session of a page shown after an LTI launch (served from /static/ at a content-hashed URL, and as
// /assets/lti/session.js; loaded right after the
// <meta name="emargement-session"> tag, without inline script so that the CSP can forbid inline scripts).
// Renews the session token five minutes before it expires while the page stays open, keeps the forms that
// carry it (hidden session_token fields) up to date, and exposes window.emargementSession.fetch(url, init),
// which adds the bearer header.
(() => {
  var meta = document.querySelector('meta[name="emargement-session"]');
  if (!meta) return;
  var field = meta.getAttribute('data-field') || 'session_token';
  var renewUrl = meta.getAttribute('data-renew-url');
  function token() {
    return meta.getAttribute('content');
  }
  function apply(t) {
    meta.setAttribute('content', t);
    document.querySelectorAll('input[name="' + field + '"]').forEach((i) => {
      i.value = t;
    });
    document.querySelectorAll('a[href*="' + field + '="]').forEach((a) => {
      var u = new URL(a.href);
      u.searchParams.set(field, t);
      a.href = u.toString();
    });
  }
  function schedule() {
    var exp = Number(meta.getAttribute('data-exp')) * 1000;
    // Renew five minutes before expiry (at once if the tab slept past that point).
    setTimeout(renew, Math.max(0, exp - Date.now() - 300000));
  }
  function renew() {
    fetch(renewUrl, { method: 'POST', headers: { authorization: 'Bearer ' + token() } })
      .then((r) => (r.ok ? r.json() : null))
      .then((b) => {
        if (b) {
          meta.setAttribute('data-exp', String(b.exp));
          apply(b.token);
          schedule();
        }
      })
      .catch(() => {
        setTimeout(renew, 60000);
      });
  }
  window.emargementSession = {
    token: token,
    fetch: (url, init) => {
      init = init || {};
      var h = new Headers(init.headers || {});
      h.set('authorization', 'Bearer ' + token());
      init.headers = h;
      return fetch(url, init);
    },
  };
  apply(token());
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', () => {
      apply(token());
    });
  }
  schedule();
})();
