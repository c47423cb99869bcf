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
    /// A Slack incoming-webhook message.
    Slack,
    /// A signed HTTP webhook (Standard Webhooks 1.0).
    Webhook,
    /// A text message (Twilio's Messages API).
    Sms,
    /// A WhatsApp message (Twilio's Messages API).
    #[serde(rename = "whatsapp")]
    WhatsApp,
    /// A browser push message (RFC 8030, VAPID RFC 8292, encrypted per RFC 8291), one delivery
    /// per push subscription of the recipient.
    WebPush,
}

impl Channel {
    /// Every channel, in the order deliveries are listed.
    pub const ALL: [Channel; 8] = [
        Channel::InApp,
        Channel::Email,
        Channel::Telegram,
        Channel::Slack,
        Channel::Webhook,
        Channel::Sms,
        Channel::WhatsApp,
        Channel::WebPush,
    ];

    /// The wire name (`in_app`, `email`, `telegram`, `slack`, `webhook`, `sms`, `whatsapp`,
    /// `web_push`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InApp => "in_app",
            Self::Email => "email",
            Self::Telegram => "telegram",
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Sms => "sms",
            Self::WhatsApp => "whatsapp",
            Self::WebPush => "web_push",
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
            "slack" => Ok(Self::Slack),
            "webhook" => Ok(Self::Webhook),
            "sms" => Ok(Self::Sms),
            "whatsapp" => Ok(Self::WhatsApp),
            "web_push" => Ok(Self::WebPush),
            other => Err(ValidationError::new(
                "channels",
                format!(
                    "unknown channel {other:?}; known: {}",
                    KNOWN_CHANNELS.join(", ")
                ),
            )),
        }
    }
}

impl Channel {
    /// Parses a fallback chain (`fallback` of a notification, an event or a routing rule):
    /// channel names in the order they are tried. `field` is the list's JSON name; each bad
    /// entry is named `field[i]`.
    ///
    /// # Errors
    /// Every [`ValidationError`] found: an unknown name, a channel named twice, `in_app` (the
    /// inbox always takes a notification, so it can never be what a chain falls back to).
    pub fn parse_fallback(
        field: &str,
        names: &[String],
    ) -> Result<Vec<Self>, Vec<ValidationError>> {
        let mut chain: Vec<Self> = Vec::with_capacity(names.len());
        let mut errors = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let at = format!("{field}[{i}]");
            match Self::parse(name) {
                Ok(Self::InApp) => errors.push(ValidationError::new(
                    at,
                    "in_app cannot be in a fallback chain: the inbox always takes the notification",
                )),
                Ok(c) if chain.contains(&c) => errors.push(ValidationError::new(
                    at,
                    format!("{c} is already in the chain"),
                )),
                Ok(c) => chain.push(c),
                Err(e) => errors.push(ValidationError::new(at, e.message)),
            }
        }
        if errors.is_empty() {
            Ok(chain)
        } else {
            Err(errors)
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every channel name preferences and consents may name: the channels Clairon delivers on today
/// ([`Channel`]) and those announced for later (`slack`, `webhook`, `sms`, `whatsapp`,
/// `web_push`), so a consent for SMS can be recorded before SMS is sent.
pub const KNOWN_CHANNELS: [&str; 8] = [
    "in_app", "email", "telegram", "slack", "webhook", "sms", "whatsapp", "web_push",
];

/// A channel name of the catalogue [`KNOWN_CHANNELS`]: what a preference or a consent names.
/// Ordered as the catalogue; serialised as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(u8);

impl ChannelName {
    /// The in-app channel, which no preference can switch off.
    pub const IN_APP: Self = Self(0);

    /// Parses a name of the catalogue, reporting an unknown one on `field`.
    ///
    /// # Errors
    /// [`ValidationError`] on `field` for a name not in [`KNOWN_CHANNELS`].
    pub fn parse_as(field: &str, raw: &str) -> Result<Self, ValidationError> {
        KNOWN_CHANNELS
            .iter()
            .position(|known| *known == raw)
            .and_then(|i| u8::try_from(i).ok())
            .map(Self)
            .ok_or_else(|| {
                ValidationError::new(
                    field,
                    format!(
                        "unknown channel {raw:?}; known: {}",
                        KNOWN_CHANNELS.join(", ")
                    ),
                )
            })
    }

    /// Parses a name of the catalogue.
    ///
    /// # Errors
    /// [`ValidationError`] on field `channel` for a name not in [`KNOWN_CHANNELS`].
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::parse_as("channel", raw)
    }

    /// The name (`in_app`, `sms`, ...).
    pub fn as_str(self) -> &'static str {
        KNOWN_CHANNELS[usize::from(self.0)]
    }

    /// The delivery channel of this name, when Clairon delivers on it.
    pub fn channel(self) -> Option<Channel> {
        Channel::parse(self.as_str()).ok()
    }

    /// Parses a comma-separated list such as `sms,whatsapp,web_push` (the form of
    /// `CLAIRON_CONSENT_REQUIRED`); blanks are ignored, repeats kept once, sorted.
    ///
    /// # Errors
    /// [`ValidationError`] on field `channels` for an unknown name.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, ValidationError> {
        let mut names = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Self::parse_as("channels", s))
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        names.dedup();
        Ok(names)
    }
}

impl From<Channel> for ChannelName {
    fn from(channel: Channel) -> Self {
        // Channel's variants are the catalogue's first entries, in the same order.
        Self(channel as u8)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChannelName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChannelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
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
        let err = ChannelSet::parse_list("in_app,pigeon").unwrap_err();
        assert_eq!(err.field, "channels");
        assert!(err.message.contains("\"pigeon\""), "{}", err.message);
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

    #[test]
    fn every_delivery_channel_has_its_catalogue_name() {
        for channel in Channel::ALL {
            let name = ChannelName::from(channel);
            assert_eq!(name.as_str(), channel.as_str());
            assert_eq!(name.channel(), Some(channel));
        }
        assert_eq!(
            ChannelName::parse("web_push").unwrap().channel(),
            Some(Channel::WebPush)
        );
        assert_eq!(Channel::WhatsApp.as_str(), "whatsapp");
        assert_eq!(
            serde_json::to_value(Channel::WhatsApp).unwrap(),
            serde_json::json!("whatsapp")
        );
        assert_eq!(ChannelName::IN_APP, ChannelName::from(Channel::InApp));
    }

    #[test]
    fn a_channel_name_outside_the_catalogue_is_refused_on_its_field() {
        let err = ChannelName::parse_as("channels.fax", "fax").unwrap_err();
        assert_eq!(err.field, "channels.fax");
        assert_eq!(
            ChannelName::parse_list(" web_push,sms,sms ")
                .unwrap()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            vec!["sms", "web_push"]
        );
    }

    #[test]
    fn a_fallback_chain_keeps_its_order_and_names_each_bad_entry() {
        let names = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            Channel::parse_fallback("fallback", &names(&["telegram", "sms", "email"])).unwrap(),
            vec![Channel::Telegram, Channel::Sms, Channel::Email]
        );
        let errors = Channel::parse_fallback("fallback", &names(&["sms", "fax", "sms", "in_app"]))
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["fallback[1]", "fallback[2]", "fallback[3]"]);
    }
}
