//! The names (statuses, channels, kinds, jobs…), path parameters and headers the routes share,
//! as schemas of the OpenAPI document. The routes read them as text and check them one by one,
//! so that every invalid one is named.

use utoipa::{IntoParams, ToSchema};

/// Which notifications an inbox listing shows.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InboxFilter {
    /// Not read yet.
    Unread,
    /// Read.
    Read,
    /// Both.
    All,
}

/// The `{id}` of the recipient routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path, names("id"))]
pub struct RecipientPath(
    /// The host application's user id: 1 to 128 letters, digits, `_ - . : @`, but not `.` or
    /// `..` (422).
    #[param(pattern = r"^(?!\.\.?$)[A-Za-z0-9_\-.:@]{1,128}$")]
    pub String,
);

/// The `{id}` of the notification and delivery routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path, names("id"))]
pub struct IdPath(
    /// An id this service gave out (a UUIDv7 today; 1 to 64 letters, digits, `-` or `_`).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub String,
);

/// The optional `Idempotency-Key` header of the ingestion POSTs (IETF draft
/// `draft-ietf-httpapi-idempotency-key-header`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters. Retrying with the same key and request answers the
    /// first answer (with `Idempotent-Replayed: true`) and creates nothing; kept 24 h.
    #[param(rename = "Idempotency-Key", pattern = "^[\\x21-\\x7E]{1,255}$")]
    pub idempotency_key: Option<String>,
}

/// A delivery status, as the API names it.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    /// Waiting for a worker (or for `next_attempt_at`).
    Pending,
    /// Claimed by a worker.
    Sending,
    /// The provider accepted it.
    Sent,
    /// Failed transiently; tried again later.
    Retrying,
    /// Refused for good by the provider.
    Failed,
    /// Every attempt failed.
    Dead,
    /// The channel cannot reach the recipient.
    Skipped,
    /// Cancelled before it went out (a cancelled reminder).
    Cancelled,
    /// Held for the recipient's digest of the channel, until its window's end
    /// (`next_attempt_at`).
    Batched,
}

/// A channel, as the API names it.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ChannelName {
    /// The in-app inbox.
    InApp,
    /// Email (SMTP).
    Email,
    /// Telegram.
    Telegram,
    /// Slack (incoming webhooks).
    Slack,
    /// A signed webhook.
    Webhook,
    /// SMS.
    Sms,
    /// WhatsApp.
    #[schema(rename = "whatsapp")]
    WhatsApp,
    /// Web Push (one delivery per browser subscription).
    WebPush,
}

/// A channel name of the catalogue preferences and consents may name
/// (`clairon_domain::KNOWN_CHANNELS`): the channels delivered today and those announced.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum KnownChannelName {
    /// The in-app inbox (cannot be switched off).
    InApp,
    /// Email.
    Email,
    /// Telegram.
    Telegram,
    /// Slack (announced).
    Slack,
    /// Webhooks (announced).
    Webhook,
    /// SMS (announced).
    Sms,
    /// WhatsApp (announced).
    Whatsapp,
    /// Web Push (announced).
    WebPush,
}

/// A recipient id, as the host application names its users.
#[derive(Debug, ToSchema)]
#[schema(as = RecipientId, pattern = r"^(?!\.\.?$)[A-Za-z0-9_\-.:@]{1,128}$")]
pub struct RecipientIdSchema(pub String);

/// A topic key.
#[derive(Debug, ToSchema)]
#[schema(as = TopicKey, pattern = r"^[a-z0-9][a-z0-9._-]{0,99}$")]
pub struct TopicKeySchema(pub String);

/// The `{key}` of the topic routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path, names("key"))]
pub struct TopicPath(
    /// `[a-z0-9][a-z0-9._-]{0,99}` (422 naming `key` otherwise).
    #[param(pattern = r"^[a-z0-9][a-z0-9._-]{0,99}$")]
    pub String,
);

/// A notification's kind.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum KindName {
    /// Neutral.
    Info,
    /// Something went well.
    Success,
    /// Needs attention.
    Warning,
    /// Something went wrong.
    Error,
}

/// A notification's priority.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PriorityName {
    /// Delivered first.
    Critical,
    /// Before normal.
    High,
    /// The default.
    Normal,
    /// Last.
    Low,
}

/// What happened to a planning.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PlanningEventName {
    /// Artists were assigned.
    Assigned,
    /// Time, place, title or contact changed.
    Modified,
    /// It will not take place.
    Cancelled,
    /// The host's own reminder.
    Reminder,
}

/// A job's name: a built-in job (`lease_reaper`, `retention`, `idempotency_purge`, `digests`, `dead_letter_alert`), a job of
/// `CLAIRON_JOBS_FILE` (`sync-gazelle`), or an outside system's job reported through
/// `POST /api/v1/job-runs`.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$", example = "sync-gazelle")]
pub struct JobName(pub String);

/// Where a job run stands.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobStatusName {
    /// Started, not finished yet.
    Running,
    /// It did its work.
    Success,
    /// It did its work, with something to look at (`message`).
    Warning,
    /// It failed; `error_details` says why.
    Error,
    /// A chained job not run because its parent failed; `message` says which.
    Skipped,
}

/// The statuses a run can be reported in.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ReportedStatusName {
    /// Started; end it with `PATCH /api/v1/job-runs/{id}`.
    Running,
    /// It did its work.
    Success,
    /// It did its work, with something to look at.
    Warning,
    /// It failed (emits `job.failed`).
    Error,
}

/// How a running run can end.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EndStatusName {
    /// It did its work.
    Success,
    /// It did its work, with something to look at.
    Warning,
    /// It failed (emits `job.failed`).
    Error,
}

/// Where a job run happened.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobSourceName {
    /// Run by Clairon (its scheduler, `clairon run-job`, the admin API).
    Internal,
    /// Reported by an outside system (`POST /api/v1/job-runs`).
    External,
}

/// What kind of work a run is (seed 003's `task_type`).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TaskTypeName {
    /// A synchronisation.
    Sync,
    /// A report.
    Report,
    /// A chain of tasks.
    Chain,
    /// A backup.
    Backup,
    /// Anything else.
    Other,
}

/// What started a run, as an outside system reports it.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TriggeredByName {
    /// Its scheduler (recorded, and shown, as `schedule`).
    Scheduler,
    /// Someone by hand.
    Manual,
    /// An API call.
    Api,
}

/// What started a run, as recorded.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobTriggerName {
    /// A scheduler.
    Schedule,
    /// Someone by hand (`clairon run-job`).
    Manual,
    /// An API call (`POST /api/v1/admin/jobs/{job}/run`).
    Api,
}

/// `?endpoint=` of `DELETE /api/v1/me/push-subscriptions`.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushEndpointQuery {
    /// The endpoint of the subscription to delete, as it was posted.
    #[param(min_length = 1, max_length = 2000)]
    pub endpoint: String,
}
