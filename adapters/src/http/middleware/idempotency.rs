//! `Idempotency-Key` on the ingestion POSTs: a retried request is answered with the first
//! answer instead of being executed twice.
//!
//! This is an HTTP concern and lives entirely in the adapter: the application layer never sees
//! the header. The rules (after Stripe's, Knock's and Courier's, and the IETF draft
//! `draft-ietf-httpapi-idempotency-key-header`):
//!
//! - the key is 1 to 255 visible ASCII characters (`%x21-7E`); anything else is a 422 problem
//!   naming `Idempotency-Key`;
//! - keys are scoped per API key (by its SHA-256) and remembered for [`KEY_TTL`];
//! - a request is fingerprinted by the SHA-256 of its method, path and body bytes; the same key
//!   with another fingerprint is a 422 problem;
//! - the key is recorded *before* the request runs, `in progress`, under a unique constraint: a
//!   concurrent request with the same key gets a 409 problem and executes nothing;
//! - when the request completes its status and body are stored and replayed verbatim, with
//!   `Idempotent-Replayed: true`; a 5xx answer releases the key so the client may retry.
//!
//! Requests without the header are untouched.
//!
//! **The answer is written with the work.** Storing the answer after the request's transaction
//! committed could fail (or the process die in between), and a retry would then run the request
//! a second time once the record counts as abandoned. So the request runs inside a [`crate::idempotency::scope`]:
//! a route that writes notifications tells it, before writing, how its answer is built from
//! them ([`crate::idempotency::answer_with`]), and the persistence adapter takes a [`crate::idempotency::Settlement`] from the scope on
//! the request's task and applies it in the same transaction as the rows: the record becomes
//! `completed` with its answer, and the recipients the request wrote about are recorded
//! (`idempotency_subjects`, so that erasing one of them drops the record). The middleware's own
//! write is then skipped. Routes whose rerun creates nothing new (an import upserts, a planning
//! event id is unique) only record their subjects and keep the answer written afterwards.

use std::sync::Arc;

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage as _, HttpResponse};
use chrono::TimeDelta;
use clairon_application::ports::{
    Begun, IdempotencyStore, IdempotentRequest, RepositoryError, StoredResponse,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::http::credentials::api_keys::{bearer, ApiKeys};
use crate::http::extract::BodyLimits;
use crate::http::problem::ApiError;
use crate::http::state::Handlers;
use crate::idempotency::{scope, Scope};

/// The request header (IETF draft `draft-ietf-httpapi-idempotency-key-header`).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The header set on a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// How long a key is remembered: 24 h, as Knock and Courier do.
pub const KEY_TTL: TimeDelta = TimeDelta::hours(24);

/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// Checks an `Idempotency-Key` value: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
///
/// # Errors
/// A 422 [`ApiError`] naming the header.
pub fn parse_key(raw: &HeaderValue) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
        return Err(ApiError::invalid(
            IDEMPOTENCY_KEY,
            format!("must be 1 to {MAX_KEY_LEN} characters long"),
        ));
    }
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::invalid(
            IDEMPOTENCY_KEY,
            "must be visible ASCII characters only (no spaces)",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Lowercase hex SHA-256 of `method`, `path` and `body`, separated so that no two different
/// requests share one input.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

async fn read_body(mut payload: Payload, max: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn store_error(e: RepositoryError) -> ApiError {
    ApiError::Unavailable(format!("idempotency store: {e}"))
}

fn replay(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(content_type) = stored.content_type {
        response.insert_header((header::CONTENT_TYPE, content_type));
    }
    response.insert_header((
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    ));
    response.body(stored.body)
}

async fn release(store: &dyn IdempotencyStore, request: &IdempotentRequest) {
    if let Err(e) = store.release(request).await {
        // The record stays in progress until it expires; the client gets 409 meanwhile.
        tracing::error!(error = %e, "could not release an idempotency key");
    }
}

/// Middleware for the ingestion POSTs: see the module documentation. Expects
/// `web::Data<Handlers>` (for [`Handlers::idempotency`]) and runs inside the API key check.
///
/// # Errors
/// 422 for an invalid key or a key reused with another request, 409 while a request with the key
/// is in progress, 413 for a body over [`BodyLimits::max_bytes`], 503 when the store fails.
pub async fn idempotent(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(raw) = req.headers().get(IDEMPOTENCY_KEY) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let key = parse_key(raw)?;
    let (store, clock): (Arc<dyn IdempotencyStore>, _) = req
        .app_data::<web::Data<Handlers>>()
        .map(|h| (h.idempotency.clone(), h.clock.clone()))
        .ok_or_else(|| ApiError::Internal("no idempotency store configured".into()))?;
    let api_key_hash = bearer(req.request())
        .map(ApiKeys::hash_hex)
        .unwrap_or_default();
    let max = BodyLimits::of(req.request()).max_bytes;
    let body = read_body(req.take_payload(), max).await?;
    let request = IdempotentRequest {
        api_key_hash,
        key,
        fingerprint: fingerprint(req.method().as_str(), req.path(), &body),
    };

    match store
        .begin(&request, clock.now(), KEY_TTL)
        .await
        .map_err(store_error)?
    {
        Begun::InProgress => Err(ApiError::Conflict(format!(
            "a request with this {IDEMPOTENCY_KEY} is in progress; retry later"
        ))
        .into()),
        Begun::Mismatch => Err(ApiError::invalid(
            IDEMPOTENCY_KEY,
            "was already used with a different request (method, path or body) in the last 24 hours",
        )
        .into()),
        Begun::Completed(stored) => {
            tracing::debug!(status = stored.status, "replayed an idempotent request");
            Ok(req.into_response(replay(stored)))
        }
        Begun::Started => {
            req.set_payload(Payload::from(body));
            let served = Scope::new(request.clone());
            let response = match scope(served.clone(), next.call(req)).await {
                Ok(response) => response,
                Err(e) => {
                    release(&*store, &request).await;
                    return Err(e);
                }
            };
            if response.status().is_server_error() {
                release(&*store, &request).await;
                return Ok(response.map_into_boxed_body());
            }
            let (http_request, response) = response.into_parts();
            let (head, response_body) = response.into_parts();
            let Ok(bytes) = body::to_bytes(response_body).await else {
                release(&*store, &request).await;
                return Err(ApiError::Internal("unreadable response body".into()).into());
            };
            let stored = StoredResponse {
                status: head.status().as_u16(),
                content_type: head
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            };
            if served.answered() {
                tracing::debug!("the idempotent answer was stored with the work");
            } else if let Err(e) = store.complete(&request, &stored).await {
                // The work is done and committed: answer it. A retry gets 409, then (once the
                // record counts as abandoned) runs again: only routes whose rerun creates nothing
                // new get here (their notifications store the answer with the work).
                tracing::error!(error = %e, "could not store an idempotent answer");
            }
            Ok(ServiceResponse::new(
                http_request,
                head.set_body(bytes).map_into_boxed_body(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert!(parse_key(&HeaderValue::from_static("order-42:retry_1")).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(255)).unwrap()).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("two words")).is_err());
        assert!(parse_key(&HeaderValue::from_bytes("clé".as_bytes()).unwrap()).is_err());
    }

    #[test]
    fn the_fingerprint_tells_method_path_and_body_apart() {
        let base = fingerprint("POST", "/api/v1/notifications", b"{}");
        assert_eq!(base, fingerprint("POST", "/api/v1/notifications", b"{}"));
        assert_ne!(base, fingerprint("PUT", "/api/v1/notifications", b"{}"));
        assert_ne!(base, fingerprint("POST", "/api/v1/notifications/x", b"{}"));
        assert_ne!(base, fingerprint("POST", "/api/v1/notifications", b"{ }"));
    }
}
