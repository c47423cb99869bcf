//! API key authentication and scopes for `/api/v1`: `Authorization: Bearer <key>`.
//!
//! The keys themselves (hashes, the directory cache) are `http::credentials::api_keys`.
//!
//! [`require_api_key`] authenticates, applies the per-key rate limit, and leaves an
//! [`ApiPrincipal`] in the request's extensions; [`require_send`], [`require_read`] and
//! [`require_admin`] then check its scope, so a whole scope is admin-only with one line:
//! `web::scope("/admin").wrap(from_fn(auth::require_admin))`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use clairon_domain::ApiScope;
use sha2::{Digest, Sha256};

use super::rate_limit::{admit_credential, refuse_credential, Credential, RateLimits};
use crate::http::credentials::api_keys::{bearer, ApiKeys, ApiPrincipal};
use crate::http::problem::ApiError;

/// Middleware: refuses with 401 problem+json unless the request carries an accepted API key,
/// then with 429 problem+json (and `Retry-After`) when the key is over its rate limit; else
/// leaves the [`ApiPrincipal`] in the request's extensions. An unknown or revoked key counts
/// against the client address's failure bucket (`rate_limit::refuse_credential`), and an
/// address whose bucket is empty is answered 429 before its key is even looked up — unless the
/// key has proven itself ([`ApiKeys::proven`]): a blocked address's known clients go on working,
/// while a guess from it is never looked up.
///
/// # Errors
/// [`ApiError::Unauthorized`] when the key is missing, unknown or revoked;
/// [`ApiError::TooManyRequests`] over the key's limit or the address's failure limit;
/// [`ApiError::Unavailable`] when the key directory cannot be asked.
pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let keys = req
        .app_data::<web::Data<ApiKeys>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("API keys are not configured".into()))?;
    let presented = bearer(req.request())
        .map(ToOwned::to_owned)
        .ok_or(ApiError::Unauthorized)?;
    if !keys.proven(&presented) {
        admit_credential(req.request(), Credential::ApiKey)?;
    }
    let Some(principal) = keys.authenticate(&presented).await? else {
        return Err(refuse_credential(req.request(), Credential::ApiKey).into());
    };
    if let Some(limits) = req.app_data::<web::Data<RateLimits>>() {
        limits.check_api_key(Sha256::digest(presented.as_bytes()).into())?;
    }
    req.extensions_mut().insert(principal);
    next.call(req).await
}

async fn require(
    scope: ApiScope,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let principal = req.extensions().get::<ApiPrincipal>().copied();
    match principal {
        None => Err(ApiError::Unauthorized.into()),
        Some(p) if !p.scope.allows(scope) => Err(ApiError::Forbidden(format!(
            "this API key has the {} scope; this route needs {}",
            p.scope,
            if scope == ApiScope::Admin {
                "admin".to_owned()
            } else {
                format!("{scope} (or admin)")
            }
        ))
        .into()),
        Some(_) => next.call(req).await,
    }
}

/// Middleware (inside [`require_api_key`]): only `send` and `admin` keys pass; others get 403.
///
/// # Errors
/// [`ApiError::Forbidden`]; [`ApiError::Unauthorized`] without [`require_api_key`] before it.
pub async fn require_send(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    require(ApiScope::Send, req, next).await
}

/// Middleware (inside [`require_api_key`]): only `read` and `admin` keys pass; others get 403.
///
/// # Errors
/// [`ApiError::Forbidden`]; [`ApiError::Unauthorized`] without [`require_api_key`] before it.
pub async fn require_read(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    require(ApiScope::Read, req, next).await
}

/// Middleware (inside [`require_api_key`]): only `admin` keys pass; others get 403.
///
/// # Errors
/// [`ApiError::Forbidden`]; [`ApiError::Unauthorized`] without [`require_api_key`] before it.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    require(ApiScope::Admin, req, next).await
}
