//! A stand-in for a Web Push service (RFC 8030 §5): a real HTTP server on `127.0.0.1:0` that
//! plays one browser's subscription. Its keys are drawn by Mozilla's `ece` crate, which also
//! decrypts each `aes128gcm` body (RFC 8291); the VAPID JWT (RFC 8292) is checked with OpenSSL
//! (ES256 over the `k` key of the `Authorization: vapid t=…, k=…` header, `aud` = this origin,
//! `exp` in the future and at most 24 h away, `sub` a `mailto:` or `https:` URL). Neither shares
//! code with Clairon's sender. Valid requests are recorded; it answers `201` with a `Location`,
//! or a scripted status.
//!
//! It runs actix-web on a thread of its own (as the Telegram stand-in), stopped when dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// One push message the stand-in accepted, decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedPush {
    /// The `TTL` header, seconds.
    pub ttl: u64,
    /// The `Urgency` header, if sent.
    pub urgency: Option<String>,
    /// The verified claims of the VAPID JWT.
    pub claims: Value,
    /// The decrypted payload, parsed as JSON.
    pub payload: Value,
}

struct State {
    origin: String,
    keys: ece::EcKeyComponents,
    auth: [u8; 16],
    received: Vec<ReceivedPush>,
    rejected: Vec<String>,
    scripted: VecDeque<(u16, Option<u64>)>,
}

/// The push-service stand-in; see the module documentation.
pub struct PushStub {
    endpoint: String,
    p256dh: String,
    auth: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl PushStub {
    /// Starts the stand-in on a free loopback port with a fresh subscription key pair.
    ///
    /// # Panics
    /// When no port can be bound, the thread cannot start or `ece` cannot draw keys.
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("the push stub could not bind a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let (pair, auth) = ece::generate_keypair_and_auth_secret().expect("ece draws keys");
        let p256dh = URL_SAFE_NO_PAD.encode(pair.pub_as_raw().expect("raw public key"));
        let origin = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            origin: origin.clone(),
            keys: pair.raw_components().expect("raw key components"),
            auth,
            received: Vec::new(),
            rejected: Vec::new(),
            scripted: VecDeque::new(),
        }));
        let data = web::Data::from(Arc::clone(&state));
        let handle =
            super::serve_stand_in(format!("push-stub-{port}"), listener, data, answer).await;
        Self {
            endpoint: format!("{origin}/push/subscription-1"),
            p256dh,
            auth: URL_SAFE_NO_PAD.encode(auth),
            state,
            handle,
        }
    }

    /// The subscription's endpoint (`http://127.0.0.1:PORT/push/subscription-1`).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The subscription's `p256dh` key, base64url of the uncompressed point.
    pub fn p256dh(&self) -> String {
        self.p256dh.clone()
    }

    /// The subscription's `auth` secret, base64url of 16 bytes.
    pub fn auth(&self) -> String {
        self.auth.clone()
    }

    /// Every message accepted so far, decrypted.
    pub fn received(&self) -> Vec<ReceivedPush> {
        self.lock().received.clone()
    }

    /// Why each refused request was refused (a bad JWT, a body that does not decrypt).
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// Answers the next valid request with `status` (and `Retry-After: retry_after` seconds
    /// when given) instead of `201`; it is not recorded as received.
    pub fn fail_next(&self, status: u16, retry_after: Option<u64>) {
        self.lock().scripted.push_back((status, retry_after));
    }

    /// Stops the server and waits until it has.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for PushStub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    match check(&req, &body, &state) {
        Err(why) => {
            state.rejected.push(why.clone());
            HttpResponse::BadRequest().body(why)
        }
        Ok(push) => {
            if let Some((status, retry_after)) = state.scripted.pop_front() {
                let mut answer = HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(status)
                        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
                );
                if let Some(seconds) = retry_after {
                    answer.insert_header(("Retry-After", seconds.to_string()));
                }
                return answer.finish();
            }
            state.received.push(push);
            let n = state.received.len();
            HttpResponse::Created()
                .insert_header(("Location", format!("{}/message/{n}", state.origin)))
                .finish()
        }
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn check(req: &HttpRequest, body: &[u8], state: &State) -> Result<ReceivedPush, String> {
    if req.method() != actix_web::http::Method::POST {
        return Err(format!("method {} (RFC 8030 §5: POST)", req.method()));
    }
    if header(req, "content-encoding") != Some("aes128gcm") {
        return Err("Content-Encoding is not aes128gcm (RFC 8291 §4)".into());
    }
    let ttl = header(req, "ttl")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("no TTL header (RFC 8030 §5.2)")?;
    let urgency = header(req, "urgency").map(str::to_owned);
    if let Some(u) = &urgency {
        if !["very-low", "low", "normal", "high"].contains(&u.as_str()) {
            return Err(format!("Urgency {u:?} (RFC 8030 §5.3)"));
        }
    }
    let claims = verify_vapid(
        header(req, "authorization").unwrap_or_default(),
        &state.origin,
    )?;
    let plain = ece::decrypt(&state.keys, &state.auth, body)
        .map_err(|e| format!("the body does not decrypt: {e}"))?;
    let payload = serde_json::from_slice(&plain).map_err(|e| format!("payload not JSON: {e}"))?;
    Ok(ReceivedPush {
        ttl,
        urgency,
        claims,
        payload,
    })
}

/// Checks `vapid t=<jwt>, k=<key>` (RFC 8292 §3) with OpenSSL: ES256 signature by `k`, `aud`
/// the origin, `exp` in the future and at most 24 h ahead, `sub` a `mailto:`/`https:` URL.
fn verify_vapid(authorization: &str, origin: &str) -> Result<Value, String> {
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or("Authorization is not the vapid scheme (RFC 8292 §3)")?;
    let (mut t, mut k) = (None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v);
        } else if let Some(v) = part.strip_prefix("k=") {
            k = Some(v);
        }
    }
    let (t, k) = (t.ok_or("no t= in vapid")?, k.ok_or("no k= in vapid")?);
    let b64 = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| format!("base64url: {e}"))
    };
    let segments: Vec<&str> = t.split('.').collect();
    let [head, claims, signature] = segments[..] else {
        return Err("the JWT has not three segments".into());
    };
    let header: Value = serde_json::from_slice(&b64(head)?).map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" {
        return Err(format!("JWT alg {} (RFC 8292 §2: ES256)", header["alg"]));
    }
    let signature = b64(signature)?;
    if signature.len() != 64 {
        return Err("ES256 signature is not 64 bytes".into());
    }
    let openssl_err = |e: openssl::error::ErrorStack| e.to_string();
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
        .map_err(openssl_err)?;
    let mut ctx = openssl::bn::BigNumContext::new().map_err(openssl_err)?;
    let point = openssl::ec::EcPoint::from_bytes(&group, &b64(k)?, &mut ctx)
        .map_err(|e| format!("k is not a P-256 point: {e}"))?;
    let key = openssl::ec::EcKey::from_public_key(&group, &point).map_err(openssl_err)?;
    let r = openssl::bn::BigNum::from_slice(&signature[..32]).map_err(openssl_err)?;
    let s = openssl::bn::BigNum::from_slice(&signature[32..]).map_err(openssl_err)?;
    let sig = openssl::ecdsa::EcdsaSig::from_private_components(r, s).map_err(openssl_err)?;
    let digest = openssl::sha::sha256(format!("{head}.{claims}").as_bytes());
    if !sig.verify(&digest, &key).map_err(openssl_err)? {
        return Err("the VAPID signature does not verify with k".into());
    }
    let claims: Value = serde_json::from_slice(&b64(claims)?).map_err(|e| e.to_string())?;
    if claims["aud"] != origin {
        return Err(format!("aud {} is not {origin}", claims["aud"]));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let exp = claims["exp"].as_u64().ok_or("no numeric exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within 24 h from now {now}"));
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
        return Err(format!("sub {sub:?} is not mailto: or https:"));
    }
    Ok(claims)
}
