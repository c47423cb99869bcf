//! What operators and orchestrators probe: `/metrics` (Prometheus text format),
//! `/health/live` (the process answers), `/health/ready` (and its alias `/health`: the database
//! answers, the schema is current, the dispatcher runs).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use clairon_application::ports::DatabaseProblem;

use super::credentials::api_keys::{bearer, ApiKeys};
use super::middleware::observability::Observability;
use super::problem::{repository, ApiError, Problem};
use super::schema::responses::{Liveness, NotReady, Readiness, ReadinessChecks};
use super::state::Handlers;

/// The `Content-Type` of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: every metric, with the queue gauges read from the database now.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Every metric in the Prometheus text exposition format 0.0.4 (see docs/operations.md for the list).", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "`CLAIRON_METRICS_TOKEN` is set and `Authorization: Bearer <it>` is missing or wrong.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database does not answer (the queue gauges are read from it).", body = Problem, content_type = "application/problem+json"),
    ),
)]
///
/// # Errors
/// 401 when a metrics token is configured and not presented; 503 when the database does not
/// answer.
pub async fn metrics(
    req: HttpRequest,
    observability: web::Data<Observability>,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = &observability.metrics_token {
        let presented = bearer(&req).unwrap_or_default();
        // Compared by SHA-256 so the time taken says nothing about the token.
        if ApiKeys::hash_hex(presented) != ApiKeys::hash_hex(token) {
            return Err(ApiError::Unauthorized);
        }
    }
    let queue = observability
        .stats
        .queue_depth(observability.clock.now())
        .await
        .map_err(repository)?;
    Ok(HttpResponse::Ok()
        .content_type(PROMETHEUS_TEXT)
        .body(observability.metrics.render(&queue)))
}

/// `GET /health/live`: 200 as long as the process serves HTTP; no dependency is checked, so an
/// orchestrator restarts the process only when it is truly stuck.
#[utoipa::path(
    get, path = "/health/live", tag = "operations",
    responses(
        (status = 200, description = "The process serves HTTP; no dependency is checked.", body = Liveness),
    ),
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /health/ready` and `GET /health`: 200 `{"status":"ok","database":"ok",
/// "migrations":"ok","dispatcher":"running","dispatcher_restarts":0,"version"}` when this process
/// can do its work — `status` and `dispatcher` say `degraded` (still 200: deliveries go on) once
/// a dispatcher worker had to be restarted after a panic; else 503 `application/problem+json`
/// whose `detail` and `not_ready` name what is not ready (`database`, `migrations`,
/// `dispatcher`), with the same fields as `checks`. `database` is `unavailable` when the database
/// does not answer, `read-only` or `write failed` when it answers but its writes fail (the probe
/// writes one row; a write of the last 30 s that failed for want of storage counts too). Causes
/// are logged, never shown.
#[utoipa::path(
    get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready: `status` `ok`, or `degraded` after a dispatcher worker was restarted.", body = Readiness),
        (status = 503, description = "Not ready: a problem (`type` `…/not-ready`) whose `detail` and `not_ready` (a list of `database`, `migrations`, `dispatcher`) name what is not ready, and `checks` the state of each (`database`: `unavailable`, `read-only` or `write failed`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn ready(handlers: web::Data<Handlers>) -> HttpResponse {
    let probe = &handlers.health;
    let database = probe.database().await;
    let answers = !matches!(database, Err(DatabaseProblem::Unavailable(_)));
    let migrations = if answers {
        probe.migrations().await
    } else {
        Err("database unavailable".to_owned())
    };
    let dispatcher = probe.dispatcher();
    let mut not_ready = Vec::new();
    if let Err(problem) = &database {
        tracing::error!(cause = %problem.cause(), state = problem.as_str(), "readiness: database not ready");
        not_ready.push("database");
    }
    if let (true, Err(cause)) = (answers, &migrations) {
        tracing::error!(cause = %cause, "readiness: migrations not applied");
        not_ready.push("migrations");
    }
    if !dispatcher.running {
        not_ready.push("dispatcher");
    }
    let degraded = dispatcher.restarts > 0;
    let checks = ReadinessChecks {
        database: database.as_ref().map_or_else(|p| p.as_str(), |()| "ok"),
        migrations: match (answers, &migrations) {
            (true, Ok(())) => "ok",
            (true, Err(_)) => "pending",
            _ => "unknown",
        },
        dispatcher: match (dispatcher.running, degraded) {
            (false, _) => "stopped",
            (true, true) => "degraded",
            (true, false) => "running",
        },
        dispatcher_restarts: dispatcher.restarts,
        version: env!("CARGO_PKG_VERSION"),
    };
    if not_ready.is_empty() {
        return HttpResponse::Ok().json(Readiness {
            status: if degraded { "degraded" } else { "ok" },
            checks,
        });
    }
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .content_type("application/problem+json")
        .json(NotReady {
            problem_type: "https://clairon.dev/problems/not-ready",
            title: "Not ready",
            status: 503,
            detail: format!("not ready: {}", not_ready.join(", ")),
            not_ready,
            checks,
        })
}

/// `GET /health`: the same as [`ready`], kept for existing probes.
#[utoipa::path(
    get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "Ready; the same body as `GET /health/ready`.", body = Readiness),
        (status = 503, description = "Not ready: the same problem as `GET /health/ready`, naming what is not ready in `not_ready`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn health(handlers: web::Data<Handlers>) -> HttpResponse {
    ready(handlers).await
}

/// Registers `/health`, `/health/live`, `/health/ready` and `/metrics`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").get(health))
        .service(web::resource("/health/live").get(live))
        .service(web::resource("/health/ready").get(ready))
        .service(web::resource("/metrics").get(metrics));
}
