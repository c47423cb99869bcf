//! Scheduled jobs, chains and external job runs (issue 13): the jobs file's HTTP jobs against a
//! tiny local stand-in (`/ok` answers 200 with a JSON object, `/fail` answers 500), chains run
//! by hand through the admin API, runs reported by an outside system, the per-job figures, and
//! two processes sharing one schedule on PostgreSQL.

use std::collections::HashSet;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use clairon_tests::{spawn_app_configured, Engine, Options, TestApp};
use serde_json::{json, Value};

/// The job endpoints' stand-in on a free port: `POST /ok` → 200 `{"clients": 50, "pianos":
/// 100}`, `POST /fail` → 500. Returns its base URL; it lives as long as the test's runtime.
async fn job_endpoints() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/ok",
                web::post().to(|| async {
                    HttpResponse::Ok().json(json!({"clients": 50, "pianos": 100}))
                }),
            )
            .route(
                "/fail",
                web::post().to(|| async {
                    HttpResponse::InternalServerError().body("Gazelle API unreachable")
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// `sync-gazelle` (01:00 Montreal) calling `sync_path`, and `timeline-report` after it.
fn jobs_file(dir: &std::path::Path, base: &str, sync_path: &str) -> std::path::PathBuf {
    let path = dir.join("jobs.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[job]]
name = "sync-gazelle"
schedule = "0 1 * * *"
timezone = "America/Montreal"
task_type = "sync"
request = {{ method = "POST", url = "{base}{sync_path}", timeout_s = 10 }}

[[job]]
name = "timeline-report"
after = "sync-gazelle"
task_type = "report"
request = {{ method = "POST", url = "{base}/ok", timeout_s = 10 }}
"#
        ),
    )
    .unwrap();
    path
}

async fn app_with_jobs(sync_path: &str) -> (TestApp, tempfile::TempDir) {
    let base = job_endpoints().await;
    let dir = tempfile::tempdir().unwrap();
    let file = jobs_file(dir.path(), &base, sync_path);
    let app = spawn_app_configured(Options::default(), |s| s.jobs_file = file)
        .await
        .unwrap();
    (app, dir)
}

#[tokio::test]
async fn a_chain_whose_parent_fails_records_the_child_skipped_with_the_reason() {
    let (app, _dir) = app_with_jobs("/fail").await;

    let run = app
        .post("/api/v1/admin/jobs/sync-gazelle/run", &json!({}))
        .await;

    assert_eq!(run.status, 200, "{}", run.json);
    assert_eq!(run.json["status"], "error");
    assert_eq!(run.json["trigger"], "api");
    assert!(
        run.json["error_details"]
            .as_str()
            .unwrap()
            .contains("HTTP 500: Gazelle API unreachable"),
        "{}",
        run.json
    );
    let child = &run.json["chained"][0];
    assert_eq!(child["job"], "timeline-report");
    assert_eq!(child["status"], "skipped");
    assert_eq!(child["parent_run_id"], run.json["id"]);
    assert!(child["message"].as_str().unwrap().contains("sync-gazelle"));
    let skipped = app
        .get("/api/v1/admin/job-runs?job=timeline-report&status=skipped")
        .await;
    assert_eq!(skipped.json["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_parent_and_its_skipped_child_each_alert_the_admins_topic_through_the_default_rule(
) {
    let (app, _dir) = app_with_jobs("/fail").await;
    let admin = app
        .put(
            "/api/v1/recipients/admin-1",
            &json!({"name": "Régie", "email": "regie@example.org", "locale": "fr"}),
        )
        .await;
    assert_eq!(admin.status, 201, "{}", admin.json);
    let topic = app
        .put(
            "/api/v1/topics/admins",
            &json!({"name": "Admins", "recipient_ids": ["admin-1"]}),
        )
        .await;
    assert_eq!(topic.status, 201, "{}", topic.json);

    let run = app
        .post("/api/v1/admin/jobs/sync-gazelle/run", &json!({}))
        .await;
    assert_eq!(run.json["status"], "error", "{}", run.json);

    let inbox = app
        .get("/api/v1/recipients/admin-1/notifications?limit=10")
        .await;
    let items = inbox.json["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "the failed run and the skipped child: {}",
        inbox.json
    );
    assert!(
        items.iter().all(|i| i["event_type"] == "job.failed"),
        "{}",
        inbox.json
    );
    let jobs: HashSet<&str> = items
        .iter()
        .map(|i| i["metadata"]["data"]["job"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        jobs,
        HashSet::from(["sync-gazelle", "timeline-report"]),
        "{}",
        inbox.json
    );
    assert!(
        items.iter().all(|i| i["priority"] == "high"),
        "the built-in rule raises job.failed to high: {}",
        inbox.json
    );
}

#[tokio::test]
async fn a_chain_whose_parent_succeeds_runs_the_child_with_the_parent_run_id() {
    let (app, _dir) = app_with_jobs("/ok").await;

    let run = app
        .post("/api/v1/admin/jobs/sync-gazelle/run", &json!({}))
        .await;

    assert_eq!(run.status, 200, "{}", run.json);
    assert_eq!(run.json["status"], "success");
    assert_eq!(run.json["task_type"], "sync");
    assert_eq!(run.json["source"], "internal");
    assert_eq!(run.json["stats"], json!({"clients": 50, "pianos": 100}));
    let child = &run.json["chained"][0];
    assert_eq!(child["status"], "success");
    assert_eq!(child["task_type"], "report");
    assert_eq!(child["parent_run_id"], run.json["id"]);
    let listed = app.get("/api/v1/admin/job-runs?source=internal").await;
    let jobs: Vec<&str> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["timeline-report", "sync-gazelle"], "newest first");
}

#[tokio::test]
async fn an_unknown_job_names_the_jobs_of_the_file_too() {
    let (app, _dir) = app_with_jobs("/ok").await;
    let unknown = app.post("/api/v1/admin/jobs/coffee/run", &json!({})).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.json["detail"]
        .as_str()
        .unwrap()
        .contains("timeline-report"));
}

#[tokio::test]
async fn a_jobs_file_with_a_bad_job_is_refused_at_start_up_naming_the_file_the_job_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.toml");
    std::fs::write(
        &file,
        "[[job]]\nname = \"report\"\nafter = \"sync\"\nrequest = { url = \"http://127.0.0.1:9/x\" }\n",
    )
    .unwrap();
    let mut settings = clairon_bootstrap::Settings {
        database_url: format!("sqlite://{}", dir.path().join("clairon.db").display()),
        bind: "127.0.0.1:0".into(),
        ..clairon_bootstrap::Settings::default()
    };
    settings.jobs_file = file.clone();

    let err = clairon_bootstrap::Application::build(settings)
        .await
        .err()
        .expect("refused")
        .to_string();

    assert!(err.contains("CLAIRON_JOBS_FILE"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(
        err.contains("job \"report\": after = \"sync\" names no job"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(
        !dir.path().join("clairon.db").exists(),
        "nothing is written before the configuration is known good"
    );
}

#[tokio::test]
async fn an_external_run_goes_from_running_to_error_with_its_duration_and_cannot_end_twice() {
    let app = clairon_tests::spawn_app().await;
    let admin = app
        .put(
            "/api/v1/recipients/admin-1",
            &json!({"name": "Régie", "email": "regie@example.org", "locale": "fr"}),
        )
        .await;
    assert_eq!(admin.status, 201, "{}", admin.json);
    let topic = app
        .put(
            "/api/v1/topics/admins",
            &json!({"name": "Admins", "recipient_ids": ["admin-1"]}),
        )
        .await;
    assert_eq!(topic.status, 201, "{}", topic.json);

    let started = app
        .post(
            "/api/v1/job-runs",
            &json!({
                "job": "sync-gazelle", "task_type": "sync", "status": "running",
                "triggered_by": "scheduler", "started_at": "2027-03-01T06:00:00Z"
            }),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.json);
    assert_eq!(started.json["source"], "external");
    assert_eq!(started.json["trigger"], "schedule");
    assert_eq!(started.json["finished_at"], Value::Null);
    let id = started.json["id"].as_str().unwrap();

    let ended = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/job-runs/{id}"),
            Some(&json!({
                "status": "error", "message": "Gazelle timed out",
                "error_details": "ReadTimeout after 600 s", "stats": {"clients": 12},
                "finished_at": "2027-03-01T06:10:00Z"
            })),
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.json);
    assert_eq!(ended.json["status"], "error");
    assert_eq!(ended.json["duration_ms"], 600_000);
    assert_eq!(ended.json["stats"]["clients"], 12);
    assert_eq!(ended.json["error_details"], "ReadTimeout after 600 s");
    // The error alerts the admins topic through the default rule, as an internal run's does.
    let inbox = app
        .get("/api/v1/recipients/admin-1/notifications?limit=10")
        .await;
    let items = inbox.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", inbox.json);
    assert_eq!(items[0]["event_type"], "job.failed", "{}", inbox.json);
    assert_eq!(items[0]["metadata"]["data"]["job"], "sync-gazelle");
    assert_eq!(items[0]["metadata"]["data"]["run_id"], id, "{}", inbox.json);

    let again = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/job-runs/{id}"),
            Some(&json!({"status": "success"})),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.content_type, "application/problem+json");
    let missing = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/job-runs/0190c0de-0000-7000-8000-000000000000",
            Some(&json!({"status": "success"})),
        )
        .await;
    assert_eq!(missing.status, 404);
    let external = app.get("/api/v1/admin/job-runs?source=external").await;
    assert_eq!(external.json["items"][0]["id"], id);
}

#[tokio::test]
async fn a_bad_external_run_is_a_422_naming_each_field_and_records_nothing() {
    let app = clairon_tests::spawn_app().await;

    let bad = app
        .post(
            "/api/v1/job-runs",
            &json!({
                "job": "sync gazelle", "task_type": "cleanup", "status": "skipped",
                "triggered_by": "cron", "stats": [1, 2], "started_at": "yesterday"
            }),
        )
        .await;

    assert_eq!(bad.status, 422, "{}", bad.json);
    let fields: Vec<&str> = bad.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "job",
            "task_type",
            "status",
            "stats",
            "triggered_by",
            "started_at"
        ]
    );
    let runs = app.get("/api/v1/admin/job-runs?source=external").await;
    assert_eq!(runs.json["items"].as_array().unwrap().len(), 0);
    let patch = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/job-runs/0190c0de-0000-7000-8000-000000000000",
            Some(&json!({"status": "running", "stats": "x"})),
        )
        .await;
    assert_eq!(patch.status, 422);
    let fields: Vec<&str> = patch.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["status", "stats"]);
}

#[tokio::test]
async fn job_stats_give_runs_success_rate_and_duration_percentiles_of_known_runs() {
    let app = clairon_tests::spawn_app().await;
    let now = chrono::Utc::now();
    for (seconds, status) in [(1, "success"), (2, "warning"), (6, "error")] {
        let start = now - chrono::TimeDelta::minutes(30);
        let end = start + chrono::TimeDelta::seconds(seconds);
        let posted = app
            .post(
                "/api/v1/job-runs",
                &json!({
                    "job": "backup-nightly", "task_type": "backup", "status": status,
                    "triggered_by": "manual", "triggered_by_user": "allan@example.com",
                    "started_at": start.to_rfc3339(), "finished_at": end.to_rfc3339()
                }),
            )
            .await;
        assert_eq!(posted.status, 201, "{}", posted.json);
    }

    let stats = app.get("/api/v1/admin/job-stats").await;

    assert_eq!(stats.status, 200, "{}", stats.json);
    let backup = stats.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "backup-nightly")
        .unwrap()
        .clone();
    assert_eq!(backup["runs"], 3);
    assert_eq!(backup["succeeded"], 2);
    assert_eq!(backup["failed"], 1);
    assert!((backup["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(backup["p50_duration_ms"], 2000);
    assert_eq!(backup["p95_duration_ms"], 6000);
    assert_eq!(backup["mean_duration_ms"], 3000);
    assert_eq!(backup["last_run"]["status"], "error");
    assert_eq!(backup["last_run"]["source"], "external");
    let builtin: Vec<&str> = stats.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert_eq!(builtin, ["lease_reaper", "retention", "idempotency_purge"]);
    let bad = app.get("/api/v1/admin/job-stats?since=tomorrow").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn two_processes_sharing_one_schedule_on_postgres_never_run_an_occurrence_twice() {
    let Some(app) = spawn_app_configured(
        Options {
            engine: Engine::Postgres,
            ..Options::default()
        },
        |s| s.reaper_interval_secs = 1,
    )
    .await
    else {
        return;
    };
    let peer = app
        .spawn_peer_configured(|s| s.reaper_interval_secs = 1)
        .await;
    peer.wait_until_ready().await;

    // Both processes wake at every whole second and race for the occurrence.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let page = app
            .get("/api/v1/admin/job-runs?job=lease_reaper&limit=100")
            .await;
        let runs = page.json["items"].as_array().unwrap().clone();
        if runs.len() >= 4 || tokio::time::Instant::now() > deadline {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    assert!(runs.len() >= 4, "{runs:?}");
    let occurrences: Vec<&str> = runs
        .iter()
        .map(|r| r["occurrence"].as_str().expect("a scheduled run"))
        .collect();
    let distinct: HashSet<&str> = occurrences.iter().copied().collect();
    assert_eq!(distinct.len(), occurrences.len(), "{occurrences:?}");
}

/// Runs `statement` on the app's database, as an operator with `sqlite3`/`psql` would.
fn sql(app: &TestApp, statement: &str) {
    use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
    let url = &app.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = SqliteConnection::establish(path).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    }
}

#[rstest::rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_run_its_process_left_running_is_ended_abandoned_by_the_lease_reaper_and_alerts_the_admins(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_configured(
        Options {
            engine,
            ..Options::default()
        },
        // Only the runs by hand reap.
        |s| s.reaper_interval_secs = 365 * 24 * 3600,
    )
    .await
    else {
        return;
    };
    app.put(
        "/api/v1/recipients/admin-1",
        &json!({"name": "Régie", "locale": "fr"}),
    )
    .await;
    let topic = app
        .put(
            "/api/v1/topics/admins",
            &json!({"name": "Admins", "recipient_ids": ["admin-1"]}),
        )
        .await;
    assert_eq!(topic.status, 201, "{}", topic.json);
    // A retention run whose process was killed mid-run two hours ago, and an outside system's
    // sync still running (its reporter ends it, not Clairon).
    sql(
        &app,
        &format!(
            "INSERT INTO job_runs (id, job, \"trigger\", started_at, status, stats, source, task_type) VALUES \
             ('00000000-0000-7000-8000-000000000001', 'retention', 'schedule', '{}', 'running', '{{}}', 'internal', 'other'), \
             ('00000000-0000-7000-8000-000000000002', 'inventory-sync', 'schedule', '{}', 'running', '{{}}', 'external', 'sync')",
            (chrono::Utc::now() - chrono::TimeDelta::hours(2)).format("%Y-%m-%d %H:%M:%S"),
            (chrono::Utc::now() - chrono::TimeDelta::hours(2)).format("%Y-%m-%d %H:%M:%S"),
        ),
    );

    let reaper = app
        .post("/api/v1/admin/jobs/lease_reaper/run", &json!({}))
        .await;

    assert_eq!(reaper.status, 200, "{}", reaper.json);
    assert_eq!(reaper.json["stats"]["abandoned_runs"], 1, "{}", reaper.json);
    let run = app
        .get("/api/v1/admin/job-runs?job=retention&limit=5")
        .await;
    let abandoned = run.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "00000000-0000-7000-8000-000000000001")
        .cloned()
        .unwrap_or_else(|| panic!("the seeded run: {}", run.json));
    assert_eq!(abandoned["status"], "error", "{abandoned}");
    assert_eq!(
        abandoned["message"], "abandoned: the process running it stopped",
        "{abandoned}"
    );
    assert!(abandoned["finished_at"].is_string(), "{abandoned}");
    let external = app
        .get("/api/v1/admin/job-runs?job=inventory-sync&limit=5")
        .await;
    assert_eq!(
        external.json["items"][0]["status"], "running",
        "{}",
        external.json
    );
    let inbox = app
        .get("/api/v1/recipients/admin-1/notifications?limit=10")
        .await;
    let items = inbox.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", inbox.json);
    assert_eq!(items[0]["event_type"], "job.failed");
    assert_eq!(
        items[0]["metadata"]["data"]["job"], "retention",
        "{}",
        inbox.json
    );

    // The next reaper finds nothing more to end.
    let again = app
        .post("/api/v1/admin/jobs/lease_reaper/run", &json!({}))
        .await;
    assert_eq!(again.json["stats"]["abandoned_runs"], 0, "{}", again.json);
}
