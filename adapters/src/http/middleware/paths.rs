//! Path parameters that can never name anything: `.` and `..`.
//!
//! They are dot-segments (RFC 3986 §5.2.4): a conforming client removes them from a URL before
//! sending it, so a request that still carries one was built by hand or by a buggy client, and
//! what it names is not what it seems (`/recipients/..` is `/api/v1` to a browser). Every id of
//! the API refuses them (`RecipientId::parse`; the other ids allow no `.` at all); this
//! middleware answers them in paths with a 422 naming the parameter, on every route that has
//! one, before any lookup.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::Error;
use clairon_domain::recipient::{is_dot_segment, DOT_SEGMENT_REFUSED};

use crate::http::problem::ApiError;

/// Middleware on a route (or resource) with path parameters: a parameter that is `.` or `..`
/// is a 422 problem naming it (`id`, `planning_id`, `job`).
///
/// # Errors
/// [`ApiError::Unprocessable`] naming the first such parameter.
pub async fn refuse_dot_segments(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some((name, _)) = req
        .match_info()
        .iter()
        .find(|(_, value)| is_dot_segment(value))
    {
        return Err(ApiError::invalid(name, DOT_SEGMENT_REFUSED).into());
    }
    next.call(req).await
}
