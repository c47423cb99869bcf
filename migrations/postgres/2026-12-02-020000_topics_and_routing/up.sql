-- Topics and routing rules (issue 11). Identical on both engines.
--
-- A topic is a named group of recipients (`PUT /api/v1/topics/{key}`); a subscription is one
-- member. Erasing a recipient deletes their subscriptions (`DieselPersonalDataStore::erase`,
-- and the foreign key's cascade besides).
CREATE TABLE topics (
    key        TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE topic_subscriptions (
    topic_key    TEXT NOT NULL REFERENCES topics (key) ON DELETE CASCADE,
    recipient_id TEXT NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (topic_key, recipient_id)
);

CREATE INDEX topic_subscriptions_recipient_idx ON topic_subscriptions (recipient_id);

-- The routing rules, one row per version, append-only: the highest version is in force. No
-- row: the built-in default set (`RoutingRules::default_set`). `rules` is the JSON array of
-- `{event, topics?, channels?, priority?}` as `PUT /api/v1/routing-rules` took it.
CREATE TABLE routing_rule_versions (
    version    BIGINT PRIMARY KEY NOT NULL,
    rules      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
