//! The operator's routes: the admin API under `/api/v1/admin` (API key, like the rest of
//! `/api/v1`) — job runs, running a job now, statistics — and the dashboard page `/admin`
//! (an API key exchanged for a session cookie), with its script `/static/admin.js`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use clairon_application::commands::RunJob;
use clairon_application::ports::{Job, JobRun, JobRunQuery, JobStatus, JobTrigger};
use clairon_application::queries::{GetOperationsStats, ListDeliveries, OperationsStats};
use clairon_domain::{ApiScope, DeliveryStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use utoipa::{IntoParams, ToSchema};

use super::auth::ApiKeys;
use super::openapi::{IdPath, JobName, JobStatusName};
use super::problem::{ApiError, FieldError, Problem};
use super::rate_limit::{admit_credential, refuse_credential, Credential};
use super::responses::DeliveryResponse;
use super::routes::repository;
use super::Handlers;

/// The statistics window when `since` is not given: the last 24 h.
const DEFAULT_WINDOW: TimeDelta = TimeDelta::hours(24);
/// The dashboard's session cookie.
const SESSION_COOKIE: &str = "clairon_admin";
/// How long a dashboard session lasts (8 h), whatever happens meanwhile.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Header the dashboard's script sends with every POST: a cross-site form cannot set it, and a
/// cross-site `fetch` that does is refused by the browser's preflight.
const CSRF_HEADER: &str = "x-clairon-admin";

/// A run as the API shows it.
pub fn job_run_json(run: &JobRun) -> Value {
    json!({
        "id": run.id,
        "job": run.job.as_str(),
        "trigger": run.trigger.as_str(),
        "started_at": run.started_at.to_rfc3339(),
        "finished_at": run.finished_at.to_rfc3339(),
        "duration_ms": run.duration_ms,
        "status": run.status.as_str(),
        "stats": run.stats,
        "error": run.error,
    })
}

/// Statistics as the API shows them.
pub fn stats_json(stats: &OperationsStats) -> Value {
    let channels: Vec<Value> = stats
        .channels
        .iter()
        .map(|c| {
            json!({
                "channel": c.channel.as_str(),
                "total": c.total,
                "by_status": c.by_status,
                "success_rate": c.success_rate,
                "p50_latency_ms": c.p50_latency_ms,
                "p95_latency_ms": c.p95_latency_ms,
            })
        })
        .collect();
    let jobs: Vec<Value> = stats
        .jobs
        .iter()
        .map(|j| {
            json!({
                "job": j.job.as_str(),
                "runs": j.runs,
                "succeeded": j.succeeded,
                "success_rate": j.success_rate,
                "p50_duration_ms": j.p50_duration_ms,
                "p95_duration_ms": j.p95_duration_ms,
                "max_duration_ms": j.max_duration_ms,
            })
        })
        .collect();
    let depth: Vec<Value> = stats
        .queue
        .counts
        .iter()
        .map(|c| json!({ "channel": c.channel.as_str(), "status": c.status.as_str(), "count": c.count }))
        .collect();
    let oldest: serde_json::Map<String, Value> = stats
        .queue
        .oldest_due_age_secs
        .iter()
        .map(|(c, age)| (c.as_str().to_owned(), json!(age)))
        .collect();
    json!({
        "since": stats.since.to_rfc3339(),
        "until": stats.now.to_rfc3339(),
        "deliveries": {
            "total": stats.channels.iter().map(|c| c.total).sum::<u64>(),
            "by_channel": channels,
            "dead_letters": stats.dead_letters,
        },
        "jobs": jobs,
        "queue": { "depth": depth, "oldest_due_age_seconds": oldest },
    })
}

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
        (status = 200, description = "A page of job runs, newest first: `{items: [{id, job, trigger, started_at, finished_at, duration_ms, status, stats, error}], next_cursor}`.", body = Object),
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
    let items: Vec<Value> = page.items.iter().map(job_run_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": page.next_cursor })))
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
        (status = 200, description = "The recorded run, `status` `error` included when the job itself failed: `{id, job, trigger, started_at, finished_at, duration_ms, status, stats, error}`.", body = Object),
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
    Ok(HttpResponse::Ok().json(job_run_json(&run)))
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
        (status = 200, description = "`{since, until, deliveries: {total, by_channel: [{channel, total, by_status, success_rate, p50_latency_ms, p95_latency_ms}], dead_letters}, jobs: [{job, runs, succeeded, success_rate, p50_duration_ms, p95_duration_ms, max_duration_ms}], queue: {depth: [{channel, status, count}], oldest_due_age_seconds}}`.", body = Object),
        (status = 400, description = "`since` is not an RFC 3339 date-time in the past, named in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn stats(
    req: HttpRequest,
    handlers: web::Data<Handlers>,
) -> Result<HttpResponse, ApiError> {
    let params: StatsParams = parse_query(&req)?;
    let now = Utc::now();
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
    Ok(HttpResponse::Ok().json(stats_json(&stats)))
}

/// Dashboard sessions, held in this process: a random id → when it was opened. A session
/// opened on one process is unknown to the others (log in again, or keep a client on one
/// process).
#[derive(Clone, Default)]
pub struct AdminSessions(Arc<Mutex<HashMap<String, Instant>>>);

impl std::fmt::Debug for AdminSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSessions").finish_non_exhaustive()
    }
}

impl AdminSessions {
    /// Opens a session; returns its id (32 random bytes, hex).
    pub fn open(&self) -> String {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, opened| opened.elapsed() < SESSION_TTL);
        sessions.insert(id.clone(), Instant::now());
        id
    }

    /// Whether `id` names a session opened less than [`SESSION_TTL`] ago.
    pub fn is_valid(&self, id: &str) -> bool {
        let sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(id)
            .is_some_and(|opened| opened.elapsed() < SESSION_TTL)
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// Whether the request may see the dashboard: a live session cookie, or an admin API key in
/// `Authorization: Bearer` (an unknown one counts as a failure of the client address).
///
/// # Errors
/// 429 while the client address is over its failure limit; 503 when the key directory cannot
/// be asked.
async fn is_admin(req: &HttpRequest) -> Result<bool, ApiError> {
    let session = session_id(req)
        .zip(req.app_data::<web::Data<AdminSessions>>())
        .is_some_and(|(id, sessions)| sessions.is_valid(&id));
    if session {
        return Ok(true);
    }
    match super::auth::bearer(req) {
        Some(key) => accepts_key(req, key, Credential::ApiKey).await,
        None => Ok(false),
    }
}

/// The session id in the request's `Cookie` header (RFC 6265 §5.4: `name=value` pairs
/// separated by `; `).
fn session_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Whether `key` may open the dashboard: an API key with the `admin` scope, whichever kind —
/// from `CLAIRON_API_KEYS`, generated at first start, or made with `clairon api-keys create
/// --scope admin`. A `send` or `read` key is refused (it is a known key, not a guess, so it is
/// not counted); an unknown or revoked one is counted against the client address as
/// `credential`.
///
/// # Errors
/// 429 while (or once) the client address is over its failure limit; 503 when the key
/// directory cannot be asked.
async fn accepts_key(
    req: &HttpRequest,
    key: &str,
    credential: Credential,
) -> Result<bool, ApiError> {
    let Some(keys) = req.app_data::<web::Data<ApiKeys>>() else {
        return Ok(false);
    };
    // A key that proved itself before is not a guess: a blocked address's operators still sign in.
    if !keys.proven(key) {
        admit_credential(req, credential)?;
    }
    match keys.authenticate(key).await? {
        Some(principal) => Ok(principal.scope == ApiScope::Admin),
        None => match refuse_credential(req, credential) {
            ApiError::Unauthorized => Ok(false),
            limited => Err(limited),
        },
    }
}

/// Guards the dashboard's own POST routes: a session (or key), and the [`CSRF_HEADER`].
///
/// # Errors
/// 401 problem without them.
pub async fn require_admin_session(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if !is_admin(req.request()).await? || !req.headers().contains_key(CSRF_HEADER) {
        return Err(ApiError::Unauthorized.into());
    }
    next.call(req).await
}

const ADMIN_PAGE: &str = include_str!("../../assets/admin.html.tera");
const ADMIN_JS: &str = include_str!("../../assets/admin.js");

/// The page's words, per language.
fn strings(lang: &str) -> Value {
    if lang == "fr" {
        json!({
            "title": "Clairon — tableau de bord",
            "login_title": "Connexion opérateur",
            "api_key": "Clé d'API",
            "login": "Se connecter",
            "logout": "Se déconnecter",
            "bad_key": "Clé refusée.",
            "window": "Dernières 24 h",
            "deliveries": "Envois",
            "channel": "Canal",
            "total": "Total",
            "sent": "Envoyés",
            "success_rate": "Taux de succès",
            "p50": "Latence p50",
            "p95": "Latence p95",
            "dead_letters": "Envois morts",
            "no_dead": "Aucun envoi mort.",
            "notification": "Notification",
            "recipient": "Destinataire",
            "error": "Erreur",
            "retry": "Réessayer",
            "retried": "Remis en file",
            "retry_failed": "Échec",
            "jobs": "Tâches de fond",
            "job": "Tâche",
            "status": "Statut",
            "started": "Début",
            "duration": "Durée",
            "never": "jamais lancée",
            "queue": "File d'attente",
            "count": "Nombre",
            "oldest": "Plus ancien dû",
            "all_good": "Tout va bien",
            "attention": "À surveiller",
        })
    } else {
        json!({
            "title": "Clairon — dashboard",
            "login_title": "Operator sign-in",
            "api_key": "API key",
            "login": "Sign in",
            "logout": "Sign out",
            "bad_key": "Key refused.",
            "window": "Last 24 h",
            "deliveries": "Deliveries",
            "channel": "Channel",
            "total": "Total",
            "sent": "Sent",
            "success_rate": "Success rate",
            "p50": "p50 latency",
            "p95": "p95 latency",
            "dead_letters": "Dead letters",
            "no_dead": "No dead deliveries.",
            "notification": "Notification",
            "recipient": "Recipient",
            "error": "Error",
            "retry": "Retry",
            "retried": "Requeued",
            "retry_failed": "Failed",
            "jobs": "Background jobs",
            "job": "Job",
            "status": "Status",
            "started": "Started",
            "duration": "Duration",
            "never": "never run",
            "queue": "Queue",
            "count": "Count",
            "oldest": "Oldest due",
            "all_good": "All good",
            "attention": "Needs attention",
        })
    }
}

fn page(context: &tera::Context) -> Result<HttpResponse, ApiError> {
    let html = tera::Tera::one_off(ADMIN_PAGE, context, true)
        .map_err(|e| ApiError::Internal(format!("rendering the admin page: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ))
        .body(html))
}

fn base_context(req: &HttpRequest) -> (tera::Context, &'static str) {
    let lang = super::live::page_language(req);
    let mut context = tera::Context::new();
    context.insert("lang", lang);
    context.insert("s", &strings(lang));
    (context, lang)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

fn millis(ms: Option<u64>) -> String {
    ms.map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"))
}

/// `GET /admin` (`?lang=fr|en`, else `Accept-Language`): the dashboard with a session or an
/// API key; the sign-in form otherwise.
///
/// # Errors
/// 503 when the database is unavailable; 500 when the page cannot be rendered.
#[utoipa::path(
    get, path = "/admin", tag = "admin",
    params(("lang" = Option<String>, Query, description = "`fr` or `en` (default: `Accept-Language`).")),
    responses(
        (status = 200, description = "The dashboard (a session or an admin key), else its sign-in form; French or English.", body = String, content_type = "text/html"),
        (status = 429, description = "Too many refused keys from this client address (an unknown key in `Authorization` counts): refused until `Retry-After` (seconds).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a key is looked at again."))),
        (status = 503, description = "The database does not answer.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn dashboard(
    req: HttpRequest,
    handlers: web::Data<Handlers>,
) -> Result<HttpResponse, ApiError> {
    let (mut context, _) = base_context(&req);
    if !is_admin(&req).await? {
        context.insert("login", &true);
        context.insert("refused", &false);
        return page(&context);
    }
    context.insert("login", &false);
    let stats = handlers
        .operations_stats
        .execute(GetOperationsStats {
            since: Utc::now() - DEFAULT_WINDOW,
        })
        .await
        .map_err(repository)?;
    let channels: Vec<Value> = stats
        .channels
        .iter()
        .map(|c| {
            json!({
                "channel": c.channel.as_str(),
                "total": c.total,
                "sent": c.by_status.get(DeliveryStatus::Sent.as_str()).copied().unwrap_or(0),
                "success_rate": percent(c.success_rate),
                "p50": millis(c.p50_latency_ms),
                "p95": millis(c.p95_latency_ms),
            })
        })
        .collect();
    let dead = handlers
        .list_deliveries
        .execute(ListDeliveries {
            status: Some(DeliveryStatus::Dead),
            channel: None,
            limit: Some(50),
            cursor: None,
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let dead: Vec<Value> = dead
        .items
        .iter()
        .map(|d| {
            json!({
                "id": d.delivery.id,
                "channel": d.delivery.channel,
                "notification_id": d.notification_id,
                "recipient_id": d.recipient_id,
                "error": d.delivery.last_error,
            })
        })
        .collect();
    let mut jobs = Vec::new();
    for job in Job::ALL {
        let runs = handlers
            .list_job_runs
            .execute(&JobRunQuery {
                job: Some(job),
                status: None,
                limit: 5,
                cursor: None,
            })
            .await
            .map_err(repository)?;
        let runs: Vec<Value> = runs.items.iter().map(job_run_json).collect();
        jobs.push(json!({ "job": job.as_str(), "runs": runs }));
    }
    let queue: Vec<Value> = stats
        .queue
        .counts
        .iter()
        .map(|c| json!({ "channel": c.channel.as_str(), "status": c.status.as_str(), "count": c.count }))
        .collect();
    let oldest: Vec<Value> = stats
        .queue
        .oldest_due_age_secs
        .iter()
        .map(|(c, age)| json!({ "channel": c.as_str(), "age": age }))
        .collect();
    let failing_jobs = stats.jobs.iter().any(|j| j.succeeded < j.runs);
    context.insert("all_good", &(stats.dead_letters == 0 && !failing_jobs));
    context.insert("channels", &channels);
    context.insert("dead_letters", &stats.dead_letters);
    context.insert("dead", &dead);
    context.insert("jobs", &jobs);
    context.insert("queue", &queue);
    context.insert("oldest", &oldest);
    page(&context)
}

/// The sign-in form's body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginForm {
    /// An admin API key.
    api_key: String,
}

/// `POST /admin/login` (form `api_key=…`): an admin key opens a session — cookie
/// `clairon_admin`, `HttpOnly`, `SameSite=Strict`, `Path=/admin`, 8 h, `Secure` over HTTPS —
/// and redirects (303) to `/admin`; a refused one shows the form again with `401`. Refused
/// unknown keys count against the client address's failure bucket.
///
/// # Errors
/// 429 problem+json (with `Retry-After`) while the client address is over its failure limit;
/// 503 when the key directory cannot be asked; 500 when the page cannot be rendered.
#[utoipa::path(
    post, path = "/admin/login", tag = "admin",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: to `/admin`, with the session cookie `clairon_admin` (`HttpOnly`, `SameSite=Strict`, 8 h).",
            headers(("Location" = String, description = "`/admin?lang=…`"), ("Set-Cookie" = String, description = "The session."))),
        (status = 401, description = "The key is refused (unknown, revoked, or not an admin key): the sign-in form again, as a page.", body = String, content_type = "text/html"),
        (status = 429, description = "Too many refused keys from this client address: every sign-in is refused until `Retry-After` (seconds).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a sign-in is tried again."))),
        (status = 503, description = "The key directory (the database) does not answer.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    sessions: web::Data<AdminSessions>,
) -> Result<HttpResponse, ApiError> {
    if !accepts_key(&req, form.api_key.trim(), Credential::AdminLogin).await? {
        let (mut context, _) = base_context(&req);
        context.insert("login", &true);
        context.insert("refused", &true);
        let mut response = page(&context)?;
        *response.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
        return Ok(response);
    }
    let secure = if req.connection_info().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        sessions.open(),
        SESSION_TTL.as_secs()
    );
    let target = match super::live::page_language(&req) {
        "fr" => "/admin?lang=fr",
        _ => "/admin?lang=en",
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .insert_header((header::SET_COOKIE, cookie))
        .finish())
}

/// `POST /admin/logout`: ends the session and clears the cookie.
#[utoipa::path(
    post, path = "/admin/logout", tag = "admin",
    responses(
        (status = 303, description = "Signed out: to `/admin`, the cookie cleared.",
            headers(("Location" = String, description = "`/admin`"))),
    ),
)]
pub async fn logout(req: HttpRequest, sessions: web::Data<AdminSessions>) -> HttpResponse {
    if let Some(id) = session_id(&req) {
        sessions.close(&id);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin"))
        .insert_header((
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict"),
        ))
        .finish()
}

/// `GET /static/admin.js`: the dashboard's script (embedded in the binary).
#[utoipa::path(
    get, path = "/static/admin.js", tag = "admin",
    responses((status = 200, description = "The dashboard's script.", body = String, content_type = "text/javascript")),
)]
pub async fn admin_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(ADMIN_JS)
}

/// The `X-Clairon-Admin` header the dashboard's POST routes require (any value): a cross-site
/// form cannot set it.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CsrfHeader {
    /// Any value, e.g. `1`.
    #[param(rename = "X-Clairon-Admin")]
    pub x_clairon_admin: String,
}

/// `POST /admin/deliveries/{id}/retry`: the dashboard's retry button, the same as
/// `POST /api/v1/deliveries/{id}/retry` behind the dashboard's session
/// ([`require_admin_session`]).
///
/// # Errors
/// As `POST /api/v1/deliveries/{id}/retry`: 404, 409, 503.
#[utoipa::path(
    post, path = "/admin/deliveries/{id}/retry", tag = "admin",
    params(IdPath, CsrfHeader),
    responses(
        (status = 200, description = "Back in the queue, due now, with a fresh series of tries.", body = DeliveryResponse),
        (status = 401, description = "No live session (or admin key), or no `X-Clairon-Admin` header.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is neither `dead` nor `failed`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_session" = [])),
)]
pub async fn retry_delivery(
    handlers: web::Data<Handlers>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::deliveries::retry(handlers, path).await
}
