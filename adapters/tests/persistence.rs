//! The Diesel persistence adapter against real engines: every behaviour on SQLite (a fresh file
//! in a temp dir per test) and on PostgreSQL (a fresh database per test, dropped afterwards).
//!
//! PostgreSQL is found at `CLAIRON_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached the PostgreSQL cases
//! print `skipped: …` and pass — except under CI (`CI` set), where they fail: CI never skips.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use clairon_adapters::idempotency;
use clairon_adapters::persistence::{
    Backend, Database, DieselApiKeyStore, DieselDeliveryQueue, DieselHousekeeping,
    DieselIdempotencyStore, DieselNotificationRepository, DieselOperationsStats,
    DieselPushSubscriptions, DieselRecipientRepository, PersistenceError,
};
use clairon_adapters::persistence::{DieselHostEventOutbox, HostEventRecord};
use clairon_application::ports::{
    AttemptRecord, Begun, ChannelStatusCount, ClaimToken, ClaimedDelivery, DeliveryListQuery,
    DeliveryQueue, DeliveryRepository, DeliveryUpdate, Housekeeping, IdempotencyStore,
    IdempotentRequest, ListQuery, NewNotification, NewReminder, NotificationRepository,
    OperationsStatsSource, Purged, ReadFilter, RecipientRepository, ReminderChanges,
    RepositoryError, Requeued, StoredResponse, Upserted,
};
use clairon_application::ports::{FallbackLink, HostEventOutbox};
use clairon_domain::{
    ActionLabel, ActionUrl, AttemptOutcome, Body, Channel, ChannelSet, Delivery, DeliveryId,
    DeliveryStatus, DisplayName, EmailAddress, EventType, Locale, Metadata, Notification,
    NotificationId, NotificationKind, PhoneNumber, Priority, Recipient, RecipientId, SourceEventId,
    TelegramChatId, TimeZone, Title,
};
use clairon_domain::{WebhookSecret, WebhookUrl};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use rstest::rstest;

// ---------------------------------------------------------------------------------------------
// Engines
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn postgres_base_url() -> String {
    std::env::var("CLAIRON_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// `url` with the password of its user info masked, for messages.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// `base` with its database name replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (main, query) = base
        .split_once('?')
        .map_or((base, None), |(m, q)| (m, Some(q)));
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let server = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// A scratch PostgreSQL database, dropped (best effort) when this is.
struct PgScratch {
    admin_url: String,
    name: String,
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// A migrated database of one engine, private to one test.
struct TestDb {
    db: Database,
    url: String,
    engine: Engine,
    // Dropped after `db` (field order): the pool closes before its file or database goes.
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgScratch>,
}

impl TestDb {
    /// A fresh, migrated database; `None` when PostgreSQL is unreachable outside CI.
    async fn open(engine: Engine) -> Option<Self> {
        let (url, dir, pg) = match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let url = format!("sqlite://{}", dir.path().join("data/clairon.db").display());
                (url, Some(dir), None)
            }
            Engine::Postgres => {
                let base = postgres_base_url();
                let name = format!("clairon_test_{:016x}", rand::random::<u64>());
                let created = {
                    let (base, name) = (base.clone(), name.clone());
                    tokio::task::spawn_blocking(move || {
                        let mut admin =
                            PgConnection::establish(&base).map_err(|e| e.to_string())?;
                        diesel::sql_query(format!("CREATE DATABASE {name}"))
                            .execute(&mut admin)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .expect("the setup task")
                };
                if let Err(reason) = created {
                    if std::env::var_os("CI").is_some() {
                        panic!(
                            "PostgreSQL not reachable at {} under CI: {reason}",
                            shown(&base)
                        );
                    }
                    eprintln!(
                        "skipped: PostgreSQL not reachable at {}: {reason}",
                        shown(&base)
                    );
                    return None;
                }
                let url = with_database(&base, &name);
                (
                    url,
                    None,
                    Some(PgScratch {
                        admin_url: base,
                        name,
                    }),
                )
            }
        };
        let db = Database::connect(&url, 4).await.expect("connect");
        db.run_migrations().await.expect("migrate");
        Some(Self {
            db,
            url,
            engine,
            _dir: dir,
            _pg: pg,
        })
    }

    fn recipients(&self) -> DieselRecipientRepository {
        DieselRecipientRepository::new(self.db.clone())
    }

    fn notifications(&self) -> DieselNotificationRepository {
        DieselNotificationRepository::new(self.db.clone())
    }

    fn queue(&self) -> DieselDeliveryQueue {
        DieselDeliveryQueue::new(self.db.clone())
    }

    /// Runs raw SQL on a connection of its own, behind the adapter's back.
    async fn execute_raw(&self, sql: &'static str) {
        let (engine, url) = (self.engine, self.url.clone());
        tokio::task::spawn_blocking(move || match engine {
            Engine::Sqlite => {
                let path = url.trim_start_matches("sqlite://");
                let mut conn = SqliteConnection::establish(path).expect("raw sqlite");
                diesel::sql_query(sql).execute(&mut conn).expect("raw sql")
            }
            Engine::Postgres => {
                let mut conn = PgConnection::establish(&url).expect("raw postgres");
                diesel::sql_query(sql).execute(&mut conn).expect("raw sql")
            }
        })
        .await
        .expect("the raw task");
    }
}

/// Opens a test database or returns from the test (PostgreSQL unreachable outside CI).
macro_rules! open_or_skip {
    ($engine:expr) => {
        match TestDb::open($engine).await {
            Some(t) => t,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// 2027-03-01 09:00:00.123456 UTC plus `secs`: a microsecond part, as PostgreSQL keeps.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap()
        + chrono::Duration::microseconds(123_456)
        + chrono::Duration::seconds(secs)
}

fn rid(raw: &str) -> RecipientId {
    RecipientId::parse(raw).unwrap()
}

fn recipient(id: &str) -> Recipient {
    Recipient {
        id: rid(id),
        name: DisplayName::parse("Zoé Tremblay").unwrap(),
        email: Some(EmailAddress::parse(&format!("{id}@example.org")).unwrap()),
        telegram_chat_id: Some(TelegramChatId::parse("123456789").unwrap()),
        phone: Some(PhoneNumber::parse("+15145550000").unwrap()),
        locale: Some(Locale::Fr),
        timezone: Some(TimeZone::parse("America/Montreal").unwrap()),
        telegram_unreachable: None,
        webhook_url: None,
        webhook_secret: None,
        webhook_disabled: None,
        slack_webhook_url: None,
        slack_unreachable: None,
    }
}

/// Notification ids sort like their numbers, as UUIDv7s sort by creation time.
fn nid(n: u32) -> NotificationId {
    NotificationId::parse(&format!("0190f5f2-7a3b-7cde-8f00-{n:012}")).unwrap()
}

fn did(n: u32, channel: Channel) -> DeliveryId {
    DeliveryId::parse(&format!(
        "0190f5f2-7a3b-7cde-9f00-{:011}{}",
        n, channel as u8
    ))
    .unwrap()
}

fn notification(n: u32, to: &str, source: Option<&str>, created_at: DateTime<Utc>) -> Notification {
    let mut metadata = Metadata::new();
    metadata.insert("planning_id".into(), serde_json::json!("pl-42"));
    metadata.insert("seats".into(), serde_json::json!([1, 2, 3]));
    Notification {
        id: nid(n),
        recipient_id: rid(to),
        kind: NotificationKind::Warning,
        priority: Priority::Normal,
        title: Title::parse(&format!("Notification {n}")).unwrap(),
        body: Body::parse("Le planning a changé.").unwrap(),
        action_url: Some(ActionUrl::parse("https://planning.example.org/p/42").unwrap()),
        action_label: Some(ActionLabel::parse("Voir").unwrap()),
        metadata,
        event_type: EventType::parse("planning.updated").unwrap(),
        source_event_id: source.map(|s| SourceEventId::parse(s).unwrap()),
        created_at,
        read_at: None,
    }
}

/// `n` with a pending delivery on each of `channels`.
fn with_deliveries(n: Notification, channels: &[Channel]) -> NewNotification {
    let deliveries = channels
        .iter()
        .map(|&c| {
            let number = n.id.as_str()[24..].parse().unwrap();
            Delivery::pending(
                did(number, c),
                n.id.clone(),
                n.recipient_id.clone(),
                c,
                n.created_at,
            )
        })
        .collect();
    NewNotification {
        notification: n,
        deliveries,
        deliver_at: None,
    }
}

/// Creates the recipients `ids`.
async fn given_recipients(t: &TestDb, ids: &[&str]) {
    let all: Vec<Recipient> = ids.iter().map(|id| recipient(id)).collect();
    t.recipients().upsert_many(&all).await.expect("recipients");
}

/// Creates notifications 1..=count for `to`, each with an in-app delivery, created a second apart.
async fn given_inbox(t: &TestDb, to: &str, numbers: std::ops::RangeInclusive<u32>) {
    let batch: Vec<NewNotification> = numbers
        .map(|n| with_deliveries(notification(n, to, None, t_of(n)), &[Channel::InApp]))
        .collect();
    t.notifications().insert_batch(&batch).await.expect("inbox");
}

fn t_of(n: u32) -> DateTime<Utc> {
    at(i64::from(n))
}

fn claimed_ids(claimed: &[ClaimedDelivery]) -> Vec<DeliveryId> {
    claimed.iter().map(|c| c.delivery.id.clone()).collect()
}

fn numbers(items: &[Notification]) -> Vec<u32> {
    items
        .iter()
        .map(|n| n.id.as_str()[24..].parse().unwrap())
        .collect()
}

const LEASE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_twice_without_harm_and_the_database_answers(#[case] engine: Engine) {
    let t = open_or_skip!(engine);

    t.db.run_migrations()
        .await
        .expect("a second run is a no-op");
    t.db.run_migrations().await.expect("and so is a third");

    t.db.ping().await.expect("ping");
    let expected = match engine {
        Engine::Sqlite => Backend::Sqlite,
        Engine::Postgres => Backend::Postgres,
    };
    assert_eq!(t.db.backend(), expected);
    given_recipients(&t, &["artist-1"]).await;
    assert!(
        t.recipients()
            .get(&rid("artist-1"))
            .await
            .unwrap()
            .is_some(),
        "the schema is usable after repeated migrations"
    );
}

#[tokio::test]
async fn a_url_of_another_engine_is_refused() {
    let err = Database::connect("mysql://root:hunter2@localhost/clairon", 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PersistenceError::UnsupportedUrl(_)),
        "{err:?}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_without_showing_the_password() {
    let started = std::time::Instant::now();
    let err = Database::connect("postgres://clairon:s3cret-pw@127.0.0.1:1/clairon", 2)
        .await
        .unwrap_err();
    assert!(matches!(err, PersistenceError::Connect { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: the pool's retry loop ran",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_sqlite_database_runs_in_wal_mode_in_a_directory_created_for_it() {
    let t = open_or_skip!(Engine::Sqlite);
    given_recipients(&t, &["artist-1"]).await;
    let path = t.url.trim_start_matches("sqlite://").to_owned();

    assert!(
        std::path::Path::new(&path).exists(),
        "the file and its directory were created"
    );
    assert!(
        std::path::Path::new(&format!("{path}-wal")).exists(),
        "a write-ahead log sits beside the database while the pool is open"
    );
}

// ---------------------------------------------------------------------------------------------
// Recipients
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserting_creates_new_recipients_then_replaces_every_field(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    let repo = t.recipients();

    let created = repo
        .upsert_many(&[recipient("artist-1"), recipient("artist-2")])
        .await
        .unwrap();
    let mut changed = recipient("artist-1");
    changed.name = DisplayName::parse("Zoé T.").unwrap();
    changed.email = None;
    changed.telegram_chat_id = Some(TelegramChatId::parse("@clairon_news").unwrap());
    changed.locale = Some(Locale::En);
    changed.timezone = None;
    let second = repo
        .upsert_many(&[changed.clone(), recipient("artist-3")])
        .await
        .unwrap();

    assert_eq!(created, vec![Upserted::Created, Upserted::Created]);
    assert_eq!(second, vec![Upserted::Updated, Upserted::Created]);
    assert_eq!(repo.get(&rid("artist-1")).await.unwrap(), Some(changed));
    assert_eq!(
        repo.get(&rid("artist-2")).await.unwrap(),
        Some(recipient("artist-2")),
        "a recipient left out of the second upsert is untouched"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getting_many_recipients_leaves_unknown_ids_out(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2", "artist-3"]).await;
    let repo = t.recipients();

    let mut found = repo
        .get_many(&[rid("artist-3"), rid("nobody"), rid("artist-1")])
        .await
        .unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));

    assert_eq!(found, vec![recipient("artist-1"), recipient("artist-3")]);
    assert_eq!(repo.get(&rid("nobody")).await.unwrap(), None);
    assert!(repo.get_many(&[]).await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_value_that_no_longer_validates_reads_as_corrupt(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;

    t.execute_raw("UPDATE recipients SET email = 'not-an-email' WHERE id = 'artist-1'")
        .await;
    let read = t.recipients().get(&rid("artist-1")).await;

    assert!(
        matches!(&read, Err(RepositoryError::Corrupt(m)) if m.contains("artist-1") && m.contains("email")),
        "{read:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_reads_back_as_written_with_its_deliveries_in_channel_order(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let repo = t.notifications();
    let mut n = notification(1, "artist-1", Some("evt-1"), at(0));
    n.priority = Priority::Critical;
    // Nanoseconds are beyond PostgreSQL's precision: both engines keep microseconds.
    n.created_at = at(0) + chrono::Duration::nanoseconds(789);
    let new = with_deliveries(
        n.clone(),
        &[Channel::Telegram, Channel::InApp, Channel::Email],
    );

    repo.insert_batch(std::slice::from_ref(&new)).await.unwrap();
    let details = repo.get(&nid(1)).await.unwrap().expect("stored");

    let mut expected = n;
    expected.created_at = at(0);
    assert_eq!(details.notification, expected);
    assert_eq!(
        details
            .deliveries
            .iter()
            .map(|d| d.channel)
            .collect::<Vec<_>>(),
        vec![Channel::InApp, Channel::Email, Channel::Telegram]
    );
    let email = &details.deliveries[1];
    assert_eq!(email.id, did(1, Channel::Email));
    assert_eq!(email.status, DeliveryStatus::Pending);
    assert_eq!(email.attempts, 0);
    assert_eq!(email.created_at, at(0));
    assert_eq!(repo.get(&nid(2)).await.unwrap(), None);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_conflicting_notification_writes_nothing(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    let repo = t.notifications();
    let existing = with_deliveries(
        notification(1, "artist-1", Some("evt-1"), at(0)),
        &[Channel::InApp],
    );
    repo.insert_batch(&[existing]).await.unwrap();

    let batch = [
        with_deliveries(
            notification(2, "artist-2", Some("evt-1"), at(1)),
            &[Channel::InApp, Channel::Email],
        ),
        with_deliveries(
            notification(3, "artist-1", Some("evt-1"), at(1)),
            &[Channel::InApp],
        ),
        with_deliveries(notification(4, "artist-1", None, at(1)), &[Channel::Email]),
    ];
    let result = repo.insert_batch(&batch).await;

    assert!(
        matches!(result, Err(RepositoryError::Conflict(_))),
        "{result:?}"
    );
    for n in [2, 3, 4] {
        assert_eq!(repo.get(&nid(n)).await.unwrap(), None, "notification {n}");
    }
    let from_event = repo
        .find_by_source_event(&SourceEventId::parse("evt-1").unwrap())
        .await
        .unwrap();
    assert_eq!(
        from_event.len(),
        1,
        "only the first notification of evt-1 exists"
    );
    let claimed = t
        .queue()
        .claim_due(at(100), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(
        claimed_ids(&claimed),
        vec![did(1, Channel::InApp)],
        "no delivery of the failed batch was written"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_without_a_source_event_never_conflict(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let repo = t.notifications();

    repo.insert_batch(&[with_deliveries(
        notification(1, "artist-1", None, at(0)),
        &[],
    )])
    .await
    .unwrap();
    let second = repo
        .insert_batch(&[with_deliveries(
            notification(2, "artist-1", None, at(1)),
            &[],
        )])
        .await;

    assert_eq!(second, Ok(()));
    assert_eq!(repo.unread_count(&rid("artist-1")).await.unwrap(), 2);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_for_an_unknown_recipient_is_refused(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    let repo = t.notifications();

    let result = repo
        .insert_batch(&[with_deliveries(
            notification(1, "nobody", None, at(0)),
            &[Channel::InApp],
        )])
        .await;

    assert!(
        matches!(result, Err(RepositoryError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(repo.get(&nid(1)).await.unwrap(), None);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_of_a_source_event_is_found_oldest_first(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2", "artist-3"]).await;
    let repo = t.notifications();
    repo.insert_batch(&[
        with_deliveries(
            notification(2, "artist-2", Some("evt-7"), at(0)),
            &[Channel::Email, Channel::InApp],
        ),
        with_deliveries(
            notification(1, "artist-1", Some("evt-7"), at(0)),
            &[Channel::InApp],
        ),
        with_deliveries(
            notification(3, "artist-3", Some("evt-8"), at(0)),
            &[Channel::InApp],
        ),
    ])
    .await
    .unwrap();

    let found = repo
        .find_by_source_event(&SourceEventId::parse("evt-7").unwrap())
        .await
        .unwrap();
    let never = repo
        .find_by_source_event(&SourceEventId::parse("evt-9").unwrap())
        .await
        .unwrap();

    assert_eq!(
        found
            .iter()
            .map(|d| d.notification.id.clone())
            .collect::<Vec<_>>(),
        vec![nid(1), nid(2)]
    );
    assert_eq!(
        found[1]
            .deliveries
            .iter()
            .map(|d| d.channel)
            .collect::<Vec<_>>(),
        vec![Channel::InApp, Channel::Email],
        "each comes with its own deliveries, in channel order"
    );
    assert!(never.is_empty());
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_pages_newest_first_with_a_cursor_and_read_filters(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    given_inbox(&t, "artist-1", 1..=25).await;
    given_inbox(&t, "artist-2", 26..=30).await;
    let repo = t.notifications();
    for n in (3..=24).step_by(3) {
        repo.mark_read(&nid(n), None, at(100)).await.unwrap();
    }
    let page = |filter, limit, before: Option<u32>| {
        let repo = repo.clone();
        async move {
            repo.list(&ListQuery {
                recipient_id: rid("artist-1"),
                filter,
                limit,
                before: before.map(nid),
            })
            .await
            .unwrap()
        }
    };

    let first = page(ReadFilter::All, 10, None).await;
    let second = page(ReadFilter::All, 10, Some(16)).await;
    let last = page(ReadFilter::All, 10, Some(6)).await;
    assert_eq!(numbers(&first.items), (16..=25).rev().collect::<Vec<_>>());
    assert_eq!(first.next, Some(nid(16)));
    assert_eq!(numbers(&second.items), (6..=15).rev().collect::<Vec<_>>());
    assert_eq!(second.next, Some(nid(6)));
    assert_eq!(numbers(&last.items), (1..=5).rev().collect::<Vec<_>>());
    assert_eq!(last.next, None, "the last page has no cursor");

    let unread = page(ReadFilter::Unread, 10, None).await;
    let unread_rest = page(ReadFilter::Unread, 10, Some(11)).await;
    assert_eq!(
        numbers(&unread.items),
        vec![25, 23, 22, 20, 19, 17, 16, 14, 13, 11]
    );
    assert_eq!(unread.next, Some(nid(11)));
    assert_eq!(numbers(&unread_rest.items), vec![10, 8, 7, 5, 4, 2, 1]);
    assert_eq!(unread_rest.next, None);

    let read_exactly_one_page = page(ReadFilter::Read, 8, None).await;
    assert_eq!(
        numbers(&read_exactly_one_page.items),
        vec![24, 21, 18, 15, 12, 9, 6, 3]
    );
    assert_eq!(
        read_exactly_one_page.next, None,
        "a full page with nothing after it has no cursor"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unread_count_counts_only_that_recipients_unread_notifications(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2", "artist-3"]).await;
    given_inbox(&t, "artist-1", 1..=5).await;
    given_inbox(&t, "artist-2", 6..=7).await;
    let repo = t.notifications();
    repo.mark_read(&nid(2), None, at(100)).await.unwrap();

    assert_eq!(repo.unread_count(&rid("artist-1")).await.unwrap(), 4);
    assert_eq!(repo.unread_count(&rid("artist-2")).await.unwrap(), 2);
    assert_eq!(repo.unread_count(&rid("artist-3")).await.unwrap(), 0);
    let grouped = repo
        .unread_counts(&[
            rid("artist-1"),
            rid("artist-2"),
            rid("artist-3"),
            rid("nobody"),
        ])
        .await
        .unwrap();
    assert_eq!(
        grouped,
        HashMap::from([(rid("artist-1"), 4), (rid("artist-2"), 2)]),
        "one grouped count agrees; nothing unread (or unknown) is absent"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_read_keeps_the_first_read_time_and_respects_the_owner(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    let repo = t.notifications();

    let by_stranger = repo
        .mark_read(&nid(1), Some(rid("artist-2")), at(10))
        .await
        .unwrap();
    assert_eq!(
        by_stranger, None,
        "someone else's notification is not found"
    );
    assert_eq!(
        repo.unread_count(&rid("artist-1")).await.unwrap(),
        1,
        "and stays unread"
    );

    let by_owner = repo
        .mark_read(&nid(1), Some(rid("artist-1")), at(20))
        .await
        .unwrap()
        .expect("found");
    let again = repo
        .mark_read(&nid(1), None, at(30))
        .await
        .unwrap()
        .expect("found");
    let unknown = repo.mark_read(&nid(99), None, at(30)).await.unwrap();

    assert_eq!(by_owner.read_at, Some(at(20)));
    assert_eq!(
        again.read_at,
        Some(at(20)),
        "reading twice keeps the first time"
    );
    assert_eq!(again, by_owner);
    assert_eq!(unknown, None);
    assert_eq!(repo.unread_count(&rid("artist-1")).await.unwrap(), 0);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_all_read_returns_exactly_the_notifications_it_changed(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    given_inbox(&t, "artist-1", 1..=5).await;
    given_inbox(&t, "artist-2", 6..=6).await;
    let repo = t.notifications();
    repo.mark_read(&nid(2), None, at(10)).await.unwrap();
    repo.mark_read(&nid(4), None, at(10)).await.unwrap();

    let changed = repo.mark_all_read(&rid("artist-1"), at(20)).await.unwrap();
    let again = repo.mark_all_read(&rid("artist-1"), at(30)).await.unwrap();

    assert_eq!(changed, vec![nid(5), nid(3), nid(1)]);
    assert!(again.is_empty(), "nothing is left to change");
    assert_eq!(repo.unread_count(&rid("artist-1")).await.unwrap(), 0);
    assert_eq!(
        repo.unread_count(&rid("artist-2")).await.unwrap(),
        1,
        "others untouched"
    );
    let earlier = repo.get(&nid(2)).await.unwrap().unwrap().notification;
    let now_read = repo.get(&nid(3)).await.unwrap().unwrap().notification;
    assert_eq!(
        earlier.read_at,
        Some(at(10)),
        "an earlier read time is kept"
    );
    assert_eq!(now_read.read_at, Some(at(20)));
}

// ---------------------------------------------------------------------------------------------
// Delivery queue
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_deliveries_are_claimed_highest_priority_first_then_oldest_first(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    let cases = [
        (1, Priority::Low, 0),
        (2, Priority::Critical, 3),
        (3, Priority::Normal, 1),
        (4, Priority::Critical, 2),
        (5, Priority::High, 0),
    ];
    let batch: Vec<NewNotification> = cases
        .iter()
        .map(|&(n, priority, created)| {
            let mut notification = notification(n, "artist-2", None, at(created));
            notification.priority = priority;
            with_deliveries(notification, &[Channel::Email])
        })
        .collect();
    t.notifications().insert_batch(&batch).await.unwrap();
    let queue = t.queue();

    let first = queue
        .claim_due(at(10), LEASE, 2, ChannelSet::all())
        .await
        .unwrap();
    let rest = queue
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    assert_eq!(
        claimed_ids(&first),
        vec![did(4, Channel::Email), did(2, Channel::Email)]
    );
    assert_eq!(
        claimed_ids(&rest),
        vec![
            did(5, Channel::Email),
            did(3, Channel::Email),
            did(1, Channel::Email)
        ]
    );
    let top = &first[0];
    assert_eq!(top.delivery.status, DeliveryStatus::Sending);
    assert_eq!(top.delivery.attempts, 0, "claiming is not an attempt");
    assert_eq!(top.notification, batch[3].notification);
    assert_eq!(top.recipient, recipient("artist-2"));
}

/// The update putting `claimed` back `pending` due at `until` without an attempt, as the
/// dispatcher records a paced answer (`paced`) or, with `paced` false, any other put-back.
fn put_back(claimed: &ClaimedDelivery, until: DateTime<Utc>, paced: bool) -> DeliveryUpdate {
    DeliveryUpdate {
        id: claimed.delivery.id.clone(),
        status: if paced {
            DeliveryStatus::Pending
        } else {
            DeliveryStatus::Retrying
        },
        attempts: claimed.delivery.attempts,
        last_error: (!paced).then(|| "502 bad gateway".to_owned()),
        provider_message_id: None,
        sent_at: None,
        next_attempt_at: Some(until),
        attempt: None,
        claim: claimed.claim.clone(),
        fallback: None,
        paced,
    }
}

/// Issue 12: a put-back for pacing is due at its reserved slot, later than every fresh row of
/// its priority (due at their creation); claimed in plain due order it waited behind them all.
#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_paced_put_back_is_claimed_after_higher_priorities_and_before_older_fresh_rows(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    let normal = |n: u32, created: i64| {
        with_deliveries(
            notification(n, "artist-2", None, at(created)),
            &[Channel::Email],
        )
    };
    let high = |n: u32, created: i64| {
        let mut notification = notification(n, "artist-2", None, at(created));
        notification.priority = Priority::High;
        with_deliveries(notification, &[Channel::Email])
    };
    let (notifications, queue) = (t.notifications(), t.queue());
    // Delivery 2 is claimed and put back for pacing, due at its slot, 20.
    notifications.insert_batch(&[normal(2, 1)]).await.unwrap();
    let first = queue
        .claim_due(at(1), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(claimed_ids(&first), vec![did(2, Channel::Email)]);
    let lost = queue.record(&[put_back(&first[0], at(20), true)]).await;
    assert_eq!(lost.unwrap(), Vec::<DeliveryId>::new());
    // Fresh rows: normal ones older than it (created at 0), a high one.
    notifications
        .insert_batch(&[normal(1, 0), normal(5, 0), normal(6, 0), high(3, 2)])
        .await
        .unwrap();

    let before_slot = queue
        .claim_due(at(19), LEASE, 2, ChannelSet::all())
        .await
        .unwrap();
    notifications.insert_batch(&[high(7, 20)]).await.unwrap();
    let at_slot = queue
        .claim_due(at(20), LEASE, 2, ChannelSet::all())
        .await
        .unwrap();
    // Delivery 2 answered otherwise (a transient failure): back in the ordinary order.
    let retried = at_slot
        .iter()
        .find(|c| c.delivery.id == did(2, Channel::Email))
        .expect("the paced put-back is claimed at its slot");
    queue
        .record(&[put_back(retried, at(30), false)])
        .await
        .unwrap();
    let after = queue
        .claim_due(at(30), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    assert_eq!(
        claimed_ids(&before_slot),
        vec![did(3, Channel::Email), did(1, Channel::Email)],
        "before its slot the put-back is not due, and not ahead of anything"
    );
    assert_eq!(
        claimed_ids(&at_slot),
        vec![did(7, Channel::Email), did(2, Channel::Email)],
        "at its slot: after the higher priority, before the older fresh rows 5 and 6"
    );
    assert_eq!(
        claimed_ids(&after),
        vec![
            did(5, Channel::Email),
            did(6, Channel::Email),
            did(2, Channel::Email)
        ],
        "any other outcome clears the mark: the fresh rows, due earlier, go first again"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_deliveries_on_the_channels_asked_for_are_claimed(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    t.notifications()
        .insert_batch(&[with_deliveries(
            notification(1, "artist-1", None, at(0)),
            &[Channel::InApp, Channel::Email, Channel::Telegram],
        )])
        .await
        .unwrap();
    let queue = t.queue();
    let without_telegram: ChannelSet = [Channel::InApp, Channel::Email].into_iter().collect();

    let nothing = queue
        .claim_due(at(1), LEASE, 10, ChannelSet::default())
        .await
        .unwrap();
    let first = queue
        .claim_due(at(1), LEASE, 10, without_telegram)
        .await
        .unwrap();
    let telegram = queue
        .claim_due(at(1), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    assert!(nothing.is_empty(), "an empty channel set claims nothing");
    let mut first = claimed_ids(&first);
    first.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut expected = vec![did(1, Channel::InApp), did(1, Channel::Email)];
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(first, expected, "the paused channel is left out");
    assert_eq!(
        claimed_ids(&telegram),
        vec![did(1, Channel::Telegram)],
        "the left-out delivery is still due for the next claim"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_delivery_is_not_claimed_again_until_its_lease_expires(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    let queue = t.queue();

    let first = queue
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let during_lease = queue
        .claim_due(at(39), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let after_lease = queue
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let during_new_lease = queue
        .claim_due(at(69), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    assert_eq!(claimed_ids(&first), vec![did(1, Channel::InApp)]);
    assert!(during_lease.is_empty(), "{during_lease:?}");
    assert_eq!(
        claimed_ids(&after_lease),
        vec![did(1, Channel::InApp)],
        "an expired lease means the dispatcher died: the delivery is due again"
    );
    assert_eq!(after_lease[0].delivery.status, DeliveryStatus::Sending);
    assert!(
        during_new_lease.is_empty(),
        "the new claim holds a new lease"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_outcomes_writes_statuses_and_attempts_and_releases_leases(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let notifications = t.notifications();
    notifications
        .insert_batch(&[with_deliveries(
            notification(1, "artist-1", None, at(0)),
            &[Channel::Email, Channel::Telegram],
        )])
        .await
        .unwrap();
    let queue = t.queue();
    let email = did(1, Channel::Email);
    let telegram = did(1, Channel::Telegram);
    let claimed = queue
        .claim_due(at(1), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let claim = claimed[0].claim.clone();
    let sent_attempt = AttemptRecord {
        number: 1,
        started_at: at(1),
        duration_ms: 412,
        outcome: AttemptOutcome::Sent,
        error: None,
        provider_response_id: Some("<abc@clairon>".into()),
    };
    let failed_attempt = AttemptRecord {
        number: 1,
        started_at: at(1),
        duration_ms: 30_000,
        outcome: AttemptOutcome::Transient,
        error: Some("timeout".into()),
        provider_response_id: None,
    };

    queue
        .record(&[
            DeliveryUpdate {
                id: email.clone(),
                status: DeliveryStatus::Sent,
                attempts: 1,
                last_error: None,
                provider_message_id: Some("<abc@clairon>".into()),
                sent_at: Some(at(2)),
                next_attempt_at: None,
                attempt: Some(sent_attempt.clone()),
                claim: claim.clone(),
                fallback: None,
                paced: false,
            },
            DeliveryUpdate {
                id: telegram.clone(),
                status: DeliveryStatus::Retrying,
                attempts: 1,
                last_error: Some("timeout".into()),
                provider_message_id: None,
                sent_at: None,
                next_attempt_at: Some(at(100)),
                attempt: Some(failed_attempt.clone()),
                claim,
                fallback: None,
                paced: false,
            },
        ])
        .await
        .unwrap();

    let details = notifications.get(&nid(1)).await.unwrap().unwrap();
    let (stored_email, stored_telegram) = (&details.deliveries[0], &details.deliveries[1]);
    assert_eq!(stored_email.status, DeliveryStatus::Sent);
    assert_eq!(stored_email.attempts, 1);
    assert_eq!(
        stored_email.provider_message_id.as_deref(),
        Some("<abc@clairon>")
    );
    assert_eq!(stored_email.sent_at, Some(at(2)));
    assert_eq!(stored_telegram.status, DeliveryStatus::Retrying);
    assert_eq!(stored_telegram.last_error.as_deref(), Some("timeout"));
    assert_eq!(queue.attempts(&email).await.unwrap(), vec![sent_attempt]);
    assert_eq!(
        queue.attempts(&telegram).await.unwrap(),
        vec![failed_attempt]
    );

    assert!(
        queue
            .claim_due(at(99), LEASE, 10, ChannelSet::all())
            .await
            .unwrap()
            .is_empty(),
        "the retry is not due yet, and a sent delivery is never due"
    );
    let retried = queue
        .claim_due(at(100), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(claimed_ids(&retried), vec![telegram.clone()]);
    assert_eq!(retried[0].delivery.attempts, 1);

    let dead_attempt = AttemptRecord {
        number: 2,
        started_at: at(100),
        duration_ms: 5,
        outcome: AttemptOutcome::Permanent,
        error: Some("chat not found".into()),
        provider_response_id: None,
    };
    queue
        .record(&[DeliveryUpdate {
            id: telegram.clone(),
            status: DeliveryStatus::Dead,
            attempts: 2,
            last_error: Some("chat not found".into()),
            provider_message_id: None,
            sent_at: None,
            next_attempt_at: None,
            attempt: Some(dead_attempt.clone()),
            claim: retried[0].claim.clone(),
            fallback: None,
            paced: false,
        }])
        .await
        .unwrap();
    let history = queue.attempts(&telegram).await.unwrap();
    assert_eq!(
        history.iter().map(|a| a.number).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(history[1], dead_attempt);
    assert!(
        queue
            .claim_due(at(10_000), LEASE, 10, ChannelSet::all())
            .await
            .unwrap()
            .is_empty(),
        "recording released the lease: a dead delivery is never claimed again"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_deliveries_are_never_claimed(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let n = notification(1, "artist-1", None, at(0));
    let new = NewNotification {
        deliveries: vec![
            Delivery::pending(
                did(1, Channel::InApp),
                nid(1),
                rid("artist-1"),
                Channel::InApp,
                at(0),
            ),
            Delivery::skipped(
                did(1, Channel::Telegram),
                nid(1),
                rid("artist-1"),
                Channel::Telegram,
                "no Telegram bot token is configured",
                at(0),
            ),
        ],
        notification: n,
        deliver_at: None,
    };
    t.notifications().insert_batch(&[new]).await.unwrap();

    let claimed = t
        .queue()
        .claim_due(at(1_000_000), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    assert_eq!(claimed_ids(&claimed), vec![did(1, Channel::InApp)]);
    let stored = t.notifications().get(&nid(1)).await.unwrap().unwrap();
    assert_eq!(stored.deliveries[1].status, DeliveryStatus::Skipped);
    assert_eq!(
        stored.deliveries[1].last_error.as_deref(),
        Some("no Telegram bot token is configured")
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_claimers_never_receive_the_same_delivery(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=60).await;

    let claimers: Vec<_> = (0..2)
        .map(|_| {
            let queue = t.queue();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = queue
                        .claim_due(at(100), LEASE, 3, ChannelSet::all())
                        .await
                        .expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed_ids(&batch));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut per_claimer = Vec::new();
    for claimer in claimers {
        let mine = claimer.await.expect("claimer task");
        per_claimer.push(mine.len());
        all.extend(mine);
    }

    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(
        all.len(),
        60,
        "every delivery was claimed once: {per_claimer:?}"
    );
    assert_eq!(distinct.len(), 60, "no delivery was claimed twice");
}

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_hashes_are_stored_once_found_and_counted(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    let keys = DieselApiKeyStore::new(t.db.clone());
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let other = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    assert_eq!(keys.count().await.unwrap(), 0);

    keys.insert_hash(hash, Some("ops")).await.unwrap();
    let duplicate = keys.insert_hash(&hash.to_ascii_uppercase(), None).await;

    assert!(
        matches!(duplicate, Err(RepositoryError::Conflict(_))),
        "{duplicate:?}"
    );
    assert!(keys.contains_hash(hash).await.unwrap());
    assert!(
        keys.contains_hash(&hash.to_ascii_uppercase())
            .await
            .unwrap(),
        "hex is case-insensitive"
    );
    assert!(!keys.contains_hash(other).await.unwrap());
    assert_eq!(keys.count().await.unwrap(), 1);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_found_with_its_scope_until_it_is_revoked(#[case] engine: Engine) {
    use clairon_application::ports::ApiKeyDirectory;
    use clairon_domain::ApiScope;

    let t = open_or_skip!(engine);
    let keys = DieselApiKeyStore::new(t.db.clone());
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let created = keys
        .create("dashboard", ApiScope::Read, hash)
        .await
        .unwrap();

    let found = keys.find_active(hash).await.unwrap();
    let listed = keys.list().await.unwrap();

    assert_eq!(found, Some((created.id, ApiScope::Read)));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "dashboard");
    assert!(listed[0].last_used_at.is_some(), "a lookup notes the use");
    let revoked = keys.revoke(created.id, at(5)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(5)));
    assert_eq!(keys.find_active(hash).await.unwrap(), None);
    assert!(!keys.contains_hash(hash).await.unwrap());
    let again = keys.revoke(created.id, at(9)).await.unwrap().unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at(5)),
        "the first revocation time stays"
    );
    assert_eq!(keys.revoke(9999, at(9)).await.unwrap(), None);
    assert_eq!(
        keys.list().await.unwrap().len(),
        1,
        "a revoked key is still listed"
    );
}

// ---------------------------------------------------------------------------------------------
// Recipient token generations
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_generation_is_drawn_at_creation_kept_by_updates_and_renewed_on_demand(
    #[case] engine: Engine,
) {
    use clairon_adapters::persistence::DieselTokenGenerations;
    use clairon_application::ports::TokenGenerations;

    let t = open_or_skip!(engine);
    let generations = DieselTokenGenerations::new(t.db.clone());
    t.recipients()
        .upsert_many(&[recipient("artist-0001")])
        .await
        .unwrap();

    let created = generations.current(&rid("artist-0001")).await.unwrap();
    t.recipients()
        .upsert_many(&[recipient("artist-0001")])
        .await
        .unwrap();
    let after_update = generations.current(&rid("artist-0001")).await.unwrap();
    let renewed = generations.renew(&rid("artist-0001")).await.unwrap();
    let current = generations.current(&rid("artist-0001")).await.unwrap();

    let created = created.expect("a created recipient has a generation");
    assert!(created > 0, "never the column's default 0: {created}");
    assert_eq!(
        after_update,
        Some(created),
        "an update keeps the generation"
    );
    assert!(
        renewed.is_some_and(|r| r != created),
        "renewing draws another one"
    );
    assert_eq!(current, renewed, "the renewed one is current");
    assert_eq!(generations.current(&rid("nobody")).await.unwrap(), None);
    assert_eq!(
        generations.renew(&rid("nobody")).await.unwrap(),
        None,
        "an unknown recipient has nothing to renew"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_created_again_after_an_erasure_draws_a_new_generation(#[case] engine: Engine) {
    use clairon_adapters::persistence::{DieselPersonalDataStore, DieselTokenGenerations};
    use clairon_application::ports::{
        ErasureAudit, ErasureOutcome, PersonalDataStore, TokenGenerations,
    };

    let t = open_or_skip!(engine);
    let generations = DieselTokenGenerations::new(t.db.clone());
    t.recipients()
        .upsert_many(&[recipient("artist-0001")])
        .await
        .unwrap();
    let before = generations.current(&rid("artist-0001")).await.unwrap();

    let erased = DieselPersonalDataStore::new(t.db.clone())
        .erase(
            &rid("artist-0001"),
            &ErasureAudit {
                actor: "env".into(),
                at: at(0),
            },
            std::sync::Arc::new(
                clairon_application::commands::ContextRedactor::without_templates(
                    clairon_domain::Locale::Fr,
                ),
            ),
        )
        .await
        .unwrap();
    let while_gone = generations.current(&rid("artist-0001")).await.unwrap();
    t.recipients()
        .upsert_many(&[recipient("artist-0001")])
        .await
        .unwrap();
    let after = generations.current(&rid("artist-0001")).await.unwrap();

    assert!(matches!(erased, ErasureOutcome::Erased(_)), "{erased:?}");
    assert_eq!(while_gone, None, "the generation went with the recipient");
    assert!(
        after.is_some() && after != before,
        "the new recipient does not inherit the old generation: {before:?} → {after:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Delivery engine: listing, manual retry, attempts in the read model, unreachable chats
// ---------------------------------------------------------------------------------------------

fn outcome(
    id: DeliveryId,
    status: DeliveryStatus,
    number: u32,
    claim: &ClaimToken,
) -> DeliveryUpdate {
    let failed = status != DeliveryStatus::Sent;
    DeliveryUpdate {
        claim: claim.clone(),
        fallback: None,
        paced: false,
        id,
        status,
        attempts: number,
        last_error: failed.then(|| "451 try later".to_owned()),
        provider_message_id: (!failed).then(|| "<m@clairon>".to_owned()),
        sent_at: (!failed).then(|| at(2)),
        next_attempt_at: None,
        attempt: Some(AttemptRecord {
            number,
            started_at: at(1),
            duration_ms: 7,
            outcome: if failed {
                AttemptOutcome::Transient
            } else {
                AttemptOutcome::Sent
            },
            error: failed.then(|| "451 try later".to_owned()),
            provider_response_id: (!failed).then(|| "<m@clairon>".to_owned()),
        }),
    }
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_listed_newest_first_by_status_and_channel_and_dead_ones_can_be_requeued(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let batch: Vec<NewNotification> = (1..=3)
        .map(|n| {
            with_deliveries(
                notification(n, "artist-1", None, at(0)),
                &[Channel::Email, Channel::Telegram],
            )
        })
        .collect();
    t.notifications().insert_batch(&batch).await.unwrap();
    let queue = t.queue();
    let claimed = queue
        .claim_due(at(1), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6);
    let claim = &claimed[0].claim;
    queue
        .record(&[
            outcome(did(1, Channel::Email), DeliveryStatus::Dead, 8, claim),
            outcome(did(2, Channel::Email), DeliveryStatus::Dead, 8, claim),
            outcome(did(3, Channel::Email), DeliveryStatus::Failed, 1, claim),
            outcome(did(1, Channel::Telegram), DeliveryStatus::Sent, 1, claim),
            outcome(did(2, Channel::Telegram), DeliveryStatus::Sent, 1, claim),
            outcome(did(3, Channel::Telegram), DeliveryStatus::Sent, 1, claim),
        ])
        .await
        .unwrap();
    let query = |status, channel, before| DeliveryListQuery {
        status: Some(status),
        channel,
        limit: 1,
        before,
    };

    let first = DeliveryRepository::list(&queue, &query(DeliveryStatus::Dead, None, None))
        .await
        .unwrap();
    let second = DeliveryRepository::list(
        &queue,
        &query(DeliveryStatus::Dead, None, first.next.clone()),
    )
    .await
    .unwrap();
    let sent_on_telegram = DeliveryRepository::list(
        &queue,
        &DeliveryListQuery {
            limit: 10,
            ..query(DeliveryStatus::Sent, Some(Channel::Telegram), None)
        },
    )
    .await
    .unwrap();

    let ids = |items: &[Delivery]| items.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first.items), vec![did(2, Channel::Email)]);
    assert_eq!(first.next, Some(did(2, Channel::Email)));
    assert_eq!(ids(&second.items), vec![did(1, Channel::Email)]);
    assert_eq!(second.next, None, "no third dead delivery");
    assert_eq!(
        ids(&sent_on_telegram.items),
        vec![
            did(3, Channel::Telegram),
            did(2, Channel::Telegram),
            did(1, Channel::Telegram)
        ]
    );

    let requeued = queue
        .requeue(&did(1, Channel::Email), at(50))
        .await
        .unwrap();
    let Requeued::Requeued(delivery) = requeued else {
        panic!("a dead delivery is requeued: {requeued:?}");
    };
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.attempts, 0, "a fresh series of tries");
    assert_eq!(
        queue
            .requeue(&did(1, Channel::Email), at(50))
            .await
            .unwrap(),
        Requeued::NotRetryable(DeliveryStatus::Pending)
    );
    assert_eq!(
        queue
            .requeue(&did(1, Channel::Telegram), at(50))
            .await
            .unwrap(),
        Requeued::NotRetryable(DeliveryStatus::Sent)
    );
    assert_eq!(
        queue
            .requeue(&did(9, Channel::Email), at(50))
            .await
            .unwrap(),
        Requeued::NotFound
    );
    let failed = queue
        .requeue(&did(3, Channel::Email), at(50))
        .await
        .unwrap();
    assert!(matches!(failed, Requeued::Requeued(_)), "{failed:?}");
    let due = queue
        .claim_due(at(50), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let mut due = claimed_ids(&due);
    due.sort();
    assert_eq!(due, vec![did(1, Channel::Email), did(3, Channel::Email)]);

    let details = t.notifications().get(&nid(1)).await.unwrap().unwrap();
    let email_attempts = &details.attempts[&did(1, Channel::Email)];
    assert_eq!(
        email_attempts.len(),
        1,
        "the attempt rows come with the details"
    );
    assert_eq!(email_attempts[0].number, 8);
    assert_eq!(email_attempts[0].outcome.as_str(), "transient");
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_telegram_refused_stays_unreachable_until_the_chat_id_changes(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let recipients = t.recipients();
    let chat = TelegramChatId::parse("123456789").unwrap();

    recipients
        .mark_telegram_unreachable(
            &rid("artist-1"),
            &TelegramChatId::parse("999").unwrap(),
            "old chat",
        )
        .await
        .unwrap();
    let untouched = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    recipients
        .mark_telegram_unreachable(
            &rid("artist-1"),
            &chat,
            "Forbidden: bot was blocked by the user",
        )
        .await
        .unwrap();
    let marked = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    recipients
        .upsert_many(&[recipient("artist-1")])
        .await
        .unwrap();
    let same_chat = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    let mut moved = recipient("artist-1");
    moved.telegram_chat_id = Some(TelegramChatId::parse("555").unwrap());
    recipients.upsert_many(&[moved]).await.unwrap();
    let mut back = recipient("artist-1");
    back.telegram_chat_id = Some(chat.clone());
    recipients.upsert_many(&[back]).await.unwrap();
    let back_again = recipients.get(&rid("artist-1")).await.unwrap().unwrap();

    assert_eq!(
        untouched.telegram_unreachable, None,
        "a mark for another chat is ignored"
    );
    assert_eq!(
        marked.telegram_unreachable.as_deref(),
        Some("Forbidden: bot was blocked by the user")
    );
    assert_eq!(
        same_chat.telegram_unreachable, marked.telegram_unreachable,
        "an upsert with the same chat id keeps the mark"
    );
    assert_eq!(
        back_again.telegram_unreachable, None,
        "a different chat id cleared it for good"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_round_trips_and_a_410_disables_it_until_the_url_changes(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    let recipients = t.recipients();
    let url = WebhookUrl::parse("https://hooks.example.org/a?t=1").unwrap();
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let mut hooked = recipient("artist-1");
    hooked.webhook_url = Some(url.clone());
    hooked.webhook_secret = Some(secret.clone());
    recipients.upsert_many(&[hooked.clone()]).await.unwrap();
    let stored = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    assert_eq!(stored.webhook_url.as_ref(), Some(&url));
    assert_eq!(stored.webhook_secret.as_ref(), Some(&secret));
    assert_eq!(stored.webhook_disabled, None);

    let other = WebhookUrl::parse("https://hooks.example.org/old").unwrap();
    recipients
        .mark_webhook_disabled(&rid("artist-1"), &other, "410 Gone")
        .await
        .unwrap();
    let untouched = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    recipients
        .mark_webhook_disabled(&rid("artist-1"), &url, "410 Gone: bye")
        .await
        .unwrap();
    let disabled = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    recipients.upsert_many(&[hooked.clone()]).await.unwrap();
    let same_url = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    let mut moved = hooked.clone();
    moved.webhook_url = Some(other);
    recipients.upsert_many(&[moved]).await.unwrap();
    recipients.upsert_many(&[hooked]).await.unwrap();
    let back = recipients.get(&rid("artist-1")).await.unwrap().unwrap();

    assert_eq!(
        untouched.webhook_disabled, None,
        "a mark for another URL is ignored"
    );
    assert_eq!(disabled.webhook_disabled.as_deref(), Some("410 Gone: bye"));
    assert_eq!(
        same_url.webhook_disabled, disabled.webhook_disabled,
        "an upsert with the same URL keeps it disabled"
    );
    assert_eq!(
        back.webhook_disabled, None,
        "a different URL enabled it again"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_url_round_trips_and_a_refusal_for_good_is_kept_until_the_url_changes(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    let recipients = t.recipients();
    let url = clairon_domain::SlackWebhookUrl::parse(
        "https://hooks.slack.com/services/T0001/B0001/current",
    )
    .unwrap();
    let other =
        clairon_domain::SlackWebhookUrl::parse("https://hooks.slack.com/services/T0001/B0001/old")
            .unwrap();
    let mut slacker = recipient("artist-1");
    slacker.slack_webhook_url = Some(url.clone());
    recipients.upsert_many(&[slacker.clone()]).await.unwrap();
    let stored = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    assert_eq!(stored.slack_webhook_url.as_ref(), Some(&url));
    assert_eq!(stored.slack_unreachable, None);

    recipients
        .mark_slack_unreachable(
            &rid("artist-1"),
            &other,
            "slack webhook gone: 404 no_service",
        )
        .await
        .unwrap();
    let untouched = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    recipients
        .mark_slack_unreachable(&rid("artist-1"), &url, "slack webhook gone: 404 no_service")
        .await
        .unwrap();
    let marked = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    recipients.upsert_many(&[slacker.clone()]).await.unwrap();
    let same_url = recipients.get(&rid("artist-1")).await.unwrap().unwrap();
    let mut moved = slacker.clone();
    moved.slack_webhook_url = Some(other);
    recipients.upsert_many(&[moved]).await.unwrap();
    recipients.upsert_many(&[slacker]).await.unwrap();
    let back = recipients.get(&rid("artist-1")).await.unwrap().unwrap();

    assert_eq!(
        untouched.slack_unreachable, None,
        "a mark for another URL is ignored"
    );
    assert_eq!(
        marked.slack_unreachable.as_deref(),
        Some("slack webhook gone: 404 no_service")
    );
    assert_eq!(
        same_url.slack_unreachable, marked.slack_unreachable,
        "an upsert with the same URL keeps the mark"
    );
    assert_eq!(
        back.slack_unreachable, None,
        "a different URL cleared it for good"
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys
// ---------------------------------------------------------------------------------------------

fn idempotent(key: &str, fingerprint: &str) -> IdempotentRequest {
    IdempotentRequest {
        api_key_hash: "a".repeat(64),
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
    }
}

fn answer(status: u16) -> StoredResponse {
    StoredResponse {
        status,
        content_type: Some("application/json".into()),
        body: r#"{"notifications":[]}"#.into(),
    }
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_started_once_then_in_progress_then_replayed_until_it_expires(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    let store = DieselIdempotencyStore::new(t.db.clone());
    let ttl = chrono::TimeDelta::hours(24);
    let request = idempotent("order-42", "f1");

    assert_eq!(
        store.begin(&request, at(0), ttl).await.unwrap(),
        Begun::Started
    );
    assert_eq!(
        store.begin(&request, at(1), ttl).await.unwrap(),
        Begun::InProgress
    );
    assert_eq!(
        store
            .begin(&idempotent("order-42", "f2"), at(1), ttl)
            .await
            .unwrap(),
        Begun::Mismatch,
        "the same key with another request is refused even while in progress"
    );

    store.complete(&request, &answer(202)).await.unwrap();
    assert_eq!(
        store.begin(&request, at(2), ttl).await.unwrap(),
        Begun::Completed(answer(202))
    );
    store.release(&request).await.unwrap();
    assert_eq!(
        store.begin(&request, at(3), ttl).await.unwrap(),
        Begun::Completed(answer(202)),
        "releasing never forgets a completed answer"
    );

    let other_client = IdempotentRequest {
        api_key_hash: "b".repeat(64),
        ..idempotent("order-42", "f2")
    };
    assert_eq!(
        store.begin(&other_client, at(3), ttl).await.unwrap(),
        Begun::Started,
        "keys are scoped per API key"
    );
    store.complete(&other_client, &answer(200)).await.unwrap();

    let a_day_later = at(0) + ttl;
    assert_eq!(
        store
            .begin(&idempotent("order-42", "f2"), a_day_later, ttl)
            .await
            .unwrap(),
        Begun::Started,
        "an expired key is free again, whatever the body"
    );
    assert_eq!(
        store.purge_expired(a_day_later + ttl).await.unwrap(),
        2,
        "both remaining records have expired"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_left_in_progress_by_a_dead_request_is_taken_over_after_ten_minutes(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    let store = DieselIdempotencyStore::new(t.db.clone());
    let ttl = chrono::TimeDelta::hours(24);
    let request = idempotent("orphan", "f1");
    assert_eq!(
        store.begin(&request, at(0), ttl).await.unwrap(),
        Begun::Started
    );
    assert_eq!(
        store.begin(&request, at(599), ttl).await.unwrap(),
        Begun::InProgress
    );
    assert_eq!(
        store.begin(&request, at(600), ttl).await.unwrap(),
        Begun::Started
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_key_may_be_started_again(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    let store = DieselIdempotencyStore::new(t.db.clone());
    let ttl = chrono::TimeDelta::hours(24);
    let request = idempotent("retry-me", "f1");
    assert_eq!(
        store.begin(&request, at(0), ttl).await.unwrap(),
        Begun::Started
    );
    store.release(&request).await.unwrap();
    assert_eq!(
        store.begin(&request, at(1), ttl).await.unwrap(),
        Begun::Started
    );
}

/// Writes `batch` as the request under `request` whose route answers with the number of
/// notifications written; returns whether the scope says the answer went with the work.
async fn write_as_idempotent_request(
    t: &TestDb,
    request: &IdempotentRequest,
    batch: Vec<NewNotification>,
) -> (Result<(), RepositoryError>, bool) {
    let scope = idempotency::Scope::new(request.clone());
    let notifications = t.notifications();
    let written = idempotency::scope(scope.clone(), async move {
        idempotency::answer_with(|written| StoredResponse {
            status: 202,
            content_type: Some("application/json".into()),
            body: format!(r#"{{"written":{}}}"#, written.len()),
        });
        notifications.insert_batch(&batch).await
    })
    .await;
    (written, scope.answered())
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_answer_is_stored_in_the_transaction_that_writes_the_notifications(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let store = DieselIdempotencyStore::new(t.db.clone());
    let ttl = chrono::TimeDelta::hours(24);
    let request = idempotent("with-the-work", "f1");
    assert_eq!(
        store.begin(&request, at(0), ttl).await.unwrap(),
        Begun::Started
    );
    let batch = vec![
        with_deliveries(notification(1, "artist-1", None, at(0)), &[Channel::InApp]),
        with_deliveries(notification(2, "artist-1", None, at(0)), &[Channel::InApp]),
    ];

    let (written, answered) = write_as_idempotent_request(&t, &request, batch).await;

    written.expect("the notifications are written");
    assert!(answered, "the scope knows the answer went with the work");
    assert_eq!(
        store.begin(&request, at(1), ttl).await.unwrap(),
        Begun::Completed(StoredResponse {
            status: 202,
            content_type: Some("application/json".into()),
            body: r#"{"written":2}"#.into(),
        }),
        "a retry replays the answer, though the middleware never stored it (it could have died)"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_stores_no_idempotent_answer(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    let store = DieselIdempotencyStore::new(t.db.clone());
    let ttl = chrono::TimeDelta::hours(24);
    let request = idempotent("refused", "f1");
    assert_eq!(
        store.begin(&request, at(0), ttl).await.unwrap(),
        Begun::Started
    );
    // Nobody is registered: the foreign key refuses the notification.
    let batch = vec![with_deliveries(
        notification(1, "ghost-1", None, at(0)),
        &[Channel::InApp],
    )];

    let (written, answered) = write_as_idempotent_request(&t, &request, batch).await;

    assert!(written.is_err(), "the write is refused");
    assert!(!answered, "so no answer went with it");
    assert_eq!(
        store.begin(&request, at(1), ttl).await.unwrap(),
        Begun::InProgress,
        "the record waits for the middleware's answer (or its release)"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_requests_with_one_key_exactly_one_starts(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    let store = DieselIdempotencyStore::new(t.db.clone());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .begin(
                        &idempotent("race", "f1"),
                        at(0),
                        chrono::TimeDelta::hours(24),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap() {
            Begun::Started => started += 1,
            Begun::InProgress => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(started, 1, "only one request may execute");
}

// ---------------------------------------------------------------------------------------------
// Scheduled notifications
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_notification_is_hidden_and_not_due_until_its_time(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    // Visibility follows the process clock: schedule around the real now.
    let now = Utc::now();
    let later = now + chrono::TimeDelta::hours(1);
    let mut scheduled = with_deliveries(
        notification(1, "artist-1", None, now),
        &[Channel::InApp, Channel::Email],
    );
    scheduled.deliver_at = Some(later);
    let mut due = with_deliveries(notification(2, "artist-1", None, now), &[Channel::InApp]);
    due.deliver_at = Some(now - chrono::TimeDelta::seconds(1));
    t.notifications()
        .insert_batch(&[scheduled, due])
        .await
        .unwrap();

    let inbox = t
        .notifications()
        .list(&ListQuery {
            recipient_id: rid("artist-1"),
            filter: ReadFilter::All,
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(
        inbox.items.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        vec![nid(2)],
        "only the due notification is in the inbox"
    );
    assert_eq!(
        t.notifications()
            .unread_count(&rid("artist-1"))
            .await
            .unwrap(),
        1
    );
    let marked = t
        .notifications()
        .mark_all_read(&rid("artist-1"), now)
        .await
        .unwrap();
    assert_eq!(
        marked,
        vec![nid(2)],
        "a scheduled notification is not marked read"
    );

    let claimed = t
        .queue()
        .claim_due(now, LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.notification.id.clone())
            .collect::<Vec<_>>(),
        vec![nid(2)],
        "the scheduled deliveries are not due yet"
    );
    // Sent: a lease left to lapse would make it a suspect, claimed alone.
    t.queue()
        .record(&claimed.iter().map(sent_under).collect::<Vec<_>>())
        .await
        .unwrap();
    let at_time = t
        .queue()
        .claim_due(later, LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let mut channels: Vec<Channel> = at_time
        .iter()
        .filter(|c| c.notification.id == nid(1))
        .map(|c| c.delivery.channel)
        .collect();
    channels.sort();
    assert_eq!(
        channels,
        vec![Channel::InApp, Channel::Email],
        "due at deliver_at"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_notification_takes_its_inbox_number_when_it_falls_due(#[case] engine: Engine) {
    use clairon_application::ports::InboxFeed;
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let now = Utc::now();
    let later = now + chrono::TimeDelta::hours(1);
    let first = with_deliveries(notification(1, "artist-1", None, now), &[Channel::InApp]);
    let mut scheduled = with_deliveries(notification(2, "artist-1", None, now), &[Channel::InApp]);
    scheduled.deliver_at = Some(later);
    let third = with_deliveries(notification(3, "artist-1", None, now), &[Channel::InApp]);
    t.notifications()
        .insert_batch(&[first, scheduled, third])
        .await
        .unwrap();
    let seqs = |items: Vec<clairon_application::ports::SequencedNotification>| -> Vec<(u64, NotificationId)> {
        items.into_iter().map(|s| (s.seq, s.notification.id)).collect()
    };
    assert_eq!(
        seqs(
            t.notifications()
                .after(&rid("artist-1"), 0, 10)
                .await
                .unwrap()
        ),
        vec![(1, nid(1)), (2, nid(3))],
        "the scheduled notification has no number while it is hidden"
    );

    t.queue()
        .claim_due(later, LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    assert_eq!(
        seqs(t.notifications().after(&rid("artist-1"), 2, 10).await.unwrap()),
        vec![(3, nid(2))],
        "once due it follows everything the recipient saw before, so a client resuming at 2 gets it"
    );
}

// ---------------------------------------------------------------------------------------------
// Reminders under a cancellation key
// ---------------------------------------------------------------------------------------------

fn reminder(n: u32, to: &str, deliver_at: Option<DateTime<Utc>>) -> NewReminder {
    let mut notification = with_deliveries(
        notification(n, to, None, at(0)),
        &[Channel::InApp, Channel::Email],
    );
    notification.deliver_at = deliver_at;
    NewReminder {
        key: format!("reminder:pl-1:{to}"),
        notification,
    }
}

fn changes(schedule: Vec<NewReminder>, keep: &[&str]) -> ReminderChanges {
    ReminderChanges {
        prefix: "reminder:pl-1:".into(),
        schedule,
        keep: keep.iter().map(|k| format!("reminder:pl-1:{k}")).collect(),
        now: at(1),
    }
}

async fn statuses(t: &TestDb, n: u32) -> Vec<DeliveryStatus> {
    t.notifications()
        .get(&nid(n))
        .await
        .unwrap()
        .unwrap()
        .deliveries
        .iter()
        .map(|d| d.status)
        .collect()
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescheduled_reminder_replaces_the_pending_one_and_is_never_doubled(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "coord-1"]).await;
    let repo = t.notifications();
    let event = with_deliveries(
        notification(10, "coord-1", Some("evt-1"), at(0)),
        &[Channel::InApp],
    );

    let first = repo
        .insert_with_reminders(
            &[event],
            &changes(
                vec![reminder(1, "artist-1", Some(at(3_600)))],
                &["artist-1"],
            ),
        )
        .await
        .unwrap();
    let second = repo
        .insert_with_reminders(
            &[],
            &changes(
                vec![reminder(2, "artist-1", Some(at(7_200)))],
                &["artist-1"],
            ),
        )
        .await
        .unwrap();

    assert_eq!(first, vec![nid(1)]);
    assert_eq!(second, vec![nid(2)]);
    assert!(
        repo.get(&nid(10)).await.unwrap().is_some(),
        "the event's notification is written too"
    );
    assert_eq!(
        statuses(&t, 1).await,
        vec![DeliveryStatus::Cancelled, DeliveryStatus::Cancelled],
        "the replaced reminder is cancelled"
    );
    let due = t
        .queue()
        .claim_due(at(100_000), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let mut due: Vec<NotificationId> = due.into_iter().map(|c| c.notification.id).collect();
    due.dedup();
    assert_eq!(
        due,
        vec![nid(10), nid(2)],
        "one reminder only, at its new time"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_cancelled_when_its_key_is_not_kept_and_never_remade_once_gone_out(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    let repo = t.notifications();
    repo.insert_with_reminders(
        &[],
        &changes(
            vec![
                reminder(1, "artist-1", Some(at(3_600))),
                reminder(2, "artist-2", None),
            ],
            &["artist-1", "artist-2"],
        ),
    )
    .await
    .unwrap();
    // artist-2's reminder, due at once, goes out (claimed: no longer pending).
    let claimed = t
        .queue()
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert!(claimed.iter().all(|c| c.notification.id == nid(2)));

    // A later event lists artist-2 only, and would schedule artist-2's reminder again.
    let written = repo
        .insert_with_reminders(
            &[],
            &changes(vec![reminder(3, "artist-2", None)], &["artist-2"]),
        )
        .await
        .unwrap();

    assert!(
        written.is_empty(),
        "a reminder that went out is not made again"
    );
    assert_eq!(
        statuses(&t, 1).await,
        vec![DeliveryStatus::Cancelled, DeliveryStatus::Cancelled],
        "artist-1 is no longer listed: their pending reminder is cancelled"
    );
    assert!(repo.get(&nid(3)).await.unwrap().is_none());

    // artist-1 assigned again: a fresh reminder may take the key.
    let again = repo
        .insert_with_reminders(
            &[],
            &changes(
                vec![reminder(4, "artist-1", Some(at(3_600)))],
                &["artist-1", "artist-2"],
            ),
        )
        .await
        .unwrap();
    assert_eq!(again, vec![nid(4)]);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_reminder_never_shows_in_the_inbox(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let repo = t.notifications();
    // Due at once (visible), then cancelled before any dispatcher claimed it.
    repo.insert_with_reminders(
        &[],
        &changes(vec![reminder(1, "artist-1", None)], &["artist-1"]),
    )
    .await
    .unwrap();
    assert_eq!(repo.unread_count(&rid("artist-1")).await.unwrap(), 1);
    repo.insert_with_reminders(&[], &changes(vec![], &[]))
        .await
        .unwrap();
    assert_eq!(repo.unread_count(&rid("artist-1")).await.unwrap(), 0);
    assert_eq!(
        statuses(&t, 1).await,
        vec![DeliveryStatus::Cancelled, DeliveryStatus::Cancelled]
    );
}

// ---------------------------------------------------------------------------------------------
// Inbox feed: per-recipient sequence numbers (realtime replay)
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_recipients_notifications_are_numbered_from_one_without_gaps(#[case] engine: Engine) {
    use clairon_application::ports::InboxFeed;
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    given_inbox(&t, "artist-1", 1..=3).await;
    // One batch for two recipients numbers each on its own.
    let mixed: Vec<NewNotification> = [(4, "artist-2"), (5, "artist-1"), (6, "artist-2")]
        .into_iter()
        .map(|(n, to)| with_deliveries(notification(n, to, None, t_of(n)), &[Channel::InApp]))
        .collect();
    t.notifications().insert_batch(&mixed).await.unwrap();
    let feed = t.notifications();

    let first: Vec<(u64, u32)> = feed
        .after(&rid("artist-1"), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.seq, numbers(std::slice::from_ref(&s.notification))[0]))
        .collect();
    let second: Vec<u64> = feed
        .after(&rid("artist-2"), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|s| s.seq)
        .collect();

    assert_eq!(
        first,
        vec![(1, 1), (2, 2), (3, 3), (4, 5)],
        "artist-1: 1..4 in order"
    );
    assert_eq!(second, vec![1, 2], "artist-2 numbers on its own");
    assert_eq!(feed.last_seq(&rid("artist-1")).await.unwrap(), 4);
    let after_two: Vec<u64> = feed
        .after(&rid("artist-1"), 2, 1)
        .await
        .unwrap()
        .iter()
        .map(|s| s.seq)
        .collect();
    assert_eq!(after_two, vec![3], "after 2, at most one");
    let one = feed.sequenced(&nid(5)).await.unwrap().expect("found");
    assert_eq!((one.seq, one.notification.id.clone()), (4, nid(5)));
    assert!(feed.sequenced(&nid(99)).await.unwrap().is_none());
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_give_one_recipient_distinct_gapless_numbers(#[case] engine: Engine) {
    use clairon_application::ports::InboxFeed;
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    let writers: Vec<_> = (0..8u32)
        .map(|w| {
            let repo = t.notifications();
            tokio::spawn(async move {
                for i in 0..5u32 {
                    let n = 100 + w * 10 + i;
                    // Each batch touches both recipients, in varying order.
                    let (a, b) = if (w + i) % 2 == 0 {
                        ("artist-1", "artist-2")
                    } else {
                        ("artist-2", "artist-1")
                    };
                    let batch = vec![
                        with_deliveries(notification(n, a, None, t_of(n)), &[]),
                        with_deliveries(notification(n + 1000, b, None, t_of(n)), &[]),
                    ];
                    repo.insert_batch(&batch).await.expect("insert");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    for who in ["artist-1", "artist-2"] {
        let seqs: Vec<u64> = t
            .notifications()
            .after(&rid(who), 0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=40).collect::<Vec<u64>>(),
            "{who}: 1..=40, each once"
        );
    }
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_sharing_commits_each_take_effect_whole_and_a_conflict_fails_alone(
    #[case] engine: Engine,
) {
    use clairon_application::ports::InboxFeed;
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2", "artist-3"]).await;
    // One repository, as in the service: its writes are grouped into shared transactions.
    let repo = t.notifications();
    repo.insert_batch(&[with_deliveries(
        notification(1, "artist-1", Some("evt-taken"), at(0)),
        &[Channel::InApp],
    )])
    .await
    .unwrap();

    let requests: Vec<_> = (2..=61u32)
        .map(|n| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let to = ["artist-1", "artist-2", "artist-3"][n as usize % 3];
                // Request 30 repeats the source event already written: it must fail, alone.
                let source = (n == 30).then_some("evt-taken");
                let request = vec![with_deliveries(
                    notification(n, to, source, t_of(n)),
                    &[Channel::InApp, Channel::Email],
                )];
                (n, repo.insert_batch(&request).await)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for request in requests {
        outcomes.push(request.await.unwrap());
    }

    for (n, outcome) in &outcomes {
        if *n == 30 {
            assert!(
                matches!(outcome, Err(RepositoryError::Conflict(_))),
                "request 30 conflicts: {outcome:?}"
            );
            assert_eq!(
                repo.get(&nid(30)).await.unwrap(),
                None,
                "nothing of it written"
            );
        } else {
            assert!(outcome.is_ok(), "request {n}: {outcome:?}");
            let written = repo.get(&nid(*n)).await.unwrap().expect("written");
            assert_eq!(written.deliveries.len(), 2, "request {n}: both deliveries");
        }
    }
    let mut total = 0;
    for who in ["artist-1", "artist-2", "artist-3"] {
        let seqs: Vec<u64> = repo
            .after(&rid(who), 0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{who}: numbered 1..n without gaps");
        total += seqs.len();
    }
    assert_eq!(
        total, 60,
        "the first notification and 59 of the 60 requests"
    );
}

// ---------------------------------------------------------------------------------------------
// Housekeeping and operations statistics
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_puts_deliveries_with_an_expired_lease_back_in_the_queue(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=2).await;
    let queue = t.queue();
    let housekeeping = DieselHousekeeping::new(t.db.clone());
    let stats = DieselOperationsStats::new(t.db.clone());
    let claimed = queue
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);

    let during_lease = housekeeping.release_expired_leases(at(39)).await.unwrap();
    let sending = stats.queue_depth(at(39)).await.unwrap();
    let released = housekeeping.release_expired_leases(at(40)).await.unwrap();
    let after = stats.queue_depth(at(40)).await.unwrap();

    assert_eq!(during_lease, 0, "a live lease is left alone");
    assert_eq!(
        sending.counts,
        vec![ChannelStatusCount {
            channel: Channel::InApp,
            status: DeliveryStatus::Sending,
            count: 2
        }]
    );
    assert_eq!(released, 2);
    assert_eq!(
        after.counts,
        vec![ChannelStatusCount {
            channel: Channel::InApp,
            status: DeliveryStatus::Pending,
            count: 2
        }],
        "never tried, so pending again"
    );
    assert_eq!(after.oldest_due_age_secs, vec![(Channel::InApp, 0)]);
    let again = queue
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let then = queue
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(
        (again.len(), then.len()),
        (1, 1),
        "released deliveries are claimed again at once, each alone: their worker died holding them"
    );
    assert_ne!(claimed_ids(&again), claimed_ids(&then));
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_purge_deletes_old_settled_notifications_with_their_rows(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    // 1 and 2 are old; 3 is recent. 1 is delivered; 2 still waits.
    given_inbox(&t, "artist-1", 1..=3).await;
    let queue = t.queue();
    let claimed = queue
        .claim_due(at(100), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let sent: Vec<DeliveryUpdate> = claimed
        .iter()
        .filter(|c| c.delivery.id != did(2, Channel::InApp))
        .map(|c| DeliveryUpdate {
            id: c.delivery.id.clone(),
            claim: c.claim.clone(),
            fallback: None,
            paced: false,
            status: DeliveryStatus::Sent,
            attempts: 1,
            last_error: None,
            provider_message_id: Some("p".into()),
            sent_at: Some(at(101)),
            next_attempt_at: None,
            attempt: Some(AttemptRecord {
                number: 1,
                started_at: at(100),
                duration_ms: 5,
                outcome: AttemptOutcome::Sent,
                error: None,
                provider_response_id: Some("p".into()),
            }),
        })
        .collect();
    queue.record(&sent).await.unwrap();
    let housekeeping = DieselHousekeeping::new(t.db.clone());

    // The cutoff falls between notification 2 (created at(2)) and 3 (created at(3)).
    let purged = housekeeping.purge_notifications(at(3)).await.unwrap();

    assert_eq!(
        purged,
        Purged {
            notifications: 1,
            deliveries: 1,
            attempts: 1
        }
    );
    let left = t
        .notifications()
        .list(&ListQuery {
            recipient_id: rid("artist-1"),
            filter: ReadFilter::All,
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(numbers(&left.items), vec![3, 2], "the unsent one is kept");
}

// ---------------------------------------------------------------------------------------------
// Host events (issue 12): written in the transaction of the change they report
// ---------------------------------------------------------------------------------------------

fn host_queue(t: &TestDb) -> DieselDeliveryQueue {
    DieselDeliveryQueue::new(t.db.clone()).with_host_events(true)
}

fn host_notifications(t: &TestDb) -> DieselNotificationRepository {
    DieselNotificationRepository::new(t.db.clone()).with_host_events(true)
}

fn host_outbox(t: &TestDb) -> DieselHostEventOutbox {
    DieselHostEventOutbox::new(t.db.clone())
}

fn payload(record: &HostEventRecord) -> serde_json::Value {
    serde_json::from_str(&record.payload).expect("the payload is JSON")
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_a_delivery_sent_or_dead_writes_its_host_event_and_a_retry_writes_none(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    t.notifications()
        .insert_batch(&[with_deliveries(
            notification(1, "artist-1", None, at(0)),
            &[Channel::Email, Channel::Telegram, Channel::InApp],
        )])
        .await
        .unwrap();
    let queue = host_queue(&t);
    let claimed = queue
        .claim_due(at(1), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let claim = claimed[0].claim.clone();
    let mut retrying = outcome(did(1, Channel::InApp), DeliveryStatus::Retrying, 1, &claim);
    retrying.next_attempt_at = Some(at(60));

    let lost = queue
        .record(&[
            outcome(did(1, Channel::Email), DeliveryStatus::Sent, 1, &claim),
            outcome(did(1, Channel::Telegram), DeliveryStatus::Dead, 8, &claim),
            retrying,
        ])
        .await
        .unwrap();

    assert!(lost.is_empty());
    let events = host_outbox(&t).all().await.unwrap();
    let mut types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        vec!["delivery.dead", "delivery.sent"],
        "a retry is no event"
    );
    let sent = events
        .iter()
        .find(|e| e.event_type == "delivery.sent")
        .unwrap();
    assert_eq!((sent.status.as_str(), sent.attempts), ("pending", 0));
    let body = payload(sent);
    assert_eq!(body["type"], "delivery.sent");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    let data = &body["data"];
    assert_eq!(data["delivery_id"], did(1, Channel::Email).as_str());
    assert_eq!(data["notification_id"], nid(1).as_str());
    assert_eq!(data["recipient_id"], "artist-1");
    assert_eq!(data["channel"], "email");
    assert_eq!(data["status"], "sent");
    assert_eq!(data["attempts"], 1);
    assert_eq!(data["provider_message_id"], "<m@clairon>");
    assert_eq!(data["error"], serde_json::Value::Null);
    assert_eq!(data["fallback_of"], serde_json::Value::Null);
    let dead = payload(
        events
            .iter()
            .find(|e| e.event_type == "delivery.dead")
            .unwrap(),
    );
    assert_eq!(dead["data"]["error"], "451 try later");
    assert_eq!(dead["data"]["attempts"], 8);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_events_webhook_recording_and_reading_write_no_host_event(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=2).await;
    let queue = t.queue();
    let claimed = queue
        .claim_due(at(100), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    queue.record(&[sent_under(&claimed[0])]).await.unwrap();
    t.notifications()
        .mark_read(&nid(1), None, at(200))
        .await
        .unwrap();
    t.notifications()
        .mark_all_read(&rid("artist-1"), at(300))
        .await
        .unwrap();

    assert!(host_outbox(&t).all().await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_transaction_rolls_back_leaves_no_host_event(#[case] engine: Engine) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    t.notifications()
        .insert_batch(&[with_deliveries(
            notification(1, "artist-1", None, at(0)),
            &[Channel::Telegram, Channel::Email],
        )])
        .await
        .unwrap();
    let queue = host_queue(&t);
    let claimed = queue
        .claim_due(at(1), LEASE, 1, [Channel::Telegram].into_iter().collect())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // The outcome gives up on Telegram with a next link whose id is already taken (the email
    // delivery): its INSERT fails after the host event was written, and the whole record
    // rolls back.
    let mut dead = outcome(
        did(1, Channel::Telegram),
        DeliveryStatus::Dead,
        8,
        &claimed[0].claim,
    );
    dead.fallback = Some(FallbackLink {
        delivery: Delivery::pending(
            did(1, Channel::Email),
            nid(1),
            rid("artist-1"),
            Channel::Email,
            at(2),
        ),
        priority: Priority::Normal,
    });

    let refused = queue.record(&[dead]).await;

    assert!(refused.is_err(), "{refused:?}");
    assert!(
        host_outbox(&t).all().await.unwrap().is_empty(),
        "no event of an outcome that was not recorded"
    );
    assert_eq!(
        stored_delivery(&t, 1, Channel::Telegram).await.status,
        DeliveryStatus::Sending,
        "nor the outcome itself"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_read_and_reading_all_write_one_notification_read_event_per_notification_changed(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    given_inbox(&t, "artist-1", 1..=4).await;
    given_inbox(&t, "artist-2", 5..=5).await;
    let repo = host_notifications(&t);

    repo.mark_read(&nid(2), Some(rid("artist-1")), at(10))
        .await
        .unwrap();
    repo.mark_read(&nid(2), None, at(20)).await.unwrap();
    repo.mark_read(&nid(5), Some(rid("artist-1")), at(20))
        .await
        .unwrap();
    let first = host_outbox(&t).all().await.unwrap();
    repo.mark_all_read(&rid("artist-1"), at(30)).await.unwrap();
    repo.mark_all_read(&rid("artist-1"), at(40)).await.unwrap();
    let all = host_outbox(&t).all().await.unwrap();

    assert_eq!(
        first.len(),
        1,
        "a second read and someone else's notification are no event"
    );
    let read = payload(&first[0]);
    assert_eq!(read["type"], "notification.read");
    assert_eq!(read["data"]["notification_id"], nid(2).as_str());
    assert_eq!(read["data"]["recipient_id"], "artist-1");
    assert_eq!(
        read["data"]["read_at"],
        at(10).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    let mut by_read_all: Vec<String> = all[1..]
        .iter()
        .map(|e| {
            assert_eq!(e.event_type, "notification.read");
            payload(e)["data"]["notification_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    by_read_all.sort_unstable();
    assert_eq!(
        by_read_all,
        vec![
            nid(1).as_str().to_owned(),
            nid(3).as_str().to_owned(),
            nid(4).as_str().to_owned()
        ],
        "read-all reports what it changed, once"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_host_event_is_leased_then_settled_and_sent_ones_are_purged(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=3).await;
    host_notifications(&t)
        .mark_all_read(&rid("artist-1"), at(10))
        .await
        .unwrap();
    let outbox = host_outbox(&t);
    let ids: Vec<String> = outbox
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 3);

    let first = outbox.claim_due(at(10), LEASE, 2).await.unwrap();
    let meanwhile = outbox.claim_due(at(11), LEASE, 10).await.unwrap();
    let lapsed = outbox
        .claim_due(at(10) + chrono::Duration::seconds(30), LEASE, 10)
        .await
        .unwrap();

    assert_eq!(
        first.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[..2].to_vec(),
        "oldest first, up to the limit"
    );
    assert_eq!(first[0].attempts, 0);
    assert!(first[0].payload.contains("notification.read"));
    assert_eq!(
        meanwhile.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone()],
        "a leased event is not claimed again"
    );
    assert_eq!(lapsed.len(), 2, "until its lease lapses");

    outbox.mark_sent(&ids[0], 1, at(50)).await.unwrap();
    outbox
        .mark_retry(&ids[1], 1, at(100), "the host at 127.0.0.1 answered 500")
        .await
        .unwrap();
    outbox
        .mark_dead(&ids[2], 12, "the host at 127.0.0.1 timed out")
        .await
        .unwrap();
    let not_yet = outbox.claim_due(at(99), LEASE, 10).await.unwrap();
    let retried = outbox.claim_due(at(100), LEASE, 10).await.unwrap();
    let stored = outbox.all().await.unwrap();

    assert!(not_yet.is_empty(), "a retry waits for its time");
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0].id.as_str(), retried[0].attempts),
        (ids[1].as_str(), 1)
    );
    assert_eq!(
        stored
            .iter()
            .map(|e| (e.status.as_str(), e.attempts))
            .collect::<Vec<_>>(),
        vec![("sent", 1), ("pending", 1), ("dead", 12)]
    );
    assert_eq!(
        stored[1].last_error.as_deref(),
        Some("the host at 127.0.0.1 answered 500")
    );
    assert!(stored[0].sent_at.is_some());

    assert_eq!(
        outbox.purge_sent(at(50)).await.unwrap(),
        0,
        "sent at the cutoff: kept"
    );
    assert_eq!(outbox.purge_sent(at(51)).await.unwrap(), 1);
    assert_eq!(
        outbox
            .all()
            .await
            .unwrap()
            .iter()
            .map(|e| e.status.as_str())
            .collect::<Vec<_>>(),
        vec!["pending", "dead"],
        "pending and dead ones are kept"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_the_claim_parks_as_poison_writes_its_delivery_dead_host_event(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    let queue = host_queue(&t);
    // Its worker dies twice: the third claim parks it instead of handing it out.
    for secs in [10, 40] {
        let claimed = queue
            .claim_due(at(secs), LEASE, 10, ChannelSet::all())
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
    }
    let parked = queue
        .claim_due(at(70), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    assert!(parked.is_empty());
    let events = host_outbox(&t).all().await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, "delivery.dead");
    let data = &payload(&events[0])["data"];
    assert_eq!(data["delivery_id"], did(1, Channel::InApp).as_str());
    assert!(
        data["error"].as_str().unwrap().starts_with("poison"),
        "{data}"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_the_reaper_parks_as_poison_writes_its_delivery_dead_host_event(
    #[case] engine: Engine,
) {
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    let queue = host_queue(&t);
    let housekeeping = DieselHousekeeping::new(t.db.clone()).with_host_events(true);
    queue
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    housekeeping.release_expired_leases(at(40)).await.unwrap();
    let released = host_outbox(&t).all().await.unwrap();
    queue
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    housekeeping.release_expired_leases(at(70)).await.unwrap();

    assert!(released.is_empty(), "a released lease is no event");
    let events = host_outbox(&t).all().await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        vec!["delivery.dead"]
    );
    let data = &payload(&events[0])["data"];
    assert_eq!(data["delivery_id"], did(1, Channel::InApp).as_str());
    assert!(
        data["error"].as_str().unwrap().starts_with("poison"),
        "{data}"
    );
}

// ---------------------------------------------------------------------------------------------
// No poison pill: fenced claims, lease renewal, crash counting, unreadable rows, write health
// ---------------------------------------------------------------------------------------------

/// The stored delivery `id`, as the read model shows it.
async fn stored_delivery(t: &TestDb, n: u32, channel: Channel) -> Delivery {
    let details = t.notifications().get(&nid(n)).await.unwrap().unwrap();
    details
        .deliveries
        .into_iter()
        .find(|d| d.channel == channel)
        .expect("the delivery")
}

fn sent_under(claimed: &ClaimedDelivery) -> DeliveryUpdate {
    outcome(
        claimed.delivery.id.clone(),
        DeliveryStatus::Sent,
        1,
        &claimed.claim,
    )
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_lapsed_cannot_record_over_the_worker_that_retook_the_delivery(
    #[case] engine: Engine,
) {
    // Arrange: worker A claims with a short lease, which lapses; worker B retakes it.
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    let (a, b) = (t.queue(), t.queue());
    let short = Duration::from_secs(5);
    let by_a = a
        .claim_due(at(10), short, 10, ChannelSet::all())
        .await
        .unwrap();
    let by_b = b
        .claim_due(at(15), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(
        claimed_ids(&by_b),
        claimed_ids(&by_a),
        "B retook A's delivery"
    );
    assert_ne!(by_a[0].claim, by_b[0].claim, "under a claim of its own");

    // Act: A, still sending, records its outcome late; then B records its own.
    let mut late = sent_under(&by_a[0]);
    late.provider_message_id = Some("<from-a@clairon>".into());
    let refused = a.record(&[late]).await.unwrap();
    let before_b = stored_delivery(&t, 1, Channel::InApp).await;
    let accepted = b.record(&[sent_under(&by_b[0])]).await.unwrap();

    // Assert
    assert_eq!(
        refused,
        vec![did(1, Channel::InApp)],
        "A's outcome is refused as lost"
    );
    assert_eq!(
        before_b.status,
        DeliveryStatus::Sending,
        "A wrote nothing over B"
    );
    assert!(accepted.is_empty(), "B holds the claim: {accepted:?}");
    let after = stored_delivery(&t, 1, Channel::InApp).await;
    assert_eq!(after.status, DeliveryStatus::Sent);
    assert_eq!(
        after.provider_message_id.as_deref(),
        Some("<m@clairon>"),
        "B's outcome"
    );
    assert_eq!(
        t.queue()
            .attempts(&did(1, Channel::InApp))
            .await
            .unwrap()
            .len(),
        1,
        "only B's attempt row is written"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_is_not_retaken_and_a_lost_claim_is_not_renewed(#[case] engine: Engine) {
    // Arrange
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    let (a, b) = (t.queue(), t.queue());
    let by_a = a
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let held = vec![(by_a[0].delivery.id.clone(), by_a[0].claim.clone())];

    // Act: A's heartbeat renews until at(100); B tries after the first lease would have ended,
    // then after the renewed one; A's heartbeat comes too late.
    let renewed = a.renew(&held, at(100)).await.unwrap();
    let at_first_end = b
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let after_renewal = b
        .claim_due(at(100), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let too_late = a.renew(&held, at(200)).await.unwrap();

    // Assert
    assert_eq!(
        renewed,
        vec![did(1, Channel::InApp)],
        "A's lease is renewed"
    );
    assert!(
        at_first_end.is_empty(),
        "a renewed lease holds: {at_first_end:?}"
    );
    assert_eq!(
        claimed_ids(&after_renewal),
        vec![did(1, Channel::InApp)],
        "lapsed at last"
    );
    assert!(
        too_late.is_empty(),
        "a lost claim is not renewed: {too_late:?}"
    );
    let again = b
        .claim_due(at(150), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "B's lease still holds: A's renewal changed nothing"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_left_behind_twice_by_a_dying_worker_is_parked_as_poison_and_its_batch_mate_is_not(
    #[case] engine: Engine,
) {
    // Arrange: two deliveries claimed together by a worker that dies.
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=2).await;
    let queue = t.queue();
    let together = queue
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(together.len(), 2);

    // Act: after the lapse, each is retaken alone; the first one's worker dies again, the
    // second is sent.
    let first_alone = queue
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let second_alone = queue
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    queue.record(&[sent_under(&second_alone[0])]).await.unwrap();
    let after_second_crash = queue
        .claim_due(at(70), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    // Assert
    assert_eq!(first_alone.len(), 1, "a suspect is claimed alone");
    assert_eq!(second_alone.len(), 1, "so is the other one");
    assert!(
        after_second_crash.is_empty(),
        "a poison pill is not handed out again"
    );
    let number = |c: &ClaimedDelivery| -> u32 { c.notification.id.as_str()[24..].parse().unwrap() };
    let poisoned = stored_delivery(&t, number(&first_alone[0]), Channel::InApp).await;
    assert_eq!(poisoned.status, DeliveryStatus::Dead);
    let reason = poisoned.last_error.unwrap_or_default();
    assert!(reason.starts_with("poison"), "the reason says so: {reason}");
    let survivor = stored_delivery(&t, number(&second_alone[0]), Channel::InApp).await;
    assert_eq!(
        survivor.status,
        DeliveryStatus::Sent,
        "its batch-mate was sent"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_counts_a_crash_too_and_parks_a_delivery_left_behind_twice(
    #[case] engine: Engine,
) {
    // Arrange
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    let queue = t.queue();
    let housekeeping = DieselHousekeeping::new(t.db.clone());
    queue
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    // Act: the reaper releases the lapsed lease; the delivery is claimed again and left
    // behind again; the reaper comes by once more.
    let first = housekeeping.release_expired_leases(at(40)).await.unwrap();
    let retaken = queue
        .claim_due(at(40), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    let second = housekeeping.release_expired_leases(at(70)).await.unwrap();

    // Assert
    assert_eq!(
        (first, second),
        (1, 1),
        "one delivery released, then parked"
    );
    assert_eq!(retaken.len(), 1, "released once, it is due again");
    let parked = stored_delivery(&t, 1, Channel::InApp).await;
    assert_eq!(parked.status, DeliveryStatus::Dead);
    assert!(parked.last_error.unwrap_or_default().starts_with("poison"));
    let requeued = queue
        .requeue(&did(1, Channel::InApp), at(80))
        .await
        .unwrap();
    assert!(matches!(requeued, Requeued::Requeued(_)), "{requeued:?}");
    let fresh = queue
        .claim_due(at(80), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1, "an operator's retry gives it a fresh start");
    queue.record(&[sent_under(&fresh[0])]).await.unwrap();
    assert_eq!(
        stored_delivery(&t, 1, Channel::InApp).await.status,
        DeliveryStatus::Sent
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_recipient_row_cannot_be_read_fails_alone_without_blocking_the_claim(
    #[case] engine: Engine,
) {
    // Arrange: two recipients, one of whose rows was damaged behind the adapter's back.
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1", "artist-2"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    given_inbox(&t, "artist-2", 2..=2).await;
    t.execute_raw("UPDATE recipients SET email = 'not an address' WHERE id = 'artist-1'")
        .await;

    // Act
    let claimed = t
        .queue()
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    // Assert
    assert_eq!(
        claimed_ids(&claimed),
        vec![did(2, Channel::InApp)],
        "the readable one"
    );
    let parked = stored_delivery(&t, 1, Channel::InApp).await;
    assert_eq!(parked.status, DeliveryStatus::Failed);
    let reason = parked.last_error.unwrap_or_default();
    assert!(reason.contains("cannot be read"), "{reason}");
    let later = t
        .queue()
        .claim_due(at(1_000), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();
    assert!(
        !claimed_ids(&later).contains(&did(1, Channel::InApp)),
        "the parked one is never claimed again: {later:?}"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_stored_with_a_line_break_is_claimed_on_one_line(#[case] engine: Engine) {
    // Arrange: a row from before names were validated.
    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    given_inbox(&t, "artist-1", 1..=1).await;
    t.execute_raw(match engine {
        Engine::Sqlite => {
            "UPDATE recipients SET name = 'Eve' || char(10) || 'X' WHERE id = 'artist-1'"
        }
        Engine::Postgres => "UPDATE recipients SET name = E'Eve\\nX' WHERE id = 'artist-1'",
    })
    .await;

    // Act
    let claimed = t
        .queue()
        .claim_due(at(10), LEASE, 10, ChannelSet::all())
        .await
        .unwrap();

    // Assert
    assert_eq!(claimed.len(), 1, "the delivery is claimed, not failed");
    assert_eq!(claimed[0].recipient.name.as_str(), "Eve X");
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_went_read_only_fails_the_write_check_and_its_failed_writes_are_remembered(
    #[case] engine: Engine,
) {
    // Arrange: the database made read-only for new connections, for real: SQLite opened with
    // `mode=ro`, PostgreSQL with `default_transaction_read_only` on the database.
    let t = open_or_skip!(engine);
    assert_eq!(t.db.check_writes().await, Ok(()), "writable to begin with");
    let read_only_url = match engine {
        Engine::Sqlite => format!(
            "sqlite://file:{}?mode=ro",
            t.url.trim_start_matches("sqlite://")
        ),
        Engine::Postgres => {
            let name = t.url.rsplit('/').next().unwrap().to_owned();
            let admin = with_database(&t.url, "postgres");
            tokio::task::spawn_blocking(move || {
                let mut c = PgConnection::establish(&admin).unwrap();
                diesel::sql_query(format!(
                    "ALTER DATABASE {name} SET default_transaction_read_only = on"
                ))
                .execute(&mut c)
                .unwrap();
            })
            .await
            .unwrap();
            t.url.clone()
        }
    };
    let read_only = Database::connect(&read_only_url, 2)
        .await
        .expect("it still opens");

    // Act
    let reads = read_only.ping().await;
    let check = read_only.check_writes().await;
    let write = DieselRecipientRepository::new(read_only.clone())
        .upsert_many(&[recipient("artist-9")])
        .await;

    // Assert
    assert_eq!(reads, Ok(()), "reads still answer");
    assert!(
        matches!(
            check,
            Err((clairon_adapters::persistence::WriteFailure::ReadOnly, _))
        ),
        "the write check names it read-only: {check:?}"
    );
    assert!(write.is_err(), "the write failed: {write:?}");
    assert_eq!(
        read_only.recent_write_failure(),
        Some(clairon_adapters::persistence::WriteFailure::ReadOnly),
        "the failed write is remembered"
    );
    assert_eq!(
        t.db.recent_write_failure(),
        None,
        "per database, not per process"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_subscription_is_stored_replaced_by_its_endpoint_and_removed(
    #[case] engine: Engine,
) {
    use clairon_adapters::channels::PushTarget;
    let t = open_or_skip!(engine);
    t.recipients()
        .upsert_many(&[recipient("artist-1"), recipient("artist-2")])
        .await
        .unwrap();
    let subs = DieselPushSubscriptions::new(t.db.clone());
    let target = |endpoint: &str, auth: &str| PushTarget {
        endpoint: endpoint.into(),
        p256dh: "BP256dh".into(),
        auth: auth.into(),
    };
    subs.put(&rid("artist-1"), &target("https://push.example/a", "old"))
        .await
        .unwrap();
    subs.put(&rid("artist-1"), &target("https://push.example/a", "new"))
        .await
        .unwrap();
    subs.put(&rid("artist-2"), &target("https://push.example/a", "other"))
        .await
        .unwrap();

    assert_eq!(
        subs.list(&rid("artist-1")).await.unwrap(),
        vec![target("https://push.example/a", "new")],
        "posting an endpoint again replaces its keys"
    );
    assert!(subs
        .remove(&rid("artist-1"), "https://push.example/a")
        .await
        .unwrap());
    assert!(!subs
        .remove(&rid("artist-1"), "https://push.example/a")
        .await
        .unwrap());
    assert!(subs.list(&rid("artist-1")).await.unwrap().is_empty());
    assert_eq!(
        subs.list(&rid("artist-2")).await.unwrap().len(),
        1,
        "another recipient's subscription to the same endpoint is theirs"
    );

    use clairon_adapters::persistence::DieselPersonalDataStore;
    use clairon_application::ports::{ErasureAudit, PersonalDataStore};
    DieselPersonalDataStore::new(t.db.clone())
        .erase(
            &rid("artist-2"),
            &ErasureAudit {
                actor: "env".into(),
                at: at(0),
            },
            std::sync::Arc::new(
                clairon_application::commands::ContextRedactor::without_templates(
                    clairon_domain::Locale::Fr,
                ),
            ),
        )
        .await
        .unwrap();
    assert!(
        subs.list(&rid("artist-2")).await.unwrap().is_empty(),
        "an erasure deletes the recipient's push subscriptions"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vapid_key_is_generated_once_and_read_back_unless_one_is_configured(
    #[case] engine: Engine,
) {
    use clairon_adapters::channels::VapidKeys;
    let t = open_or_skip!(engine);
    let subs = DieselPushSubscriptions::new(t.db.clone());
    let first = subs.vapid_keys(None).await.unwrap();
    let second = subs.vapid_keys(None).await.unwrap();
    assert_eq!(first.public_key_base64url(), second.public_key_base64url());
    let configured = VapidKeys::generate();
    let chosen = subs.vapid_keys(Some(configured.clone())).await.unwrap();
    assert_eq!(
        chosen.public_key_base64url(),
        configured.public_key_base64url()
    );
    assert_eq!(
        subs.vapid_keys(None).await.unwrap().public_key_base64url(),
        first.public_key_base64url(),
        "a configured key is not stored over the generated one"
    );
}

// ---------------------------------------------------------------------------------------------
// Digests (issue 13)
// ---------------------------------------------------------------------------------------------

/// `n` with one email delivery batched for the digest ending at `window_end`.
fn batched(n: Notification, window_end: DateTime<Utc>) -> NewNotification {
    let number = n.id.as_str()[24..].parse().unwrap();
    let delivery = Delivery::batched(
        did(number, Channel::Email),
        n.id.clone(),
        n.recipient_id.clone(),
        Channel::Email,
        window_end,
        n.created_at,
    );
    NewNotification {
        notification: n,
        deliveries: vec![delivery],
        deliver_at: None,
    }
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_settled_sent_writes_a_delivery_sent_host_event_for_each_delivery_it_lists(
    #[case] engine: Engine,
) {
    use clairon_adapters::persistence::DieselDigestStore;
    use clairon_application::ports::{DigestKey, DigestOutcome, DigestStore};

    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let end = at(3600);
    t.notifications()
        .insert_batch(&[
            batched(notification(1, "artist-1", None, at(10)), end),
            batched(notification(2, "artist-1", None, at(20)), end),
        ])
        .await
        .unwrap();
    let store = DieselDigestStore::new(t.db.clone()).with_host_events(true);
    let key = DigestKey {
        recipient_id: rid("artist-1"),
        channel: Channel::Email,
        window_end: end,
    };
    let digest = did(900, Channel::Email);
    let (open, _) = store.open(&key, digest.clone(), at(3601)).await.unwrap();
    let listed: Vec<DeliveryId> = open
        .expect("two to send")
        .items
        .iter()
        .map(|i| i.delivery_id.clone())
        .collect();
    assert!(
        host_outbox(&t).all().await.unwrap().is_empty(),
        "opening reports nothing"
    );

    store
        .settle(
            &digest,
            &listed,
            &DigestOutcome::Sent {
                provider_message_id: "digest-1@clairon".into(),
            },
            at(3602),
        )
        .await
        .unwrap();

    let events = host_outbox(&t).all().await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let mut reported: Vec<String> = events
        .iter()
        .map(|e| {
            assert_eq!(e.event_type, "delivery.sent");
            let body = payload(e);
            assert_eq!(body["data"]["provider_message_id"], "digest-1@clairon");
            body["data"]["delivery_id"].as_str().unwrap().to_owned()
        })
        .collect();
    reported.sort_unstable();
    let mut expected: Vec<String> = listed.iter().map(|d| d.as_str().to_owned()).collect();
    expected.sort_unstable();
    assert_eq!(reported, expected);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_is_opened_once_per_window_leaves_read_notifications_out_and_settles_its_deliveries(
    #[case] engine: Engine,
) {
    use clairon_adapters::persistence::DieselDigestStore;
    use clairon_application::ports::{DigestKey, DigestOutcome, DigestStore};

    let t = open_or_skip!(engine);
    given_recipients(&t, &["artist-1"]).await;
    let end = at(3600);
    let notes = t.notifications();
    notes
        .insert_batch(&[
            batched(notification(1, "artist-1", None, at(10)), end),
            batched(notification(2, "artist-1", None, at(20)), end),
            batched(notification(3, "artist-1", None, at(30)), end),
        ])
        .await
        .unwrap();
    // The dispatcher never claims a batched delivery.
    assert!(t
        .queue()
        .claim_due(at(7200), LEASE, 10, ChannelSet::all())
        .await
        .unwrap()
        .is_empty());
    notes
        .mark_read(&nid(2), Some(rid("artist-1")), at(40))
        .await
        .unwrap();
    let store = DieselDigestStore::new(t.db.clone());
    assert!(
        store.due(at(3599), 10).await.unwrap().is_empty(),
        "nothing is due before the window's end"
    );
    let keys = store.due(at(3600), 10).await.unwrap();
    let key = DigestKey {
        recipient_id: rid("artist-1"),
        channel: Channel::Email,
        window_end: end,
    };
    assert_eq!(keys, vec![key.clone()]);

    // Opened: the read one is skipped, two are listed.
    let first_id = did(900, Channel::Email);
    let (open, skipped) = store.open(&key, first_id.clone(), at(3601)).await.unwrap();
    let open = open.expect("something to send");
    assert_eq!(skipped, 1);
    assert_eq!(open.id, first_id);
    assert_eq!(open.sent_as, None);
    let titles: Vec<String> = open.items.iter().map(|i| i.title.clone()).collect();
    assert_eq!(titles, vec!["Notification 1", "Notification 3"]);

    // A second run (or one after a crash) finds the same digest, never a second one.
    let (again, skipped_again) = store
        .open(&key, did(901, Channel::Email), at(3602))
        .await
        .unwrap();
    assert_eq!(again.expect("still to send").id, first_id);
    assert_eq!(skipped_again, 0);

    let listed: Vec<DeliveryId> = open.items.iter().map(|i| i.delivery_id.clone()).collect();
    let moved = store
        .settle(
            &first_id,
            &listed,
            &DigestOutcome::Sent {
                provider_message_id: "digest-1@clairon".into(),
            },
            at(3603),
        )
        .await
        .unwrap();
    assert_eq!(moved, 2);
    assert!(store.due(at(7200), 10).await.unwrap().is_empty());
    let (nothing, _) = store
        .open(&key, did(902, Channel::Email), at(3604))
        .await
        .unwrap();
    assert_eq!(nothing, None, "an empty digest is not sent");

    let deliveries = t.deliveries_of(&[1, 2, 3]).await;
    assert_eq!(
        deliveries,
        vec![
            ("sent".to_owned(), Some("digest-1@clairon".to_owned()), None),
            (
                "skipped".to_owned(),
                None,
                Some("read before the digest".to_owned())
            ),
            ("sent".to_owned(), Some("digest-1@clairon".to_owned()), None),
        ]
    );
}

impl TestDb {
    /// (status, provider id, last error) of the email delivery of each notification `numbers`.
    async fn deliveries_of(
        &self,
        numbers: &[u32],
    ) -> Vec<(String, Option<String>, Option<String>)> {
        let page = DeliveryRepository::list(
            &self.queue(),
            &clairon_application::ports::DeliveryListQuery {
                status: None,
                channel: Some(Channel::Email),
                limit: 100,
                before: None,
            },
        )
        .await
        .unwrap();
        let mut found = Vec::new();
        for n in numbers {
            let id = did(*n, Channel::Email);
            let d = page
                .items
                .iter()
                .find(|d| d.id == id)
                .cloned()
                .expect("the delivery");
            found.push((
                d.status.as_str().to_owned(),
                d.provider_message_id,
                d.last_error,
            ));
        }
        found
    }
}

// ---------------------------------------------------------------------------------------------
// Alert throttle (issue 13: `deliveries.dead_letters` at most once an hour)
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn an_alert_is_raised_at_most_once_an_hour_and_again_once_the_hour_has_passed(
    #[case] engine: Engine,
) {
    use clairon_adapters::persistence::DieselDeadLetters;
    use clairon_application::ports::AlertThrottle;
    let t = open_or_skip!(engine);
    let throttle = DieselDeadLetters::new(t.db.clone());
    let hour = chrono::TimeDelta::hours(1);
    let alert = "deliveries.dead_letters";

    assert!(
        throttle.try_raise(alert, at(0), hour).await.unwrap(),
        "never raised"
    );
    assert!(!throttle.try_raise(alert, at(1800), hour).await.unwrap());
    assert!(!throttle.try_raise(alert, at(3599), hour).await.unwrap());
    assert!(
        throttle.try_raise(alert, at(3600), hour).await.unwrap(),
        "an hour after"
    );
    assert!(
        !throttle.try_raise(alert, at(3600), hour).await.unwrap(),
        "once"
    );
    assert!(
        throttle
            .try_raise("other.alert", at(3600), hour)
            .await
            .unwrap(),
        "each alert has its own hour"
    );

    // Eight processes checking at once, two hours later: one raises it.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.try_raise(alert, at(7200), hour).await })
        })
        .collect();
    let mut raised = 0;
    for racer in racers {
        if racer.await.unwrap().unwrap() {
            raised += 1;
        }
    }
    assert_eq!(raised, 1);
}

// ---------------------------------------------------------------------------------------------
// Coalesced planning changes (issue 13): CoalescingRepository::insert_coalescing
// ---------------------------------------------------------------------------------------------

mod coalescing {
    use super::*;
    use clairon_application::ports::{CoalesceChanges, CoalesceEntry, CoalescingRepository};
    use clairon_domain::coalescing::CoalesceRole;
    use clairon_domain::PlanningId;

    /// A held `planning.modified` notice `n` of `pl-1` for `artist-1` that changed the title
    /// `from` → `to`: in-app at once, email due at `at(due)`.
    fn modification(n: u32, from: &str, to: &str, due: i64) -> NewNotification {
        let mut notification = notification(n, "artist-1", None, at(0));
        notification.event_type = EventType::parse("planning.modified").unwrap();
        notification.priority = Priority::High;
        notification.metadata = match serde_json::json!({
            "planning": { "id": "pl-1" },
            "changes": [{ "field": "title", "from": from, "to": to }]
        }) {
            serde_json::Value::Object(map) => map,
            _ => unreachable!(),
        };
        let mut new = with_deliveries(notification, &[Channel::InApp, Channel::Email]);
        new.deliveries[1].next_attempt_at = Some(at(due));
        new
    }

    fn held(new: &NewNotification, role: CoalesceRole) -> CoalesceChanges {
        CoalesceChanges {
            entries: vec![CoalesceEntry {
                notification_id: new.notification.id.clone(),
                recipient_id: new.notification.recipient_id.clone(),
                planning_id: PlanningId::parse("pl-1").unwrap(),
                role,
            }],
            reminders: None,
            now: at(5),
        }
    }

    async fn email(t: &TestDb, n: u32) -> Delivery {
        t.notifications()
            .get(&nid(n))
            .await
            .unwrap()
            .unwrap()
            .deliveries
            .into_iter()
            .find(|d| d.channel == Channel::Email)
            .unwrap()
    }

    #[rstest]
    #[case::sqlite(Engine::Sqlite)]
    #[case::postgres(Engine::Postgres)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_later_modification_takes_in_the_earlier_pending_email_with_the_net_change_and_its_due_time(
        #[case] engine: Engine,
    ) {
        // Arrange
        let t = open_or_skip!(engine);
        given_recipients(&t, &["artist-1"]).await;
        let repo = t.notifications();
        let first = modification(1, "Carmen", "Tosca", 120);
        let quiet = repo
            .insert_coalescing(
                std::slice::from_ref(&first),
                &held(&first, CoalesceRole::Coalesce),
            )
            .await
            .unwrap();
        let second = modification(2, "Tosca", "Aida", 130);

        // Act
        let outcome = repo
            .insert_coalescing(
                std::slice::from_ref(&second),
                &held(&second, CoalesceRole::Coalesce),
            )
            .await
            .unwrap();

        // Assert
        assert!(quiet.superseded.is_empty(), "nothing to take in at first");
        assert_eq!(outcome.superseded, vec![first.deliveries[1].id.clone()]);
        let earlier = email(&t, 1).await;
        assert_eq!(earlier.status, DeliveryStatus::Skipped);
        assert_eq!(
            earlier.last_error.as_deref(),
            Some(format!("coalesced: {}", nid(2).as_str()).as_str())
        );
        let details = repo.get(&nid(2)).await.unwrap().unwrap();
        assert_eq!(
            details.notification.metadata["coalesced"],
            serde_json::json!({
                "changes": [{ "field": "title", "from": "Carmen", "to": "Aida" }],
                "notifications": [nid(1).as_str()]
            })
        );
        let later = email(&t, 2).await;
        assert_eq!(later.status, DeliveryStatus::Pending);
        assert_eq!(
            later.next_attempt_at.map(|d| d.timestamp_micros()),
            Some(at(120).timestamp_micros()),
            "the window is fixed from the first modification"
        );
        assert_eq!(
            statuses(&t, 1).await[0],
            DeliveryStatus::Pending,
            "the in-app delivery of the earlier notice is left alone"
        );
    }

    #[rstest]
    #[case::sqlite(Engine::Sqlite)]
    #[case::postgres(Engine::Postgres)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_modification_undoing_the_earlier_one_leaves_nothing_to_send(#[case] engine: Engine) {
        // Arrange
        let t = open_or_skip!(engine);
        given_recipients(&t, &["artist-1"]).await;
        let repo = t.notifications();
        let first = modification(1, "Carmen", "Tosca", 120);
        repo.insert_coalescing(
            std::slice::from_ref(&first),
            &held(&first, CoalesceRole::Coalesce),
        )
        .await
        .unwrap();
        let back = modification(2, "Tosca", "Carmen", 130);

        // Act
        let outcome = repo
            .insert_coalescing(
                std::slice::from_ref(&back),
                &held(&back, CoalesceRole::Coalesce),
            )
            .await
            .unwrap();

        // Assert
        assert_eq!(outcome.unneeded, vec![back.deliveries[1].id.clone()]);
        let later = email(&t, 2).await;
        assert_eq!(later.status, DeliveryStatus::Skipped);
        assert_eq!(
            later.last_error.as_deref(),
            Some("coalesced: no net change")
        );
        assert_eq!(email(&t, 1).await.status, DeliveryStatus::Skipped);
    }

    #[rstest]
    #[case::sqlite(Engine::Sqlite)]
    #[case::postgres(Engine::Postgres)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_earlier_modification_whose_email_went_out_is_not_taken_in(#[case] engine: Engine) {
        // Arrange: the first email was sent.
        let t = open_or_skip!(engine);
        given_recipients(&t, &["artist-1"]).await;
        let repo = t.notifications();
        let first = modification(1, "Carmen", "Tosca", 120);
        repo.insert_coalescing(
            std::slice::from_ref(&first),
            &held(&first, CoalesceRole::Coalesce),
        )
        .await
        .unwrap();
        t.execute_raw("UPDATE deliveries SET status = 'sent' WHERE channel = 'email'")
            .await;
        let second = modification(2, "Tosca", "Aida", 130);

        // Act
        let outcome = repo
            .insert_coalescing(
                std::slice::from_ref(&second),
                &held(&second, CoalesceRole::Coalesce),
            )
            .await
            .unwrap();

        // Assert: the second tells its own change, at its own time.
        assert!(outcome.superseded.is_empty(), "{outcome:?}");
        let details = repo.get(&nid(2)).await.unwrap().unwrap();
        assert!(
            !details.notification.metadata.contains_key("coalesced"),
            "{:?}",
            details.notification.metadata
        );
        assert_eq!(
            email(&t, 2)
                .await
                .next_attempt_at
                .map(|d| d.timestamp_micros()),
            Some(at(130).timestamp_micros())
        );
    }

    #[rstest]
    #[case::sqlite(Engine::Sqlite)]
    #[case::postgres(Engine::Postgres)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancellation_skips_the_held_email_and_keeps_its_own(#[case] engine: Engine) {
        // Arrange
        let t = open_or_skip!(engine);
        given_recipients(&t, &["artist-1"]).await;
        let repo = t.notifications();
        let first = modification(1, "Carmen", "Tosca", 120);
        repo.insert_coalescing(
            std::slice::from_ref(&first),
            &held(&first, CoalesceRole::Coalesce),
        )
        .await
        .unwrap();
        let mut cancelled = modification(2, "Tosca", "Tosca", 0);
        cancelled.notification.event_type = EventType::parse("planning.cancelled").unwrap();
        cancelled.deliveries[1].next_attempt_at = None;

        // Act
        let outcome = repo
            .insert_coalescing(
                &[cancelled.clone()],
                &held(&cancelled, CoalesceRole::Supersede),
            )
            .await
            .unwrap();

        // Assert
        assert_eq!(outcome.superseded, vec![first.deliveries[1].id.clone()]);
        assert_eq!(email(&t, 2).await.status, DeliveryStatus::Pending);
        assert_eq!(
            email(&t, 1).await.last_error.as_deref(),
            Some(format!("coalesced: {}", nid(2).as_str()).as_str())
        );
    }
}
