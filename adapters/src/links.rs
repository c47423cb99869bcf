//! The links Clairon writes that point back at itself: [`PublicUrl`] (`CLAIRON_PUBLIC_URL`,
//! the base of every one of them), and the signed one-click unsubscribe link of an email
//! ([`UnsubscribeTokens`], [`SignedUnsubscribeLinks`], RFC 8058).
//!
//! An unsubscribe token names a recipient and an event type and is signed with HMAC-SHA256
//! (RFC 2104): `base64url(payload) "." base64url(mac)` (RFC 4648 §5, no padding), where
//! `payload` is `{recipient_id}\n{event_type}` and `mac` is HMAC-SHA256 of the payload under a
//! key derived from the service's token secret (`CLAIRON_TOKEN_SECRET`) and the label
//! [`UNSUBSCRIBE_KEY_LABEL`]. Checking one needs no storage, and it never expires: a link in an
//! email from years ago still works (RFC 8058 §3.1 asks for a link that keeps working), until
//! the secret changes. The derived key is the domain separation: recipient tokens (JWT HS256)
//! are signed with the secret itself over `header.payload`, so neither can be passed off as
//! the other.
//!
//! It knows nothing of HTTP routes beyond the path `/unsubscribe/{token}` it writes, nor of
//! preferences: what a verified token does is the route's business.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clairon_application::ports::UnsubscribeLinks;
use clairon_domain::{EventType, RecipientId};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The label the unsubscribe key is derived with: `key = HMAC-SHA256(secret, label)`. A new
/// label (`…/v2`) would void every link sent so far.
pub const UNSUBSCRIBE_KEY_LABEL: &[u8] = b"clairon/unsubscribe-link/v1";

/// The path of the one-click unsubscribe route, below [`PublicUrl`].
pub const UNSUBSCRIBE_PATH: &str = "/unsubscribe/";

/// Bytes of an HMAC-SHA256 tag.
const MAC_BYTES: usize = 32;

/// The longest token accepted, in characters: the longest payload (a 128-character recipient
/// id, a newline, a 64-character event type) and the tag, in base64url, with the dot.
pub const MAX_TOKEN_CHARS: usize = (RecipientId::MAX_LEN + 1 + 64).div_ceil(3) * 4 + 1 + 43;

/// The absolute URL Clairon is reached at from outside (`CLAIRON_PUBLIC_URL`): an `http` or
/// `https` URL with a host, optionally a path (a reverse proxy's prefix), no user
/// information, query or fragment; kept without its trailing `/`, so links are `{base}{path}`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

/// Why a [`PublicUrl`] was refused; its text completes "CLAIRON_PUBLIC_URL …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublicUrlError(String);

impl PublicUrl {
    /// Parses `raw` (WHATWG URL parsing, as browsers do: `HTTPS://Host` becomes
    /// `https://host`).
    ///
    /// # Errors
    /// [`PublicUrlError`] when `raw` is not an absolute `http(s)` URL with a host, or has user
    /// information, a query or a fragment.
    pub fn parse(raw: &str) -> Result<Self, PublicUrlError> {
        let refuse = |why: &str| Err(PublicUrlError(format!("{raw:?} {why}")));
        let Ok(url) = url::Url::parse(raw.trim()) else {
            return refuse("is not an absolute URL (such as https://notify.example.org)");
        };
        if !matches!(url.scheme(), "http" | "https") {
            return refuse("must be an http or https URL");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return refuse("has no host");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("must not hold a user name or password");
        }
        if url.query().is_some() {
            return refuse("must not have a query (?…): links are written below it");
        }
        if url.fragment().is_some() {
            return refuse("must not have a fragment (#…): links are written below it");
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The URL, without a trailing `/` (`https://notify.example.org/clairon`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` (which starts with `/`) below this URL.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl fmt::Debug for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicUrl").field(&self.0).finish()
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who and what a valid unsubscribe token is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeSubject {
    /// The recipient whose email it switches off.
    pub recipient_id: RecipientId,
    /// The event type whose email it switches off.
    pub event_type: EventType,
}

/// Why a token was refused. The route answers both the same way (404): a forger learns
/// nothing from the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUnsubscribeToken {
    /// Not `payload.mac` in base64url, or a payload that names no recipient and event type.
    #[error("not an unsubscribe token")]
    Malformed,
    /// Well formed, but the tag is not this service's for that payload (altered, truncated,
    /// or signed with another secret).
    #[error("the unsubscribe token's signature does not match")]
    Forged,
}

/// Signs and checks unsubscribe tokens (see the module docs for the format).
#[derive(Clone)]
pub struct UnsubscribeTokens {
    key: [u8; MAC_BYTES],
}

impl fmt::Debug for UnsubscribeTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnsubscribeTokens(<key redacted>)")
    }
}

impl UnsubscribeTokens {
    /// Tokens signed with a key derived from `secret` (the bytes of `CLAIRON_TOKEN_SECRET`, or
    /// the process's random secret) and [`UNSUBSCRIBE_KEY_LABEL`].
    pub fn new(secret: &[u8]) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any size");
        derive.update(UNSUBSCRIBE_KEY_LABEL);
        Self {
            key: derive.finalize().into_bytes().into(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any size")
    }

    /// The token of `recipient`'s emails of `event_type`: URL-safe characters and one `.`.
    pub fn issue(&self, recipient: &RecipientId, event_type: &EventType) -> String {
        let payload = format!("{}\n{}", recipient.as_str(), event_type.as_str());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks `token` (in constant time for the tag) and reads who and what it names.
    ///
    /// # Errors
    /// [`InvalidUnsubscribeToken::Malformed`] for anything that is not a token;
    /// [`InvalidUnsubscribeToken::Forged`] when its tag does not match its payload under this
    /// key.
    pub fn verify(&self, token: &str) -> Result<UnsubscribeSubject, InvalidUnsubscribeToken> {
        use InvalidUnsubscribeToken::{Forged, Malformed};
        if token.len() > MAX_TOKEN_CHARS {
            return Err(Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Malformed)?;
        if tag.len() != MAC_BYTES {
            return Err(Malformed);
        }
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| Forged)?;
        // Signed by us, so well formed unless the rules of ids changed since.
        let text = std::str::from_utf8(&payload).map_err(|_| Malformed)?;
        let (recipient, event_type) = text.split_once('\n').ok_or(Malformed)?;
        Ok(UnsubscribeSubject {
            recipient_id: RecipientId::parse(recipient).map_err(|_| Malformed)?,
            event_type: EventType::parse(event_type).map_err(|_| Malformed)?,
        })
    }
}

/// The [`UnsubscribeLinks`] port: `{CLAIRON_PUBLIC_URL}/unsubscribe/{token}`.
#[derive(Debug, Clone)]
pub struct SignedUnsubscribeLinks {
    base: PublicUrl,
    tokens: UnsubscribeTokens,
}

impl SignedUnsubscribeLinks {
    /// Links below `base`, signed by `tokens`.
    pub fn new(base: PublicUrl, tokens: UnsubscribeTokens) -> Self {
        Self { base, tokens }
    }
}

impl UnsubscribeLinks for SignedUnsubscribeLinks {
    fn unsubscribe_url(&self, recipient: &RecipientId, event_type: &EventType) -> String {
        self.base.join(&format!(
            "{UNSUBSCRIBE_PATH}{}",
            self.tokens.issue(recipient, event_type)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-token-secret-0123456789abcdef";

    fn zoe() -> RecipientId {
        RecipientId::parse("artist-0001").unwrap()
    }

    fn modified() -> EventType {
        EventType::parse("planning.modified").unwrap()
    }

    fn token() -> String {
        UnsubscribeTokens::new(SECRET).issue(&zoe(), &modified())
    }

    fn parts(token: &str) -> (Vec<u8>, Vec<u8>) {
        let (p, t) = token.split_once('.').unwrap();
        (
            URL_SAFE_NO_PAD.decode(p).unwrap(),
            URL_SAFE_NO_PAD.decode(t).unwrap(),
        )
    }

    fn join(payload: &[u8], tag: &[u8]) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    #[test]
    fn a_token_round_trips_to_its_recipient_and_event_type() {
        let subject = UnsubscribeTokens::new(SECRET).verify(&token()).unwrap();
        assert_eq!(subject.recipient_id, zoe());
        assert_eq!(subject.event_type, modified());
    }

    #[test]
    fn a_token_is_url_safe_and_the_same_every_time() {
        let token = token();
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{token}"
        );
        assert_eq!(
            token,
            self::token(),
            "no expiry, no nonce: links stay valid"
        );
        assert!(token.len() <= MAX_TOKEN_CHARS);
    }

    #[test]
    fn the_longest_ids_still_fit_in_a_token() {
        let id = RecipientId::parse(&"a".repeat(RecipientId::MAX_LEN)).unwrap();
        let ty = EventType::parse(&"b".repeat(64)).unwrap();
        let tokens = UnsubscribeTokens::new(SECRET);
        let token = tokens.issue(&id, &ty);
        assert_eq!(tokens.verify(&token).unwrap().recipient_id, id);
    }

    #[test]
    fn a_payload_altered_to_name_someone_else_is_refused() {
        let (_, tag) = parts(&token());
        let altered = join(b"artist-0002\nplanning.modified", &tag);
        assert_eq!(
            UnsubscribeTokens::new(SECRET).verify(&altered),
            Err(InvalidUnsubscribeToken::Forged)
        );
        let other_type = join(b"artist-0001\nplanning.assigned", &tag);
        assert_eq!(
            UnsubscribeTokens::new(SECRET).verify(&other_type),
            Err(InvalidUnsubscribeToken::Forged)
        );
    }

    #[test]
    fn an_altered_mac_is_refused() {
        let (payload, mut tag) = parts(&token());
        tag[0] ^= 1;
        assert_eq!(
            UnsubscribeTokens::new(SECRET).verify(&join(&payload, &tag)),
            Err(InvalidUnsubscribeToken::Forged)
        );
    }

    #[test]
    fn a_truncated_token_is_refused() {
        let token = token();
        let tokens = UnsubscribeTokens::new(SECRET);
        for cut in [1, 2, 10, 44, token.len() - 1] {
            assert!(
                tokens.verify(&token[..token.len() - cut]).is_err(),
                "cut {cut}"
            );
        }
        let (payload, _) = token.split_once('.').unwrap();
        assert_eq!(
            tokens.verify(payload),
            Err(InvalidUnsubscribeToken::Malformed),
            "no tag at all"
        );
        assert!(tokens.verify("").is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let theirs =
            UnsubscribeTokens::new(b"another-secret-0123456789abcdefgh").issue(&zoe(), &modified());
        assert_eq!(
            UnsubscribeTokens::new(SECRET).verify(&theirs),
            Err(InvalidUnsubscribeToken::Forged)
        );
    }

    #[test]
    fn a_tag_made_with_the_secret_itself_as_a_jwt_would_be_is_refused() {
        // A recipient token is HMAC-SHA256 under the secret itself: such a tag over the same
        // payload never passes, the unsubscribe key being derived with its own label.
        let payload = b"artist-0001\nplanning.modified";
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        mac.update(payload);
        let tag = mac.finalize().into_bytes();
        assert_eq!(
            UnsubscribeTokens::new(SECRET).verify(&join(payload, &tag)),
            Err(InvalidUnsubscribeToken::Forged)
        );
    }

    #[test]
    fn garbage_is_malformed_and_never_panics() {
        let tokens = UnsubscribeTokens::new(SECRET);
        for garbage in [
            "x",
            ".",
            "..",
            "a.b.c",
            "!!!.???",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            &"a".repeat(MAX_TOKEN_CHARS + 1),
        ] {
            assert!(tokens.verify(garbage).is_err(), "{garbage:?}");
        }
        // Signed but naming no valid recipient: refused all the same.
        let mut mac = tokens.mac();
        mac.update(b"no newline here");
        let tag = mac.finalize().into_bytes();
        assert_eq!(
            tokens.verify(&join(b"no newline here", &tag)),
            Err(InvalidUnsubscribeToken::Malformed)
        );
    }

    #[test]
    fn a_link_is_the_token_below_the_public_url() {
        let links = SignedUnsubscribeLinks::new(
            PublicUrl::parse("https://notify.example.org/clairon/").unwrap(),
            UnsubscribeTokens::new(SECRET),
        );
        assert_eq!(
            links.unsubscribe_url(&zoe(), &modified()),
            format!("https://notify.example.org/clairon/unsubscribe/{}", token())
        );
    }

    #[test]
    fn a_public_url_is_an_absolute_http_url_without_query_or_fragment() {
        assert_eq!(
            PublicUrl::parse("HTTPS://Notify.Example.org/")
                .unwrap()
                .as_str(),
            "https://notify.example.org"
        );
        assert_eq!(
            PublicUrl::parse("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "notify.example.org",
            "/clairon",
            "ftp://notify.example.org",
            "mailto:x@example.org",
            "https://notify.example.org/?a=1",
            "https://notify.example.org/#top",
            "https://user:pw@notify.example.org",
            "",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad:?}");
        }
    }
}
