//! [`DieselPersonalDataStore`]: everything held about one recipient, exported or erased at once
//! (GDPR articles 15, 17 and 20).

use std::sync::Arc;

use async_trait::async_trait;
use clairon_application::ports::{
    ErasedCounts, ErasureAudit, ErasureOutcome, MentionRedactor, PersonalDataStore, RecipientData,
    RepositoryError,
};
use clairon_domain::{DeliveryStatus, RecipientId, TopicKey};
use diesel::prelude::*;

use super::notifications::with_deliveries;
use super::CHUNK;
use crate::persistence::connection::{write_transaction, AnyConnection, Database, DbError};
use crate::persistence::rows::{db_time, AttemptRow, NotificationRow, RecipientRow};
use crate::persistence::schema::{
    deliveries, delivery_attempts, erasures, notification_mentions, notifications,
    push_subscriptions, recipients, topic_subscriptions,
};

/// The [`PersonalDataStore`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselPersonalDataStore {
    db: Database,
}

impl DieselPersonalDataStore {
    /// A store on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// An `erasures` row.
#[derive(Debug, Insertable)]
#[diesel(table_name = erasures)]
struct NewErasureRow {
    erased_at: chrono::NaiveDateTime,
    actor: String,
    notifications: i64,
    deliveries: i64,
    attempts: i64,
    redacted: i64,
    idempotency_records: i64,
}

fn as_count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn as_column(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl PersonalDataStore for DieselPersonalDataStore {
    async fn export(&self, id: &RecipientId) -> Result<Option<RecipientData>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .call(move |conn| {
                let Some(row) = recipients::table
                    .find(&id)
                    .select(RecipientRow::as_select())
                    .first(conn)
                    .optional()?
                else {
                    return Ok(None);
                };
                let rows = notifications::table
                    .filter(notifications::recipient_id.eq(&id))
                    .order(notifications::id.asc())
                    .select(NotificationRow::as_select())
                    .load(conn)?;
                let mut details = with_deliveries(conn, rows)?;
                let delivery_ids: Vec<String> = details
                    .iter()
                    .flat_map(|d| d.deliveries.iter().map(|d| d.id.to_string()))
                    .collect();
                let mut attempts: Vec<(String, AttemptRow)> = Vec::new();
                for chunk in delivery_ids.chunks(CHUNK) {
                    attempts.extend(
                        delivery_attempts::table
                            .filter(delivery_attempts::delivery_id.eq_any(chunk))
                            .order(delivery_attempts::id.asc())
                            .select((delivery_attempts::delivery_id, AttemptRow::as_select()))
                            .load::<(String, AttemptRow)>(conn)?,
                    );
                }
                for notification in &mut details {
                    for delivery in &notification.deliveries {
                        notification
                            .attempts
                            .insert(delivery.id.clone(), Vec::new());
                    }
                }
                for (delivery_id, row) in attempts {
                    let attempt = row.into_domain()?;
                    if let Some(list) = details.iter_mut().find_map(|n| {
                        let key = n
                            .deliveries
                            .iter()
                            .find(|d| d.id.as_str() == delivery_id)?
                            .id
                            .clone();
                        n.attempts.get_mut(&key)
                    }) {
                        list.push(attempt);
                    }
                }
                let topics = topic_subscriptions::table
                    .filter(topic_subscriptions::recipient_id.eq(&id))
                    .order(topic_subscriptions::topic_key.asc())
                    .select(topic_subscriptions::topic_key)
                    .load::<String>(conn)?
                    .iter()
                    .map(|k| {
                        TopicKey::parse(k)
                            .map_err(|e| DbError::Corrupt(format!("topic_subscriptions {k}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let push_subscriptions = push_subscriptions::table
                    .filter(push_subscriptions::recipient_id.eq(&id))
                    .order((
                        push_subscriptions::created_at.asc(),
                        push_subscriptions::endpoint.asc(),
                    ))
                    .select(push_subscriptions::endpoint)
                    .load::<String>(conn)?;
                Ok(Some(RecipientData {
                    recipient: row.into_domain()?,
                    notifications: details,
                    preferences: super::preferences::load_preferences(conn, &id)?,
                    consents: super::preferences::load_consents(conn, &id)?,
                    topics,
                    push_subscriptions,
                }))
            })
            .await
    }

    async fn erase(
        &self,
        id: &RecipientId,
        audit: &ErasureAudit,
        redactor: Arc<dyn MentionRedactor>,
    ) -> Result<ErasureOutcome, RepositoryError> {
        let id = id.as_str().to_owned();
        let now = db_time(audit.at);
        let actor = audit.actor.clone();
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    // Locks the recipient's row (PostgreSQL): a concurrent insert of their
                    // notifications, which bumps `recipients.last_seq`, waits for us and then
                    // finds them gone.
                    let exists: Option<String> = match conn {
                        AnyConnection::Postgresql(pg) => recipients::table
                            .find(&id)
                            .select(recipients::id)
                            .for_update()
                            .first(pg)
                            .optional()?,
                        AnyConnection::Sqlite(sqlite) => recipients::table
                            .find(&id)
                            .select(recipients::id)
                            .first(sqlite)
                            .optional()?,
                    };
                    if exists.is_none() {
                        return Ok(ErasureOutcome::UnknownRecipient);
                    }
                    // Cancel first: the rows are locked from here on, so a dispatcher's claim
                    // (`FOR UPDATE SKIP LOCKED`) passes them by; on SQLite the write lock
                    // taken by BEGIN IMMEDIATE does the same.
                    diesel::update(
                        deliveries::table
                            .filter(deliveries::recipient_id.eq(&id))
                            .filter(deliveries::status.eq_any([
                                DeliveryStatus::Pending.as_str(),
                                DeliveryStatus::Retrying.as_str(),
                            ])),
                    )
                    .set((
                        deliveries::status.eq(DeliveryStatus::Cancelled.as_str()),
                        deliveries::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                    // Checked after the cancel: a claim that committed before it is seen here.
                    let in_flight: i64 = deliveries::table
                        .filter(deliveries::recipient_id.eq(&id))
                        .filter(deliveries::status.eq(DeliveryStatus::Sending.as_str()))
                        .filter(deliveries::lease_expires_at.gt(now))
                        .count()
                        .get_result(conn)?;
                    if in_flight > 0 {
                        return Err(InFlight.into());
                    }
                    // Before their own rows go: the redaction needs their name.
                    let traces = erase_traces(conn, &id, redactor.as_ref())?;
                    let delivery_ids: Vec<String> = deliveries::table
                        .filter(deliveries::recipient_id.eq(&id))
                        .select(deliveries::id)
                        .load(conn)?;
                    let mut attempts = 0;
                    for chunk in delivery_ids.chunks(CHUNK) {
                        attempts += diesel::delete(
                            delivery_attempts::table
                                .filter(delivery_attempts::delivery_id.eq_any(chunk)),
                        )
                        .execute(conn)?;
                    }
                    let deliveries =
                        diesel::delete(deliveries::table.filter(deliveries::recipient_id.eq(&id)))
                            .execute(conn)?;
                    let notifications = diesel::delete(
                        notifications::table.filter(notifications::recipient_id.eq(&id)),
                    )
                    .execute(conn)?;
                    // Their preferences and consent history (issue 11) go with them.
                    super::preferences::erase_choices(conn, &id)?;
                    diesel::delete(
                        topic_subscriptions::table
                            .filter(topic_subscriptions::recipient_id.eq(&id)),
                    )
                    .execute(conn)?;
                    // Their browsers' push subscriptions (issue 12).
                    diesel::delete(
                        push_subscriptions::table.filter(push_subscriptions::recipient_id.eq(&id)),
                    )
                    .execute(conn)?;
                    diesel::delete(recipients::table.find(&id)).execute(conn)?;
                    let counts = ErasedCounts {
                        notifications: as_count(notifications),
                        deliveries: as_count(deliveries),
                        attempts: as_count(attempts),
                        redacted: traces.redacted,
                        idempotency_keys: traces.idempotency_keys,
                    };
                    diesel::insert_into(erasures::table)
                        .values(NewErasureRow {
                            erased_at: now,
                            actor: actor.clone(),
                            notifications: as_column(counts.notifications),
                            deliveries: as_column(counts.deliveries),
                            attempts: as_column(counts.attempts),
                            redacted: as_column(counts.redacted),
                            idempotency_records: as_column(counts.idempotency_keys),
                        })
                        .execute(conn)?;
                    Ok(ErasureOutcome::Erased(counts))
                })
                .or_else(|e| match e {
                    e if is_in_flight(&e) => Ok(ErasureOutcome::DeliveryInFlight),
                    e => Err(e),
                })
            })
            .await
    }
}

/// What an erasure changed outside the recipient's own rows.
struct Traces {
    redacted: u64,
    idempotency_keys: u64,
}

/// Erases `id`'s traces elsewhere, in the erasure's transaction: every notification of someone
/// else that names them (`notification_mentions`, recorded when it was written) is rewritten by
/// `redactor`, and every `Idempotency-Key` record of a request that named them is dropped.
fn erase_traces(
    conn: &mut AnyConnection,
    id: &str,
    redactor: &dyn MentionRedactor,
) -> Result<Traces, DbError> {
    let erased = recipients::table
        .find(id)
        .select(RecipientRow::as_select())
        .first(conn)?
        .into_domain()?;
    let mentioning: Vec<String> = notification_mentions::table
        .filter(notification_mentions::recipient_id.eq(id))
        .select(notification_mentions::notification_id)
        .load(conn)?;
    let mut redacted = 0;
    for chunk in mentioning.chunks(CHUNK) {
        let rows = notifications::table
            .filter(notifications::id.eq_any(chunk))
            .filter(notifications::recipient_id.ne(id))
            .select(NotificationRow::as_select())
            .load(conn)?;
        for row in rows {
            let notification = row.into_domain()?;
            let rewritten = redactor.redact(&notification, &erased);
            diesel::update(notifications::table.find(notification.id.as_str()))
                .set((
                    notifications::title.eq(rewritten.title.as_str()),
                    notifications::body.eq(rewritten.body.as_str()),
                    notifications::metadata
                        .eq(serde_json::Value::Object(rewritten.metadata).to_string()),
                ))
                .execute(conn)?;
            redacted += 1;
        }
    }
    diesel::delete(notification_mentions::table.filter(notification_mentions::recipient_id.eq(id)))
        .execute(conn)?;
    let dropped = super::idempotency::drop_naming(conn, id)?;
    Ok(Traces {
        redacted,
        idempotency_keys: as_count(dropped),
    })
}

/// Rolls the erasure back (the cancelled deliveries with it) when a delivery is in flight.
#[derive(Debug)]
struct InFlight;

const IN_FLIGHT: &str = "erasure: a delivery is in flight";

impl From<InFlight> for DbError {
    fn from(_: InFlight) -> Self {
        Self::Corrupt(IN_FLIGHT.into())
    }
}

fn is_in_flight(e: &DbError) -> bool {
    matches!(e, DbError::Corrupt(m) if m == IN_FLIGHT)
}
