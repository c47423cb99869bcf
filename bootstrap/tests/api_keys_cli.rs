//! `clairon api-keys create|list|revoke`, run as the binary on a SQLite file.

use std::process::{Command, Output};

fn clairon(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clairon"))
        .args(args)
        .env("CLAIRON_DATABASE_URL", database_url)
        .env("CLAIRON_LOG", "error")
        .env_remove("CLAIRON_API_KEYS")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn a_key_is_created_shown_once_listed_without_its_secret_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("clairon.db").display());

    let created = stdout(&clairon(
        &url,
        &[
            "api-keys",
            "create",
            "--name",
            "planning backend",
            "--scope",
            "send",
        ],
    ));
    let secret = created
        .split_whitespace()
        .find(|w| w.starts_with("clr_"))
        .expect("the key is printed")
        .to_owned();
    assert_eq!(secret.len(), 4 + 48, "{created}");

    let listed = stdout(&clairon(&url, &["api-keys", "list"]));
    assert!(
        listed.contains("planning backend") && listed.contains("send"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "list shows no secret: {listed}");

    let revoked = stdout(&clairon(&url, &["api-keys", "revoke", "1"]));
    assert!(revoked.contains("revoked API key 1"), "{revoked}");
    let listed = stdout(&clairon(&url, &["api-keys", "list"]));
    let line = listed
        .lines()
        .find(|l| l.contains("planning backend"))
        .unwrap();
    assert!(
        !line.trim_end().ends_with('-'),
        "the revocation time is shown: {line}"
    );

    let unknown = clairon(&url, &["api-keys", "revoke", "42"]);
    assert!(!unknown.status.success(), "an unknown id is an error");
    let bad_scope = clairon(
        &url,
        &["api-keys", "create", "--name", "x", "--scope", "root"],
    );
    assert!(!bad_scope.status.success(), "an unknown scope is refused");
}
