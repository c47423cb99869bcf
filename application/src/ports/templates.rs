//! Template rendering: turns a notification's context into each channel's text.
//!
//! Templates exist per event type × channel × locale. A renderer falls back to the default
//! locale when the recipient's has no template, and to the `custom` family (title + body) when
//! the event type has none.

use clairon_domain::{EventType, Locale};
use serde_json::Value;

/// In-app content: what the inbox shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InAppContent {
    /// One line.
    pub title: String,
    /// Plain text.
    pub body: String,
}

/// Email content: subject and both alternatives of a multipart/alternative message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContent {
    /// Subject line (one line, trimmed).
    pub subject: String,
    /// text/plain part.
    pub text: String,
    /// text/html part, with every interpolated value HTML-escaped.
    pub html: String,
}

/// Telegram content: HTML parse mode text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramContent {
    /// Text using only the tags Telegram's HTML parse mode allows, values escaped.
    pub html: String,
}

/// SMS content, also sent over WhatsApp: short plain text, without the call-to-action link
/// (the dispatcher appends it whole after cutting the text to fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsContent {
    /// Plain text, not escaped.
    pub text: String,
}

/// Slack content: the `section` block's text in Slack's `mrkdwn`, every interpolated value
/// escaped (`&amp; &lt; &gt;`: [`clairon_domain::slack::escape_mrkdwn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackContent {
    /// `mrkdwn` text, not empty.
    pub mrkdwn: String,
}

/// Why rendering failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// No template for the event type in any locale, and no `custom` fallback either.
    #[error("no template {0}")]
    Missing(String),
    /// The template failed on this context (a missing variable, a filter error).
    #[error("template {name} failed: {reason}")]
    Render {
        /// Template name.
        name: String,
        /// Cause chain.
        reason: String,
    },
}

/// Renders templates. Pure CPU work: synchronous.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TemplateRenderer: Send + Sync {
    /// In-app title and body.
    ///
    /// # Errors
    /// [`TemplateError`] when no template applies or it fails on `context`.
    fn render_in_app(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<InAppContent, TemplateError>;

    /// Email subject, text and HTML.
    ///
    /// # Errors
    /// As [`TemplateRenderer::render_in_app`].
    fn render_email(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<EmailContent, TemplateError>;

    /// Telegram HTML text.
    ///
    /// # Errors
    /// As [`TemplateRenderer::render_in_app`].
    fn render_telegram(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<TelegramContent, TemplateError>;

    /// SMS (and WhatsApp) plain text.
    ///
    /// # Errors
    /// As [`TemplateRenderer::render_in_app`].
    fn render_sms(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<SmsContent, TemplateError>;

    /// Slack `mrkdwn` text (the `section` block of a Slack message).
    ///
    /// # Errors
    /// As [`TemplateRenderer::render_in_app`].
    fn render_slack(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<SlackContent, TemplateError>;
}
