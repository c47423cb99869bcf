//! [`DieselApiKeyStore`]: the API keys the HTTP API accepts besides `CLAIRON_API_KEYS`, with
//! their names and scopes.
//!
//! Only the SHA-256 of a key is stored, as lowercase hex; the key itself never reaches the
//! database, so a leaked database does not leak usable keys. A revoked key keeps its row (with
//! `revoked_at`) so listings still show it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{ApiKeyDirectory, RepositoryError};
use clairon_domain::ApiScope;
use diesel::prelude::*;

use crate::persistence::connection::{Database, DbError};
use crate::persistence::rows::{db_time, utc};
use crate::persistence::schema::api_keys;

/// How stale `last_used_at` may get before a lookup refreshes it: 60 s, so a busy key costs one
/// write a minute, not one per request.
const LAST_USED_PRECISION: chrono::Duration = chrono::Duration::seconds(60);

/// One stored key, without its secret (which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// What `clairon api-keys revoke` takes.
    pub id: i64,
    /// Whose key it is.
    pub name: String,
    /// What it may do.
    pub scope: ApiScope,
    /// When it was made (UTC).
    pub created_at: DateTime<Utc>,
    /// Its last accepted request (UTC, to the minute), if any.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked (UTC), if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    id: i64,
    name: String,
    scope: String,
    created_at: chrono::NaiveDateTime,
    last_used_at: Option<chrono::NaiveDateTime>,
    revoked_at: Option<chrono::NaiveDateTime>,
}

impl ApiKeyRow {
    fn into_record(self) -> Result<ApiKeyRecord, DbError> {
        Ok(ApiKeyRecord {
            scope: ApiScope::parse(&self.scope)
                .map_err(|e| DbError::Corrupt(format!("api_keys {}: {e}", self.id)))?,
            id: self.id,
            name: self.name,
            created_at: utc(self.created_at),
            last_used_at: self.last_used_at.map(utc),
            revoked_at: self.revoked_at.map(utc),
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
struct NewApiKeyRow {
    name: String,
    scope: String,
    hash: String,
    created_at: chrono::NaiveDateTime,
}

/// API keys on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselApiKeyStore {
    db: Database,
}

impl DieselApiKeyStore {
    /// A store on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Stores a key by the hex SHA-256 `hash_hex` of its secret (case-insensitive; kept
    /// lowercase), named `name`, with `scope`; returns it with its new id.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when the hash is already stored (nothing changes);
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn create(
        &self,
        name: &str,
        scope: ApiScope,
        hash_hex: &str,
    ) -> Result<ApiKeyRecord, RepositoryError> {
        let row = NewApiKeyRow {
            name: name.to_owned(),
            scope: scope.as_str().to_owned(),
            hash: hash_hex.trim().to_ascii_lowercase(),
            created_at: db_time(self.db.now()),
        };
        self.db
            .call(move |conn| {
                let id: i64 = diesel::insert_into(api_keys::table)
                    .values(&row)
                    .returning(api_keys::id)
                    .get_result(conn)?;
                api_keys::table
                    .find(id)
                    .select(ApiKeyRow::as_select())
                    .first(conn)?
                    .into_record()
            })
            .await
    }

    /// Stores an `admin` key by its hash, named `label` (or `key`): the key generated at first
    /// start.
    ///
    /// # Errors
    /// As [`DieselApiKeyStore::create`].
    pub async fn insert_hash(
        &self,
        hash_hex: &str,
        label: Option<&str>,
    ) -> Result<(), RepositoryError> {
        self.create(label.unwrap_or("key"), ApiScope::Admin, hash_hex)
            .await
            .map(|_| ())
    }

    /// Every key, oldest first, revoked ones included; never a secret.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn list(&self) -> Result<Vec<ApiKeyRecord>, RepositoryError> {
        self.db
            .call(|conn| {
                api_keys::table
                    .order(api_keys::id.asc())
                    .select(ApiKeyRow::as_select())
                    .load(conn)?
                    .into_iter()
                    .map(ApiKeyRow::into_record)
                    .collect()
            })
            .await
    }

    /// Revokes key `id` at `now`: from then on (within the HTTP adapter's cache time) it is
    /// refused. Revoking a revoked key keeps its first revocation time. Returns the key, or
    /// `None` when there is no such id.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn revoke(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRecord>, RepositoryError> {
        let now = db_time(now);
        self.db
            .call(move |conn| {
                diesel::update(
                    api_keys::table
                        .find(id)
                        .filter(api_keys::revoked_at.is_null()),
                )
                .set(api_keys::revoked_at.eq(now))
                .execute(conn)?;
                api_keys::table
                    .find(id)
                    .select(ApiKeyRow::as_select())
                    .first(conn)
                    .optional()?
                    .map(ApiKeyRow::into_record)
                    .transpose()
            })
            .await
    }

    /// Whether the hex SHA-256 `hash_hex` (case-insensitive) is a stored, unrevoked key's.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn contains_hash(&self, hash_hex: &str) -> Result<bool, RepositoryError> {
        let hash = hash_hex.trim().to_ascii_lowercase();
        self.db
            .call(move |conn| {
                let found: i64 = api_keys::table
                    .filter(api_keys::hash.eq(hash))
                    .filter(api_keys::revoked_at.is_null())
                    .count()
                    .get_result(conn)?;
                Ok(found > 0)
            })
            .await
    }

    /// How many keys are stored, revoked ones included (bootstrap generates a first one when
    /// there are none).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn count(&self) -> Result<u64, RepositoryError> {
        self.db
            .call(|conn| {
                let count: i64 = api_keys::table.count().get_result(conn)?;
                Ok(u64::try_from(count).unwrap_or(0))
            })
            .await
    }
}

#[async_trait]
impl ApiKeyDirectory for DieselApiKeyStore {
    async fn find_active(
        &self,
        hash_hex: &str,
    ) -> Result<Option<(i64, ApiScope)>, RepositoryError> {
        let hash = hash_hex.trim().to_ascii_lowercase();
        let now = self.db.now();
        self.db
            .call(move |conn| {
                let found: Option<(i64, String, Option<chrono::NaiveDateTime>)> = api_keys::table
                    .filter(api_keys::hash.eq(&hash))
                    .filter(api_keys::revoked_at.is_null())
                    .select((api_keys::id, api_keys::scope, api_keys::last_used_at))
                    .first(conn)
                    .optional()?;
                let Some((id, scope, last_used_at)) = found else {
                    return Ok(None);
                };
                let scope = ApiScope::parse(&scope)
                    .map_err(|e| DbError::Corrupt(format!("api_keys {id}: {e}")))?;
                if last_used_at.is_none_or(|at| utc(at) + LAST_USED_PRECISION < now) {
                    diesel::update(api_keys::table.find(id))
                        .set(api_keys::last_used_at.eq(db_time(now)))
                        .execute(conn)?;
                }
                Ok(Some((id, scope)))
            })
            .await
    }
}
