//! Channels: the ways a notification can reach a recipient.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// A delivery channel. New channels (Slack, webhooks, SMS) are added here first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The in-app notification center (inbox, WebSocket, SSE).
    InApp,
    /// Email over SMTP.
    Email,
    /// A Telegram bot message.
    Telegram,
}

impl Channel {
    /// Every channel, in the order deliveries are listed.
    pub const ALL: [Channel; 3] = [Channel::InApp, Channel::Email, Channel::Telegram];

    /// The wire name (`in_app`, `email`, `telegram`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InApp => "in_app",
            Self::Email => "email",
            Self::Telegram => "telegram",
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `channels` for any other name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw.trim() {
            "in_app" => Ok(Self::InApp),
            "email" => Ok(Self::Email),
            "telegram" => Ok(Self::Telegram),
            other => Err(ValidationError::new(
                "channels",
                format!("unknown channel {other:?}; known: in_app, email, telegram"),
            )),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of channels, kept in [`Channel::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelSet(u8);

impl ChannelSet {
    /// Every channel.
    pub fn all() -> Self {
        Channel::ALL.into_iter().collect()
    }

    /// Whether `channel` is in the set.
    pub fn contains(self, channel: Channel) -> bool {
        self.0 & Self::bit(channel) != 0
    }

    /// The channels of both sets.
    #[must_use]
    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether no channel is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The channels, in [`Channel::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Parses a comma-separated list such as `in_app,email` (the form of `CLAIRON_CHANNELS`).
    ///
    /// # Errors
    /// [`ValidationError`] on field `channels` for an unknown name.
    pub fn parse_list(raw: &str) -> Result<Self, ValidationError> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Channel::parse)
            .collect()
    }

    fn bit(channel: Channel) -> u8 {
        1 << (channel as u8)
    }
}

impl FromIterator<Channel> for ChannelSet {
    fn from_iter<I: IntoIterator<Item = Channel>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |acc, c| acc | Self::bit(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_list_parses_into_a_set_in_canonical_order() {
        let set = ChannelSet::parse_list("telegram, in_app").unwrap();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Channel::InApp, Channel::Telegram]
        );
        assert!(!set.contains(Channel::Email));
    }

    #[test]
    fn an_unknown_channel_is_named_in_the_error() {
        let err = ChannelSet::parse_list("in_app,sms").unwrap_err();
        assert_eq!(err.field, "channels");
        assert!(err.message.contains("\"sms\""), "{}", err.message);
    }

    #[test]
    fn intersecting_sets_keeps_common_channels() {
        let enabled = ChannelSet::parse_list("in_app,email").unwrap();
        let wanted = ChannelSet::parse_list("email,telegram").unwrap();
        assert_eq!(
            enabled.intersect(wanted).iter().collect::<Vec<_>>(),
            vec![Channel::Email]
        );
        assert!(ChannelSet::default().is_empty());
    }
}
