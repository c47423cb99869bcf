//! The operator's JSON API under `/api/v1/admin` (admin scope): background job runs
//! (`GET /job-runs`, `POST /jobs/{job}/run`) and statistics (`GET /stats`). The dashboard's
//! pages are `http::pages::dashboard`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use clairon_application::commands::RunJob;
use clairon_application::ports::{Job, JobRunQuery, JobStatus, JobTrigger};
use clairon_application::queries::GetOperationsStats;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::problem::{repository, ApiError, FieldError, Problem};
use crate::http::schema::params::{JobName, JobStatusName};
use crate::http::schema::responses::{JobRunList, JobRunResponse, OperationsStatsResponse};
use crate::http::state::Handlers;

/// The statistics window when `since` is not given: the last 24 h.
pub const DEFAULT_WINDOW: TimeDelta = TimeDelta::hours(24);

fn parse_query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))
}

/// Query string of `GET /api/v1/admin/job-runs`.
#[derive(Debug, Deserialize)]
struct JobRunParams {
    job: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The query parameters of `GET /api/v1/admin/job-runs`, as the document shows them (they are
/// read as text and checked one by one, so that every invalid one is named).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobRunFilter {
    /// Only this job's runs.
    #[param(value_type = Option<JobName>)]
    pub job: Option<String>,
    /// Only runs that ended so.
    #[param(value_type = Option<JobStatusName>)]
    pub status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<String>,
}

/// The query parameters of `GET /api/v1/admin/stats`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsFilter {
    /// Start of the window, an RFC 3339 date-time in the past (default: 24 h ago).
    #[param(format = DateTime)]
    pub since: Option<String>,
}

fn job_names() -> String {
    Job::ALL.map(Job::as_str).join(", ")
}

/// `GET /api/v1/admin/job-runs?job=&status=success|error&limit=1..100&cursor=` →
/// `{"items":[run…], "next_cursor"}`, newest first (default 20 a page). Every invalid parameter
/// is named in one 400 problem.
///
/// # Errors
/// 400 for invalid parameters; 503 when the database is unavailable.
#[utoipa::path(
    get, path = "/api/v1/admin/job-runs", tag = "admin",
    params(JobRunFilter),
    responses(
        (status = 200, description = "A page of job runs, newest first.", body = JobRunList),
        (status = 400, description = "Every bad parameter (`job`, `status`, `limit`, `cursor`), named in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn list_job_runs(
    req: HttpRequest,
    handlers: web::Data<Handlers>,
) -> Result<HttpResponse, ApiError> {
    let params: JobRunParams = parse_query(&req)?;
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        });
    };
    let job = params.job.as_deref().and_then(|raw| {
        let job = Job::parse(raw);
        if job.is_none() {
            bad("job", format!("must be one of {}", job_names()));
        }
        job
    });
    let status = params.status.as_deref().and_then(|raw| {
        let status = JobStatus::parse(raw);
        if status.is_none() {
            bad("status", "must be success or error".into());
        }
        status
    });
    let limit = match params.limit.as_deref() {
        None => 20,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n @ 1..=100) => n,
            _ => {
                bad("limit", "must be an integer from 1 to 100".into());
                20
            }
        },
    };
    let cursor = params.cursor.filter(|c| {
        // Run ids are UUIDs: anything else was not given out by this service.
        let ok = uuid::Uuid::parse_str(c).is_ok();
        if !ok {
            bad("cursor", "is not a cursor this service gave out".into());
        }
        ok
    });
    if !errors.is_empty() {
        return Err(ApiError::InvalidParameters(errors));
    }
    let page = handlers
        .list_job_runs
        .execute(&JobRunQuery {
            job,
            status,
            limit,
            cursor,
        })
        .await
        .map_err(repository)?;
    Ok(HttpResponse::Ok().json(JobRunList {
        items: page.items.iter().map(JobRunResponse::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `POST /api/v1/admin/jobs/{job}/run`: runs the job now (trigger `api`) and answers `200`
/// with the recorded run — status `error` included, when the job itself failed.
///
/// # Errors
/// 404 for an unknown job; 503 when the run cannot be recorded.
#[utoipa::path(
    post, path = "/api/v1/admin/jobs/{job}/run", tag = "admin",
    params(("job" = JobName, Path, description = "The job to run now (trigger `api`).")),
    responses(
        (status = 200, description = "The recorded run, `status` `error` included when the job itself failed.", body = JobRunResponse),
        (status = 404, description = "No such job.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn run_job(
    handlers: web::Data<Handlers>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let job = Job::parse(&path).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no job {:?}; jobs are {}",
            path.as_str(),
            job_names()
        ))
    })?;
    let run = handlers
        .run_job
        .execute(RunJob {
            job,
            trigger: JobTrigger::Api,
        })
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(JobRunResponse::from(&run)))
}

/// Query string of `GET /api/v1/admin/stats`.
#[derive(Debug, Deserialize)]
struct StatsParams {
    since: Option<String>,
}

/// `GET /api/v1/admin/stats?since=<RFC 3339>` (default: 24 h ago): deliveries created since
/// then by channel and status with success rate and p50/p95 latency from creation to sent
/// (ms), dead letters, job runs' success rate and durations per job, and the queue now.
///
/// # Errors
/// 400 naming `since` when it is not an RFC 3339 date-time in the past; 503 when the database
/// is unavailable.
#[utoipa::path(
    get, path = "/api/v1/admin/stats", tag = "admin",
    params(StatsFilter),
    responses(
        (status = 200, description = "Deliveries created in the window by channel (status counts, success rate, p50/p95 latency from creation to sent), dead letters, job runs per job, and the queue now.", body = OperationsStatsResponse),
        (status = 400, description = "`since` is not an RFC 3339 date-time in the past, named in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn stats(
    req: HttpRequest,
    handlers: web::Data<Handlers>,
) -> Result<HttpResponse, ApiError> {
    let params: StatsParams = parse_query(&req)?;
    let now = handlers.clock.now();
    let since = match params.since.as_deref() {
        None => now - DEFAULT_WINDOW,
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .filter(|t| *t <= now)
            .ok_or_else(|| {
                ApiError::InvalidParameters(vec![FieldError {
                    field: "since".into(),
                    message: "must be an RFC 3339 date-time in the past (2027-03-01T00:00:00Z)"
                        .into(),
                }])
            })?,
    };
    let stats = handlers
        .operations_stats
        .execute(GetOperationsStats { since })
        .await
        .map_err(repository)?;
    Ok(HttpResponse::Ok().json(OperationsStatsResponse::from(&stats)))
}

/// Registers `/admin/*` in the `/api/v1` scope: operators only (an `admin` key).
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::http::middleware::{auth, paths};
    use actix_web::middleware::from_fn;
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(auth::require_admin))
            .service(web::resource("/job-runs").get(list_job_runs))
            .service(
                web::resource("/jobs/{job}/run").route(
                    web::post()
                        .to(run_job)
                        .wrap(from_fn(paths::refuse_dot_segments)),
                ),
            )
            .service(web::resource("/stats").get(stats))
            .default_service(web::to(crate::http::problem::not_found)),
    );
}
