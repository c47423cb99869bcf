//! The HTTP adapter's one error type, rendered as RFC 7807 `application/problem+json`.
//!
//! Client errors say what was wrong and name the fields; server errors are generic to the client
//! and logged with their cause chain.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError};
use clairon_application::ports::RepositoryError;
use clairon_domain::ValidationError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error answer (RFC 7807 § 6.1).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Default maximum size of a request body: 256 KiB (`CLAIRON_MAX_BODY_BYTES` sets the one in
/// force, [`crate::http::extract::BodyLimits`]); the size a bare 413 names.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A repository failure as a problem: 503 when the database is unavailable, 500 otherwise.
pub fn repository(e: RepositoryError) -> ApiError {
    match e {
        RepositoryError::Unavailable(cause) => ApiError::Unavailable(cause),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Any unknown route: 404.
///
/// # Errors
/// Always [`ApiError::NotFound`].
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Dotted path of the field in the body (`planning.starts_at`), or the parameter name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl From<ValidationError> for FieldError {
    fn from(e: ValidationError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or a parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no API key or token, or an unknown one.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// 403: the API key is valid but its scope does not allow the route.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the resource does not exist (or is not the caller's).
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists but not with this method; `Allow` lists the methods it takes
    /// (RFC 9110 § 15.5.6).
    #[error("{0} is not allowed here")]
    MethodNotAllowed(String),
    /// 409: the resource is not in a state that allows the request (retrying a sent delivery),
    /// or the request conflicts with one in progress (an `Idempotency-Key` in use).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body exceeds the limit (in bytes).
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: the body is not `application/json`.
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    /// 422: the body is JSON but some fields are invalid; all of them are listed.
    #[error("{detail}")]
    Unprocessable {
        /// Summary.
        detail: String,
        /// The invalid fields.
        errors: Vec<FieldError>,
    },
    /// 429: the API key or recipient token is over its rate limit; answered with
    /// `Retry-After` (RFC 9110 §10.2.3) in whole seconds (RFC 6585 §4).
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    TooManyRequests {
        /// When a request will be accepted again, in seconds (at least 1).
        retry_after_secs: u64,
    },
    /// 503: a dependency (the database) is unavailable; the client may retry.
    #[error("service unavailable")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the cause is logged, never shown.
    #[error("internal error")]
    Internal(String),
    /// 400: some query parameters are invalid; all of them are listed in `errors`.
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidParameters(Vec<FieldError>),
}

impl ApiError {
    /// A 422 naming one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError {
            field: field.into(),
            message: message.into(),
        };
        Self::Unprocessable {
            detail: format!("{}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    /// A 422 listing several invalid fields.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self::Unprocessable { detail, errors }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("bad-request", "Malformed request"),
            Self::Unauthorized => ("unauthorized", "Unauthorized"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::PayloadTooLarge(_) => ("payload-too-large", "Request body too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::Unprocessable { .. } => ("validation", "Invalid request"),
            Self::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal server error"),
            Self::InvalidParameters(_) => ("invalid-parameters", "Invalid query parameters"),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::invalid_fields(vec![e.into()])
    }
}

/// The RFC 7807 body of every error answer, served as `application/problem+json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`https://clairon.dev/problems/validation`, …).
    #[serde(rename = "type")]
    #[schema(format = Uri)]
    pub kind: String,
    /// A short summary of the kind of problem, the same for every occurrence.
    pub title: String,
    /// The HTTP status code, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong with this request (generic for 5xx: the cause is logged, never shown).
    pub detail: String,
    /// For 422 and for 400 `invalid-parameters` (the admin API's query): every invalid field,
    /// each named by its JSON path or parameter name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<FieldError>, required = false)]
    pub errors: Option<Vec<FieldError>>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidParameters(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                "An unexpected error occurred; it has been logged.".to_owned()
            }
            Self::Unavailable(cause) => {
                tracing::error!(cause = %cause, "dependency unavailable");
                "A dependency is unavailable; retry later.".to_owned()
            }
            other => other.to_string(),
        };
        let (slug, title) = self.slug_and_title();
        let errors = match self {
            Self::Unprocessable { errors, .. } | Self::InvalidParameters(errors) => {
                Some(errors.clone())
            }
            _ => None,
        };
        let mut response = HttpResponse::build(status);
        // Also here, not only in `security::security_headers`: a middleware's error is turned
        // into this response after every middleware has run.
        response.insert_header(("X-Content-Type-Options", "nosniff"));
        if matches!(self, Self::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        response.content_type(PROBLEM_JSON).json(Problem {
            kind: format!("https://clairon.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        })
    }
}

/// Whether a handler shaped this answer's body on purpose: a problem, JSON of its own, or a
/// page (`POST /admin/login` answers a refused key with its form again, as a 401 page).
fn is_shaped<B>(response: &HttpResponse<B>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with(PROBLEM_JSON)
                || ct.starts_with("application/json")
                || ct.starts_with("text/html")
        })
}

/// What an error answer that is not already a problem becomes (actix's own 404, 405, 400 for
/// an unreadable path or query, a WebSocket handshake refusal, …).
fn problem_for(status: StatusCode) -> ApiError {
    match status.as_u16() {
        400 => ApiError::BadRequest("the request is malformed".into()),
        401 => ApiError::Unauthorized,
        403 => ApiError::Forbidden("this route is not allowed".into()),
        404 => ApiError::NotFound("no such route".into()),
        405 => ApiError::MethodNotAllowed("this method".into()),
        413 => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        415 => ApiError::UnsupportedMediaType,
        503 => ApiError::Unavailable(format!("answered {status} without a problem body")),
        s if s >= 500 => ApiError::Internal(format!("answered {status} without a problem body")),
        _ => ApiError::BadRequest(
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_owned(),
        ),
    }
}

/// Headers of the original answer that still hold for its problem version.
const KEPT_HEADERS: [header::HeaderName; 3] =
    [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER];

/// The problem version of `original`, when it is an error answer that is not one already.
fn problem_version<B>(original: &HttpResponse<B>) -> Option<HttpResponse> {
    let status = original.status();
    if !(status.is_client_error() || status.is_server_error()) || is_shaped(original) {
        return None;
    }
    let mut problem = problem_for(status).error_response();
    *problem.status_mut() = status;
    for name in KEPT_HEADERS {
        if let Some(value) = original.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    Some(problem)
}

/// Middleware for the whole app: every 4xx and 5xx answer is an RFC 7807 problem. Answers that
/// already are (from [`ApiError`]) pass untouched, and so does the JSON of `/health`'s 503; any other error answer (actix's default 404
/// and 405, extractor errors, a middleware's plain-text refusal) is replaced by the problem of
/// its status, keeping `Allow`, `WWW-Authenticate` and `Retry-After`. An error an inner service
/// returns as `Err` gets the same treatment.
///
/// # Errors
/// The inner service's error, rendered as a problem.
pub async fn problems(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    match next.call(req).await {
        Ok(response) => match problem_version(response.response()) {
            None => Ok(response.map_into_boxed_body()),
            Some(problem) => {
                let (request, _) = response.into_parts();
                Ok(ServiceResponse::new(request, problem))
            }
        },
        Err(error) => match problem_version(&error.error_response()) {
            None => Err(error),
            Some(problem) => Err(actix_web::error::InternalError::from_response(
                error.to_string(),
                problem,
            )
            .into()),
        },
    }
}

/// The `QueryConfig` error handler: a query string that cannot be read (a repeated parameter)
/// is a 400 problem saying why.
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> Error {
    ApiError::BadRequest(format!("malformed query string: {error}")).into()
}

/// The `PathConfig` error handler: a path segment that cannot be decoded names nothing here,
/// so it is a 404 problem.
pub fn path_error(_: actix_web::error::PathError, _: &actix_web::HttpRequest) -> Error {
    ApiError::NotFound("no such resource".into()).into()
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App};

    use super::*;

    #[actix_web::test]
    async fn plain_error_answers_become_problems_keeping_allow_and_shaped_json_stays() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(problems))
                .service(web::resource("/only-get").get(|| async { HttpResponse::Ok().finish() }))
                .route(
                    "/health",
                    web::get().to(|| async {
                        HttpResponse::ServiceUnavailable()
                            .json(serde_json::json!({ "status": "degraded" }))
                    }),
                )
                .route(
                    "/text",
                    web::get().to(|| async { HttpResponse::BadRequest().body("nope") }),
                ),
        )
        .await;
        let call = |req: test::TestRequest| test::call_service(&app, req.to_request());

        let wrong_method = call(test::TestRequest::post().uri("/only-get")).await;
        assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong_method.headers().get(header::ALLOW).unwrap(), "GET");
        assert_eq!(
            wrong_method.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
        let body: serde_json::Value = test::read_body_json(wrong_method).await;
        assert_eq!(body["status"], 405, "{body}");

        let text = call(test::TestRequest::get().uri("/text")).await;
        assert_eq!(text.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            text.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );

        let unknown = call(test::TestRequest::get().uri("/nowhere")).await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            unknown.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );

        let health = call(test::TestRequest::get().uri("/health")).await;
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = test::read_body_json(health).await;
        assert_eq!(body["status"], "degraded", "the probe's own JSON is kept");
    }
}
