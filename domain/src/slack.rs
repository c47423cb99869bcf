//! Slack incoming webhooks: a recipient's webhook URL, the hosts such a URL may name, and the
//! text rules of Slack's `mrkdwn`.
//!
//! Pure values: the HTTP adapter builds the Block Kit payload and posts it; here are only the
//! rules a URL must follow to be stored and the escaping Slack asks of text
//! (<https://api.slack.com/reference/surfaces/formatting#escaping>, "Escaping text").

use std::fmt;

use crate::error::ValidationError;

/// The host of Slack's incoming webhooks (`https://hooks.slack.com/services/T…/B…/…`).
pub const SLACK_HOOKS_HOST: &str = "hooks.slack.com";

/// The JSON name of the field a Slack webhook URL is given in.
pub const SLACK_URL_FIELD: &str = "slack_webhook_url";

/// Where a recipient's Slack messages are posted: an absolute `http` or `https` URL with a host,
/// no user info, at most 2,048 bytes. The whole URL is the credential (whoever holds it can
/// post to the channel): its `Debug` shows the host only, and it has no `Display` nor serde
/// form. Which hosts are accepted is [`SlackHosts::check`]'s business.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackWebhookUrl(url::Url);

impl SlackWebhookUrl {
    /// Longest URL accepted, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Parses a webhook URL's shape (not its host: see [`SlackHosts::check`]).
    ///
    /// # Errors
    /// [`ValidationError`] on field `slack_webhook_url` when it is not an absolute `http(s)` URL
    /// with a host, holds a user name or password, or is longer than 2,048 bytes. The message
    /// never repeats the value.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        let refuse = |message: &str| ValidationError::new(SLACK_URL_FIELD, message);
        if raw.len() > Self::MAX_LEN {
            return Err(refuse("must be at most 2048 bytes"));
        }
        let url = url::Url::parse(raw).map_err(|_| refuse("is not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("must be an https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refuse("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("must not hold a user name or password"));
        }
        Ok(Self(url))
    }

    /// The full URL, to post to and to store. Never log nor answer it: it is the credential.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The host alone (`hooks.slack.com`, `127.0.0.1`): what logs and errors may name.
    pub fn host(&self) -> String {
        match self.0.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }

    /// Whether the URL is `https`.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
}

impl fmt::Debug for SlackWebhookUrl {
    /// Only the host: the path is the webhook's secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlackWebhookUrl({}/…)", self.host())
    }
}

/// The hosts a Slack webhook URL may name: `hooks.slack.com` over `https` always, and the hosts
/// of `CLAIRON_SLACK_ALLOWED_HOSTS` (a stand-in, a proxy) over `http` or `https`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlackHosts {
    extra: Vec<String>,
}

impl SlackHosts {
    /// The hosts of a comma-separated list (`127.0.0.1, slack-proxy.internal`), besides
    /// `hooks.slack.com`; blanks ignored, compared case-insensitively. IPv6 hosts are written
    /// in brackets (`[::1]`), as URLs write them.
    pub fn parse(list: &str) -> Self {
        let mut extra: Vec<String> = list
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        extra.sort();
        extra.dedup();
        Self { extra }
    }

    /// The hosts listed besides `hooks.slack.com`, sorted.
    pub fn extra(&self) -> &[String] {
        &self.extra
    }

    /// Whether `url` may be posted to.
    ///
    /// # Errors
    /// [`ValidationError`] on field `slack_webhook_url` when its host is `hooks.slack.com` but
    /// its scheme is not `https`, or its host is neither that nor listed.
    pub fn check(&self, url: &SlackWebhookUrl) -> Result<(), ValidationError> {
        let host = url.host().to_ascii_lowercase();
        if self.extra.contains(&host) {
            return Ok(());
        }
        if host == SLACK_HOOKS_HOST {
            return if url.is_https() {
                Ok(())
            } else {
                Err(ValidationError::new(
                    SLACK_URL_FIELD,
                    "must be an https://hooks.slack.com/ URL",
                ))
            };
        }
        Err(ValidationError::new(
            SLACK_URL_FIELD,
            "must be an https://hooks.slack.com/ URL (other hosts need CLAIRON_SLACK_ALLOWED_HOSTS)",
        ))
    }
}

/// `text` escaped for Slack's `mrkdwn` and `plain_text` fallbacks: `&` → `&amp;`, `<` → `&lt;`,
/// `>` → `&gt;`, the three characters Slack gives a meaning to ("Escaping text"); nothing
/// else is touched (Slack shows `&quot;` as typed).
pub fn escape_mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to at most `max` characters (Unicode scalar values, as Slack counts a block's
/// text limit), ending with `…` when cut, never inside an escape `&amp;`/`&lt;`/`&gt;` (the cut
/// goes back before its `&`), trailing whitespace of the cut removed.
pub fn fit_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut kept: String = text.chars().take(max - 1).collect();
    // An entity is at most 5 characters (`&amp;`): a `&` among the last 4 without its `;` is
    // a cut one.
    let tail_start = kept.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    if let Some(amp) = kept[tail_start..].rfind('&') {
        let at = tail_start + amp;
        if !kept[at..].contains(';') {
            kept.truncate(at);
        }
    }
    let trimmed_len = kept.trim_end().len();
    kept.truncate(trimmed_len);
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const HOOK: &str = "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX";

    #[rstest]
    #[case(HOOK, true)]
    #[case("http://127.0.0.1:9000/services/T/B/x", true)]
    #[case("ftp://hooks.slack.com/services/x", false)]
    #[case("hooks.slack.com/services/x", false)]
    #[case("https://user:pw@hooks.slack.com/services/x", false)]
    #[case("not a url", false)]
    fn slack_webhook_urls_are_absolute_http_urls_without_credentials(
        #[case] raw: &str,
        #[case] ok: bool,
    ) {
        let parsed = SlackWebhookUrl::parse(raw);
        assert_eq!(parsed.is_ok(), ok, "{raw:?}");
        if let Err(e) = parsed {
            assert_eq!(e.field, "slack_webhook_url");
            assert!(
                !e.message.contains(raw),
                "the message never repeats the value"
            );
        }
    }

    #[rstest]
    #[case("", HOOK, true)]
    #[case("", "http://hooks.slack.com/services/T/B/x", false)]
    #[case("", "https://hooks.slack.com.evil.example/services/T/B/x", false)]
    #[case("", "https://example.org/services/T/B/x", false)]
    #[case("", "http://127.0.0.1:9000/hook", false)]
    #[case("127.0.0.1", "http://127.0.0.1:9000/hook", true)]
    #[case(" 127.0.0.1 , Proxy.Example.org", "https://proxy.example.org/h", true)]
    #[case("127.0.0.1", "http://127.0.0.2:9000/hook", false)]
    #[case("127.0.0.1", HOOK, true)]
    #[case("[::1]", "http://[::1]:9/hook", true)]
    fn only_https_hooks_slack_com_is_accepted_unless_a_host_is_listed(
        #[case] list: &str,
        #[case] raw: &str,
        #[case] ok: bool,
    ) {
        let url = SlackWebhookUrl::parse(raw).unwrap();
        let checked = SlackHosts::parse(list).check(&url);
        assert_eq!(checked.is_ok(), ok, "{list:?} {raw:?}");
        if let Err(e) = checked {
            assert_eq!(e.field, "slack_webhook_url");
        }
    }

    #[test]
    fn a_slack_webhook_url_shows_only_its_host_in_debug() {
        let url = SlackWebhookUrl::parse(HOOK).unwrap();
        assert_eq!(format!("{url:?}"), "SlackWebhookUrl(hooks.slack.com/…)");
        assert_eq!(url.expose(), HOOK);
    }

    #[rstest]
    #[case("Tom & Jerry <3 > all", "Tom &amp; Jerry &lt;3 &gt; all")]
    #[case(
        "<!channel> <@U123> <https://x|y>",
        "&lt;!channel&gt; &lt;@U123&gt; &lt;https://x|y&gt;"
    )]
    #[case("*bold* _it_ \"quoted\" 'single'", "*bold* _it_ \"quoted\" 'single'")]
    #[case("déjà &amp;", "déjà &amp;amp;")]
    fn mrkdwn_escapes_ampersand_and_angle_brackets_only(#[case] raw: &str, #[case] escaped: &str) {
        assert_eq!(escape_mrkdwn(raw), escaped);
    }

    #[test]
    fn a_long_text_is_cut_to_its_limit_with_an_ellipsis_never_inside_an_escape() {
        assert_eq!(fit_chars("short", 150), "short");
        let cut = fit_chars(&"é".repeat(200), 150);
        assert_eq!(cut.chars().count(), 150);
        assert!(cut.ends_with('…'));
        // "aaaa&amp;" cut to 8: the kept 7 would end in "&am", so the cut goes before the '&'.
        assert_eq!(fit_chars("aaaa&amp;bbbb", 8), "aaaa…");
        assert_eq!(fit_chars("aaaa&amp;bbbb", 11), "aaaa&amp;b…");
        assert_eq!(fit_chars("word word word", 7), "word w…");
        assert_eq!(fit_chars("word    word", 7), "word…");
    }
}
