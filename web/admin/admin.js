/* web/admin/admin.js - the operator page: polls the admin port's /metrics
 * and /actors every second and draws live charts, the feed sources, the
 * actors by kind and the supervision tree; sets the log level. */

/*
 * DESIGN
 * One poll a second fetches both views (relative URLs, so the page works
 * behind a path prefix), each under a timeout. What the charts show is
 * derived the way Prometheus would: rates from counter deltas between two
 * polls (a counter that went down was reset: it counts from zero), latency
 * percentiles from the histogram's bucket deltas. Every figure is kept in a
 * rolling history keyed by name, so a series the daemon does not expose
 * (yet) is simply empty: the charts say "no data" and nothing breaks.
 * Polls that fail leave a gap in the lines and a banner; polling goes on.
 * Names from the daemon only ever reach the page as text, never as HTML.
 * The tree is reconciled in place by key (a registered name, else the pid),
 * so what the operator folded stays folded across refreshes.
 */
'use strict';

(() => {
  const POLL_MS = 1000;
  const TIMEOUT_MS = 2500;
  const KEEP_S = 900 + 10; /* the longest window, and a little */
  const BUSIEST = 5;       /* actors drawn in the mailbox chart */

  /* The series the stages keep; README's operator section explains them. */
  const M = {
    in: 'scorewire_ingest_events_total',
    stored: 'scorewire_store_events_total',
    backlog: 'scorewire_store_backlog_rows',
    latency: 'scorewire_notify_latency_seconds',
    clients: 'scorewire_notify_clients',
    sent: 'scorewire_notify_messages_sent_total',
    conflated: 'scorewire_notify_messages_conflated_total',
    dropped: 'scorewire_notify_messages_dropped_total',
    sourceState: 'scorewire_ingest_source_state',
    lastSeen: 'scorewire_ingest_source_last_seen_seconds',
    rejected: 'scorewire_ingest_rejected_total',
    restarts: 'scorewire_supervisor_restarts_total',
    crashed: 'scorewire_actors_crashed_total',
    actors: 'scorewire_actors',
    queued: 'scorewire_actor_mailbox_messages',
    maxQueued: 'scorewire_actor_mailbox_max_messages',
    kindRestarts: 'scorewire_actor_restarts',
  };

  const $ = (id) => document.getElementById(id);

  /* ---- Prometheus text format 0.0.4 ---------------------------------- */

  const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[ \t]*(\{.*\})?[ \t]*(\S+)(?:[ \t]+-?\d+)?$/;
  const LABEL = /[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*,?/y;

  function promValue(text) {
    if (/^[+-]?inf(inity)?$/i.test(text)) {
      return text[0] === '-' ? -Infinity : Infinity;
    }
    if (/^nan$/i.test(text)) {
      return NaN;
    }
    return /^[-+0-9.eE]+$/.test(text) ? Number(text) : NaN;
  }

  function promLabels(text) {
    const labels = {};
    if (!text) {
      return labels;
    }
    const body = text.slice(1, -1);
    LABEL.lastIndex = 0;
    let m;
    while (LABEL.lastIndex < body.length && (m = LABEL.exec(body))) {
      labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    return labels;
  }

  /* name -> [{labels, value}]; a line it cannot read is skipped. */
  function parseProm(text) {
    const fams = new Map();
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line[0] === '#') {
        continue;
      }
      const m = SAMPLE.exec(line);
      if (!m) {
        continue;
      }
      let list = fams.get(m[1]);
      if (!list) {
        fams.set(m[1], (list = []));
      }
      list.push({ labels: promLabels(m[2]), value: promValue(m[3]) });
    }
    return fams;
  }

  /* The sum of @name's samples whose labels match @filter, or null. */
  function total(fams, name, filter) {
    const list = fams && fams.get(name);
    if (!list) {
      return null;
    }
    let sum = null;
    for (const s of list) {
      if (filter && Object.keys(filter).some((k) => s.labels[k] !== filter[k])) {
        continue;
      }
      sum = (sum || 0) + s.value;
    }
    return sum;
  }

  /* Distinct values of label @key among @name's samples. */
  function labelValues(fams, name, key) {
    const out = new Set();
    for (const s of (fams && fams.get(name)) || []) {
      if (key in s.labels) {
        out.add(s.labels[key]);
      }
    }
    return [...out];
  }

  /* @name's cumulative buckets summed over its label sets, or null. */
  function histogram(fams, name) {
    const list = fams && fams.get(name + '_bucket');
    if (!list) {
      return null;
    }
    const byLe = new Map();
    for (const s of list) {
      const le = promValue(s.labels.le || '');
      if (Number.isNaN(le)) {
        return null;
      }
      byLe.set(le, (byLe.get(le) || 0) + s.value);
    }
    const le = [...byLe.keys()].sort((a, b) => a - b);
    if (le.length < 2 || le[le.length - 1] !== Infinity) {
      return null;
    }
    return { le, cum: le.map((b) => byLe.get(b)) };
  }

  /* The @q quantile of what was observed between two scrapes, as
   * Prometheus' histogram_quantile(): linear inside the bucket; past the
   * last finite bound, that bound. null when nothing was observed or the
   * counters went back (a restart). */
  function quantile(prev, cur, q) {
    if (!prev || !cur || prev.le.length !== cur.le.length) {
      return null;
    }
    const d = [];
    for (let i = 0; i < cur.le.length; i++) {
      if (prev.le[i] !== cur.le[i]) {
        return null;
      }
      d.push(cur.cum[i] - prev.cum[i]);
      if (d[i] < 0 || (i > 0 && d[i] < d[i - 1])) {
        return null;
      }
    }
    const n = d.length;
    const all = d[n - 1];
    if (!(all > 0)) {
      return null;
    }
    const rank = q * all;
    let i = 0;
    while (i < n - 1 && d[i] < rank) {
      i++;
    }
    if (i === n - 1) {
      return cur.le[n - 2];
    }
    const lo = i > 0 ? cur.le[i - 1] : Math.min(0, cur.le[0]);
    const below = i > 0 ? d[i - 1] : 0;
    const inside = d[i] - below;
    return inside > 0 ? lo + (cur.le[i] - lo) * ((rank - below) / inside) : cur.le[i];
  }

  /* Per second, from a counter at two polls @dt seconds apart. */
  function rate(a, b, dt) {
    if (a == null || b == null || !(dt > 0) || !isFinite(a) || !isFinite(b)) {
      return null;
    }
    return (b < a ? b : b - a) / dt;
  }

  /* ---- numbers for people ------------------------------------------------- */

  function fmtNum(v) {
    if (v == null || !isFinite(v)) {
      return '–';
    }
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
    if (a >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }

  function fmtDur(s) {
    if (s == null || !isFinite(s)) {
      return '–';
    }
    if (s < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : s < 0.1 ? 1 : 0) + ' ms';
    return s.toFixed(2) + ' s';
  }

  function fmtAge(s) {
    if (s == null || !isFinite(s)) {
      return '–';
    }
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  /* An axis label: no trailing zeros ("50 ms", "2.5k"). */
  function fmtAxis(fmt, v) {
    if (v === 0) {
      return '0';
    }
    return fmt(v).replace(/(\.\d*?)0+(?!\d)/, '$1').replace(/\.(?!\d)/, '');
  }

  function fmtClock(t) {
    return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }

  /* ---- history: every figure over time, by key -------------------------------- */

  const history = new Map(); /* key -> {t: [], v: []}, t in seconds */

  function record(key, t, v) {
    let h = history.get(key);
    if (!h) {
      history.set(key, (h = { t: [], v: [] }));
    }
    h.t.push(t);
    h.v.push(v == null || !isFinite(v) ? null : v);
    let drop = 0;
    while (drop < h.t.length && h.t[drop] < t - KEEP_S) {
      drop++;
    }
    if (drop) {
      h.t.splice(0, drop);
      h.v.splice(0, drop);
    }
  }

  function forget(now) {
    for (const [key, h] of history) {
      if (!h.t.length || h.t[h.t.length - 1] < now - KEEP_S) {
        history.delete(key);
      }
    }
  }

  function latest(key) {
    const h = history.get(key);
    return h && h.v.length ? h.v[h.v.length - 1] : null;
  }

  /* ---- colours ------------------------------------------------------------- */

  const theme = {};
  function readTheme() {
    const css = getComputedStyle(document.documentElement);
    for (const k of ['grid', 'muted', 'text', 'line', 'panel']) {
      theme[k] = css.getPropertyValue('--' + k).trim();
    }
    theme.palette = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => css.getPropertyValue('--s' + i).trim());
  }

  /* Colours for series that come and go (the busiest actors, reasons,
   * kinds): a series keeps its colour while it stays on the chart, and no
   * two series on a chart share one while the palette lasts. */
  const colourOf = new Map(); /* key -> palette index */
  function paint(list) {
    const n = theme.palette.length;
    const taken = new Set(list.filter((s) => s.ci != null).map((s) => s.ci % n));
    const fresh = [];
    for (const s of list) {
      if (s.ci != null) {
        s.colour = theme.palette[s.ci % n];
      } else if (colourOf.has(s.key) && !taken.has(colourOf.get(s.key))) {
        taken.add(colourOf.get(s.key));
        s.colour = theme.palette[colourOf.get(s.key)];
      } else {
        fresh.push(s);
      }
    }
    for (const s of fresh) {
      let i = 0;
      while (taken.has(i) && i < n - 1) {
        i++;
      }
      taken.add(i);
      colourOf.set(s.key, i);
      s.colour = theme.palette[i];
    }
  }

  /* ---- charts ---------------------------------------------------------------- */

  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }

  const tip = () => $('tip');

  class Chart {
    /* @opts: series() -> [{key, label, ci?}] (ci: a palette index; without
     * one a series gets a free colour and keeps it), fmt (axis, values),
     * kind 'line' or 'bars', area (fill under the first line), floor (the
     * least top of the y axis). */
    constructor(id, opts) {
      this.fig = $(id);
      this.canvas = this.fig.querySelector('canvas');
      this.legend = this.fig.querySelector('.legend');
      this.opts = Object.assign({ kind: 'line', fmt: fmtNum, floor: 1, area: false }, opts);
      this.hoverX = null;
      this.legendKeys = '';
      this.canvas.addEventListener('mousemove', (e) => {
        this.hoverX = e.offsetX;
        this.hoverAt = { x: e.clientX, y: e.clientY };
        this.draw();
      });
      this.canvas.addEventListener('mouseleave', () => {
        this.hoverX = null;
        tip().hidden = true;
        this.draw();
      });
    }

    resolve() {
      const list = this.opts.series();
      paint(list);
      return list;
    }

    /* The legend, and for tests and tools the figures it stands for:
     * each item's data-key, data-latest (the last value; empty when none)
     * and data-max (the largest value in the window; empty when none). */
    drawLegend(series, visible) {
      const keys = series.map((s) => s.key + '\u0000' + s.label).join('\u0001');
      if (keys !== this.legendKeys) {
        this.legendKeys = keys;
        this.legend.replaceChildren(
          ...series.map((s) => {
            const li = document.createElement('li');
            const sw = document.createElement('span');
            sw.className = 'sw';
            sw.style.background = s.colour;
            const name = document.createElement('span');
            name.className = 'name';
            name.textContent = s.label;
            name.title = s.label;
            li.append(sw, name, document.createElement('b'));
            return li;
          })
        );
      }
      series.forEach((s, i) => {
        const li = this.legend.children[i];
        const last = latest(s.key);
        const seen = visible[i].map((p) => p[1]).filter((v) => v != null);
        li.querySelector('b').textContent = this.opts.fmt(last);
        li.dataset.key = s.key;
        li.dataset.latest = last == null ? '' : String(last);
        li.dataset.max = seen.length ? String(Math.max(...seen)) : '';
      });
    }

    draw() {
      const now = state.now;
      const win = state.window;
      const c = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const w = c.clientWidth;
      const h = c.clientHeight;
      if (!w || !h) {
        return;
      }
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
      const ctx = c.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      ctx.font = '11px ' + getComputedStyle(document.body).fontFamily;

      const series = this.resolve();
      const x0 = 52, x1 = w - 8, y0 = 8, y1 = h - 20;
      const tMin = now - win;
      const X = (t) => x0 + ((t - tMin) / win) * (x1 - x0);

      /* what is visible, and the top of the y axis */
      let top = 0;
      let any = false;
      const visible = series.map((s) => {
        const hs = history.get(s.key) || { t: [], v: [] };
        let i = 0;
        while (i < hs.t.length && hs.t[i] < tMin - 2) {
          i++;
        }
        const pts = [];
        for (; i < hs.t.length; i++) {
          pts.push([hs.t[i], hs.v[i]]);
          if (hs.v[i] != null) {
            any = true;
            top = Math.max(top, hs.v[i]);
          }
        }
        return pts;
      });
      this.drawLegend(series, visible);
      const step = niceStep(Math.max(top, this.opts.floor) / 4);
      top = Math.max(step * Math.ceil(Math.max(top, this.opts.floor) / step), step);
      const Y = (v) => y1 - (v / top) * (y1 - y0);

      /* grid and axes */
      ctx.lineWidth = 1;
      ctx.strokeStyle = theme.grid;
      ctx.fillStyle = theme.muted;
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      for (let v = 0; v <= top + step / 1e6; v += step) {
        const y = Math.round(Y(v)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x0, y);
        ctx.lineTo(x1, y);
        ctx.stroke();
        ctx.fillText(fmtAxis(this.opts.fmt, v), x0 - 6, y);
      }
      const xStep = [10, 15, 30, 60, 120, 180, 300].find((s) => win / s <= 6) || 300;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      for (let ago = 0; ago <= win; ago += xStep) {
        const x = X(now - ago);
        ctx.fillText(ago === 0 ? 'now' : ago % 60 ? `-${ago}s` : `-${ago / 60}m`, Math.min(Math.max(x, x0 + 12), x1 - 12), y1 + 5);
      }

      if (!any) {
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText(series.length ? 'no data' : 'not exposed by the daemon', (x0 + x1) / 2, (y0 + y1) / 2);
      }

      /* the data: a gap where a poll is missing */
      ctx.save();
      ctx.beginPath();
      ctx.rect(x0, y0 - 2, x1 - x0, y1 - y0 + 4);
      ctx.clip();
      const gap = (2.5 * POLL_MS) / 1000;
      visible.forEach((pts, si) => {
        const col = series[si].colour;
        if (this.opts.kind === 'bars') {
          const slot = Math.max(2, ((x1 - x0) * POLL_MS) / 1000 / win);
          const bw = Math.max(1, slot / series.length - 1);
          ctx.fillStyle = col;
          for (const [t, v] of pts) {
            if (v > 0) {
              const x = X(t) - slot / 2 + si * (slot / series.length);
              ctx.fillRect(x, Y(v), bw, y1 - Y(v));
            }
          }
          return;
        }
        const runs = [];
        let run = null;
        let lastT = -Infinity;
        for (const [t, v] of pts) {
          if (v == null || t - lastT > gap) {
            run = null;
          }
          if (v != null) {
            if (!run) {
              runs.push((run = []));
            }
            run.push([X(t), Y(v)]);
          }
          lastT = t;
        }
        if (this.opts.area && si === 0) {
          ctx.fillStyle = col;
          ctx.globalAlpha = 0.12;
          for (const r of runs) {
            ctx.beginPath();
            ctx.moveTo(r[0][0], y1);
            for (const [x, y] of r) ctx.lineTo(x, y);
            ctx.lineTo(r[r.length - 1][0], y1);
            ctx.closePath();
            ctx.fill();
          }
          ctx.globalAlpha = 1;
        }
        ctx.strokeStyle = col;
        ctx.lineWidth = 1.6;
        ctx.lineJoin = 'round';
        for (const r of runs) {
          ctx.beginPath();
          r.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
          if (r.length === 1) {
            ctx.arc(r[0][0], r[0][1], 1.5, 0, 2 * Math.PI);
          }
          ctx.stroke();
        }
      });
      ctx.restore();

      this.hover(ctx, series, visible, { x0, x1, y0, y1, tMin, win, X });
      this.canvas.dataset.points = String(visible.reduce((n, p) => n + p.filter((q) => q[1] != null).length, 0));
    }

    hover(ctx, series, visible, g) {
      if (this.hoverX == null || this.hoverX < g.x0 || this.hoverX > g.x1) {
        if (this.hoverX != null) {
          tip().hidden = true;
        }
        return;
      }
      const t = g.tMin + ((this.hoverX - g.x0) / (g.x1 - g.x0)) * g.win;
      let best = null;
      const rows = series.map((s, i) => {
        let near = null;
        for (const p of visible[i]) {
          if (!near || Math.abs(p[0] - t) < Math.abs(near[0] - t)) near = p;
        }
        if (near && Math.abs(near[0] - t) <= 1.5 && (!best || Math.abs(near[0] - t) < Math.abs(best - t))) {
          best = near[0];
        }
        return near && Math.abs(near[0] - t) <= 1.5 ? near[1] : null;
      });
      if (best == null) {
        tip().hidden = true;
        return;
      }
      const x = Math.round(g.X(best)) + 0.5;
      ctx.strokeStyle = theme.muted;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(x, g.y0);
      ctx.lineTo(x, g.y1);
      ctx.stroke();
      ctx.setLineDash([]);

      const el = tip();
      const head = document.createElement('div');
      head.className = 't';
      head.textContent = fmtClock(best);
      el.replaceChildren(
        head,
        ...series.map((s, i) => {
          const row = document.createElement('div');
          row.className = 'row';
          const sw = document.createElement('span');
          sw.className = 'sw';
          sw.style.background = s.colour;
          const name = document.createElement('span');
          name.textContent = s.label;
          const val = document.createElement('b');
          val.textContent = this.opts.fmt(rows[i]);
          row.append(sw, name, val);
          return row;
        })
      );
      el.hidden = false;
      const r = el.getBoundingClientRect();
      const px = this.hoverAt.x + 14 + r.width > window.innerWidth ? this.hoverAt.x - 14 - r.width : this.hoverAt.x + 14;
      el.style.left = Math.max(4, px) + 'px';
      el.style.top = Math.max(4, Math.min(this.hoverAt.y + 14, window.innerHeight - r.height - 4)) + 'px';
    }
  }

  /* ---- state ------------------------------------------------------------------ */

  const state = {
    now: Date.now() / 1000,
    window: 300,
    metrics: null,      /* the last good /metrics, parsed */
    metricsAt: 0,       /* seconds */
    actors: null,       /* the last good /actors */
    actorsAt: 0,
    handled: new Map(), /* pid -> messages handled at actorsAt */
    rates: new Map(),   /* pid -> messages handled per second */
    busiest: [],        /* [{key, label}] for the mailbox chart */
    kinds: [],
    reasons: [],
    lastOk: null,       /* seconds */
    polls: 0,
    failures: 0,
  };

  const charts = [];

  /* ---- one poll --------------------------------------------------------------- */

  async function get(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const r = await fetch(url, { cache: 'no-store', signal: ctl.signal });
      if (!r.ok) {
        throw new Error(`GET ${url}: HTTP ${r.status}`);
      }
      return await r.text();
    } catch (e) {
      if (e.name === 'AbortError') {
        throw new Error(`GET ${url}: no answer in ${TIMEOUT_MS / 1000} s`);
      }
      if (e instanceof TypeError) {
        throw new Error(`GET ${url}: unreachable`);
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /* Every node of the tree: listed children and the busiest of summaries. */
  function* nodes(list) {
    for (const n of list || []) {
      if (n && typeof n === 'object' && typeof n.pid === 'string') {
        yield n;
        yield* nodes(n.children);
        yield* nodes(n.busiest);
      }
    }
  }

  const actorLabel = (n) => n.name || `${n.kind} ${n.pid}`;

  function absorbMetrics(t, fams) {
    const prev = state.metrics;
    const dt = prev ? t - state.metricsAt : 0;
    const r = (name, filter) => rate(total(prev, name, filter), total(fams, name, filter), dt);

    /* a series the daemon does not expose gets no history at all */
    const counter = (key, name) => fams.has(name) && record(key, t, r(name));
    const gauge = (key, name) => fams.has(name) && record(key, t, total(fams, name));
    counter('in', M.in);
    counter('stored', M.stored);
    gauge('backlog', M.backlog);
    gauge('clients', M.clients);
    const h0 = histogram(prev, M.latency);
    const h1 = histogram(fams, M.latency);
    if (h1) {
      record('p50', t, quantile(h0, h1, 0.5));
      record('p99', t, quantile(h0, h1, 0.99));
    }
    counter('restarts', M.restarts);
    counter('crashes', M.crashed);
    counter('sent', M.sent);
    counter('conflated', M.conflated);
    counter('dropped', M.dropped);
    state.reasons = labelValues(fams, M.rejected, 'reason').sort();
    for (const reason of state.reasons) {
      record('rej:' + reason, t, r(M.rejected, { reason }));
    }
    state.kinds = labelValues(fams, M.queued, 'kind').sort();
    for (const kind of state.kinds) {
      record('kind:' + kind, t, total(fams, M.queued, { kind }));
    }
    state.metrics = fams;
    state.metricsAt = t;
  }

  /* per actor: mailbox history and messages per second */
  function absorbActors(t, tree) {
    const adt = t - state.actorsAt;
    const handled = new Map();
    const list = [];
    for (const n of nodes(tree.tree)) {
      const was = state.handled.get(n.pid);
      handled.set(n.pid, n.handled);
      state.rates.set(n.pid, was != null && n.handled >= was ? rate(was, n.handled, adt) : null);
      const key = 'mb:' + actorLabel(n);
      record(key, t, n.mailbox);
      list.push({ key, label: actorLabel(n), mailbox: n.mailbox || 0, rate: state.rates.get(n.pid) || 0 });
    }
    for (const pid of state.rates.keys()) {
      if (!handled.has(pid)) state.rates.delete(pid);
    }
    state.handled = handled;
    state.actors = tree;
    state.actorsAt = t;
    list.sort((a, b) => b.mailbox - a.mailbox || b.rate - a.rate);
    const seen = new Set();
    state.busiest = list.filter((a) => !seen.has(a.key) && seen.add(a.key)).slice(0, BUSIEST);
  }

  /* Both views at once; each one that arrives is used, so a daemon that
   * serves one and fails the other still shows what it can. */
  async function poll() {
    const started = performance.now();
    const [m, a] = await Promise.allSettled([
      get('metrics'),
      get('actors').then((json) => {
        try {
          return JSON.parse(json);
        } catch (e) {
          throw new Error('GET actors: not JSON');
        }
      }),
    ]);
    const t = Date.now() / 1000;
    state.now = t;
    if (m.status === 'fulfilled') {
      absorbMetrics(t, parseProm(m.value));
    }
    if (a.status === 'fulfilled' && a.value && typeof a.value === 'object') {
      absorbActors(t, a.value);
    }
    forget(t);
    const errors = [m, a].filter((r) => r.status === 'rejected').map((r) => r.reason.message || String(r.reason));
    if (errors.length < 2) {
      state.lastOk = t;
      state.polls++;
      up(errors);
    } else {
      state.failures++;
      down(errors);
    }
    document.body.dataset.polls = String(state.polls);
    document.body.dataset.failures = String(state.failures);
    drawCharts();
    setTimeout(poll, Math.max(0, POLL_MS - (performance.now() - started)));
  }

  /* ---- status ------------------------------------------------------------------- */

  function setState(s, text) {
    $('status').dataset.state = s;
    document.body.dataset.state = s;
    $('status-text').textContent = text;
  }

  function up(errors) {
    if (errors.length) {
      banner('Admin endpoint answers in part. ', `${errors.join('; ')}. Retrying every ${POLL_MS / 1000} s.`);
      setState('partial', 'partial · ' + fmtClock(state.now));
    } else {
      $('banner').hidden = true;
      setState('up', 'live · ' + fmtClock(state.now));
    }
    renderTiles();
    renderSources();
    renderKinds();
    renderTree();
  }

  function banner(title, text) {
    const b = $('banner');
    const strong = document.createElement('strong');
    strong.textContent = title;
    b.replaceChildren(strong, text);
    b.hidden = false;
  }

  function down(errors) {
    const since = state.lastOk == null
      ? 'No data yet.'
      : `Showing the figures of ${fmtClock(state.lastOk)} (${fmtAge(state.now - state.lastOk)} ago).`;
    banner('Admin endpoint unreachable. ', `${errors[0]}. Retrying every ${POLL_MS / 1000} s. ${since}`);
    setState('down', 'unreachable · retrying');
  }

  /* ---- tiles, tables -------------------------------------------------------------- */

  function setText(id, text, cls) {
    const el = $(id);
    el.textContent = text;
    if (cls !== undefined) {
      el.className = 'value' + (cls ? ' ' + cls : '');
    }
  }

  function renderTiles() {
    const a = state.actors || {};
    const f = state.metrics;
    setText('t-in', fmtNum(latest('in')));
    setText('t-stored', fmtNum(latest('stored')));
    const backlog = latest('backlog');
    setText('t-backlog', fmtNum(backlog));
    setText('t-p99', fmtDur(latest('p99')));
    setText('t-p50', 'p50 ' + fmtDur(latest('p50')));
    setText('t-clients', fmtNum(latest('clients')));
    setText('t-ws', fmtNum(latest('sent')) + ' msg/s');
    setText('t-alive', fmtNum(a.alive));
    setText('t-spawned', fmtNum(a.spawned) + ' spawned');
    setText('t-restarts', fmtNum(a.restarts), a.restarts > 0 ? 'warn' : '');
    setText('t-crashed', fmtNum(a.crashed) + ' crashed');
    const src = sources(f);
    const bad = src.filter((s) => s.state !== 'live').length;
    setText('t-sources', src.length ? String(src.length) : '–', bad ? 'warn' : '');
    setText('t-sources-bad', src.length ? (bad ? `${bad} not live` : 'all live') : '–');
  }

  const SEVERITY = { offline: 0, stale: 1, unknown: 2, live: 3 };

  function sources(fams) {
    const by = new Map();
    const get = (name) => {
      if (!by.has(name)) by.set(name, { name, state: 'unknown', age: null });
      return by.get(name);
    };
    for (const s of (fams && fams.get(M.sourceState)) || []) {
      if (s.labels.source != null && s.value >= 0.5) get(s.labels.source).state = s.labels.state || 'unknown';
    }
    for (const s of (fams && fams.get(M.lastSeen)) || []) {
      if (s.labels.source != null) get(s.labels.source).age = s.value;
    }
    return [...by.values()].sort(
      (a, b) => (SEVERITY[a.state] ?? 2) - (SEVERITY[b.state] ?? 2) || a.name.localeCompare(b.name)
    );
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    if (text instanceof Node) td.append(text);
    else td.textContent = text;
    return td;
  }

  function renderSources() {
    const list = sources(state.metrics);
    const rows = list.map((s) => {
      const tr = document.createElement('tr');
      tr.dataset.source = s.name;
      tr.dataset.state = s.state;
      const badge = document.createElement('span');
      badge.className = 'badge ' + (s.state in SEVERITY ? s.state : 'unknown');
      badge.textContent = s.state;
      tr.append(cell(s.name, 'name'), cell(badge), cell(fmtAge(s.age), 'num'));
      return tr;
    });
    $('sources').tBodies[0].replaceChildren(...rows);
    $('sources-empty').hidden = rows.length > 0;
  }

  function renderKinds() {
    const f = state.metrics;
    const kinds = labelValues(f, M.actors, 'kind');
    const rows = kinds
      .map((kind) => ({
        kind,
        n: total(f, M.actors, { kind }),
        q: total(f, M.queued, { kind }),
        max: total(f, M.maxQueued, { kind }),
        r: total(f, M.kindRestarts, { kind }),
      }))
      .sort((a, b) => (b.q || 0) - (a.q || 0) || (b.n || 0) - (a.n || 0) || a.kind.localeCompare(b.kind))
      .map((k) => {
        const tr = document.createElement('tr');
        tr.dataset.kind = k.kind;
        tr.append(cell(k.kind, 'name'), cell(fmtNum(k.n), 'num'), cell(fmtNum(k.q), 'num'), cell(fmtNum(k.max), 'num'), cell(fmtNum(k.r), 'num'));
        return tr;
      });
    $('kinds').tBodies[0].replaceChildren(...rows);
    $('kinds-empty').hidden = rows.length > 0;
  }

  /* ---- the supervision tree --------------------------------------------------------- */

  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    if (text != null) s.textContent = text;
    return s;
  }

  function createNode(key, depth) {
    const li = document.createElement('li');
    li.dataset.key = key;
    li.setAttribute('role', 'treeitem');
    if (depth >= 3) li.classList.add('collapsed');
    const row = document.createElement('div');
    row.className = 'row';
    const who = span('who');
    const twisty = document.createElement('button');
    twisty.type = 'button';
    twisty.className = 'twisty';
    twisty.textContent = '▼';
    twisty.addEventListener('click', () => {
      li.classList.toggle('collapsed');
      twisty.setAttribute('aria-expanded', String(!li.classList.contains('collapsed')));
    });
    who.append(twisty, span('label'), span('thread', 'thread'));
    const mbox = span('mbox num');
    const bar = span('bar');
    bar.append(document.createElement('i'));
    mbox.append(bar, span('n'));
    row.append(who, span('kind'), span('pid'), span('state'), mbox, span('rate num'), span('handled num'), span('restarts num'));
    const summary = document.createElement('div');
    summary.className = 'summary';
    const ul = document.createElement('ul');
    ul.setAttribute('role', 'group');
    li.append(row, summary, ul);
    return li;
  }

  function updateNode(li, n, depth) {
    const row = li.firstChild;
    const [who, kind, pid, st, mbox, rt, handled, restarts] = row.children;
    who.style.paddingLeft = depth * 18 + 'px';
    li.classList.toggle('sup', !!n.supervisor);
    li.dataset.pid = n.pid;
    const label = who.querySelector('.label');
    label.textContent = n.name || n.kind;
    label.title = n.name || n.kind;
    who.querySelector('.thread').hidden = !n.thread;
    kind.textContent = n.kind;
    pid.textContent = n.pid;
    st.textContent = n.state || '';
    st.className = 'state ' + (n.state === 'runnable' ? 'runnable' : '');
    const cap = n.capacity || 0;
    const fill = cap ? Math.min(1, (n.mailbox || 0) / cap) : 0;
    const bar = mbox.querySelector('.bar');
    bar.className = 'bar' + (fill >= 0.9 ? ' bad' : fill >= 0.5 ? ' warn' : '');
    bar.firstChild.style.width = (fill * 100).toFixed(1) + '%';
    mbox.querySelector('.n').textContent = `${fmtNum(n.mailbox)} / ${fmtNum(cap)}`;
    rt.textContent = fmtNum(state.rates.get(n.pid));
    handled.textContent = fmtNum(n.handled);
    restarts.textContent = fmtNum(n.restarts);
    restarts.className = 'restarts num' + (n.restarts > 0 ? ' some' : '');

    const summary = li.children[1];
    if (typeof n.children_count === 'number') {
      const kinds = Object.entries(n.by_kind || {}).map(([k, c]) => `${k} ${fmtNum(c)}`).join(', ');
      const shown = (n.busiest || []).length;
      summary.textContent = `${fmtNum(n.children_count)} children (${kinds}); the ${shown} busiest:`;
      summary.style.paddingLeft = 30 + (depth + 1) * 18 + 'px';
      summary.hidden = false;
    } else {
      summary.hidden = true;
    }
    const kids = Array.isArray(n.children) ? n.children : Array.isArray(n.busiest) ? n.busiest : [];
    row.querySelector('.twisty').hidden = kids.length === 0;
    li.setAttribute('aria-expanded', String(kids.length > 0 && !li.classList.contains('collapsed')));
    syncList(li.children[2], kids, depth + 1, li.dataset.key);
  }

  function syncList(ul, items, depth, parentKey) {
    const old = new Map();
    for (const li of ul.children) old.set(li.dataset.key, li);
    const used = new Set();
    let i = 0;
    for (const n of items) {
      if (!n || typeof n !== 'object' || typeof n.pid !== 'string') continue;
      let key = parentKey + '/' + (n.name ? 'n:' + n.name : 'p:' + n.pid);
      if (used.has(key)) key += '#' + i;
      used.add(key);
      let li = old.get(key);
      if (li) old.delete(key);
      else li = createNode(key, depth);
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
      updateNode(li, n, depth);
      i++;
    }
    for (const li of old.values()) li.remove();
  }

  function renderTree() {
    const tree = state.actors && Array.isArray(state.actors.tree) ? state.actors.tree : [];
    syncList($('tree').querySelector('.nodes'), tree, 0, '');
  }

  function foldAll(collapse) {
    for (const li of $('tree').querySelectorAll('li')) {
      if (li.querySelector(':scope > ul > li')) {
        li.classList.toggle('collapsed', collapse);
        li.setAttribute('aria-expanded', String(!collapse));
      }
    }
  }

  /* ---- the log level -------------------------------------------------------------- */

  async function loadLevel() {
    try {
      const r = await fetch('loglevel', { cache: 'no-store' });
      const level = r.ok ? (await r.text()).trim() : '';
      if (['debug', 'info', 'warn', 'error'].includes(level)) {
        $('loglevel-select').value = level;
      }
    } catch (e) {
      /* not served, or the daemon is down: the control still works */
    }
  }

  async function setLevel(ev) {
    ev.preventDefault();
    const out = $('loglevel-result');
    const level = $('loglevel-select').value;
    out.className = '';
    out.textContent = 'setting…';
    try {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
      const r = await fetch('loglevel', {
        method: 'PUT',
        body: level,
        headers: { 'Content-Type': 'text/plain' },
        signal: ctl.signal,
      });
      clearTimeout(timer);
      const text = (await r.text()).trim();
      if (!r.ok) {
        throw new Error(`HTTP ${r.status}${text ? ': ' + text : ''}`);
      }
      out.className = 'ok';
      out.textContent = `level is ${level}`;
    } catch (e) {
      out.className = 'bad';
      out.textContent = e.name === 'AbortError' ? 'no answer' : e instanceof TypeError ? 'daemon unreachable' : e.message;
    }
  }

  /* ---- start -------------------------------------------------------------------------- */

  function drawCharts() {
    for (const c of charts) c.draw();
  }

  function start() {
    readTheme();
    const fixed = (list) => () => list.filter((s) => s.always || history.has(s.key));
    charts.push(
      new Chart('c-events', {
        area: true,
        series: fixed([
          { key: 'in', label: 'accepted', ci: 0, always: true },
          { key: 'stored', label: 'stored', ci: 1, always: true },
        ]),
      }),
      new Chart('c-latency', {
        fmt: fmtDur,
        floor: 0.001,
        series: fixed([
          { key: 'p50', label: 'p50', ci: 1, always: true },
          { key: 'p99', label: 'p99', ci: 4, always: true },
        ]),
      }),
      new Chart('c-backlog', {
        area: true,
        series: fixed([{ key: 'backlog', label: 'rows waiting', ci: 2, always: true }]),
      }),
      new Chart('c-mailbox', {
        series: () => state.busiest.map((a) => ({ key: a.key, label: a.label })),
      }),
      new Chart('c-restarts', {
        kind: 'bars',
        series: fixed([
          { key: 'restarts', label: 'restarts/s', ci: 2, always: true },
          { key: 'crashes', label: 'crashes/s', ci: 4, always: true },
        ]),
      }),
      new Chart('c-rejected', {
        series: () => state.reasons.map((r) => ({ key: 'rej:' + r, label: r })),
      }),
      new Chart('c-ws', {
        area: true,
        series: fixed([
          { key: 'sent', label: 'sent', ci: 0, always: true },
          { key: 'conflated', label: 'conflated', ci: 2 },
          { key: 'dropped', label: 'dropped', ci: 4 },
        ]),
      }),
      new Chart('c-kinds', {
        series: () => state.kinds.map((k) => ({ key: 'kind:' + k, label: k })),
      })
    );
    state.window = Number($('window').value) || 300;
    $('window').addEventListener('change', () => {
      state.window = Number($('window').value) || 300;
      drawCharts();
    });
    $('loglevel').addEventListener('submit', setLevel);
    $('tree-expand').addEventListener('click', () => foldAll(false));
    $('tree-collapse').addEventListener('click', () => foldAll(true));
    new ResizeObserver(drawCharts).observe(document.querySelector('.charts'));
    matchMedia('(prefers-color-scheme: light)').addEventListener('change', () => {
      readTheme();
      drawCharts();
    });
    loadLevel();
    poll();
  }

  start();
})();
