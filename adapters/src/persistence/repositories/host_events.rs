//! The host-event outbox (issue 12, `CLAIRON_EVENTS_WEBHOOK_URL`): the rows written beside the
//! changes they report, and [`DieselHostEventOutbox`], the worker's side of the table.
//!
//! Writing: the repositories built `with_host_events(true)` call [`record_deliveries`] inside
//! the transaction that records delivery outcomes (`DieselDeliveryQueue::record`) and
//! [`record_reads`] inside the one that marks notifications read, so an event exists if and
//! only if its change was committed. Both insert in chunked multi-row INSERTs, one statement per
//! [`CHUNK`] events, and [`record_deliveries`] reads the delivered rows back in one query per
//! chunk (the update carries no notification, recipient nor channel).
//!
//! Claiming: due `pending` rows have their `next_attempt_at` pushed to the end of the lease in
//! the claiming transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL; `BEGIN IMMEDIATE` queues
//! claimers on SQLite), so two processes never take the same row while its lease holds.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use clairon_application::ports::{HostEvent, HostEventOutbox, RepositoryError};
use clairon_domain::DeliveryStatus;
use diesel::prelude::*;
use serde_json::{json, Value};

use super::CHUNK;
use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Database, DbError,
};
use crate::persistence::rows::{db_count, db_time, utc};
use crate::persistence::schema::{deliveries, host_events};

/// `pending`: waiting to be posted (or to be posted again).
pub const PENDING: &str = "pending";
/// `sent`: the host answered `2xx`.
pub const SENT: &str = "sent";
/// `dead`: the host did not take it in the tries allowed.
pub const DEAD: &str = "dead";

/// The delivery statuses reported to the host, with their event type.
fn delivery_event_type(status: &str) -> Option<&'static str> {
    match status {
        s if s == DeliveryStatus::Sent.as_str() => Some("delivery.sent"),
        s if s == DeliveryStatus::Failed.as_str() => Some("delivery.failed"),
        s if s == DeliveryStatus::Dead.as_str() => Some("delivery.dead"),
        _ => None,
    }
}

/// Whether a delivery recorded `status` is reported to the host.
pub(crate) fn reported(status: DeliveryStatus) -> bool {
    delivery_event_type(status.as_str()).is_some()
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = host_events)]
struct NewHostEventRow {
    id: String,
    event_type: String,
    payload: String,
    status: String,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

impl NewHostEventRow {
    fn new(event_type: &str, data: Value, at: NaiveDateTime) -> Self {
        let payload = json!({
            "type": event_type,
            "timestamp": rfc3339(at),
            "data": data,
        });
        Self {
            id: uuid::Uuid::now_v7().hyphenated().to_string(),
            event_type: event_type.to_owned(),
            payload: payload.to_string(),
            status: PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
        }
    }
}

fn rfc3339(at: NaiveDateTime) -> String {
    utc(at).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn insert(conn: &mut AnyConnection, rows: &[NewHostEventRow]) -> Result<(), DbError> {
    for chunk in rows.chunks(CHUNK) {
        on_inner!(conn, |c| diesel::insert_into(host_events::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// The stored delivery columns a delivery event reports.
type DeliveredRow = (
    String,
    String,
    String,
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Writes a `delivery.sent|failed|dead` event for each of `ids` whose stored status is one of
/// those (the others are left out), read back from `deliveries` in this transaction, at `now`.
/// `data`: `delivery_id`, `notification_id`, `recipient_id`, `channel`, `status`, `attempts`,
/// `error`, `provider_message_id`, `fallback_of`, `at` (RFC 3339, UTC).
///
/// # Errors
/// The database's.
pub(crate) fn record_deliveries(
    conn: &mut AnyConnection,
    ids: &[String],
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let statuses = [
        DeliveryStatus::Sent.as_str(),
        DeliveryStatus::Failed.as_str(),
        DeliveryStatus::Dead.as_str(),
    ];
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let delivered: Vec<DeliveredRow> = deliveries::table
            .filter(deliveries::id.eq_any(chunk))
            .filter(deliveries::status.eq_any(statuses))
            .order(deliveries::id.asc())
            .select((
                deliveries::id,
                deliveries::notification_id,
                deliveries::recipient_id,
                deliveries::channel,
                deliveries::status,
                deliveries::attempts,
                deliveries::last_error,
                deliveries::provider_message_id,
                deliveries::fallback_of,
            ))
            .load(conn)?;
        for (id, notification, recipient, channel, status, attempts, error, provider, of) in
            delivered
        {
            let Some(event_type) = delivery_event_type(&status) else {
                continue;
            };
            let data = json!({
                "delivery_id": id,
                "notification_id": notification,
                "recipient_id": recipient,
                "channel": channel,
                "status": status,
                "attempts": attempts,
                "error": error,
                "provider_message_id": provider,
                "fallback_of": of,
                "at": rfc3339(now),
            });
            rows.push(NewHostEventRow::new(event_type, data, now));
        }
    }
    insert(conn, &rows)
}

/// Writes a `notification.read` event for each `(notification id, recipient id)` of `read`,
/// read at `read_at`. `data`: `notification_id`, `recipient_id`, `read_at` (RFC 3339, UTC).
///
/// # Errors
/// The database's.
pub(crate) fn record_reads(
    conn: &mut AnyConnection,
    read: &[(String, String)],
    read_at: NaiveDateTime,
) -> Result<(), DbError> {
    let rows: Vec<NewHostEventRow> = read
        .iter()
        .map(|(notification, recipient)| {
            let data = json!({
                "notification_id": notification,
                "recipient_id": recipient,
                "read_at": rfc3339(read_at),
            });
            NewHostEventRow::new("notification.read", data, read_at)
        })
        .collect();
    insert(conn, &rows)
}

/// A stored host event as operators (and tests) see it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = host_events)]
pub struct HostEventRecord {
    /// UUIDv7 text, the `webhook-id`.
    pub id: String,
    /// `delivery.sent`, `delivery.failed`, `delivery.dead` or `notification.read`.
    pub event_type: String,
    /// The JSON body posted.
    pub payload: String,
    /// `pending`, `sent` or `dead`.
    pub status: String,
    /// Tries so far.
    pub attempts: i32,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// UTC, microseconds: when the host answered `2xx`.
    pub sent_at: Option<NaiveDateTime>,
}

/// The [`HostEventOutbox`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselHostEventOutbox {
    db: Database,
}

impl DieselHostEventOutbox {
    /// The outbox on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Every stored host event, oldest first (ids are UUIDv7).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    pub async fn all(&self) -> Result<Vec<HostEventRecord>, RepositoryError> {
        self.db
            .call(|conn| {
                Ok(host_events::table
                    .order(host_events::id.asc())
                    .select(HostEventRecord::as_select())
                    .load(conn)?)
            })
            .await
    }

    /// Deletes the `sent` events sent before `cutoff` (the retention job); returns how many.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    pub async fn purge_sent(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let cutoff = db_time(cutoff);
        self.db
            .call(move |conn| write_transaction(conn, |conn| purge_sent(conn, cutoff)))
            .await
    }

    async fn set_outcome(
        &self,
        id: &str,
        change: impl FnOnce(&mut AnyConnection, &str) -> Result<usize, DbError> + Send + 'static,
    ) -> Result<(), RepositoryError> {
        let id = id.to_owned();
        self.db
            .call(move |conn| write_transaction(conn, |conn| change(conn, &id).map(|_| ())))
            .await
    }
}

/// Deletes the `sent` events sent before `cutoff`; returns how many.
pub(crate) fn purge_sent(conn: &mut AnyConnection, cutoff: NaiveDateTime) -> Result<u64, DbError> {
    let deleted = diesel::delete(
        host_events::table
            .filter(host_events::status.eq(SENT))
            .filter(host_events::sent_at.lt(cutoff)),
    )
    .execute(conn)?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// Up to `$limit` pending events due at `$now`, oldest due first. A macro: PostgreSQL appends
/// `FOR UPDATE SKIP LOCKED` to the concrete statement type.
macro_rules! due_events {
    ($now:expr, $limit:expr) => {
        host_events::table
            .select(host_events::id)
            .filter(host_events::status.eq(PENDING))
            .filter(host_events::next_attempt_at.le($now))
            .order((host_events::next_attempt_at.asc(), host_events::id.asc()))
            .limit($limit)
    };
}

fn claim(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<HostEvent>, DbError> {
    let ids: Vec<String> = match conn {
        AnyConnection::Postgresql(pg) => due_events!(now, limit)
            .for_update()
            .skip_locked()
            .load(pg)?,
        AnyConnection::Sqlite(sqlite) => due_events!(now, limit).load(sqlite)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let claimed: Vec<(String, String, String, i32)> =
        diesel::update(host_events::table.filter(host_events::id.eq_any(&ids)))
            .set(host_events::next_attempt_at.eq(lease_until))
            .returning((
                host_events::id,
                host_events::event_type,
                host_events::payload,
                host_events::attempts,
            ))
            .get_results(conn)?;
    let mut events: Vec<HostEvent> = claimed
        .into_iter()
        .map(|(id, event_type, payload, attempts)| HostEvent {
            id,
            event_type,
            payload,
            attempts: u32::try_from(attempts).unwrap_or(0),
        })
        .collect();
    // RETURNING gives no order: back to the claim's (ids are UUIDv7, so creation order).
    events.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(events)
}

#[async_trait]
impl HostEventOutbox for DieselHostEventOutbox {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<HostEvent>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = chrono::TimeDelta::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (now, lease_until) = (db_time(now), db_time(lease_until));
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| claim(conn, now, lease_until, i64::from(limit)))
            })
            .await
    }

    async fn mark_sent(
        &self,
        id: &str,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let at = db_time(at);
        self.set_outcome(id, move |conn, id| {
            Ok(diesel::update(
                host_events::table
                    .find(id)
                    .filter(host_events::status.eq(PENDING)),
            )
            .set((
                host_events::status.eq(SENT),
                host_events::attempts.eq(db_count(attempts)),
                host_events::sent_at.eq(Some(at)),
            ))
            .execute(conn)?)
        })
        .await
    }

    async fn mark_retry(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), RepositoryError> {
        let next = db_time(next_attempt_at);
        let error = error.to_owned();
        self.set_outcome(id, move |conn, id| {
            Ok(diesel::update(
                host_events::table
                    .find(id)
                    .filter(host_events::status.eq(PENDING)),
            )
            .set((
                host_events::attempts.eq(db_count(attempts)),
                host_events::next_attempt_at.eq(next),
                host_events::last_error.eq(Some(error)),
            ))
            .execute(conn)?)
        })
        .await
    }

    async fn mark_dead(&self, id: &str, attempts: u32, error: &str) -> Result<(), RepositoryError> {
        let error = error.to_owned();
        self.set_outcome(id, move |conn, id| {
            Ok(diesel::update(
                host_events::table
                    .find(id)
                    .filter(host_events::status.eq(PENDING)),
            )
            .set((
                host_events::status.eq(DEAD),
                host_events::attempts.eq(db_count(attempts)),
                host_events::last_error.eq(Some(error)),
            ))
            .execute(conn)?)
        })
        .await
    }
}
