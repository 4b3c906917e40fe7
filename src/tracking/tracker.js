/*
 * One file (~500 lines): the browser loads one script, which is also the worker that sends the beats.
 *
 * Émargement connection-time tracker (beats-v2, docs/time-accounting.md): one tab = one page load (tabId +
 * seq). Every beat says why it was sent (`cause`: periodic, or a stop: hidden, idle, pagehide) and how long
 * ago the last input was (`inputAgoMs`). Periodic beats while the page is visible and the learner active; a
 * stop beat at once on hidden/idle; sendBeacon on pagehide. Coming back starts a new run with a periodic beat
 * at once. Beats that fail are kept (memory, and sessionStorage where the browser allows it) and re-sent with
 * their own seq. Configuration: the JSON of <script type="application/json" id="emargement-tracker-config">.
 * Sending: when the configuration names a worker (`workerUrl`: this very script), the beats' fetch and its
 * acknowledgement run there, off the main thread; this script then only posts the new items to it and drops
 * what it reports acknowledged. Without Worker, or if the worker fails to start, this page sends them itself.
 * The pagehide beacon always leaves from the page (a worker may be stopped with it).
 * Silent on purpose: it never writes to the console.
 */
(() => {
  if (typeof document === 'undefined') {
    senderWorker();
    return;
  }
  const el = document.getElementById('emargement-tracker-config');
  if (!el || !window.fetch || window.emargementTracker) return;
  let cfg;
  try {
    cfg = JSON.parse(el.textContent || '');
  } catch {
    return;
  }
  const BEAT = cfg.beatMs;
  const IDLE = cfg.idleMs;
  const MAX_BATCH = 50;
  const MAX_QUEUE = 500;
  const KEY = 'emargement-tracker:';
  const INPUTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'scroll', 'touchstart'];
  const meta = document.querySelector('meta[name="emargement-session"]');
  let token = cfg.sessionToken;
  let exp = cfg.sessionExp * 1000;
  let tab;
  let seq;
  let queue;
  let closed;
  let active;
  let lastInput;
  let lastBeat;
  let nextBeat;
  let playing = false;
  let timer;
  let inflight;
  let failures;
  let renewTimer;
  let renewing;
  let worker = null;
  let nextPost = 0; // the first seq of the current tab not yet given to the worker

  const now = () => performance.now();

  function uuid() {
    if (window.crypto?.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // The launch page's own session helper may hold a fresher token (it renews it too): use the later one.
  function currentToken() {
    if (meta) {
      const t = meta.getAttribute('content');
      const e = Number(meta.getAttribute('data-exp')) * 1000;
      if (t && e > exp) {
        token = t;
        exp = e;
      }
    }
    return token;
  }

  function scheduleRenew() {
    clearTimeout(renewTimer);
    const margin = Math.min(300000, Math.max(5000, (exp - Date.now()) / 4));
    renewTimer = setTimeout(renew, Math.max(0, exp - Date.now() - margin));
  }

  function retryRenew() {
    renewing = false;
    clearTimeout(renewTimer);
    renewTimer = setTimeout(renew, Math.min(60000, BEAT * 2));
  }

  function renew() {
    const before = exp;
    currentToken();
    if (exp > before) {
      renewTicket(); // the launch page's session helper renewed the token: the ticket follows it
      return scheduleRenew();
    }
    if (renewing || !cfg.renewEndpoint) return scheduleRenew();
    renewing = true;
    fetch(cfg.renewEndpoint, { method: 'POST', headers: { authorization: `Bearer ${token}` }, credentials: 'omit' })
      .then((r) => (r.ok ? r.json() : null))
      .then((b) => {
        renewing = false;
        const t = b && (b.token || b.sessionToken);
        if (!t) return retryRenew();
        token = t;
        exp = Number(b.exp) * 1000;
        worker?.postMessage({ t: 'auth', token: t });
        if (meta) {
          meta.setAttribute('content', t);
          meta.setAttribute('data-exp', String(b.exp));
        }
        renewTicket();
        scheduleRenew();
      })
      .catch(retryRenew);
  }

  // Live collections: read on every beat without a selector match or an allocation.
  const videos = document.getElementsByTagName('video');
  const audios = document.getElementsByTagName('audio');
  function mediaPlaying() {
    for (const list of [videos, audios]) {
      for (let i = 0; i < list.length; i++) if (!list[i].paused && !list[i].ended) return true;
    }
    return false;
  }

  const isActive = (media) => document.visibilityState === 'visible' && (now() - lastInput < IDLE || media);

  // Looked up once: a cross-site frame whose storage is blocked throws on every access, and a throw is dear.
  let store;
  function storage() {
    if (store === undefined) {
      try {
        store = window.sessionStorage;
      } catch {
        store = null;
      }
    }
    return store;
  }

  // sessionStorage holds what is not acknowledged yet once a send failed, and everything at pagehide (`done`,
  // what the next page adopts). A beat acknowledged at its first send never touches storage.
  let saved = false;
  function save(done) {
    const s = storage();
    if (!s) return;
    try {
      if (queue.length) {
        // After pagehide every write keeps the mark (a send still in flight may fail or shrink the queue).
        s.setItem(KEY + tab, JSON.stringify({ tabId: tab, ticket: cfg.ticket, items: queue, done: done || closed }));
        saved = true;
      } else if (saved) {
        s.removeItem(KEY + tab);
        saved = false;
      }
    } catch {
      // Full or forbidden: memory only.
    }
  }

  function push(item) {
    item.seq = seq++;
    item.clientTime = new Date().toISOString();
    queue.push(item);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    if (failures) save(false);
  }

  // `media`: a video or audio element kept the page active up to this beat (for an idle beat sent because
  // the video stopped, it was playing until now: the run ends here, not 180 s after the last input).
  function beat(cause, media) {
    const ago = Math.round(now() - lastInput);
    push({ kind: 'beat', cause, inputAgoMs: Math.max(0, ago), media: media ?? mediaPlaying() });
    lastBeat = now();
    nextBeat = lastBeat + BEAT;
    flush();
  }

  // The ticket lives as long as the session: renewed right after it, later items travel with the new one.
  function renewTicket() {
    if (!cfg.ticketEndpoint) return;
    fetch(cfg.ticketEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${currentToken()}` },
      body: JSON.stringify({ ticket: cfg.ticket }),
      credentials: 'omit',
    })
      .then((r) => (r.ok ? r.json() : null))
      .then((b) => {
        if (!b || typeof b.ticket !== 'string' || !b.ticket) return;
        cfg.ticket = b.ticket;
        worker?.postMessage({ t: 'auth', token: currentToken(), ticket: b.ticket });
      })
      .catch(() => {});
  }

  function body(tabId, ticket, items, withToken) {
    const b = { tabId, ticket, items };
    if (withToken) b.session_token = currentToken();
    return JSON.stringify(b);
  }

  // A refused batch (malformed, or not this learner's) never gets better by waiting: it is dropped.
  function post(tabId, ticket, items) {
    return fetch(cfg.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${currentToken()}` },
      body: body(tabId, ticket, items, false),
      credentials: 'omit',
    }).then((r) =>
      r.ok
        ? r.json()
        : { status: r.status, results: r.status === 400 || r.status === 403 || r.status === 413 ? [] : null },
    );
  }

  // Keeps only what the server deferred; `received` and `duplicate` are durably queued: acknowledged.
  function acknowledge(items, b) {
    if (b.status) return [];
    const done = new Set(b.results.filter((r) => r.status !== 'deferred').map((r) => r.seq));
    return items.filter((it) => !done.has(it.seq));
  }

  function retry() {
    failures = (failures || 0) + 1;
    save(false);
    setTimeout(flush, Math.min(BEAT, 250 * 2 ** Math.min(failures, 8)));
  }

  function flush() {
    if (worker) return postToWorker();
    if (inflight || !queue.length || closed) return;
    inflight = true;
    const batch = queue.slice(0, MAX_BATCH);
    const sentTab = tab;
    post(tab, cfg.ticket, batch)
      .then((b) => {
        inflight = false;
        if (sentTab !== tab) return;
        if (!b.results) {
          if (b.status === 401) renew();
          return retry();
        }
        failures = 0;
        const left = acknowledge(batch, b);
        queue = left.concat(queue.slice(batch.length));
        if (saved) save(false); // rewrite or clear a stored queue; a fresh one is stored only after a failure
        if (queue.length > left.length) flush();
        else if (left.length) retry();
      })
      .catch(() => {
        inflight = false;
        retry();
      });
  }

  // The items the worker has not been given yet (it keeps its own queue of what it has not sent).
  function postToWorker() {
    if (closed) return;
    const items = [];
    for (const it of queue) if (it.seq >= nextPost) items.push(it);
    if (!items.length) return;
    nextPost = seq;
    const t = currentToken();
    worker.postMessage({ t: 'items', tab, ticket: cfg.ticket, token: t, endpoint: cfg.endpoint, beatMs: BEAT, items });
  }

  function onWorkerMessage(e) {
    const m = e.data;
    if (!m || m.tab !== tab) return;
    if (m.t === 'ack') {
      failures = 0;
      const done = new Set(m.seqs);
      queue = queue.filter((it) => !done.has(it.seq));
      if (saved) save(false); // rewrite or clear a stored queue; a fresh one is stored only after a failure
    } else if (m.t === 'fail') {
      failures = (failures || 0) + 1;
      save(false);
      if (m.status === 401) renew();
    }
  }

  // The worker could not start (no script, a policy forbidding it) or broke: this page sends from now on,
  // everything not acknowledged (what the worker may have sent already comes back as a duplicate: acknowledged).
  function workerFailed(e) {
    e?.preventDefault?.();
    if (!worker) return;
    worker.terminate();
    worker = null;
    flush();
  }

  function startWorker() {
    if (!cfg.workerUrl || typeof Worker !== 'function') return;
    try {
      worker = new Worker(cfg.workerUrl);
    } catch {
      worker = null;
      return;
    }
    worker.onmessage = onWorkerMessage;
    worker.onerror = workerFailed;
  }

  function update() {
    if (closed) return;
    const was = active;
    const played = playing;
    playing = mediaPlaying();
    active = isActive(playing);
    const t = now();
    if (was && !active) {
      beat(document.visibilityState === 'visible' ? 'idle' : 'hidden', played || playing);
    } else if (active && !was) {
      // Back in front of the learner: the stop ended the run, this beat starts a new one at once.
      nextBeat = t;
    }
    if (active && now() >= nextBeat) beat('periodic', playing);
    clearTimeout(timer);
    if (!active) return;
    const wake = playing ? nextBeat : Math.min(nextBeat, lastInput + IDLE);
    timer = setTimeout(update, Math.max(20, wake - now()));
  }

  function onInput() {
    lastInput = now();
    if (!active) update();
  }

  function start() {
    tab = uuid();
    seq = 0;
    nextPost = 0;
    queue = [];
    closed = false;
    failures = 0;
    lastInput = now(); // the page load itself is the learner's doing
    lastBeat = Number.NEGATIVE_INFINITY;
    nextBeat = now() + BEAT;
    push({ kind: 'open' });
    active = isActive(mediaPlaying());
    flush();
    update();
  }

  function onPageHide() {
    if (closed) return;
    if (active && document.visibilityState === 'visible') beat('pagehide');
    push({ kind: 'close' });
    closed = true;
    clearTimeout(timer);
    worker?.postMessage({ t: 'close' });
    save(true);
    const data = new Blob([body(tab, cfg.ticket, queue.slice(-MAX_BATCH), true)], { type: 'text/plain;charset=UTF-8' });
    let sent = false;
    try {
      sent = navigator.sendBeacon?.(cfg.endpoint, data) ?? false;
    } catch {
      sent = false;
    }
    if (!sent) {
      // The items stay in sessionStorage for the next page if this fails too.
      fetch(cfg.endpoint, { method: 'POST', body: data, keepalive: true, credentials: 'omit' }).catch(() => {});
    }
  }

  // Items left by earlier pages of this browsing session (closed before delivery): sent once more.
  function sendOrphan(k, o) {
    post(o.tabId, o.ticket, o.items.slice(0, MAX_BATCH))
      .then((b) => {
        if (b.results) storage()?.removeItem(k);
      })
      .catch(() => {});
  }

  function adoptOrphans() {
    const s = storage();
    if (!s) return;
    try {
      for (let i = s.length - 1; i >= 0; i--) {
        const k = s.key(i);
        if (!k?.startsWith(KEY) || k === KEY + tab) continue;
        const o = JSON.parse(s.getItem(k) || 'null');
        if (o?.done && o.items?.length) sendOrphan(k, o);
      }
    } catch {
      // Unreadable storage: nothing to adopt.
    }
  }

  for (const name of INPUTS) window.addEventListener(name, onInput, { capture: true, passive: true });
  document.addEventListener('visibilitychange', update);
  document.addEventListener('play', update, true);
  document.addEventListener('pause', update, true);
  document.addEventListener('ended', update, true);
  window.addEventListener('pagehide', onPageHide);
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) start(); // restored from the back/forward cache: a new page view, a new tab
  });
  window.emargementTracker = {
    tabId: () => tab,
    pending: () => queue.length,
    sender: () => (worker ? 'worker' : 'page'),
  };
  startWorker();
  start();
  adoptOrphans();
  scheduleRenew();

  // The sender, when this same file runs as a dedicated worker (`new Worker(<this script's URL>)`: served
  // immutable, so the worker's copy comes from the HTTP cache, no second download). It sends what the page
  // gives it, in order, one request at a time, as the page does without a worker, and reports back.
  // From the page: {t: 'items', tab, ticket, token, endpoint, beatMs, items} (new items of tab `tab`; a new tab
  // drops the previous one's queue), {t: 'auth', token, ticket?} (a renewed session token or ticket), {t: 'close'} (the page is
  // going away: its own beacon sends what is left). To the page: {t: 'ack', tab, seqs} (acknowledged items),
  // {t: 'fail', tab, status} (a send failed or left deferred items: retried here after a pause).
  function senderWorker() {
    const MAX_BATCH = 50;
    const MAX_QUEUE = 500;
    let tab = null;
    let queue = [];
    let closed = false;
    let inflight = false;
    let failures = 0;
    let token = '';
    let ticket = '';
    let endpoint = '';
    let beatMs = 20000;

    // A refused batch (malformed, or not this learner's) never gets better by waiting: it is dropped.
    function post(items) {
      return fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ tabId: tab, ticket, items }),
        credentials: 'omit',
      }).then((r) =>
        r.ok
          ? r.json()
          : { status: r.status, results: r.status === 400 || r.status === 403 || r.status === 413 ? [] : null },
      );
    }

    function retry(status) {
      failures++;
      self.postMessage({ t: 'fail', tab, status: status || 0 });
      setTimeout(flush, Math.min(beatMs, 250 * 2 ** Math.min(failures, 8)));
    }

    function flush() {
      if (inflight || !queue.length || closed) return;
      inflight = true;
      const batch = queue.slice(0, MAX_BATCH);
      const sentTab = tab;
      post(batch)
        .then((b) => {
          inflight = false;
          if (sentTab !== tab) return;
          if (!b.results) return retry(b.status);
          failures = 0;
          // `received` and `duplicate` are durably queued: acknowledged; `deferred` stays.
          const done = new Set(
            b.status ? batch.map((it) => it.seq) : b.results.filter((r) => r.status !== 'deferred').map((r) => r.seq),
          );
          const left = batch.filter((it) => !done.has(it.seq));
          queue = left.concat(queue.slice(batch.length));
          self.postMessage({ t: 'ack', tab, seqs: batch.filter((it) => done.has(it.seq)).map((it) => it.seq) });
          if (queue.length > left.length) flush();
          else if (left.length) retry(0);
        })
        .catch(() => {
          inflight = false;
          if (sentTab === tab) retry(0);
        });
    }

    self.onmessage = (e) => {
      const m = e.data;
      if (!m) return;
      if (m.t === 'auth') {
        token = m.token;
        if (m.ticket) ticket = m.ticket;
        return;
      }
      if (m.t === 'close') {
        closed = true;
        return;
      }
      if (m.t !== 'items') return;
      if (m.tab !== tab) {
        tab = m.tab;
        queue = [];
        closed = false;
        failures = 0;
      }
      token = m.token;
      ticket = m.ticket;
      endpoint = m.endpoint;
      beatMs = m.beatMs;
      for (const it of m.items) queue.push(it);
      if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
      flush();
    };
  }
})();
