//! What the routes read from the app data: the use-case handlers, built once by the bootstrap.

use std::sync::Arc;

use clairon_application::commands::{
    CreateNotificationHandler, EraseRecipientHandler, FinishJobRunHandler, HandleEventHandler,
    HandlePlanningEventHandler, MarkAllNotificationsReadHandler, MarkNotificationReadHandler,
    OptOutHandler, PutRoutingRulesHandler, RecordConsentHandler, ReportJobRunHandler,
    RetryDeliveryHandler, RevokeRecipientTokensHandler, RunJobHandler, SendTestNotificationHandler,
    SetPreferencesHandler, TopicsHandler, UpsertRecipientsHandler,
};
use clairon_application::ports::{
    Clock, HealthProbe, IdempotencyStore, RecipientRepository, TopicRepository,
};
use clairon_application::queries::{
    ExportRecipientHandler, GetNotificationHandler, GetOperationsStatsHandler,
    GetPreferencesHandler, ListConsentsHandler, ListDeliveriesHandler, ListJobRunsHandler,
    ListNotificationsHandler, UnreadCountHandler,
};

/// Everything the routes call: the use-case handlers, built once by the bootstrap.
pub struct Handlers {
    /// `PUT /recipients/{id}`, `POST /recipients/import`.
    pub upsert_recipients: Arc<UpsertRecipientsHandler>,
    /// `GET /recipients/{id}` reads the repository directly: it is a plain lookup.
    pub recipients: Arc<dyn RecipientRepository>,
    /// `POST /notifications`.
    pub create_notification: Arc<CreateNotificationHandler>,
    /// `POST /notifications/plannings/{id}/events`.
    pub handle_planning_event: Arc<HandlePlanningEventHandler>,
    /// `GET /recipients/{id}/notifications`.
    pub list_notifications: Arc<ListNotificationsHandler>,
    /// `GET /recipients/{id}/notifications/unread-count`.
    pub unread_count: Arc<UnreadCountHandler>,
    /// `GET /notifications/{id}`.
    pub get_notification: Arc<GetNotificationHandler>,
    /// `POST /notifications/{id}/read`.
    pub mark_read: Arc<MarkNotificationReadHandler>,
    /// `POST /recipients/{id}/notifications/read-all`.
    pub mark_all_read: Arc<MarkAllNotificationsReadHandler>,
    /// `POST /notifications/test`.
    pub send_test: Arc<SendTestNotificationHandler>,
    /// `GET /deliveries`.
    pub list_deliveries: Arc<ListDeliveriesHandler>,
    /// `POST /deliveries/{id}/retry`.
    pub retry_delivery: Arc<RetryDeliveryHandler>,
    /// `/health`.
    pub health: Arc<dyn HealthProbe>,
    /// `Idempotency-Key` records of the ingestion POSTs.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// `POST /admin/jobs/{job}/run`.
    pub run_job: Arc<RunJobHandler>,
    /// `GET /admin/job-runs`.
    pub list_job_runs: Arc<ListJobRunsHandler>,
    /// `POST /job-runs`.
    pub report_job_run: Arc<ReportJobRunHandler>,
    /// `PATCH /job-runs/{id}`.
    pub finish_job_run: Arc<FinishJobRunHandler>,
    /// `GET /admin/stats`, `GET /admin/job-stats` and the dashboard.
    pub operations_stats: Arc<GetOperationsStatsHandler>,
    /// `GET /recipients/{id}/export`.
    pub export_recipient: Arc<ExportRecipientHandler>,
    /// `DELETE /recipients/{id}`.
    pub erase_recipient: Arc<EraseRecipientHandler>,
    /// `POST /recipients/{id}/tokens/revoke`.
    pub revoke_tokens: Arc<RevokeRecipientTokensHandler>,
    /// `GET …/preferences` (API key and `/me`).
    pub get_preferences: Arc<GetPreferencesHandler>,
    /// `PUT …/preferences` (API key and `/me`).
    pub set_preferences: Arc<SetPreferencesHandler>,
    /// `POST …/consents` (API key and `/me`).
    pub record_consent: Arc<RecordConsentHandler>,
    /// `GET …/consents` (API key and `/me`).
    pub list_consents: Arc<ListConsentsHandler>,
    /// The one-click unsubscribe (`POST /unsubscribe/{token}`): `event_types.<type>.email = false`.
    pub opt_out: Arc<OptOutHandler>,
    /// `PUT /topics/{key}`, `POST|DELETE /topics/{key}/subscribers…`.
    pub topics: Arc<TopicsHandler>,
    /// `GET /topics/{key}` reads the repository directly: it is a plain lookup.
    pub topic_store: Arc<dyn TopicRepository>,
    /// `POST /events`.
    pub handle_event: Arc<HandleEventHandler>,
    /// `GET|PUT /routing-rules`.
    pub routing_rules: Arc<PutRoutingRulesHandler>,
    /// "Now", for everything the routes date (tokens, idempotency records, statistics
    /// windows): the adapter reads wall-clock time through this port only.
    pub clock: Arc<dyn Clock>,
    /// The zone the dashboard's "since yesterday 18:00" is read in (`CLAIRON_DASHBOARD_TIMEZONE`).
    pub dashboard_zone: clairon_domain::TimeZone,
    /// Whether webhook URLs may name loopback, private or link-local addresses
    /// (`CLAIRON_WEBHOOK_ALLOW_PRIVATE`); `false` refuses them at `PUT /recipients/{id}`.
    pub webhook_allow_private: bool,
    /// The hosts a Slack webhook URL may name besides `https://hooks.slack.com/`
    /// (`CLAIRON_SLACK_ALLOWED_HOSTS`); others are refused at `PUT /recipients/{id}` with a 422.
    pub slack_hosts: clairon_domain::SlackHosts,
    /// The Web Push routes' store, key and endpoint rule.
    pub web_push: WebPushState,
}

/// What the Web Push routes need (`GET /api/v1/push/vapid-public-key`,
/// `/api/v1/me/push-subscriptions`).
#[derive(Debug, Clone)]
pub struct WebPushState {
    /// Where subscriptions are stored.
    pub subscriptions: crate::persistence::DieselPushSubscriptions,
    /// The VAPID public key, base64url of the uncompressed point.
    pub public_key: String,
    /// Hosts (`host` or `host:port`, lower case) whose endpoints may be plain `http`
    /// (`CLAIRON_PUSH_ALLOWED_HOSTS`).
    pub allowed_http_hosts: Vec<String>,
}
