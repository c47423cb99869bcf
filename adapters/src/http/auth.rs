//! API key authentication for `/api/v1`: `Authorization: Bearer <key>`.
//!
//! Only SHA-256 hashes of keys are held in memory (and, for a generated key, in the database),
//! so a memory dump or a database copy does not reveal a usable key.

use std::collections::HashSet;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error};
use sha2::{Digest, Sha256};

use super::problem::ApiError;

/// The accepted API keys, as SHA-256 hashes.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    hashes: HashSet<[u8; 32]>,
}

impl ApiKeys {
    /// Accepts the keys whose hex SHA-256 hashes are given (invalid hex is ignored).
    pub fn from_hashes<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            hashes: hashes
                .into_iter()
                .filter_map(|h| hex::decode(h).ok())
                .filter_map(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .collect(),
        }
    }

    /// The hex SHA-256 hash of `key`, as stored.
    pub fn hash_hex(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    /// Adds a plain key (hashing it).
    pub fn insert_key(&mut self, key: &str) {
        self.hashes.insert(Sha256::digest(key.as_bytes()).into());
    }

    /// Whether `key` is accepted.
    pub fn accepts(&self, key: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.hashes.contains(&digest)
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
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

/// Middleware: refuses with 401 problem+json unless the request carries an accepted API key.
///
/// # Errors
/// [`ApiError::Unauthorized`] when the key is missing or unknown.
pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let accepted = req
        .app_data::<web::Data<ApiKeys>>()
        .zip(bearer(req.request()))
        .is_some_and(|(keys, presented)| keys.accepts(presented));
    if !accepted {
        return Err(ApiError::Unauthorized.into());
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_by_its_hash_only() {
        let keys = ApiKeys::from_hashes([ApiKeys::hash_hex("s3cret").as_str()]);
        assert!(keys.accepts("s3cret"));
        assert!(!keys.accepts("s3cret "));
        assert!(!keys.accepts(&ApiKeys::hash_hex("s3cret")));
    }
}
