//! Topics: `PUT|GET /api/v1/topics/{key}`, `POST /api/v1/topics/{key}/subscribers`,
//! `DELETE /api/v1/topics/{key}/subscribers/{recipient_id}`. Scopes as recipients: `send`
//! writes, `read` reads, `admin` both.

use actix_web::{http::StatusCode, web, HttpResponse};
use clairon_application::commands::{AddTopicMembers, PutTopic, RemoveTopicMember, TopicError};
use clairon_application::ports::Upserted;
use clairon_domain::{RecipientId, TopicKey};

use crate::http::extract::{recipient_id, JsonBody};
use crate::http::problem::{repository, ApiError, FieldError, Problem};
use crate::http::schema::params::TopicPath;
use crate::http::schema::requests::{topic_key, SubscribersBody, TopicBody};
use crate::http::schema::responses::TopicResponse;
use crate::http::state::Handlers;

type Data = web::Data<Handlers>;

fn topic_error(e: TopicError) -> ApiError {
    match e {
        TopicError::UnknownRecipients(ids) => {
            let list: Vec<&str> = ids.iter().map(RecipientId::as_str).collect();
            ApiError::invalid_fields(vec![FieldError {
                field: "recipient_ids".into(),
                message: format!("unknown recipients: {}", list.join(", ")),
            }])
        }
        TopicError::NotFound(key) => ApiError::NotFound(format!("topic {key} not found")),
        TopicError::TooMany { max } => {
            ApiError::invalid("recipient_ids", format!("at most {max} recipients"))
        }
        TopicError::Repository(e) => repository(e),
    }
}

async fn answer(
    handlers: &Handlers,
    key: &TopicKey,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    match handlers.topic_store.get(key).await.map_err(repository)? {
        Some(topic) => Ok(HttpResponse::build(status).json(TopicResponse::from(&topic))),
        None => Err(ApiError::NotFound(format!("topic {key} not found"))),
    }
}

/// `PUT /api/v1/topics/{key}` → 201 created or 200 replaced, with the topic.
#[utoipa::path(
    put, path = "/api/v1/topics/{key}", tag = "topics",
    params(TopicPath),
    request_body = TopicBody,
    responses(
        (status = 201, description = "Created with these members.", body = TopicResponse),
        (status = 200, description = "Its name and every member replaced.", body = TopicResponse),
        (status = 422, description = "Invalid fields (`key`, `name`, `recipient_ids[2]`) or unknown recipients (all listed); nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn put_topic(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<TopicBody>,
) -> Result<HttpResponse, ApiError> {
    let key = topic_key(&path)?;
    let (name, recipient_ids) = body.into_parts()?;
    let outcome = handlers
        .topics
        .put(PutTopic {
            key: key.clone(),
            name,
            recipient_ids,
        })
        .await
        .map_err(topic_error)?;
    let status = match outcome {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    answer(&handlers, &key, status).await
}

/// `GET /api/v1/topics/{key}` → the topic and its members.
#[utoipa::path(
    get, path = "/api/v1/topics/{key}", tag = "topics",
    params(TopicPath),
    responses(
        (status = 200, description = "The topic.", body = TopicResponse),
        (status = 404, description = "No such topic.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn get_topic(handlers: Data, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let key = topic_key(&path)?;
    answer(&handlers, &key, StatusCode::OK).await
}

/// `POST /api/v1/topics/{key}/subscribers` → 200 with the topic, the members added.
#[utoipa::path(
    post, path = "/api/v1/topics/{key}/subscribers", tag = "topics",
    params(TopicPath),
    request_body = SubscribersBody,
    responses(
        (status = 200, description = "Added (those already members stay once).", body = TopicResponse),
        (status = 404, description = "No such topic.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid ids or unknown recipients (all listed); nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn add_subscribers(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SubscribersBody>,
) -> Result<HttpResponse, ApiError> {
    let key = topic_key(&path)?;
    let recipient_ids = body.into_ids()?;
    handlers
        .topics
        .add(AddTopicMembers {
            key: key.clone(),
            recipient_ids,
        })
        .await
        .map_err(topic_error)?;
    answer(&handlers, &key, StatusCode::OK).await
}

/// `DELETE /api/v1/topics/{key}/subscribers/{recipient_id}` → 204.
#[utoipa::path(
    delete, path = "/api/v1/topics/{key}/subscribers/{recipient_id}", tag = "topics",
    params(
        TopicPath,
        ("recipient_id" = String, Path, pattern = r"^(?!\.\.?$)[A-Za-z0-9_\-.:@]{1,128}$", description = "The member to remove."),
    ),
    responses(
        (status = 204, description = "No longer a member (also when they were not one)."),
        (status = 404, description = "No such topic.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn remove_subscriber(
    handlers: Data,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (key, member) = path.into_inner();
    let key = topic_key(&key)?;
    let recipient_id = recipient_id(&member)?;
    handlers
        .topics
        .remove(RemoveTopicMember { key, recipient_id })
        .await
        .map_err(topic_error)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the topic routes in the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/topics/{key}")
            .route(scoped!(put, require_send, put_topic))
            .route(scoped!(get, require_read, get_topic)),
    )
    .service(web::resource("/topics/{key}/subscribers").route(scoped!(
        post,
        require_send,
        add_subscribers
    )))
    .service(
        web::resource("/topics/{key}/subscribers/{recipient_id}").route(scoped!(
            delete,
            require_send,
            remove_subscriber
        )),
    );
}
