//! What a Slack message says: [`compose_slack`] turns one delivery of a notification into the
//! [`SlackMessage`] the [`SlackSender`](crate::ports::SlackSender) lays out as Block Kit blocks.
//!
//! Limits are Block Kit's (<https://api.slack.com/reference/block-kit/blocks>): a `header`'s
//! text at most 150 characters, a `section`'s 3,000, a button's text 75 and its URL 3,000.
//! Texts Slack reads as `mrkdwn` (the fallback `text`, the section, the context) are escaped
//! ([`escape_mrkdwn`]); the header is `plain_text` and is not.

use clairon_domain::formatting::format_datetime;
use clairon_domain::slack::{escape_mrkdwn, fit_chars};
use clairon_domain::{DeliveryId, Locale, Notification, Recipient, SlackWebhookUrl, TimeZone};
use serde_json::Value;

use crate::dispatch::{default_action_label, dispatch_context};
use crate::ports::{SlackButton, SlackMessage, TemplateError, TemplateRenderer};

/// Longest `header` text, in characters (Block Kit).
pub const SLACK_HEADER_MAX: usize = 150;
/// Longest `section` text, and the fallback `text`, in characters (Block Kit).
pub const SLACK_SECTION_MAX: usize = 3000;
/// Longest button text, in characters (Block Kit).
pub const SLACK_BUTTON_MAX: usize = 75;
/// Longest button URL, in characters (Block Kit); a longer `action_url` gets no button.
pub const SLACK_URL_MAX: usize = 3000;

/// The Slack message of one delivery of `notification` to `url`, written in `locale`: the
/// title as the header, the `slack.txt` template's render as the section, the local time (in
/// the planning's zone, else the recipient's, else UTC) with the kind and event type as the
/// context, and a button to the `action_url` when there is one.
///
/// # Errors
/// [`TemplateError`] when no template applies or it fails.
pub fn compose_slack(
    templates: &dyn TemplateRenderer,
    delivery_id: DeliveryId,
    notification: &Notification,
    recipient: &Recipient,
    url: SlackWebhookUrl,
    locale: Locale,
) -> Result<SlackMessage, TemplateError> {
    let context = dispatch_context(notification, recipient, locale);
    let content = templates.render_slack(&notification.event_type, locale, &context)?;
    let zone = notification
        .metadata
        .get("timezone")
        .and_then(Value::as_str)
        .and_then(|z| TimeZone::parse(z).ok())
        .or(recipient.timezone)
        .unwrap_or(TimeZone::UTC);
    let when = format_datetime(notification.created_at, zone, locale);
    let title = notification.title.as_str();
    let button = notification
        .action_url
        .as_ref()
        .filter(|u| u.as_str().chars().count() <= SLACK_URL_MAX)
        .map(|u| SlackButton {
            label: fit_chars(
                notification
                    .action_label
                    .as_ref()
                    .map_or(default_action_label(locale), |l| l.as_str()),
                SLACK_BUTTON_MAX,
            ),
            url: u.as_str().to_owned(),
        });
    Ok(SlackMessage {
        delivery_id,
        url,
        text: fit_chars(
            &escape_mrkdwn(&format!("{title}\n{}", notification.body.as_str())),
            SLACK_SECTION_MAX,
        ),
        title: fit_chars(title, SLACK_HEADER_MAX),
        body: fit_chars(&content.mrkdwn, SLACK_SECTION_MAX),
        context: escape_mrkdwn(&format!(
            "{when} · {} · {}",
            notification.kind.as_str(),
            notification.event_type.as_str()
        )),
        button,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockTemplateRenderer, SlackContent};
    use crate::test_support::{notification, recipient};
    use clairon_domain::{ActionUrl, Title};

    fn renderer() -> MockTemplateRenderer {
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_slack().returning(|_, _, _| {
            Ok(SlackContent {
                mrkdwn: "*Rendered* &lt;body&gt;".into(),
            })
        });
        templates
    }

    #[test]
    fn the_message_has_the_title_as_header_the_render_as_section_and_the_link_as_button() {
        let mut n = notification("n-1", "artist-0001");
        n.title = Title::parse("Répétition <générale> & co").unwrap();
        n.action_url = Some(ActionUrl::parse("https://app.example.org/p/1?a=1&b=2").unwrap());
        let url = SlackWebhookUrl::parse("https://hooks.slack.com/services/T/B/x").unwrap();
        let message = compose_slack(
            &renderer(),
            DeliveryId::parse("d-1").unwrap(),
            &n,
            &recipient("artist-0001"),
            url,
            Locale::Fr,
        )
        .unwrap();
        assert_eq!(
            message.title, "Répétition <générale> & co",
            "plain_text: unescaped"
        );
        assert!(
            message
                .text
                .starts_with("Répétition &lt;générale&gt; &amp; co\n"),
            "{}",
            message.text
        );
        assert_eq!(message.body, "*Rendered* &lt;body&gt;");
        assert!(
            message.context.contains(n.event_type.as_str()),
            "{}",
            message.context
        );
        let button = message.button.expect("an action_url makes a button");
        assert_eq!(button.url, "https://app.example.org/p/1?a=1&b=2");
        assert_eq!(button.label, "Ouvrir");
    }

    #[test]
    fn a_long_title_is_cut_to_the_header_limit() {
        let mut n = notification("n-1", "artist-0001");
        n.title = Title::parse(&"x".repeat(190)).unwrap();
        let message = compose_slack(
            &renderer(),
            DeliveryId::parse("d-1").unwrap(),
            &n,
            &recipient("artist-0001"),
            SlackWebhookUrl::parse("https://hooks.slack.com/services/T/B/x").unwrap(),
            Locale::En,
        )
        .unwrap();
        assert_eq!(message.title.chars().count(), SLACK_HEADER_MAX);
        assert!(message.button.is_none(), "no action_url, no button");
    }
}
