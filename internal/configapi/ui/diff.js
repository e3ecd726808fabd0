// Outrigger config dashboard: the line diff behind "Compare versions".
// Loaded before app.js; exposes window.OutriggerDiff. Pure functions, no DOM.
'use strict';

(() => {
  const MAX_EDIT = 2000; // Myers edit distance limit; beyond: whole replacement

  function splitLines(text) {
    const lines = text.split(/\r?\n/);
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  // myers returns the edit script of a → b as [op, i, j] with op '=' (a[i]
  // equals b[j]), '-' (a[i] removed) or '+' (b[j] added), or null when the
  // edit distance exceeds maxD. O((N+M)·D) time, O(D²) memory.
  function myers(a, b, maxD) {
    const n = a.length, m = b.length, max = n + m;
    const off = max + 1;
    const v = new Int32Array(2 * max + 3);
    const trace = [];
    let found = -1;
    for (let d = 0; d <= max && found < 0; d++) {
      if (d > maxD) return null;
      for (let k = -d; k <= d; k += 2) {
        let x = (k === -d || (k !== d && v[off + k - 1] < v[off + k + 1])) ? v[off + k + 1] : v[off + k - 1] + 1;
        let y = x - k;
        while (x < n && y < m && a[x] === b[y]) { x++; y++; }
        v[off + k] = x;
        if (x >= n && y >= m) { found = d; break; }
      }
      trace.push(v.slice(off - d, off + d + 1)); // V after step d, k in [-d, d]
    }
    const ops = [];
    let x = n, y = m;
    for (let d = found; d > 0; d--) {
      const prev = trace[d - 1];
      const at = (k) => prev[k + d - 1];
      const k = x - y;
      const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
      const pk = down ? k + 1 : k - 1;
      const px = at(pk), py = px - pk;
      while (x > (down ? px : px + 1) && y > (down ? py + 1 : py)) { x--; y--; ops.push(['=', x, y]); }
      if (down) { y--; ops.push(['+', x, y]); } else { x--; ops.push(['-', x, y]); }
    }
    while (x > 0 && y > 0) { x--; y--; ops.push(['=', x, y]); }
    return ops.reverse();
  }

  // diffLines is a line diff: common prefix and suffix first (the usual
  // config edit touches a few lines), Myers on the rest.
  function diffLines(a, b) {
    let s = 0;
    while (s < a.length && s < b.length && a[s] === b[s]) s++;
    let ea = a.length, eb = b.length;
    while (ea > s && eb > s && a[ea - 1] === b[eb - 1]) { ea--; eb--; }
    const out = [];
    for (let i = 0; i < s; i++) out.push(['=', i, i]);
    const ma = a.slice(s, ea), mb = b.slice(s, eb);
    const mid = myers(ma, mb, MAX_EDIT);
    if (mid) {
      for (const [op, i, j] of mid) out.push([op, i + s, j + s]);
    } else {
      for (let i = 0; i < ma.length; i++) out.push(['-', i + s, -1]);
      for (let j = 0; j < mb.length; j++) out.push(['+', -1, j + s]);
    }
    for (let i = ea, j = eb; i < a.length; i++, j++) out.push(['=', i, j]);
    return out;
  }

  window.OutriggerDiff = Object.freeze({ diffLines, splitLines, MAX_EDIT });
})();
