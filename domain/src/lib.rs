//! Clairon's domain: the pure heart of the notification service.
//!
//! It knows recipients, notifications, channels, deliveries, plannings and the rules that decide
//! who is told what when a planning changes. It performs no I/O and knows nothing of tokio,
//! Diesel, actix, lettre, frankenstein or Tera: every type here can be built and tested in
//! memory, in milliseconds.

pub mod access;
pub mod channel;
pub mod coalescing;
pub mod consent;
pub mod delivery;
pub mod digest;
pub mod error;
pub mod formatting;
pub mod jobs;
pub mod notification;
pub mod planning;
pub mod preferences;
pub mod recipient;
pub mod reminders;
pub mod routing;
pub mod rules;
pub mod slack;
pub mod sms;
pub mod webhook;

pub use access::ApiScope;
pub use channel::{Channel, ChannelName, ChannelSet, KNOWN_CHANNELS};
pub use consent::{
    Consent, ConsentRequired, ConsentSource, ConsentState, ConsentWording, NewConsent,
};
pub use delivery::{
    AttemptOutcome, Delivery, DeliveryId, DeliveryStatus, DeliveryTransition, IllegalTransition,
};
pub use error::ValidationError;
pub use notification::{
    ActionLabel, ActionUrl, Body, EventType, Metadata, Notification, NotificationId,
    NotificationKind, Priority, SourceEventId, Title,
};
pub use planning::{
    Contact, Location, PlanningChange, PlanningEvent, PlanningEventId, PlanningEventKind,
    PlanningId, PlanningSnapshot, Schedule,
};
pub use preferences::{EventTypePattern, PreferenceVerdict, Preferences, QuietHours, SkipReason};
pub use recipient::{
    DisplayName, EmailAddress, Locale, PhoneNumber, Recipient, RecipientId, TelegramChatId,
    TimeZone,
};
pub use routing::{
    EventPattern, GenericEvent, RawRule, RoutingRule, RoutingRules, Topic, TopicKey, TopicName,
};
pub use slack::{SlackHosts, SlackWebhookUrl};
pub use webhook::{is_private_target, WebhookSecret, WebhookUrl};
