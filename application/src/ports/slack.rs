//! The Slack port: [`SlackSender`] posts one message to a recipient's incoming webhook.

use async_trait::async_trait;
use clairon_domain::{DeliveryId, SlackWebhookUrl};

use super::SendOutcome;

/// The call-to-action button of a Slack message (a Block Kit `button` element with a `url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackButton {
    /// Button text, plain (at most 75 characters: Block Kit's limit for a button's text).
    pub label: String,
    /// URL the button opens (at most 3,000 characters).
    pub url: String,
}

/// A Slack message, rendered, ready to post: the sender lays it out as Block Kit blocks
/// (`header`, `section`, `context`, `actions`) with `text` as the notification fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackMessage {
    /// The delivery it belongs to; the pacing ticket.
    pub delivery_id: DeliveryId,
    /// The recipient's incoming-webhook URL. Never logged: it is the credential.
    pub url: SlackWebhookUrl,
    /// The fallback shown in notifications and by clients without blocks: the title, then the
    /// body, `mrkdwn`-escaped (`&amp; &lt; &gt;`), at most 3,000 characters.
    pub text: String,
    /// The `header` block's text: the notification's title, plain (no escaping: a
    /// `plain_text` object), at most 150 characters.
    pub title: String,
    /// The `section` block's text: the `slack.txt` template's render, `mrkdwn`, every value
    /// escaped, at most 3,000 characters.
    pub body: String,
    /// The `context` block's text, `mrkdwn`, escaped: when (the recipient's local time) and
    /// what (the notification's kind and event type).
    pub context: String,
    /// The `actions` block's button, when the notification has an `action_url`.
    pub button: Option<SlackButton>,
}

/// Posts messages to Slack incoming webhooks.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SlackSender: Send + Sync {
    /// Posts `message` as JSON to its webhook URL. MUST classify answers (Slack, "Handling
    /// errors" of incoming webhooks): `200` with body `ok` is [`SendOutcome::Sent`]; `429` is
    /// [`SendOutcome::RateLimited`] with `Retry-After` (seconds); `404`, `410`, and a body
    /// `no_service`, `channel_not_found` or `invalid_token` (whatever the status: Slack answers
    /// them with 403/404/410) are [`SendOutcome::Permanent`] with a cause starting with
    /// [`SLACK_GONE`] (the dispatcher then marks the recipient's Slack unreachable until the URL
    /// changes); `5xx`, timeouts and network errors are [`SendOutcome::Transient`]; any other
    /// answer is [`SendOutcome::Permanent`]. A destination paced (1 message/s per webhook URL)
    /// is [`SendOutcome::Paced`], unsent. Never panics; never logs nor returns the URL.
    async fn send(&self, message: &SlackMessage) -> SendOutcome;
}

/// How a [`SlackSender`]'s cause starts when the webhook is gone for good (revoked, channel
/// archived or deleted, app uninstalled).
pub const SLACK_GONE: &str = "slack webhook gone";
