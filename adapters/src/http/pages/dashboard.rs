//! `/admin`: the operator's dashboard (statistics, dead letters with a retry button, the health
//! logs: scheduled tasks and syncs tabs with the night's verdict, the queue due now and later,
//! the routing rules in force and, for `?notification=<id>`, why each channel was used or
//! skipped),
//! its sign-in form, `POST /admin/login|logout`, its retry route and its script. The JSON API
//! it mirrors is `http::api::admin`; its sessions are [`super::sessions`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Days, NaiveTime, TimeZone as _, Utc};
use clairon_application::ports::{JobRunQuery, JobSource, JobStatus};
use clairon_application::queries::{
    GetNotification, GetNotificationError, GetOperationsStats, JobStats, ListDeliveries,
};
use clairon_domain::{Channel, DeliveryStatus, NotificationId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::i18n::{page_language, strings, Page};
use super::sessions::{
    accepts_key, is_admin, session_id, AdminSessions, SESSION_COOKIE, SESSION_TTL,
};
use crate::http::api::admin::DEFAULT_WINDOW;
use crate::http::api::deliveries;
use crate::http::middleware::rate_limit::Credential;
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::schema::params::IdPath;
use crate::http::schema::responses::DeliveryResponse;
use crate::http::state::Handlers;

const ADMIN_PAGE: &str = include_str!("../../../assets/admin.html.tera");
const ADMIN_JS: &str = include_str!("../../../assets/admin.js");

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
    let lang = page_language(req);
    let mut context = tera::Context::new();
    context.insert("lang", lang);
    context.insert("s", &strings(lang, Page::Dashboard));
    (context, lang)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

fn millis(ms: Option<u64>) -> String {
    ms.map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"))
}

/// A channel's line of the deliveries table.
#[derive(Debug, Serialize)]
struct ChannelRow {
    channel: &'static str,
    total: u64,
    sent: u64,
    skipped: u64,
    success_rate: String,
    p50: String,
    p95: String,
}

/// A line of the dead letters table.
#[derive(Debug, Serialize)]
struct DeadRow<'a> {
    id: &'a str,
    channel: &'static str,
    notification_id: &'a str,
    recipient_id: &'a str,
    error: Option<&'a str>,
}

// ---- Health logs (issue 13, seed 003): the job tabs, the night's verdict, the queue split ----

/// How far back the job tabs' figures go: 7 days.
const HEALTH_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Runs shown per job in the tabs.
const RUNS_PER_JOB: u32 = 5;

/// One run of a job tab.
#[derive(Debug, Serialize)]
struct RunRow {
    status: &'static str,
    trigger: &'static str,
    started_at: String,
    duration: String,
    message: Option<String>,
    error: Option<String>,
    /// The stats, pretty-printed JSON, for the expandable block.
    stats: String,
    chained: bool,
}

/// A job of a tab: its figures over [`HEALTH_WINDOW`] and its last runs.
#[derive(Debug, Serialize)]
struct JobPanel {
    job: String,
    runs: u64,
    success_rate: String,
    mean: String,
    p95: String,
    last: Vec<RunRow>,
}

/// What did not go well since yesterday 18:00.
#[derive(Debug, Serialize)]
struct Failure {
    job: String,
    status: &'static str,
}

/// The health logs.
#[derive(Debug, Serialize)]
struct HealthLogs {
    /// The instant the verdict starts from: yesterday 18:00 in the dashboard's zone (RFC 3339).
    since: String,
    /// The zone's name.
    zone: &'static str,
    /// Runs that ended since then.
    ended: usize,
    /// The ones that did not go well (`error`, `skipped`), oldest first.
    failures: Vec<Failure>,
    /// The tabs: `scheduled` (Clairon's jobs, built-in and the jobs file's), then `syncs` (the
    /// jobs outside systems report).
    tabs: Vec<JobTab>,
}

/// One tab of the health logs.
#[derive(Debug, Serialize)]
struct JobTab {
    id: &'static str,
    jobs: Vec<JobPanel>,
}

/// Yesterday 18:00 in `zone` before `now` (DST resolved: a skipped 18:00 is taken after the gap;
/// a repeated one, at its first instant).
fn yesterday_evening(now: DateTime<Utc>, zone: chrono_tz::Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&zone).date_naive();
    let day = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    let evening = day.and_time(NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default());
    zone.from_local_datetime(&evening)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(evening + chrono::TimeDelta::hours(1)))
                .earliest()
        })
        .map_or(now - chrono::TimeDelta::hours(30), |t| {
            t.with_timezone(&Utc)
        })
}

fn run_row(run: &clairon_application::ports::JobRun) -> RunRow {
    RunRow {
        status: run.status.as_str(),
        trigger: run.trigger.as_str(),
        started_at: run.started_at.to_rfc3339(),
        duration: millis(run.duration_ms),
        message: run.message.clone(),
        error: run.error.clone(),
        stats: serde_json::to_string_pretty(&run.stats).unwrap_or_default(),
        chained: run.parent_run_id.is_some(),
    }
}

async fn job_panel(
    handlers: &Handlers,
    stats: &JobStats,
    source: JobSource,
) -> Result<JobPanel, ApiError> {
    let last = handlers
        .list_job_runs
        .execute(&JobRunQuery {
            job: Some(stats.job.clone()),
            status: None,
            source: Some(source),
            limit: RUNS_PER_JOB,
            cursor: None,
        })
        .await
        .map_err(repository)?;
    Ok(JobPanel {
        job: stats.job.clone(),
        runs: stats.runs,
        success_rate: percent(stats.success_rate),
        mean: millis(stats.mean_duration_ms),
        p95: millis(stats.p95_duration_ms),
        last: last.items.iter().map(run_row).collect(),
    })
}

/// The health logs: per job the figures of the last [`HEALTH_WINDOW`] and its last runs, split
/// into Clairon's jobs and the reported ones, and what went wrong since yesterday 18:00.
async fn health_logs(handlers: &Handlers) -> Result<HealthLogs, ApiError> {
    let now = handlers.clock.now();
    let zone = handlers.dashboard_zone;
    let since = yesterday_evening(now, zone.tz());
    let stats = handlers
        .operations_stats
        .job_stats(now - HEALTH_WINDOW)
        .await
        .map_err(repository)?;
    let catalog = handlers.run_job.catalog();
    let mut scheduled = Vec::new();
    let mut syncs = Vec::new();
    for job in &stats {
        if catalog.get(&job.job).is_some() {
            scheduled.push(job_panel(handlers, job, JobSource::Internal).await?);
        } else if job.last_run.is_some() {
            syncs.push(job_panel(handlers, job, JobSource::External).await?);
        }
    }
    let night = handlers
        .operations_stats
        .job_stats(since)
        .await
        .map_err(repository)?;
    let recent = handlers
        .list_job_runs
        .execute(&JobRunQuery {
            job: None,
            status: None,
            source: None,
            limit: 100,
            cursor: None,
        })
        .await
        .map_err(repository)?;
    let mut failures: Vec<Failure> = recent
        .items
        .iter()
        .filter(|r| r.started_at >= since)
        .filter(|r| matches!(r.status, JobStatus::Error | JobStatus::Skipped))
        .map(|r| Failure {
            job: r.job.clone(),
            status: r.status.as_str(),
        })
        .collect();
    failures.reverse();
    Ok(HealthLogs {
        since: since.to_rfc3339(),
        zone: zone.name(),
        ended: night.iter().map(|j| j.runs as usize).sum(),
        failures,
        tabs: vec![
            JobTab {
                id: "scheduled",
                jobs: scheduled,
            },
            JobTab {
                id: "syncs",
                jobs: syncs,
            },
        ],
    })
}

/// A channel's queue: due now (to be sent as soon as a worker is free) apart from what waits
/// for later (reminders, scheduled notifications, retries not yet due).
#[derive(Debug, Serialize)]
struct QueueSplit {
    channel: &'static str,
    due_now: u64,
    later: u64,
    oldest_due_secs: Option<u64>,
}

fn queue_split(queue: &clairon_application::ports::QueueDepth) -> Vec<QueueSplit> {
    Channel::ALL
        .into_iter()
        .map(|channel| {
            let all: u64 = queue
                .counts
                .iter()
                .filter(|c| c.channel == channel)
                .map(|c| c.count)
                .sum();
            let later = queue
                .scheduled_later
                .iter()
                .find(|(c, _)| *c == channel)
                .map_or(0, |(_, n)| *n);
            QueueSplit {
                channel: channel.as_str(),
                due_now: all.saturating_sub(later),
                later,
                oldest_due_secs: queue
                    .oldest_due_age_secs
                    .iter()
                    .find(|(c, _)| *c == channel)
                    .map(|(_, age)| *age),
            }
        })
        .collect()
}

// ---- end of the health logs ----

/// A line of the queue table.
#[derive(Debug, Serialize)]
struct QueueRow {
    channel: &'static str,
    status: &'static str,
    count: u64,
}

/// A channel's oldest due delivery, in seconds.
#[derive(Debug, Serialize)]
struct OldestRow {
    channel: &'static str,
    age: u64,
}

// ---- Routing (issue 11): the rules in force, and why each channel of a notification. ----

/// One routing rule as the dashboard lists it; `None`: the rule does not narrow it.
#[derive(Serialize)]
struct RuleRow {
    event: String,
    topics: Vec<String>,
    channels: Option<Vec<&'static str>>,
    priority: Option<&'static str>,
}

/// The rules in force: their version (0: the built-in set) and rows.
#[derive(Serialize)]
struct RulesPanel {
    version: i64,
    rules: Vec<RuleRow>,
}

async fn rules_panel(handlers: &Handlers) -> Result<RulesPanel, ApiError> {
    let current = handlers.routing_rules.current().await.map_err(repository)?;
    let rules = current
        .rules
        .rules()
        .iter()
        .map(|r| RuleRow {
            event: r.event.to_string(),
            topics: r.topics.iter().map(|t| t.as_str().to_owned()).collect(),
            channels: r.channels.map(|c| c.iter().map(Channel::as_str).collect()),
            priority: r.priority.map(|p| p.as_str()),
        })
        .collect();
    Ok(RulesPanel {
        version: current.version,
        rules,
    })
}

/// One delivery of the notification looked up: its channel, status and why.
#[derive(Serialize)]
struct WhyRow {
    channel: &'static str,
    status: &'static str,
    reason: Option<String>,
    next_attempt_at: Option<String>,
}

/// The notification of `?notification=<id>`: its id, title, event type and deliveries;
/// `found: false` when no notification has that id (or the id is malformed).
#[derive(Serialize)]
struct WhyPanel {
    id: String,
    found: bool,
    title: Option<String>,
    event_type: Option<String>,
    deliveries: Vec<WhyRow>,
}

#[derive(Deserialize)]
struct WhyParams {
    notification: Option<String>,
}

async fn why_panel(req: &HttpRequest, handlers: &Handlers) -> Result<Option<WhyPanel>, ApiError> {
    let Some(raw) = web::Query::<WhyParams>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().notification)
        .map(|raw| raw.trim().to_owned())
        .filter(|raw| !raw.is_empty())
    else {
        return Ok(None);
    };
    let missing = |id: String| WhyPanel {
        id,
        found: false,
        title: None,
        event_type: None,
        deliveries: Vec::new(),
    };
    let Ok(id) = NotificationId::parse(&raw) else {
        return Ok(Some(missing(raw)));
    };
    match handlers
        .get_notification
        .execute(GetNotification { id })
        .await
    {
        Ok(details) => Ok(Some(WhyPanel {
            id: raw,
            found: true,
            title: Some(details.notification.title.clone()),
            event_type: Some(details.notification.event_type.clone()),
            deliveries: details
                .deliveries
                .iter()
                .map(|d| WhyRow {
                    channel: d.channel,
                    status: d.status,
                    reason: d.reason.clone().or_else(|| d.last_error.clone()),
                    next_attempt_at: d.next_attempt_at.map(|t| t.to_rfc3339()),
                })
                .collect(),
        })),
        Err(GetNotificationError::NotFound(_)) => Ok(Some(missing(raw))),
        Err(GetNotificationError::Repository(e)) => Err(repository(e)),
    }
}

/// `GET /admin` (`?lang=fr|en`, else `Accept-Language`): the dashboard with a session or an
/// API key; the sign-in form otherwise.
///
/// # Errors
/// 503 when the database is unavailable; 500 when the page cannot be rendered.
#[utoipa::path(
    get, path = "/admin", tag = "admin",
    params(
        ("lang" = Option<String>, Query, description = "`fr` or `en` (default: `Accept-Language`)."),
        ("notification" = Option<String>, Query, description = "A notification id: the page then shows each of its deliveries with its status and why it was used, skipped or postponed."),
    ),
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
            since: handlers.clock.now() - DEFAULT_WINDOW,
        })
        .await
        .map_err(repository)?;
    let channels: Vec<ChannelRow> = stats
        .channels
        .iter()
        .map(|c| ChannelRow {
            channel: c.channel.as_str(),
            // Skipped deliveries (no address, channel off) are counted apart from the total.
            total: c.total
                - c.by_status
                    .get(DeliveryStatus::Skipped.as_str())
                    .copied()
                    .unwrap_or(0),
            sent: c
                .by_status
                .get(DeliveryStatus::Sent.as_str())
                .copied()
                .unwrap_or(0),
            skipped: c
                .by_status
                .get(DeliveryStatus::Skipped.as_str())
                .copied()
                .unwrap_or(0),
            success_rate: percent(c.success_rate),
            p50: millis(c.p50_latency_ms),
            p95: millis(c.p95_latency_ms),
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
    let dead: Vec<DeadRow> = dead
        .items
        .iter()
        .map(|d| DeadRow {
            id: &d.delivery.id,
            channel: d.delivery.channel,
            notification_id: &d.notification_id,
            recipient_id: &d.recipient_id,
            error: d.delivery.last_error.as_deref(),
        })
        .collect();
    let health = health_logs(&handlers).await?;
    let queue: Vec<QueueRow> = stats
        .queue
        .counts
        .iter()
        .map(|c| QueueRow {
            channel: c.channel.as_str(),
            status: c.status.as_str(),
            count: c.count,
        })
        .collect();
    let oldest: Vec<OldestRow> = stats
        .queue
        .oldest_due_age_secs
        .iter()
        .map(|(c, age)| OldestRow {
            channel: c.as_str(),
            age: *age,
        })
        .collect();
    let failing_jobs = stats.jobs.iter().any(|j| j.succeeded < j.runs);
    context.insert("all_good", &(stats.dead_letters == 0 && !failing_jobs));
    context.insert("channels", &channels);
    context.insert("dead_letters", &stats.dead_letters);
    context.insert("dead", &dead);
    context.insert("health", &health);
    context.insert("queue", &queue);
    context.insert("oldest", &oldest);
    context.insert("queue_split", &queue_split(&stats.queue));
    context.insert("routing", &rules_panel(&handlers).await?);
    context.insert("why", &why_panel(&req, &handlers).await?);
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
    let target = match page_language(&req) {
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
    deliveries::retry(handlers, path).await
}

/// Registers the dashboard: `/admin`, its sign-in and sign-out, the retry button's route
/// (an admin session, never an API key) and its script.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use actix_web::middleware::from_fn;
    cfg.service(web::resource("/admin").get(dashboard))
        .service(web::resource("/admin/login").post(login))
        .service(web::resource("/admin/logout").post(logout))
        .service(
            web::resource("/admin/deliveries/{id}/retry").route(
                web::post()
                    .to(retry_delivery)
                    .wrap(from_fn(crate::http::middleware::paths::refuse_dot_segments))
                    .wrap(from_fn(super::sessions::require_admin_session)),
            ),
        )
        .service(web::resource("/static/admin.js").get(admin_js));
}
