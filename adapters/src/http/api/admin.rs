//! The operator's JSON API under `/api/v1/admin` (admin scope): job runs, Clairon's and the
//! reported ones (`GET /job-runs`), running a job by hand with its chain (`POST /jobs/{job}/run`),
//! per-job figures (`GET /job-stats`) and statistics (`GET /stats`). The dashboard's pages are
//! `http::pages::dashboard`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use clairon_application::commands::{RunJob, RunJobError};
use clairon_application::ports::{JobRunQuery, JobSource, JobStatus, JobTrigger};
use clairon_application::queries::GetOperationsStats;
use clairon_domain::jobs::JobName as ValidJobName;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::problem::{repository, ApiError, FieldError, Problem};
use crate::http::schema::params::{JobName, JobSourceName, JobStatusName};
use crate::http::schema::responses::{
    JobRunChainResponse, JobRunList, JobRunResponse, JobStatsList, JobStatsResponse,
    OperationsStatsResponse,
};
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
    source: Option<String>,
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
    /// Only runs in this status.
    #[param(value_type = Option<JobStatusName>)]
    pub status: Option<String>,
    /// Only Clairon's runs (`internal`) or only the reported ones (`external`).
    #[param(value_type = Option<JobSourceName>)]
    pub source: Option<String>,
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

/// `GET /api/v1/admin/job-runs?job=&status=&source=internal|external&limit=1..100&cursor=` →
/// `{"items":[run…], "next_cursor"}`, newest first (default 20 a page), Clairon's runs and the
/// reported ones. Every invalid parameter is named in one 400 problem.
///
/// # Errors
/// 400 for invalid parameters; 503 when the database is unavailable.
#[utoipa::path(
    get, path = "/api/v1/admin/job-runs", tag = "admin",
    params(JobRunFilter),
    responses(
        (status = 200, description = "A page of job runs, newest first.", body = JobRunList),
        (status = 400, description = "Every bad parameter (`job`, `status`, `source`, `limit`, `cursor`), named in `errors`.", body = Problem, content_type = "application/problem+json"),
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
    let job = params
        .job
        .as_deref()
        .and_then(|raw| match ValidJobName::parse(raw) {
            Ok(job) => Some(job.to_string()),
            Err(e) => {
                bad("job", e.message);
                None
            }
        });
    let status = params.status.as_deref().and_then(|raw| {
        let status = JobStatus::parse(raw);
        if status.is_none() {
            bad(
                "status",
                "must be running, success, warning, error or skipped".into(),
            );
        }
        status
    });
    let source = params.source.as_deref().and_then(|raw| {
        let source = JobSource::parse(raw);
        if source.is_none() {
            bad("source", "must be internal or external".into());
        }
        source
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
            source,
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

/// `POST /api/v1/admin/jobs/{job}/run`: runs the job now (trigger `api`), then the jobs chained
/// after it, and answers `200` with the job's recorded run — status `error` included, when the
/// job itself failed — and the chained runs in `chained`.
///
/// # Errors
/// 404 for an unknown job; 503 when the run cannot be recorded.
#[utoipa::path(
    post, path = "/api/v1/admin/jobs/{job}/run", tag = "admin",
    params(("job" = JobName, Path, description = "The job to run now (trigger `api`): a built-in job or one of `CLAIRON_JOBS_FILE`.")),
    responses(
        (status = 200, description = "The recorded run, `status` `error` included when the job itself failed, with the runs of the jobs chained after it.", body = JobRunChainResponse),
        (status = 404, description = "No such job.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn run_job(
    handlers: web::Data<Handlers>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let unknown = || {
        ApiError::NotFound(format!(
            "no job {:?}; jobs are {}",
            path.as_str(),
            handlers.run_job.catalog().names()
        ))
    };
    let job = ValidJobName::parse(&path).map_err(|_| unknown())?;
    let runs = handlers
        .run_job
        .execute(RunJob::now(job, JobTrigger::Api))
        .await
        .map_err(|e| match e {
            RunJobError::UnknownJob { .. } => unknown(),
            RunJobError::Repository(e) => ApiError::Unavailable(e.to_string()),
        })?;
    let mut runs = runs.iter().map(JobRunResponse::from);
    let run = runs
        .next()
        .ok_or_else(|| ApiError::Internal("the run was not recorded".into()))?;
    Ok(HttpResponse::Ok().json(JobRunChainResponse {
        run,
        chained: runs.collect(),
    }))
}

fn since_param(raw: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    match raw {
        None => Ok(now - DEFAULT_WINDOW),
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
            }),
    }
}

/// `GET /api/v1/admin/job-stats?since=<RFC 3339>` (default: 24 h ago): per job (built-in, of
/// the jobs file, reported), the runs started since then — how many ended and how, success
/// rate, p50/p95/mean/max duration in ms, and the newest run with its status.
///
/// # Errors
/// 400 naming `since` when it is not an RFC 3339 date-time in the past; 503 when the database
/// is unavailable.
#[utoipa::path(
    get, path = "/api/v1/admin/job-stats", tag = "admin",
    params(StatsFilter),
    responses(
        (status = 200, description = "Per job: runs, success rate, p50/p95/mean duration (ms), last run and its status.", body = JobStatsList),
        (status = 400, description = "`since` is not an RFC 3339 date-time in the past, named in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn job_stats(
    req: HttpRequest,
    handlers: web::Data<Handlers>,
) -> Result<HttpResponse, ApiError> {
    let params: StatsParams = parse_query(&req)?;
    let since = since_param(params.since.as_deref(), handlers.clock.now())?;
    let jobs = handlers
        .operations_stats
        .job_stats(since)
        .await
        .map_err(repository)?;
    Ok(HttpResponse::Ok().json(JobStatsList {
        since: since.to_rfc3339(),
        jobs: jobs.iter().map(JobStatsResponse::from).collect(),
    }))
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
    let since = since_param(params.since.as_deref(), handlers.clock.now())?;
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
            .service(web::resource("/job-stats").get(job_stats))
            .service(web::resource("/stats").get(stats))
            .default_service(web::to(crate::http::problem::not_found)),
    );
}
