//! The route handlers: parse, call one use case, shape the answer.

use actix_web::{http::StatusCode, web, HttpResponse};
use clairon_application::commands::{
    ContentTooLarge, CreateNotification, CreateNotificationError, CreatedNotification,
    HandlePlanningEvent, HandlePlanningEventError, MarkAllNotificationsRead, MarkNotificationRead,
    MarkNotificationReadError, NotificationDraft, SendTestNotificationError, UpsertRecipients,
    UpsertRecipientsError,
};
use clairon_application::events::PublishError;
use clairon_application::ports::{ReadFilter, RepositoryError, Upserted};
use clairon_application::queries::{
    GetNotification, GetNotificationError, ListNotifications, ListNotificationsError, UnreadCount,
    UnreadCountError,
};
use clairon_domain::{EventType, NotificationId, Recipient, RecipientId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::{ImportBody, NotificationBody, PlanningEventBody, RecipientBody, TestBody};
use super::extract::JsonBody;
use super::idempotency::{self, StoredResponse};
use super::openapi::{IdPath, IdempotencyKeyHeader, InboxFilter, RecipientPath};
use super::problem::{ApiError, Problem};
use super::responses::{
    self, ImportResult, MarkedAllRead, NotificationDetails, NotificationPage, NotificationResponse,
    NotificationsAccepted, PlanningEventAccepted, RecipientResponse, TestResult, TestResults,
    UnreadCountResponse,
};
use super::Handlers;

type Data = web::Data<Handlers>;

pub(super) fn repository(e: RepositoryError) -> ApiError {
    match e {
        RepositoryError::Unavailable(cause) => ApiError::Unavailable(cause),
        other => ApiError::Internal(other.to_string()),
    }
}

pub(super) fn recipient_id(raw: &str) -> Result<RecipientId, ApiError> {
    RecipientId::parse(raw).map_err(|_| ApiError::NotFound(format!("recipient {raw:?} not found")))
}

fn notification_id(raw: &str) -> Result<NotificationId, ApiError> {
    NotificationId::parse(raw)
        .map_err(|_| ApiError::NotFound(format!("notification {raw:?} not found")))
}

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
    ApiError::invalid_fields(vec![super::FieldError {
        field: "recipient_ids".into(),
        message: format!("unknown recipients: {}", list.join(", ")),
    }])
}

/// Any unknown route.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

/// `PUT /api/v1/recipients/{id}` → 201 created or 200 updated, with the recipient.
#[utoipa::path(
    put, path = "/api/v1/recipients/{id}", tag = "recipients",
    params(RecipientPath),
    request_body = RecipientBody,
    responses(
        (status = 201, description = "Registered.", body = RecipientResponse),
        (status = 200, description = "Replaced.", body = RecipientResponse),
        (status = 422, description = "Invalid fields (or an `id` in the body that differs from the path's), all listed.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn put_recipient(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<RecipientBody>,
) -> Result<HttpResponse, ApiError> {
    let recipient = body.into_recipient(&path)?;
    let json = RecipientResponse::from(&recipient);
    let outcome = upsert(&handlers, vec![recipient]).await?;
    let status = match outcome.first() {
        Some(Upserted::Created) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    Ok(HttpResponse::build(status).json(json))
}

async fn upsert(
    handlers: &Handlers,
    recipients: Vec<Recipient>,
) -> Result<Vec<Upserted>, ApiError> {
    handlers
        .upsert_recipients
        .execute(UpsertRecipients { recipients })
        .await
        .map_err(|e| match e {
            UpsertRecipientsError::DuplicateId(id) => {
                ApiError::invalid("recipients", format!("id {id:?} appears more than once"))
            }
            UpsertRecipientsError::TooMany { max } => {
                ApiError::invalid("recipients", format!("at most {max} per import"))
            }
            UpsertRecipientsError::Repository(e) => repository(e),
        })
}

/// `POST /api/v1/recipients/import` → 200 `{"created": n, "updated": n}`.
#[utoipa::path(
    post, path = "/api/v1/recipients/import", tag = "recipients",
    params(IdempotencyKeyHeader),
    request_body = ImportBody,
    responses(
        (status = 200, description = "All registered or replaced, in one transaction.", body = ImportResult),
        (status = 409, description = "A request with this `Idempotency-Key` is in progress.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`recipients[3].email`), a repeated id, too many recipients, or an `Idempotency-Key` reused with another request; nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn import_recipients(
    handlers: Data,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let outcome = upsert(&handlers, body.into_recipients()?).await?;
    let created = outcome.iter().filter(|o| **o == Upserted::Created).count();
    Ok(HttpResponse::Ok().json(ImportResult {
        created,
        updated: outcome.len() - created,
    }))
}

/// `GET /api/v1/recipients/{id}`.
#[utoipa::path(
    get, path = "/api/v1/recipients/{id}", tag = "recipients",
    params(RecipientPath),
    responses(
        (status = 200, description = "The recipient.", body = RecipientResponse),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn get_recipient(
    handlers: Data,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = recipient_id(&path)?;
    match handlers.recipients.get(&id).await.map_err(repository)? {
        Some(r) => Ok(HttpResponse::Ok().json(RecipientResponse::from(&r))),
        None => Err(ApiError::NotFound(format!("recipient {id} not found"))),
    }
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
                ApiError::invalid_fields(vec![super::FieldError {
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

/// Query string of inbox listings. Every value is read as text and checked here, so a bad one
/// is a 422 naming it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `unread`, `read` or `all` (the default).
    #[param(value_type = Option<InboxFilter>)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The previous page's `next_cursor` (an id: 1 to 64 letters, digits, `-` or `_`).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
}

/// `GET /api/v1/recipients/{id}/notifications?status=unread|read|all&limit=&cursor=`.
#[utoipa::path(
    get, path = "/api/v1/recipients/{id}/notifications", tag = "inbox",
    params(RecipientPath, ListParams),
    responses(
        (status = 200, description = "A page of the inbox, newest first (scheduled and cancelled notifications left out).", body = NotificationPage),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `status`, `limit` or `cursor`, named.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn list_notifications(
    handlers: Data,
    path: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_for(&handlers, recipient_id(&path)?, &params).await
}

/// One page of `id`'s inbox (shared with `/api/v1/me/notifications`).
pub(super) async fn list_for(
    handlers: &Handlers,
    id: RecipientId,
    params: &ListParams,
) -> Result<HttpResponse, ApiError> {
    let filter = match params.status.as_deref() {
        None | Some("all") => ReadFilter::All,
        Some("unread") => ReadFilter::Unread,
        Some("read") => ReadFilter::Read,
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                format!("{other:?} is not one of unread, read, all"),
            ))
        }
    };
    let limit = params
        .limit
        .as_deref()
        .map(|l| {
            l.parse::<u32>()
                .map_err(|_| ApiError::invalid("limit", "must be an integer from 1 to 100"))
        })
        .transpose()?;
    let page = handlers
        .list_notifications
        .execute(ListNotifications {
            recipient_id: id,
            filter,
            limit,
            cursor: params.cursor.clone(),
        })
        .await
        .map_err(|e| match e {
            ListNotificationsError::UnknownRecipient(id) => {
                ApiError::NotFound(format!("recipient {id} not found"))
            }
            ListNotificationsError::InvalidLimit => {
                ApiError::invalid("limit", "must be an integer from 1 to 100")
            }
            ListNotificationsError::InvalidCursor => {
                ApiError::invalid("cursor", "is not a cursor this service gave out")
            }
            ListNotificationsError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(NotificationPage {
        items: page
            .items
            .into_iter()
            .map(NotificationResponse::from)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `GET /api/v1/recipients/{id}/notifications/unread-count` → `{"unread": n}`.
#[utoipa::path(
    get, path = "/api/v1/recipients/{id}/notifications/unread-count", tag = "inbox",
    params(RecipientPath),
    responses(
        (status = 200, description = "Unread notifications that are due and not cancelled.", body = UnreadCountResponse),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn unread_count(
    handlers: Data,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    unread_for(&handlers, recipient_id(&path)?).await
}

/// `{"unread": n}` for `id` (shared with `/api/v1/me`).
pub(super) async fn unread_for(
    handlers: &Handlers,
    id: RecipientId,
) -> Result<HttpResponse, ApiError> {
    let unread = handlers
        .unread_count
        .execute(UnreadCount { recipient_id: id })
        .await
        .map_err(|e| match e {
            UnreadCountError::UnknownRecipient(id) => {
                ApiError::NotFound(format!("recipient {id} not found"))
            }
            UnreadCountError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(UnreadCountResponse { unread }))
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
pub(super) async fn mark_read_as(
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

/// `POST /api/v1/recipients/{id}/notifications/read-all` → `{"marked": n, "unread": 0}`.
#[utoipa::path(
    post, path = "/api/v1/recipients/{id}/notifications/read-all", tag = "inbox",
    params(RecipientPath),
    responses(
        (status = 200, description = "Every notification of the recipient is read.", body = MarkedAllRead),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn mark_all_read(
    handlers: Data,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    mark_all_for(&handlers, recipient_id(&path)?).await
}

/// Marks all of `id`'s notifications read (shared with `/api/v1/me`).
pub(super) async fn mark_all_for(
    handlers: &Handlers,
    id: RecipientId,
) -> Result<HttpResponse, ApiError> {
    if handlers
        .recipients
        .get(&id)
        .await
        .map_err(repository)?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("recipient {id} not found")));
    }
    let marked = handlers
        .mark_all_read
        .execute(MarkAllNotificationsRead { recipient_id: id })
        .await
        .map_err(|e| match e {
            clairon_application::commands::MarkAllNotificationsReadError::Repository(e) => {
                repository(e)
            }
        })?;
    Ok(HttpResponse::Ok().json(MarkedAllRead { marked, unread: 0 }))
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
