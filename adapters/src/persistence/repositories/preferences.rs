//! [`DieselPreferenceRepository`] and [`DieselConsentRepository`]: recipients' preference
//! documents (`recipient_preferences`, one JSON document per recipient) and their append-only
//! consent history (`consents`). A withdrawal cancels the recipient's waiting deliveries on that
//! channel in the consent's own transaction, each move asked of the domain's `Delivery`.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    ConsentRepository, PreferenceRepository, RecordedConsent, RepositoryError, StoredPreferences,
};
use clairon_domain::{
    ChannelName, Consent, ConsentSource, ConsentState, ConsentWording, DeliveryStatus, EventType,
    NewConsent, Preferences, RecipientId, SkipReason,
};
use diesel::prelude::*;

use super::CHUNK;
use crate::persistence::connection::{write_transaction, AnyConnection, Database, DbError};
use crate::persistence::rows::{db_time, utc, DeliveryRow};
use crate::persistence::schema::{consents, deliveries, recipient_preferences, recipients};

/// What a write answers when the recipient row is missing.
fn unknown_recipient(id: &str) -> RepositoryError {
    RepositoryError::Conflict(format!("recipient {id:?} does not exist"))
}

fn recipient_exists(conn: &mut AnyConnection, id: &str) -> Result<bool, DbError> {
    let count: i64 = recipients::table
        .filter(recipients::id.eq(id))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

fn parse_document(raw: &str) -> Preferences {
    // A stored document was valid when written; what no longer is, is dropped, never failing
    // a delivery (no poison pill).
    serde_json::from_str(raw)
        .map(|value| Preferences::from_stored(&value))
        .unwrap_or_default()
}

/// Writes `document` as the recipient's, replacing any.
fn write_document(
    conn: &mut AnyConnection,
    id: &str,
    document: &Preferences,
    at: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    let text = document.to_json().to_string();
    let updated = diesel::update(recipient_preferences::table.find(id))
        .set((
            recipient_preferences::document.eq(&text),
            recipient_preferences::updated_at.eq(at),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(recipient_preferences::table)
            .values((
                recipient_preferences::recipient_id.eq(id),
                recipient_preferences::document.eq(&text),
                recipient_preferences::updated_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The stored document of `id`, if any.
pub(crate) fn load_preferences(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<StoredPreferences>, DbError> {
    let row: Option<(String, chrono::NaiveDateTime)> = recipient_preferences::table
        .find(id)
        .select((
            recipient_preferences::document,
            recipient_preferences::updated_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(document, updated_at)| StoredPreferences {
        preferences: parse_document(&document),
        updated_at: utc(updated_at),
    }))
}

/// A `consents` row as read back.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consents)]
struct ConsentRow {
    id: i64,
    recipient_id: String,
    channel: String,
    granted: i16,
    source: String,
    wording: Option<String>,
    recorded_at: chrono::NaiveDateTime,
}

impl ConsentRow {
    fn into_domain(self) -> Result<Consent, DbError> {
        let bad = |e: clairon_domain::ValidationError| {
            DbError::Corrupt(format!("consents {}: {e}", self.id))
        };
        Ok(Consent {
            id: self.id,
            recipient_id: RecipientId::parse(&self.recipient_id).map_err(bad)?,
            channel: ChannelName::parse(&self.channel).map_err(bad)?,
            granted: self.granted != 0,
            source: ConsentSource::from_stored(self.source),
            wording: self.wording.map(ConsentWording::from_stored),
            recorded_at: utc(self.recorded_at),
        })
    }
}

/// Every consent record of `id`, newest first.
pub(crate) fn load_consents(conn: &mut AnyConnection, id: &str) -> Result<Vec<Consent>, DbError> {
    consents::table
        .filter(consents::recipient_id.eq(id))
        .order((consents::recorded_at.desc(), consents::id.desc()))
        .select(ConsentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ConsentRow::into_domain)
        .collect()
}

/// Deletes the preferences and consents of `id` (an erasure, in its transaction); returns the
/// rows removed.
pub(crate) fn erase_choices(conn: &mut AnyConnection, id: &str) -> Result<u64, DbError> {
    let preferences =
        diesel::delete(recipient_preferences::table.find(id)).execute(conn)?;
    let consents =
        diesel::delete(consents::table.filter(consents::recipient_id.eq(id))).execute(conn)?;
    Ok(u64::try_from(preferences + consents).unwrap_or(u64::MAX))
}

/// Cancels the waiting deliveries of `id` on `channel` (`consent_revoked`): each one's move is
/// asked of the domain's `Delivery` (`pending`/`retrying` → `cancelled`), and written only
/// while it still stands where it was read, so a claim that won the race keeps its delivery.
fn cancel_waiting(
    conn: &mut AnyConnection,
    id: &str,
    channel: &str,
    at: chrono::NaiveDateTime,
) -> Result<u64, DbError> {
    let waiting: Vec<&str> = DeliveryStatus::ALL
        .into_iter()
        .filter(|s| s.can_move_to(DeliveryStatus::Cancelled))
        .map(DeliveryStatus::as_str)
        .collect();
    let rows = deliveries::table
        .filter(deliveries::recipient_id.eq(id))
        .filter(deliveries::channel.eq(channel))
        .filter(deliveries::status.eq_any(&waiting))
        .select(DeliveryRow::as_select())
        .load(conn)?;
    let mut cancelled = 0u64;
    for row in rows {
        let delivery = row.into_domain()?;
        let Ok(transition) = delivery.cancel(SkipReason::ConsentRevoked.to_string()) else {
            continue;
        };
        let changed = diesel::update(
            deliveries::table
                .find(delivery.id.as_str())
                .filter(deliveries::status.eq(transition.from.as_str())),
        )
        .set((
            deliveries::status.eq(transition.to.as_str()),
            deliveries::last_error.eq(transition.last_error),
            deliveries::updated_at.eq(at),
        ))
        .execute(conn)?;
        cancelled += u64::try_from(changed).unwrap_or(0);
    }
    Ok(cancelled)
}

/// The [`PreferenceRepository`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselPreferenceRepository {
    db: Database,
}

impl DieselPreferenceRepository {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl PreferenceRepository for DieselPreferenceRepository {
    async fn get(&self, id: &RecipientId) -> Result<Option<StoredPreferences>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db.call(move |conn| load_preferences(conn, &id)).await
    }

    async fn get_many(
        &self,
        ids: &[RecipientId],
    ) -> Result<HashMap<RecipientId, Preferences>, RepositoryError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        self.db
            .call(move |conn| {
                let mut found = HashMap::new();
                for chunk in ids.chunks(CHUNK) {
                    let rows: Vec<(String, String)> = recipient_preferences::table
                        .filter(recipient_preferences::recipient_id.eq_any(chunk))
                        .select((
                            recipient_preferences::recipient_id,
                            recipient_preferences::document,
                        ))
                        .load(conn)?;
                    for (id, document) in rows {
                        if let Ok(id) = RecipientId::parse(&id) {
                            found.insert(id, parse_document(&document));
                        }
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn put(
        &self,
        id: &RecipientId,
        preferences: &Preferences,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let (id, document, at) = (id.as_str().to_owned(), preferences.clone(), db_time(at));
        let key = id.clone();
        let written = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    if !recipient_exists(conn, &id)? {
                        return Ok(false);
                    }
                    write_document(conn, &id, &document, at)?;
                    Ok(true)
                })
            })
            .await?;
        if written {
            Ok(())
        } else {
            Err(unknown_recipient(&key))
        }
    }

    async fn opt_out(
        &self,
        id: &RecipientId,
        event_type: &EventType,
        channel: ChannelName,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let (id, event_type, at) = (id.as_str().to_owned(), event_type.clone(), db_time(at));
        let key = id.clone();
        let written = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    if !recipient_exists(conn, &id)? {
                        return Ok(false);
                    }
                    let mut document = load_preferences(conn, &id)?
                        .map(|stored| stored.preferences)
                        .unwrap_or_default();
                    let before = document.clone();
                    document
                        .opt_out(&event_type, channel)
                        .map_err(|e| DbError::Corrupt(e.to_string()))?;
                    if document != before {
                        write_document(conn, &id, &document, at)?;
                    }
                    Ok(true)
                })
            })
            .await?;
        if written {
            Ok(())
        } else {
            Err(unknown_recipient(&key))
        }
    }
}

/// The [`ConsentRepository`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselConsentRepository {
    db: Database,
}

impl DieselConsentRepository {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ConsentRepository for DieselConsentRepository {
    async fn record(
        &self,
        id: &RecipientId,
        consent: &NewConsent,
        at: DateTime<Utc>,
    ) -> Result<RecordedConsent, RepositoryError> {
        let (id, consent, at) = (id.as_str().to_owned(), consent.clone(), db_time(at));
        let key = id.clone();
        let recorded = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    if !recipient_exists(conn, &id)? {
                        return Ok(None);
                    }
                    let number: i64 = diesel::insert_into(consents::table)
                        .values((
                            consents::recipient_id.eq(&id),
                            consents::channel.eq(consent.channel.as_str()),
                            consents::granted.eq(i16::from(consent.granted)),
                            consents::source.eq(consent.source.as_str()),
                            consents::wording.eq(consent.wording.as_ref().map(|w| w.as_str())),
                            consents::recorded_at.eq(at),
                        ))
                        .returning(consents::id)
                        .get_result(conn)?;
                    let cancelled = match consent.channel.channel() {
                        Some(channel) if !consent.granted => {
                            cancel_waiting(conn, &id, channel.as_str(), at)?
                        }
                        _ => 0,
                    };
                    let stored = consents::table
                        .find(number)
                        .select(ConsentRow::as_select())
                        .first(conn)?
                        .into_domain()?;
                    Ok(Some(RecordedConsent {
                        consent: stored,
                        cancelled,
                    }))
                })
            })
            .await?;
        recorded.ok_or_else(|| unknown_recipient(&key))
    }

    async fn history(&self, id: &RecipientId) -> Result<Vec<Consent>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db.call(move |conn| load_consents(conn, &id)).await
    }

    async fn states(
        &self,
        ids: &[RecipientId],
        channels: &[ChannelName],
    ) -> Result<HashMap<RecipientId, ConsentState>, RepositoryError> {
        if ids.is_empty() || channels.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        let names: Vec<&'static str> = channels.iter().map(|c| c.as_str()).collect();
        self.db
            .call(move |conn| {
                let mut states: HashMap<RecipientId, ConsentState> = HashMap::new();
                for chunk in ids.chunks(CHUNK) {
                    let rows: Vec<(String, String, i16, chrono::NaiveDateTime, i64)> =
                        consents::table
                            .filter(consents::recipient_id.eq_any(chunk))
                            .filter(consents::channel.eq_any(&names))
                            .select((
                                consents::recipient_id,
                                consents::channel,
                                consents::granted,
                                consents::recorded_at,
                                consents::id,
                            ))
                            .load(conn)?;
                    for (id, channel, granted, at, number) in rows {
                        let (Ok(id), Ok(channel)) =
                            (RecipientId::parse(&id), ChannelName::parse(&channel))
                        else {
                            continue;
                        };
                        states
                            .entry(id)
                            .or_default()
                            .apply(channel, utc(at), number, granted != 0);
                    }
                }
                Ok(states)
            })
            .await
    }
}
