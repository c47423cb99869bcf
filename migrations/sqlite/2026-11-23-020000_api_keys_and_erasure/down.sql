DROP TABLE erasures;

ALTER TABLE api_keys RENAME TO api_keys_new;

CREATE TABLE api_keys (
    hash       TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL,
    label      TEXT
);

INSERT INTO api_keys (hash, created_at, label)
    SELECT hash, created_at, name FROM api_keys_new WHERE revoked_at IS NULL;

DROP TABLE api_keys_new;
