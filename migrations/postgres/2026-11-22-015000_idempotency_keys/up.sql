-- Idempotency-Key records of the ingestion POSTs, per API key (identical on both engines).
--
-- A row is inserted first, `in_progress`, under the primary key: of two concurrent requests with
-- one key only one inserts, the other is told the request is in progress. The response is stored
-- when the request completes (`completed`); a 5xx answer deletes the row so the client may retry.
-- Rows are ignored and purged once `expires_at` (UTC, 24 h after creation) has passed.

CREATE TABLE idempotency_keys (
    api_key_hash     TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    state            TEXT NOT NULL,
    response_status  SMALLINT,
    response_type    TEXT,
    response_body    TEXT,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (api_key_hash, idempotency_key)
);

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
