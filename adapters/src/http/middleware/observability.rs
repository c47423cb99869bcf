//! Request metrics: the middleware counting every HTTP request by route pattern, and the
//! [`Observability`] app data that `/metrics` (`http::probes`) reads too.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use clairon_application::ports::{Clock, OperationsStatsSource};

use crate::metrics::Metrics;

/// What `/metrics` and the request counter need, as app data.
#[derive(Clone)]
pub struct Observability {
    /// The registry.
    pub metrics: Arc<Metrics>,
    /// Reads the queue gauges at scrape time.
    pub stats: Arc<dyn OperationsStatsSource>,
    /// "Now", for the oldest due delivery's age.
    pub clock: Arc<dyn Clock>,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`
    /// (`CLAIRON_METRICS_TOKEN`); else it is open, like `/health`.
    pub metrics_token: Option<String>,
}

/// Counts every request in [`Metrics`] by method, route pattern and status, with its duration
/// until the response head. The route is the pattern the router matched
/// (`/api/v1/recipients/{id}`), or `unmatched`: never the raw path, which would make one
/// series per id. Does nothing when no [`Observability`] is in the app data.
///
/// # Errors
/// Never of its own; an inner error is counted with its status and passed on.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(observability) = req.app_data::<web::Data<Observability>>().cloned() else {
        return next.call(req).await;
    };
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let outcome = next.call(req).await;
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    observability.metrics.observe_request(
        &method,
        &route,
        status.as_u16(),
        started.elapsed().as_secs_f64(),
    );
    outcome
}
