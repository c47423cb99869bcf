// Clairon's browser client: a recipient's live inbox, as a plain ES module (no build step).
//
//   import { ClaironInbox } from '/static/clairon.js';
//   const inbox = new ClaironInbox({ token });           // a token from POST /api/v1/recipients/{id}/tokens
//   inbox.addEventListener('created', (e) => console.log(e.detail));   // a notification
//   inbox.addEventListener('read', (e) => console.log(e.detail));      // ids now read
//   inbox.addEventListener('count', (e) => console.log(e.detail));     // unread count
//   inbox.addEventListener('sync', () => inbox.list());                // caught up after a reconnect
//   inbox.addEventListener('state', (e) => console.log(e.detail));     // connecting|live|reconnecting|unauthorized
//   inbox.start();
//   const prefs = await inbox.preferences();                         // {channels, event_types, quiet_hours}
//   await inbox.savePreferences({ ...prefs, channels: { email: false } });   // replaces the whole document
//   const consents = await inbox.consents();                         // newest first
//
// Transport: WebSocket (/api/v1/me/ws, token as subprotocol); when the WebSocket cannot be
// opened three times in a row, Server-Sent Events (/api/v1/me/notifications/stream, resuming
// from the last seen sequence number). Reconnection uses exponential backoff with full jitter
// (a ceiling of 1 s after the first failure, doubling up to 30 s). After every reconnect the client emits `sync`: refetch the list.
// A `created` notification whose `seq` was already shown is skipped (the server may publish one
// twice after a crash: same id, same seq).
//
// On a page containing an element with `data-clairon-inbox`, the module mounts the notification
// center UI on it (what GET /inbox serves).

const API = '/api/v1/me';
const SHOWN_SEQS = 1000;

export class ClaironInbox extends EventTarget {
  /** @param {{token: string, baseUrl?: string, transport?: 'auto'|'ws'|'sse'}} options */
  constructor({ token, baseUrl = '', transport = 'auto' }) {
    super();
    this.token = token;
    this.baseUrl = baseUrl || window.location.origin;
    this.transport = transport;
    this.lastSeq = null;
    // Sequence numbers already shown (the newest SHOWN_SEQS): after a server crash the same
    // notification may be published twice, with the same seq; it is shown once.
    this.shown = new Set();
    this.failures = 0;
    this.wsFailures = 0;
    this.stopped = true;
    this.socket = null;
    this.source = null;
    this.timer = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(this.baseUrl + API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      this.stop();
      this.emit('state', 'unauthorized');
      throw new Error('unauthorized');
    }
    if (!response.ok) {
      // An RFC 7807 problem: its detail names the bad fields.
      const problem = await response.json().catch(() => null);
      const error = new Error((problem && problem.detail) || `${method} ${path}: ${response.status}`);
      error.problem = problem;
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  /** The recipient's preference document (defaults when never set). */
  preferences() {
    return this.request('GET', '/preferences');
  }

  /** Replaces the whole preference document; resolves to the stored one. */
  savePreferences(document) {
    return this.request('PUT', '/preferences', document);
  }

  /** The consent history, newest first (an array). */
  consents() {
    return this.request('GET', '/consents').then((r) => (Array.isArray(r) ? r : r.items || r.consents || []));
  }

  /** Newest first; `status` is `all`, `unread` or `read`. */
  list(status = 'all', limit = 50) {
    return this.request('GET', `/notifications?status=${encodeURIComponent(status)}&limit=${limit}`);
  }

  unreadCount() {
    return this.request('GET', '/notifications/unread-count').then((r) => r.unread);
  }

  markRead(id) {
    return this.request('POST', `/notifications/${encodeURIComponent(id)}/read`);
  }

  markAllRead() {
    return this.request('POST', '/notifications/read-all');
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
    if (this.source) this.source.close();
    this.socket = null;
    this.source = null;
  }

  useSse() {
    return this.transport === 'sse' || (this.transport === 'auto' && this.wsFailures >= 3);
  }

  connect() {
    if (this.stopped) return;
    this.emit('state', this.failures ? 'reconnecting' : 'connecting');
    if (this.useSse()) this.connectSse();
    else this.connectWs();
  }

  connected() {
    this.failures = 0;
    this.emit('state', 'live');
    this.emit('sync');
  }

  retry() {
    if (this.stopped) return;
    this.failures += 1;
    const ceiling = Math.min(30000, 500 * 2 ** Math.min(this.failures, 10));
    const delay = Math.random() * ceiling; // full jitter: reconnecting clients spread out
    this.emit('state', 'reconnecting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  handle(frame) {
    switch (frame.type) {
      case 'notification.created': {
        const seq = frame.notification.seq;
        if (seq != null) {
          if (this.shown.has(seq)) break; // already shown: a repeat after a crash
          this.shown.add(seq);
          if (this.shown.size > SHOWN_SEQS) this.shown.delete(this.shown.values().next().value);
          this.lastSeq = Math.max(this.lastSeq ?? 0, seq);
        }
        this.emit('created', frame.notification);
        break;
      }
      case 'notification.read':
        this.emit('read', frame.ids);
        break;
      case 'unread_count':
        this.emit('count', frame.count);
        break;
      case 'resync':
        this.emit('sync');
        break;
      default:
        break;
    }
  }

  connectWs() {
    const url = new URL(API + '/ws', this.baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    let opened = false;
    const socket = new WebSocket(url, ['clairon', this.token]);
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
      this.wsFailures = 0;
      this.connected();
    };
    socket.onmessage = (message) => {
      try {
        this.handle(JSON.parse(message.data));
      } catch (_) {
        /* not ours */
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === 4401) {
        this.stop();
        this.emit('state', 'unauthorized');
        return;
      }
      if (!opened) this.wsFailures += 1;
      this.retry();
    };
  }

  connectSse() {
    const url = new URL(API + '/notifications/stream', this.baseUrl);
    url.searchParams.set('token', this.token);
    if (this.lastSeq != null) url.searchParams.set('since', String(this.lastSeq));
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => this.connected();
    for (const type of ['notification.created', 'notification.read', 'unread_count']) {
      source.addEventListener(type, (event) => {
        try {
          this.handle(JSON.parse(event.data));
        } catch (_) {
          /* not ours */
        }
      });
    }
    source.onerror = () => {
      // Reconnect ourselves (with `since`) rather than EventSource's fixed delay.
      source.close();
      if (this.source !== source) return;
      this.source = null;
      // A refused token shows up as an error too: check it before retrying.
      this.unreadCount().then(() => this.retry(), () => {});
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The notification center page (GET /inbox)

// Relative times in the page's language ("il y a 5 min", "5 min ago"), from the largest unit
// that fits; null when the browser has no Intl.RelativeTimeFormat.
const UNITS = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['week', 7 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

export function relativeTime(iso, lang, now = Date.now()) {
  if (typeof Intl === 'undefined' || !Intl.RelativeTimeFormat) return null;
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  if (!Number.isFinite(seconds)) return null;
  const format = new Intl.RelativeTimeFormat(lang, { numeric: 'auto', style: 'short' });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') {
      return format.format(Math.trunc(seconds / size), unit);
    }
  }
  return null;
}

// Only absolute http(s) URLs become links: never javascript:, data: or relative ones.
export function safeHttpUrl(raw) {
  if (typeof raw !== 'string') return null;
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

// The event types the preference centre always offers (the planning ones), besides those of
// the document and of the notifications shown.
const KNOWN_EVENT_TYPES = ['planning.assigned', 'planning.modified', 'planning.cancelled', 'planning.reminder'];
const SWITCHABLE = ['email', 'telegram'];
const EVENT_KEY = /^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$/;

function mount(root) {
  const strings = JSON.parse(root.dataset.strings || '{}');
  const lang = root.dataset.lang || 'en';
  const $ = (id) => root.querySelector(`#${id}`);
  const list = $('list');
  const badge = $('badge');
  const bell = $('bell');
  const status = $('status');
  const form = $('token-form');
  const empty = $('empty');
  const prefs = $('prefs');
  const prefsToggle = $('prefs-toggle');
  const prefsForm = $('prefs-form');
  const prefsStatus = $('prefs-status');
  let inbox = null;
  let items = [];
  let more = false;
  let unread = 0;
  let filter = 'all';
  let document_ = null; // the preference document as last read or saved

  const plural = (n) =>
    n === 0 ? strings.unread_zero : n === 1 ? strings.unread_one : strings.unread_many.replace('{n}', n);

  function setCount(n) {
    unread = n;
    badge.textContent = String(n);
    badge.dataset.count = String(n);
    bell.setAttribute('aria-label', plural(n));
    renderCounts();
  }

  // A count per filter: unread from the server; all and read from the list loaded ("50+" when
  // there are more pages than the one shown).
  function renderCounts() {
    const suffix = more ? '+' : '';
    const read = items.filter((n) => n.read).length;
    const counts = { all: `${items.length}${suffix}`, unread: String(unread), read: `${read}${suffix}` };
    for (const span of root.querySelectorAll('.count[data-filter]')) {
      span.textContent = counts[span.dataset.filter];
    }
  }

  function renderTimes() {
    for (const time of list.querySelectorAll('time[datetime]')) {
      time.textContent = relativeTime(time.dateTime, lang) || new Date(time.dateTime).toLocaleString(lang);
    }
  }

  function render() {
    list.replaceChildren();
    const shown = items.filter((n) => filter === 'all' || (filter === 'read') === n.read);
    empty.hidden = shown.length > 0;
    for (const n of shown) {
      const li = document.createElement('li');
      li.dataset.id = n.id;
      li.dataset.read = String(n.read);
      const title = document.createElement('h2');
      if (!n.read) {
        // Said to screen readers before the title, outside it: the title stays the title.
        const marker = document.createElement('span');
        marker.className = 'visually-hidden unread-marker';
        marker.textContent = strings.unread_marker;
        li.append(marker);
        const dot = document.createElement('span');
        dot.className = 'unread-dot';
        dot.setAttribute('aria-hidden', 'true');
        title.append(dot);
      }
      title.append(document.createTextNode(n.title));
      const body = document.createElement('p');
      body.textContent = n.body;
      const when = document.createElement('time');
      when.dateTime = n.created_at;
      when.title = new Date(n.created_at).toLocaleString(lang);
      li.append(title, body, when);
      const href = safeHttpUrl(n.action_url);
      if (href) {
        const link = document.createElement('a');
        link.className = 'action';
        link.href = href;
        link.rel = 'noopener noreferrer';
        link.target = '_blank';
        link.textContent = n.action_label || strings.open;
        const p = document.createElement('p');
        p.append(link);
        li.append(p);
      }
      if (!n.read) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'mark-read';
        button.textContent = strings.mark_one;
        button.setAttribute('aria-label', `${strings.mark_one}: ${n.title}`);
        button.addEventListener('click', () => inbox.markRead(n.id).catch(() => {}));
        li.append(' ', button);
      }
      list.append(li);
    }
    renderTimes();
    renderCounts();
  }

  async function refresh() {
    try {
      const [page, count] = await Promise.all([inbox.list('all'), inbox.unreadCount()]);
      items = page.items;
      more = Boolean(page.next_cursor);
      render();
      setCount(count);
    } catch (_) {
      /* the state event says why */
    }
  }

  // ---- the preference centre -------------------------------------------------------------

  function eventRow(key, entry) {
    const tr = document.createElement('tr');
    tr.dataset.eventType = key;
    const th = document.createElement('td');
    const code = document.createElement('code');
    code.textContent = key;
    th.append(code);
    tr.append(th);
    for (const channel of SWITCHABLE) {
      const td = document.createElement('td');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.dataset.channel = channel;
      box.checked = !(entry && entry[channel] === false);
      box.setAttribute('aria-label', `${key}: ${strings[`channel_${channel}`]}`);
      td.append(box);
      tr.append(td);
    }
    return tr;
  }

  function renderPreferences(doc) {
    document_ = doc || {};
    const channels = document_.channels || {};
    for (const box of prefsForm.querySelectorAll('input[name="channel"]')) {
      if (box.value !== 'in_app') box.checked = channels[box.value] !== false;
    }
    const types = document_.event_types || {};
    const keys = new Set([...KNOWN_EVENT_TYPES, ...Object.keys(types)]);
    for (const n of items) if (n.event_type) keys.add(n.event_type);
    const tbody = $('prefs-events').querySelector('tbody');
    tbody.replaceChildren(...[...keys].sort().map((key) => eventRow(key, types[key])));
    const quiet = document_.quiet_hours;
    $('quiet-on').checked = Boolean(quiet);
    if (quiet) {
      $('quiet-start').value = quiet.start;
      $('quiet-end').value = quiet.end;
    }
  }

  function renderConsents(consents) {
    const ul = $('consents');
    ul.replaceChildren();
    for (const c of consents) {
      const li = document.createElement('li');
      li.dataset.channel = c.channel;
      const when = c.recorded_at ? new Date(c.recorded_at).toLocaleString(lang) : '';
      li.textContent = `${c.channel} — ${c.granted ? strings.granted : strings.revoked}${c.source ? ` (${c.source})` : ''} — ${when}`;
      ul.append(li);
    }
    $('no-consents').hidden = consents.length > 0;
  }

  // The document the form says, keeping what it does not show: explicit `true` entries stay
  // explicit (they may override a prefix), unticked boxes are `false`, the rest is left out
  // (a missing key means "allowed").
  function documentFromForm() {
    const before = document_ || {};
    const channels = { ...(before.channels || {}) };
    for (const box of prefsForm.querySelectorAll('input[name="channel"]')) {
      if (box.value === 'in_app') continue;
      if (!box.checked) channels[box.value] = false;
      else if (channels[box.value] === false) delete channels[box.value];
    }
    const eventTypes = {};
    for (const [key, entry] of Object.entries(before.event_types || {})) eventTypes[key] = { ...entry };
    for (const tr of $('prefs-events').querySelectorAll('tbody tr')) {
      const key = tr.dataset.eventType;
      const entry = eventTypes[key] || {};
      for (const box of tr.querySelectorAll('input[data-channel]')) {
        const channel = box.dataset.channel;
        if (!box.checked) entry[channel] = false;
        else if (entry[channel] === false) delete entry[channel];
      }
      if (Object.keys(entry).length) eventTypes[key] = entry;
      else delete eventTypes[key];
    }
    const doc = { ...before, channels, event_types: eventTypes };
    if ($('quiet-on').checked) doc.quiet_hours = { start: $('quiet-start').value, end: $('quiet-end').value };
    else doc.quiet_hours = null;
    return doc;
  }

  async function loadPreferences() {
    if (!inbox) return;
    try {
      const [doc, consents] = await Promise.all([inbox.preferences(), inbox.consents().catch(() => [])]);
      renderPreferences(doc);
      renderConsents(consents);
      prefs.dataset.loaded = 'true';
    } catch (error) {
      prefsStatus.textContent = `${strings.save_failed} ${error.message}`;
    }
  }

  prefsToggle.addEventListener('click', () => {
    const open = prefs.hidden;
    prefs.hidden = !open;
    prefsToggle.setAttribute('aria-expanded', String(open));
    if (open) loadPreferences();
  });
  $('prefs-add').addEventListener('click', () => {
    const input = $('prefs-new-type');
    const key = input.value.trim();
    if (!EVENT_KEY.test(key)) {
      input.setCustomValidity(strings.add_event_type);
      input.reportValidity();
      return;
    }
    input.setCustomValidity('');
    const tbody = $('prefs-events').querySelector('tbody');
    if (![...tbody.rows].some((tr) => tr.dataset.eventType === key)) tbody.append(eventRow(key, null));
    input.value = '';
  });
  prefsForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!inbox) return;
    prefs.dataset.saved = 'false';
    prefsStatus.textContent = '';
    try {
      const saved = await inbox.savePreferences(documentFromForm());
      renderPreferences(saved);
      prefsStatus.textContent = strings.saved;
      prefs.dataset.saved = 'true';
    } catch (error) {
      prefsStatus.textContent = `${strings.save_failed} ${error.message}`;
    }
  });

  // ---- the connection --------------------------------------------------------------------

  function connect(token) {
    if (inbox) inbox.stop();
    sessionStorage.setItem('clairon.token', token);
    form.hidden = true;
    inbox = new ClaironInbox({ token });
    inbox.addEventListener('state', (e) => {
      status.textContent = strings[e.detail] || e.detail;
      root.dataset.state = e.detail;
      if (e.detail === 'unauthorized') {
        sessionStorage.removeItem('clairon.token');
        form.hidden = false;
      }
    });
    inbox.addEventListener('sync', refresh);
    inbox.addEventListener('count', (e) => setCount(e.detail));
    inbox.addEventListener('created', (e) => {
      if (!items.some((n) => n.id === e.detail.id)) items.unshift(e.detail);
      render();
    });
    inbox.addEventListener('read', (e) => {
      const ids = new Set(e.detail);
      for (const n of items) if (ids.has(n.id)) n.read = true;
      render();
    });
    inbox.start();
    if (!prefs.hidden) loadPreferences();
    pushButton.hidden = !('serviceWorker' in navigator);
  }

  // ---- Web Push: "notify me in this browser" ---------------------------------------------

  const pushButton = $('push-enable');
  const pushStatus = $('push-status');
  pushButton.addEventListener('click', async () => {
    if (!inbox) return;
    try {
      pushStatus.textContent = await subscribeToPush(inbox);
    } catch (error) {
      pushStatus.textContent = `${strings.push_failed} ${error.message}`;
    }
  });

  // Asks permission, registers /sw.js, subscribes with the VAPID key, posts the subscription.
  async function subscribeToPush(client) {
    if (!('serviceWorker' in navigator) || !('Notification' in window)) {
      return strings.push_unsupported;
    }
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') return strings.push_denied;
    const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    await navigator.serviceWorker.ready;
    if (!registration.pushManager) return strings.push_unsupported;
    const keyAnswer = await fetch('/api/v1/push/vapid-public-key', { headers: { Accept: 'application/json' } });
    if (!keyAnswer.ok) throw new Error(`${keyAnswer.status}`);
    const { public_key: publicKey } = await keyAnswer.json();
    const subscription =
      (await registration.pushManager.getSubscription()) ||
      (await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: base64UrlToBytes(publicKey),
      }));
    const { endpoint, keys } = subscription.toJSON();
    await client.request('POST', '/push-subscriptions', { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } });
    return strings.push_enabled;
  }

  function base64UrlToBytes(text) {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  }

  for (const radio of root.querySelectorAll('input[name="filter"]')) {
    radio.addEventListener('change', () => {
      filter = radio.value;
      render();
    });
  }
  $('mark-all').addEventListener('click', () => inbox && inbox.markAllRead().catch(() => {}));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token-input').value.trim();
    if (token) connect(token);
  });
  // "il y a 5 min" becomes "il y a 6 min" without a reload.
  setInterval(renderTimes, 30000);

  // A token in the URL is taken, then removed from the address bar and history.
  const params = new URLSearchParams(window.location.search);
  const fromUrl = params.get('token');
  if (fromUrl) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', window.location.pathname + (rest ? `?${rest}` : ''));
  }
  const token = fromUrl || sessionStorage.getItem('clairon.token');
  if (token) connect(token);
  else {
    form.hidden = false;
    status.textContent = strings.unauthorized;
  }
}

if (typeof document !== 'undefined') {
  const start = () => document.querySelectorAll('[data-clairon-inbox]').forEach(mount);
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}
