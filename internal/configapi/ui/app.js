// Outrigger config dashboard (read-only). Talks to the JSON API of
// docs/api.md with the user's bearer token (sessionStorage, this tab only).
// Every piece of data reaches the DOM through textContent or attributes,
// never parsed as markup. No build step, no dependencies.
'use strict';

(() => {
  const TOKEN_KEY = 'outrigger.token';
  const WAIT = '30s'; // long-poll length of GET /v1/configs/{name}?wait=
  const STATUS_EVERY_MS = 2000;
  const LIST_EVERY_MS = 5000;
  const CONTEXT = 3; // unchanged lines shown around each change
  const { diffLines, splitLines } = window.OutriggerDiff; // diff.js

  const $ = (id) => document.getElementById(id);

  // ---- state -------------------------------------------------------------

  const state = {
    name: '', // selected config, '' = none
    gen: 0, // bumped on every selection; stale async results are dropped
    abort: null, // AbortController of the selected config's loops
    latest: 0,
    history: [], // version JSON, oldest first
    contents: new Map(), // version -> Promise<{text, binary, size}>
    contentPick: 0, // 0 = follow the latest version
    diffPicked: false, // the user chose A/B: keep them when new versions arrive
    diffA: 0,
    diffB: 0,
    status: null,
    configs: [],
    errors: new Map(), // source -> message
  };

  // ---- small helpers -----------------------------------------------------

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) tr.append(c);
    return tr;
  }

  function td(content, cls) {
    const c = el('td', null, cls);
    if (content instanceof Node) c.append(content);
    else if (content !== undefined && content !== null) c.textContent = String(content);
    return c;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }

  function humanSize(n) {
    if (!Number.isFinite(n)) return '';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1024 / 1024).toFixed(1) + ' MiB';
  }

  function absTime(s) {
    const d = new Date(s);
    if (Number.isNaN(d.getTime()) || d.getTime() <= 0) return '';
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function relTime(s) {
    const d = new Date(s);
    if (Number.isNaN(d.getTime()) || d.getTime() <= 0) return '';
    const sec = Math.round((Date.now() - d.getTime()) / 1000);
    if (sec < 5) return 'just now';
    if (sec < 60) return sec + ' s ago';
    if (sec < 3600) return Math.floor(sec / 60) + ' min ago';
    if (sec < 86400) return Math.floor(sec / 3600) + ' h ago';
    return Math.floor(sec / 86400) + ' d ago';
  }

  // timeEl shows a relative time with the absolute UTC time as its title.
  function timeEl(s, relative) {
    const t = el('time', relative ? relTime(s) : absTime(s));
    t.className = 'nowrap';
    t.dateTime = s || '';
    t.title = absTime(s);
    return t;
  }

  function shortType(ct) {
    return String(ct || '').replace(/^application\//, '').replace(/^text\//, '');
  }

  // ---- API ---------------------------------------------------------------

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return ''; }
  }

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, opts = {}) {
    const headers = new Headers(opts.headers || {});
    const tok = token();
    if (tok) headers.set('Authorization', 'Bearer ' + tok);
    const res = await fetch(path, { headers, signal: opts.signal, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (res.status === 304 || res.ok) return res;
    let msg = res.status + ' ' + res.statusText;
    try {
      const j = await res.json();
      if (j && typeof j.error === 'string') msg = j.error;
    } catch (_) { /* not JSON */ }
    if (res.status === 401) msg += ' — enter an API token above';
    throw new APIError(res.status, msg);
  }

  const cfgPath = (name) => '/v1/configs/' + encodeURIComponent(name);
  const aborted = (e) => e && e.name === 'AbortError';

  function setError(source, err) {
    if (err) state.errors.set(source, err.message || String(err));
    else state.errors.delete(source);
    const box = $('error');
    const msgs = [...new Set(state.errors.values())];
    box.textContent = msgs.join(' · ');
    box.hidden = msgs.length === 0;
  }

  // markLive: the server answers (a watch ended normally, or a status poll
  // succeeded while the watch is not failing).
  function markLive() {
    setLive('live', 'live · watching ' + state.name);
  }

  function setLive(st, text) {
    const l = $('live');
    l.dataset.state = st;
    l.textContent = text;
  }

  // ---- config list -------------------------------------------------------

  async function refreshList() {
    try {
      const res = await api('/v1/configs');
      const j = await res.json();
      state.configs = Array.isArray(j.configs) ? j.configs : [];
      setError('list', null);
    } catch (e) {
      setError('list', e);
    }
    renderList();
  }

  function renderList() {
    const body = $('configs').tBodies[0];
    const rows = [...state.configs].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    body.replaceChildren(...rows.map((c) => {
      const a = el('a', c.name);
      a.href = '#/config/' + encodeURIComponent(c.name);
      if (c.name === state.name) a.setAttribute('aria-current', 'true');
      const tr = row([td(a), td(c.version, 'num'), td(shortType(c.content_type)), td(humanSize(c.size), 'num'), td(timeEl(c.created, true))]);
      if (c.name === state.name) tr.className = 'selected';
      return tr;
    }));
    $('configs-empty').hidden = rows.length > 0 || state.errors.has('list');
  }

  // ---- selected config ---------------------------------------------------

  function select(name) {
    if (state.abort) state.abort.abort();
    state.gen++;
    Object.assign(state, {
      name, latest: 0, history: [], contents: new Map(), contentPick: 0,
      diffPicked: false, diffA: 0, diffB: 0, status: null, abort: null,
    });
    for (const k of ['watch', 'history', 'status', 'content', 'diff']) setError(k, null);
    $('detail').hidden = !name;
    $('placeholder').hidden = !!name;
    renderList();
    if (!name) {
      setLive('idle', 'no config selected');
      return;
    }
    document.title = name + ' · Outrigger configs';
    setLive('idle', 'connecting…');
    $('detail-name').textContent = name;
    $('detail-latest').textContent = '';
    $('detail-meta').textContent = '';
    for (const id of ['rollout', 'history', 'diff']) $(id).tBodies[0].replaceChildren();
    $('content').textContent = '';
    $('rollout-summary').textContent = '';
    state.abort = new AbortController();
    const gen = state.gen;
    const signal = state.abort.signal;
    loadHistory(gen).then(() => {
      watchLoop(gen, signal);
      statusLoop(gen, signal);
    });
  }

  // loadHistory fetches the version list and re-renders what depends on it.
  async function loadHistory(gen) {
    try {
      const res = await api(cfgPath(state.name) + '/history');
      const j = await res.json();
      if (gen !== state.gen) return;
      state.history = Array.isArray(j.versions) ? j.versions : [];
      const last = state.history[state.history.length - 1];
      state.latest = Math.max(state.latest, last ? last.version : 0);
      setError('history', null);
    } catch (e) {
      if (gen === state.gen) setError('history', e);
      return;
    }
    if (!state.diffPicked) {
      state.diffB = state.latest;
      state.diffA = Math.max(1, state.latest - 1);
    }
    renderDetail();
    renderContent(gen);
    renderDiff(gen);
    if (state.status) renderStatus();
  }

  // watchLoop long-polls the selected config: a 200 means a new version
  // (its body is the content, kept for the content and diff views), a 304
  // that the wait ended without one.
  async function watchLoop(gen, signal) {
    let backoff = 1000;
    while (gen === state.gen && !signal.aborted) {
      try {
        const res = await api(cfgPath(state.name) + '?wait=' + WAIT, {
          signal, headers: { 'If-None-Match': '"' + state.latest + '"' },
        });
        if (gen !== state.gen) return;
        backoff = 1000;
        setError('watch', null);
        markLive();
        if (res.status === 200) {
          const v = parseInt(res.headers.get('X-Outrigger-Version') || '0', 10);
          const buf = await res.arrayBuffer();
          if (gen !== state.gen) return;
          if (v > 0) state.contents.set(v, Promise.resolve(decode(buf, res.headers.get('Content-Type'))));
          state.latest = Math.max(state.latest, v);
          await loadHistory(gen);
          refreshList();
          pollStatus(gen);
        }
      } catch (e) {
        if (aborted(e) || gen !== state.gen) return;
        setError('watch', e);
        setLive('error', 'watch failed · retrying in ' + Math.round(backoff / 1000) + ' s');
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 15000);
      }
    }
  }

  async function statusLoop(gen, signal) {
    while (gen === state.gen && !signal.aborted) {
      await pollStatus(gen);
      await sleep(STATUS_EVERY_MS, signal);
    }
  }

  async function pollStatus(gen) {
    try {
      const res = await api(cfgPath(state.name) + '/status');
      const j = await res.json();
      if (gen !== state.gen) return;
      state.status = j;
      setError('status', null);
      if (!state.errors.has('watch')) markLive();
      if (j.latest > state.latest) {
        // The status saw a version before the long-poll did.
        state.latest = j.latest;
        await loadHistory(gen);
        return;
      }
    } catch (e) {
      if (gen === state.gen && !(e instanceof APIError && e.status === 404)) setError('status', e);
      return;
    }
    renderStatus();
  }

  function renderDetail() {
    const latest = state.history[state.history.length - 1];
    $('detail-latest').textContent = state.latest ? 'v' + state.latest : '';
    $('detail-meta').textContent = latest
      ? [shortType(latest.content_type), humanSize(latest.size), 'updated ' + absTime(latest.created), latest.author ? 'by ' + latest.author : ''].filter(Boolean).join(' · ')
      : '';
    const shown = state.contentPick || state.latest;
    $('history').tBodies[0].replaceChildren(...[...state.history].reverse().map((v) => {
      const view = el('button', 'View');
      view.type = 'button';
      view.setAttribute('aria-label', 'View version ' + v.version);
      view.addEventListener('click', () => {
        state.contentPick = v.version === state.latest ? 0 : v.version;
        renderDetail();
        renderContent(state.gen);
        $('content-h').scrollIntoView({ block: 'start' });
      });
      const cells = [td(v.version, 'num'), td(timeEl(v.created, false), 'nowrap'), td(v.author || '—'), td(shortType(v.content_type)),
        td(humanSize(v.size), 'num'), td(String(v.sha256 || '').slice(0, 12), 'sha'), td(view, 'actions')];
      cells[5].title = v.sha256 || '';
      if (v.version > 1) {
        const cmp = el('button', 'Diff');
        cmp.type = 'button';
        cmp.setAttribute('aria-label', 'Compare version ' + (v.version - 1) + ' with ' + v.version);
        cmp.addEventListener('click', () => {
          Object.assign(state, { diffPicked: true, diffA: v.version - 1, diffB: v.version });
          renderSelects();
          renderDiff(state.gen);
          $('diff-h').scrollIntoView({ block: 'start' });
        });
        cells[6].append(cmp);
      }
      const tr = row(cells);
      if (v.version === shown) tr.className = 'shown';
      return tr;
    }));
    renderSelects();
  }

  function fillSelect(sel, options, value) {
    sel.replaceChildren(...options.map(([v, label]) => {
      const o = el('option', label);
      o.value = String(v);
      return o;
    }));
    sel.value = String(value);
  }

  function renderSelects() {
    const vs = [...state.history].reverse().map((v) => [v.version, 'v' + v.version + ' · ' + absTime(v.created)]);
    fillSelect($('content-version'), [[0, 'latest (v' + state.latest + ')'], ...vs], state.contentPick);
    fillSelect($('diff-a'), vs, state.diffA);
    fillSelect($('diff-b'), vs, state.diffB);
  }

  // ---- content -----------------------------------------------------------

  function decode(buf, contentType) {
    const size = buf.byteLength;
    if (/x-tar|octet-stream/.test(contentType || '')) return { text: null, binary: true, size };
    try {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
      if (text.includes('\u0000')) return { text: null, binary: true, size };
      return { text, binary: false, size };
    } catch (_) {
      return { text: null, binary: true, size };
    }
  }

  function content(version) {
    let p = state.contents.get(version);
    if (!p) {
      p = api(cfgPath(state.name) + '?version=' + version)
        .then(async (res) => decode(await res.arrayBuffer(), res.headers.get('Content-Type')));
      p.catch(() => state.contents.delete(version)); // retry on next render
      state.contents.set(version, p);
    }
    return p;
  }

  async function renderContent(gen) {
    const v = state.contentPick || state.latest;
    if (!v) return;
    const meta = state.history.find((h) => h.version === v);
    $('content-type').textContent = meta ? meta.content_type : '';
    try {
      const c = await content(v);
      if (gen !== state.gen || v !== (state.contentPick || state.latest)) return;
      $('content').textContent = c.binary ? '(binary content, ' + humanSize(c.size) + ': not shown)' : c.text;
      setError('content', null);
    } catch (e) {
      if (gen === state.gen) setError('content', e);
    }
  }

  // ---- diff --------------------------------------------------------------

  async function renderDiff(gen) {
    const body = $('diff').tBodies[0];
    const stat = $('diff-stat');
    const va = state.diffA, vb = state.diffB;
    if (!va || !vb) { body.replaceChildren(); stat.textContent = ''; return; }
    let ca, cb;
    try {
      [ca, cb] = await Promise.all([content(va), content(vb)]);
    } catch (e) {
      if (gen === state.gen) setError('diff', e);
      return;
    }
    if (gen !== state.gen || va !== state.diffA || vb !== state.diffB) return;
    setError('diff', null);
    $('diff').hidden = va === vb || ca.binary || cb.binary;
    if (va === vb) {
      body.replaceChildren();
      stat.textContent = state.history.length > 1 ? 'A and B are the same version' : 'only one version so far';
      return;
    }
    if (ca.binary || cb.binary) {
      body.replaceChildren();
      stat.textContent = 'binary content: no line diff';
      return;
    }
    const a = splitLines(ca.text), b = splitLines(cb.text);
    const ops = diffLines(a, b);
    const added = ops.filter((o) => o[0] === '+').length;
    const removed = ops.filter((o) => o[0] === '-').length;
    stat.textContent = (added || removed) ? '+' + added + ' −' + removed + ' lines' : 'no differences (same content)';
    const full = $('diff-full').checked;
    const near = new Uint8Array(ops.length); // 1 = show this line
    ops.forEach((o, i) => {
      if (o[0] !== '=' || full) near[i] = 1;
      else return;
      if (full) return;
      for (let j = Math.max(0, i - CONTEXT); j <= Math.min(ops.length - 1, i + CONTEXT); j++) near[j] = 1;
    });
    const rows = [];
    for (let i = 0; i < ops.length;) {
      if (!near[i]) {
        let j = i;
        while (j < ops.length && !near[j]) j++;
        const c = td('⋯ ' + (j - i) + ' unchanged line' + (j - i === 1 ? '' : 's'));
        c.colSpan = 4;
        const tr = row([c]);
        tr.className = 'skip';
        rows.push(tr);
        i = j;
        continue;
      }
      const [op, x, y] = ops[i];
      const text = op === '+' ? b[y] : a[x];
      const sign = op === '=' ? ' ' : op === '+' ? '+' : '−';
      const tr = row([td(op === '+' ? '' : x + 1, 'num'), td(op === '-' ? '' : y + 1, 'num'), td(sign, 'sign'), td(text, 'text')]);
      tr.className = op === '+' ? 'add' : op === '-' ? 'del' : 'ctx';
      rows.push(tr);
      i++;
    }
    body.replaceChildren(...rows);
  }

  // ---- rollout -----------------------------------------------------------

  function renderStatus() {
    const rep = state.status;
    if (!rep) return;
    const latest = Math.max(state.latest, rep.latest || 0);
    const cars = Array.isArray(rep.sidecars) ? rep.sidecars : [];
    const bad = (s) => s.outcome !== 'applied';
    const behind = (s) => s.version < latest;
    const rank = (s) => (bad(s) ? 0 : behind(s) ? 1 : 2);
    const sorted = [...cars].sort((p, q) => rank(p) - rank(q) || String(p.sidecar).localeCompare(String(q.sidecar)));
    const onLatest = cars.filter((s) => s.version === latest && !bad(s)).length;
    const failed = cars.filter(bad).length;
    const sum = $('rollout-summary');
    if (cars.length === 0) {
      sum.dataset.converged = '';
      sum.textContent = 'No sidecar has reported a status for this config yet.';
    } else if (onLatest === cars.length) {
      sum.dataset.converged = 'yes';
      sum.textContent = 'Converged: ' + (cars.length === 1 ? 'the sidecar' : 'all ' + cars.length + ' sidecars') + ' applied v' + latest + '.';
    } else {
      sum.dataset.converged = failed ? 'failed' : 'no';
      sum.textContent = 'Not converged: ' + onLatest + ' of ' + cars.length + ' sidecars on v' + latest +
        (failed ? '; ' + failed + ' reported a failure' : '') + '.';
    }
    $('rollout').hidden = cars.length === 0;
    $('rollout').tBodies[0].replaceChildren(...sorted.map((s) => {
      const ver = td('v' + s.version, 'num');
      if (behind(s)) ver.append(el('span', 'behind', 'tag'));
      const tr = row([td(s.sidecar), ver, td(el('span', String(s.outcome).replace('_', ' '), 'outcome ' + s.outcome)), td(s.error || '', 'err'), td(timeEl(s.time, true))]);
      tr.className = bad(s) ? 'failed' : behind(s) ? 'stale' : 'current';
      tr.dataset.sidecar = s.sidecar;
      return tr;
    }));
  }

  // ---- wiring ------------------------------------------------------------

  function route() {
    const m = /^#\/config\/(.+)$/.exec(location.hash);
    let name = '';
    if (m) {
      try { name = decodeURIComponent(m[1]); } catch (_) { name = ''; }
    }
    if (name !== state.name) select(name);
  }

  function setupToken() {
    const input = $('token');
    const show = () => { input.placeholder = token() ? 'token saved for this tab' : 'only with --tokens'; };
    show();
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      try {
        if (t) sessionStorage.setItem(TOKEN_KEY, t);
      } catch (_) { /* storage disabled: the token lasts until reload */ }
      input.value = '';
      show();
      refreshList();
      select(state.name);
    });
    $('token-clear').addEventListener('click', () => {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* nothing stored */ }
      input.value = '';
      show();
      refreshList();
      select(state.name);
    });
  }

  function start() {
    setupToken();
    $('content-version').addEventListener('change', (ev) => {
      state.contentPick = parseInt(ev.target.value, 10) || 0;
      renderDetail();
      renderContent(state.gen);
    });
    for (const id of ['diff-a', 'diff-b']) {
      $(id).addEventListener('change', () => {
        state.diffPicked = true;
        state.diffA = parseInt($('diff-a').value, 10) || 0;
        state.diffB = parseInt($('diff-b').value, 10) || 0;
        renderDiff(state.gen);
      });
    }
    $('diff-full').addEventListener('change', () => renderDiff(state.gen));
    window.addEventListener('hashchange', route);
    refreshList();
    setInterval(refreshList, LIST_EVERY_MS);
    route();
    if (!state.name) select('');
  }

  start();
})();
