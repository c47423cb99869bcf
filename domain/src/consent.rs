//! Consent (GDPR art. 7: the controller must be able to show that the person consented): an
//! append-only history of grants and revocations per channel. The current state of a channel is
//! its latest record; a channel listed in `CLAIRON_CONSENT_REQUIRED` is delivered on only while
//! that state is granted. Consent is never overridden, not even by `critical`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::channel::ChannelName;
use crate::error::{bounded_text, single_line_text, ValidationError};
use crate::recipient::RecipientId;

/// Where a consent was given or withdrawn (`signup-form`, `support-call`): 1 to 200
/// characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSource(String);

impl ConsentSource {
    /// Parses a source.
    ///
    /// # Errors
    /// [`ValidationError`] on `source` when blank, over 200 characters or holding a control
    /// character.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        single_line_text("source", raw, 200).map(Self)
    }

    /// Reads a stored source as it is.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The source.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The words the person agreed to (or withdrew from): 1 to 2,000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentWording(String);

impl ConsentWording {
    /// Parses a wording.
    ///
    /// # Errors
    /// [`ValidationError`] on `wording` when blank, over 2,000 characters or holding U+0000.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text("wording", raw, 2_000).map(Self)
    }

    /// Reads a stored wording as it is.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The wording.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A consent to record: for `channel`, granted or withdrawn, where, with what words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsent {
    /// The channel.
    pub channel: ChannelName,
    /// `true`: granted; `false`: withdrawn.
    pub granted: bool,
    /// Where.
    pub source: ConsentSource,
    /// The words shown, if any.
    pub wording: Option<ConsentWording>,
}

/// A recorded consent: never changed, never deleted but by erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Its number, increasing in recording order.
    pub id: i64,
    /// Whose.
    pub recipient_id: RecipientId,
    /// The channel.
    pub channel: ChannelName,
    /// Granted or withdrawn.
    pub granted: bool,
    /// Where.
    pub source: ConsentSource,
    /// The words shown.
    pub wording: Option<ConsentWording>,
    /// When (UTC).
    pub recorded_at: DateTime<Utc>,
}

/// A recipient's current consents: per channel, its latest record's `granted`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsentState(BTreeMap<ChannelName, (DateTime<Utc>, i64, bool)>);

impl ConsentState {
    /// The state `records` leave, in any order: for each channel the record recorded last (the
    /// higher id between two of the same instant) decides.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Consent>) -> Self {
        let mut state = Self::default();
        for record in records {
            state.apply(record.channel, record.recorded_at, record.id, record.granted);
        }
        state
    }

    /// Takes one record into account (`id` breaks ties between records of the same instant).
    pub fn apply(&mut self, channel: ChannelName, at: DateTime<Utc>, id: i64, granted: bool) {
        let entry = self.0.entry(channel).or_insert((at, id, granted));
        if (at, id) >= (entry.0, entry.1) {
            *entry = (at, id, granted);
        }
    }

    /// Whether `channel`'s latest record grants it (`false` without any record).
    pub fn granted(&self, channel: ChannelName) -> bool {
        self.0.get(&channel).is_some_and(|(_, _, granted)| *granted)
    }
}

/// The channels that need a granted consent (`CLAIRON_CONSENT_REQUIRED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequired(Vec<ChannelName>);

impl ConsentRequired {
    /// The default: `sms,whatsapp,web_push`.
    pub const DEFAULT: &'static str = "sms,whatsapp,web_push";

    /// Parses a comma-separated list of catalogue names; empty: no channel needs consent.
    ///
    /// # Errors
    /// [`ValidationError`] on `channels` for a name outside
    /// [`crate::channel::KNOWN_CHANNELS`].
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        ChannelName::parse_list(raw).map(Self)
    }

    /// No channel needs consent.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Whether `channel` needs a granted consent.
    pub fn requires(&self, channel: ChannelName) -> bool {
        self.0.contains(&channel)
    }

    /// Whether no channel does.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The channels, in catalogue order.
    pub fn channels(&self) -> &[ChannelName] {
        &self.0
    }
}

impl Default for ConsentRequired {
    fn default() -> Self {
        Self::parse(Self::DEFAULT).unwrap_or_else(|_| Self::none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn record(id: i64, channel: &str, granted: bool, at: &str) -> Consent {
        Consent {
            id,
            recipient_id: RecipientId::parse("artist-1").unwrap(),
            channel: ChannelName::parse(channel).unwrap(),
            granted,
            source: ConsentSource::parse("signup-form").unwrap(),
            wording: None,
            recorded_at: DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc),
        }
    }

    #[rstest]
    #[case::never_asked(&[], "sms", false)]
    #[case::granted(&[(1, "sms", true, "2027-01-01T10:00:00Z")], "sms", true)]
    #[case::revoked_later(&[(1, "sms", true, "2027-01-01T10:00:00Z"), (2, "sms", false, "2027-01-02T10:00:00Z")], "sms", false)]
    #[case::granted_again(&[(1, "sms", true, "2027-01-01T10:00:00Z"), (2, "sms", false, "2027-01-02T10:00:00Z"), (3, "sms", true, "2027-01-03T10:00:00Z")], "sms", true)]
    #[case::order_of_listing_does_not_matter(&[(2, "sms", false, "2027-01-02T10:00:00Z"), (1, "sms", true, "2027-01-01T10:00:00Z")], "sms", false)]
    #[case::same_instant_higher_id_wins(&[(5, "sms", false, "2027-01-01T10:00:00Z"), (4, "sms", true, "2027-01-01T10:00:00Z")], "sms", false)]
    #[case::other_channel(&[(1, "email", true, "2027-01-01T10:00:00Z")], "sms", false)]
    fn the_current_state_of_a_channel_is_its_latest_record(
        #[case] records: &[(i64, &str, bool, &str)],
        #[case] channel: &str,
        #[case] expected: bool,
    ) {
        let records: Vec<Consent> = records
            .iter()
            .map(|(id, c, g, at)| record(*id, c, *g, at))
            .collect();
        assert_eq!(
            ConsentState::from_records(&records).granted(ChannelName::parse(channel).unwrap()),
            expected
        );
    }

    #[test]
    fn consent_is_required_by_default_for_sms_whatsapp_and_web_push() {
        let required = ConsentRequired::default();
        let names: Vec<&str> = required.channels().iter().map(|c| c.as_str()).collect();
        assert_eq!(names, vec!["sms", "whatsapp", "web_push"]);
        assert!(!required.requires(ChannelName::parse("email").unwrap()));
        assert!(ConsentRequired::parse("").unwrap().is_empty());
        assert_eq!(ConsentRequired::parse("email,fax").unwrap_err().field, "channels");
    }

    #[test]
    fn a_source_is_one_line_and_a_wording_is_bounded() {
        assert_eq!(ConsentSource::parse("a\nb").unwrap_err().field, "source");
        assert_eq!(ConsentWording::parse(" ").unwrap_err().field, "wording");
        assert!(ConsentWording::parse(&"x".repeat(2_001)).is_err());
        assert_eq!(
            ConsentWording::parse("I agree to receive\ntext messages.")
                .unwrap()
                .as_str(),
            "I agree to receive\ntext messages."
        );
    }
}
