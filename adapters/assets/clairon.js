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

  async request(method, path) {
    const response = await fetch(this.baseUrl + API + path, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' },
    });
    if (response.status === 401) {
      this.stop();
      this.emit('state', 'unauthorized');
      throw new Error('unauthorized');
    }
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
    return response.json();
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
  let inbox = null;
  let items = [];
  let filter = 'all';

  const plural = (n) =>
    n === 0 ? strings.unread_zero : n === 1 ? strings.unread_one : strings.unread_many.replace('{n}', n);

  function setCount(n) {
    badge.textContent = String(n);
    badge.dataset.count = String(n);
    bell.setAttribute('aria-label', plural(n));
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
      title.textContent = n.title;
      const body = document.createElement('p');
      body.textContent = n.body;
      const when = document.createElement('time');
      when.dateTime = n.created_at;
      when.textContent = new Date(n.created_at).toLocaleString(lang);
      li.append(title, body, when);
      if (n.action_url && /^https?:/i.test(n.action_url)) {
        const link = document.createElement('a');
        link.href = n.action_url;
        link.rel = 'noopener noreferrer';
        link.textContent = n.action_label || n.action_url;
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
  }

  async function refresh() {
    try {
      const [page, count] = await Promise.all([inbox.list('all'), inbox.unreadCount()]);
      items = page.items;
      setCount(count);
      render();
    } catch (_) {
      /* the state event says why */
    }
  }

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
