//! API keys of `/api/v1`: `Authorization: Bearer <key>`, checked against hashes only.
//!
//! Only SHA-256 hashes of keys are held, in memory (the `CLAIRON_API_KEYS` keys, always `admin`)
//! and in the `api_keys` table (keys made with `clairon api-keys create`, each with its scope),
//! so a memory dump or a database copy does not reveal a usable key. A database key is looked up
//! by its hash and the answer kept for [`ApiKeys::cache_ttl`] (5 s by default): a revoked key is
//! refused by every running process within that time, without a restart.
//!
//! The key check itself (`require_api_key`, the scope checks) is middleware:
//! `http::middleware::auth`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use clairon_application::ports::ApiKeyDirectory;
use clairon_domain::ApiScope;
use sha2::{Digest, Sha256};

use crate::http::problem::ApiError;

/// Who is calling: the key's id (`None` for a `CLAIRON_API_KEYS` key) and its scope. Routes read
/// it with `web::ReqData<ApiPrincipal>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiPrincipal {
    /// The `api_keys.id`, or `None` for a key from `CLAIRON_API_KEYS`.
    pub key_id: Option<i64>,
    /// What the key may do.
    pub scope: ApiScope,
}

impl ApiPrincipal {
    /// How audit rows name the caller: `api-key:{id}`, or `env` for a `CLAIRON_API_KEYS` key.
    pub fn actor(&self) -> String {
        self.key_id
            .map_or_else(|| "env".to_owned(), |id| format!("api-key:{id}"))
    }
}

type Digest32 = [u8; 32];

/// Directory answers by key digest, with when they were fetched.
type LookupCache = HashMap<Digest32, (Instant, Option<ApiPrincipal>)>;

/// Most lookups kept in the cache; beyond, it is emptied (unknown keys must not grow it forever).
const CACHE_CAPACITY: usize = 10_000;

/// How long a key that authenticated once is remembered as proven (24 h): while its client
/// address is blocked for refused credentials, a proven key is still looked up and accepted, so
/// a guesser (or a stale key in a cron job) behind the same address cannot lock the real
/// clients out, and a guess is never looked up at all.
const PROVEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The accepted API keys: the configured ones (admin, in memory, as SHA-256 hashes) and, with a
/// [`ApiKeyDirectory`], the database's.
#[derive(Clone, Default)]
pub struct ApiKeys {
    configured: Arc<std::collections::HashSet<Digest32>>,
    directory: Option<Arc<dyn ApiKeyDirectory>>,
    cache: Arc<Mutex<LookupCache>>,
    cache_ttl: Duration,
    /// Digests of directory keys that authenticated, with when they last did.
    proven: Arc<Mutex<HashMap<Digest32, Instant>>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("configured", &self.configured.len())
            .field("directory", &self.directory.is_some())
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// Accepts the keys whose hex SHA-256 hashes are given (invalid hex is ignored), as admin.
    pub fn from_hashes<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            configured: Arc::new(
                hashes
                    .into_iter()
                    .filter_map(|h| hex::decode(h).ok())
                    .filter_map(|bytes| <Digest32>::try_from(bytes).ok())
                    .collect(),
            ),
            ..Self::default()
        }
    }

    /// Also accepts the keys of `directory`, each answer kept for `cache_ttl` (0: every request
    /// asks the directory).
    #[must_use]
    pub fn with_directory(
        mut self,
        directory: Arc<dyn ApiKeyDirectory>,
        cache_ttl: Duration,
    ) -> Self {
        self.directory = Some(directory);
        self.cache_ttl = cache_ttl;
        self
    }

    /// How long a directory answer is trusted: the longest a revoked key keeps working.
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
    }

    /// The hex SHA-256 hash of `key`, as stored.
    pub fn hash_hex(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    /// Adds a plain configured (admin) key, hashing it.
    pub fn insert_key(&mut self, key: &str) {
        Arc::make_mut(&mut self.configured).insert(Sha256::digest(key.as_bytes()).into());
    }

    /// Whether `key` is one of the configured (admin) keys.
    pub fn accepts(&self, key: &str) -> bool {
        let digest: Digest32 = Sha256::digest(key.as_bytes()).into();
        self.configured.contains(&digest)
    }

    /// How many keys are configured (the directory's are not counted).
    pub fn len(&self) -> usize {
        self.configured.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty()
    }

    /// Whether `key` has proven itself: a configured key, or a directory key that authenticated
    /// in this process within the last 24 h. It says nothing of whether the key is still valid
    /// (revocation): [`ApiKeys::authenticate`] decides that.
    pub fn proven(&self, key: &str) -> bool {
        let digest: Digest32 = Sha256::digest(key.as_bytes()).into();
        if self.configured.contains(&digest) {
            return true;
        }
        let proven = self.proven.lock().unwrap_or_else(|e| e.into_inner());
        proven
            .get(&digest)
            .is_some_and(|at| at.elapsed() < PROVEN_TTL)
    }

    fn remember_proven(&self, digest: Digest32) {
        let mut proven = self.proven.lock().unwrap_or_else(|e| e.into_inner());
        if proven.len() >= CACHE_CAPACITY && !proven.contains_key(&digest) {
            proven.retain(|_, at| at.elapsed() < PROVEN_TTL);
            if proven.len() >= CACHE_CAPACITY {
                proven.clear();
            }
        }
        proven.insert(digest, Instant::now());
    }

    /// Who `key` is, if it is accepted.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the directory cannot be asked.
    pub async fn authenticate(&self, key: &str) -> Result<Option<ApiPrincipal>, ApiError> {
        let digest: Digest32 = Sha256::digest(key.as_bytes()).into();
        if self.configured.contains(&digest) {
            return Ok(Some(ApiPrincipal {
                key_id: None,
                scope: ApiScope::Admin,
            }));
        }
        let Some(directory) = &self.directory else {
            return Ok(None);
        };
        if let Some((at, cached)) = self.cache.lock().map_err(poisoned)?.get(&digest) {
            if at.elapsed() < self.cache_ttl {
                if cached.is_some() {
                    self.remember_proven(digest);
                }
                return Ok(*cached);
            }
        }
        let found = directory
            .find_active(&hex::encode(digest))
            .await
            .map_err(|e| ApiError::Unavailable(format!("looking up an API key: {e}")))?
            .map(|(id, scope)| ApiPrincipal {
                key_id: Some(id),
                scope,
            });
        if !self.cache_ttl.is_zero() {
            let mut cache = self.cache.lock().map_err(poisoned)?;
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(digest, (Instant::now(), found));
        }
        if found.is_some() {
            self.remember_proven(digest);
        }
        Ok(found)
    }
}

fn poisoned<T>(_: T) -> ApiError {
    ApiError::Internal("the API key cache lock is poisoned".into())
}

/// The bearer token of a request, if it has one.
pub fn bearer(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use clairon_application::ports::RepositoryError;

    use super::*;

    struct Directory {
        asked: AtomicUsize,
        revoked: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl ApiKeyDirectory for Directory {
        async fn find_active(
            &self,
            hash_hex: &str,
        ) -> Result<Option<(i64, ApiScope)>, RepositoryError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(
                (hash_hex == ApiKeys::hash_hex("db-key") && !self.revoked.load(Ordering::SeqCst))
                    .then_some((7, ApiScope::Send)),
            )
        }
    }

    #[test]
    fn a_configured_key_is_accepted_by_its_hash_only() {
        let keys = ApiKeys::from_hashes([ApiKeys::hash_hex("s3cret").as_str()]);
        assert!(keys.accepts("s3cret"));
        assert!(!keys.accepts("s3cret "));
        assert!(!keys.accepts(&ApiKeys::hash_hex("s3cret")));
    }

    #[tokio::test]
    async fn a_configured_key_is_admin_and_a_directory_key_has_its_scope() {
        let directory = Arc::new(Directory {
            asked: AtomicUsize::new(0),
            revoked: false.into(),
        });
        let mut keys = ApiKeys::default().with_directory(directory, Duration::from_secs(5));
        keys.insert_key("env-key");

        let env = keys.authenticate("env-key").await.unwrap().unwrap();
        let db = keys.authenticate("db-key").await.unwrap().unwrap();

        assert_eq!((env.key_id, env.scope), (None, ApiScope::Admin));
        assert_eq!(env.actor(), "env");
        assert_eq!((db.key_id, db.scope), (Some(7), ApiScope::Send));
        assert_eq!(db.actor(), "api-key:7");
        assert_eq!(keys.authenticate("nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_directory_answer_is_reused_within_the_cache_time_and_asked_again_after() {
        let directory = Arc::new(Directory {
            asked: AtomicUsize::new(0),
            revoked: false.into(),
        });
        let cached = ApiKeys::default().with_directory(directory.clone(), Duration::from_secs(60));
        cached.authenticate("db-key").await.unwrap();
        cached.authenticate("db-key").await.unwrap();
        assert_eq!(directory.asked.load(Ordering::SeqCst), 1, "cached");

        let uncached = ApiKeys::default().with_directory(directory.clone(), Duration::ZERO);
        directory.revoked.store(true, Ordering::SeqCst);
        assert_eq!(
            uncached.authenticate("db-key").await.unwrap(),
            None,
            "a revoked key is refused as soon as the cache lets go"
        );
    }
}
