//! The `clairon` binary copied alone into an empty folder and started there with an empty
//! environment, as a new user or systemd would: it serves the main job with what it carries
//! (templates, migrations, pages, Swagger UI). A bad setting stops it before it writes anything,
//! with exit status 2 and one line naming the variable.
//!
//! The only variable set is `CLAIRON_BIND`, to a free port, because tests run in parallel and
//! the default `127.0.0.1:8080` may be taken; everything else is the binary's defaults.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rstest::rstest;
use serde_json::{json, Value};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Copies the binary, and nothing else, into `dir`.
fn copy_binary(dir: &Path) -> PathBuf {
    let copy = dir.join("clairon");
    fs::copy(env!("CARGO_BIN_EXE_clairon"), &copy).expect("the binary is copied");
    copy
}

/// The names of what `dir` holds.
fn entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("the folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Runs `start` (a spawn of the copied binary) again while it fails with `ETXTBSY`: another
/// test thread forking between our copy's write and its exec holds the written file open in
/// its child until that child execs, and Linux refuses to run a file open for writing. At
/// most 5 s, then the last error.
fn when_not_busy<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut tries = 0;
    loop {
        match start() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 500 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// `clairon` in `dir`, with nothing in its environment but `vars`.
fn clairon_in(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(dir.join("clairon"));
    command
        .current_dir(dir)
        .env_clear()
        .envs(vars.iter().copied());
    command
}

/// A running server, killed when dropped; its stderr goes to a file outside its folder.
struct Server {
    child: Child,
    base: String,
    key: String,
    stderr: tempfile::NamedTempFile,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `dir/clairon serve` with only `CLAIRON_BIND` (and `vars`) set, and waits for the
    /// admin key it prints at first start and for `/health/ready`.
    async fn start(dir: &Path, vars: &[(&str, &str)]) -> Self {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let stderr = tempfile::NamedTempFile::new().expect("a log file");
        let mut all = vec![("CLAIRON_BIND", bind.as_str())];
        all.extend_from_slice(vars);
        let mut command = clairon_in(dir, &all);
        command
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("the log file"));
        let mut child = when_not_busy(|| command.spawn()).expect("the copied binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            base: format!("http://{bind}"),
            key: String::new(),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.key.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) if line.trim().starts_with("clr_") => server.key = line.trim().to_owned(),
                Ok(_) => {}
                Err(_) => panic!("no API key printed on stdout; stderr: {}", server.log()),
            }
        }
        server.wait_ready().await;
        server
    }

    fn log(&self) -> String {
        fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never ready; stderr: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> u16 {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .expect("the server answers")
            .status()
            .as_u16()
    }

    /// `GET path` without credentials: status and content type.
    async fn page(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("the server answers");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (response.status().as_u16(), content_type)
    }
}

/// Registers a French artist and an English coordinator and posts the README's planning event.
async fn post_the_readme_event(server: &Server) {
    for (id, body) in [
        (
            "artist-0001",
            json!({"name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr",
                   "timezone": "America/Montreal"}),
        ),
        (
            "coordinator-0001",
            json!({"name": "Liam O'Brien", "email": "liam@example.org", "locale": "en",
                   "timezone": "Europe/Paris"}),
        ),
    ] {
        let status = server
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/recipients/{id}"),
                Some(body),
            )
            .await;
        assert!(status == 200 || status == 201, "PUT {id}: {status}");
    }
    let event = json!({
        "event_id": "evt-000001", "planning_id": "pl-00001", "event": "assigned",
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {"title": "Représentation — Carmen",
            "location": {"name": "Théâtre Outremont", "address": "1248 Av. Bernard O, Montréal"},
            "starts_at": "2027-03-16T20:15:00-04:00", "ends_at": "2027-03-16T22:15:00-04:00",
            "timezone": "America/Montreal",
            "contact": {"name": "Samir Nguyễn", "phone": "+15145550030", "email": "samir@example.org"}},
        "artist_ids": ["artist-0001"], "coordinator_ids": ["coordinator-0001"]
    });
    let status = server
        .send(
            reqwest::Method::POST,
            "/api/v1/notifications/plannings/pl-00001/events",
            Some(event),
        )
        .await;
    assert_eq!(status, 202, "the planning event is accepted");
}

/// Waits until `dir` holds `count` `.eml` files; returns their texts.
async fn wait_for_emails(dir: &Path, count: usize, server: &Server) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let emails: Vec<String> = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| fs::read_to_string(e.path()).ok())
                    // A file still being written has no end of headers yet (its `To:` may be
                    // missing): it counts once it has one.
                    .filter(|email| email.contains("\r\n\r\n") || email.contains("\n\n"))
                    .collect()
            })
            .unwrap_or_default();
        if emails.len() >= count {
            return emails;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} emails in {}; stderr: {}",
            emails.len(),
            dir.display(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_binary_copied_alone_into_an_empty_folder_serves_the_main_job() {
    // Arrange
    let folder = tempfile::tempdir().expect("a folder");
    copy_binary(folder.path());
    let server = Server::start(folder.path(), &[]).await;

    // Act
    post_the_readme_event(&server).await;
    let emails = wait_for_emails(&folder.path().join("outbox"), 2, &server).await;
    let inbox = server.page("/inbox").await;
    let admin = server.page("/admin").await;
    let docs = server.page("/api/docs/").await;
    let swagger_js = server.page("/api/docs/swagger-ui-bundle.js").await;
    let client_js = server.page("/static/clairon.js").await;
    let read = server
        .send(
            reqwest::Method::GET,
            "/api/v1/recipients/artist-0001/notifications",
            None,
        )
        .await;

    // Assert
    assert!(server.key.len() > 20, "the generated admin key was printed");
    assert!(
        emails.iter().any(|e| e.contains("zoe@example.org")),
        "Zoé's email is in outbox/"
    );
    assert_eq!(read, 200, "the key reads the inbox");
    for (path, (status, content_type), kind) in [
        ("/inbox", inbox, "text/html"),
        ("/admin", admin, "text/html"),
        ("/api/docs/", docs, "text/html"),
        ("/api/docs/swagger-ui-bundle.js", swagger_js, "javascript"),
        ("/static/clairon.js", client_js, "javascript"),
    ] {
        assert_eq!(status, 200, "{path} is served from the binary");
        assert!(
            content_type.contains(kind),
            "{path} is {kind}: {content_type}"
        );
    }
    let written: BTreeSet<String> = entries(folder.path())
        .into_iter()
        .filter(|e| !e.starts_with("clairon.db-"))
        .collect();
    assert_eq!(
        written,
        ["clairon", "clairon.db", "outbox"].map(String::from).into(),
        "the folder holds the binary, its database and its outbox, nothing it needed beside"
    );
}

#[tokio::test]
async fn a_template_of_clairon_templates_dir_replaces_the_built_in_one_and_only_that_one() {
    // Arrange: one French subject overridden; everything else comes from the binary.
    let folder = tempfile::tempdir().expect("a folder");
    copy_binary(folder.path());
    let overrides = tempfile::tempdir().expect("an override folder");
    let subject = overrides
        .path()
        .join("fr/planning.assigned/email.subject.txt");
    fs::create_dir_all(subject.parent().unwrap()).unwrap();
    fs::write(&subject, "Override: {{ audience }}").unwrap();
    let dir = overrides.path().display().to_string();
    let server = Server::start(folder.path(), &[("CLAIRON_TEMPLATES_DIR", &dir)]).await;

    // Act
    post_the_readme_event(&server).await;
    let emails = wait_for_emails(&folder.path().join("outbox"), 2, &server).await;

    // Assert
    let to = |address: &str| {
        emails
            .iter()
            .find(|e| e.contains(address))
            .unwrap_or_else(|| panic!("an email to {address}"))
    };
    assert!(
        to("zoe@example.org").contains("Subject: Override: artist"),
        "the French artist's subject comes from the override: {}",
        to("zoe@example.org")
    );
    assert!(
        !to("liam@example.org").contains("Subject: Override"),
        "the English coordinator's subject is still built in"
    );
}

/// Runs `dir/clairon` (copied there alone) with only `vars` and `RUST_BACKTRACE=1` set.
fn start_with(vars: &[(&str, &str)]) -> (tempfile::TempDir, Output) {
    let folder = tempfile::tempdir().expect("a folder");
    copy_binary(folder.path());
    let mut all = vec![("RUST_BACKTRACE", "1")];
    all.extend_from_slice(vars);
    let mut command = clairon_in(folder.path(), &all);
    command.stdin(Stdio::null());
    let output = when_not_busy(|| command.output()).expect("the copied binary runs");
    (folder, output)
}

#[rstest]
#[case::a_word_for_a_number("CLAIRON_RATE_LIMIT_PER_SEC", "lots")]
#[case::a_language_clairon_does_not_write_in("CLAIRON_DEFAULT_LOCALE", "de")]
#[case::an_unknown_channel("CLAIRON_CHANNELS", "in_app,pigeon")]
#[case::a_reminder_time_that_is_not_a_time("CLAIRON_REMINDER_LOCAL_TIME", "evening")]
#[case::an_address_that_is_not_host_and_port("CLAIRON_BIND", "everywhere")]
#[case::a_sender_that_is_no_mailbox("CLAIRON_EMAIL_FROM", "Clairon <nobody>")]
#[case::an_smtp_url_of_no_known_scheme("CLAIRON_SMTP_URL", "ftp://mail.example.org")]
#[case::an_smtp_pool_of_no_connection("CLAIRON_SMTP_POOL_SIZE", "0")]
#[case::a_log_format_that_does_not_exist("CLAIRON_LOG_FORMAT", "xml")]
#[case::a_template_override_that_is_not_there("CLAIRON_TEMPLATES_DIR", "no-such-folder")]
#[case::a_public_url_that_is_not_absolute("CLAIRON_PUBLIC_URL", "notify.example.org")]
#[case::a_public_url_with_a_query("CLAIRON_PUBLIC_URL", "https://notify.example.org/?a=1")]
#[case::a_database_of_no_known_engine("CLAIRON_DATABASE_URL", "mysql://localhost/clairon")]
#[case::an_unreachable_database("CLAIRON_DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")]
fn a_bad_variable_stops_the_start_with_status_2_one_line_naming_it_and_nothing_written(
    #[case] variable: &str,
    #[case] value: &str,
) {
    // Arrange
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    let mut vars = vec![(variable, value)];
    if variable != "CLAIRON_BIND" {
        vars.push(("CLAIRON_BIND", &bind));
    }

    // Act
    let (folder, output) = start_with(&vars);

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status 2: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(variable), "it names {variable}: {stderr}");
    assert!(
        !stderr.to_lowercase().contains("backtrace"),
        "no backtrace, even with RUST_BACKTRACE=1: {stderr}"
    );
    assert_eq!(
        entries(folder.path()),
        ["clairon".to_owned()].into(),
        "no database, outbox or other file was written"
    );
}

#[test]
fn a_broken_template_override_stops_the_start_naming_the_file_and_line() {
    // Arrange
    let overrides = tempfile::tempdir().expect("an override folder");
    let broken = overrides.path().join("fr/custom/email.txt");
    fs::create_dir_all(broken.parent().unwrap()).unwrap();
    fs::write(&broken, "Bonjour\n{{ notification.title \n").unwrap();
    let dir = overrides.path().display().to_string();
    let port = format!("127.0.0.1:{}", free_port());

    // Act
    let (folder, output) = start_with(&[("CLAIRON_TEMPLATES_DIR", &dir), ("CLAIRON_BIND", &port)]);

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status 2: {stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", broken.display())),
        "the file and line: {stderr}"
    );
    assert!(
        stderr.contains("CLAIRON_TEMPLATES_DIR"),
        "the variable: {stderr}"
    );
    assert_eq!(
        entries(folder.path()),
        ["clairon".to_owned()].into(),
        "nothing written"
    );
}

#[test]
fn with_clairon_log_debug_a_start_up_error_shows_its_causes_and_a_backtrace() {
    // Act
    let (_folder, output) = start_with(&[
        ("CLAIRON_LOG", "debug"),
        ("CLAIRON_DATABASE_URL", "postgres://postgres@127.0.0.1:1/x"),
    ]);

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status 2: {stderr}");
    assert!(stderr.contains("Caused by"), "the causes: {stderr}");
    assert!(stderr.contains("Stack backtrace"), "a backtrace: {stderr}");
}

/// Issue 13, "Scheduled jobs and chaining": a bad `CLAIRON_JOBS_FILE` is a start-up error like
/// a bad variable: exit status 2, one line naming the variable, the file and the problem, and
/// nothing written (the file is checked whole before the database is opened).
#[rstest]
#[case::a_schedule_that_is_not_cron(
    "[[job]]\nname = \"sync\"\nschedule = \"every night\"\nrequest = { method = \"POST\", url = \"http://127.0.0.1:9/sync\" }\n",
    "schedule"
)]
#[case::a_chain_after_an_unknown_job(
    "[[job]]\nname = \"report\"\nafter = \"nobody\"\nrequest = { method = \"POST\", url = \"http://127.0.0.1:9/report\" }\n",
    "nobody"
)]
#[case::a_file_that_is_not_toml("[[job]\nname = ", "not TOML")]
#[case::an_unknown_field(
    "[[job]]\nname = \"sync\"\nschedule = \"0 1 * * *\"\ncolour = \"red\"\nrequest = { method = \"POST\", url = \"http://127.0.0.1:9/sync\" }\n",
    "colour"
)]
fn a_bad_jobs_file_stops_the_start_with_status_2_naming_the_file_and_the_problem(
    #[case] text: &str,
    #[case] problem: &str,
) {
    // Arrange
    let elsewhere = tempfile::tempdir().expect("a folder for the jobs file");
    let file = elsewhere.path().join("jobs.toml");
    fs::write(&file, text).unwrap();
    let path = file.display().to_string();
    let bind = format!("127.0.0.1:{}", free_port());

    // Act
    let (folder, output) = start_with(&[("CLAIRON_JOBS_FILE", &path), ("CLAIRON_BIND", &bind)]);

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status 2: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("CLAIRON_JOBS_FILE {path}")),
        "the variable and the file: {stderr}"
    );
    assert!(
        stderr.contains(problem),
        "the problem ({problem}): {stderr}"
    );
    assert_eq!(
        entries(folder.path()),
        ["clairon".to_owned()].into(),
        "nothing written"
    );
}

#[test]
fn a_jobs_file_that_is_not_there_stops_the_start_naming_it() {
    // Arrange
    let elsewhere = tempfile::tempdir().expect("a folder");
    let path = elsewhere.path().join("missing.toml").display().to_string();
    let bind = format!("127.0.0.1:{}", free_port());

    // Act
    let (folder, output) = start_with(&[("CLAIRON_JOBS_FILE", &path), ("CLAIRON_BIND", &bind)]);

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status 2: {stderr}");
    assert!(
        stderr.contains(&format!("CLAIRON_JOBS_FILE {path}: cannot read it")),
        "the file and the problem: {stderr}"
    );
    assert_eq!(entries(folder.path()), ["clairon".to_owned()].into());
}
