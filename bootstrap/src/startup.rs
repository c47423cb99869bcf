//! Wiring: builds the adapters and the handlers from the settings, then runs the HTTP server
//! and the delivery dispatcher side by side until a shutdown signal.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App};
use anyhow::Context as _;
use clairon_adapters::channels::{
    FallbackEmailSender, FrankensteinTelegramSender, LettreEmailSender, PacedTelegramSender,
};
use clairon_adapters::channels::{PacedSlackSender, ReqwestSlackSender};
use clairon_adapters::channels::{PacedSmsSender, TwilioSmsSender};
use clairon_adapters::channels::{ReqwestWebhookSender, WebhookTargets};
use clairon_adapters::http::{
    self, AdminSessions, ApiKeys, BodyLimits, Handlers, HttpOptions, Live, Observability,
    RecipientTokens,
};
use clairon_adapters::jobs::ReqwestHttpJobClient;
use clairon_adapters::links::{PublicUrl, SignedUnsubscribeLinks, UnsubscribeTokens};
use clairon_adapters::metrics::{MeteredJobRunRepository, Metrics};
use clairon_adapters::persistence::DieselPushSubscriptions;
use clairon_adapters::persistence::WriteFailure;
use clairon_adapters::persistence::{
    Backend, Database, DieselApiKeyStore, DieselConsentRepository, DieselDeliveryQueue,
    DieselHousekeeping, DieselIdempotencyStore, DieselJobRunRepository,
    DieselNotificationRepository, DieselOperationsStats, DieselPersonalDataStore,
    DieselPreferenceRepository, DieselRecipientRepository, DieselRoutingRulesRepository,
    DieselTokenGenerations, DieselTopicRepository,
};
use clairon_adapters::realtime::batched::BatchedRelay;
use clairon_adapters::realtime::nats::NatsRelay;
use clairon_adapters::realtime::pg_notify::{start_listener, PgNotifyRelay};
use clairon_adapters::realtime::InProcessHub;
use clairon_adapters::system::{SystemClock, TokioTimer, UuidV7Generator};
use clairon_adapters::templates::{TemplateSet, TeraTemplateRenderer};
use clairon_application::alerts::RoutedJobAlerts;
use clairon_application::commands::{
    ChannelPolicy, ChoiceSources, ContextRedactor, CreateNotificationHandler,
    EraseRecipientHandler, FinishJobRunHandler, HandleEventHandler, HandlePlanningEventHandler,
    MarkAllNotificationsReadHandler, MarkNotificationReadHandler, OptOutHandler,
    PutRoutingRulesHandler, RecordConsentHandler, ReportJobRunHandler, RetentionPolicy,
    RetryDeliveryHandler, RevokeRecipientTokensHandler, RunJobHandler, SendTestNotificationHandler,
    SetPreferencesHandler, TopicsHandler, UpsertRecipientsHandler,
};
use clairon_application::dispatch::{DeliveryDispatcher, DispatchSettings};
use clairon_application::events::{EventBus, PlanningListener};
use clairon_application::live::PublishAtCommit;
use clairon_application::ports::SlackSender;
use clairon_application::ports::SmsSender;
use clairon_application::ports::WebhookSender;
use clairon_application::ports::{
    Clock, DatabaseProblem, DeliveryWaker, DispatcherHealth, EmailSender, HealthProbe, IdGenerator,
    JobAlerts, JobRunRepository, NotificationRepository, OperationsStatsSource,
    RecipientRepository, RoutingRulesRepository, TelegramSender, TemplateRenderer, TopicRepository,
};
use clairon_application::queries::{
    ExportRecipientHandler, GetNotificationHandler, GetOperationsStatsHandler,
    GetPreferencesHandler, ListConsentsHandler, ListDeliveriesHandler, ListJobRunsHandler,
    ListNotificationsHandler, UnreadCountHandler,
};
use clairon_application::routing::{GenericEventListener, Router};
use clairon_application::scheduler::JobScheduler;
use clairon_domain::{Channel, Locale};
use tokio::sync::{watch, Notify};

use crate::settings::{redact_url, Settings};

/// Wakes dispatcher workers through a tokio [`Notify`].
#[derive(Debug, Default)]
pub struct NotifyWaker(pub Notify);

impl DeliveryWaker for NotifyWaker {
    fn wake(&self) {
        self.0.notify_waiters();
        self.0.notify_one();
    }
}

/// How many dispatcher workers of this process are running, and how many times one was
/// restarted after a panic (for `/health/ready`).
#[derive(Debug, Clone, Default)]
pub struct DispatcherState {
    running: Arc<AtomicUsize>,
    restarts: Arc<AtomicU64>,
}

impl DispatcherState {
    /// Whether at least one worker runs.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst) > 0
    }

    /// How many times a worker was restarted since start-up.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// Counts a worker as running until the guard is dropped.
    fn enter(&self) -> RunningWorker {
        self.running.fetch_add(1, Ordering::SeqCst);
        RunningWorker(self.running.clone())
    }

    fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::SeqCst);
    }
}

struct RunningWorker(Arc<AtomicUsize>);

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct DatabaseHealth {
    database: Database,
    dispatcher: DispatcherState,
}

#[async_trait::async_trait]
impl HealthProbe for DatabaseHealth {
    async fn database(&self) -> Result<(), DatabaseProblem> {
        self.database
            .ping()
            .await
            .map_err(|e| DatabaseProblem::Unavailable(e.to_string()))?;
        self.database
            .check_writes()
            .await
            .map_err(|(failure, cause)| match failure {
                WriteFailure::ReadOnly => DatabaseProblem::ReadOnly(cause),
                WriteFailure::Failed => DatabaseProblem::WriteFailed(cause),
            })
    }

    async fn migrations(&self) -> Result<(), String> {
        let pending = self
            .database
            .pending_migrations()
            .await
            .map_err(|e| e.to_string())?;
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("pending migrations: {}", pending.join(", ")))
        }
    }

    fn dispatcher(&self) -> DispatcherHealth {
        DispatcherHealth {
            running: self.dispatcher.running(),
            restarts: self.dispatcher.restarts(),
        }
    }
}

/// Every built adapter and handler: what `serve`, `send-test` and `replay` share.
pub struct Components {
    /// The database.
    pub database: Database,
    /// The in-process event bus; a Rust host publishes planning events here.
    pub bus: Arc<EventBus>,
    /// The route handlers.
    pub handlers: Arc<Handlers>,
    /// The dispatcher.
    pub dispatcher: Arc<DeliveryDispatcher>,
    /// Wakes the dispatcher.
    pub waker: Arc<NotifyWaker>,
    /// Live inbox events in this process.
    pub hub: InProcessHub,
    /// Publishes in-app notifications at commit; its `flush` records them `sent`.
    pub publish_at_commit: Arc<PublishAtCommit>,
    /// The accepted API keys.
    pub api_keys: ApiKeys,
    /// What the live routes (WebSocket, SSE) need.
    pub live: Live,
    /// Issues and checks recipient tokens.
    pub tokens: RecipientTokens,
    /// Signs and checks the emails' one-click unsubscribe tokens (same secret as `tokens`,
    /// another derived key).
    pub unsubscribe_tokens: UnsubscribeTokens,
    /// The base of every link Clairon writes (`CLAIRON_PUBLIC_URL`).
    pub public_url: PublicUrl,
    /// The Prometheus registry and what `/metrics` reads.
    pub observability: Observability,
    /// Runs jobs (built-in and the jobs file's) with their chains and records their runs.
    pub run_job: Arc<RunJobHandler>,
    /// Runs each scheduled job at its occurrences.
    pub scheduler: Arc<JobScheduler>,
    /// Which dispatcher workers run.
    pub dispatcher_state: DispatcherState,
    /// The admin key generated (and printed) at this first start, when no key was configured
    /// nor stored; `None` otherwise. Only its hash is stored: this is its one other copy, for
    /// a host that shows it its own way (and the tests).
    pub generated_api_key: Option<String>,
    /// Posts delivery events to the host application (`CLAIRON_EVENTS_WEBHOOK_URL`); `None`
    /// when it is not set.
    pub host_events: Option<Arc<clairon_application::host_events::HostEventWorker>>,
}

impl Components {
    /// Checks every setting and loads the templates, then (and only then: a bad configuration
    /// writes nothing, not even the SQLite file) connects to the database, runs the migrations,
    /// builds the channel senders and every handler.
    ///
    /// # Errors
    /// On an invalid setting or a broken template (the message names the variable to fix), an
    /// unreachable database, or a failed migration.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Components::build`] reading "now" from `clock` (handlers, repositories, jobs): the
    /// tests' settable clock (a digest window across a DST change); the binary uses the
    /// system's.
    ///
    /// # Errors
    /// As [`Components::build`].
    pub async fn build_with_clock(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        settings.check()?;
        let public_url = settings.public_url()?;
        let locale = settings.locale()?;
        let channels = settings.channel_set()?;
        let consent_required = settings.consent_required()?;
        let planning_fallback = settings.planning_fallback()?;
        let reminder_time = settings.reminder_time()?;
        let dashboard_zone = settings.dashboard_zone()?;
        let vapid_configured = settings.vapid_keys()?;
        let vapid_subject = settings.vapid_subject()?;
        let host_events = settings.host_events()?;
        // The jobs file is checked whole (names, schedules, chains) before anything is opened.
        let catalog = Arc::new(crate::jobs_file::catalog(
            settings.jobs_file(),
            &crate::jobs::schedule(settings),
        )?);
        let templates: Arc<dyn TemplateRenderer> = Arc::new(load_templates(settings, locale)?);
        LettreEmailSender::check_from(&settings.email_from).context("CLAIRON_EMAIL_FROM")?;
        if settings.smtp_pool_size == 0 {
            anyhow::bail!("CLAIRON_SMTP_POOL_SIZE must be at least 1");
        }
        let smtp = if settings.smtp_url.is_empty() {
            None
        } else {
            Some(
                LettreEmailSender::smtp_with_timeout(
                    &settings.smtp_url,
                    &settings.email_from,
                    settings.smtp_pool_size,
                    settings.smtp_timeout(),
                )
                .context("CLAIRON_SMTP_URL")?,
            )
        };
        let smtp_fallback = if settings.smtp_fallback_url.is_empty() {
            None
        } else {
            Some(
                LettreEmailSender::smtp_with_timeout(
                    &settings.smtp_fallback_url,
                    &settings.email_from,
                    settings.smtp_pool_size,
                    settings.smtp_timeout(),
                )
                .context("CLAIRON_SMTP_FALLBACK_URL")?,
            )
        };
        let telegram: Option<Arc<dyn TelegramSender>> = if settings.telegram_bot_token.is_empty() {
            None
        } else {
            let bot = Arc::new(FrankensteinTelegramSender::with_timeout(
                &settings.telegram_api_url,
                &settings.telegram_bot_token,
                settings.telegram_timeout(),
            ));
            Some(Arc::new(PacedTelegramSender::new(
                bot,
                std::num::NonZeroU32::new(settings.telegram_rate_per_sec)
                    .context("CLAIRON_TELEGRAM_RATE_PER_SEC must be at least 1")?,
                std::num::NonZeroU32::new(settings.telegram_chat_rate_per_sec)
                    .context("CLAIRON_TELEGRAM_CHAT_RATE_PER_SEC must be at least 1")?,
            )))
        };

        let twilio = settings.twilio_account()?;
        let sms: Option<Arc<dyn SmsSender>> = match &twilio {
            Some(account) => Some(Arc::new(PacedSmsSender::new(
                Arc::new(
                    TwilioSmsSender::new(account.clone(), settings.twilio_timeout())
                        .context("the Twilio HTTP client")?,
                ),
                std::num::NonZeroU32::new(settings.twilio_rate_per_sec)
                    .context("CLAIRON_TWILIO_RATE_PER_SEC must be at least 1")?,
            ))),
            None => None,
        };
        let webhook_sender: Arc<dyn WebhookSender> = Arc::new(
            ReqwestWebhookSender::new(
                WebhookTargets {
                    allow_private: settings.webhook_allow_private,
                },
                settings.webhook_timeout(),
            )
            .context("building the webhook client (CLAIRON_WEBHOOK_TIMEOUT_MS)")?,
        );

        // Slack: one message a second per webhook URL (Slack's limit for incoming webhooks).
        let slack_sender: Arc<dyn SlackSender> = Arc::new(PacedSlackSender::new(
            Arc::new(
                ReqwestSlackSender::new(settings.slack_hosts(), settings.slack_timeout())
                    .context("building the Slack client (CLAIRON_SLACK_TIMEOUT_MS)")?,
            ),
            std::num::NonZeroU32::MIN,
        ));

        // One clock for the handlers and the repositories: adapters read time through it only.
        let database = Database::connect(&settings.database_url, settings.database_pool_size)
            .await
            .context("CLAIRON_DATABASE_URL")?
            .with_clock(clock.clone());
        database
            .run_migrations()
            .await
            .context("running database migrations")?;

        let mut email: Arc<dyn EmailSender> = match smtp {
            Some(smtp) => {
                tracing::info!(url = %redact_url(&settings.smtp_url), "sending email over SMTP");
                Arc::new(smtp)
            }
            None => {
                tracing::info!(dir = %settings.email_outbox_dir.display(), "no SMTP server configured; emails are written as .eml files");
                Arc::new(
                    LettreEmailSender::files(
                        settings.email_outbox_dir.clone(),
                        &settings.email_from,
                    )
                    .context("CLAIRON_EMAIL_OUTBOX_DIR")?,
                )
            }
        };
        if let Some(fallback) = smtp_fallback {
            tracing::info!(url = %redact_url(&settings.smtp_fallback_url), "fallback SMTP server");
            email = Arc::new(FallbackEmailSender::new(email, Arc::new(fallback)));
        }

        let recipients: Arc<dyn RecipientRepository> =
            Arc::new(DieselRecipientRepository::new(database.clone()));
        // Web Push: the configured VAPID key, else the stored one, else one generated now.
        let push_subscriptions = DieselPushSubscriptions::new(database.clone());
        let vapid = push_subscriptions
            .vapid_keys(vapid_configured)
            .await
            .context("reading or storing the VAPID key (CLAIRON_VAPID_PRIVATE_KEY empty)")?;
        let web_push_state = clairon_adapters::http::WebPushState {
            subscriptions: push_subscriptions.clone(),
            public_key: vapid.public_key_base64url(),
            allowed_http_hosts: settings.push_allowed_host_list(),
        };
        let push_sender = Arc::new(
            clairon_adapters::channels::WebPushSender::new(
                vapid,
                vapid_subject,
                clairon_adapters::channels::web_push::MAX_TTL,
                settings.push_timeout(),
            )
            .context("building the Web Push HTTP client")?,
        );
        let push_store = Arc::new(push_subscriptions);
        let notifications: Arc<dyn NotificationRepository> = Arc::new(
            DieselNotificationRepository::new(database.clone())
                .with_host_events(host_events.is_some()),
        );
        let queue = Arc::new(
            DieselDeliveryQueue::new(database.clone()).with_host_events(host_events.is_some()),
        );
        let ids: Arc<dyn IdGenerator> = Arc::new(UuidV7Generator);
        let waker = Arc::new(NotifyWaker::default());
        let feed = Arc::new(DieselNotificationRepository::new(database.clone()));
        // Each connection queues at most this many events; beyond, it is sent `resync`.
        let hub = InProcessHub::new(LIVE_QUEUE, feed.clone());
        if !settings.realtime_broker.is_empty() {
            // Every other process hears this one's inbox changes through the NATS server.
            let relay = NatsRelay::start(&settings.realtime_broker, &hub)
                .await
                .map_err(anyhow::Error::msg)?;
            tracing::info!(broker = %redact_url(&settings.realtime_broker), "realtime events between processes through NATS");
            hub.set_relay(Arc::new(relay));
        } else if database.backend() == Backend::Postgres {
            // Every process hears every inbox change, its own included, through LISTEN/NOTIFY.
            start_listener(settings.database_url.clone(), &hub)
                .await
                .map_err(|cause| anyhow::anyhow!("LISTEN for realtime events: {cause}"))?;
            // Sent from a task of its own, what queues meanwhile in one NOTIFY statement: a
            // request does not wait for the other processes.
            hub.set_relay(Arc::new(BatchedRelay::new(Arc::new(PgNotifyRelay::new(
                database.clone(),
                hub.origin(),
            )))));
        }
        let metrics = Arc::new(Metrics::new());
        let secret = token_secret(settings);
        let unsubscribe_tokens = UnsubscribeTokens::new(&secret);
        let live = Live {
            hub: hub.clone(),
            feed,
            ping_interval: Duration::from_secs(25),
            keep_alive: Duration::from_secs(15),
            connections: metrics.connections(),
        };
        let realtime = Arc::new(hub.clone());
        let policy = ChannelPolicy {
            enabled: channels,
            providers: [Channel::InApp, Channel::Email]
                .into_iter()
                .chain(telegram.is_some().then_some(Channel::Telegram))
                .chain(Some(Channel::WebPush))
                .chain(
                    twilio
                        .as_ref()
                        .filter(|t| t.sms_from.is_some())
                        .map(|_| Channel::Sms),
                )
                .chain(
                    twilio
                        .as_ref()
                        .filter(|t| t.whatsapp_from.is_some())
                        .map(|_| Channel::WhatsApp),
                )
                // Webhooks need no account: each recipient brings their URL and secret.
                .chain(Some(Channel::Webhook))
                // Slack neither: each recipient brings their incoming-webhook URL; whether it
                // is on is CLAIRON_CHANNELS's business, as for every channel.
                .chain(Some(Channel::Slack))
                .collect(),
        };

        let preference_store = Arc::new(DieselPreferenceRepository::new(database.clone()));
        let consent_store = Arc::new(DieselConsentRepository::new(database.clone()));
        let dispatch_settings = DispatchSettings {
            batch_size: settings.dispatch_batch_size.max(1),
            lease: Duration::from_secs(settings.dispatch_lease_secs.max(1)),
        };
        // In-app notifications are published by the request that writes them, right after its
        // commit, and recorded `sent` in batches by `run_until`'s recorder task.
        let publish_at_commit = Arc::new(
            PublishAtCommit::new(
                notifications.clone(),
                queue.clone(),
                realtime.clone(),
                clock.clone(),
                ids.clone(),
                dispatch_settings,
            )
            .with_observer(metrics.clone()),
        );
        let create = Arc::new(
            CreateNotificationHandler::new(
                recipients.clone(),
                notifications.clone(),
                ids.clone(),
                clock.clone(),
                waker.clone(),
                policy,
            )
            .with_limits(settings.content_limits())
            .with_choices(
                ChoiceSources {
                    preferences: preference_store.clone(),
                    consents: consent_store.clone(),
                },
                consent_required,
            )
            .with_publish_at_commit(publish_at_commit.clone())
            .with_push_subscriptions(push_store.clone())
            // Coalesced planning changes (CLAIRON_COALESCE_SECS; 0: off), written by a
            // notification repository of the same database.
            .with_coalescing(
                Duration::from_secs(settings.coalesce_secs),
                Arc::new(DieselNotificationRepository::new(database.clone())),
            ),
        );
        let topic_store: Arc<dyn TopicRepository> =
            Arc::new(DieselTopicRepository::new(database.clone()));
        let rules_store: Arc<dyn RoutingRulesRepository> =
            Arc::new(DieselRoutingRulesRepository::new(database.clone()));
        let router = Arc::new(Router::new(rules_store.clone(), topic_store.clone()));
        let bus = Arc::new(EventBus::new());
        bus.subscribe(Arc::new(
            PlanningListener::new(
                recipients.clone(),
                templates.clone(),
                create.clone(),
                locale,
            )
            .with_reminders(clock.clone(), reminder_time)
            .with_routing(router.clone())
            .with_urgent_fallback(planning_fallback),
        ));
        bus.subscribe(Arc::new(GenericEventListener::new(
            recipients.clone(),
            templates.clone(),
            create.clone(),
            router,
            locale,
        )));
        let dispatcher = Arc::new(
            DeliveryDispatcher::new(
                queue.clone(),
                notifications.clone(),
                recipients.clone(),
                templates.clone(),
                email.clone(),
                telegram.clone(),
                realtime.clone(),
                clock.clone(),
                Arc::new(settings.retry_schedule()),
                locale,
                dispatch_settings,
            )
            .with_observer(metrics.clone())
            .with_lease_heartbeat(Arc::new(TokioTimer))
            .with_fallback_ids(ids.clone())
            .with_unsubscribe_links(Arc::new(SignedUnsubscribeLinks::new(
                public_url.clone(),
                unsubscribe_tokens.clone(),
            )))
            .with_sms(sms.clone())
            .with_webhook(webhook_sender.clone())
            .with_web_push(push_sender, push_store)
            .with_slack(slack_sender.clone()),
        );
        let job_runs: Arc<dyn JobRunRepository> = Arc::new(MeteredJobRunRepository::new(
            Arc::new(DieselJobRunRepository::new(database.clone())),
            metrics.clone(),
        ));
        let alerts: Arc<dyn JobAlerts> = Arc::new(RoutedJobAlerts::new(bus.clone(), clock.clone()));
        // Digests (issue 13): the `digests` job sends through the same senders as the
        // dispatcher.
        let mut digest_job = clairon_application::digests::DigestJob::new(
            Arc::new(
                clairon_adapters::persistence::DieselDigestStore::new(database.clone())
                    .with_host_events(host_events.is_some()),
            ),
            recipients.clone(),
            templates.clone(),
            email.clone(),
            ids.clone(),
            clock.clone(),
            locale,
        );
        if let Some(telegram) = &telegram {
            digest_job = digest_job.with_telegram(telegram.clone());
        }
        let digest_job = Arc::new(digest_job);
        // The dead-letter alert (issue 13): counted by the `dead_letter_alert` job, raised on the
        // bus like `job.failed`, at most once an hour across processes.
        let dead_letters = Arc::new(clairon_adapters::persistence::DieselDeadLetters::new(
            database.clone(),
        ));
        let dead_letter_alert = Arc::new(clairon_application::dead_letters::DeadLetterAlert::new(
            dead_letters.clone(),
            dead_letters,
            bus.clone(),
            clock.clone(),
            settings.alert_dead_letters,
        ));
        let run_job = Arc::new(
            RunJobHandler::new(
                Arc::new(
                    DieselHousekeeping::new(database.clone())
                        .with_host_events(host_events.is_some()),
                ),
                job_runs.clone(),
                clock.clone(),
                RetentionPolicy {
                    notification_days: settings.retention_days,
                    job_run_days: settings.job_runs_retention_days,
                },
            )
            .with_catalog(catalog.clone())
            .with_http(Arc::new(ReqwestHttpJobClient::new()))
            .with_alerts(alerts.clone())
            .with_digests(digest_job)
            .with_dead_letters(dead_letter_alert),
        );
        let scheduler = Arc::new(JobScheduler::new(
            run_job.clone(),
            clock.clone(),
            Arc::new(TokioTimer),
        ));
        let file_jobs: Vec<String> = catalog.jobs().iter().map(|j| j.name.to_string()).collect();
        let stats_source: Arc<dyn OperationsStatsSource> =
            Arc::new(DieselOperationsStats::new(database.clone()));
        let dispatcher_state = DispatcherState::default();
        let personal_data = Arc::new(DieselPersonalDataStore::new(database.clone()));
        let token_generations = Arc::new(DieselTokenGenerations::new(database.clone()));
        let tokens = recipient_tokens(settings, &secret, token_generations.clone());
        // Every revocation this process hears (its own, and others' through LISTEN/NOTIFY)
        // empties the token check's cache for that recipient at once.
        hub.set_revocation_listener(tokens.revocation_listener());
        let redactor = Arc::new(ContextRedactor::new(templates.clone(), locale));
        let handlers = Arc::new(Handlers {
            upsert_recipients: Arc::new(UpsertRecipientsHandler::new(recipients.clone())),
            recipients: recipients.clone(),
            create_notification: create.clone(),
            handle_planning_event: Arc::new(HandlePlanningEventHandler::new(
                bus.clone(),
                notifications.clone(),
            )),
            handle_event: Arc::new(HandleEventHandler::new(bus.clone(), notifications.clone())),
            topics: Arc::new(TopicsHandler::new(recipients.clone(), topic_store.clone())),
            topic_store,
            routing_rules: Arc::new(PutRoutingRulesHandler::new(rules_store)),
            list_notifications: Arc::new(ListNotificationsHandler::new(
                recipients.clone(),
                notifications.clone(),
            )),
            unread_count: Arc::new(UnreadCountHandler::new(
                recipients.clone(),
                notifications.clone(),
            )),
            get_notification: Arc::new(GetNotificationHandler::new(notifications.clone())),
            mark_read: Arc::new(MarkNotificationReadHandler::new(
                notifications.clone(),
                realtime.clone(),
                clock.clone(),
            )),
            mark_all_read: Arc::new(MarkAllNotificationsReadHandler::new(
                notifications.clone(),
                realtime.clone(),
                clock.clone(),
            )),
            send_test: Arc::new(SendTestNotificationHandler::new(
                recipients.clone(),
                create,
                templates,
                email,
                telegram,
                ids,
                clock.clone(),
                locale,
            )),
            list_deliveries: Arc::new(ListDeliveriesHandler::new(queue.clone())),
            retry_delivery: Arc::new(RetryDeliveryHandler::new(
                queue.clone(),
                clock.clone(),
                waker.clone(),
            )),
            health: Arc::new(DatabaseHealth {
                database: database.clone(),
                dispatcher: dispatcher_state.clone(),
            }),
            idempotency: Arc::new(DieselIdempotencyStore::new(database.clone())),
            run_job: run_job.clone(),
            list_job_runs: Arc::new(ListJobRunsHandler::new(job_runs.clone())),
            report_job_run: Arc::new(ReportJobRunHandler::new(
                job_runs.clone(),
                alerts.clone(),
                clock.clone(),
            )),
            finish_job_run: Arc::new(FinishJobRunHandler::new(job_runs, alerts, clock.clone())),
            operations_stats: Arc::new(
                GetOperationsStatsHandler::new(stats_source.clone(), clock.clone())
                    .with_jobs(file_jobs),
            ),
            export_recipient: Arc::new(ExportRecipientHandler::new(
                personal_data.clone(),
                clock.clone(),
            )),
            erase_recipient: Arc::new(
                EraseRecipientHandler::new(personal_data, clock.clone())
                    .with_realtime(realtime.clone())
                    .with_redactor(redactor),
            ),
            revoke_tokens: Arc::new(RevokeRecipientTokensHandler::new(
                token_generations,
                realtime.clone(),
            )),
            get_preferences: Arc::new(GetPreferencesHandler::new(
                recipients.clone(),
                preference_store.clone(),
            )),
            set_preferences: Arc::new(SetPreferencesHandler::new(
                recipients.clone(),
                preference_store.clone(),
                clock.clone(),
            )),
            record_consent: Arc::new(RecordConsentHandler::new(
                recipients.clone(),
                consent_store.clone(),
                clock.clone(),
            )),
            list_consents: Arc::new(ListConsentsHandler::new(recipients.clone(), consent_store)),
            opt_out: Arc::new(OptOutHandler::new(preference_store, clock.clone())),
            clock: clock.clone(),
            dashboard_zone,
            webhook_allow_private: settings.webhook_allow_private,
            slack_hosts: settings.slack_hosts(),
            web_push: web_push_state,
        });
        let observability = Observability {
            metrics,
            stats: stats_source,
            clock: clock.clone(),
            metrics_token: Some(settings.metrics_token.clone()).filter(|t| !t.is_empty()),
        };
        let (api_keys, generated_api_key) = api_keys(settings, &database, &public_url).await?;
        let host_events = match host_events {
            Some(config) => {
                tracing::info!(host = %config.url.host(), "delivery events posted to the host application");
                Some(crate::host_events::worker(
                    config,
                    &database,
                    clock.clone(),
                )?)
            }
            None => None,
        };
        Ok(Self {
            database,
            bus,
            handlers,
            dispatcher,
            waker,
            hub,
            publish_at_commit,
            api_keys,
            live,
            tokens,
            unsubscribe_tokens,
            public_url,
            observability,
            run_job,
            scheduler,
            dispatcher_state,
            generated_api_key,
            host_events,
        })
    }

    /// Sends until nothing is due any more, waiting for the deliveries put back for their
    /// destination's pace (a Telegram chat at 1/s); returns how many deliveries were processed
    /// (a put-back one counts each time it is taken). Used by `replay` and tests that want the
    /// outbox empty.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut total = self.publish_at_commit.flush().await?;
        loop {
            let n = self.dispatcher.dispatch_once().await?;
            if n == 0 {
                match self.dispatcher.next_wakeup_in() {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Ok(total),
                }
            }
            total += n;
        }
    }
}

/// The built-in templates with `CLAIRON_TEMPLATES_DIR`'s files in their place, rendered against
/// the sample contexts: a template that would fail at the first delivery fails the start.
///
/// # Errors
/// The first problem, with its file and line, naming `CLAIRON_TEMPLATES_DIR` when the problem
/// comes from there; `clairon templates check` lists every problem.
fn load_templates(settings: &Settings, locale: Locale) -> anyhow::Result<TeraTemplateRenderer> {
    let set = match settings.templates_override() {
        Some(dir) => TemplateSet::built_in_overridden_by(dir)
            .map_err(|e| anyhow::anyhow!("CLAIRON_TEMPLATES_DIR: {e}"))?,
        None => TemplateSet::built_in(),
    };
    TeraTemplateRenderer::load_checked(&set, locale).map_err(|problems| {
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more: run `clairon templates check`)", n - 1),
        };
        let source = if settings.templates_override().is_some() {
            "CLAIRON_TEMPLATES_DIR"
        } else {
            "built-in templates"
        };
        anyhow::anyhow!("{source}: {}{more}", problems[0])
    })
}

/// The accepted keys: those configured (admin), and the database's, looked up per request and
/// trusted for `CLAIRON_API_KEY_CACHE_MS`. When none is configured and none was ever stored,
/// generates an admin key, stores only its SHA-256 hash, prints it once and returns it.
async fn api_keys(
    settings: &Settings,
    database: &Database,
    public_url: &PublicUrl,
) -> anyhow::Result<(ApiKeys, Option<String>)> {
    let store = DieselApiKeyStore::new(database.clone());
    let configured = settings.api_key_list();
    let mut keys = ApiKeys::default().with_directory(
        Arc::new(store.clone()),
        Duration::from_millis(settings.api_key_cache_ms),
    );
    for key in &configured {
        keys.insert_key(key);
    }
    if configured.is_empty() && store.count().await? == 0 {
        let key = crate::api_keys::generate_secret();
        store
            .insert_hash(&ApiKeys::hash_hex(&key), Some("generated at first start"))
            .await?;
        println!(
            "\nNo CLAIRON_API_KEYS configured: generated an admin API key. It is shown this once; only its hash is stored.\n\n    {key}\n\nThe dashboard takes it at {}\n",
            public_url.join("/admin")
        );
        return Ok((keys, Some(key)));
    }
    Ok((keys, None))
}

/// The secret recipient tokens and unsubscribe links are signed with: `CLAIRON_TOKEN_SECRET`
/// (its length is checked by [`Settings::check`]), or a random one for this process alone.
fn token_secret(settings: &Settings) -> Vec<u8> {
    if settings.token_secret.is_empty() {
        tracing::warn!("no CLAIRON_TOKEN_SECRET configured: recipient tokens and the emails' unsubscribe links are signed with a random secret and die with this process (and other processes refuse them)");
        rand::random::<[u8; 32]>().to_vec()
    } else {
        settings.token_secret.as_bytes().to_vec()
    }
}

/// Recipient tokens signed with `secret`; checked against the recipients' token generations,
/// trusted `CLAIRON_TOKEN_CACHE_MS`.
fn recipient_tokens(
    settings: &Settings,
    secret: &[u8],
    generations: Arc<DieselTokenGenerations>,
) -> RecipientTokens {
    let ttl = Duration::from_secs(settings.token_ttl_secs.max(1));
    let cache = Duration::from_millis(settings.token_cache_ms);
    RecipientTokens::new(secret, ttl, generations, cache)
}

/// A running Clairon: HTTP server and dispatcher.
pub struct Application {
    port: u16,
    server: Server,
    components: Components,
    poll: Duration,
    workers: u32,
}

impl Application {
    /// Builds everything and binds the HTTP listener (port 0 picks a free port).
    ///
    /// # Errors
    /// As [`Components::build`], or when the address cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] on `clock` ([`Components::build_with_clock`]).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        // Bound before the database is opened: a taken port fails the start with nothing written.
        let listener = std::net::TcpListener::bind(settings.bind_addr()?)
            .with_context(|| format!("CLAIRON_BIND: cannot listen on {}", settings.bind))?;
        let mut settings = settings;
        if settings.public_url.trim().is_empty() {
            // `http://{CLAIRON_BIND}` with the port actually bound (port 0 picks one).
            settings.public_url = format!("http://{}", listener.local_addr()?);
        }
        let components = Components::build_with_clock(&settings, clock).await?;
        let port = listener.local_addr()?.port();
        let handlers = web::Data::from(components.handlers.clone());
        let keys = web::Data::new(components.api_keys.clone());
        let tokens = web::Data::new(components.tokens.clone());
        let unsubscribe_tokens = web::Data::new(components.unsubscribe_tokens.clone());
        let live = web::Data::new(components.live.clone());
        let observability = web::Data::new(components.observability.clone());
        let sessions = web::Data::new(AdminSessions::default());
        let rate_limits = web::Data::new(settings.rate_limits());
        let body_limits = web::Data::new(BodyLimits {
            max_bytes: settings.max_body_bytes.max(1),
            max_depth: settings.max_json_depth.max(1),
        });
        let options = HttpOptions {
            cors_origins: settings.cors_origin_list(),
        };
        // actix-web's `HttpServer` with WebSocket upgrades leaving its dispatcher for a bare
        // socket (`http::upgrade`): what keeps an idle live connection small.
        let server = http::upgrade::LiveHttpServer::new(move || {
            let options = options.clone();
            App::new()
                // Innermost: every 4xx/5xx, whoever produced it, is RFC 7807 problem+json,
                // before the security headers, the request counter and the request id see it.
                .wrap(from_fn(http::problem::problems))
                .wrap(from_fn(http::middleware::security::security_headers))
                // The request counter sees the final status; the request id spans everything
                // but the access log, which prints the id it answered with.
                .wrap(from_fn(http::middleware::observability::track_requests))
                .wrap(from_fn(http::middleware::request_id::assign))
                .wrap(
                    // `%U` (the path) and not `%r`: query strings may carry recipient tokens.
                    actix_web::middleware::Logger::new(
                        "%{method}xi %U %s %b B %D ms request_id=%{x-request-id}o",
                    )
                    .custom_request_replace("method", |req| req.method().to_string())
                    .log_target("clairon::http"),
                )
                .app_data(handlers.clone())
                .app_data(keys.clone())
                .app_data(tokens.clone())
                .app_data(unsubscribe_tokens.clone())
                .app_data(live.clone())
                .app_data(observability.clone())
                .app_data(sessions.clone())
                .app_data(rate_limits.clone())
                .app_data(body_limits.clone())
                .configure(move |cfg| http::configure(cfg, &options))
        })
        // Signals are ours (run_until_stopped): the dispatcher must stop claiming as soon as
        // one arrives, not after actix has drained its connections.
        .disable_signals()
        // Each worker's database calls take one of the pool's connections; more threads than
        // the pool holds would only wait for one (`LiveHttpServer::worker_max_blocking_threads`).
        .worker_max_blocking_threads(settings.database_pool_size.max(4) as usize)
        .listen(listener)?
        .run();
        // SQLite has one writer: more workers would only queue on its lock.
        let workers = if settings.database_url.starts_with("sqlite") {
            1
        } else {
            settings.workers.max(1)
        };
        tracing::info!(port, workers, public_url = %components.public_url, "listening");
        Ok(Self {
            port,
            server,
            components,
            poll: settings.poll_interval(),
            workers,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the HTTP server (and so [`Application::run_until_stopped`]), for
    /// hosts and tests that stop it without a signal.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The shared components (bus, hub, handlers).
    pub fn components(&self) -> &Components {
        &self.components
    }

    /// Runs until SIGINT/SIGTERM, then shuts down gracefully (see [`Application::run_until`]).
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` completes, then: every dispatcher worker stops claiming at once and
    /// finishes the batch it holds (sends and records it), while the HTTP server stops accepting
    /// and finishes in-flight requests; returns when both are done. A process killed harder
    /// leaves leases that expire (`CLAIRON_DISPATCH_LEASE_SECS`), after which another worker
    /// retakes its deliveries.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let workers: Vec<_> = (0..self.workers)
            .map(|worker| {
                tokio::spawn(supervise_dispatcher(
                    worker,
                    self.components.dispatcher.clone(),
                    self.components.waker.clone(),
                    self.poll,
                    stop_rx.clone(),
                    self.components.dispatcher_state.clone(),
                ))
            })
            .collect();
        let recorder = tokio::spawn(record_published(
            self.components.publish_at_commit.clone(),
            stop_rx.clone(),
        ));
        let jobs = crate::jobs::spawn(self.components.scheduler.clone(), &stop_rx);
        let host_events = self.components.host_events.clone().map(|worker| {
            crate::host_events::spawn(
                worker,
                self.components.observability.metrics.clone(),
                self.poll,
                stop_rx.clone(),
            )
        });
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let served = tokio::select! {
            served = &mut server => served,
            () = shutdown => {
                tracing::info!("shutting down: no new claims; finishing in-flight batches and requests");
                let _ = stop_tx.send(true);
                handle.stop(true).await;
                server.await
            }
        };
        let _ = stop_tx.send(true);
        for worker in workers {
            worker.await.context("dispatcher task")?;
        }
        for job in jobs {
            job.await.context("job timer task")?;
        }
        recorder.await.context("recorder task")?;
        if let Some(host_events) = host_events {
            host_events.await.context("host events task")?;
        }
        tracing::info!("stopped");
        served.context("HTTP server task")?.context("HTTP server")
    }
}

/// How many events one live connection queues before it is sent `resync` instead.
pub const LIVE_QUEUE: usize = 64;

/// How often what was published at commit is recorded `sent`.
const RECORD_EVERY: Duration = Duration::from_millis(25);

/// Records what was published at commit, every [`RECORD_EVERY`], until the stop signal — and
/// once more after it (in-flight requests have finished by then: the server stopped first).
async fn record_published(live: Arc<PublishAtCommit>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = live.flush().await {
            tracing::warn!(error = %e, "recording published in-app deliveries failed; trying again");
        }
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(RECORD_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
    if let Err(e) = live.flush().await {
        tracing::warn!(error = %e, "recording published in-app deliveries at shutdown failed; their leases lapse and a dispatcher retakes them");
    }
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Runs one dispatcher worker and restarts it when a panic escapes its loop (a panic inside one
/// delivery is the dispatcher's to catch; one here is a bug of the round itself). The batch the
/// worker held is then left to its leases, which lapse and count a crash on each delivery (see
/// `DeliveryQueue::claim_due`); `/health/ready` says `degraded` from the first restart on. The
/// restart waits the poll interval (at least 100 ms), so a panic that recurs cannot spin.
async fn supervise_dispatcher(
    worker: u32,
    dispatcher: Arc<DeliveryDispatcher>,
    waker: Arc<NotifyWaker>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
    state: DispatcherState,
) {
    // The worker counts as running across restarts: it is down for a poll interval at most.
    let _running = state.enter();
    loop {
        let run = tokio::spawn(run_dispatcher(
            worker,
            dispatcher.clone(),
            waker.clone(),
            poll,
            stop.clone(),
        ));
        match run.await {
            Ok(()) => break,
            Err(error) if error.is_panic() => {
                state.restarted();
                let payload = error.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                tracing::error!(
                    worker,
                    panic = %message,
                    restarts = state.restarts(),
                    "dispatcher worker panicked; restarting it (the deliveries it held are retaken once their leases lapse)"
                );
                if *stop.borrow() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(poll.max(Duration::from_millis(100))) => {}
                    _ = stop.changed() => break,
                }
            }
            Err(error) => {
                tracing::error!(worker, error = %error, "dispatcher worker cancelled");
                break;
            }
        }
    }
    tracing::info!(worker, "dispatcher worker stopped");
}

/// One dispatcher worker's loop: send while there is work, else wait for a wake-up, the poll
/// interval, or the stop signal. The stop signal is only looked at between batches, so a batch
/// once claimed is always sent and recorded.
async fn run_dispatcher(
    worker: u32,
    dispatcher: Arc<DeliveryDispatcher>,
    waker: Arc<NotifyWaker>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            break;
        }
        let idle = match dispatcher.dispatch_once().await {
            Ok(n) => n == 0,
            Err(e) => {
                tracing::error!(error = %e, "dispatcher round failed; retrying after the poll interval");
                true
            }
        };
        if idle {
            tokio::select! {
                () = waker.0.notified() => {}
                () = tokio::time::sleep(dispatcher.idle_wait(poll)) => {}
                _ = stop.changed() => break,
            }
        }
    }
    tracing::debug!(worker, "dispatcher loop ended");
}
