//! The route handlers: parse, call one use case, shape the answer.

use actix_web::{http::StatusCode, web, HttpResponse};
use clairon_application::commands::{
    CreateNotification, CreateNotificationError, CreatedNotification, HandlePlanningEvent,
    HandlePlanningEventError, MarkAllNotificationsRead, MarkNotificationRead,
    MarkNotificationReadError, NotificationDraft, SendTestNotificationError, UpsertRecipients,
    UpsertRecipientsError,
};
use clairon_application::events::PublishError;
use clairon_application::ports::{ReadFilter, RepositoryError, Upserted};
use clairon_application::queries::{
    GetNotification, GetNotificationError, ListNotifications, ListNotificationsError, UnreadCount,
    UnreadCountError,
};
use clairon_domain::{DeliveryStatus, EventType, NotificationId, Recipient, RecipientId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::dto::{ImportBody, NotificationBody, PlanningEventBody, RecipientBody, TestBody};
use super::extract::JsonBody;
use super::problem::ApiError;
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

fn recipient_json(r: &Recipient) -> Value {
    json!({
        "id": r.id.as_str(),
        "name": r.name.as_str(),
        "email": r.email.as_ref().map(|e| e.as_str()),
        "telegram_chat_id": r.telegram_chat_id.as_ref().map(|c| c.as_str()),
        "phone": r.phone.as_ref().map(|p| p.as_str()),
        "locale": r.locale.map(|l| l.as_str()),
        "timezone": r.timezone.map(|t| t.name()),
        "telegram_unreachable": r.telegram_unreachable,
    })
}

fn created_json(created: &[CreatedNotification]) -> Vec<Value> {
    created
        .iter()
        .map(|n| {
            let channels: Vec<&str> = n
                .deliveries
                .iter()
                .filter(|d| d.status != DeliveryStatus::Skipped)
                .map(|d| d.channel.as_str())
                .collect();
            let skipped: Vec<Value> = n
                .deliveries
                .iter()
                .filter(|d| d.status == DeliveryStatus::Skipped)
                .map(|d| json!({ "channel": d.channel.as_str(), "reason": d.reason }))
                .collect();
            json!({
                "id": n.id.as_str(),
                "recipient_id": n.recipient_id.as_str(),
                "channels": channels,
                "skipped": skipped,
            })
        })
        .collect()
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
pub async fn put_recipient(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<RecipientBody>,
) -> Result<HttpResponse, ApiError> {
    let recipient = body.into_recipient(&path)?;
    let json = recipient_json(&recipient);
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
pub async fn import_recipients(
    handlers: Data,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let outcome = upsert(&handlers, body.into_recipients()?).await?;
    let created = outcome.iter().filter(|o| **o == Upserted::Created).count();
    Ok(HttpResponse::Ok().json(json!({ "created": created, "updated": outcome.len() - created })))
}

/// `GET /api/v1/recipients/{id}`.
pub async fn get_recipient(
    handlers: Data,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = recipient_id(&path)?;
    match handlers.recipients.get(&id).await.map_err(repository)? {
        Some(r) => Ok(HttpResponse::Ok().json(recipient_json(&r))),
        None => Err(ApiError::NotFound(format!("recipient {id} not found"))),
    }
}

/// `POST /api/v1/notifications` → 202 with the created notifications.
pub async fn create_notifications(
    handlers: Data,
    JsonBody(body): JsonBody<NotificationBody>,
) -> Result<HttpResponse, ApiError> {
    let content = body.into_content()?;
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
            CreateNotificationError::Duplicate(what) => ApiError::Internal(what),
            CreateNotificationError::Repository(e) => repository(e),
        })?;
    let mut answer = json!({ "notifications": created_json(&created) });
    if let Some(at) = content.deliver_at {
        answer["deliver_at"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
    Ok(HttpResponse::Accepted().json(answer))
}

/// `POST /api/v1/notifications/plannings/{planning_id}/events` → 202 with what was created, or
/// 200 with what had been created when the event id was seen before.
pub async fn planning_event(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<PlanningEventBody>,
) -> Result<HttpResponse, ApiError> {
    let event = body.into_event(&path)?;
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
            HandlePlanningEventError::Publish(other) => ApiError::Internal(other.to_string()),
        })?;
    let status = if handled.replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(HttpResponse::build(status).json(json!({
        "event_id": handled.event_id.as_str(),
        "planning_id": handled.planning_id.as_str(),
        "replayed": handled.replayed,
        "notifications": created_json(&handled.notifications),
    })))
}

/// Query string of inbox listings.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/recipients/{id}/notifications?status=unread|read|all&limit=&cursor=`.
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
    Ok(HttpResponse::Ok().json(json!({ "items": page.items, "next_cursor": page.next_cursor })))
}

/// `GET /api/v1/recipients/{id}/notifications/unread-count` → `{"unread": n}`.
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
    Ok(HttpResponse::Ok().json(json!({ "unread": unread })))
}

/// `GET /api/v1/notifications/{id}` → the notification with its deliveries.
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
    Ok(HttpResponse::Ok().json(details))
}

/// `POST /api/v1/notifications/{id}/read` → the notification, read.
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
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /api/v1/recipients/{id}/notifications/read-all` → `{"marked": n, "unread": 0}`.
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
    Ok(HttpResponse::Ok().json(json!({ "marked": marked, "unread": 0 })))
}

/// `POST /api/v1/notifications/test` → `{"results": [{"channel", "status", "detail"}]}`.
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
    Ok(HttpResponse::Ok().json(json!({ "results": results })))
}
