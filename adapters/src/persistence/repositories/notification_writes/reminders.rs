//! Reminders in the write path: an event's notifications and the J-1 reminders of its planning,
//! replaced, kept or cancelled in the same transaction (`NotificationRepository::
//! insert_with_reminders`). A reminder carries a `cancellation_key`
//! (`reminder:{planning}:{recipient}`), unique among live notifications.

use std::collections::HashSet;

use clairon_domain::{DeliveryStatus, NotificationId};
use diesel::prelude::*;

use super::{insert_rows, write_rows, Rows};
use crate::idempotency::Settlement;
use crate::persistence::connection::{AnyConnection, DbError};
use crate::persistence::repositories::CHUNK;
use crate::persistence::schema::{deliveries, notifications};

/// What one event changes in its planning's reminders.
pub(super) struct Change<'a> {
    /// The planning's key prefix (`reminder:{planning}:`).
    pub prefix: &'a str,
    /// Keys of live reminders to keep as they are.
    pub keep: &'a HashSet<String>,
    /// Reminders to (re)schedule, by key, with their rows.
    pub schedule: &'a [(String, Rows)],
    /// When the change is made (cancellation time).
    pub now: chrono::NaiveDateTime,
}

/// Writes the event's `event_rows` (and `settlement`), then applies `change` to the planning's
/// live reminders, in the caller's transaction; returns the ids of the reminders written.
pub(super) fn write(
    conn: &mut AnyConnection,
    event_rows: &Rows,
    settlement: Option<&Settlement>,
    change: &Change<'_>,
) -> Result<Vec<NotificationId>, DbError> {
    let Change {
        prefix,
        keep,
        schedule,
        now,
    } = change;
    serialize_planning(conn, prefix)?;
    write_rows(conn, event_rows, settlement, *now)?;
    // LIKE narrows (a `%` or `_` in an id only widens it); `starts_with` decides.
    let live: Vec<(String, Option<String>)> = notifications::table
        .filter(notifications::cancellation_key.like(format!("{prefix}%")))
        .filter(notifications::cancelled_at.is_null())
        .select((notifications::id, notifications::cancellation_key))
        .load(conn)?;
    let live: Vec<(String, String)> = live
        .into_iter()
        .filter_map(|(id, key)| key.map(|k| (id, k)))
        .filter(|(_, key)| key.starts_with(prefix))
        .collect();
    let live_ids: Vec<&String> = live.iter().map(|(id, _)| id).collect();
    let mut pending: HashSet<String> = HashSet::new();
    for chunk in live_ids.chunks(CHUNK) {
        pending.extend(
            deliveries::table
                .filter(deliveries::notification_id.eq_any(chunk))
                .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                .select(deliveries::notification_id)
                .load::<String>(conn)?,
        );
    }
    let rescheduled: HashSet<&str> = schedule.iter().map(|(key, _)| key.as_str()).collect();
    // A reminder that went out (or is going out) is not made again.
    let gone_out: HashSet<&str> = live
        .iter()
        .filter(|(id, _)| !pending.contains(id))
        .map(|(_, key)| key.as_str())
        .collect();
    let cancel: Vec<String> = live
        .iter()
        .filter(|(id, key)| {
            pending.contains(id) && (!keep.contains(key) || rescheduled.contains(key.as_str()))
        })
        .map(|(id, _)| id.clone())
        .collect();
    cancel_notifications(conn, &cancel, *now)?;
    let mut written = Vec::new();
    for (key, rows) in schedule.iter() {
        if gone_out.contains(key.as_str()) {
            continue;
        }
        insert_rows(conn, rows, *now)?;
        written.extend(rows.notifications.iter().map(|r| r.id.clone()));
    }
    written
        .iter()
        .map(|id| {
            NotificationId::parse(id)
                .map_err(|e| DbError::Corrupt(format!("notifications {id:?}: {e}")))
        })
        .collect()
}

/// Makes the reminder changes of one planning (the reminders keyed under `prefix`) take turns.
///
/// On PostgreSQL two events of one planning may be written at once, in READ COMMITTED: each
/// would read the live reminders before the other commits, and both insert a reminder under the
/// same key, the second then failing on the unique index of live keys (a `500` for a request
/// that did nothing wrong). A transaction-scoped advisory lock on the prefix makes the second
/// wait for the first, then read what it committed (each statement reads afresh in READ
/// COMMITTED) and replace or keep its reminders. SQLite needs nothing: `BEGIN IMMEDIATE`
/// already runs writers one at a time.
fn serialize_planning(conn: &mut AnyConnection, prefix: &str) -> Result<(), DbError> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(prefix)
            .execute(pg)?;
    }
    Ok(())
}

/// Cancels the notifications `ids`: out of the inbox for good, pending deliveries `cancelled`.
fn cancel_notifications(
    conn: &mut AnyConnection,
    ids: &[String],
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    for chunk in ids.chunks(CHUNK) {
        diesel::update(notifications::table.filter(notifications::id.eq_any(chunk)))
            .set(notifications::cancelled_at.eq(Some(now)))
            .execute(conn)?;
        diesel::update(
            deliveries::table
                .filter(deliveries::notification_id.eq_any(chunk))
                .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str())),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Cancelled.as_str()),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)?;
    }
    if !ids.is_empty() {
        tracing::debug!(count = ids.len(), "pending reminders cancelled");
    }
    Ok(())
}
