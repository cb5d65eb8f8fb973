// web/app.js - the live page: one WebSocket (ws-protocol.md), every match as
// a card, kept current from snapshots and deltas; reconnects with backoff and
// resumes with `since`. Plain JS, no build step, no dependencies.
'use strict';

(() => {
  // ---- protocol constants ---------------------------------------------------

  const WS_PATH = '/ws';
  const SUBPROTOCOL = 'scorewire.v1';
  const MAX_CLIENT_FRAME = 4096; // the server closes bigger frames (1009)
  const PING_EVERY_MS = 25000; // our own liveness check, besides lws pings
  const PONG_WITHIN_MS = 10000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;

  const PHASES = {
    not_started: { label: 'Not started', group: 1 },
    first_half: { label: '1st half', group: 0, live: true },
    halftime: { label: 'Half-time', group: 0, live: true },
    second_half: { label: '2nd half', group: 0, live: true },
    extra_time: { label: 'Extra time', group: 0, live: true },
    penalties: { label: 'Penalties', group: 0, live: true },
    interrupted: { label: 'Interrupted', group: 0, live: true },
    ended: { label: 'Full time', group: 2 },
    abandoned: { label: 'Abandoned', group: 2 },
    postponed: { label: 'Postponed', group: 1 },
    cancelled: { label: 'Cancelled', group: 2 },
  };
  const GROUP_NAMES = ['live', 'upcoming', 'ended'];
  const GOALS = new Set(['goal', 'own_goal', 'penalty_goal']);

  // ---- state ------------------------------------------------------------------

  /** id -> { m: match object, version, clock: {secs, running, at}, card } */
  const matches = new Map();
  /** source -> 'live' | 'stale' | 'offline' */
  const feeds = new Map();
  /** ids we asked to re-snapshot (a version jump or an orphan delta) */
  const resyncing = new Set();

  let ws = null;
  let attempt = 0; // consecutive failed connections
  let reconnectTimer = 0;
  let pingTimer = 0;
  let pongDeadline = 0;
  let pingSeq = 0;
  let filterText = '';
  let show = 'all';

  const $ = (sel) => document.querySelector(sel);
  const grid = $('#matches');
  const template = $('#card-template');
  const connEl = $('#conn');
  const connText = $('#conn-text');
  const feedsEl = $('#feeds');
  const announcer = $('#announcer');
  const emptyEl = $('#empty');
  const summaryEl = $('#summary');

  // ---- connection -------------------------------------------------------------

  function setConn(state, text) {
    connEl.dataset.state = state;
    document.documentElement.dataset.connection = state;
    connText.textContent = text;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (ws) {
      return;
    }
    setConn('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    let sock;
    try {
      sock = new WebSocket(scheme + location.host + WS_PATH, SUBPROTOCOL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      setConn('live', 'Live');
      subscribe();
      startPing();
    };
    sock.onmessage = (ev) => {
      attempt = 0;
      pongDeadline = 0;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        console.warn('scorewire: unreadable frame', e);
        return;
      }
      if (Array.isArray(msg)) {
        msg.forEach(handle);
      } else {
        handle(msg);
      }
    };
    sock.onclose = (ev) => {
      if (ws !== sock) {
        return;
      }
      ws = null;
      stopPing();
      resyncing.clear();
      scheduleReconnect(ev.code);
    };
  }

  // Full jitter: a random wait up to base * 2^attempt, capped.
  function scheduleReconnect(code) {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
    const wait = Math.max(250, Math.random() * ceiling);
    attempt++;
    const why = code === 1013 ? ' (server busy)' : '';
    setConn('offline', `Offline${why} · retrying in ${Math.ceil(wait / 1000)} s`);
    reconnectTimer = setTimeout(connect, wait);
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(obj));
    }
  }

  // Subscribe to everything, resuming each known match from its version.
  // The server takes at most 4 KiB a message, so `since` goes in pieces:
  // the first with "*", the rest as list subscriptions with since.
  function subscribe() {
    const known = [...matches.entries()].map(([id, s]) => [id, s.version]);
    const pieces = [];
    let since = {};
    let size = 0;
    for (const [id, version] of known) {
      const add = JSON.stringify(id).length + String(version).length + 2;
      if (size + add > MAX_CLIENT_FRAME - 200) {
        pieces.push(since);
        since = {};
        size = 0;
      }
      since[id] = version;
      size += add;
    }
    pieces.push(since);
    pieces.forEach((part, i) => {
      const ids = Object.keys(part);
      if (i === 0) {
        send(ids.length ? { op: 'subscribe', matches: '*', since: part }
          : { op: 'subscribe', matches: '*' });
      } else {
        send({ op: 'subscribe', matches: ids, since: part });
      }
    });
  }

  function startPing() {
    stopPing();
    pingTimer = setInterval(() => {
      if (pongDeadline && Date.now() > pongDeadline) {
        // Nothing at all came back: the connection is dead.
        if (ws) {
          ws.close();
        }
        return;
      }
      send({ op: 'ping', id: ++pingSeq });
      pongDeadline = Date.now() + PONG_WITHIN_MS;
    }, PING_EVERY_MS);
  }

  function stopPing() {
    clearInterval(pingTimer);
    pingTimer = 0;
    pongDeadline = 0;
  }

  // ---- messages -----------------------------------------------------------------

  function handle(msg) {
    if (!msg || typeof msg !== 'object') {
      return;
    }
    switch (msg.type) {
      case 'snapshot':
        onSnapshot(msg.match);
        break;
      case 'delta':
        onDelta(msg);
        break;
      case 'feed':
        feeds.set(msg.source, msg.state);
        renderFeeds();
        break;
      case 'pong':
        break;
      case 'error':
        console.warn('scorewire: server error', msg.reason, msg.detail);
        break;
      default:
        break; // newer servers may say more
    }
  }

  function onSnapshot(m) {
    if (!m || typeof m.id !== 'string') {
      return;
    }
    let s = matches.get(m.id);
    if (!s) {
      s = { m: null, version: 0, clock: null, card: null };
      matches.set(m.id, s);
    }
    const before = s.m;
    s.m = Object.assign({}, m);
    s.version = m.version;
    resyncing.delete(m.id);
    setClock(s);
    render(s, { before, fresh: freshIncidents(before, m.incidents) });
    markSyncing(s, false);
  }

  function onDelta(d) {
    const s = matches.get(d.id);
    if (!s || !s.m) {
      resync(d.id);
      return;
    }
    if (d.version <= s.version) {
      return; // already have it
    }
    if (d.version !== s.version + 1) {
      resync(d.id); // a jump: start this match over
      return;
    }
    const before = Object.assign({}, s.m);
    const changes = d.changes || {};
    for (const key of Object.keys(changes)) {
      if (changes[key] === null) {
        delete s.m[key];
      } else {
        s.m[key] = changes[key];
      }
    }
    const fresh = [];
    if (d.incidents) {
      const list = (s.m.incidents || []).slice();
      for (const inc of d.incidents.upsert || []) {
        const at = list.findIndex((x) => x.id === inc.id);
        if (at >= 0) {
          list[at] = inc;
        } else {
          list.push(inc);
        }
        fresh.push(inc.id);
      }
      const gone = new Set(d.incidents.delete || []);
      s.m.incidents = list.filter((x) => !gone.has(x.id));
    }
    s.version = d.version;
    s.m.version = d.version;
    if (changes.clock) {
      setClock(s);
    }
    render(s, { before, fresh });
    if (d.recovered) {
      markSyncing(s, false);
    }
  }

  function resync(id) {
    if (resyncing.has(id)) {
      return;
    }
    resyncing.add(id);
    const s = matches.get(id);
    if (s) {
      markSyncing(s, true);
    }
    send({ op: 'subscribe', matches: [id] });
  }

  function freshIncidents(before, incidents) {
    if (!before || !Array.isArray(incidents)) {
      return [];
    }
    const had = new Set((before.incidents || []).map((x) => x.id));
    return incidents.filter((x) => !had.has(x.id)).map((x) => x.id);
  }

  // ---- the clock --------------------------------------------------------------------

  function parseClock(text) {
    const m = /^(\d+):([0-5]\d)$/.exec(text || '');
    return m ? Number(m[1]) * 60 + Number(m[2]) : null;
  }

  function setClock(s) {
    const c = s.m.clock;
    const secs = c ? parseClock(c.time) : null;
    s.clock = secs === null ? null
      : { secs, running: !!c.running, at: performance.now() };
  }

  function clockText(s) {
    if (!s.clock) {
      return '';
    }
    let secs = s.clock.secs;
    if (s.clock.running) {
      secs += Math.floor((performance.now() - s.clock.at) / 1000);
    }
    const mm = String(Math.floor(secs / 60)).padStart(2, '0');
    const ss = String(secs % 60).padStart(2, '0');
    return `${mm}:${ss}`;
  }

  function tickClocks() {
    for (const s of matches.values()) {
      if (s.card && s.clock && s.clock.running) {
        const t = clockText(s);
        const el = s.card.querySelector('.clock');
        if (el.textContent !== t) {
          el.textContent = t;
          s.card.dataset.clock = t;
        }
      }
    }
  }

  // ---- rendering ------------------------------------------------------------------------

  function phaseOf(m) {
    const p = m.status && m.status.phase;
    return PHASES[p] || { label: p ? p.replace(/_/g, ' ') : 'Scheduled', group: 1 };
  }

  function kickoff(m) {
    const start = m.fixture && m.fixture.start;
    const t = start ? new Date(start) : null;
    if (!t || isNaN(t)) {
      return '';
    }
    return t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function teamName(m, side) {
    return (m.fixture && m.fixture[side]) || (side === 'home' ? 'Home' : 'Away');
  }

  function render(s, { before, fresh }) {
    const m = s.m;
    let card = s.card;
    const isNew = !card;
    if (isNew) {
      card = template.content.firstElementChild.cloneNode(true);
      card.dataset.matchId = m.id;
      const headingId = 'm-' + matches.size + '-' + Math.random().toString(36).slice(2, 8);
      card.querySelector('.competition').id = headingId;
      card.setAttribute('aria-labelledby', headingId);
      s.card = card;
    }
    const phase = phaseOf(m);
    const home = teamName(m, 'home');
    const away = teamName(m, 'away');
    const score = m.score || {};
    const sh = Number.isInteger(score.home) ? String(score.home) : '–';
    const sa = Number.isInteger(score.away) ? String(score.away) : '–';

    setText(card.querySelector('.competition'),
      [m.fixture && m.fixture.competition, m.fixture && m.fixture.sport]
        .filter(Boolean)[0] || 'Match');
    setText(card.querySelector('.team-home .team-name'), home);
    setText(card.querySelector('.team-away .team-name'), away);
    card.querySelector('.team-home .team-name').title = home;
    card.querySelector('.team-away .team-name').title = away;

    const homeEl = card.querySelector('.score-home');
    const awayEl = card.querySelector('.score-away');
    const oldScore = before && before.score;
    if (setText(homeEl, sh) && oldScore) {
      flash(homeEl);
    }
    if (setText(awayEl, sa) && oldScore) {
      flash(awayEl);
    }
    card.querySelector('.score').setAttribute('aria-label',
      `${home} ${sh}, ${away} ${sa}`);

    let phaseText = phase.label;
    if (phase.group === 1 && (!m.status || m.status.phase === 'not_started')) {
      const k = kickoff(m);
      phaseText = k ? `Kick-off ${k}` : phase.label;
    }
    setText(card.querySelector('.phase'), phaseText);
    const clock = phase.group === 0 ? clockText(s) : '';
    setText(card.querySelector('.clock'), clock);

    const feed = m.feed || 'live';
    card.querySelector('.badge-stale').hidden = feed === 'live';
    card.querySelector('.badge-stale').textContent = feed === 'offline' ? 'Offline' : 'Stale';
    card.querySelector('.badge-gap').hidden = !m.gap;

    const d = card.dataset;
    d.version = String(s.version);
    d.phase = (m.status && m.status.phase) || '';
    d.group = GROUP_NAMES[phase.group];
    d.live = String(!!phase.live);
    d.feed = feed;
    d.gap = String(!!m.gap);
    d.scoreHome = sh;
    d.scoreAway = sa;
    d.clock = clock;
    d.search = `${home} ${away} ${(m.fixture && m.fixture.competition) || ''}`.toLowerCase();

    renderIncidents(s, fresh || []);
    announceGoals(s, fresh || []);

    const groupChanged = !before || phaseOf(before).group !== phase.group;
    if (isNew || groupChanged) {
      place(s);
    }
    applyFilter(card);
    updateSummary();
  }

  function setText(el, text) {
    if (el.textContent === text) {
      return false;
    }
    el.textContent = text;
    return true;
  }

  function flash(el) {
    el.classList.remove('flash');
    void el.offsetWidth; // restart the animation
    el.classList.add('flash');
  }

  function minuteText(inc) {
    if (!Number.isInteger(inc.minute)) {
      return '';
    }
    return Number.isInteger(inc.stoppage) && inc.stoppage > 0
      ? `${inc.minute}+${inc.stoppage}'` : `${inc.minute}'`;
  }

  function renderIncidents(s, fresh) {
    const list = s.card.querySelector('.incidents');
    const incidents = (s.m.incidents || []).map((inc, i) => ({ inc, i }));
    // Newest first: by minute, then by arrival.
    incidents.sort((a, b) => (b.inc.minute || 0) - (a.inc.minute || 0)
      || (b.inc.stoppage || 0) - (a.inc.stoppage || 0) || b.i - a.i);
    const freshSet = new Set(fresh);
    const items = incidents.map(({ inc }) => incidentItem(s.m, inc, freshSet.has(inc.id)));
    list.replaceChildren(...items);
  }

  function incidentItem(m, inc, isFresh) {
    const li = document.createElement('li');
    li.className = 'incident' + (isFresh ? ' fresh' : '');
    li.dataset.incidentId = inc.id;
    li.dataset.type = inc.type || 'other';
    if (inc.team) {
      li.dataset.team = inc.team;
    }
    const goal = GOALS.has(inc.type);
    if (goal) {
      li.dataset.confirmed = String(inc.confirmed !== false);
    }
    const min = document.createElement('span');
    min.className = 'min';
    min.textContent = minuteText(inc);
    const who = document.createElement('span');
    who.className = 'who';
    const side = inc.team === 'home' || inc.team === 'away' ? teamName(m, inc.team) : '';
    who.append(describe(inc));
    if (side) {
      const t = document.createElement('span');
      t.className = 'side';
      t.textContent = side;
      who.append(t);
    }
    if (goal && inc.confirmed === false) {
      const u = document.createElement('span');
      u.className = 'unconfirmed';
      u.textContent = 'unconfirmed';
      who.append(u);
    }
    li.append(min, icon(inc.type), who);
    li.setAttribute('aria-label', `${minuteText(inc)} ${label(inc.type)}: ${who.textContent}`);
    return li;
  }

  function label(type) {
    return {
      goal: 'Goal', own_goal: 'Own goal', penalty_goal: 'Penalty goal',
      missed_penalty: 'Missed penalty', yellow_card: 'Yellow card',
      second_yellow: 'Second yellow', red_card: 'Red card',
      substitution: 'Substitution', var: 'VAR',
    }[type] || (type ? type.replace(/_/g, ' ') : 'Incident');
  }

  function describe(inc) {
    const frag = document.createDocumentFragment();
    const player = inc.player || label(inc.type);
    if (inc.type === 'substitution') {
      frag.append(inc.assist ? `${inc.assist} for ${inc.player || '?'}` : player);
      return frag;
    }
    frag.append(player);
    if (inc.assist && GOALS.has(inc.type)) {
      const small = document.createElement('small');
      small.textContent = ` (${inc.assist})`;
      frag.append(small);
    }
    if (inc.type === 'own_goal') {
      const small = document.createElement('small');
      small.textContent = ' (og)';
      frag.append(small);
    }
    if (inc.type === 'penalty_goal') {
      const small = document.createElement('small');
      small.textContent = ' (pen)';
      frag.append(small);
    }
    return frag;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(cls, title, children) {
    const el = document.createElementNS(SVG, 'svg');
    el.setAttribute('viewBox', '0 0 20 20');
    el.setAttribute('class', 'icon ' + cls);
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', title);
    for (const [tag, attrs] of children) {
      const c = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) {
        c.setAttribute(k, v);
      }
      el.append(c);
    }
    return el;
  }

  function icon(type) {
    const ball = [
      ['circle', { cx: 10, cy: 10, r: 8.2 }],
      ['path', { d: 'M10 6.4l3.4 2.5-1.3 4H7.9l-1.3-4z' }],
      ['path', { class: 'seams', d: 'M10 6.4V2.2M13.4 8.9l3.9-1.3M12.1 12.9l2.4 3.4M7.9 12.9l-2.4 3.4M6.6 8.9L2.7 7.6' }],
    ];
    switch (type) {
      case 'goal':
      case 'penalty_goal':
        return svg('icon-ball', label(type), ball);
      case 'own_goal':
        return svg('icon-ball own', label(type), ball);
      case 'yellow_card':
        return svg('icon-card yellow', label(type), [['rect', { x: 6, y: 3, width: 9, height: 14, rx: 1.5 }]]);
      case 'red_card':
        return svg('icon-card red', label(type), [['rect', { x: 6, y: 3, width: 9, height: 14, rx: 1.5 }]]);
      case 'second_yellow':
        return svg('icon-card', label(type), [
          ['rect', { class: 'y', x: 4, y: 3, width: 8, height: 12, rx: 1.5 }],
          ['rect', { class: 'r', x: 8, y: 5, width: 8, height: 12, rx: 1.5 }],
        ]);
      case 'substitution':
        return svg('icon-sub', label(type), [
          ['path', { class: 'in', d: 'M6 16V5M3 8l3-3 3 3' }],
          ['path', { class: 'out', d: 'M14 4v11M11 12l3 3 3-3' }],
        ]);
      case 'var':
        return svg('icon-var', label(type), [
          ['rect', { x: 2.5, y: 4, width: 15, height: 10, rx: 1.5 }],
          ['path', { d: 'M7 17h6M10 14v3' }],
        ]);
      case 'missed_penalty':
        return svg('icon-miss', label(type), [
          ['circle', { cx: 10, cy: 10, r: 7 }],
          ['path', { d: 'M5 5l10 10M15 5L5 15' }],
        ]);
      default:
        return svg('icon-other', label(type), [['circle', { cx: 10, cy: 10, r: 3.5 }]]);
    }
  }

  function announceGoals(s, fresh) {
    if (!fresh.length) {
      return;
    }
    const m = s.m;
    for (const inc of m.incidents || []) {
      if (fresh.includes(inc.id) && GOALS.has(inc.type) && inc.confirmed !== false) {
        const score = m.score || {};
        announcer.textContent = `${label(inc.type)}: ${teamName(m, 'home')} ${score.home}, `
          + `${teamName(m, 'away')} ${score.away}. ${inc.player || ''} ${minuteText(inc)}`;
      }
    }
  }

  function markSyncing(s, on) {
    if (s.card) {
      s.card.querySelector('.badge-sync').hidden = !on;
      s.card.setAttribute('aria-busy', String(on));
    }
  }

  // Cards sorted: live, then upcoming, then finished; by kick-off, then name.
  function sortKey(s) {
    const m = s.m;
    return [phaseOf(m).group, (m.fixture && m.fixture.start) || '',
      teamName(m, 'home'), m.id];
  }

  function compareKeys(a, b) {
    for (let i = 0; i < a.length; i++) {
      if (a[i] < b[i]) {
        return -1;
      }
      if (a[i] > b[i]) {
        return 1;
      }
    }
    return 0;
  }

  function place(s) {
    const key = sortKey(s);
    let next = null;
    for (const other of matches.values()) {
      if (other === s || !other.card || !other.card.isConnected) {
        continue;
      }
      if (compareKeys(sortKey(other), key) > 0 &&
          (!next || compareKeys(sortKey(other), sortKey(next)) < 0)) {
        next = other;
      }
    }
    grid.insertBefore(s.card, next ? next.card : null);
    emptyEl.hidden = true;
    grid.setAttribute('aria-busy', 'false');
  }

  // ---- filters, feeds, summary ----------------------------------------------------------

  function applyFilter(card) {
    const d = card.dataset;
    const textOk = !filterText || (d.search || '').includes(filterText);
    const showOk = show === 'all' || d.group === show;
    card.hidden = !(textOk && showOk);
  }

  function applyFilters() {
    for (const s of matches.values()) {
      if (s.card) {
        applyFilter(s.card);
      }
    }
    updateSummary();
  }

  function renderFeeds() {
    const bad = [...feeds.entries()].filter(([, state]) => state !== 'live');
    feedsEl.hidden = bad.length === 0;
    const parts = bad.map(([source, state]) => {
      const b = document.createElement('span');
      const strong = document.createElement('strong');
      strong.textContent = source;
      b.append('Feed ', strong, state === 'stale'
        ? ' is stale: scores may lag.' : ' is offline: scores are not updating.');
      return b;
    });
    feedsEl.replaceChildren(...parts);
    document.documentElement.dataset.feeds = bad.length ? 'degraded' : 'live';
  }

  function updateSummary() {
    let live = 0;
    let visible = 0;
    for (const s of matches.values()) {
      if (s.card && s.card.dataset.live === 'true') {
        live++;
      }
      if (s.card && !s.card.hidden) {
        visible++;
      }
    }
    const n = matches.size;
    summaryEl.textContent = `${n} ${n === 1 ? 'match' : 'matches'} · ${live} live`
      + (visible !== n ? ` · ${visible} shown` : '');
  }

  // ---- wiring ----------------------------------------------------------------------------

  $('#filter').addEventListener('input', (ev) => {
    filterText = ev.target.value.trim().toLowerCase();
    applyFilters();
  });

  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => {
      show = tab.dataset.show;
      for (const t of document.querySelectorAll('.tab')) {
        t.setAttribute('aria-pressed', String(t === tab));
      }
      applyFilters();
    });
  }

  // Come back at once when the network or the tab does.
  const reconnectNow = () => {
    if (!ws) {
      attempt = 0;
      connect();
    }
  };
  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      reconnectNow();
    }
  });

  setInterval(tickClocks, 1000);
  connect();
})();
