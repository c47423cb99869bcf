//! [`DieselIdempotencyStore`]: `Idempotency-Key` records of the HTTP adapter.
//!
//! The primary key `(api_key_hash, idempotency_key)` is the lock: the first request inserts its
//! record `in_progress`; a concurrent one finds the row (`INSERT … ON CONFLICT DO NOTHING`
//! inserts nothing — on PostgreSQL it first waits for the other transaction to commit) and
//! reads it instead. SQLite's `BEGIN IMMEDIATE` serialises the whole check.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clairon_application::ports::{
    Begun, IdempotencyStore, IdempotentRequest, RepositoryError, StoredResponse,
};
use diesel::prelude::*;

use crate::idempotency::Settlement;
use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Database, DbError,
};
use crate::persistence::rows::db_time;
use crate::persistence::schema::{idempotency_keys, idempotency_subjects};

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// An in-progress record older than this belongs to a request that died with its process (no
/// HTTP request of this API runs for 10 min): it is taken over rather than blocking the key for
/// 24 h.
const ABANDONED_AFTER: TimeDelta = TimeDelta::minutes(10);

/// The `Idempotency-Key` records on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselIdempotencyStore {
    db: Database,
}

impl DieselIdempotencyStore {
    /// A store on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Deletes every record expired at `now`; returns how many. [`IdempotencyStore::begin`]
    /// does it too, so calling this is only housekeeping.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, RepositoryError> {
        let now = db_time(now);
        self.db
            .call(move |conn| {
                Ok(diesel::delete(
                    idempotency_keys::table.filter(idempotency_keys::expires_at.le(now)),
                )
                .execute(conn)?)
            })
            .await
    }
}

/// Applies `settlement` to its record inside the caller's transaction (the request's own
/// work): stores the answer (`completed`) when it has one, and records the subjects. A record
/// that is gone (expired and purged meanwhile) or whose fingerprint differs is left alone and
/// the work goes on: the record only ever speaks for the request that made it.
pub(crate) fn settle(conn: &mut AnyConnection, settlement: &Settlement) -> Result<(), DbError> {
    let request = &settlement.request;
    let record = || {
        idempotency_keys::table
            .find((&request.api_key_hash, &request.key))
            .filter(idempotency_keys::fingerprint.eq(&request.fingerprint))
    };
    // Locks the record (PostgreSQL) and says whether it is still there.
    let found = diesel::update(record())
        .set(idempotency_keys::state.eq(idempotency_keys::state))
        .execute(conn)?;
    if found == 0 {
        return Ok(());
    }
    if let Some(answer) = &settlement.answer {
        diesel::update(record().filter(idempotency_keys::state.eq(IN_PROGRESS)))
            .set((
                idempotency_keys::state.eq(COMPLETED),
                idempotency_keys::response_status
                    .eq(Some(i16::try_from(answer.status).unwrap_or(i16::MAX))),
                idempotency_keys::response_type.eq(&answer.content_type),
                idempotency_keys::response_body.eq(Some(&answer.body)),
            ))
            .execute(conn)?;
    }
    let rows: Vec<SubjectRow> = settlement
        .subjects
        .iter()
        .map(|recipient_id| SubjectRow {
            api_key_hash: request.api_key_hash.clone(),
            idempotency_key: request.key.clone(),
            recipient_id: recipient_id.clone(),
        })
        .collect();
    for chunk in rows.chunks(super::CHUNK) {
        match conn {
            AnyConnection::Postgresql(pg) => diesel::insert_into(idempotency_subjects::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(pg)?,
            AnyConnection::Sqlite(sqlite) => {
                diesel::insert_or_ignore_into(idempotency_subjects::table)
                    .values(chunk)
                    .execute(sqlite)?
            }
        };
    }
    Ok(())
}

/// Drops every record of a request that named `recipient_id`: those whose subjects list them,
/// and answers that were not a success (nothing was written, so no subject was recorded) whose
/// body names them (a `422` listing unknown recipients). Returns how many went.
pub(crate) fn drop_naming(conn: &mut AnyConnection, recipient_id: &str) -> Result<usize, DbError> {
    let mut keys: Vec<(String, String)> = idempotency_subjects::table
        .filter(idempotency_subjects::recipient_id.eq(recipient_id))
        .select((
            idempotency_subjects::api_key_hash,
            idempotency_subjects::idempotency_key,
        ))
        .load(conn)?;
    // A LIKE narrows (`_` in an id only widens it); the quoted or listed id decides.
    let pattern = format!("%{recipient_id}%");
    let refused: Vec<(String, String, Option<String>)> = idempotency_keys::table
        .filter(idempotency_keys::response_status.ge(300))
        .filter(idempotency_keys::response_body.like(pattern))
        .select((
            idempotency_keys::api_key_hash,
            idempotency_keys::idempotency_key,
            idempotency_keys::response_body,
        ))
        .load(conn)?;
    keys.extend(
        refused
            .into_iter()
            .filter(|(_, _, body)| body.as_deref().is_some_and(|b| names(b, recipient_id)))
            .map(|(hash, key, _)| (hash, key)),
    );
    keys.sort();
    keys.dedup();
    let mut dropped = 0;
    for (hash, key) in &keys {
        // Their subjects go with them (ON DELETE CASCADE).
        dropped += diesel::delete(idempotency_keys::table.find((hash, key))).execute(conn)?;
    }
    Ok(dropped)
}

/// Whether `body` names the id `id` as a whole word: not inside a longer id (`artist-1` is not
/// named by `artist-10`).
fn names(body: &str, id: &str) -> bool {
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || "_-.:@".contains(c);
    body.match_indices(id).any(|(at, _)| {
        let before = body[..at].chars().next_back();
        let after = body[at + id.len()..].chars().next();
        // A trailing `.` ends a sentence more often than it continues an id.
        !before.is_some_and(is_id_char) && !after.is_some_and(|c| is_id_char(c) && c != '.')
    })
}

#[derive(Insertable)]
#[diesel(table_name = idempotency_subjects)]
struct SubjectRow {
    api_key_hash: String,
    idempotency_key: String,
    recipient_id: String,
}

#[derive(Insertable)]
#[diesel(table_name = idempotency_keys)]
struct NewKeyRow {
    api_key_hash: String,
    idempotency_key: String,
    fingerprint: String,
    state: String,
    created_at: chrono::NaiveDateTime,
    expires_at: chrono::NaiveDateTime,
}

type KeyState = (String, String, Option<i16>, Option<String>, Option<String>);

#[async_trait]
impl IdempotencyStore for DieselIdempotencyStore {
    async fn begin(
        &self,
        request: &IdempotentRequest,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Begun, RepositoryError> {
        let row = NewKeyRow {
            api_key_hash: request.api_key_hash.clone(),
            idempotency_key: request.key.clone(),
            fingerprint: request.fingerprint.clone(),
            state: IN_PROGRESS.to_owned(),
            created_at: db_time(now),
            expires_at: db_time(
                now.checked_add_signed(ttl)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
        };
        let abandoned = db_time(now - ABANDONED_AFTER);
        let now = db_time(now);
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    diesel::delete(
                        idempotency_keys::table.filter(
                            idempotency_keys::expires_at
                                .le(now)
                                .or(idempotency_keys::state
                                    .eq(IN_PROGRESS)
                                    .and(idempotency_keys::created_at.le(abandoned))),
                        ),
                    )
                    .execute(conn)?;
                    let inserted =
                        on_inner!(conn, |c| diesel::insert_into(idempotency_keys::table)
                            .values(&row)
                            .on_conflict_do_nothing()
                            .execute(c))?;
                    if inserted == 1 {
                        return Ok(Begun::Started);
                    }
                    let (fingerprint, state, status, content_type, body): KeyState =
                        idempotency_keys::table
                            .find((&row.api_key_hash, &row.idempotency_key))
                            .select((
                                idempotency_keys::fingerprint,
                                idempotency_keys::state,
                                idempotency_keys::response_status,
                                idempotency_keys::response_type,
                                idempotency_keys::response_body,
                            ))
                            .first(conn)?;
                    if fingerprint != row.fingerprint {
                        return Ok(Begun::Mismatch);
                    }
                    match (state.as_str(), status, body) {
                        (COMPLETED, Some(status), Some(body)) => {
                            Ok(Begun::Completed(StoredResponse {
                                status: u16::try_from(status).map_err(|_| {
                                    DbError::Corrupt(format!(
                                        "idempotency_keys: status {status} is not an HTTP status"
                                    ))
                                })?,
                                content_type,
                                body,
                            }))
                        }
                        _ => Ok(Begun::InProgress),
                    }
                })
            })
            .await
    }

    async fn complete(
        &self,
        request: &IdempotentRequest,
        response: &StoredResponse,
    ) -> Result<(), RepositoryError> {
        let (scope, key) = (request.api_key_hash.clone(), request.key.clone());
        let response = response.clone();
        self.db
            .call(move |conn| {
                diesel::update(idempotency_keys::table.find((scope, key)))
                    .set((
                        idempotency_keys::state.eq(COMPLETED),
                        idempotency_keys::response_status
                            .eq(Some(i16::try_from(response.status).unwrap_or(i16::MAX))),
                        idempotency_keys::response_type.eq(response.content_type),
                        idempotency_keys::response_body.eq(Some(response.body)),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    async fn release(&self, request: &IdempotentRequest) -> Result<(), RepositoryError> {
        let (scope, key) = (request.api_key_hash.clone(), request.key.clone());
        self.db
            .call(move |conn| {
                diesel::delete(
                    idempotency_keys::table
                        .find((scope, key))
                        .filter(idempotency_keys::state.eq(IN_PROGRESS)),
                )
                .execute(conn)?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn an_id_is_named_as_a_whole_word_only() {
        let body = r#"{"detail":"unknown recipients: artist-1, ghost-2."}"#;
        assert!(names(body, "artist-1"), "listed");
        assert!(names(body, "ghost-2"), "at the end of a sentence");
        assert!(!names(body, "artist-"), "not a prefix of another id");
        assert!(
            !names(r#"{"id":"artist-10"}"#, "artist-1"),
            "not inside a longer id"
        );
    }
}
