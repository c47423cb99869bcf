-- Web Push (issue 12). Identical on both engines.
--
-- A push subscription is one browser a recipient opted in from (`POST
-- /api/v1/me/push-subscriptions`, the W3C Push API's PushSubscription): its push-service
-- endpoint (unique per recipient) and the client keys of RFC 8291 (`p256dh`: the browser's
-- P-256 public key, uncompressed, base64url; `auth`: the 16-byte auth secret, base64url).
-- A 404/410 from the push service deletes the row; erasing the recipient deletes theirs.
CREATE TABLE push_subscriptions (
    recipient_id TEXT NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    endpoint     TEXT NOT NULL,
    p256dh       TEXT NOT NULL,
    auth         TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (recipient_id, endpoint)
);

-- Keys the service generates once and keeps: `vapid_private_key` is the VAPID (RFC 8292)
-- P-256 private key, base64url of its 32-byte scalar, written at first start when
-- CLAIRON_VAPID_PRIVATE_KEY is not set. The first writer wins (primary key).
CREATE TABLE service_keys (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
