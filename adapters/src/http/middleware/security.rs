//! Security headers on every answer, and CORS for the recipient's routes.
//!
//! Every response gets `X-Content-Type-Options: nosniff`. HTML pages (`/inbox`, and any page
//! another route serves as `text/html`) also get a `Content-Security-Policy` that allows scripts
//! from this origin only (`script-src 'self'`: no inline script, no `eval`) unless the route set
//! its own, `Referrer-Policy: no-referrer` (the inbox URL may carry a token) and
//! `X-Frame-Options: DENY` (no framing, so no clickjacking of the mark-read buttons).

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;

/// The policy of HTML pages that do not set their own: same-origin scripts, styles, images and
/// connections, no plugins, no framing, no inline script.
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Middleware (on the whole `App`): adds the security headers described in the module docs.
///
/// # Errors
/// None of its own; the inner service's errors pass through.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // An inner middleware's error (401, 403, 429) never comes back through here as a response:
    // `ApiError::error_response` sets `nosniff` itself.
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        });
    if html {
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DEFAULT_CSP),
            );
        }
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(response)
}

/// CORS (the WHATWG Fetch standard) for `/api/v1/me`: the listed origins (`https://app.example`,
/// exactly as a browser sends `Origin`) may call it with `Authorization` and JSON bodies;
/// preflights are answered and cached 1 h. Credentials (cookies) are not allowed: the routes
/// take bearer tokens. The service's own origin (the `/inbox` page, whose POSTs carry `Origin`)
/// is always allowed. Empty `origins`: no CORS at all (browsers then refuse cross-origin calls).
pub fn me_cors(origins: &[String]) -> actix_web::middleware::Condition<Cors> {
    let allowed: Vec<String> = origins.to_vec();
    let cors = Cors::default()
        .allowed_origin_fn(move |origin, head| {
            let origin = origin.to_str().unwrap_or("");
            let own = head
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| {
                    origin
                        .strip_prefix("http://")
                        .or_else(|| origin.strip_prefix("https://"))
                        == Some(host)
                });
            own || allowed.iter().any(|a| a == origin)
        })
        .allowed_methods(["GET", "POST", "PUT", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
        ])
        .max_age(3600);
    actix_web::middleware::Condition::new(!origins.is_empty(), cors)
}
