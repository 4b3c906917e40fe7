/*
 * One file (~700 lines): the browser loads one script, which is also the worker that sends the beats.
 *
 * Émargement connection-time tracker (beats-v2, docs/time-accounting.md): one tab = one page load (tabId +
 * seq). Every beat says why it was sent (`cause`: periodic, or a stop: hidden, idle, pagehide) and how long
 * ago the last input was (`inputAgoMs`). Periodic beats while the page is visible and the learner active; a
 * stop beat at once on hidden/idle; sendBeacon on pagehide. Coming back starts a new run with a periodic beat
 * at once. Beats that fail are kept (memory, and sessionStorage where the browser allows it) and re-sent with
 * their own seq. Configuration: the JSON of <script type="application/json" id="emargement-tracker-config">.
 *
 * Two ways of running, same items, causes and timing:
 * - With a worker (`workerUrl` in the configuration: this very script, run as a dedicated worker), the
 *   worker keeps the periodic clock, numbers the beats, sends them and retries, off the main thread. The
 *   page observes visibility, input and media and tells the worker what changed (a stop, a new run, media,
 *   the last input at most every INPUT_NOTE_MS); it runs nothing on an ordinary beat. The worker hands the
 *   page the items the page must be able to send itself: the stop beats at once, and anything a failed send
 *   left unacknowledged (for sessionStorage and the pagehide beacon).
 * - Without Worker, or if the worker fails to start or breaks, the page does all of it itself.
 * The pagehide beacon always leaves from the page (a worker may be stopped with it): its items are numbered
 * above anything the worker may have numbered (`reserve`), so they never collide with a worker's beat.
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
  // With a worker: how stale its idea of the last input may get while the learner keeps working (it only
  // feeds the periodic beats' inputAgoMs; the idle stop is decided here, on the exact time).
  const INPUT_NOTE_MS = Math.min(1000, BEAT / 4);
  const meta = document.querySelector('meta[name="emargement-session"]');
  let token = cfg.sessionToken;
  let exp = cfg.sessionExp * 1000;
  let tab;
  let seq;
  let queue;
  let closed;
  let active;
  let lastInput;
  let nextBeat;
  let playing = false;
  let timer;
  let inflight;
  let failures;
  let renewTimer;
  let renewing;
  let worker = null;
  // What the page knows of the worker's numbering, for `reserve`: its next seq as it last reported it, when,
  // and the state messages it had handled by then (`posted` counts those sent).
  let workerNext = 0;
  let reportedAt = 0;
  let posted = 0;
  let handled = 0;
  let heard = false; // the worker has answered for this tab (before that it cannot have numbered anything)
  let inputNotedAt = Number.NEGATIVE_INFINITY;
  let inputNote = null;

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
  const ago = () => Math.max(0, Math.round(now() - lastInput));

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
  function beatItem(cause, media) {
    return { kind: 'beat', cause, inputAgoMs: ago(), media: media ?? mediaPlaying() };
  }

  function beat(cause, media) {
    push(beatItem(cause, media));
    nextBeat = now() + BEAT;
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
    if (worker || inflight || !queue.length || closed) return;
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

  // The first seq the page may number without colliding with one the worker numbered: what the worker last
  // reported, plus what it may have numbered since — a periodic beat per interval at most (one more for the
  // report's travel), and two beats (a stop, a new run's first beat) per state message it had not handled.
  // A seq left unused is harmless: the server only asks that seqs of a tab increase.
  function reserve() {
    if (!heard) return Math.max(seq, workerNext);
    const since = Math.ceil(Math.max(0, now() - reportedAt) / BEAT);
    return Math.max(seq, workerNext + since + 2 + 2 * (posted - handled));
  }

  function onWorkerMessage(e) {
    const m = e.data;
    if (!m || m.tab !== tab || !worker) return;
    heard = true;
    workerNext = m.next;
    reportedAt = now();
    handled = m.handled;
    if (m.items) for (const it of m.items) queue.push(it);
    if (m.acked) {
      const done = new Set(m.acked);
      queue = queue.filter((it) => !done.has(it.seq));
    }
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    if (m.t === 'fail') {
      failures = (failures || 0) + 1;
      if (m.status === 401) renew();
    } else if (m.ok) {
      failures = 0;
    }
    // A fresh queue is stored only after a failure; a stored one is rewritten or cleared as it shrinks.
    if (failures || saved) save(false);
  }

  // With a worker: tell it what changed, and keep the idle deadline (the only timer the page runs then).
  function tellWorker(was, played) {
    if (was !== active || played !== playing) {
      const m = { t: 'state', tab, n: ++posted, active, media: playing, inputAgoMs: ago() };
      // Going hidden or idle: the stop beat. Back in front of the learner: a new run's beat at once.
      if (was && !active)
        m.stop = { cause: document.visibilityState === 'visible' ? 'idle' : 'hidden', media: played || playing };
      else if (active && !was) m.now = true;
      inputNotedAt = now();
      worker.postMessage(m);
    }
    clearTimeout(timer);
    if (active && !playing) timer = setTimeout(update, Math.max(20, lastInput + IDLE - now()));
  }

  // The worker's periodic beats report how long ago the last input was: it learns of inputs at most every
  // INPUT_NOTE_MS (the first at once, the last after that delay), not on every pointer move.
  function noteInput() {
    if (inputNote) return;
    const wait = inputNotedAt + INPUT_NOTE_MS - now();
    if (wait <= 0) sendInputNote();
    else inputNote = setTimeout(sendInputNote, wait);
  }

  function sendInputNote() {
    inputNote = null;
    inputNotedAt = now();
    if (worker && !closed) worker.postMessage({ t: 'input', tab, inputAgoMs: ago() });
  }

  // The worker could not start (no script, a policy forbidding it) or broke: this page sends from now on,
  // everything it holds, numbering above what the worker may have used (what the worker had already
  // delivered comes back as a duplicate: acknowledged), and keeps the beat clock itself.
  function workerFailed(e) {
    e?.preventDefault?.();
    if (!worker) return;
    seq = reserve();
    worker.terminate();
    worker = null;
    clearTimeout(inputNote);
    inputNote = null;
    if (closed) return;
    nextBeat = now() + BEAT;
    flush();
    update();
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
    if (worker) return tellWorker(was, played);
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
    else if (worker) noteInput();
  }

  function start() {
    tab = uuid();
    seq = 0;
    queue = [];
    closed = false;
    failures = 0;
    lastInput = now(); // the page load itself is the learner's doing
    nextBeat = now() + BEAT;
    push({ kind: 'open' });
    playing = mediaPlaying();
    active = isActive(playing);
    if (worker) {
      // The worker numbers everything after the `open` and keeps the clock (first beat one interval after it).
      workerNext = seq;
      reportedAt = now();
      posted = 0;
      handled = 0;
      heard = false;
      inputNotedAt = now();
      worker.postMessage({
        t: 'tab',
        tab,
        ticket: cfg.ticket,
        token: currentToken(),
        endpoint: cfg.endpoint,
        beatMs: BEAT,
        next: seq,
        items: queue.slice(),
        active,
        media: playing,
      });
      return tellWorker(active, playing);
    }
    flush();
    update();
  }

  function onPageHide() {
    if (closed) return;
    if (worker) {
      seq = reserve();
      if (active && document.visibilityState === 'visible') push(beatItem('pagehide'));
      clearTimeout(inputNote);
    } else if (active && document.visibilityState === 'visible') {
      beat('pagehide');
    }
    push({ kind: 'close' });
    closed = true;
    clearTimeout(timer);
    worker?.postMessage({ t: 'close', tab });
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
  // immutable, so the worker's copy comes from the HTTP cache, no second download). It keeps the periodic
  // clock while the page says the learner is active, numbers the beats after the page's `open`, and sends
  // them in order, one request at a time, as the page does without a worker.
  // From the page: {t: 'tab', tab, ticket, token, endpoint, beatMs, next, items, active, media} (a new tab: its
  // first seq to number, the page's `open`; the previous tab is dropped), {t: 'state', tab, n, active, media,
  // inputAgoMs, stop?: {cause, media}, now?} (the n-th change: a stop beat to send, a new run to start at
  // once, media), {t: 'input', tab, inputAgoMs}, {t: 'auth', token, ticket?} (a renewed session token or
  // ticket), {t: 'close', tab} (the page is going away: its own beacon sends what it holds).
  // To the page, {t: 'items' | 'fail', tab, next, handled, items?, acked?, ok?, status?}: the next seq and the
  // last state message handled; `items` the page must hold from now on (a stop beat at once, anything a failed
  // send left unacknowledged); `acked` those of the page's items now acknowledged. Nothing is posted for a beat
  // acknowledged at its first send: an ordinary beat costs the page nothing.
  function senderWorker() {
    const MAX_BATCH = 50;
    const MAX_QUEUE = 500;
    const now = () => performance.now();
    let tab = null;
    let seq = 0;
    let queue = []; // numbered, not acknowledged yet
    let unreported = []; // numbered items the page does not hold
    let held = new Set(); // seqs of queued items the page holds
    let acked = []; // seqs of the page's items acknowledged since the last report
    let closed = false;
    let inflight = false;
    let failures = 0;
    let token = '';
    let ticket = '';
    let endpoint = '';
    let beatMs = 20000;
    let active = false;
    let media = false;
    let inputAt = 0;
    let nextBeat = 0;
    let timer = null;
    let handled = 0;

    function report(t, extra) {
      const m = { t, tab, next: seq, handled, ...extra };
      if (unreported.length) {
        m.items = unreported;
        for (const it of unreported) held.add(it.seq);
        unreported = [];
      }
      if (acked.length) {
        m.acked = acked;
        acked = [];
      }
      self.postMessage(m);
    }

    function beat(cause, mediaNow) {
      const item = {
        kind: 'beat',
        cause,
        inputAgoMs: Math.max(0, Math.round(now() - inputAt)),
        media: mediaNow,
        seq: seq++,
        clientTime: new Date().toISOString(),
      };
      queue.push(item);
      unreported.push(item);
      if (queue.length > MAX_QUEUE) {
        const dropped = new Set(queue.splice(0, queue.length - MAX_QUEUE).map((it) => it.seq));
        unreported = unreported.filter((it) => !dropped.has(it.seq));
        for (const s of dropped) held.delete(s);
      }
      nextBeat = now() + beatMs;
    }

    function schedule() {
      clearTimeout(timer);
      timer = active && !closed ? setTimeout(tick, Math.max(20, nextBeat - now())) : null;
    }

    function tick() {
      timer = null;
      if (!active || closed) return;
      beat('periodic', media);
      schedule();
      flush();
    }

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

    // The page gets what is unacknowledged (for storage and its beacon) and the failure; retried after a pause.
    function retry(status) {
      failures++;
      report('fail', { status: status || 0 });
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
          if (sentTab !== tab) return flush();
          if (!b.results) return retry(b.status);
          failures = 0;
          // `received` and `duplicate` are durably queued: acknowledged; `deferred` stays.
          const done = new Set(
            b.status ? batch.map((it) => it.seq) : b.results.filter((r) => r.status !== 'deferred').map((r) => r.seq),
          );
          const left = batch.filter((it) => !done.has(it.seq));
          queue = left.concat(queue.slice(batch.length));
          unreported = unreported.filter((it) => !done.has(it.seq));
          for (const s of done) if (held.delete(s)) acked.push(s);
          if (acked.length) report('items', { ok: true });
          if (queue.length > left.length) flush();
          else if (left.length) retry(0);
        })
        .catch(() => {
          inflight = false;
          if (sentTab === tab) retry(0);
          else flush();
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
      if (m.t === 'tab') {
        tab = m.tab;
        seq = m.next;
        queue = m.items.slice();
        held = new Set(queue.map((it) => it.seq));
        unreported = [];
        acked = [];
        closed = false;
        failures = 0;
        handled = 0;
        token = m.token;
        ticket = m.ticket;
        endpoint = m.endpoint;
        beatMs = m.beatMs;
        active = m.active;
        media = m.media;
        inputAt = now();
        nextBeat = now() + beatMs;
        schedule();
        report('items', {}); // the page now knows this worker runs: nothing is numbered yet
        flush();
        return;
      }
      if (m.tab !== tab) return;
      if (m.t === 'close') {
        closed = true;
        clearTimeout(timer);
        timer = null;
        return;
      }
      inputAt = now() - m.inputAgoMs;
      if (m.t !== 'state') return;
      handled = m.n;
      if (m.stop) beat(m.stop.cause, m.stop.media);
      active = m.active;
      media = m.media;
      if (active && m.now) beat('periodic', media);
      schedule();
      // A stop beat is the page's to hold at once: its beacon must be able to send it if the page goes now.
      if (m.stop) report('items', {});
      flush();
    };
  }
})();
