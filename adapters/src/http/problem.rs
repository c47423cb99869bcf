//! The HTTP adapter's one error type, rendered as RFC 7807 `application/problem+json`.
//!
//! Client errors say what was wrong and name the fields; server errors are generic to the client
//! and logged with their cause chain.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use clairon_domain::ValidationError;
use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The RFC 7807 body.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
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
                Some(errors.as_slice())
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
        response
            .content_type("application/problem+json")
            .json(Problem {
                kind: format!("https://clairon.dev/problems/{slug}"),
                title,
                status: status.as_u16(),
                detail,
                errors,
            })
    }
}
