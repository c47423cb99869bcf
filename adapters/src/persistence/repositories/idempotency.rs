//! [`DieselIdempotencyStore`]: `Idempotency-Key` records of the HTTP adapter.
//!
//! The primary key `(api_key_hash, idempotency_key)` is the lock: the first request inserts its
//! record `in_progress`; a concurrent one finds the row (`INSERT … ON CONFLICT DO NOTHING`
//! inserts nothing — on PostgreSQL it first waits for the other transaction to commit) and
//! reads it instead. SQLite's `BEGIN IMMEDIATE` serialises the whole check.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clairon_application::ports::RepositoryError;
use diesel::prelude::*;

use crate::http::idempotency::{Begun, IdempotencyStore, IdempotentRequest, StoredResponse};
use crate::persistence::connection::{on_inner, write_transaction, Database, DbError};
use crate::persistence::rows::db_time;
use crate::persistence::schema::idempotency_keys;

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
