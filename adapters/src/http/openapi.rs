//! The API contract: an OpenAPI 3.1 document generated from the handlers' `#[utoipa::path]`
//! attributes and the DTOs' `ToSchema` derives, served at `GET /api/openapi.json`, and Swagger UI
//! (embedded in the binary, no CDN) at `/api/docs/`.
//!
//! **Documenting a new route**: put `#[utoipa::path(...)]` on its handler (method, full path,
//! tag, params, request body, success responses and the 404/409/422 it can answer, `security`)
//! and add the handler to `paths(...)` in [`ApiDoc`]. The errors every route shares — 400, 401
//! on secured routes, 413 and 415 on routes with a body, 422 on routes with path parameters
//! (`.` and `..`), 503 — are added by [`CommonErrors`], all as `application/problem+json`
//! ([`Problem`]).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::api::push as api_push;
use super::api::{
    admin, deliveries, events, gdpr, inbox, job_runs, notifications, preferences, recipients,
    routing_rules, topics,
};
use super::me::push as me_push;
use super::me::{rest, stream};
use super::pages::{dashboard, inbox as inbox_page, unsubscribe};
use super::probes;
use super::problem::{FieldError, Problem, PROBLEM_JSON};
use super::schema::params::{
    ChannelName, DeliveryStatusName, EndStatusName, InboxFilter, JobName, JobSourceName,
    JobStatusName, JobTriggerName, KindName, KnownChannelName, PlanningEventName, PriorityName,
    RecipientIdSchema, ReportedStatusName, TaskTypeName, TopicKeySchema, TriggeredByName,
};

/// The security scheme of `/api/v1` (except `/api/v1/me`): an API key as a bearer token.
pub const API_KEY_SCHEME: &str = "api_key";
/// The security scheme of `/api/v1/me`: a recipient token (JWT) as a bearer token.
pub const RECIPIENT_TOKEN_SCHEME: &str = "recipient_token";
/// The recipient token in the `token` query parameter (EventSource and WebSocket cannot set
/// headers).
pub const RECIPIENT_TOKEN_QUERY_SCHEME: &str = "recipient_token_query";
/// The security scheme of the dashboard's own POST routes: the session cookie `/admin/login`
/// sets (an admin API key as `Authorization: Bearer` is accepted too).
pub const ADMIN_SESSION_SCHEME: &str = "admin_session";

/// The document: every route of [`super::configure`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clairon",
        description = "A self-hosted notification service: tell it what happened, it decides who must know, writes the notification down, and delivers it in the in-app inbox, by email and on Telegram.\n\nEvery error is an RFC 7807 `application/problem+json` document; invalid input names each field in `errors`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        probes::health,
        probes::live,
        probes::ready,
        probes::metrics,
        dashboard::dashboard,
        dashboard::login,
        dashboard::logout,
        dashboard::retry_delivery,
        dashboard::admin_js,
        admin::list_job_runs,
        admin::run_job,
        admin::job_stats,
        admin::stats,
        openapi_json,
        docs_redirect,
        inbox_page::inbox_page,
        inbox_page::client_js,
        inbox_page::service_worker_js,
        unsubscribe::unsubscribe_page,
        unsubscribe::one_click_unsubscribe,
        recipients::put_recipient,
        recipients::get_recipient,
        recipients::import_recipients,
        gdpr::export,
        gdpr::erase,
        preferences::get_preferences,
        preferences::put_preferences,
        preferences::post_consent,
        preferences::get_consents,
        recipients::issue_token,
        recipients::revoke_tokens,
        inbox::list_notifications,
        inbox::unread_count,
        inbox::mark_all_read,
        notifications::create_notifications,
        notifications::send_test,
        notifications::planning_event,
        notifications::get_notification,
        notifications::mark_read,
        deliveries::list,
        deliveries::retry,
        job_runs::report,
        job_runs::finish,
        rest::me_list,
        rest::me_unread_count,
        rest::me_mark_read,
        rest::me_read_all,
        rest::me_get_preferences,
        rest::me_put_preferences,
        rest::me_post_consent,
        rest::me_get_consents,
        api_push::vapid_public_key,
        me_push::me_post_push_subscription,
        me_push::me_delete_push_subscription,
        stream::sse,
        stream::websocket,
        events::post_event,
        topics::put_topic,
        topics::get_topic,
        topics::add_subscribers,
        topics::remove_subscriber,
        routing_rules::get_rules,
        routing_rules::put_rules,
    ),
    components(schemas(
        Problem, FieldError, InboxFilter, DeliveryStatusName, ChannelName, KindName, PriorityName,
        PlanningEventName, RecipientIdSchema, dashboard::LoginForm, JobName, JobStatusName,
        KnownChannelName, unsubscribe::OneClickForm, TopicKeySchema,
        JobSourceName, JobTriggerName, TaskTypeName, TriggeredByName, ReportedStatusName,
        EndStatusName,
    )),
    modifiers(&SecuritySchemes, &CommonErrors),
    tags(
        (name = "recipients", description = "Who can be notified."),
        (name = "notifications", description = "Telling Clairon what happened."),
        (name = "inbox", description = "A recipient's notifications, read with an API key."),
        (name = "deliveries", description = "Deliveries across notifications: the dead-letter view."),
        (name = "jobs", description = "Runs of outside systems' jobs (syncs, reports, backups) reported to Clairon, shown beside its own in the health logs."),
        (name = "me", description = "The recipient's own routes: a recipient token, never an API key."),
        (name = "operations", description = "Health, metrics, the contract, the pages (the inbox, the emails' one-click unsubscribe links)."),
        (name = "admin", description = "The operator's API and dashboard: job runs (Clairon's and reported), running a job by hand, per-job figures, statistics, dead letters (admin scope)."),
        (name = "preferences", description = "A recipient's own choices, with an API key: channels and event types switched on or off, quiet hours, and the consent history."),
        (name = "events", description = "Any domain event of the host application, routed by the routing rules."),
        (name = "topics", description = "Named groups of recipients that events and rules address at once."),
        (name = "routing", description = "The routing rules: per event type, which topics, channels and priority (admin scope)."),
        (name = "gdpr", description = "A recipient's personal data: export (GDPR art. 15 and 20) and erasure (art. 17)."),
    ),
)]
pub struct ApiDoc;

/// Declares the security schemes the operations name.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`CLAIRON_API_KEYS`, or `clairon api-keys create`) in `Authorization: Bearer <key>`; each route needs a scope (`send`, `read` or `admin`), else 403.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            RECIPIENT_TOKEN_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A recipient token (JWT HS256, RFC 7519) from `POST /api/v1/recipients/{id}/tokens`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            RECIPIENT_TOKEN_QUERY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A recipient token in the query string, for EventSource and WebSocket clients that cannot set headers.",
            ))),
        );
        components.add_security_scheme(
            ADMIN_SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "clairon_admin",
                "The dashboard's session (`POST /admin/login`), 8 h at most; sent with the `X-Clairon-Admin` header.",
            ))),
        );
    }
}

/// Adds the error answers every route shares, as problem+json, where the route does not
/// document them itself: 400 (a malformed parameter or body), 401 (secured routes), 403 (routes
/// behind an API-key scope), 429 (rate-limited routes: API keys, recipient tokens, dashboard
/// sessions — a refused credential counts against the client address), 413 and
/// 415 (routes with a body), 422 (routes with path parameters: `.` or `..`), 503 (the database
/// is down; secured routes).
pub struct CommonErrors;

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn add_common_errors(operation: &mut Operation) {
    let schemes: Vec<String> = operation
        .security
        .iter()
        .flatten()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|value| {
            value
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    let secured = !schemes.is_empty();
    let scoped = schemes.iter().any(|s| s == API_KEY_SCHEME);
    // The dashboard's session routes take an admin key in `Authorization` too, and a refused
    // one counts against the client address like any other.
    let rate_limited = scoped
        || schemes
            .iter()
            .any(|s| s.starts_with(RECIPIENT_TOKEN_SCHEME) || s == ADMIN_SESSION_SCHEME);
    let has_body = operation.request_body.is_some();
    let has_path_parameters = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path));
    let mut common = vec![(
        "400",
        "Malformed request: unreadable JSON, query string or header.",
    )];
    if secured {
        common.push(("401", "Missing, unknown or expired credentials."));
    }
    if scoped {
        common.push((
            "403",
            "The API key is valid but its scope (`send`, `read`, `admin`) does not allow this route.",
        ));
    }
    if has_body {
        common.push((
            "413",
            "The body is over `CLAIRON_MAX_BODY_BYTES` (256 KiB by default).",
        ));
        common.push(("415", "The body is not of the documented media type."));
    }
    if has_path_parameters {
        common.push((
            "422",
            "A path parameter is `.` or `..` (dot-segments, RFC 3986 §5.2.4), which no id can be.",
        ));
    }
    if rate_limited {
        common.push((
            "429",
            "Over the rate limit of this API key or recipient token, or too many refused credentials from this client address; `Retry-After` says when to retry (s).",
        ));
    }
    if secured {
        common.push(("503", "The database is unavailable; retry later."));
    }
    for (status, description) in common {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    }
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_common_errors(operation);
            }
        }
    }
}

/// The document, built once per call (cheap: a few hundred small allocations).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document.", body = Object)),
)]
pub async fn openapi_json(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}

/// `GET /api/docs`: to `/api/docs/`, where Swagger UI's relative links resolve.
#[utoipa::path(
    get, path = "/api/docs", tag = "operations",
    responses((status = 308, description = "To `/api/docs/`, the API's documentation page (Swagger UI, served from the binary).",
        headers(("Location" = String, description = "`/api/docs/`")))),
)]
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/api/docs/"))
        .finish()
}

/// Registers `/api/openapi.json` (the document, built once here) and Swagger UI under
/// `/api/docs/`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(document()))
        .service(web::resource("/api/openapi.json").get(openapi_json))
        .service(
            web::scope("/api/docs")
                .service(web::resource("").get(docs_redirect))
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/{_:.*}")
                        .config(utoipa_swagger_ui::Config::new(["/api/openapi.json"])),
                )
                .default_service(web::to(crate::http::problem::not_found)),
        );
}
