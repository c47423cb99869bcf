//! API key management behind `clairon api-keys create|list|revoke`: keys are random, shown
//! once, and stored as SHA-256 hashes with a name and a scope.

use anyhow::Context as _;
use chrono::Utc;
use clairon_adapters::http::ApiKeys;
use clairon_adapters::persistence::{ApiKeyRecord, Database, DieselApiKeyStore};
use clairon_domain::ApiScope;

/// A key just made: its record and its secret, which exists nowhere else.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The stored record (no secret).
    pub record: ApiKeyRecord,
    /// The key to give to the client: `clr_` and 48 hex digits (192 random bits).
    pub secret: String,
}

/// A fresh random API key: `clr_` and 48 lowercase hex digits (24 bytes from the OS-seeded
/// generator), recognisable in logs so the masker can hide it.
pub fn generate_secret() -> String {
    format!("clr_{}", hex::encode(rand::random::<[u8; 24]>()))
}

/// Makes a key named `name` with `scope`, storing only its hash.
///
/// # Errors
/// When the name is empty or the database fails.
pub async fn create(
    database: &Database,
    name: &str,
    scope: ApiScope,
) -> anyhow::Result<CreatedKey> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "--name must not be empty");
    let secret = generate_secret();
    let record = DieselApiKeyStore::new(database.clone())
        .create(name, scope, &ApiKeys::hash_hex(&secret))
        .await
        .context("storing the API key")?;
    Ok(CreatedKey { record, secret })
}

/// Every stored key, oldest first (revoked ones included), without secrets.
///
/// # Errors
/// When the database fails.
pub async fn list(database: &Database) -> anyhow::Result<Vec<ApiKeyRecord>> {
    Ok(DieselApiKeyStore::new(database.clone()).list().await?)
}

/// Revokes key `id` now; `None` when there is no such key.
///
/// # Errors
/// When the database fails.
pub async fn revoke(database: &Database, id: i64) -> anyhow::Result<Option<ApiKeyRecord>> {
    Ok(DieselApiKeyStore::new(database.clone())
        .revoke(id, Utc::now())
        .await?)
}

/// The listing as `clairon api-keys list` prints it: one line per key, no secret.
pub fn format_list(keys: &[ApiKeyRecord]) -> String {
    let mut out = format!(
        "{:>4}  {:<6}  {:<24}  {:<20}  {:<20}  {}\n",
        "id", "scope", "name", "created", "last used", "revoked"
    );
    let time = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
    };
    for k in keys {
        out.push_str(&format!(
            "{:>4}  {:<6}  {:<24}  {:<20}  {:<20}  {}\n",
            k.id,
            k.scope.as_str(),
            k.name,
            time(Some(k.created_at)),
            time(k.last_used_at),
            time(k.revoked_at),
        ));
    }
    out
}
