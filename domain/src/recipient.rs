//! Recipients: the people Clairon notifies, and how each channel reaches them.
//!
//! A recipient's id is the host application's user id. Every field is a self-validating value
//! object, so a `Recipient` in memory is always a valid one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::channel::{Channel, ChannelSet};
use crate::error::{flatten_controls, single_line_text, ValidationError};
use crate::slack::SlackWebhookUrl;
use crate::webhook::{WebhookSecret, WebhookUrl};

/// The host application's id of a recipient: 1 to 128 characters among `A-Z a-z 0-9 _ - . : @`,
/// other than `.` and `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecipientId(String);

impl RecipientId {
    /// Maximum length in characters.
    pub const MAX_LEN: usize = 128;

    /// Parses a recipient id.
    ///
    /// # Errors
    /// [`ValidationError`] on field `id` when empty, longer than 128 characters, holding
    /// another character than ASCII letters, digits and `_ - . : @`, or when it is `.` or `..`:
    /// those are dot-segments (RFC 3986 §5.2.4), which HTTP clients remove from a URL path, so
    /// a recipient with such an id could never be read, exported or erased.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(ValidationError::new("id", "must be 1 to 128 characters"));
        }
        if is_dot_segment(raw) {
            return Err(ValidationError::new("id", DOT_SEGMENT_REFUSED));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c))
        {
            return Err(ValidationError::new(
                "id",
                "may only hold ASCII letters, digits and _ - . : @",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as the host application knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `raw` is `.` or `..`, the path segments URL resolution removes (RFC 3986 §5.2.4).
pub fn is_dot_segment(raw: &str) -> bool {
    raw == "." || raw == ".."
}

/// Why an id that is `.` or `..` is refused.
pub const DOT_SEGMENT_REFUSED: &str =
    "must not be \".\" or \"..\": URLs drop those path segments (RFC 3986 section 5.2.4)";

impl fmt::Display for RecipientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's display name: 1 to 200 characters, trimmed, on one line (no control character:
/// it becomes the display name of an email's `To` header, RFC 5322 §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `name` when blank, over 200 characters, or holding a control
    /// character (a line break, a tab, NUL…).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        single_line_text("name", raw, 200).map(Self)
    }

    /// Reads a name back from storage: rows written before control characters were refused
    /// have each of them turned into a space rather than failing to load.
    ///
    /// # Errors
    /// [`ValidationError`] on field `name` when what remains is blank or over 200 characters.
    pub fn from_stored(raw: &str) -> Result<Self, ValidationError> {
        Self::parse(&flatten_controls(raw))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address valid under RFC 5322's `addr-spec` (checked by the `email_address` crate),
/// at most 254 bytes (RFC 5321 §4.5.3.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an email address.
    ///
    /// # Errors
    /// [`ValidationError`] on field `email` when it is not an RFC 5322 `addr-spec` with a
    /// domain, is longer than 254 bytes, or holds a control character.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        if raw.len() > 254 {
            return Err(ValidationError::new("email", "must be at most 254 bytes"));
        }
        // An address goes into the `To` header: a control character (even inside a quoted
        // local part, which RFC 5322 §3.2.4 allows for some) would break the header.
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "email",
                "must not hold control characters",
            ));
        }
        let parsed = email_address::EmailAddress::from_str(raw)
            .map_err(|e| ValidationError::new("email", format!("is not a valid address: {e}")))?;
        if !parsed.domain().contains('.') && parsed.domain() != "localhost" {
            return Err(ValidationError::new(
                "email",
                "is not a valid address: the domain has no dot",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Telegram chat id: a signed 64-bit integer as the Bot API gives it (private chats are positive,
/// groups negative), or a public channel's `@username`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TelegramChatId(String);

impl TelegramChatId {
    /// Parses a chat id.
    ///
    /// # Errors
    /// [`ValidationError`] on field `telegram_chat_id` when it is neither an integer nor an
    /// `@username` of 5 to 32 letters, digits or underscores (Telegram Bot API, `chat_id`).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        let numeric = raw.parse::<i64>().is_ok();
        let username = raw.strip_prefix('@').is_some_and(|u| {
            (5..=32).contains(&u.len()) && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if numeric || username {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "telegram_chat_id",
                "must be an integer chat id or an @username",
            ))
        }
    }

    /// The chat id as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// The chat id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form: `+`, a country code (its first digit is never 0), then the
/// national number: 8 to 15 digits in all (ITU-T E.164 §6). What SMS and WhatsApp are sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a phone number, ignoring spaces, dots and dashes.
    ///
    /// # Errors
    /// [`ValidationError`] on field `phone` when it is not `+` followed by 8 to 15 digits, the
    /// first not 0 (ITU-T E.164: no country code starts with 0).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        if (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0')
        {
            Ok(Self(compact))
        } else {
            Err(ValidationError::new(
                "phone",
                "must be an E.164 number: + then 8 to 15 digits, the first not 0",
            ))
        }
    }

    /// Reads a number back from storage. Rows written before the country code's first digit
    /// was checked may hold `+0…`: they still load (Twilio then refuses the number, 21211),
    /// rather than making their recipient unreadable.
    ///
    /// # Errors
    /// [`ValidationError`] on field `phone` when it is not `+` followed by 8 to 15 digits.
    pub fn from_stored(raw: &str) -> Result<Self, ValidationError> {
        Self::parse(raw).or_else(|error| {
            let legacy = raw.strip_prefix("+0").is_some_and(|d| {
                (7..=14).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
            });
            if legacy {
                Ok(Self(raw.to_owned()))
            } else {
                Err(error)
            }
        })
    }

    /// The number in E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A language Clairon writes in. Templates exist for each; French is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    /// French (`fr`, `fr-FR`, `fr-CA`, ...).
    #[default]
    Fr,
    /// English (`en`, `en-US`, `en-GB`, ...).
    En,
}

impl Locale {
    /// Every supported locale.
    pub const ALL: [Locale; 2] = [Locale::Fr, Locale::En];

    /// Parses a BCP 47 language tag by its primary language subtag (`fr-CA` → French).
    ///
    /// # Errors
    /// [`ValidationError`] on field `locale` when the language is not one Clairon writes in.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let primary = raw
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Ok(Self::Fr),
            "en" => Ok(Self::En),
            _ => Err(ValidationError::new(
                "locale",
                format!("unsupported locale {raw:?}; supported: fr, en"),
            )),
        }
    }

    /// Like [`Locale::parse`], but an unknown or missing locale falls back to `default`.
    pub fn parse_or(raw: Option<&str>, default: Locale) -> Locale {
        raw.and_then(|r| Self::parse(r).ok()).unwrap_or(default)
    }

    /// The primary language subtag (`fr`, `en`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fr => "fr",
            Self::En => "en",
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IANA time zone (`Europe/Paris`, `America/Montreal`), from the tz database bundled in chrono-tz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    /// UTC: the zone of a recipient who gave none, for their quiet hours.
    pub const UTC: Self = Self(chrono_tz::Tz::UTC);

    /// Parses an IANA time zone name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `timezone` when the name is not in the IANA tz database.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        raw.trim().parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            ValidationError::new("timezone", format!("unknown IANA time zone {raw:?}"))
        })
    }

    /// The chrono-tz zone, for conversions.
    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Someone who can be notified, with the addresses each channel reaches them at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    /// The host application's user id.
    pub id: RecipientId,
    /// Display name, used in greetings and in the email `To` header.
    pub name: DisplayName,
    /// Email address; `None` means the email channel cannot reach them.
    pub email: Option<EmailAddress>,
    /// Telegram chat id; `None` means the Telegram channel cannot reach them.
    pub telegram_chat_id: Option<TelegramChatId>,
    /// Phone number (E.164), shown to others as a contact; what the `sms` and `whatsapp`
    /// channels reach them at.
    pub phone: Option<PhoneNumber>,
    /// Preferred language; `None` means the service's default locale.
    pub locale: Option<Locale>,
    /// IANA time zone the recipient reads times in; `None` means the event's own zone.
    pub timezone: Option<TimeZone>,
    /// Why Telegram cannot reach their current chat id, when it said so for good (Bot API 400
    /// "chat not found", 403 "bot was blocked by the user"). Set by the delivery engine, never
    /// by an upsert; a new chat id clears it. `None` for everyone else.
    pub telegram_unreachable: Option<String>,
    /// Where their signed webhooks go (Standard Webhooks 1.0); `None` means the webhook channel
    /// cannot reach them.
    pub webhook_url: Option<WebhookUrl>,
    /// The secret their webhooks are signed with; write-only (never answered nor serialised:
    /// serde skips it, so a serialised recipient reads back without one).
    #[serde(skip)]
    pub webhook_secret: Option<WebhookSecret>,
    /// Why their webhook endpoint is disabled, when it answered `410 Gone`. Set by the delivery
    /// engine, never by an upsert; a new URL clears it. `None` for everyone else.
    pub webhook_disabled: Option<String>,
    /// Their Slack incoming-webhook URL; `None` means the Slack channel cannot reach them.
    /// Write-only: the URL is the credential, so it is never answered nor serialised (serde
    /// skips it, so a serialised recipient reads back without one).
    #[serde(skip)]
    pub slack_webhook_url: Option<SlackWebhookUrl>,
    /// Why Slack cannot reach their current webhook URL, when it said so for good (`404`/`410`,
    /// `no_service`, `channel_not_found`, `invalid_token`). Set by the delivery engine, never by
    /// an upsert; a new URL clears it. `None` for everyone else.
    pub slack_unreachable: Option<String>,
}

/// Why a channel cannot reach a recipient; becomes a `skipped` delivery's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// The recipient has no email address.
    #[error("recipient has no email address")]
    NoEmail,
    /// The recipient has no Telegram chat id.
    #[error("recipient has no Telegram chat id")]
    NoTelegramChat,
    /// The service has no Telegram bot token configured.
    #[error("no Telegram bot token is configured")]
    NoTelegramBot,
    /// Telegram refused their chat id for good; they need to give a new one (or unblock the
    /// bot and be updated).
    #[error("Telegram cannot reach this chat until the chat id changes: {0}")]
    TelegramGone(String),
    /// The recipient has no phone number, which SMS and WhatsApp need.
    #[error("recipient has no phone number")]
    NoPhone,
    /// The recipient has no webhook URL and secret.
    #[error("recipient has no webhook URL and secret")]
    NoWebhook,
    /// Their webhook endpoint answered `410 Gone`; it stays disabled until the URL changes.
    #[error("the webhook endpoint is disabled until its URL changes: {0}")]
    WebhookDisabled(String),
    /// Clairon has no provider configured for this channel (Slack, webhooks, SMS, WhatsApp until
    /// their adapters land).
    #[error("{0} is not configured")]
    NotConfigured(Channel),
    /// The recipient has no Web Push subscription (no browser opted in through
    /// `POST /api/v1/me/push-subscriptions`).
    #[error("no push subscription")]
    NoPushSubscription,
    /// The recipient has no Slack webhook URL.
    #[error("recipient has no Slack webhook URL")]
    NoSlackWebhook,
    /// Slack refused their webhook URL for good; it stays unreachable until the URL changes.
    #[error("Slack cannot reach this webhook until its URL changes: {0}")]
    SlackGone(String),
}

impl Recipient {
    /// The locale to write to this recipient in, falling back to `default`.
    pub fn locale_or(&self, default: Locale) -> Locale {
        self.locale.unwrap_or(default)
    }

    /// Whether `channel` can reach this recipient, given the channels whose provider is
    /// configured (`providers`: a bot token for Telegram, an account for SMS, ...).
    ///
    /// `in_app` always can: the inbox exists for everyone.
    ///
    /// # Errors
    /// [`Unreachable`] saying what is missing; the caller records it on a `skipped` delivery.
    pub fn reachability(&self, channel: Channel, providers: ChannelSet) -> Result<(), Unreachable> {
        let telegram_bot = providers.contains(Channel::Telegram);
        match channel {
            Channel::InApp => Ok(()),
            Channel::Email if self.email.is_none() => Err(Unreachable::NoEmail),
            Channel::Email => Ok(()),
            Channel::Telegram if self.telegram_chat_id.is_none() => {
                Err(Unreachable::NoTelegramChat)
            }
            Channel::Telegram if !telegram_bot => Err(Unreachable::NoTelegramBot),
            Channel::Telegram => match &self.telegram_unreachable {
                Some(reason) => Err(Unreachable::TelegramGone(reason.clone())),
                None => Ok(()),
            },
            // Web Push reaches a recipient through their push subscriptions, which the planner
            // reads (one delivery per subscription, addressed to its endpoint, none:
            // `NoPushSubscription`); here, only whether the service can sign pushes.
            Channel::WebPush if !providers.contains(Channel::WebPush) => {
                Err(Unreachable::NotConfigured(Channel::WebPush))
            }
            Channel::WebPush => Ok(()),
            Channel::Webhook if !providers.contains(Channel::Webhook) => {
                Err(Unreachable::NotConfigured(Channel::Webhook))
            }
            Channel::Webhook if self.webhook_url.is_none() || self.webhook_secret.is_none() => {
                Err(Unreachable::NoWebhook)
            }
            Channel::Webhook => match &self.webhook_disabled {
                Some(reason) => Err(Unreachable::WebhookDisabled(reason.clone())),
                None => Ok(()),
            },
            other @ (Channel::Slack | Channel::Sms | Channel::WhatsApp)
                if !providers.contains(other) =>
            {
                Err(Unreachable::NotConfigured(other))
            }
            // Twilio's Messages API sends SMS and WhatsApp to an E.164 number.
            Channel::Sms | Channel::WhatsApp if self.phone.is_none() => Err(Unreachable::NoPhone),
            Channel::Sms | Channel::WhatsApp => Ok(()),
            // Slack needs no account: each recipient brings their incoming-webhook URL.
            Channel::Slack if self.slack_webhook_url.is_none() => Err(Unreachable::NoSlackWebhook),
            Channel::Slack => match &self.slack_unreachable {
                Some(reason) => Err(Unreachable::SlackGone(reason.clone())),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn artist(email: Option<&str>, chat: Option<&str>) -> Recipient {
        Recipient {
            id: RecipientId::parse("artist-0001").unwrap(),
            name: DisplayName::parse("Zoé Tremblay").unwrap(),
            email: email.map(|e| EmailAddress::parse(e).unwrap()),
            telegram_chat_id: chat.map(|c| TelegramChatId::parse(c).unwrap()),
            phone: None,
            locale: None,
            timezone: None,
            telegram_unreachable: None,
            webhook_url: None,
            webhook_secret: None,
            webhook_disabled: None,
            slack_webhook_url: None,
            slack_unreachable: None,
        }
    }

    #[rstest]
    #[case("artist-0001", true)]
    #[case("user@example.org", true)]
    #[case("", false)]
    #[case("has space", false)]
    #[case("slash/ed", false)]
    #[case(".", false)]
    #[case("..", false)]
    #[case("...", true)]
    #[case(".hidden", true)]
    fn recipient_ids_accept_host_style_ids_only(#[case] raw: &str, #[case] ok: bool) {
        assert_eq!(RecipientId::parse(raw).is_ok(), ok, "{raw:?}");
    }

    #[test]
    fn a_dot_segment_is_refused_as_an_id_saying_why() {
        let refused = RecipientId::parse("..").unwrap_err();
        assert_eq!(refused.field, "id", "the field is named");
        assert!(refused.message.contains("RFC 3986"), "{}", refused.message);
    }

    #[rstest]
    #[case("zoe@example.org", true)]
    #[case("zoé.tremblay@exemple.fr", true)]
    #[case("not-an-email", false)]
    #[case("a@b", false)]
    #[case("two@@example.org", false)]
    fn email_addresses_follow_rfc_5322(#[case] raw: &str, #[case] ok: bool) {
        assert_eq!(EmailAddress::parse(raw).is_ok(), ok, "{raw:?}");
    }

    #[rstest]
    #[case::line_feed("Eve\nX")]
    #[case::carriage_return("Eve\r\nBcc: x@example.org")]
    #[case::tab("Eve\tX")]
    #[case::nul("Eve\u{0}X")]
    fn a_display_name_with_a_control_character_is_refused_on_its_field(#[case] raw: &str) {
        let err = DisplayName::parse(raw).unwrap_err();
        assert_eq!(err.field, "name", "{raw:?}");
    }

    #[test]
    fn a_stored_display_name_with_a_line_break_is_read_back_on_one_line() {
        let name = DisplayName::from_stored("Eve\nX").expect("an old row stays readable");
        assert_eq!(name.as_str(), "Eve X");
    }

    #[test]
    fn an_email_address_with_a_control_character_in_a_quoted_local_part_is_refused() {
        let err = EmailAddress::parse("\"a\tb\"@example.org").unwrap_err();
        assert_eq!(err.field, "email", "the address is named");
    }

    #[rstest]
    #[case("fr", Locale::Fr)]
    #[case("fr-CA", Locale::Fr)]
    #[case("en_GB", Locale::En)]
    #[case("EN", Locale::En)]
    fn locales_are_read_by_their_primary_language(#[case] raw: &str, #[case] expected: Locale) {
        assert_eq!(Locale::parse(raw).unwrap(), expected);
    }

    #[test]
    fn an_unknown_locale_falls_back_to_the_default() {
        assert!(Locale::parse("de").is_err());
        assert_eq!(Locale::parse_or(Some("de"), Locale::En), Locale::En);
        assert_eq!(Locale::parse_or(None, Locale::Fr), Locale::Fr);
    }

    #[test]
    fn an_unknown_time_zone_is_refused_with_its_field() {
        let err = TimeZone::parse("Mars/Olympus").unwrap_err();
        assert_eq!(err.field, "timezone");
        assert_eq!(
            TimeZone::parse("Europe/Paris").unwrap().name(),
            "Europe/Paris"
        );
    }

    #[test]
    fn phone_numbers_are_kept_in_e164_form() {
        assert_eq!(
            PhoneNumber::parse("+1 514-555-0000").unwrap().as_str(),
            "+15145550000"
        );
        assert!(PhoneNumber::parse("5145550000").is_err());
    }

    #[rstest]
    #[case::spaced_french("+33 6 12 34 56 78", Some("+33612345678"))]
    #[case::parentheses_and_dots("+1 (514) 555.0000", Some("+15145550000"))]
    #[case::fifteen_digits("+123456789012345", Some("+123456789012345"))]
    #[case::no_plus("0612345678", None)]
    #[case::country_code_zero("+0612345678", None)]
    #[case::too_short("+1234567", None)]
    #[case::too_long("+1234567890123456", None)]
    #[case::letters("+33 6 CALL ME", None)]
    #[case::double_plus("++33612345678", None)]
    fn phone_numbers_must_be_e164(#[case] raw: &str, #[case] kept: Option<&str>) {
        match (PhoneNumber::parse(raw), kept) {
            (Ok(phone), Some(kept)) => assert_eq!(phone.as_str(), kept),
            (Err(e), None) => assert_eq!(e.field, "phone"),
            (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn a_stored_phone_from_before_the_country_code_check_still_loads() {
        assert_eq!(
            PhoneNumber::from_stored("+0612345678").unwrap().as_str(),
            "+0612345678"
        );
        assert!(PhoneNumber::parse("+0612345678").is_err());
        assert!(PhoneNumber::from_stored("0612345678").is_err());
        assert_eq!(
            PhoneNumber::from_stored("+33 6 12 34 56 78")
                .unwrap()
                .as_str(),
            "+33612345678"
        );
    }

    #[rstest]
    #[case::sms_with_phone(Channel::Sms, true, true, Ok(()))]
    #[case::whatsapp_with_phone(Channel::WhatsApp, true, true, Ok(()))]
    #[case::sms_without_phone(Channel::Sms, false, true, Err(Unreachable::NoPhone))]
    #[case::whatsapp_without_phone(Channel::WhatsApp, false, true, Err(Unreachable::NoPhone))]
    #[case::sms_not_configured(
        Channel::Sms,
        true,
        false,
        Err(Unreachable::NotConfigured(Channel::Sms))
    )]
    #[case::whatsapp_not_configured(
        Channel::WhatsApp,
        true,
        false,
        Err(Unreachable::NotConfigured(Channel::WhatsApp))
    )]
    fn sms_and_whatsapp_need_their_provider_and_a_phone(
        #[case] channel: Channel,
        #[case] has_phone: bool,
        #[case] configured: bool,
        #[case] expected: Result<(), Unreachable>,
    ) {
        let mut recipient = artist(None, None);
        recipient.phone = has_phone.then(|| PhoneNumber::parse("+33612345678").unwrap());
        let providers: ChannelSet = if configured {
            [channel].into_iter().collect()
        } else {
            ChannelSet::default()
        };
        assert_eq!(recipient.reachability(channel, providers), expected);
    }

    #[test]
    fn telegram_chat_ids_are_integers_or_usernames() {
        assert_eq!(
            TelegramChatId::parse("-100123").unwrap().as_i64(),
            Some(-100_123)
        );
        assert!(TelegramChatId::parse("@clairon_news").is_ok());
        assert!(TelegramChatId::parse("chat").is_err());
    }

    #[test]
    fn in_app_reaches_everyone_and_other_channels_need_an_address() {
        let nobody = artist(None, None);
        assert_eq!(
            nobody.reachability(Channel::InApp, ChannelSet::default()),
            Ok(())
        );
        assert_eq!(
            nobody.reachability(Channel::Email, ChannelSet::all()),
            Err(Unreachable::NoEmail)
        );
        assert_eq!(
            nobody.reachability(Channel::Telegram, ChannelSet::all()),
            Err(Unreachable::NoTelegramChat)
        );
        let reachable = artist(Some("zoe@example.org"), Some("100000001"));
        assert_eq!(
            reachable.reachability(Channel::Email, ChannelSet::default()),
            Ok(())
        );
        assert_eq!(
            reachable.reachability(Channel::Telegram, ChannelSet::default()),
            Err(Unreachable::NoTelegramBot)
        );
        assert_eq!(
            reachable.reachability(Channel::Telegram, ChannelSet::all()),
            Ok(())
        );
    }

    #[test]
    fn a_chat_telegram_refused_for_good_is_skipped_with_the_reason() {
        let mut blocked = artist(Some("zoe@example.org"), Some("100000001"));
        blocked.telegram_unreachable = Some("Forbidden: bot was blocked by the user".into());
        assert_eq!(
            blocked.reachability(Channel::Telegram, ChannelSet::all()),
            Err(Unreachable::TelegramGone(
                "Forbidden: bot was blocked by the user".into()
            ))
        );
        assert_eq!(
            blocked.reachability(Channel::Email, ChannelSet::all()),
            Ok(())
        );
    }

    #[test]
    fn a_webhook_needs_its_provider_a_url_and_a_secret_and_is_skipped_once_gone() {
        let mut hooked = artist(None, None);
        assert_eq!(
            hooked.reachability(Channel::Webhook, ChannelSet::all()),
            Err(Unreachable::NoWebhook)
        );
        hooked.webhook_url = Some(WebhookUrl::parse("https://hooks.example.org/x").unwrap());
        assert_eq!(
            hooked.reachability(Channel::Webhook, ChannelSet::all()),
            Err(Unreachable::NoWebhook),
            "a URL without a secret cannot be signed"
        );
        hooked.webhook_secret =
            Some(WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
        assert_eq!(
            hooked.reachability(Channel::Webhook, ChannelSet::all()),
            Ok(())
        );
        assert_eq!(
            hooked.reachability(Channel::Webhook, ChannelSet::default()),
            Err(Unreachable::NotConfigured(Channel::Webhook))
        );
        hooked.webhook_disabled = Some("410 Gone".into());
        assert_eq!(
            hooked.reachability(Channel::Webhook, ChannelSet::all()),
            Err(Unreachable::WebhookDisabled("410 Gone".into()))
        );
    }

    #[test]
    fn slack_needs_its_provider_and_a_webhook_url_and_is_skipped_once_gone() {
        let mut slacker = artist(None, None);
        assert_eq!(
            slacker.reachability(Channel::Slack, ChannelSet::all()),
            Err(Unreachable::NoSlackWebhook)
        );
        slacker.slack_webhook_url = Some(
            crate::slack::SlackWebhookUrl::parse("https://hooks.slack.com/services/T/B/x").unwrap(),
        );
        assert_eq!(
            slacker.reachability(Channel::Slack, ChannelSet::all()),
            Ok(())
        );
        assert_eq!(
            slacker.reachability(Channel::Slack, ChannelSet::default()),
            Err(Unreachable::NotConfigured(Channel::Slack))
        );
        slacker.slack_unreachable = Some("404 no_service".into());
        assert_eq!(
            slacker.reachability(Channel::Slack, ChannelSet::all()),
            Err(Unreachable::SlackGone("404 no_service".into()))
        );
    }
}
