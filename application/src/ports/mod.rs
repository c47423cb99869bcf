//! Ports: the capabilities the use cases need from the world, as traits.
//!
//! Adapters implement them (Diesel, lettre, frankenstein, Tera, the system clock); tests mock
//! them with mockall. No SDK type crosses a port: arguments and results are domain types or the
//! plain structs defined here.

mod alerts;
mod api_keys;
mod clock;
mod coalescing;
mod delivery_queue;
mod delivery_repository;
mod digests;
mod health;
mod host_events;
mod idempotency;
mod inbox_feed;
mod jobs;
mod links;
mod notification_repository;
mod operations;
mod personal_data;
mod preferences;
mod realtime;
mod recipient_repository;
mod retry;
mod routing;
mod senders;
mod slack;
mod templates;
mod token_generations;
mod web_push;

pub use alerts::{AlertThrottle, DeadLetter, DeadLetterSource, DeadLetters};
#[cfg(any(test, feature = "mocks"))]
pub use alerts::{MockAlertThrottle, MockDeadLetterSource};
pub use api_keys::ApiKeyDirectory;
pub use clock::{Clock, IdGenerator, Timer};
pub use delivery_queue::{
    AttemptRecord, ClaimToken, ClaimedDelivery, DeliveryQueue, DeliveryUpdate, DeliveryWaker,
    FallbackLink, POISON_CRASHES,
};
pub use delivery_repository::{DeliveryListQuery, DeliveryPage, DeliveryRepository, Requeued};
pub use digests::{DigestItem, DigestKey, DigestOutcome, DigestStore, OpenDigest};
pub use health::{DatabaseProblem, DispatcherHealth, HealthProbe};
pub use idempotency::{Begun, IdempotencyStore, IdempotentRequest, StoredResponse};
pub use inbox_feed::{InboxFeed, SequencedNotification};
pub use jobs::{HttpJobClient, HttpJobOutcome, HttpJobRequest, JobAlerts, JobFailed};
pub use links::UnsubscribeLinks;
pub use notification_repository::{
    CreationLease, LeasedWrite, ListQuery, NewNotification, NewReminder, NotificationDetails,
    NotificationRepository, Page, ReadFilter, ReminderChanges,
};
pub use operations::{
    ChannelStatusCount, DispatchObserver, Finished, Housekeeping, Job, JobRun, JobRunEnd,
    JobRunPage, JobRunQuery, JobRunRepository, JobRunSample, JobSource, JobStatus, JobTrigger,
    OperationsStatsSource, Purged, QueueDepth, TaskType,
};
pub use personal_data::{
    ErasedCounts, ErasureAudit, ErasureOutcome, MentionRedactor, PersonalDataStore, RecipientData,
    Redacted,
};
pub use preferences::{
    ConsentRepository, PreferenceRepository, RecordedConsent, StoredPreferences,
};
pub use realtime::{RealtimeEvent, RealtimePublisher};
pub use recipient_repository::{RecipientRepository, Upserted};
pub use retry::RetrySchedule;
pub use routing::{RoutingRulesRepository, RulesVersion, TopicRepository};
pub use senders::{
    EmailMessage, EmailSender, SendOutcome, TelegramButton, TelegramMessage, TelegramSender,
};
pub use senders::{WebhookMessage, WebhookSender, WEBHOOK_GONE};
pub use slack::{SlackButton, SlackMessage, SlackSender, SLACK_GONE};
pub use templates::SlackContent;
pub use templates::{EmailContent, InAppContent, TelegramContent, TemplateError, TemplateRenderer};
pub use token_generations::TokenGenerations;
#[cfg(any(test, feature = "mocks"))]
pub use web_push::{MockPushSender, MockPushSubscriptions};
pub use web_push::{
    PushMessage, PushSender, PushSubscription, PushSubscriptions, PUSH_SUBSCRIPTION_GONE,
};

#[cfg(any(test, feature = "mocks"))]
pub use senders::MockSmsSender;
pub use senders::{SmsMessage, SmsSender};
pub use templates::SmsContent;

#[cfg(any(test, feature = "mocks"))]
pub use api_keys::MockApiKeyDirectory;
#[cfg(any(test, feature = "mocks"))]
pub use clock::{MockClock, MockIdGenerator, MockTimer};
#[cfg(any(test, feature = "mocks"))]
pub use delivery_queue::{MockDeliveryQueue, MockDeliveryWaker};
#[cfg(any(test, feature = "mocks"))]
pub use delivery_repository::MockDeliveryRepository;
#[cfg(any(test, feature = "mocks"))]
pub use digests::MockDigestStore;
#[cfg(any(test, feature = "mocks"))]
pub use health::MockHealthProbe;
#[cfg(any(test, feature = "mocks"))]
pub use idempotency::MockIdempotencyStore;
#[cfg(any(test, feature = "mocks"))]
pub use inbox_feed::MockInboxFeed;
#[cfg(any(test, feature = "mocks"))]
pub use jobs::{MockHttpJobClient, MockJobAlerts};
#[cfg(any(test, feature = "mocks"))]
pub use links::MockUnsubscribeLinks;
#[cfg(any(test, feature = "mocks"))]
pub use notification_repository::MockNotificationRepository;
#[cfg(any(test, feature = "mocks"))]
pub use operations::{
    MockDispatchObserver, MockHousekeeping, MockJobRunRepository, MockOperationsStatsSource,
};
#[cfg(any(test, feature = "mocks"))]
pub use personal_data::{MockMentionRedactor, MockPersonalDataStore};
#[cfg(any(test, feature = "mocks"))]
pub use preferences::{MockConsentRepository, MockPreferenceRepository};
#[cfg(any(test, feature = "mocks"))]
pub use realtime::MockRealtimePublisher;
#[cfg(any(test, feature = "mocks"))]
pub use recipient_repository::MockRecipientRepository;
#[cfg(any(test, feature = "mocks"))]
pub use retry::MockRetrySchedule;
#[cfg(any(test, feature = "mocks"))]
pub use routing::{MockRoutingRulesRepository, MockTopicRepository};
#[cfg(any(test, feature = "mocks"))]
pub use senders::MockWebhookSender;
#[cfg(any(test, feature = "mocks"))]
pub use senders::{MockEmailSender, MockTelegramSender};
#[cfg(any(test, feature = "mocks"))]
pub use slack::MockSlackSender;
#[cfg(any(test, feature = "mocks"))]
pub use templates::MockTemplateRenderer;
#[cfg(any(test, feature = "mocks"))]
pub use token_generations::MockTokenGenerations;

#[cfg(any(test, feature = "mocks"))]
pub use coalescing::MockCoalescingRepository;
pub use coalescing::{CoalesceChanges, CoalesceEntry, CoalesceOutcome, CoalescingRepository};
pub use host_events::{
    HostEvent, HostEventOutbox, HostEventOutcome, HostEventSender, HOST_EVENT_TYPES,
};
#[cfg(any(test, feature = "mocks"))]
pub use host_events::{MockHostEventOutbox, MockHostEventSender};

/// Why a repository call failed. Adapters translate their driver's errors into these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// A uniqueness rule refused the write (for example a second notification for the same
    /// source event and recipient). Nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or failed; the caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be read back into a domain value (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}
