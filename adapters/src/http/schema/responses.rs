//! Response bodies as the API sends them: the one place their JSON shape is decided, so the
//! OpenAPI document (`ToSchema`) and the wire cannot drift apart.
//!
//! They are built from the application's read models (`NotificationView`, `DeliveryView`, …),
//! which stay free of any HTTP or OpenAPI concern.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clairon_application::commands::{CreatedNotification, TestChannelResult, TestStatus};
use clairon_application::ports::JobRun;
use clairon_application::queries::{
    AttemptView, ConsentView, DeliveryListItem, DeliveryView, JobStats, NotificationDetailsView,
    NotificationView, OperationsStats, RecipientExportView, RecipientProfileView,
};
use clairon_domain::{Consent, DeliveryStatus, Preferences, Recipient};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::params::{
    ChannelName, DeliveryStatusName, JobName, JobSourceName, JobStatusName, JobTriggerName,
    TaskTypeName,
};

/// `GET /health/live`: the process serves HTTP.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
    /// The running version (semver).
    pub version: &'static str,
}

/// The state of each thing `/health/ready` checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// `ok`, `unavailable`, `read-only` or `write failed`.
    #[schema(pattern = "^(ok|unavailable|read-only|write failed)$")]
    pub database: &'static str,
    /// `ok`, `pending`, or `unknown` (the database does not answer).
    #[schema(pattern = "^(ok|pending|unknown)$")]
    pub migrations: &'static str,
    /// `running`, `degraded` (a worker was restarted after a panic) or `stopped`.
    #[schema(pattern = "^(running|degraded|stopped)$")]
    pub dispatcher: &'static str,
    /// Dispatcher workers restarted after a panic since start-up.
    pub dispatcher_restarts: u64,
    /// The running version (semver).
    pub version: &'static str,
}

/// `GET /health/ready` and `GET /health` when this process can do its work.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok`, or `degraded` once a dispatcher worker had to be restarted (deliveries go on).
    #[schema(pattern = "^(ok|degraded)$")]
    pub status: &'static str,
    /// What was checked.
    #[serde(flatten)]
    pub checks: ReadinessChecks,
}

/// The 503 `application/problem+json` of `/health/ready`: a [`crate::http::problem::Problem`]
/// (RFC 7807) with two extension members, `not_ready` and `checks`; the document names it
/// `Problem`, as every error answer.
#[derive(Debug, Serialize)]
pub struct NotReady {
    /// `https://clairon.dev/problems/not-ready`.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// `Not ready`.
    pub title: &'static str,
    /// 503.
    pub status: u16,
    /// `not ready: ` and what is not.
    pub detail: String,
    /// What is not ready: `database`, `migrations`, `dispatcher`.
    pub not_ready: Vec<&'static str>,
    /// The state of each check.
    pub checks: ReadinessChecks,
}

/// A job run (Clairon's or an outside system's), as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunResponse {
    /// The run's id (a UUID).
    pub id: String,
    /// The job.
    #[schema(value_type = JobName)]
    pub job: String,
    /// `internal` (run by Clairon) or `external` (reported).
    #[schema(value_type = JobSourceName)]
    pub source: &'static str,
    /// What kind of work.
    #[schema(value_type = TaskTypeName)]
    pub task_type: &'static str,
    /// What started it: `schedule`, `manual` or `api`.
    #[schema(value_type = JobTriggerName)]
    pub trigger: &'static str,
    /// Who started it by hand, when reported.
    pub triggered_by_user: Option<String>,
    /// The run of the job this one is chained after.
    pub parent_run_id: Option<String>,
    /// The scheduled occurrence this run is (RFC 3339), for a scheduler's run.
    pub occurrence: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339); `null` while running.
    pub finished_at: Option<String>,
    /// How long it took, in ms; `null` while running.
    pub duration_ms: Option<u64>,
    /// Where it stands.
    #[schema(value_type = JobStatusName)]
    pub status: &'static str,
    /// A one-line summary (a skipped run's says which parent failed).
    pub message: Option<String>,
    /// What the job counted (its own fields, per job: rows purged, an HTTP job's JSON answer…).
    #[schema(value_type = Object)]
    pub stats: Value,
    /// Why it failed.
    pub error_details: Option<String>,
    /// The same as `error_details` (its name before external runs existed).
    pub error: Option<String>,
}

impl From<&JobRun> for JobRunResponse {
    fn from(run: &JobRun) -> Self {
        Self {
            id: run.id.clone(),
            job: run.job.clone(),
            source: run.source.as_str(),
            task_type: run.task_type.as_str(),
            trigger: run.trigger.as_str(),
            triggered_by_user: run.triggered_by_user.clone(),
            parent_run_id: run.parent_run_id.clone(),
            occurrence: run.occurrence.map(|t| t.to_rfc3339()),
            started_at: run.started_at.to_rfc3339(),
            finished_at: run.finished_at.map(|t| t.to_rfc3339()),
            duration_ms: run.duration_ms,
            status: run.status.as_str(),
            message: run.message.clone(),
            stats: run.stats.clone(),
            error_details: run.error.clone(),
            error: run.error.clone(),
        }
    }
}

/// The runs a manual run made: the job's own, then the jobs chained after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunChainResponse {
    /// The job's run.
    #[serde(flatten)]
    pub run: JobRunResponse,
    /// The runs of the jobs chained after it (run, or `skipped` when their parent failed),
    /// depth first.
    pub chained: Vec<JobRunResponse>,
}

/// A page of job runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunList {
    /// The runs.
    pub items: Vec<JobRunResponse>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One channel's deliveries created in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelStatsResponse {
    /// The channel.
    #[schema(value_type = ChannelName)]
    pub channel: &'static str,
    /// Deliveries created in the window.
    pub total: u64,
    /// How many are in each status, by status name.
    pub by_status: BTreeMap<&'static str, u64>,
    /// Sent among those that ended (0 to 1); `null` when none ended.
    pub success_rate: Option<f64>,
    /// Median time from creation to sent, in ms.
    pub p50_latency_ms: Option<u64>,
    /// 95th percentile of the time from creation to sent, in ms.
    pub p95_latency_ms: Option<u64>,
}

/// Deliveries created in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryStats {
    /// All channels together.
    pub total: u64,
    /// Per channel.
    pub by_channel: Vec<ChannelStatsResponse>,
    /// Deliveries `dead` now.
    pub dead_letters: u64,
}

/// The newest run of a job in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastJobRun {
    /// Its id.
    pub id: String,
    /// `internal` or `external`.
    #[schema(value_type = JobSourceName)]
    pub source: &'static str,
    /// Where it stands.
    #[schema(value_type = JobStatusName)]
    pub status: &'static str,
    /// What started it.
    #[schema(value_type = JobTriggerName)]
    pub trigger: &'static str,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took, in ms; `null` while running.
    pub duration_ms: Option<u64>,
}

/// One job's runs in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatsResponse {
    /// The job.
    #[schema(value_type = JobName)]
    pub job: String,
    /// Runs that ended in the window (`running` ones not counted).
    pub runs: u64,
    /// Runs that ended `success` or `warning`.
    pub succeeded: u64,
    /// Runs that ended `error`.
    pub failed: u64,
    /// Runs `skipped` (a chained job whose parent failed).
    pub skipped: u64,
    /// Runs still `running`.
    pub running: u64,
    /// `succeeded / runs` (0 to 1); `null` without runs.
    pub success_rate: Option<f64>,
    /// Median duration of the runs that ran, in ms.
    pub p50_duration_ms: Option<u64>,
    /// 95th percentile of the duration, in ms.
    pub p95_duration_ms: Option<u64>,
    /// Mean duration, in ms.
    pub mean_duration_ms: Option<u64>,
    /// Longest run, in ms.
    pub max_duration_ms: Option<u64>,
    /// The newest run in the window, `null` without runs.
    pub last_run: Option<LastJobRun>,
}

impl From<&JobStats> for JobStatsResponse {
    fn from(j: &JobStats) -> Self {
        Self {
            job: j.job.clone(),
            runs: j.runs,
            succeeded: j.succeeded,
            failed: j.failed,
            skipped: j.skipped,
            running: j.running,
            success_rate: j.success_rate,
            p50_duration_ms: j.p50_duration_ms,
            p95_duration_ms: j.p95_duration_ms,
            mean_duration_ms: j.mean_duration_ms,
            max_duration_ms: j.max_duration_ms,
            last_run: j.last_run.as_ref().map(|r| LastJobRun {
                id: r.id.clone(),
                source: r.source.as_str(),
                status: r.status.as_str(),
                trigger: r.trigger.as_str(),
                started_at: r.started_at.to_rfc3339(),
                duration_ms: r.duration_ms,
            }),
        }
    }
}

/// `GET /api/v1/admin/job-stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatsList {
    /// Start of the window (RFC 3339).
    pub since: String,
    /// Per job: the built-in ones, the jobs file's, then any other with runs.
    pub jobs: Vec<JobStatsResponse>,
}

/// Deliveries of one channel in one status, now.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCount {
    /// The channel.
    #[schema(value_type = ChannelName)]
    pub channel: &'static str,
    /// The status.
    #[schema(value_type = DeliveryStatusName)]
    pub status: &'static str,
    /// How many.
    pub count: u64,
}

/// The queue now.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStats {
    /// Deliveries per channel and status.
    pub depth: Vec<QueueCount>,
    /// Per channel: the age of its oldest delivery that is due and not sent, in seconds.
    pub oldest_due_age_seconds: BTreeMap<&'static str, u64>,
    /// Per channel: deliveries waiting for a later time (reminders, scheduled notifications,
    /// retries not yet due), counted in `depth` too; future work, not a stuck queue.
    pub scheduled_later: BTreeMap<&'static str, u64>,
}

/// `GET /api/v1/admin/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationsStatsResponse {
    /// Start of the window (RFC 3339).
    pub since: String,
    /// End of the window: now (RFC 3339).
    pub until: String,
    /// Deliveries created in the window.
    pub deliveries: DeliveryStats,
    /// Background job runs in the window, per job.
    pub jobs: Vec<JobStatsResponse>,
    /// The queue now.
    pub queue: QueueStats,
}

impl From<&OperationsStats> for OperationsStatsResponse {
    fn from(stats: &OperationsStats) -> Self {
        Self {
            since: stats.since.to_rfc3339(),
            until: stats.now.to_rfc3339(),
            deliveries: DeliveryStats {
                total: stats.channels.iter().map(|c| c.total).sum(),
                by_channel: stats
                    .channels
                    .iter()
                    .map(|c| ChannelStatsResponse {
                        channel: c.channel.as_str(),
                        total: c.total,
                        by_status: c.by_status.clone(),
                        success_rate: c.success_rate,
                        p50_latency_ms: c.p50_latency_ms,
                        p95_latency_ms: c.p95_latency_ms,
                    })
                    .collect(),
                dead_letters: stats.dead_letters,
            },
            jobs: stats.jobs.iter().map(JobStatsResponse::from).collect(),
            queue: QueueStats {
                depth: stats
                    .queue
                    .counts
                    .iter()
                    .map(|c| QueueCount {
                        channel: c.channel.as_str(),
                        status: c.status.as_str(),
                        count: c.count,
                    })
                    .collect(),
                oldest_due_age_seconds: stats
                    .queue
                    .oldest_due_age_secs
                    .iter()
                    .map(|(c, age)| (c.as_str(), *age))
                    .collect(),
                scheduled_later: stats
                    .queue
                    .scheduled_later
                    .iter()
                    .map(|(c, n)| (c.as_str(), *n))
                    .collect(),
            },
        }
    }
}

/// A registered recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientResponse {
    /// The host application's user id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address, if any.
    pub email: Option<String>,
    /// Telegram chat id, if any (always a string here).
    pub telegram_chat_id: Option<String>,
    /// E.164 phone, if any.
    pub phone: Option<String>,
    /// `fr` or `en`, if set.
    pub locale: Option<String>,
    /// IANA time zone, if set.
    pub timezone: Option<String>,
    /// Why Telegram refused the current chat id for good, or null.
    pub telegram_unreachable: Option<String>,
    /// Their signed-webhook endpoint (host only, never the secret), or null when none.
    pub webhook: Option<WebhookView>,
    /// Whether they have a Slack webhook URL (the URL itself is write-only), and why Slack
    /// cannot reach it when it refused it for good.
    pub slack: SlackView,
}

/// A recipient's Slack as the API shows it: never the URL (it is the credential).
#[derive(Debug, Serialize, ToSchema)]
pub struct SlackView {
    /// Whether a Slack incoming-webhook URL is set.
    pub configured: bool,
    /// Why Slack refused the current URL for good (`404`/`410`, `no_service`,
    /// `channel_not_found`, `invalid_token`), until the URL changes; or null.
    pub unreachable: Option<String>,
}

/// A recipient's webhook endpoint as the API shows it: the host alone (the path or query may
/// carry a token) and whether a signing secret is set; the secret itself is write-only.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// The URL's host (`hooks.example.org`, `127.0.0.1`).
    pub url: String,
    /// Whether a URL and a secret are set.
    pub configured: bool,
    /// Why the endpoint is disabled (it answered `410 Gone`), until the URL changes; or null.
    pub disabled: Option<String>,
}

impl From<&Recipient> for RecipientResponse {
    fn from(r: &Recipient) -> Self {
        Self {
            id: r.id.as_str().to_owned(),
            name: r.name.as_str().to_owned(),
            email: r.email.as_ref().map(|e| e.as_str().to_owned()),
            telegram_chat_id: r.telegram_chat_id.as_ref().map(|c| c.as_str().to_owned()),
            phone: r.phone.as_ref().map(|p| p.as_str().to_owned()),
            locale: r.locale.map(|l| l.as_str().to_owned()),
            timezone: r.timezone.map(|t| t.name().to_owned()),
            telegram_unreachable: r.telegram_unreachable.clone(),
            webhook: r.webhook_url.as_ref().map(|url| WebhookView {
                url: url.host(),
                configured: r.webhook_secret.is_some(),
                disabled: r.webhook_disabled.clone(),
            }),
            slack: SlackView {
                configured: r.slack_webhook_url.is_some(),
                unreachable: r.slack_unreachable.clone(),
            },
        }
    }
}

/// `POST /api/v1/recipients/import`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// Recipients that did not exist.
    pub created: usize,
    /// Recipients that existed and were replaced.
    pub updated: usize,
}

/// A channel the notification will not be delivered on, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedChannel {
    /// `in_app`, `email` or `telegram`.
    pub channel: &'static str,
    /// Why (no address, no bot token, Telegram refused the chat, …).
    pub reason: Option<String>,
}

/// A notification just created: where it goes and where it does not.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedNotificationResponse {
    /// UUIDv7.
    pub id: String,
    /// Whose.
    pub recipient_id: String,
    /// Channels it will be delivered on.
    pub channels: Vec<&'static str>,
    /// Channels it will not be delivered on, with the reason.
    pub skipped: Vec<SkippedChannel>,
}

impl From<&CreatedNotification> for CreatedNotificationResponse {
    fn from(n: &CreatedNotification) -> Self {
        let (skipped, planned): (Vec<_>, Vec<_>) = n
            .deliveries
            .iter()
            .partition(|d| d.status == DeliveryStatus::Skipped);
        Self {
            id: n.id.as_str().to_owned(),
            recipient_id: n.recipient_id.as_str().to_owned(),
            channels: planned.iter().map(|d| d.channel.as_str()).collect(),
            skipped: skipped
                .iter()
                .map(|d| SkippedChannel {
                    channel: d.channel.as_str(),
                    reason: d.reason.clone(),
                })
                .collect(),
        }
    }
}

/// Shapes a batch of created notifications.
pub fn created(created: &[CreatedNotification]) -> Vec<CreatedNotificationResponse> {
    created.iter().map(Into::into).collect()
}

/// `POST /api/v1/notifications`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationsAccepted {
    /// One per recipient.
    pub notifications: Vec<CreatedNotificationResponse>,
    /// When they will be delivered (RFC 3339, UTC), for a scheduled request; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime, required = false)]
    pub deliver_at: Option<String>,
}

/// `POST /api/v1/notifications/plannings/{planning_id}/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanningEventAccepted {
    /// The producer's event id.
    pub event_id: String,
    /// The planning.
    pub planning_id: String,
    /// Whether the event had been seen before (nothing new was created).
    pub replayed: bool,
    /// One per person told (reminders are not listed).
    pub notifications: Vec<CreatedNotificationResponse>,
}

/// A notification as an inbox shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationResponse {
    /// UUIDv7.
    pub id: String,
    /// Whose.
    pub recipient_id: String,
    /// `info|success|warning|error`.
    #[schema(pattern = "^(info|success|warning|error)$")]
    pub kind: &'static str,
    /// `critical|high|normal|low`.
    #[schema(pattern = "^(critical|high|normal|low)$")]
    pub priority: &'static str,
    /// Title.
    pub title: String,
    /// Plain-text body.
    pub body: String,
    /// Call-to-action URL.
    pub action_url: Option<String>,
    /// Call-to-action label.
    pub action_label: Option<String>,
    /// The producer's data, as sent.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// `planning.assigned`, `custom`, …
    pub event_type: String,
    /// The event it came from.
    pub source_event_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339, UTC; null while unread.
    pub read_at: Option<DateTime<Utc>>,
    /// Whether it was read.
    pub read: bool,
}

impl From<NotificationView> for NotificationResponse {
    fn from(n: NotificationView) -> Self {
        Self {
            id: n.id,
            recipient_id: n.recipient_id,
            kind: n.kind,
            priority: n.priority,
            title: n.title,
            body: n.body,
            action_url: n.action_url,
            action_label: n.action_label,
            metadata: n.metadata,
            event_type: n.event_type,
            source_event_id: n.source_event_id,
            created_at: n.created_at,
            read_at: n.read_at,
            read: n.read,
        }
    }
}

/// A page of an inbox, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// The notifications.
    pub items: Vec<NotificationResponse>,
    /// Pass it back as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `{"unread": n}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCountResponse {
    /// Unread notifications that are due and not cancelled.
    pub unread: u64,
}

/// `POST …/read-all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedAllRead {
    /// How many were unread and are now read.
    pub marked: u64,
    /// Always 0.
    pub unread: u64,
}

/// One try of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    /// 1 for the first try; a 429 does not use up a number; a manual retry starts again at 1.
    pub number: u32,
    /// RFC 3339, UTC.
    pub started_at: DateTime<Utc>,
    /// How long the provider took, in ms.
    pub duration_ms: u64,
    /// `sent|transient|rate_limited|permanent`.
    pub outcome: String,
    /// The failure, when it failed.
    pub error: Option<String>,
    /// The provider's response id, when it gave one.
    pub provider_response_id: Option<String>,
}

impl From<AttemptView> for AttemptResponse {
    fn from(a: AttemptView) -> Self {
        Self {
            number: a.number,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            outcome: a.outcome,
            error: a.error,
            provider_response_id: a.provider_response_id,
        }
    }
}

/// A delivery: a notification on one channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// UUIDv7.
    pub id: String,
    /// `in_app|email|telegram|slack|webhook|sms|whatsapp|web_push`.
    #[schema(pattern = "^(in_app|email|telegram|slack|webhook|sms|whatsapp|web_push)$")]
    pub channel: &'static str,
    /// `pending|sending|sent|retrying|failed|dead|skipped|cancelled|batched`.
    #[schema(pattern = "^(pending|sending|sent|retrying|failed|dead|skipped|cancelled|batched)$")]
    pub status: &'static str,
    /// Tries made.
    pub attempts: u32,
    /// The skip reason or the last failure.
    pub last_error: Option<String>,
    /// The provider's message id.
    pub provider_message_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339, UTC.
    pub sent_at: Option<DateTime<Utc>>,
    /// Why it was skipped or cancelled, `"<code>: <detail>"`: `unreachable: …`, `no_consent:
    /// <channel>`, `opted_out: <entry>` (`opted_out: event_types.planning.modified.email`),
    /// `consent_revoked`; `null` for other statuses.
    pub reason: Option<String>,
    /// When it is due (RFC 3339, UTC) while `pending` or `retrying` — for an email postponed by
    /// quiet hours, their end; `null` otherwise.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// In a fallback chain: the id of the delivery (same notification) this one stands in for,
    /// the link before it that gave up (`failed`, `dead`, `skipped` as unreachable); `null`
    /// outside a chain and for its first link.
    pub fallback_of: Option<String>,
    /// The channels of its chain still to try, in order, should this one give up (left out
    /// when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub fallback: Vec<&'static str>,
    /// Every try, in order (in `GET /api/v1/notifications/{id}` only, and only once tried).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub attempt_log: Vec<AttemptResponse>,
}

impl From<DeliveryView> for DeliveryResponse {
    fn from(d: DeliveryView) -> Self {
        Self {
            id: d.id,
            channel: d.channel,
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
            provider_message_id: d.provider_message_id,
            created_at: d.created_at,
            sent_at: d.sent_at,
            reason: d.reason,
            next_attempt_at: d.next_attempt_at,
            fallback_of: d.fallback_of,
            fallback: d.fallback,
            attempt_log: d.attempt_log.into_iter().map(Into::into).collect(),
        }
    }
}

/// A notification with its deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDetails {
    /// The notification's fields.
    #[serde(flatten)]
    pub notification: NotificationResponse,
    /// One per channel.
    pub deliveries: Vec<DeliveryResponse>,
}

impl From<NotificationDetailsView> for NotificationDetails {
    fn from(d: NotificationDetailsView) -> Self {
        Self {
            notification: d.notification.into(),
            deliveries: d.deliveries.into_iter().map(Into::into).collect(),
        }
    }
}

/// A recipient's profile in an export: every field as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientProfile {
    /// The host application's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: Option<String>,
    /// Telegram chat id or `@username`.
    pub telegram_chat_id: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// `fr` or `en`.
    pub locale: Option<&'static str>,
    /// IANA zone name.
    pub timezone: Option<String>,
    /// Why Telegram refused their chat id for good, if it did.
    pub telegram_unreachable: Option<String>,
    /// Their webhook URL (the signing secret is never exported).
    pub webhook_url: Option<String>,
    /// Why their webhook endpoint is disabled, if it answered 410.
    pub webhook_disabled: Option<String>,
    /// Whether they have a Slack webhook URL (the URL, a credential, is never exported).
    pub slack_configured: bool,
    /// Why Slack refused their webhook URL for good, if it did.
    pub slack_unreachable: Option<String>,
}

impl From<RecipientProfileView> for RecipientProfile {
    fn from(r: RecipientProfileView) -> Self {
        Self {
            id: r.id,
            name: r.name,
            email: r.email,
            telegram_chat_id: r.telegram_chat_id,
            phone: r.phone,
            locale: r.locale,
            timezone: r.timezone,
            telegram_unreachable: r.telegram_unreachable,
            webhook_url: r.webhook_url,
            webhook_disabled: r.webhook_disabled,
            slack_configured: r.slack_configured,
            slack_unreachable: r.slack_unreachable,
        }
    }
}

/// `GET /api/v1/recipients/{id}/export`: everything held about a recipient (GDPR art. 15, 20).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientExport {
    /// When it was made (RFC 3339, UTC).
    pub exported_at: DateTime<Utc>,
    /// The profile.
    pub recipient: RecipientProfile,
    /// Every notification, oldest first (scheduled, cancelled and read ones included), each
    /// with its deliveries and their `attempt_log`.
    pub notifications: Vec<NotificationDetails>,
    /// Their preference document (the defaults when they never set one).
    pub preferences: PreferencesDocument,
    /// When they last set it (RFC 3339, UTC); `null` if never.
    pub preferences_updated_at: Option<DateTime<Utc>>,
    /// Their consent history, newest first.
    pub consents: Vec<ConsentResponse>,
    /// The keys of the topics they are a member of, sorted.
    pub topics: Vec<String>,
    /// The endpoints of their Web Push subscriptions, oldest first.
    pub push_subscriptions: Vec<String>,
}

impl From<RecipientExportView> for RecipientExport {
    fn from(e: RecipientExportView) -> Self {
        Self {
            exported_at: e.exported_at,
            recipient: e.recipient.into(),
            notifications: e.notifications.into_iter().map(Into::into).collect(),
            preferences: PreferencesDocument(e.preferences),
            preferences_updated_at: e.preferences_updated_at,
            consents: e.consents.into_iter().map(Into::into).collect(),
            topics: e.topics,
            push_subscriptions: e.push_subscriptions,
        }
    }
}

/// A preference document as stored and served, every key present:
/// `{"channels": {"<channel>": bool}, "event_types": {"<type or prefix.*>": {"<channel>": bool}},
/// "quiet_hours": null | {"start": "HH:MM", "end": "HH:MM"}}`. A recipient who never set one
/// reads `{"channels": {}, "event_types": {}, "quiet_hours": null}`: everything allowed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = super::requests::PreferencesBody)]
#[serde(transparent)]
pub struct PreferencesDocument(pub Value);

impl From<&Preferences> for PreferencesDocument {
    fn from(p: &Preferences) -> Self {
        Self(p.to_json())
    }
}

/// A consent record: `POST …/consents` answers it (201), `GET …/consents` lists them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentResponse {
    /// Its number, increasing in recording order.
    pub id: i64,
    /// A catalogue channel name.
    #[schema(pattern = "^(in_app|email|telegram|slack|webhook|sms|whatsapp|web_push)$")]
    pub channel: &'static str,
    /// Granted (`true`) or withdrawn (`false`).
    pub granted: bool,
    /// Where it was given or withdrawn.
    pub source: String,
    /// The words shown, if any.
    pub wording: Option<String>,
    /// RFC 3339, UTC.
    pub recorded_at: DateTime<Utc>,
}

impl From<ConsentView> for ConsentResponse {
    fn from(c: ConsentView) -> Self {
        Self {
            id: c.id,
            channel: c.channel,
            granted: c.granted,
            source: c.source,
            wording: c.wording,
            recorded_at: c.recorded_at,
        }
    }
}

impl From<Consent> for ConsentResponse {
    fn from(c: Consent) -> Self {
        ConsentView::from(c).into()
    }
}

/// `GET …/consents`: the history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    /// Every record, newest first; the current state of a channel is its first record here.
    pub consents: Vec<ConsentResponse>,
}

/// A delivery in a listing, with whose notification it carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryListEntry {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryResponse,
    /// The notification it delivers.
    pub notification_id: String,
    /// Who it goes to.
    pub recipient_id: String,
}

impl From<DeliveryListItem> for DeliveryListEntry {
    fn from(i: DeliveryListItem) -> Self {
        Self {
            delivery: i.delivery.into(),
            notification_id: i.notification_id,
            recipient_id: i.recipient_id,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// The deliveries.
    pub items: Vec<DeliveryListEntry>,
    /// Pass it back as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The outcome of a test send on one channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// `in_app|email|telegram|slack|webhook|sms|whatsapp|web_push`.
    pub channel: &'static str,
    /// `sent|failed|skipped`.
    #[schema(pattern = "^(sent|failed|skipped)$")]
    pub status: &'static str,
    /// The provider's message id, the failure, or the skip reason.
    pub detail: String,
}

impl From<&TestChannelResult> for TestResult {
    fn from(r: &TestChannelResult) -> Self {
        Self {
            channel: r.channel.as_str(),
            status: match r.status {
                TestStatus::Sent => "sent",
                TestStatus::Failed => "failed",
                TestStatus::Skipped => "skipped",
            },
            detail: r.detail.clone(),
        }
    }
}

/// `POST /api/v1/notifications/test`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResults {
    /// One per channel tried.
    pub results: Vec<TestResult>,
}

/// `POST /api/v1/recipients/{id}/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The recipient token (a JWT, HS256) for `/api/v1/me`.
    pub token: String,
    /// When it expires (RFC 3339).
    pub expires_at: DateTime<Utc>,
}

/// `GET|PUT /api/v1/topics/{key}`, `POST …/subscribers`: a topic and its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicResponse {
    /// `[a-z0-9][a-z0-9._-]{0,99}`.
    #[schema(value_type = super::params::TopicKeySchema)]
    pub key: String,
    /// Display name.
    pub name: String,
    /// Every member, sorted.
    #[schema(value_type = Vec<super::params::RecipientIdSchema>)]
    pub recipient_ids: Vec<String>,
    /// RFC 3339, UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339, UTC.
    pub updated_at: DateTime<Utc>,
}

impl From<&clairon_domain::Topic> for TopicResponse {
    fn from(t: &clairon_domain::Topic) -> Self {
        Self {
            key: t.key.as_str().to_owned(),
            name: t.name.as_str().to_owned(),
            recipient_ids: t
                .recipient_ids
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// `POST /api/v1/events`: what the event created (or, replayed, had created).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAccepted {
    /// The producer's event id.
    pub event_id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Whether the event id had been seen before (nothing new was created).
    pub replayed: bool,
    /// One per recipient reached (listed, topics' members, the routing rule's topics' members).
    pub notifications: Vec<CreatedNotificationResponse>,
}

/// One routing rule, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingRuleResponse {
    /// An event type or `prefix.*`.
    pub event: String,
    /// Topics whose members are told too.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub topics: Option<Vec<String>>,
    /// The only channels used.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<ChannelName>>, required = false)]
    pub channels: Option<Vec<String>>,
    /// The priority it raises its events to.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::params::PriorityName>, required = false)]
    pub priority: Option<String>,
    /// Its fallback chain, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<ChannelName>>, required = false)]
    pub fallback: Option<Vec<String>>,
}

/// `GET /api/v1/routing-rules`: the rules in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingRulesResponse {
    /// The version in force: 1, 2, 3… for stored sets; 0 for the built-in default set
    /// (`job.failed` → topic `admins`, priority `high`) while none was ever stored.
    pub version: i64,
    /// When it was stored (RFC 3339, UTC); absent for the built-in set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime, required = false)]
    pub created_at: Option<DateTime<Utc>>,
    /// The rules, in the order they were written.
    pub rules: Vec<RoutingRuleResponse>,
}

impl From<&clairon_application::ports::RulesVersion> for RoutingRulesResponse {
    fn from(v: &clairon_application::ports::RulesVersion) -> Self {
        Self {
            version: v.version,
            created_at: v.created_at,
            rules: v
                .rules
                .to_raw()
                .into_iter()
                .map(|r| RoutingRuleResponse {
                    event: r.event,
                    topics: r.topics,
                    channels: r.channels,
                    priority: r.priority,
                    fallback: r.fallback,
                })
                .collect(),
        }
    }
}

/// `PUT /api/v1/routing-rules`: the version just stored, now in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesVersionStored {
    /// The new version number.
    pub version: i64,
}

/// `GET /api/v1/push/vapid-public-key`: the key browsers subscribe with.
#[derive(Debug, Serialize, ToSchema)]
pub struct VapidPublicKey {
    /// The VAPID public key (RFC 8292 §3.2): base64url, no padding, of the 65-byte uncompressed
    /// P-256 point — the `applicationServerKey` of `PushManager.subscribe`.
    #[schema(
        example = "BDd3_hVL9fZi9Ybo2UUzA284WG5FZR30_95YeZJsiApwXKpNcF1rRPF3foIiBHXRdJI2Qhumhf6_LFTeZaNndIo"
    )]
    pub public_key: String,
}

/// `POST /api/v1/me/push-subscriptions` → 201: the subscription stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushSubscriptionCreated {
    /// Its endpoint, as posted: what `DELETE /api/v1/me/push-subscriptions?endpoint=` takes.
    pub endpoint: String,
}
