//! `/admin`: the operator's dashboard (statistics, dead letters with a retry button, job runs),
//! its sign-in form, `POST /admin/login|logout`, its retry route and its script. The JSON API
//! it mirrors is `http::api::admin`; its sessions are [`super::sessions`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use clairon_application::ports::{Job, JobRunQuery};
use clairon_application::queries::{GetOperationsStats, ListDeliveries};
use clairon_domain::DeliveryStatus;
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
use crate::http::schema::responses::{DeliveryResponse, JobRunResponse};
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

/// A job with its last runs.
#[derive(Debug, Serialize)]
struct JobRows {
    job: &'static str,
    runs: Vec<JobRunResponse>,
}

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
            since: handlers.clock.now() - DEFAULT_WINDOW,
        })
        .await
        .map_err(repository)?;
    let channels: Vec<ChannelRow> = stats
        .channels
        .iter()
        .map(|c| ChannelRow {
            channel: c.channel.as_str(),
            total: c.total,
            sent: c
                .by_status
                .get(DeliveryStatus::Sent.as_str())
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
        let runs: Vec<JobRunResponse> = runs.items.iter().map(JobRunResponse::from).collect();
        jobs.push(JobRows {
            job: job.as_str(),
            runs,
        });
    }
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
