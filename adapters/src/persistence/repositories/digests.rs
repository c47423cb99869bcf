//! [`DieselDigestStore`]: the application's `DigestStore` (issue 13) on the `digests` table and
//! the `batched` deliveries. Every move of a delivery is asked of the domain's `Delivery`
//! (`sent_in_digest`, `left_out_of_digest`) and written only while it is still `batched`, so a
//! withdrawal that won the race keeps its `cancelled`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    DigestItem, DigestKey, DigestOutcome, DigestStore, OpenDigest, RepositoryError,
};
use clairon_domain::{Channel, DeliveryId, DeliveryStatus, DeliveryTransition, RecipientId};
use diesel::prelude::*;

use super::CHUNK;
use crate::persistence::connection::{write_transaction, AnyConnection, Database, DbError};
use crate::persistence::rows::{db_time, utc, DeliveryRow};
use crate::persistence::schema::{deliveries, digests, notifications};

/// The skip reason of a batched delivery whose notification was read before its digest.
pub const READ_BEFORE_THE_DIGEST: &str = "read before the digest";

const SENDING: &str = "sending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

/// The `DigestStore` on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselDigestStore {
    db: Database,
    host_events: bool,
}

impl DieselDigestStore {
    /// A store on `db`.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            host_events: false,
        }
    }

    /// The same store, writing a `delivery.sent|failed` host event for each delivery a digest
    /// settles, in the settling transaction, when `on` (`CLAIRON_EVENTS_WEBHOOK_URL` is set).
    #[must_use]
    pub fn with_host_events(mut self, on: bool) -> Self {
        self.host_events = on;
        self
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(format!("{what}: {e}"))
}

/// The batched deliveries of `key`, oldest first.
fn batched_of(conn: &mut AnyConnection, key: &DigestKey) -> Result<Vec<DeliveryRow>, DbError> {
    deliveries::table
        .filter(deliveries::status.eq(DeliveryStatus::Batched.as_str()))
        .filter(deliveries::recipient_id.eq(key.recipient_id.as_str()))
        .filter(deliveries::channel.eq(key.channel.as_str()))
        .filter(deliveries::next_attempt_at.eq(db_time(key.window_end)))
        .order((deliveries::created_at.asc(), deliveries::id.asc()))
        .select(DeliveryRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// A new `digests` row, `sending`.
#[derive(Debug, Insertable)]
#[diesel(table_name = digests)]
struct NewDigestRow<'a> {
    id: &'a str,
    recipient_id: &'a str,
    channel: &'a str,
    window_end: chrono::NaiveDateTime,
    status: &'a str,
    item_count: i32,
    created_at: chrono::NaiveDateTime,
}

/// Writes `transition` of delivery `id` while it is still where it was read.
fn record(
    conn: &mut AnyConnection,
    id: &str,
    transition: DeliveryTransition,
    at: chrono::NaiveDateTime,
) -> Result<u64, DbError> {
    let changed = diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq(transition.from.as_str())),
    )
    .set((
        deliveries::status.eq(transition.to.as_str()),
        deliveries::attempts.eq(i32::try_from(transition.attempts).unwrap_or(i32::MAX)),
        deliveries::last_error.eq(transition.last_error),
        deliveries::provider_message_id.eq(transition.provider_message_id),
        deliveries::sent_at.eq(transition.sent_at.map(db_time)),
        deliveries::updated_at.eq(at),
    ))
    .execute(conn)?;
    Ok(u64::try_from(changed).unwrap_or(0))
}

fn open_in(
    conn: &mut AnyConnection,
    key: &DigestKey,
    id: &DeliveryId,
    now: DateTime<Utc>,
) -> Result<(Option<OpenDigest>, u64), DbError> {
    /// A notification listed in a digest: id, title, created at, action URL, read at.
    type NoteRow = (
        String,
        String,
        chrono::NaiveDateTime,
        Option<String>,
        Option<chrono::NaiveDateTime>,
    );
    let at = db_time(now);
    let rows = batched_of(conn, key)?;
    let mut notes: Vec<(String, String, chrono::NaiveDateTime, Option<String>, bool)> =
        Vec::with_capacity(rows.len());
    let ids: Vec<String> = rows.iter().map(|r| r.notification_id.clone()).collect();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<NoteRow> = notifications::table
            .filter(notifications::id.eq_any(chunk))
            .select((
                notifications::id,
                notifications::title,
                notifications::created_at,
                notifications::action_url,
                notifications::read_at,
            ))
            .load(conn)?;
        notes.extend(
            found
                .into_iter()
                .map(|(nid, title, created, url, read)| (nid, title, created, url, read.is_some())),
        );
    }
    let mut skipped = 0u64;
    let mut items = Vec::new();
    for row in rows {
        let delivery = row.into_domain()?;
        let Some((_, title, created_at, action_url, read)) = notes
            .iter()
            .find(|(nid, ..)| nid == delivery.notification_id.as_str())
        else {
            continue;
        };
        if *read {
            if let Ok(t) =
                delivery.left_out_of_digest(DeliveryStatus::Skipped, READ_BEFORE_THE_DIGEST)
            {
                skipped += record(conn, delivery.id.as_str(), t, at)?;
            }
            continue;
        }
        items.push(DigestItem {
            delivery_id: delivery.id.clone(),
            notification_id: delivery.notification_id.clone(),
            title: title.clone(),
            created_at: utc(*created_at),
            action_url: action_url.clone(),
        });
    }
    if items.is_empty() {
        return Ok((None, skipped));
    }
    let find =
        |conn: &mut AnyConnection| -> Result<Option<(String, String, Option<String>)>, DbError> {
            digests::table
                .filter(digests::recipient_id.eq(key.recipient_id.as_str()))
                .filter(digests::channel.eq(key.channel.as_str()))
                .filter(digests::window_end.eq(db_time(key.window_end)))
                .select((digests::id, digests::status, digests::provider_message_id))
                .first(conn)
                .optional()
                .map_err(DbError::from)
        };
    if find(conn)?.is_none() {
        let row = NewDigestRow {
            id: id.as_str(),
            recipient_id: key.recipient_id.as_str(),
            channel: key.channel.as_str(),
            window_end: db_time(key.window_end),
            status: SENDING,
            item_count: i32::try_from(items.len()).unwrap_or(i32::MAX),
            created_at: at,
        };
        // A concurrent run may have opened it since: its row wins, this one is ignored.
        match conn {
            AnyConnection::Postgresql(pg) => diesel::insert_into(digests::table)
                .values(&row)
                .on_conflict_do_nothing()
                .execute(pg)?,
            AnyConnection::Sqlite(sqlite) => diesel::insert_or_ignore_into(digests::table)
                .values(&row)
                .execute(sqlite)?,
        };
    }
    let Some((digest_id, status, provider)) = find(conn)? else {
        return Err(corrupt("digests", "the row just written is missing"));
    };
    let id = DeliveryId::parse(&digest_id).map_err(|e| corrupt("digests.id", e))?;
    // A sent digest is not sent again: what it still lists is settled with it. A failed one
    // settled its deliveries; what is batched under its key since is tried once more.
    let sent_as = match status.as_str() {
        SENT => provider.or(Some(String::new())),
        _ => None,
    };
    if status == FAILED {
        diesel::update(digests::table.find(&digest_id))
            .set(digests::status.eq(SENDING))
            .execute(conn)?;
    }
    Ok((Some(OpenDigest { id, sent_as, items }), skipped))
}

fn settle_in(
    conn: &mut AnyConnection,
    id: &DeliveryId,
    listed: &[DeliveryId],
    outcome: &DigestOutcome,
    now: DateTime<Utc>,
    host_events: bool,
) -> Result<u64, DbError> {
    let at = db_time(now);
    let mut settled: Vec<String> = Vec::new();
    match outcome {
        DigestOutcome::Sent {
            provider_message_id,
        } => diesel::update(digests::table.find(id.as_str()))
            .set((
                digests::status.eq(SENT),
                digests::provider_message_id.eq(provider_message_id),
                digests::sent_at.eq(at),
                digests::last_error.eq(None::<String>),
            ))
            .execute(conn)?,
        DigestOutcome::Failed(why) => diesel::update(digests::table.find(id.as_str()))
            .set((digests::status.eq(FAILED), digests::last_error.eq(why)))
            .execute(conn)?,
    };
    let ids: Vec<&str> = listed.iter().map(DeliveryId::as_str).collect();
    let mut moved = 0u64;
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<DeliveryRow> = deliveries::table
            .filter(deliveries::id.eq_any(chunk))
            .filter(deliveries::status.eq(DeliveryStatus::Batched.as_str()))
            .select(DeliveryRow::as_select())
            .load(conn)?;
        for row in rows {
            let delivery = row.into_domain()?;
            let transition = match outcome {
                DigestOutcome::Sent {
                    provider_message_id,
                } => delivery.sent_in_digest(provider_message_id.clone(), now),
                DigestOutcome::Failed(why) => {
                    delivery.left_out_of_digest(DeliveryStatus::Failed, why.clone())
                }
            };
            if let Ok(t) = transition {
                let n = record(conn, delivery.id.as_str(), t, at)?;
                if n > 0 {
                    settled.push(delivery.id.as_str().to_owned());
                }
                moved += n;
            }
        }
    }
    if host_events {
        super::host_events::record_deliveries(conn, &settled, at)?;
    }
    Ok(moved)
}

#[async_trait]
impl DigestStore for DieselDigestStore {
    async fn due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DigestKey>, RepositoryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |conn| {
                let rows: Vec<(chrono::NaiveDateTime, String, String)> = deliveries::table
                    .filter(deliveries::status.eq(DeliveryStatus::Batched.as_str()))
                    .filter(deliveries::next_attempt_at.le(db_time(now)))
                    .select((
                        deliveries::next_attempt_at,
                        deliveries::recipient_id,
                        deliveries::channel,
                    ))
                    .distinct()
                    .order((
                        deliveries::next_attempt_at.asc(),
                        deliveries::recipient_id.asc(),
                        deliveries::channel.asc(),
                    ))
                    .limit(limit)
                    .load(conn)?;
                rows.into_iter()
                    .map(|(end, recipient, channel)| {
                        Ok(DigestKey {
                            recipient_id: RecipientId::parse(&recipient)
                                .map_err(|e| corrupt("deliveries.recipient_id", e))?,
                            channel: Channel::parse(&channel)
                                .map_err(|e| corrupt("deliveries.channel", e))?,
                            window_end: utc(end),
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn open(
        &self,
        key: &DigestKey,
        id: DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<(Option<OpenDigest>, u64), RepositoryError> {
        let key = key.clone();
        self.db
            .call(move |conn| write_transaction(conn, |conn| open_in(conn, &key, &id, now)))
            .await
    }

    async fn settle(
        &self,
        id: &DeliveryId,
        deliveries: &[DeliveryId],
        outcome: &DigestOutcome,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        let (id, listed, outcome) = (id.clone(), deliveries.to_vec(), outcome.clone());
        let host_events = self.host_events;
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    settle_in(conn, &id, &listed, &outcome, now, host_events)
                })
            })
            .await
    }
}
