//! External job runs (issue 13, seed 003's `sync_logs`): an outside system reports a run of one
//! of its jobs, `POST /api/v1/job-runs` (scope `send`), and ends a `running` one,
//! `PATCH /api/v1/job-runs/{id}`. Both kinds of run are listed by `GET /api/v1/admin/job-runs`
//! (`http::api::admin`).

use actix_web::{web, HttpResponse};
use clairon_application::commands::{FinishJobRunError, ReportJobRunError};

use crate::http::extract::JsonBody;
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::schema::params::IdPath;
use crate::http::schema::requests::{JobRunBody, JobRunEndBody};
use crate::http::schema::responses::JobRunResponse;
use crate::http::state::Handlers;

/// `POST /api/v1/job-runs` → `201` with the recorded run (source `external`); a run reported
/// `error` emits `job.failed`.
///
/// # Errors
/// 422 naming each bad field; 503 when the database is unavailable.
#[utoipa::path(
    post, path = "/api/v1/job-runs", tag = "jobs",
    request_body = JobRunBody,
    responses(
        (status = 201, description = "The recorded run; its duration is computed when it ended.", body = JobRunResponse),
        (status = 422, description = "Every bad field (`job`, `task_type`, `status`, `triggered_by`, `message`, `stats`, `error_details`, `triggered_by_user`, `started_at`, `finished_at`), named in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn report(
    handlers: web::Data<Handlers>,
    body: JsonBody<JobRunBody>,
) -> Result<HttpResponse, ApiError> {
    let report = body.0.into_report()?;
    let run = handlers
        .report_job_run
        .execute(report)
        .await
        .map_err(|e| match e {
            ReportJobRunError::FinishedBeforeStart => {
                ApiError::invalid("finished_at", "must not be before started_at")
            }
            ReportJobRunError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Created().json(JobRunResponse::from(&run)))
}

/// `PATCH /api/v1/job-runs/{id}`: ends a `running` external run (status, message, stats,
/// error_details, finished_at); the duration is `finished_at - started_at`. Ending it `error`
/// emits `job.failed`.
///
/// # Errors
/// 404 for an unknown run; 409 when it is not a `running` external run; 422 naming each bad
/// field; 503 when the database is unavailable.
#[utoipa::path(
    patch, path = "/api/v1/job-runs/{id}", tag = "jobs",
    params(IdPath),
    request_body = JobRunEndBody,
    responses(
        (status = 200, description = "The ended run.", body = JobRunResponse),
        (status = 404, description = "No such run.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not a `running` external run (it ended already, or it is Clairon's own).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every bad field (`status`, `message`, `stats`, `error_details`, `finished_at`), named in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn finish(
    handlers: web::Data<Handlers>,
    path: web::Path<String>,
    body: JsonBody<JobRunEndBody>,
) -> Result<HttpResponse, ApiError> {
    let command = body.0.into_command(path.into_inner())?;
    let run = handlers
        .finish_job_run
        .execute(command)
        .await
        .map_err(|e| match e {
            FinishJobRunError::NotFound(id) => ApiError::NotFound(format!("no job run {id:?}")),
            e @ FinishJobRunError::NotRunning { .. } => ApiError::Conflict(e.to_string()),
            FinishJobRunError::FinishedBeforeStart(start) => ApiError::invalid(
                "finished_at",
                format!(
                    "must not be before the run's started_at ({})",
                    start.to_rfc3339()
                ),
            ),
            FinishJobRunError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(JobRunResponse::from(&run)))
}

/// Registers `/job-runs` in the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::http::middleware::idempotency;
    cfg.service(web::resource("/job-runs").route(scoped!(
        post,
        require_send,
        report,
        idempotency::idempotent
    )))
    .service(web::resource("/job-runs/{id}").route(scoped!(patch, require_send, finish)));
}
