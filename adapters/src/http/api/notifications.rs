//! Notifications: `POST /api/v1/notifications` (free-form, to many recipients),
//! `POST /api/v1/notifications/plannings/{planning_id}/events` (a planning change: the rules
//! decide who is told), `POST /api/v1/notifications/test`, and `GET`/`POST …/{id}(/read)`.

use actix_web::{http::StatusCode, web, HttpResponse};
use clairon_application::commands::{
    ContentTooLarge, CreateNotification, CreateNotificationError, CreatedNotification,
    HandlePlanningEvent, HandlePlanningEventError, MarkNotificationRead, MarkNotificationReadError,
    NotificationDraft, SendTestNotificationError,
};
use clairon_application::events::PublishError;
use clairon_application::ports::StoredResponse;
use clairon_application::queries::{GetNotification, GetNotificationError};
use clairon_domain::{EventType, RecipientId};

use crate::http::extract::{notification_id, JsonBody};
use crate::http::problem::{repository, ApiError, FieldError, Problem};
use crate::http::schema::params::{IdPath, IdempotencyKeyHeader};
use crate::http::schema::requests::{NotificationBody, PlanningEventBody, TestBody};
use crate::http::schema::responses::{
    self, NotificationDetails, NotificationResponse, NotificationsAccepted, PlanningEventAccepted,
    TestResult, TestResults,
};
use crate::http::state::Handlers;
use crate::idempotency;

type Data = web::Data<Handlers>;

/// A request over a content bound, as a 422 naming `fanout_field` (what multiplies the
/// content: the recipients) or `metadata`.
fn too_large(e: ContentTooLarge, fanout_field: &str) -> ApiError {
    match e {
        ContentTooLarge::Metadata { .. } => ApiError::invalid(
            "metadata",
            format!("{e} (CLAIRON_MAX_METADATA_BYTES); keep bulky data on your side and send a reference"),
        ),
        ContentTooLarge::Fanout { .. } => ApiError::invalid(
            fanout_field,
            format!("{e} (CLAIRON_MAX_FANOUT_BYTES); split the recipients over several requests or send less content"),
        ),
    }
}

/// The JSON answer `body` with `status`, as the idempotency record keeps it.
fn stored<T: serde::Serialize>(status: StatusCode, body: &T) -> StoredResponse {
    StoredResponse {
        status: status.as_u16(),
        content_type: Some("application/json".to_owned()),
        body: serde_json::to_string(body).unwrap_or_default(),
    }
}

fn notifications_accepted(
    created: &[CreatedNotification],
    deliver_at: Option<chrono::DateTime<chrono::Utc>>,
) -> NotificationsAccepted {
    NotificationsAccepted {
        notifications: responses::created(created),
        deliver_at: deliver_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    }
}

fn unknown_recipients(ids: &[RecipientId]) -> ApiError {
    let list: Vec<&str> = ids.iter().map(RecipientId::as_str).collect();
    ApiError::invalid_fields(vec![FieldError {
        field: "recipient_ids".into(),
        message: format!("unknown recipients: {}", list.join(", ")),
    }])
}

/// `POST /api/v1/notifications` → 202 with the created notifications.
#[utoipa::path(
    post, path = "/api/v1/notifications", tag = "notifications",
    params(IdempotencyKeyHeader),
    request_body = NotificationBody,
    responses(
        (status = 202, description = "Written with their deliveries (the outbox); delivered now or at `deliver_at`.", body = NotificationsAccepted),
        (status = 409, description = "A request with this `Idempotency-Key` is in progress.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or unknown recipients (all listed), or an `Idempotency-Key` reused with another request; nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn create_notifications(
    handlers: Data,
    JsonBody(body): JsonBody<NotificationBody>,
) -> Result<HttpResponse, ApiError> {
    let content = body.into_content()?;
    // Refused before the content is copied once per recipient.
    let limits = handlers.create_notification.limits();
    let metadata_bytes = limits
        .check_metadata(&content.metadata)
        .map_err(|e| too_large(e, "recipient_ids"))?;
    let each = content.title.as_str().len()
        + content.body.as_str().len()
        + content.action_url.as_ref().map_or(0, |u| u.as_str().len())
        + content
            .action_label
            .as_ref()
            .map_or(0, |l| l.as_str().len())
        + metadata_bytes;
    limits
        .check_fanout(content.recipient_ids.len(), each)
        .map_err(|e| too_large(e, "recipient_ids"))?;
    let deliver_at = content.deliver_at;
    idempotency::answer_with(move |batch| {
        let created: Vec<CreatedNotification> = batch.iter().map(Into::into).collect();
        stored(
            StatusCode::ACCEPTED,
            &notifications_accepted(&created, deliver_at),
        )
    });
    let event_type = EventType::parse(EventType::CUSTOM).unwrap_or_else(|_| unreachable!());
    let drafts = content
        .recipient_ids
        .iter()
        .map(|id| NotificationDraft {
            recipient_id: id.clone(),
            kind: content.kind,
            priority: content.priority,
            title: content.title.clone(),
            body: content.body.clone(),
            action_url: content.action_url.clone(),
            action_label: content.action_label.clone(),
            metadata: content.metadata.clone(),
            event_type: event_type.clone(),
            source_event_id: None,
            channels: content.channels,
            rule: None,
            fallback: content.fallback.clone(),
        })
        .collect();
    let created = handlers
        .create_notification
        .execute(CreateNotification {
            drafts,
            deliver_at: content.deliver_at,
        })
        .await
        .map_err(|e| match e {
            CreateNotificationError::UnknownRecipients(ids) => unknown_recipients(&ids),
            CreateNotificationError::TooMany { max } => ApiError::invalid(
                "recipient_ids",
                format!("at most {max} recipients per request"),
            ),
            CreateNotificationError::TooLarge(e) => too_large(e, "recipient_ids"),
            CreateNotificationError::Duplicate(what) => ApiError::Internal(what),
            CreateNotificationError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Accepted().json(notifications_accepted(&created, deliver_at)))
}

/// `POST /api/v1/notifications/plannings/{planning_id}/events` → 202 with what was created, or
/// 200 with what had been created when the event id was seen before.
#[utoipa::path(
    post, path = "/api/v1/notifications/plannings/{planning_id}/events", tag = "notifications",
    params(
        ("planning_id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The planning (the body's `planning_id` must equal it)."),
        IdempotencyKeyHeader,
    ),
    request_body = PlanningEventBody,
    responses(
        (status = 202, description = "One notification per person told, written with their deliveries and J-1 reminders.", body = PlanningEventAccepted),
        (status = 200, description = "The event id was seen before: nothing new was created (`replayed: true`).", body = PlanningEventAccepted),
        (status = 409, description = "A request with this `Idempotency-Key` is in progress.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`planning.ends_at` before `planning.starts_at`, an unknown zone, …) or unknown recipients, all listed; nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn planning_event(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<PlanningEventBody>,
) -> Result<HttpResponse, ApiError> {
    let event = body.into_event(&path)?;
    let (event_id, planning_id) = (
        event.event_id.as_str().to_owned(),
        event.planning.id.as_str().to_owned(),
    );
    idempotency::answer_with(move |batch| {
        let created: Vec<CreatedNotification> = batch.iter().map(Into::into).collect();
        stored(
            StatusCode::ACCEPTED,
            &PlanningEventAccepted {
                event_id,
                planning_id,
                replayed: false,
                notifications: responses::created(&created),
            },
        )
    });
    let handled = handlers
        .handle_planning_event
        .execute(HandlePlanningEvent { event })
        .await
        .map_err(|e| match e {
            HandlePlanningEventError::Publish(PublishError::UnknownRecipients(ids)) => {
                let list: Vec<&str> = ids.iter().map(RecipientId::as_str).collect();
                ApiError::invalid_fields(vec![FieldError {
                    field: "artist_ids".into(),
                    message: format!("unknown recipients: {}", list.join(", ")),
                }])
            }
            HandlePlanningEventError::Publish(PublishError::Repository(e))
            | HandlePlanningEventError::Repository(e) => repository(e),
            HandlePlanningEventError::Publish(PublishError::TooMany(what)) => {
                ApiError::invalid("artist_ids", what)
            }
            HandlePlanningEventError::Publish(PublishError::TooLarge(e)) => {
                too_large(e, "artist_ids")
            }
            HandlePlanningEventError::Publish(other) => ApiError::Internal(other.to_string()),
        })?;
    let status = if handled.replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(HttpResponse::build(status).json(PlanningEventAccepted {
        event_id: handled.event_id.as_str().to_owned(),
        planning_id: handled.planning_id.as_str().to_owned(),
        replayed: handled.replayed,
        notifications: responses::created(&handled.notifications),
    }))
}

/// `GET /api/v1/notifications/{id}` → the notification with its deliveries.
#[utoipa::path(
    get, path = "/api/v1/notifications/{id}", tag = "notifications",
    params(IdPath),
    responses(
        (status = 200, description = "The notification, its deliveries and each delivery's attempts.", body = NotificationDetails),
        (status = 404, description = "No such notification.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn get_notification(
    handlers: Data,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = notification_id(&path)?;
    let details = handlers
        .get_notification
        .execute(GetNotification { id })
        .await
        .map_err(|e| match e {
            GetNotificationError::NotFound(id) => {
                ApiError::NotFound(format!("notification {id} not found"))
            }
            GetNotificationError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(NotificationDetails::from(details)))
}

/// `POST /api/v1/notifications/{id}/read` → the notification, read.
#[utoipa::path(
    post, path = "/api/v1/notifications/{id}/read", tag = "inbox",
    params(IdPath),
    responses(
        (status = 200, description = "The notification, read (the first read time is kept).", body = NotificationResponse),
        (status = 404, description = "No such notification.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn mark_read(handlers: Data, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    mark_read_as(&handlers, &path, None).await
}

/// Marks notification `raw_id` read; with `owner`, someone else's is not found (shared with
/// `/api/v1/me`).
pub(crate) async fn mark_read_as(
    handlers: &Handlers,
    raw_id: &str,
    owner: Option<RecipientId>,
) -> Result<HttpResponse, ApiError> {
    let id = notification_id(raw_id)?;
    let view = handlers
        .mark_read
        .execute(MarkNotificationRead { id, owner })
        .await
        .map_err(|e| match e {
            MarkNotificationReadError::NotFound(id) => {
                ApiError::NotFound(format!("notification {id} not found"))
            }
            MarkNotificationReadError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(NotificationResponse::from(view)))
}

/// `POST /api/v1/notifications/test` → `{"results": [{"channel", "status", "detail"}]}`.
#[utoipa::path(
    post, path = "/api/v1/notifications/test", tag = "notifications",
    request_body = TestBody,
    responses(
        (status = 200, description = "Sent now on each channel asked for (or every channel that is on); the outcome per channel.", body = TestResults),
        (status = 422, description = "Neither a recipient nor an address, both, an unknown recipient, or an invalid field.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn send_test(
    handlers: Data,
    JsonBody(body): JsonBody<TestBody>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_command()?;
    let results = handlers
        .send_test
        .execute(command)
        .await
        .map_err(|e| match e {
            SendTestNotificationError::UnknownRecipient(id) => {
                ApiError::invalid("recipient_id", format!("unknown recipient {id}"))
            }
            SendTestNotificationError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(TestResults {
        results: results.iter().map(TestResult::from).collect(),
    }))
}

/// Registers the notifications' routes in the `/api/v1` scope, `/notifications/test` before
/// `/notifications/{id}` (which it would otherwise match); the ingestion POSTs are idempotent.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::http::middleware::idempotency::idempotent;
    cfg.service(web::resource("/notifications").route(scoped!(
        post,
        require_send,
        create_notifications,
        idempotent
    )))
    .service(web::resource("/notifications/test").route(scoped!(post, require_send, send_test)))
    .service(
        web::resource("/notifications/plannings/{planning_id}/events").route(scoped!(
            post,
            require_send,
            planning_event,
            idempotent
        )),
    )
    .service(web::resource("/notifications/{id}").route(scoped!(
        get,
        require_read,
        get_notification
    )))
    .service(web::resource("/notifications/{id}/read").route(scoped!(
        post,
        require_read,
        mark_read
    )));
}
