//! Signed webhooks (Standard Webhooks 1.0): a recipient's endpoint URL and its signing secret.
//!
//! Pure values: the HTTP adapter signs and posts, the SSRF guard resolves names; here are only the
//! rules a value must follow to be stored.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use crate::error::ValidationError;

/// Where a recipient's signed webhooks are posted: an absolute `http` or `https` URL with a host,
/// no user info (credentials in a URL would reach logs), at most 2,048 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// Longest URL accepted, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Parses an endpoint URL.
    ///
    /// # Errors
    /// [`ValidationError`] on field `webhook_url` when it is not an absolute `http(s)` URL with a
    /// host, holds a user name or password, or is longer than 2,048 bytes.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        let refuse = |message: &str| ValidationError::new("webhook_url", message);
        if raw.len() > Self::MAX_LEN {
            return Err(refuse("must be at most 2048 bytes"));
        }
        let url = url::Url::parse(raw).map_err(|e| {
            ValidationError::new("webhook_url", format!("is not an absolute URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("must be an http or https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refuse("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("must not hold a user name or password"));
        }
        Ok(Self(url))
    }

    /// The full URL, to post to and to store. Never log it: its path or query may carry a token.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host alone (`hooks.example.org`, `127.0.0.1`, `[::1]`): what the API shows and logs
    /// may name.
    pub fn host(&self) -> String {
        match self.0.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }

    /// The host as an IP address, when the URL names one literally.
    pub fn literal_ip(&self) -> Option<IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        }
    }

    /// The port to connect to (the scheme's default when none is written).
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(443)
    }

    /// The host name as written (without IPv6 brackets), for name resolution.
    pub fn host_for_lookup(&self) -> String {
        match self.0.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }
}

impl serde::Serialize for WebhookUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for WebhookUrl {
    /// Only the host: the path or query of a webhook URL may carry a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({}/…)", self.host())
    }
}

/// The secret a recipient's webhooks are signed with: `whsec_` then the standard base64 of 24 to
/// 64 random bytes (Standard Webhooks 1.0, "Signature scheme": the key is the base64-decoded part
/// after the prefix). Its `Debug` never shows it, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The prefix Standard Webhooks secrets carry.
    pub const PREFIX: &'static str = "whsec_";
    /// Shortest key accepted, in bytes (192 bits).
    pub const MIN_KEY_BYTES: usize = 24;
    /// Longest key accepted, in bytes (512 bits).
    pub const MAX_KEY_BYTES: usize = 64;

    /// Parses a secret.
    ///
    /// # Errors
    /// [`ValidationError`] on field `webhook_secret` when it does not start with `whsec_`, the
    /// rest is not standard base64, or it decodes to fewer than 24 or more than 64 bytes. The
    /// message never repeats the value.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        let refuse = |message: &str| ValidationError::new("webhook_secret", message);
        let encoded = raw
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| refuse("must start with whsec_"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| refuse("must be whsec_ followed by standard base64"))?;
        if !(Self::MIN_KEY_BYTES..=Self::MAX_KEY_BYTES).contains(&key.len()) {
            return Err(refuse("must encode 24 to 64 bytes after whsec_"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The HMAC-SHA256 key: the bytes the base64 after `whsec_` encodes.
    pub fn key(&self) -> Vec<u8> {
        self.0
            .strip_prefix(Self::PREFIX)
            .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
            .unwrap_or_default()
    }

    /// The secret as written (`whsec_…`), for storage only: never log or answer it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Whether `ip` is one a webhook must not reach unless private targets are allowed: loopback,
/// private (RFC 1918, IPv6 unique local RFC 4193), link-local (RFC 3927, RFC 4291), carrier-grade
/// NAT (RFC 6598), unspecified, broadcast, multicast, documentation and benchmarking ranges, and
/// IPv4 addresses mapped into IPv6 that are any of those (the SSRF guard of issue 12).
pub fn is_private_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4);
            }
            private_v6(v6)
        }
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[rstest]
    #[case("https://hooks.example.org/clairon?t=1", true)]
    #[case("http://127.0.0.1:8080/hook", true)]
    #[case("ftp://example.org/hook", false)]
    #[case("not a url", false)]
    #[case("https://user:pw@example.org/", false)]
    #[case("/relative", false)]
    fn webhook_urls_are_absolute_http_urls(#[case] raw: &str, #[case] ok: bool) {
        let parsed = WebhookUrl::parse(raw);
        assert_eq!(parsed.is_ok(), ok, "{raw:?}");
        if let Err(e) = parsed {
            assert_eq!(e.field, "webhook_url");
        }
    }

    #[test]
    fn a_webhook_url_shows_only_its_host() {
        let url = WebhookUrl::parse("https://hooks.example.org/secret-path?token=abc").unwrap();
        assert_eq!(url.host(), "hooks.example.org");
        let debug = format!("{url:?}");
        assert!(
            !debug.contains("secret-path") && !debug.contains("abc"),
            "{debug}"
        );
        assert_eq!(
            WebhookUrl::parse("http://[::1]:9/x").unwrap().host(),
            "[::1]"
        );
    }

    #[rstest]
    #[case(SECRET, true)]
    #[case("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false)]
    #[case("whsec_not*base64", false)]
    #[case("whsec_c2hvcnQ=", false)]
    fn webhook_secrets_are_whsec_and_24_to_64_bytes(#[case] raw: &str, #[case] ok: bool) {
        let parsed = WebhookSecret::parse(raw);
        assert_eq!(parsed.is_ok(), ok, "{raw:?}");
        if let Err(e) = parsed {
            assert_eq!(e.field, "webhook_secret");
            assert!(
                !e.message.contains(raw),
                "the message never repeats the value"
            );
        }
    }

    #[test]
    fn a_secret_never_shows_in_debug_and_its_key_is_the_decoded_part() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
        assert_eq!(secret.key().len(), 24);
        assert_eq!(secret.expose(), SECRET);
    }

    #[rstest]
    #[case("127.0.0.1", true)]
    #[case("10.1.2.3", true)]
    #[case("172.16.0.1", true)]
    #[case("192.168.1.1", true)]
    #[case("169.254.169.254", true)]
    #[case("100.64.0.1", true)]
    #[case("0.0.0.0", true)]
    #[case("::1", true)]
    #[case("fd00::1", true)]
    #[case("fe80::1", true)]
    #[case("::ffff:127.0.0.1", true)]
    #[case("93.184.216.34", false)]
    #[case("2606:4700::1111", false)]
    fn private_targets_are_recognised(#[case] raw: &str, #[case] private: bool) {
        assert_eq!(is_private_target(raw.parse().unwrap()), private, "{raw}");
    }
}
