//! Request body extraction with the API's rules: at most 256 KiB (`CLAIRON_MAX_BODY_BYTES`),
//! nested at most 32 levels deep (`CLAIRON_MAX_JSON_DEPTH`), JSON only (declared as such: no
//! `Content-Type` is a 415 too), no NUL character in any string or key (PostgreSQL cannot store
//! one: refused on both engines alike, naming each place), and errors that name the offending
//! field (`serde_path_to_error` tracks the path while deserialising).

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use clairon_domain::{NotificationId, RecipientId};

use super::problem::{ApiError, FieldError};

pub use super::problem::MAX_BODY_BYTES;

/// Deepest accepted nesting of arrays and objects by default: well above any real request
/// (planning events nest 4 levels), well below serde_json's own recursion limit (128).
pub const MAX_JSON_DEPTH: usize = 32;

/// What a request body may be, given to the app as `web::Data<BodyLimits>` (the defaults apply
/// without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest body, in bytes: beyond, 413.
    pub max_bytes: usize,
    /// Deepest nesting of JSON arrays and objects: beyond, 400.
    pub max_depth: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_BODY_BYTES,
            max_depth: MAX_JSON_DEPTH,
        }
    }
}

impl BodyLimits {
    /// The limits of `req`'s app, or the defaults.
    pub fn of(req: &HttpRequest) -> Self {
        req.app_data::<web::Data<BodyLimits>>()
            .map_or_else(Self::default, |l| *l.get_ref())
    }
}

/// The deepest nesting of arrays and objects in `body`, counted without parsing it (strings and
/// their escapes are skipped), stopping as soon as it exceeds `max`.
pub fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Most places holding a NUL character named in one answer.
const MAX_NUL_FIELDS: usize = 20;

/// Every string value and object key of `body` holding U+0000, named by its path in
/// `serde_path_to_error`'s notation (`recipients[3].name`, `metadata.note`; a key by the path it
/// would have, its NUL written `\u0000`). Empty when there is none, or when `body` is not JSON
/// (the parser says so next).
///
/// JSON can only carry a NUL as the escape `\u0000` (RFC 8259 §7 forbids it raw), so a body
/// without that escape is not parsed here at all.
pub fn nul_fields(body: &[u8]) -> Vec<FieldError> {
    if !body.windows(6).any(|w| w == br"\u0000") {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk_for_nul(&value, &mut String::new(), &mut found);
    found
}

fn walk_for_nul(value: &serde_json::Value, path: &mut String, found: &mut Vec<FieldError>) {
    use serde_json::Value;
    if found.len() >= MAX_NUL_FIELDS {
        return;
    }
    let field = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::String(text) if text.contains('\0') => found.push(FieldError {
            field: field(path),
            message: clairon_domain::error::NUL_REFUSED.to_owned(),
        }),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk_for_nul(item, path, found);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', r"\u0000"));
                if key.contains('\0') && found.len() < MAX_NUL_FIELDS {
                    found.push(FieldError {
                        field: path.clone(),
                        message: format!("this key {}", clairon_domain::error::NUL_REFUSED),
                    });
                }
                walk_for_nul(item, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// A JSON body of type `T`. Malformed JSON, or JSON nested deeper than
/// [`BodyLimits::max_depth`], is a 400; JSON of the wrong shape, or holding a NUL character, is
/// a 422 naming the field; a body over [`BodyLimits::max_bytes`] is a 413; a request without a
/// JSON `Content-Type` (`application/json` or `…+json`) is a 415.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
        let mut payload = payload.take();
        let limits = BodyLimits::of(req);
        let max = limits.max_bytes;
        Box::pin(async move {
            if declared.is_some_and(|n| n > max) {
                return Err(ApiError::PayloadTooLarge(max));
            }
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let mut body = Vec::with_capacity(declared.unwrap_or(1024).min(max));
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|e| ApiError::BadRequest(format!("unreadable body: {e}")))?;
                if body.len() + chunk.len() > max {
                    return Err(ApiError::PayloadTooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            if json_depth_exceeds(&body, limits.max_depth) {
                return Err(ApiError::BadRequest(format!(
                    "body: JSON nested deeper than {} levels",
                    limits.max_depth
                )));
            }
            let nul = nul_fields(&body);
            if !nul.is_empty() {
                return Err(ApiError::invalid_fields(nul));
            }
            parse_json(&body).map(JsonBody)
        })
    }
}

/// Parses `body` as `T`, classifying errors as the API answers them.
///
/// # Errors
/// [`ApiError::BadRequest`] for syntax errors and empty bodies, [`ApiError::Unprocessable`]
/// naming the field for well-formed JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is empty; expected JSON".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // serde reports a missing field at its parent's path: name the field itself.
                let field = match message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.split('`').next())
                {
                    Some(name) if path == "." => name.to_owned(),
                    Some(name) => format!("{path}.{name}"),
                    None if path == "." => "body".to_owned(),
                    None => path,
                };
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                ApiError::invalid(field, message)
            }
            _ => ApiError::BadRequest(format!("malformed JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// The recipient id of a path; an id that cannot exist is a 404, as an unknown one is.
///
/// # Errors
/// [`ApiError::NotFound`] naming it.
pub fn recipient_id(raw: &str) -> Result<RecipientId, ApiError> {
    RecipientId::parse(raw).map_err(|_| ApiError::NotFound(format!("recipient {raw:?} not found")))
}

/// The notification id of a path; an id that cannot exist is a 404, as an unknown one is.
///
/// # Errors
/// [`ApiError::NotFound`] naming it.
pub fn notification_id(raw: &str) -> Result<NotificationId, ApiError> {
    NotificationId::parse(raw)
        .map_err(|_| ApiError::NotFound(format!("notification {raw:?} not found")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        planning: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        title: String,
        starts_at: String,
    }

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::Unprocessable { errors, .. } => errors[0].field.clone(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(!json_depth_exceeds(br#"{"a":[{"b":1}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[\"[[["}"#, 1));
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(json_depth_exceeds(deep.as_bytes(), MAX_JSON_DEPTH));
    }

    #[test]
    fn every_string_and_key_holding_a_nul_is_named_by_its_path() {
        let body = br#"{"recipients":[{"id":"a"},{"id":"b","name":"Eve\u0000"}],
                        "metadata":{"note":"x\u0000y","k\u0000":1,"ok":"\\u0000"}}"#;
        let fields: Vec<String> = nul_fields(body).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["metadata.k\\u0000", "metadata.note", "recipients[1].name"],
            "each value and key holding U+0000, and not an escaped backslash followed by u0000"
        );
        assert!(
            nul_fields(br#"{"title":"Salle B"}"#).is_empty(),
            "nothing to name without a NUL"
        );
    }

    #[test]
    fn a_syntax_error_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Outer>(b"{\"planning\": "),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Outer>(b"  "),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_missing_nested_field_is_named_by_its_full_path() {
        let err = parse_json::<Outer>(br#"{"planning": {"title": "Carmen"}}"#).unwrap_err();
        assert_eq!(field_of(err), "planning.starts_at");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        let err =
            parse_json::<Outer>(br#"{"planning": {"title": 3, "starts_at": "x"}}"#).unwrap_err();
        assert_eq!(field_of(err), "planning.title");
    }
}
