//! Commands: requests to change state, each with its handler, input, output and error.

pub mod create_notification;
pub mod erase_recipient;
pub mod finish_job_run;
pub mod handle_event;
pub mod handle_planning_event;
pub mod manage_topics;
pub mod mark_all_notifications_read;
pub mod mark_notification_read;
pub mod opt_out;
pub mod put_routing_rules;
pub mod record_consent;
pub mod report_job_run;
pub mod retry_delivery;
pub mod revoke_recipient_tokens;
pub mod run_job;
pub mod send_test_notification;
pub mod set_preferences;
pub mod upsert_recipient;

pub use create_notification::{
    json_len, AppliedRule, ChannelPolicy, ChoiceSources, ContentLimits, ContentTooLarge,
    CreateNotification, CreateNotificationError, CreateNotificationHandler, CreatedNotification,
    DeliveryPlan, NotificationDraft, ReminderDraft,
};
pub use erase_recipient::{
    ContextRedactor, EraseRecipient, EraseRecipientError, EraseRecipientHandler,
};
pub use finish_job_run::{FinishJobRun, FinishJobRunError, FinishJobRunHandler};
pub use handle_event::{EventHandled, HandleEvent, HandleEventError, HandleEventHandler};
pub use handle_planning_event::{
    HandlePlanningEvent, HandlePlanningEventError, HandlePlanningEventHandler, PlanningEventHandled,
};
pub use manage_topics::{AddTopicMembers, PutTopic, RemoveTopicMember, TopicError, TopicsHandler};
pub use mark_all_notifications_read::{
    MarkAllNotificationsRead, MarkAllNotificationsReadError, MarkAllNotificationsReadHandler,
};
pub use mark_notification_read::{
    MarkNotificationRead, MarkNotificationReadError, MarkNotificationReadHandler,
};
pub use opt_out::{OptOut, OptOutError, OptOutHandler};
pub use put_routing_rules::{PutRoutingRules, PutRoutingRulesHandler};
pub use record_consent::{RecordConsent, RecordConsentError, RecordConsentHandler};
pub use report_job_run::{ReportJobRun, ReportJobRunError, ReportJobRunHandler};
pub use retry_delivery::{RetryDelivery, RetryDeliveryError, RetryDeliveryHandler};
pub use revoke_recipient_tokens::{
    RevokeRecipientTokens, RevokeRecipientTokensError, RevokeRecipientTokensHandler,
};
pub use run_job::{RetentionPolicy, RunJob, RunJobError, RunJobHandler};
pub use send_test_notification::{
    SendTestNotification, SendTestNotificationError, SendTestNotificationHandler,
    TestChannelResult, TestStatus, TestTarget,
};
pub use set_preferences::{SetPreferences, SetPreferencesError, SetPreferencesHandler};
pub use upsert_recipient::{UpsertRecipients, UpsertRecipientsError, UpsertRecipientsHandler};
