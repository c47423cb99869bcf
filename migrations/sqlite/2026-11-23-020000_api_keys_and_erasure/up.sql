-- API keys with names, scopes and revocation (issue 5), and the audit of GDPR erasures.
-- Identical on both engines but for the id columns (AUTOINCREMENT here, BIGSERIAL there).
--
-- `api_keys` gets an id, a name and a scope (`send`, `read`, `admin`); a revoked key keeps its
-- row (`revoked_at`, UTC) so `clairon api-keys list` still shows it. Existing keys (the one
-- generated at first start) become `admin` keys, named after their label.
ALTER TABLE api_keys RENAME TO api_keys_old;

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    hash         TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP,
    CONSTRAINT api_keys_hash_key UNIQUE (hash)
);

INSERT INTO api_keys (name, scope, hash, created_at)
    SELECT COALESCE(label, 'key'), 'admin', hash, created_at FROM api_keys_old ORDER BY created_at;

DROP TABLE api_keys_old;

-- One row per GDPR erasure (`DELETE /api/v1/recipients/{id}`), with no personal data: not the
-- recipient's id, only when, who asked (the API key's id, or `env` for a CLAIRON_API_KEYS key)
-- and how many rows went.
CREATE TABLE erasures (
    id            INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    erased_at     TIMESTAMP NOT NULL,
    actor         TEXT NOT NULL,
    notifications BIGINT NOT NULL,
    deliveries    BIGINT NOT NULL,
    attempts      BIGINT NOT NULL
);
