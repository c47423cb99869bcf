//! The dashboard's sessions: opened by `POST /admin/login` with an admin API key, held in this
//! process, and checked by the dashboard's pages and POST routes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest};
use clairon_domain::ApiScope;

use crate::http::credentials::api_keys::{bearer, ApiKeys};
use crate::http::middleware::rate_limit::{admit_credential, refuse_credential, Credential};
use crate::http::problem::ApiError;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "clairon_admin";
/// How long a dashboard session lasts (8 h), whatever happens meanwhile.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Header the dashboard's script sends with every POST: a cross-site form cannot set it, and a
/// cross-site `fetch` that does is refused by the browser's preflight.
const CSRF_HEADER: &str = "x-clairon-admin";

/// Dashboard sessions, held in this process: a random id → when it was opened. A session
/// opened on one process is unknown to the others (log in again, or keep a client on one
/// process).
#[derive(Clone, Default)]
pub struct AdminSessions(Arc<Mutex<HashMap<String, Instant>>>);

impl std::fmt::Debug for AdminSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSessions").finish_non_exhaustive()
    }
}

impl AdminSessions {
    /// Opens a session; returns its id (32 random bytes, hex).
    pub fn open(&self) -> String {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, opened| opened.elapsed() < SESSION_TTL);
        sessions.insert(id.clone(), Instant::now());
        id
    }

    /// Whether `id` names a session opened less than [`SESSION_TTL`] ago.
    pub fn is_valid(&self, id: &str) -> bool {
        let sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(id)
            .is_some_and(|opened| opened.elapsed() < SESSION_TTL)
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// Whether the request may see the dashboard: a live session cookie, or an admin API key in
/// `Authorization: Bearer` (an unknown one counts as a failure of the client address).
///
/// # Errors
/// 429 while the client address is over its failure limit; 503 when the key directory cannot
/// be asked.
pub async fn is_admin(req: &HttpRequest) -> Result<bool, ApiError> {
    let session = session_id(req)
        .zip(req.app_data::<web::Data<AdminSessions>>())
        .is_some_and(|(id, sessions)| sessions.is_valid(&id));
    if session {
        return Ok(true);
    }
    match bearer(req) {
        Some(key) => accepts_key(req, key, Credential::ApiKey).await,
        None => Ok(false),
    }
}

/// The session id in the request's `Cookie` header (RFC 6265 §5.4: `name=value` pairs
/// separated by `; `).
pub fn session_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Whether `key` may open the dashboard: an API key with the `admin` scope, whichever kind —
/// from `CLAIRON_API_KEYS`, generated at first start, or made with `clairon api-keys create
/// --scope admin`. A `send` or `read` key is refused (it is a known key, not a guess, so it is
/// not counted); an unknown or revoked one is counted against the client address as
/// `credential`.
///
/// # Errors
/// 429 while (or once) the client address is over its failure limit; 503 when the key
/// directory cannot be asked.
pub async fn accepts_key(
    req: &HttpRequest,
    key: &str,
    credential: Credential,
) -> Result<bool, ApiError> {
    let Some(keys) = req.app_data::<web::Data<ApiKeys>>() else {
        return Ok(false);
    };
    // A key that proved itself before is not a guess: a blocked address's operators still sign in.
    if !keys.proven(key) {
        admit_credential(req, credential)?;
    }
    match keys.authenticate(key).await? {
        Some(principal) => Ok(principal.scope == ApiScope::Admin),
        None => match refuse_credential(req, credential) {
            ApiError::Unauthorized => Ok(false),
            limited => Err(limited),
        },
    }
}

/// Guards the dashboard's own POST routes: a session (or key), and the [`CSRF_HEADER`].
///
/// # Errors
/// 401 problem without them.
pub async fn require_admin_session(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if !is_admin(req.request()).await? || !req.headers().contains_key(CSRF_HEADER) {
        return Err(ApiError::Unauthorized.into());
    }
    next.call(req).await
}
