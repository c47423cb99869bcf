// Clairon's service worker (served at /sw.js): shows each Web Push message as a notification
// and opens its action_url on click. The payload is the JSON {id, title, body, action_url},
// decrypted by the browser (RFC 8291) before the `push` event fires.
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (_) {
    message = { title: event.data ? event.data.text() : '' };
  }
  const title = message.title || 'Clairon';
  const options = {
    body: message.body || '',
    tag: message.id || undefined,
    data: { id: message.id || null, action_url: message.action_url || null },
    actions: message.action_url ? [{ action: 'open', title: 'Open' }] : [],
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const target = data.action_url || '/inbox';
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (client.url === target && 'focus' in client) return client.focus();
      }
      return self.clients.openWindow(target);
    }),
  );
});
