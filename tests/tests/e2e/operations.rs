//! Operations: health probes, `X-Request-Id`, `/metrics`, job runs, retention and the admin
//! statistics — over HTTP against the whole application, on SQLite and PostgreSQL where the
//! database is involved.

use std::collections::HashMap;
use std::time::Duration;

use clairon_tests::{
    dataset, spawn_app, spawn_app_configured, spawn_app_with, Engine, Options, TestApp, API_KEY,
};
use diesel::sql_types::{Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use rstest::rstest;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Runs one SQL statement on the app's database, as an operator with `psql`/`sqlite3` would.
fn sql(app: &TestApp, statement: &str) {
    let url = &app.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = SqliteConnection::establish(path).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    }
}

#[derive(QueryableByName)]
struct RequestIdRow {
    #[diesel(sql_type = Nullable<Text>)]
    request_id: Option<String>,
}

fn stored_request_id(app: &TestApp, notification: &str) -> Option<String> {
    let query = format!("SELECT request_id FROM notifications WHERE id = '{notification}'");
    let url = &app.database_url;
    let rows: Vec<RequestIdRow> = if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = SqliteConnection::establish(path).unwrap();
        diesel::sql_query(query).load(&mut c).unwrap()
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(query).load(&mut c).unwrap()
    };
    rows.into_iter().next().and_then(|r| r.request_id)
}

async fn spawn(engine: Engine) -> Option<TestApp> {
    spawn_app_with(Options {
        engine,
        telegram: false,
        ..Options::default()
    })
    .await
}

async fn register(app: &TestApp, id: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": format!("{id}@example.org") }),
        )
        .await;
    assert!(
        answer.status == 201 || answer.status == 200,
        "{}",
        answer.json
    );
}

async fn notify(app: &TestApp, recipient: &str) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": "Répétition", "body": "Salle B" }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn metrics(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    response.text().await.unwrap()
}

/// The value of the sample `name{labels}` (labels exactly as Prometheus prints them, sorted).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn liveness_and_readiness_answer_without_a_key_and_health_is_readiness() {
    let app = spawn_app().await;

    let live = app
        .client
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);

    for path in ["/health/ready", "/health"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{path}: {body}");
        assert_eq!(body["database"], "ok");
        assert_eq!(body["migrations"], "ok");
        assert_eq!(body["dispatcher"], "running");
    }
}

#[tokio::test]
async fn readiness_is_a_503_problem_naming_the_migrations_when_one_is_not_applied() {
    let app = spawn_app().await;
    sql(
        &app,
        "DELETE FROM __diesel_schema_migrations WHERE version = '20261123010000'",
    );

    let response = app
        .client
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    assert_eq!(problem["not_ready"], json!(["migrations"]));
    assert_eq!(problem["checks"]["database"], "ok");
    assert_eq!(problem["checks"]["migrations"], "pending");
    assert!(problem["detail"].as_str().unwrap().contains("migrations"));
}

#[tokio::test]
async fn readiness_names_the_database_when_postgresql_is_gone() {
    let Some(app) = spawn(Engine::Postgres).await else {
        return;
    };
    let (admin, name) = app.database_url.rsplit_once('/').unwrap();
    let mut c = PgConnection::establish(&format!("{admin}/postgres")).unwrap();
    diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut c)
        .unwrap();

    let response = app
        .client
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 503);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["not_ready"], json!(["database"]), "{problem}");
    assert_eq!(problem["checks"]["database"], "unavailable");
    let live = app
        .client
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200, "the process itself is alive");
}

/// Polls `/health/ready` of `app` until `checks.database` is `state`; returns the answer.
async fn wait_for_database_state(app: &TestApp, state: &str) -> (u16, Value) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let response = app
            .client
            .get(format!("{}/health/ready", app.address))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if body["checks"]["database"] == state {
            return (status, body);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database never became {state}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn readiness_is_a_503_naming_the_database_read_only_when_it_answers_but_refuses_writes(
    #[case] engine: Engine,
) {
    // Arrange: an app whose database refuses writes for real. SQLite: a second process that
    // opened the file read-only. PostgreSQL: the database switched to read-only under the
    // running app, its connections dropped so the pool opens new (read-only) ones.
    let Some(app) = spawn(engine).await else {
        return;
    };
    let probed = match engine {
        Engine::Sqlite => {
            let path = app.database_url.trim_start_matches("sqlite://").to_owned();
            app.spawn_peer_configured(|s| {
                s.database_url = format!("sqlite://file:{path}?mode=ro");
            })
            .await
        }
        Engine::Postgres => {
            let (server, name) = app.database_url.rsplit_once('/').unwrap();
            let mut admin = PgConnection::establish(&format!("{server}/postgres")).unwrap();
            diesel::sql_query(format!(
                "ALTER DATABASE {name} SET default_transaction_read_only = on"
            ))
            .execute(&mut admin)
            .unwrap();
            diesel::sql_query(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .execute(&mut admin)
            .unwrap();
            app
        }
    };

    // Act
    let (status, problem) = wait_for_database_state(&probed, "read-only").await;

    // Assert
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["not_ready"], json!(["database"]), "{problem}");
    assert_eq!(
        problem["checks"]["migrations"], "ok",
        "reads still answer: {problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("database"),
        "{problem}"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_sane_request_id_is_echoed_and_stored_on_the_notifications_it_creates(
    #[case] engine: Engine,
) {
    let Some(app) = spawn(engine).await else {
        return;
    };
    register(&app, "artist-1").await;

    let response = app
        .client
        .post(format!("{}/api/v1/notifications", app.address))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", "planning-42.retry_1")
        .json(&json!({ "recipient_ids": ["artist-1"], "title": "T", "body": "B" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(response.headers()["x-request-id"], "planning-42.retry_1");
    let body: Value = response.json().await.unwrap();
    let id = body["notifications"][0]["id"].as_str().unwrap();
    assert_eq!(
        stored_request_id(&app, id).as_deref(),
        Some("planning-42.retry_1")
    );
    app.wait_for_delivery(id, "email", "sent", WAIT).await;
}

#[tokio::test]
async fn an_insane_or_missing_request_id_is_replaced_by_a_uuid_even_on_errors() {
    let app = spawn_app().await;
    let too_long = "x".repeat(129);
    for given in [None, Some("has spaces"), Some(too_long.as_str())] {
        let mut request = app
            .client
            .get(format!("{}/api/v1/recipients/nobody", app.address));
        if let Some(given) = given {
            request = request.header("X-Request-Id", given);
        }
        // No API key: the refusal comes from a middleware, and still carries the id.
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(echoed).is_ok(),
            "{given:?} was replaced by a UUID, not {echoed:?}"
        );
    }
}

#[tokio::test]
async fn metrics_count_deliveries_attempts_and_requests_by_route_pattern() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let id = notify(&app, "artist-1").await;
    app.wait_for_delivery(&id, "email", "sent", WAIT).await;
    app.wait_for_delivery(&id, "in_app", "sent", WAIT).await;

    let text = metrics(&app).await;

    assert_eq!(
        sample(
            &text,
            r#"clairon_deliveries_total{channel="email",status="sent"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"clairon_delivery_attempts_total{channel="email",outcome="sent"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"clairon_delivery_latency_seconds_count{channel="email"}"#
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            r#"clairon_http_requests_total{method="GET",route="/api/v1/notifications/{id}",status="200"}"#
        )
        .is_some_and(|n| n >= 2.0),
        "requests are counted by pattern: {text}"
    );
    assert!(
        !text.contains(&id),
        "no raw path (with its id) becomes a label"
    );
    assert_eq!(
        sample(
            &text,
            r#"clairon_queue_depth{channel="email",status="pending"}"#
        ),
        Some(0.0)
    );
    assert!(text.contains("clairon_realtime_connections"));
}

#[tokio::test]
async fn metrics_require_the_metrics_token_when_one_is_configured() {
    let Some(app) = spawn_app_with(Options {
        metrics_token: "scrape-secret",
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let url = format!("{}/metrics", app.address);

    let anonymous = app.client.get(&url).send().await.unwrap();
    let api_key = app
        .client
        .get(&url)
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let token = app
        .client
        .get(&url)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();

    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(
        api_key.status().as_u16(),
        401,
        "the API key is not the scrape token"
    );
    assert_eq!(token.status().as_u16(), 200);
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_job_run_through_the_api_is_recorded_and_listed(#[case] engine: Engine) {
    let Some(app) = spawn(engine).await else {
        return;
    };

    let run = app
        .post("/api/v1/admin/jobs/idempotency_purge/run", &json!({}))
        .await;
    let reaped = app
        .post("/api/v1/admin/jobs/lease_reaper/run", &json!({}))
        .await;

    assert_eq!(run.status, 200, "{}", run.json);
    assert_eq!(run.json["job"], "idempotency_purge");
    assert_eq!(run.json["trigger"], "api");
    assert_eq!(run.json["status"], "success");
    assert_eq!(run.json["stats"]["idempotency_keys"], 0);
    assert!(run.json["duration_ms"].is_u64());
    assert_eq!(reaped.json["stats"]["released"], 0);

    let all = app.get("/api/v1/admin/job-runs").await;
    assert_eq!(all.status, 200);
    let jobs: Vec<&str> = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["lease_reaper", "idempotency_purge"], "newest first");

    let page = app
        .get("/api/v1/admin/job-runs?job=idempotency_purge&status=success&limit=1")
        .await;
    assert_eq!(page.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(page.json["items"][0]["id"], run.json["id"]);
    assert!(page.json["next_cursor"].is_null());

    let first = app.get("/api/v1/admin/job-runs?limit=1").await;
    let cursor = first.json["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/api/v1/admin/job-runs?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second.json["items"][0]["job"], "idempotency_purge");

    let text = metrics(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"clairon_job_runs_total{job="lease_reaper",status="success"}"#
        ),
        Some(1.0)
    );

    let stats = app.get("/api/v1/admin/stats").await;
    let reaper = stats.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "lease_reaper")
        .unwrap()
        .clone();
    assert_eq!(reaper["runs"], 1);
    assert_eq!(reaper["success_rate"], 1.0);
}

#[tokio::test]
async fn bad_admin_parameters_are_a_400_problem_naming_each_field() {
    let app = spawn_app().await;

    let runs = app
        .get("/api/v1/admin/job-runs?job=co%20ffee&status=meh&source=both&limit=0&cursor=nope")
        .await;
    let stats = app.get("/api/v1/admin/stats?since=yesterday").await;
    let unknown = app.post("/api/v1/admin/jobs/coffee/run", &json!({})).await;

    assert_eq!(runs.status, 400);
    assert_eq!(runs.content_type, "application/problem+json");
    let fields: Vec<&str> = runs.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["job", "status", "source", "limit", "cursor"]);
    assert_eq!(stats.status, 400);
    assert_eq!(stats.json["errors"][0]["field"], "since");
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn admin_routes_require_an_api_key() {
    let app = spawn_app().await;
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/admin/job-runs"),
        (reqwest::Method::GET, "/api/v1/admin/stats"),
        (reqwest::Method::GET, "/api/v1/admin/job-stats"),
        (reqwest::Method::POST, "/api/v1/admin/jobs/retention/run"),
    ] {
        let response = app
            .client
            .request(method, format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{path}");
    }
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn retention_purges_settled_notifications_older_than_the_period_and_keeps_the_rest(
    #[case] engine: Engine,
) {
    let Some(app) = spawn(engine).await else {
        return;
    };
    register(&app, "artist-1").await;
    let old = notify(&app, "artist-1").await;
    let old_pending = notify(&app, "artist-1").await;
    let recent = notify(&app, "artist-1").await;
    for id in [&old, &old_pending, &recent] {
        app.wait_until_settled(id, WAIT).await;
    }
    // Two notifications made 400 days ago; one of them still has a delivery to send.
    sql(
        &app,
        &format!(
            "UPDATE notifications SET created_at = created_at - INTERVAL_PLACEHOLDER WHERE id IN ('{old}', '{old_pending}')"
        )
        .replace(
            "created_at - INTERVAL_PLACEHOLDER",
            if engine == Engine::Sqlite {
                "datetime(created_at, '-400 days')"
            } else {
                "created_at - INTERVAL '400 days'"
            },
        ),
    );
    sql(
        &app,
        &format!(
            "UPDATE deliveries SET status = 'retrying', next_attempt_at = '2999-01-01 00:00:00' \
             WHERE notification_id = '{old_pending}' AND channel = 'email'"
        ),
    );
    // An old job run too.
    app.post("/api/v1/admin/jobs/lease_reaper/run", &json!({}))
        .await;
    sql(
        &app,
        "UPDATE job_runs SET started_at = '2001-01-01 00:00:00'",
    );

    let run = app
        .post("/api/v1/admin/jobs/retention/run", &json!({}))
        .await;

    assert_eq!(run.status, 200, "{}", run.json);
    assert_eq!(run.json["status"], "success", "{}", run.json);
    assert_eq!(run.json["stats"]["notifications"], 1);
    assert_eq!(
        run.json["stats"]["deliveries"], 3,
        "in_app, email, and telegram (skipped: no bot)"
    );
    assert_eq!(run.json["stats"]["attempts"], 2);
    assert_eq!(run.json["stats"]["job_runs"], 1);
    assert_eq!(
        app.get(&format!("/api/v1/notifications/{old}"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/notifications/{old_pending}"))
            .await
            .status,
        200,
        "a notification with something left to deliver is kept"
    );
    assert_eq!(
        app.get(&format!("/api/v1/notifications/{recent}"))
            .await
            .status,
        200
    );
    let runs = app.get("/api/v1/admin/job-runs").await;
    let jobs: Vec<&str> = runs.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(
        jobs,
        ["retention"],
        "the old run is gone, this one recorded"
    );
}

/// Counts of `/api/v1/admin/stats` by channel: `{channel: {status: n}}`.
fn stats_by_channel(stats: &Value) -> HashMap<String, Value> {
    stats["deliveries"]["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["channel"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

#[tokio::test]
async fn after_replaying_the_dataset_metrics_and_stats_agree_with_the_deliveries() {
    // Every channel at once: the urgent notices' fallback chain off.
    let app = spawn_app_configured(Options::default(), |s| s.planning_fallback = String::new())
        .await
        .unwrap();
    let data = dataset();
    assert_eq!(app.import_dataset_recipients(&data).await.status, 200);
    let mut ids = Vec::new();
    for event in data["events"].as_array().unwrap() {
        let answer = app.post_event(event).await;
        assert_eq!(answer.status, 202, "{}", answer.json);
        for n in answer.json["notifications"].as_array().unwrap() {
            ids.push(n["id"].as_str().unwrap().to_owned());
        }
    }
    for id in &ids {
        app.wait_until_settled(id, Duration::from_secs(120)).await;
    }
    // What the API says happened, delivery by delivery.
    let mut sent: HashMap<String, u64> = HashMap::new();
    for id in &ids {
        let details = app.get(&format!("/api/v1/notifications/{id}")).await;
        for d in details.json["deliveries"].as_array().unwrap() {
            if d["status"] == "sent" {
                *sent
                    .entry(d["channel"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(sent["in_app"], 718);
    assert_eq!(sent["email"], 718);

    let text = metrics(&app).await;
    let stats = app.get("/api/v1/admin/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.json);
    let by_channel = stats_by_channel(&stats.json);

    for (channel, n) in &sent {
        let series = format!(r#"clairon_deliveries_total{{channel="{channel}",status="sent"}}"#);
        assert_eq!(sample(&text, &series), Some(*n as f64), "{series}");
        let latencies = format!(r#"clairon_delivery_latency_seconds_count{{channel="{channel}"}}"#);
        assert_eq!(sample(&text, &latencies), Some(*n as f64), "{latencies}");
        let c = &by_channel[channel];
        assert_eq!(c["by_status"]["sent"], *n, "{channel}: {c}");
        assert_eq!(c["success_rate"], 1.0, "{channel}: {c}");
        assert!(c["p50_latency_ms"].as_u64().is_some());
        assert!(c["p95_latency_ms"].as_u64() >= c["p50_latency_ms"].as_u64());
    }
    assert_eq!(stats.json["deliveries"]["dead_letters"], 0);
    // The scheduled J-1 reminders wait in the queue, and both views count them alike.
    let reminders_pending: u64 = by_channel
        .values()
        .map(|c| c["by_status"]["pending"].as_u64().unwrap_or(0))
        .sum();
    let depth: f64 = ["in_app", "email", "telegram"]
        .iter()
        .filter_map(|c| {
            sample(
                &text,
                &format!(r#"clairon_queue_depth{{channel="{c}",status="pending"}}"#),
            )
        })
        .sum();
    assert_eq!(depth, reminders_pending as f64);
}

#[tokio::test]
async fn an_open_event_stream_is_counted_among_the_realtime_connections_until_it_closes() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let token = app.token_for("artist-1").await;
    let connections = |text: &str| sample(text, r#"clairon_realtime_connections{transport="sse"}"#);
    assert_eq!(connections(&metrics(&app).await), Some(0.0));

    let stream = app
        .client
        .get(format!("{}/api/v1/me/notifications/stream", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let deadline = std::time::Instant::now() + WAIT;
    while connections(&metrics(&app).await) != Some(1.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream is never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    drop(stream);
    // The server notices the closed stream at its next write (a live event or a keep-alive).
    notify(&app, "artist-1").await;
    while connections(&metrics(&app).await) != Some(0.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed stream is still counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
