//! Routing: topics (named groups of recipients), any domain event, and the routing rules that
//! say, per event type, which topics hear of it, on which channels and how urgently (issue 11,
//! seed 003's table "event → recipients → channel", made editable).
//!
//! - An [`EventPattern`] is an exact event type (`sync.failed`) or a prefix ending in `.*`
//!   (`project.*`, matching `project.created` and `project.role.assigned`).
//! - [`RoutingRules::for_event`] picks the most specific rule: an exact pattern beats every
//!   prefix, a longer prefix beats a shorter one. Two rules of one pattern are refused.
//! - [`RoutingRules::default_set`] is in force until a set is stored: `job.failed` → topic
//!   `admins`, priority `high`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::{Channel, ChannelSet};
use crate::error::{single_line_text, ValidationError};
use crate::notification::{
    ActionLabel, ActionUrl, Body, EventType, Metadata, NotificationKind, Priority, SourceEventId,
    Title,
};
use crate::recipient::RecipientId;

/// Whether `raw` is a dotted lower-case event type, `[a-z0-9_]+(\.[a-z0-9_]+)+`: at least two
/// segments, none empty.
fn is_dotted(raw: &str) -> bool {
    let mut segments = 0;
    for segment in raw.split('.') {
        if segment.is_empty()
            || !segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return false;
        }
        segments += 1;
    }
    segments >= 2
}

/// Parses the type of a domain event: dotted lower case, `[a-z0-9_]+(\.[a-z0-9_]+)+`, at most
/// 64 characters (`project.role.assigned`).
///
/// # Errors
/// [`ValidationError`] on field `type` for anything else.
pub fn parse_event_type(raw: &str) -> Result<EventType, ValidationError> {
    if raw.len() <= 64 && is_dotted(raw) {
        EventType::parse(raw).map_err(|e| ValidationError::new("type", e.message))
    } else {
        Err(ValidationError::new(
            "type",
            "must be dotted lower case, [a-z0-9_]+(\\.[a-z0-9_]+)+, at most 64 characters",
        ))
    }
}

/// The key of a topic: `[a-z0-9][a-z0-9._-]{0,99}` (`admins`, `project-7-owners`, `regie`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TopicKey(String);

impl TopicKey {
    /// Parses a key.
    ///
    /// # Errors
    /// [`ValidationError`] on field `key` unless it matches `[a-z0-9][a-z0-9._-]{0,99}`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_' || c == '-'
        });
        if first_ok && rest_ok && raw.len() <= 100 {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "key",
                "must match [a-z0-9][a-z0-9._-]{0,99}",
            ))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TopicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A topic's display name: 1 to 200 characters on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TopicName(String);

impl TopicName {
    /// Parses a name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `name` when blank, over 200 characters or holding a control
    /// character.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        single_line_text("name", raw, 200).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A named group of recipients that events and rules can address at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Its key.
    pub key: TopicKey,
    /// Its display name.
    pub name: TopicName,
    /// Its members, sorted, each once.
    pub recipient_ids: Vec<RecipientId>,
    /// When it was first stored (UTC).
    pub created_at: DateTime<Utc>,
    /// When it was last changed (UTC).
    pub updated_at: DateTime<Utc>,
}

/// The event types a rule applies to: one exact type, or every type under a prefix (`prefix.*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventPattern(String);

impl EventPattern {
    /// Parses a pattern: an event type (`sync.failed`, `planning.modified`) or a prefix of
    /// one or more segments followed by `.*` (`project.*`, `project.role.*`).
    ///
    /// # Errors
    /// [`ValidationError`] on field `event` for anything else.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid = match raw.strip_suffix(".*") {
            Some(prefix) => {
                !prefix.is_empty()
                    && prefix.split('.').all(|s| {
                        !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    })
            }
            None => is_dotted(raw),
        };
        if valid && raw.len() <= 64 {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "event",
                "must be an event type (sync.failed) or a prefix followed by .* (project.*)",
            ))
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `event_type` falls under the pattern: equal to it, or, for `prefix.*`, starting
    /// with `prefix.`.
    pub fn matches(&self, event_type: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix) && event_type.len() > prefix.len(),
            None => self.0 == event_type,
        }
    }

    /// How specific the pattern is: exact patterns above every prefix, then the longer prefix.
    fn specificity(&self) -> (bool, usize) {
        (!self.0.ends_with(".*"), self.0.len())
    }
}

impl TryFrom<String> for EventPattern {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<EventPattern> for String {
    fn from(pattern: EventPattern) -> Self {
        pattern.0
    }
}

impl std::fmt::Display for EventPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of the routing table: for the events of `event`, add the `topics`' members as
/// recipients, use only `channels` (when given) and deliver at `priority` (when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    /// The event types it applies to.
    pub event: EventPattern,
    /// Topics whose members are told too (each recipient once).
    pub topics: Vec<TopicKey>,
    /// The channels to use; `None`: every channel otherwise chosen. A channel left out gets a
    /// `skipped` delivery with the reason `not_in_rule: <pattern>`.
    pub channels: Option<ChannelSet>,
    /// The priority it asks for; the notification gets the higher of it and the producer's.
    pub priority: Option<Priority>,
    /// The fallback chain its notifications use when the event names none
    /// ([`Channel::parse_fallback`]); empty: none.
    pub fallback: Vec<Channel>,
}

/// A rule as written (JSON body or TOML `[[rule]]`), before validation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Event type or `prefix.*`.
    pub event: String,
    /// Topic keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    /// Channel names (`in_app`, `email`, `telegram`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// `low`, `normal`, `high` or `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Channel names, tried in order, each when the one before gave up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<String>>,
}

impl RoutingRule {
    /// The rule as written, for storage and export.
    pub fn to_raw(&self) -> RawRule {
        RawRule {
            event: self.event.as_str().to_owned(),
            topics: (!self.topics.is_empty())
                .then(|| self.topics.iter().map(|t| t.as_str().to_owned()).collect()),
            channels: self
                .channels
                .map(|set| set.iter().map(|c| c.as_str().to_owned()).collect()),
            priority: self.priority.map(|p| p.as_str().to_owned()),
            fallback: (!self.fallback.is_empty()).then(|| {
                self.fallback
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect()
            }),
        }
    }
}

/// A whole set of routing rules, validated: at most one rule per pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingRules {
    rules: Vec<RoutingRule>,
}

impl RoutingRules {
    /// Most rules one set may hold.
    pub const MAX_RULES: usize = 1_000;

    /// Validates every rule of `raw`, naming each bad field by its place
    /// (`rules[2].channels[0]`, `rules[0].event`, `rules[1].topics[3]`, `rules[4].priority`).
    ///
    /// # Errors
    /// Every [`ValidationError`] found: unknown channels (the `Channel` catalogue of this
    /// version), malformed patterns or topic keys, an unknown priority, an empty `channels`
    /// list, a pattern already used by an earlier rule, more than [`RoutingRules::MAX_RULES`].
    pub fn from_raw(raw: &[RawRule]) -> Result<Self, Vec<ValidationError>> {
        let mut errors = Vec::new();
        if raw.len() > Self::MAX_RULES {
            errors.push(ValidationError::new(
                "rules",
                format!("at most {} rules", Self::MAX_RULES),
            ));
            return Err(errors);
        }
        let mut rules: Vec<RoutingRule> = Vec::with_capacity(raw.len());
        for (i, rule) in raw.iter().enumerate() {
            let at = |field: &str| format!("rules[{i}].{field}");
            let event = match EventPattern::parse(&rule.event) {
                Ok(event) => Some(event),
                Err(e) => {
                    errors.push(ValidationError::new(at("event"), e.message));
                    None
                }
            };
            if let Some(event) = &event {
                if let Some(first) = rules.iter().position(|r| &r.event == event) {
                    errors.push(ValidationError::new(
                        at("event"),
                        format!("pattern {event} is already the pattern of rules[{first}]"),
                    ));
                }
            }
            let mut topics = Vec::new();
            for (j, topic) in rule.topics.iter().flatten().enumerate() {
                match TopicKey::parse(topic) {
                    Ok(key) if !topics.contains(&key) => topics.push(key),
                    Ok(_) => {}
                    Err(e) => {
                        errors.push(ValidationError::new(at(&format!("topics[{j}]")), e.message))
                    }
                }
            }
            let channels = match &rule.channels {
                None => None,
                Some(list) if list.is_empty() => {
                    errors.push(ValidationError::new(
                        at("channels"),
                        "must name at least one channel (leave it out for every channel)",
                    ));
                    None
                }
                Some(list) => {
                    let mut set = Vec::new();
                    for (j, name) in list.iter().enumerate() {
                        match Channel::parse(name) {
                            Ok(c) => set.push(c),
                            Err(e) => errors.push(ValidationError::new(
                                at(&format!("channels[{j}]")),
                                e.message,
                            )),
                        }
                    }
                    Some(set.into_iter().collect::<ChannelSet>())
                }
            };
            let priority = match rule.priority.as_deref().map(Priority::parse) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    errors.push(ValidationError::new(at("priority"), e.message));
                    None
                }
            };
            let fallback = match &rule.fallback {
                None => Vec::new(),
                Some(names) => {
                    Channel::parse_fallback(&at("fallback"), names).unwrap_or_else(|e| {
                        errors.extend(e);
                        Vec::new()
                    })
                }
            };
            if let Some(event) = event {
                rules.push(RoutingRule {
                    event,
                    topics,
                    channels,
                    priority,
                    fallback,
                });
            }
        }
        if errors.is_empty() {
            Ok(Self { rules })
        } else {
            Err(errors)
        }
    }

    /// The set in force while none was ever stored: `job.failed` → topic `admins`, priority
    /// `high` (Clairon's own failed jobs, and any host's, reach the operators), and
    /// `deliveries.dead_letters` (issue 13: too many deliveries gave up within the hour) the same.
    pub fn default_set() -> Self {
        Self {
            rules: vec![
                RoutingRule {
                    event: EventPattern("job.failed".to_owned()),
                    topics: vec![TopicKey("admins".to_owned())],
                    channels: None,
                    priority: Some(Priority::High),
                    fallback: Vec::new(),
                },
                // Issue 13: too many deliveries going `dead` within the hour.
                RoutingRule {
                    event: EventPattern("deliveries.dead_letters".to_owned()),
                    topics: vec![TopicKey("admins".to_owned())],
                    channels: None,
                    priority: Some(Priority::High),
                    fallback: Vec::new(),
                },
            ],
        }
    }

    /// The rules, in the order they were written.
    pub fn rules(&self) -> &[RoutingRule] {
        &self.rules
    }

    /// The rules as written, for storage and export.
    pub fn to_raw(&self) -> Vec<RawRule> {
        self.rules.iter().map(RoutingRule::to_raw).collect()
    }

    /// The rule that applies to `event_type`: the most specific of those matching it (exact
    /// beats the longest `prefix.*`), or `None`.
    pub fn for_event(&self, event_type: &str) -> Option<&RoutingRule> {
        self.rules
            .iter()
            .filter(|r| r.event.matches(event_type))
            .max_by_key(|r| r.event.specificity())
    }
}

/// Any domain event from the host application (`POST /api/v1/events`, or published on the bus
/// by a Rust host): its type selects the routing rule and the templates.
#[derive(Debug, Clone, PartialEq)]
pub struct GenericEvent {
    /// The producer's id of the event; with each recipient it identifies a notification, so
    /// the same id again creates nothing new (shared with planning event ids).
    pub event_id: SourceEventId,
    /// Dotted lower case (`project.role.assigned`).
    pub event_type: EventType,
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// Recipients named by the producer.
    pub recipient_ids: Vec<RecipientId>,
    /// Topics named by the producer; their members are told too.
    pub topics: Vec<TopicKey>,
    /// Title used when no template of the type exists (and given to templates).
    pub title: Title,
    /// Body used when no template of the type exists (and given to templates).
    pub body: Body,
    /// Optional call to action.
    pub action_url: Option<ActionUrl>,
    /// Its label.
    pub action_label: Option<ActionLabel>,
    /// The producer's priority, if it gave one.
    pub priority: Option<Priority>,
    /// How an inbox shows it.
    pub kind: NotificationKind,
    /// The producer's channels, if it gave some: the others get no delivery.
    pub channels: Option<ChannelSet>,
    /// The producer's fallback chain; empty: the rule's, if any.
    pub fallback: Vec<Channel>,
    /// Free-form data given to templates as `data`.
    pub data: Metadata,
}

impl GenericEvent {
    /// The fallback chain of its notifications under `rule`: the producer's when it named one,
    /// else the rule's (empty: none).
    pub fn fallback_under(&self, rule: Option<&RoutingRule>) -> Vec<Channel> {
        if self.fallback.is_empty() {
            rule.map(|r| r.fallback.clone()).unwrap_or_default()
        } else {
            self.fallback.clone()
        }
    }

    /// The priority of its notifications under `rule`: the higher of the producer's and the
    /// rule's; `normal` when neither says.
    pub fn priority_under(&self, rule: Option<&RoutingRule>) -> Priority {
        effective_priority(self.priority, rule)
    }
}

/// The priority of a notification whose producer asked for `requested` under `rule`: the
/// higher of both (a rule can raise an event, never lower what the producer asked for);
/// `normal` when neither says.
pub fn effective_priority(requested: Option<Priority>, rule: Option<&RoutingRule>) -> Priority {
    match (requested, rule.and_then(|r| r.priority)) {
        (Some(a), Some(b)) => a.max(b),
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => Priority::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn raw(event: &str) -> RawRule {
        RawRule {
            event: event.to_owned(),
            ..RawRule::default()
        }
    }

    fn rules(patterns: &[&str]) -> RoutingRules {
        RoutingRules::from_raw(&patterns.iter().map(|p| raw(p)).collect::<Vec<_>>()).unwrap()
    }

    #[rstest]
    #[case::exact("sync.failed", "sync.failed", true)]
    #[case::exact_other("sync.failed", "sync.done", false)]
    #[case::prefix("project.*", "project.created", true)]
    #[case::prefix_deep("project.*", "project.role.assigned", true)]
    #[case::prefix_not_itself("project.*", "project", false)]
    #[case::prefix_not_lookalike("project.*", "projects.created", false)]
    #[case::deep_prefix("project.role.*", "project.created", false)]
    fn a_pattern_matches_its_exact_type_or_everything_under_its_prefix(
        #[case] pattern: &str,
        #[case] event_type: &str,
        #[case] expected: bool,
    ) {
        assert_eq!(
            EventPattern::parse(pattern).unwrap().matches(event_type),
            expected
        );
    }

    #[rstest]
    #[case::exact_beats_prefix(&["project.*", "project.created"], "project.created", Some("project.created"))]
    #[case::longest_prefix(&["project.*", "project.role.*"], "project.role.assigned", Some("project.role.*"))]
    #[case::order_does_not_matter(&["project.role.*", "project.*"], "project.role.assigned", Some("project.role.*"))]
    #[case::shorter_when_longer_does_not_match(&["project.*", "project.role.*"], "project.created", Some("project.*"))]
    #[case::none(&["sync.*"], "project.created", None)]
    fn the_most_specific_rule_applies(
        #[case] patterns: &[&str],
        #[case] event_type: &str,
        #[case] expected: Option<&str>,
    ) {
        let set = rules(patterns);
        assert_eq!(
            set.for_event(event_type).map(|r| r.event.as_str()),
            expected
        );
    }

    #[rstest]
    #[case::upper("Sync.failed")]
    #[case::one_segment("sync")]
    #[case::empty_segment("sync..failed")]
    #[case::star_alone("*")]
    #[case::star_inside("sync.*.failed")]
    #[case::space("sync failed")]
    fn malformed_patterns_are_refused_on_their_event_field(#[case] pattern: &str) {
        let err = RoutingRules::from_raw(&[raw("ok.rule"), raw(pattern)]).unwrap_err();
        assert_eq!(err[0].field, "rules[1].event", "{err:?}");
    }

    #[test]
    fn every_bad_field_of_a_set_is_named_by_its_place() {
        let set = vec![
            raw("sync.failed"),
            RawRule {
                event: "project.*".into(),
                topics: Some(vec!["admins".into(), "Bad Key".into()]),
                channels: Some(vec!["email".into(), "pigeon".into()]),
                priority: Some("urgent".into()),
                fallback: Some(vec!["telegram".into(), "telegram".into()]),
            },
            raw("sync.failed"),
        ];
        let fields: Vec<String> = RoutingRules::from_raw(&set)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "rules[1].topics[1]",
                "rules[1].channels[1]",
                "rules[1].priority",
                "rules[1].fallback[1]",
                "rules[2].event"
            ]
        );
    }

    #[test]
    fn an_empty_channel_list_is_refused() {
        let err = RoutingRules::from_raw(&[RawRule {
            event: "a.b".into(),
            channels: Some(vec![]),
            ..RawRule::default()
        }])
        .unwrap_err();
        assert_eq!(err[0].field, "rules[0].channels");
    }

    #[test]
    fn a_set_reads_back_as_it_was_written() {
        let written = vec![RawRule {
            event: "sync.failed".into(),
            topics: Some(vec!["admins".into()]),
            channels: Some(vec!["in_app".into(), "email".into(), "telegram".into()]),
            priority: Some("high".into()),
            fallback: Some(vec!["telegram".into(), "sms".into(), "email".into()]),
        }];
        assert_eq!(RoutingRules::from_raw(&written).unwrap().to_raw(), written);
    }

    #[test]
    fn the_default_set_sends_failed_jobs_to_the_admins() {
        let set = RoutingRules::default_set();
        let rule = set.for_event("job.failed").unwrap();
        assert_eq!(rule.topics, vec![TopicKey::parse("admins").unwrap()]);
        assert_eq!(rule.priority, Some(Priority::High));
    }

    #[test]
    fn the_default_set_sends_the_dead_letter_alert_to_the_admins() {
        let set = RoutingRules::default_set();
        let rule = set.for_event("deliveries.dead_letters").unwrap();
        assert_eq!(rule.topics, vec![TopicKey::parse("admins").unwrap()]);
        assert_eq!(rule.priority, Some(Priority::High));
        assert_eq!(rule.channels, None, "every channel the admins have");
    }

    #[rstest]
    #[case::ok("project-7-owners", true)]
    #[case::dots("team.ops_2", true)]
    #[case::digit_first("7up", true)]
    #[case::dash_first("-x", false)]
    #[case::upper("Admins", false)]
    #[case::empty("", false)]
    #[case::slash("a/b", false)]
    fn topic_keys_follow_their_pattern(#[case] key: &str, #[case] ok: bool) {
        let parsed = TopicKey::parse(key);
        assert_eq!(parsed.is_ok(), ok);
        if let Err(e) = parsed {
            assert_eq!(e.field, "key");
        }
        assert!(TopicKey::parse(&"a".repeat(100)).is_ok());
        assert!(TopicKey::parse(&"a".repeat(101)).is_err());
    }

    #[rstest]
    #[case::dotted("project.role.assigned", true)]
    #[case::underscore("job_runner.failed", true)]
    #[case::one_segment("custom", false)]
    #[case::upper("Project.created", false)]
    #[case::trailing_dot("project.", false)]
    fn event_types_are_dotted_lower_case(#[case] raw: &str, #[case] ok: bool) {
        let parsed = parse_event_type(raw);
        assert_eq!(parsed.is_ok(), ok);
        if let Err(e) = parsed {
            assert_eq!(e.field, "type");
        }
    }

    #[rstest]
    #[case::neither(None, None, Priority::Normal)]
    #[case::request_only(Some(Priority::Low), None, Priority::Low)]
    #[case::rule_only(None, Some(Priority::High), Priority::High)]
    #[case::rule_raises(Some(Priority::Normal), Some(Priority::High), Priority::High)]
    #[case::rule_never_lowers(Some(Priority::Critical), Some(Priority::Low), Priority::Critical)]
    fn the_priority_is_the_higher_of_the_request_and_the_rule(
        #[case] requested: Option<Priority>,
        #[case] rule: Option<Priority>,
        #[case] expected: Priority,
    ) {
        let rule = RoutingRule {
            event: EventPattern::parse("a.b").unwrap(),
            topics: vec![],
            channels: None,
            priority: rule,
            fallback: Vec::new(),
        };
        assert_eq!(effective_priority(requested, Some(&rule)), expected);
    }
}
