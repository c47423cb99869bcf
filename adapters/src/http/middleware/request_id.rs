//! `X-Request-Id`: every request gets an id — the client's when it is sane (1 to 128 visible
//! ASCII characters), else a fresh UUID — echoed in the response, carried by the request's
//! tracing span (so every log line of the request has it), and stamped on the notifications
//! the request creates (through [`crate::correlation`]), from where the dispatcher's log span
//! of each delivery carries it too.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};
use tracing::Instrument as _;

/// The header, in both directions.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-given id kept, in bytes; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// The id of the request being served, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether a client's `X-Request-Id` may be kept: 1 to [`MAX_LEN`] visible ASCII characters
/// (`!` to `~`), so it is safe in a header, a log line and a database column.
pub fn is_sane(raw: &str) -> bool {
    (1..=MAX_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic())
}

/// The middleware (`App::wrap(from_fn(request_id::assign))`): place it outside the routes and
/// inside the access log, so the log can print the response's `X-Request-Id`.
///
/// # Errors
/// Never of its own; an error of an inner service is passed on as its response with the
/// header added, so refusals carry the id too.
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), ToOwned::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "http_request",
        request_id = %id,
        method = %req.method(),
        // The path only: query strings may carry recipient tokens.
        path = %req.path(),
    );
    // No clone of the request may live across `next.call`: routing needs it unshared.
    let outcome = crate::correlation::scope(id.clone(), next.call(req))
        .instrument(span)
        .await;
    let value = HeaderValue::from_str(&id).ok();
    match outcome {
        Ok(mut response) => {
            if let Some(value) = value {
                response.headers_mut().insert(X_REQUEST_ID, value);
            }
            Ok(response)
        }
        Err(error) => {
            // The request is gone with the error: render the error's response now, with the
            // header, and pass it on as an error that answers with exactly that response.
            let mut response = error.error_response();
            if let Some(value) = value {
                response.headers_mut().insert(X_REQUEST_ID, value);
            }
            Err(InternalError::from_response(error.to_string(), response).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        assert!(is_sane("req-42_abc.DEF"));
        assert!(is_sane(&"a".repeat(MAX_LEN)));
        assert!(!is_sane(""));
        assert!(!is_sane(&"a".repeat(MAX_LEN + 1)));
        assert!(!is_sane("has space"));
        assert!(!is_sane("tab\there"));
        assert!(!is_sane("é"));
    }
}
