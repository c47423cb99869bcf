//! Any domain event: `POST /api/v1/events` (scope `send`, `Idempotency-Key` honoured). The
//! event is published on the in-process bus; the generic listener resolves its recipients
//! (listed, its topics' members, its routing rule's topics' members, each once) and writes one
//! notification each.

use actix_web::{http::StatusCode, web, HttpResponse};
use clairon_application::commands::{
    ContentTooLarge, CreatedNotification, HandleEvent, HandleEventError,
};
use clairon_application::events::PublishError;
use clairon_application::ports::StoredResponse;
use clairon_domain::{RecipientId, TopicKey};

use crate::http::extract::JsonBody;
use crate::http::problem::{repository, ApiError, FieldError, Problem};
use crate::http::schema::params::IdempotencyKeyHeader;
use crate::http::schema::requests::EventBody;
use crate::http::schema::responses::{self, EventAccepted};
use crate::http::state::Handlers;
use crate::idempotency;

type Data = web::Data<Handlers>;

fn publish_error(e: PublishError) -> ApiError {
    match e {
        PublishError::UnknownRecipients(ids) => {
            let list: Vec<&str> = ids.iter().map(RecipientId::as_str).collect();
            ApiError::invalid_fields(vec![FieldError {
                field: "recipient_ids".into(),
                message: format!("unknown recipients: {}", list.join(", ")),
            }])
        }
        PublishError::UnknownTopics(keys) => {
            let list: Vec<&str> = keys.iter().map(TopicKey::as_str).collect();
            ApiError::invalid_fields(vec![FieldError {
                field: "topics".into(),
                message: format!("unknown topics: {}", list.join(", ")),
            }])
        }
        PublishError::NoRecipient => ApiError::invalid_fields(vec![FieldError {
            field: "recipient_ids".into(),
            message: PublishError::NoRecipient.to_string(),
        }]),
        PublishError::TooMany(what) => ApiError::invalid("recipient_ids", what),
        PublishError::TooLarge(e @ ContentTooLarge::Metadata { .. }) => ApiError::invalid(
            "data",
            format!("{e} (CLAIRON_MAX_METADATA_BYTES); keep bulky data on your side and send a reference"),
        ),
        PublishError::TooLarge(e @ ContentTooLarge::Fanout { .. }) => ApiError::invalid(
            "recipient_ids",
            format!("{e} (CLAIRON_MAX_FANOUT_BYTES); split the recipients over several events or send less content"),
        ),
        PublishError::Content(e) => ApiError::invalid_fields(vec![e.into()]),
        PublishError::Repository(e) => repository(e),
        other => ApiError::Internal(other.to_string()),
    }
}

/// `POST /api/v1/events` → 202 with what was created, or 200 with what had been created when
/// the event id was seen before.
#[utoipa::path(
    post, path = "/api/v1/events", tag = "events",
    params(IdempotencyKeyHeader),
    request_body = EventBody,
    responses(
        (status = 202, description = "One notification per recipient reached, written with their deliveries (`skipped` ones name their reason, `not_in_rule: <pattern>` among them).", body = EventAccepted),
        (status = 200, description = "The event id was seen before: nothing new was created (`replayed: true`).", body = EventAccepted),
        (status = 409, description = "A request with this `Idempotency-Key` is in progress.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, unknown recipients or topics (all listed), or an event that reaches nobody (`recipient_ids`); nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn post_event(
    handlers: Data,
    JsonBody(body): JsonBody<EventBody>,
) -> Result<HttpResponse, ApiError> {
    let event = body.into_event()?;
    let (event_id, event_type) = (
        event.event_id.as_str().to_owned(),
        event.event_type.as_str().to_owned(),
    );
    idempotency::answer_with(move |batch| {
        let created: Vec<CreatedNotification> = batch.iter().map(Into::into).collect();
        StoredResponse {
            status: StatusCode::ACCEPTED.as_u16(),
            content_type: Some("application/json".to_owned()),
            body: serde_json::to_string(&EventAccepted {
                event_id,
                event_type,
                replayed: false,
                notifications: responses::created(&created),
            })
            .unwrap_or_default(),
        }
    });
    let handled = handlers
        .handle_event
        .execute(HandleEvent { event })
        .await
        .map_err(|e| match e {
            HandleEventError::Publish(e) => publish_error(e),
            HandleEventError::Repository(e) => repository(e),
        })?;
    let status = if handled.replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(HttpResponse::build(status).json(EventAccepted {
        event_id: handled.event_id.as_str().to_owned(),
        event_type: handled.event_type.as_str().to_owned(),
        replayed: handled.replayed,
        notifications: responses::created(&handled.notifications),
    }))
}

/// Registers `POST /events` in the `/api/v1` scope, with the idempotency middleware.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/events").route(scoped!(
        post,
        require_send,
        post_event,
        crate::http::middleware::idempotency::idempotent
    )));
}
