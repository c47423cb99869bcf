//! A recipient's inbox read with an API key: `GET /api/v1/recipients/{id}/notifications`,
//! `…/unread-count`, `POST …/read-all`. The same reads for the recipient themself (a recipient
//! token) are `http::me::rest`, which calls the shared functions here.

use actix_web::{web, HttpResponse};
use clairon_application::commands::MarkAllNotificationsRead;
use clairon_application::ports::ReadFilter;
use clairon_application::queries::{
    ListNotifications, ListNotificationsError, UnreadCount, UnreadCountError,
};
use clairon_domain::RecipientId;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::extract::recipient_id;
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::schema::params::{InboxFilter, RecipientPath};
use crate::http::schema::responses::{
    MarkedAllRead, NotificationPage, NotificationResponse, UnreadCountResponse,
};
use crate::http::state::Handlers;

type Data = web::Data<Handlers>;

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
pub(crate) async fn list_for(
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
pub(crate) async fn unread_for(
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
pub(crate) async fn mark_all_for(
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

/// Registers a recipient's inbox, read with an API key, in the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/recipients/{id}/notifications").route(scoped!(
            get,
            require_read,
            list_notifications
        )),
    )
    .service(
        web::resource("/recipients/{id}/notifications/unread-count").route(scoped!(
            get,
            require_read,
            unread_count
        )),
    )
    .service(
        web::resource("/recipients/{id}/notifications/read-all").route(scoped!(
            post,
            require_read,
            mark_all_read
        )),
    );
}
