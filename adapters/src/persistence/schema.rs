//! Diesel's view of the tables, shared by both engines.
//!
//! Written by hand to match `migrations/sqlite` and `migrations/postgres` column for column; only
//! SQL types that `MultiConnection` maps on both engines appear here (`Text`, `SmallInt`,
//! `Integer`, `BigInt`, `Timestamp`). JSON is stored as `Text` for that reason.

diesel::table! {
    /// People Clairon notifies, by the host application's id.
    recipients (id) {
        /// The host application's user id.
        id -> Text,
        /// Display name.
        name -> Text,
        /// RFC 5322 address.
        email -> Nullable<Text>,
        /// Telegram chat id or `@username`.
        telegram_chat_id -> Nullable<Text>,
        /// E.164 phone number.
        phone -> Nullable<Text>,
        /// `fr` or `en`.
        locale -> Nullable<Text>,
        /// IANA zone name.
        timezone -> Nullable<Text>,
        /// UTC.
        created_at -> Timestamp,
        /// UTC.
        updated_at -> Timestamp,
        /// The chat id Telegram refused for good ("chat not found", "bot was blocked").
        telegram_unreachable_chat_id -> Nullable<Text>,
        /// Telegram's description of the refusal.
        telegram_unreachable_reason -> Nullable<Text>,
        /// The last `notifications.seq` given to this recipient (0: none yet).
        last_seq -> BigInt,
        /// The generation every valid recipient token of theirs carries (claim `gen`): random,
        /// drawn anew when their tokens are revoked; never 0 for a row the application made.
        token_generation -> BigInt,
        /// Where their signed webhooks are posted (http or https URL).
        webhook_url -> Nullable<Text>,
        /// Their webhook signing secret, `whsec_` + base64; never answered nor logged.
        webhook_secret -> Nullable<Text>,
        /// The webhook URL that answered 410 Gone; only counts while it is still `webhook_url`.
        webhook_disabled_url -> Nullable<Text>,
        /// What the endpoint answered when it was disabled.
        webhook_disabled_reason -> Nullable<Text>,
        /// Their Slack incoming-webhook URL; never answered nor logged (it is the credential).
        slack_webhook_url -> Nullable<Text>,
        /// The Slack webhook URL Slack refused for good; only counts while it is still
        /// `slack_webhook_url`.
        slack_unreachable_url -> Nullable<Text>,
        /// What Slack answered when it refused it.
        slack_unreachable_reason -> Nullable<Text>,
    }
}

diesel::table! {
    /// One message for one recipient.
    notifications (id) {
        /// UUIDv7 text: sorts by creation time.
        id -> Text,
        /// The recipient.
        recipient_id -> Text,
        /// `info`, `success`, `warning`, `error`.
        kind -> Text,
        /// `Priority::rank`: 0 (low) to 3 (critical).
        priority -> SmallInt,
        /// Title.
        title -> Text,
        /// Plain-text body.
        body -> Text,
        /// Call-to-action URL.
        action_url -> Nullable<Text>,
        /// Call-to-action label.
        action_label -> Nullable<Text>,
        /// A JSON object, as text.
        metadata -> Text,
        /// Dotted event type.
        event_type -> Text,
        /// The producing event; unique with `recipient_id`.
        source_event_id -> Nullable<Text>,
        /// UTC.
        created_at -> Timestamp,
        /// UTC; NULL while unread.
        read_at -> Nullable<Timestamp>,
        /// UTC: hidden from the inbox until then; NULL for an immediate notification.
        deliver_at -> Nullable<Timestamp>,
        /// Names a notification its producer may replace or cancel while pending
        /// (`reminder:{planning}:{recipient}`); unique among live notifications.
        cancellation_key -> Nullable<Text>,
        /// UTC: cancelled, hidden for good.
        cancelled_at -> Nullable<Timestamp>,
        /// Per-recipient sequence number, 1, 2, 3… in commit order (SSE event ids); set in the
        /// inserting transaction, NULL only in between.
        seq -> Nullable<BigInt>,
        /// The `X-Request-Id` of the HTTP request that created it; NULL when made in process.
        request_id -> Nullable<Text>,
        /// The planning id of a held `planning.modified` notice (coalesced changes, issue 13);
        /// NULL otherwise.
        coalesce_key -> Nullable<Text>,
    }
}

diesel::table! {
    /// A notification on one channel: the outbox.
    deliveries (id) {
        /// UUIDv7 text.
        id -> Text,
        /// The notification delivered.
        notification_id -> Text,
        /// Denormalised from the notification.
        recipient_id -> Text,
        /// `in_app`, `email`, `telegram`.
        channel -> Text,
        /// `DeliveryStatus::as_str`.
        status -> Text,
        /// The notification's `Priority::rank`, copied for the claim order.
        priority -> SmallInt,
        /// Tries so far.
        attempts -> Integer,
        /// When it is due (UTC); the creation time for new deliveries.
        next_attempt_at -> Timestamp,
        /// While `sending`: when the dispatcher's claim lapses (UTC).
        lease_expires_at -> Nullable<Timestamp>,
        /// Skip reason or last failure.
        last_error -> Nullable<Text>,
        /// The provider's message id.
        provider_message_id -> Nullable<Text>,
        /// UTC.
        created_at -> Timestamp,
        /// UTC.
        updated_at -> Timestamp,
        /// UTC.
        sent_at -> Nullable<Timestamp>,
        /// While `sending`: the claim (fencing token) that holds it; outcomes and lease renewals
        /// are written only under it.
        claim_token -> Nullable<Text>,
        /// Workers that died holding it (lease lapsed, no outcome) since its last recorded
        /// outcome; at 2 it is parked `dead` ("poison").
        crashes -> Integer,
        /// The delivery of the same notification this one stands in for (fallback chain).
        fallback_of -> Nullable<Text>,
        /// The channels still to try if this one gives up, in order, comma-separated.
        fallback -> Nullable<Text>,
        /// Where it goes when the channel has several addresses per recipient: the push
        /// subscription's endpoint for `web_push`; NULL otherwise.
        address -> Nullable<Text>,
        /// The claim order within a priority, higher first: 1 while it is a put-back waiting
        /// for its pacing slot (`SendOutcome::Paced`), 0 otherwise (any other outcome clears it).
        claim_rank -> SmallInt,
    }
}

diesel::table! {
    /// The audit trail: one row per try of a delivery.
    delivery_attempts (id) {
        /// Autoincrement (SQLite) / BIGSERIAL (PostgreSQL).
        id -> BigInt,
        /// The delivery tried.
        delivery_id -> Text,
        /// 1 for the first try.
        number -> Integer,
        /// UTC.
        started_at -> Timestamp,
        /// Milliseconds.
        duration_ms -> BigInt,
        /// `sent`, `transient`, `rate_limited`, `permanent`.
        outcome -> Text,
        /// The failure.
        error -> Nullable<Text>,
        /// The provider's response id.
        provider_response_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// API keys, by the hex SHA-256 of the key (the key itself is never stored), with a name
    /// and a scope; a revoked key keeps its row.
    api_keys (id) {
        /// Autoincrement (SQLite) / BIGSERIAL (PostgreSQL): what `clairon api-keys revoke` takes.
        id -> BigInt,
        /// Whose key it is (free-form).
        name -> Text,
        /// `send`, `read` or `admin`.
        scope -> Text,
        /// Lowercase hex SHA-256 of the key; unique.
        hash -> Text,
        /// UTC.
        created_at -> Timestamp,
        /// UTC, to the minute: the key's last accepted request.
        last_used_at -> Nullable<Timestamp>,
        /// UTC: refused from then on.
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// `Idempotency-Key` records of the ingestion POSTs, per API key.
    idempotency_keys (api_key_hash, idempotency_key) {
        /// Lowercase hex SHA-256 of the API key that sent the request: keys are scoped per client.
        api_key_hash -> Text,
        /// The `Idempotency-Key` header, as sent.
        idempotency_key -> Text,
        /// Lowercase hex SHA-256 of method, path and body.
        fingerprint -> Text,
        /// `in_progress` or `completed`.
        state -> Text,
        /// The stored answer's HTTP status, once completed.
        response_status -> Nullable<SmallInt>,
        /// The stored answer's `Content-Type`.
        response_type -> Nullable<Text>,
        /// The stored answer's body (UTF-8).
        response_body -> Nullable<Text>,
        /// UTC.
        created_at -> Timestamp,
        /// UTC: ignored and purged from then on.
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// The other recipients a notification names (a planning summary's artists), for erasure.
    notification_mentions (notification_id, recipient_id) {
        /// The notification.
        notification_id -> Text,
        /// Someone it names, other than its own recipient.
        recipient_id -> Text,
    }
}

diesel::table! {
    /// The recipients an `Idempotency-Key` request wrote about, for erasure.
    idempotency_subjects (api_key_hash, idempotency_key, recipient_id) {
        /// The record's API key hash.
        api_key_hash -> Text,
        /// The record's key.
        idempotency_key -> Text,
        /// A recipient the request named.
        recipient_id -> Text,
    }
}

diesel::table! {
    /// One preference document per recipient (no row: the defaults).
    recipient_preferences (recipient_id) {
        /// The recipient.
        recipient_id -> Text,
        /// The document (`channels`, `event_types`, `quiet_hours`), JSON as text.
        document -> Text,
        /// UTC.
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The append-only consent history: grants and withdrawals per channel.
    consents (id) {
        /// Autoincrement (SQLite) / BIGSERIAL (PostgreSQL): recording order.
        id -> BigInt,
        /// The recipient.
        recipient_id -> Text,
        /// A catalogue channel name (`sms`, `email`, ...).
        channel -> Text,
        /// 1 granted, 0 withdrawn.
        granted -> SmallInt,
        /// Where it was given (`signup-form`).
        source -> Text,
        /// The words shown.
        wording -> Nullable<Text>,
        /// UTC.
        recorded_at -> Timestamp,
    }
}

diesel::joinable!(notifications -> recipients (recipient_id));
diesel::joinable!(notification_mentions -> notifications (notification_id));
diesel::joinable!(deliveries -> notifications (notification_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));

diesel::allow_tables_to_appear_in_same_query!(
    recipients,
    notifications,
    deliveries,
    delivery_attempts,
    api_keys,
    idempotency_keys,
    notification_mentions,
    idempotency_subjects,
    recipient_preferences,
    consents,
);

diesel::table! {
    /// One row per job run: Clairon's (scheduled, by hand, chained) and outside systems'.
    job_runs (id) {
        /// UUIDv7 text: sorts by start time.
        id -> Text,
        /// A built-in job's name, a `CLAIRON_JOBS_FILE` job's, or an external one's.
        job -> Text,
        /// `schedule`, `manual`, `api`.
        #[sql_name = "trigger"]
        trigger_kind -> Text,
        /// UTC.
        started_at -> Timestamp,
        /// UTC; NULL while running.
        finished_at -> Nullable<Timestamp>,
        /// Milliseconds; NULL while running.
        duration_ms -> Nullable<BigInt>,
        /// `running`, `success`, `warning`, `error` or `skipped`.
        status -> Text,
        /// A JSON object, as text.
        stats -> Text,
        /// Why it failed (`error_details`).
        error -> Nullable<Text>,
        /// `internal` or `external`.
        source -> Text,
        /// `sync`, `report`, `chain`, `backup`, `other`.
        task_type -> Text,
        /// A one-line summary.
        message -> Nullable<Text>,
        /// Who started it by hand.
        triggered_by_user -> Nullable<Text>,
        /// The run of the job this one is chained after.
        parent_run_id -> Nullable<Text>,
        /// The scheduled occurrence (UTC); unique with `job`.
        occurrence -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// One row per GDPR erasure, without personal data (no recipient id).
    erasures (id) {
        /// Autoincrement (SQLite) / BIGSERIAL (PostgreSQL).
        id -> BigInt,
        /// UTC.
        erased_at -> Timestamp,
        /// Who asked: `api-key:{id}`, or `env` for a `CLAIRON_API_KEYS` key.
        actor -> Text,
        /// Notifications erased.
        notifications -> BigInt,
        /// Deliveries erased.
        deliveries -> BigInt,
        /// Delivery attempts erased.
        attempts -> BigInt,
        /// Other recipients' notifications rewritten without them.
        redacted -> BigInt,
        /// `Idempotency-Key` records that named them, dropped.
        idempotency_records -> BigInt,
    }
}

diesel::table! {
    /// One row (`id` 1) that `/health/ready` writes to, so a read-only database is noticed.
    health_probe (id) {
        /// Always 1.
        id -> Integer,
        /// UTC: the last readiness probe's write.
        checked_at -> Timestamp,
    }
}

diesel::table! {
    /// Named groups of recipients (`PUT /api/v1/topics/{key}`).
    topics (key) {
        /// `[a-z0-9][a-z0-9._-]{0,99}`.
        key -> Text,
        /// Display name.
        name -> Text,
        /// UTC.
        created_at -> Timestamp,
        /// UTC.
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The members of each topic.
    topic_subscriptions (topic_key, recipient_id) {
        /// The topic.
        topic_key -> Text,
        /// A member.
        recipient_id -> Text,
        /// UTC: when they joined.
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Every version of the routing rules, append-only; the highest is in force.
    routing_rule_versions (version) {
        /// 1, 2, 3…
        version -> BigInt,
        /// JSON array of `{event, topics?, channels?, priority?}`.
        rules -> Text,
        /// UTC.
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// A browser a recipient opted in to Web Push from (W3C Push API subscription).
    push_subscriptions (recipient_id, endpoint) {
        /// Whose browser.
        recipient_id -> Text,
        /// The push service's URL for this subscription (RFC 8030 §5).
        endpoint -> Text,
        /// The browser's P-256 public key, uncompressed point, base64url (RFC 8291 §3.1).
        p256dh -> Text,
        /// The 16-byte authentication secret, base64url (RFC 8291 §3.2).
        auth -> Text,
        /// UTC: when it was posted.
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Keys generated once by the service and kept (the VAPID private key).
    service_keys (name) {
        /// What the key is (`vapid_private_key`).
        name -> Text,
        /// The key, encoded as its name says.
        value -> Text,
        /// UTC: when it was generated.
        created_at -> Timestamp,
    }
}

diesel::joinable!(topic_subscriptions -> topics (topic_key));
diesel::allow_tables_to_appear_in_same_query!(topics, topic_subscriptions);

diesel::table! {
    /// One digest (issue 13): a recipient's batched deliveries of one channel and window, sent
    /// as one message. Unique on (recipient, channel, window end): its idempotency key.
    digests (id) {
        /// UUIDv7 text: the digest's email `Message-ID` and Telegram delivery id.
        id -> Text,
        /// Whose digest.
        recipient_id -> Text,
        /// The digested channel (`email`, `telegram`).
        channel -> Text,
        /// UTC: the window's end, the `next_attempt_at` of its batched deliveries.
        window_end -> Timestamp,
        /// `sending`, then `sent` or `failed`.
        status -> Text,
        /// How many notifications it lists.
        item_count -> Integer,
        /// The provider's id of the message, once sent.
        provider_message_id -> Nullable<Text>,
        /// Why it failed.
        last_error -> Nullable<Text>,
        /// UTC: when it was opened.
        created_at -> Timestamp,
        /// UTC: when the provider took it.
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// The outbox of delivery events posted to the host application (issue 12,
    /// `CLAIRON_EVENTS_WEBHOOK_URL`), written in the transaction of the change it reports.
    host_events (id) {
        /// UUIDv7 text: the `webhook-id`, the same on every retry.
        id -> Text,
        /// `delivery.sent`, `delivery.failed`, `delivery.dead` or `notification.read`.
        event_type -> Text,
        /// The JSON body posted: `{"type", "timestamp", "data"}`.
        payload -> Text,
        /// `pending`, then `sent` or `dead`.
        status -> Text,
        /// Tries so far.
        attempts -> Integer,
        /// UTC: when it is due (pushed forward by a claim: its lease).
        next_attempt_at -> Timestamp,
        /// Why the last try failed.
        last_error -> Nullable<Text>,
        /// UTC: when the change it reports was written.
        created_at -> Timestamp,
        /// UTC: when the host answered `2xx`.
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// When each throttled alert was last raised (issue 13: `deliveries.dead_letters`, at most
    /// once an hour); moved forward by compare-and-set, so of several processes one raises it.
    alert_throttles (alert) {
        /// The alert's event type (`deliveries.dead_letters`).
        alert -> Text,
        /// UTC: when it was last raised.
        raised_at -> Timestamp,
    }
}
