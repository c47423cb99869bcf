//! Coalesced planning changes in the write path (issue 13, `CoalescingRepository::
//! insert_coalescing`): a batch of planning notices written with what it does to the earlier,
//! still held `planning.modified` notices of the same plannings and recipients, in one
//! transaction. The rules are the domain's (`clairon_domain::coalescing`): which earlier notice
//! is open, the net change, the due time; this file reads and writes the rows.
//!
//! A held notice stores its planning id in `notifications.coalesce_key`; its earlier notices
//! are found by it and `recipient_id`. Their outbound deliveries are read `FOR UPDATE` on
//! PostgreSQL, so a dispatcher's claim (`FOR UPDATE SKIP LOCKED`) either took them before (they
//! are no longer `pending`: the notice is not open) or passes them by; on SQLite `BEGIN
//! IMMEDIATE` already runs writers one at a time.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use clairon_application::ports::{
    CoalesceChanges, CoalesceOutcome, NewNotification, RepositoryError,
};
use clairon_domain::coalescing::{self, CoalesceRole, OpenNotice};
use clairon_domain::{Channel, DeliveryId, DeliveryStatus, Metadata, SkipReason};
use diesel::prelude::*;

use super::{reminders, rows_of, write_rows, NotificationWriter, Rows};
use crate::idempotency;
use crate::persistence::connection::{write_transaction, AnyConnection, DbError};
use crate::persistence::rows::{db_time, utc};
use crate::persistence::schema::{deliveries, notifications};

/// One notification of the batch taking part, as stored.
struct Entry {
    notification_id: String,
    recipient_id: String,
    planning_id: String,
    role: CoalesceRole,
    /// Its template context (for a modification: what it changed).
    metadata: Metadata,
}

/// The reminder changes of the event, as `insert_with_reminders` prepares them.
struct ReminderRows {
    prefix: String,
    keep: HashSet<String>,
    schedule: Vec<(String, Rows)>,
    now: NaiveDateTime,
}

impl NotificationWriter {
    /// `CoalescingRepository::insert_coalescing`: the batch (with its reminder changes, if
    /// any) and what it settles of the earlier held notices, in one transaction.
    ///
    /// # Errors
    /// As [`NotificationWriter::insert_with_reminders`].
    pub(crate) async fn insert_coalescing(
        &self,
        batch: &[NewNotification],
        changes: &CoalesceChanges,
    ) -> Result<CoalesceOutcome, RepositoryError> {
        let event_rows = rows_of(batch);
        let settlement = idempotency::settlement_for(batch);
        let answered = settlement.as_ref().is_some_and(|s| s.answer.is_some());
        let reminder_rows = changes.reminders.as_ref().map(|r| ReminderRows {
            prefix: r.prefix.clone(),
            keep: r.keep.iter().cloned().collect(),
            schedule: r
                .schedule
                .iter()
                .map(|reminder| {
                    let mut rows = rows_of(std::slice::from_ref(&reminder.notification));
                    for row in &mut rows.notifications {
                        row.cancellation_key = Some(reminder.key.clone());
                    }
                    (reminder.key.clone(), rows)
                })
                .collect(),
            now: db_time(r.now),
        });
        let metadata: HashMap<&str, &Metadata> = batch
            .iter()
            .map(|n| (n.notification.id.as_str(), &n.notification.metadata))
            .collect();
        let entries: Vec<Entry> = changes
            .entries
            .iter()
            .map(|e| Entry {
                notification_id: e.notification_id.as_str().to_owned(),
                recipient_id: e.recipient_id.as_str().to_owned(),
                planning_id: e.planning_id.as_str().to_owned(),
                role: e.role,
                metadata: metadata
                    .get(e.notification_id.as_str())
                    .map(|m| (*m).clone())
                    .unwrap_or_default(),
            })
            .collect();
        let batch_ids: Vec<String> = event_rows
            .notifications
            .iter()
            .map(|r| r.id.clone())
            .collect();
        let now = db_time(changes.now);
        let outcome = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    serialize_plannings(conn, &entries)?;
                    let written = match &reminder_rows {
                        Some(r) => {
                            let change = reminders::Change {
                                prefix: &r.prefix,
                                keep: &r.keep,
                                schedule: &r.schedule,
                                now: r.now,
                            };
                            reminders::write(conn, &event_rows, settlement.as_ref(), &change)?
                        }
                        None => {
                            write_rows(conn, &event_rows, settlement.as_ref(), now)?;
                            Vec::new()
                        }
                    };
                    let mut outcome = CoalesceOutcome {
                        reminders: written,
                        ..CoalesceOutcome::default()
                    };
                    for entry in &entries {
                        settle(conn, entry, &batch_ids, now, &mut outcome)?;
                    }
                    Ok(outcome)
                })
            })
            .await?;
        if answered {
            idempotency::mark_answered();
        }
        Ok(outcome)
    }
}

/// Makes writers of the same plannings take turns (PostgreSQL, a transaction-scoped advisory
/// lock per planning, in planning order so two writers never wait on each other): the second
/// then reads the first's held notice, committed, and takes it in. Taken before anything is
/// written (before the reminders' own lock, in every coalescing transaction alike).
fn serialize_plannings(conn: &mut AnyConnection, entries: &[Entry]) -> Result<(), DbError> {
    if let AnyConnection::Postgresql(pg) = conn {
        let mut plannings: Vec<&str> = entries.iter().map(|e| e.planning_id.as_str()).collect();
        plannings.sort_unstable();
        plannings.dedup();
        for planning in plannings {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<diesel::sql_types::Text, _>(format!("coalesce:{planning}"))
                .execute(pg)?;
        }
    }
    Ok(())
}

/// The outbound deliveries of `ids` as `(id, notification id, status, due)`; a macro so that
/// PostgreSQL can append `FOR UPDATE` to the concrete statement.
macro_rules! outbound_of {
    ($ids:expr) => {
        deliveries::table
            .filter(deliveries::notification_id.eq_any($ids))
            .filter(deliveries::channel.ne(Channel::InApp.as_str()))
            .select((
                deliveries::id,
                deliveries::notification_id,
                deliveries::status,
                deliveries::next_attempt_at,
            ))
            .order(deliveries::id.asc())
    };
}

type OutboundRow = (String, String, String, NaiveDateTime);

fn outbound(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<OutboundRow>, DbError> {
    Ok(match conn {
        AnyConnection::Postgresql(pg) => outbound_of!(ids).for_update().load(pg)?,
        AnyConnection::Sqlite(sqlite) => outbound_of!(ids).load(sqlite)?,
    })
}

fn status(raw: &str, id: &str) -> Result<DeliveryStatus, DbError> {
    DeliveryStatus::parse(raw).map_err(|e| DbError::Corrupt(format!("deliveries {id:?}: {e}")))
}

fn delivery_id(id: &str) -> Result<DeliveryId, DbError> {
    DeliveryId::parse(id).map_err(|e| DbError::Corrupt(format!("deliveries {id:?}: {e}")))
}

/// Settles `ids` (pending deliveries, locked) `skipped` with `reason`.
fn skip(
    conn: &mut AnyConnection,
    ids: &[String],
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    for chunk in ids.chunks(super::CHUNK) {
        diesel::update(
            deliveries::table
                .filter(deliveries::id.eq_any(chunk))
                .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str())),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Skipped.as_str()),
            deliveries::last_error.eq(Some(reason)),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Applies one entry: takes in (or, for a cancellation, makes moot) the earlier open notices of
/// its planning and recipient, and for a modification stores its key, its net change and its
/// outbound deliveries' due time.
fn settle(
    conn: &mut AnyConnection,
    entry: &Entry,
    batch_ids: &[String],
    now: NaiveDateTime,
    outcome: &mut CoalesceOutcome,
) -> Result<(), DbError> {
    let earlier: Vec<(String, String)> = notifications::table
        .filter(notifications::coalesce_key.eq(&entry.planning_id))
        .filter(notifications::recipient_id.eq(&entry.recipient_id))
        .filter(notifications::cancelled_at.is_null())
        .filter(notifications::id.ne_all(batch_ids))
        .order(notifications::id.asc())
        .select((notifications::id, notifications::metadata))
        .load(conn)?;
    if entry.role == CoalesceRole::Coalesce {
        diesel::update(notifications::table.find(&entry.notification_id))
            .set(notifications::coalesce_key.eq(Some(&entry.planning_id)))
            .execute(conn)?;
    }
    if earlier.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = earlier.iter().map(|(id, _)| id.clone()).collect();
    let mut by_notice: HashMap<String, Vec<(String, DeliveryStatus, NaiveDateTime)>> =
        HashMap::new();
    for chunk in ids.chunks(super::CHUNK) {
        for (id, notification, raw, due) in outbound(conn, chunk)? {
            let status = status(&raw, &id)?;
            by_notice
                .entry(notification)
                .or_default()
                .push((id, status, due));
        }
    }
    let mut taken_in: Vec<String> = Vec::new();
    let mut open: Vec<OpenNotice> = Vec::new();
    let mut superseded: Vec<String> = Vec::new();
    for (id, stored) in &earlier {
        let rows = by_notice.remove(id).unwrap_or_default();
        if !coalescing::is_open(rows.iter().map(|(_, s, _)| *s)) {
            continue;
        }
        let pending: Vec<&(String, DeliveryStatus, NaiveDateTime)> = rows
            .iter()
            .filter(|(_, s, _)| *s == DeliveryStatus::Pending)
            .collect();
        let metadata: Metadata = serde_json::from_str(stored).map_err(|e| {
            DbError::Corrupt(format!(
                "notifications {id:?}: metadata is not a JSON object: {e}"
            ))
        })?;
        open.push(OpenNotice {
            changes: coalescing::changes_told(&metadata),
            due: pending.iter().map(|(_, _, due)| utc(*due)).min(),
        });
        superseded.extend(pending.iter().map(|(d, _, _)| d.clone()));
        taken_in.push(id.clone());
    }
    if taken_in.is_empty() {
        return Ok(());
    }
    let reason = SkipReason::Coalesced(entry.notification_id.clone()).to_string();
    skip(conn, &superseded, &reason, now)?;
    for id in &superseded {
        outcome.superseded.push(delivery_id(id)?);
    }
    tracing::debug!(
        notification_id = %entry.notification_id,
        taken_in = taken_in.len(),
        "earlier planning changes coalesced"
    );
    if entry.role == CoalesceRole::Supersede {
        return Ok(());
    }
    let coalesced = coalescing::coalesce(&open, &coalescing::changes_told(&entry.metadata));
    let mut metadata = entry.metadata.clone();
    metadata.insert(
        coalescing::METADATA_KEY.into(),
        coalescing::metadata_entry(&coalesced, &taken_in),
    );
    diesel::update(notifications::table.find(&entry.notification_id))
        .set(notifications::metadata.eq(serde_json::Value::Object(metadata).to_string()))
        .execute(conn)?;
    let own: Vec<(String, DeliveryStatus, NaiveDateTime)> =
        outbound(conn, std::slice::from_ref(&entry.notification_id))?
            .into_iter()
            .map(|(id, _, raw, due)| status(&raw, &id).map(|s| (id, s, due)))
            .collect::<Result<_, _>>()?;
    let pending = own
        .into_iter()
        .filter(|(_, s, _)| *s == DeliveryStatus::Pending);
    if coalesced.is_empty() {
        let unneeded: Vec<String> = pending.map(|(id, _, _)| id).collect();
        let reason = SkipReason::Coalesced(coalescing::NO_NET_CHANGE.into()).to_string();
        skip(conn, &unneeded, &reason, now)?;
        for id in &unneeded {
            outcome.unneeded.push(delivery_id(id)?);
        }
        return Ok(());
    }
    if let Some(first) = coalesced.due.map(db_time) {
        // The window is fixed from the first event: never later than the first notice's.
        for (id, _, _) in pending.filter(|(_, _, due)| *due > first) {
            diesel::update(deliveries::table.find(&id))
                .set(deliveries::next_attempt_at.eq(first))
                .execute(conn)?;
        }
    }
    Ok(())
}
