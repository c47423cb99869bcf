//! The PostgreSQL `LISTEN` connection of the realtime relay follows the database URL's
//! `sslmode` as the pool (libpq) does: for each URL, it connects exactly when libpq does, and
//! with TLS exactly when libpq would use it.
//!
//! PostgreSQL is found at `CLAIRON_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); unreachable, the server cases print
//! `skipped: …` and pass — except under CI (`CI` set), where they fail. They adapt to the
//! server: with TLS on, `prefer` and `require` must use it; with TLS off, `require` must fail
//! saying so.

use clairon_adapters::realtime::pg_notify::{ListenTls, SslModeName};
use diesel::{Connection, PgConnection};
use rstest::rstest;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn base_url() -> String {
    std::env::var("CLAIRON_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// `base` with `options` added to its query string.
fn with(base: &str, options: &str) -> String {
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}{options}")
}

/// Whether the `LISTEN` connection to `url` uses TLS, or why it could not connect.
async fn listener_uses_tls(url: &str) -> Result<bool, String> {
    let (client, connection) = ListenTls::from_url(url)?.connect().await?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let _ = driver.await;
    Ok(row.get(0))
}

/// Whether libpq (the pool's driver) connects to `url`, and with TLS.
async fn pool_uses_tls(url: &str) -> Result<bool, String> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).map_err(|e| e.to_string())?;
        #[derive(diesel::QueryableByName)]
        struct Ssl {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            ssl: bool,
        }
        let row: Ssl = diesel::RunQueryDsl::get_result(
            diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"),
            &mut conn,
        )
        .map_err(|e| e.to_string())?;
        Ok(row.ssl)
    })
    .await
    .expect("the blocking task")
}

/// What the server says about TLS (`SHOW ssl`, and its certificate file), over a plain
/// connection; `None` (after saying so) when it is unreachable outside CI.
async fn server() -> Option<(bool, String)> {
    let url = with(&base_url(), "sslmode=disable");
    let shown = tokio::task::spawn_blocking(move || {
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            setting: String,
        }
        let mut conn = PgConnection::establish(&url).map_err(|e| e.to_string())?;
        let show = |conn: &mut PgConnection, name: &str| -> Result<String, String> {
            let row: Setting = diesel::RunQueryDsl::get_result(
                diesel::sql_query(format!(
                    "SELECT setting FROM pg_settings WHERE name = '{name}'"
                )),
                conn,
            )
            .map_err(|e| e.to_string())?;
            Ok(row.setting)
        };
        Ok::<_, String>((
            show(&mut conn, "ssl")? == "on",
            show(&mut conn, "ssl_cert_file")?,
        ))
    })
    .await
    .expect("the blocking task");
    match shown {
        Ok(found) => Some(found),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL not reachable: {e}");
            None
        }
    }
}

#[rstest]
#[case::disable("sslmode=disable")]
#[case::allow("sslmode=allow")]
#[case::prefer("sslmode=prefer")]
#[case::default("application_name=clairon-test")]
#[case::require("sslmode=require")]
#[case::verify_ca_without_a_root("sslmode=verify-ca&sslrootcert=/nonexistent/root.crt")]
#[tokio::test]
async fn the_listen_connection_connects_and_uses_tls_exactly_when_the_pool_does(
    #[case] options: &str,
) {
    let Some((tls_on, _)) = server().await else {
        return;
    };
    let url = with(&base_url(), options);

    let listener = listener_uses_tls(&url).await;
    let pool = pool_uses_tls(&url).await;

    assert_eq!(
        listener.is_ok(),
        pool.is_ok(),
        "{options}: the listener {listener:?}, the pool {pool:?}"
    );
    if let (Ok(listener), Ok(pool)) = (&listener, &pool) {
        assert_eq!(
            listener, pool,
            "{options}: TLS on the listener as on the pool"
        );
    }
    match options {
        "sslmode=disable" => assert_eq!(listener, Ok(false), "disable: plain"),
        "sslmode=prefer" | "application_name=clairon-test" => {
            assert_eq!(
                listener,
                Ok(tls_on),
                "prefer (the default): TLS when offered"
            );
        }
        "sslmode=require" if tls_on => assert_eq!(listener, Ok(true), "require: TLS"),
        "sslmode=require" => {
            let error = listener.unwrap_err();
            assert!(
                error.contains("TLS"),
                "require without TLS says so: {error}"
            );
        }
        o if o.starts_with("sslmode=verify-ca") => {
            let error = listener.unwrap_err();
            assert!(
                error.contains("/nonexistent/root.crt"),
                "a missing root certificate is named: {error}"
            );
        }
        _ => {}
    }
}

#[tokio::test]
async fn verify_modes_check_the_certificate_against_the_given_root_like_the_pool() {
    let Some((true, cert_file)) = server().await else {
        eprintln!("skipped: the server has no TLS, nothing to verify");
        return;
    };
    if std::fs::read(&cert_file).is_err() {
        // A server elsewhere: its certificate is not at hand.
        eprintln!("skipped: cannot read the server's certificate {cert_file}");
        return;
    }
    for options in [
        format!("sslmode=verify-ca&sslrootcert={cert_file}"),
        format!("sslmode=verify-full&sslrootcert={cert_file}"),
        format!("sslmode=require&sslrootcert={cert_file}"),
    ] {
        let url = with(&base_url(), &options);

        let listener = listener_uses_tls(&url).await;
        let pool = pool_uses_tls(&url).await;

        assert_eq!(
            listener.is_ok(),
            pool.is_ok(),
            "{options}: the listener {listener:?}, the pool {pool:?}"
        );
        if let Ok(listener) = listener {
            assert!(listener, "{options}: verified means TLS");
        }
    }
}

#[test]
fn the_url_is_read_as_libpq_reads_it() {
    let mode = |url: &str| ListenTls::from_url(url).map(|t| t.mode);

    assert_eq!(
        mode("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/tmp/x.pem&options=-c%20a%3Db"),
        Ok(SslModeName::VerifyCa),
        "options tokio-postgres does not know are read here, the others passed on"
    );
    assert_eq!(
        mode("postgres://u@h/db?sslmode=disable"),
        Ok(SslModeName::Disable)
    );
    assert!(
        mode("postgres://u@h/db?sslmode=sometimes")
            .unwrap_err()
            .contains("sslmode"),
        "an unknown mode is named"
    );
    let no_root = mode("postgres://u@h/db?sslmode=verify-full&sslrootcert=");
    assert!(
        std::env::var_os("PGSSLROOTCERT").is_some()
            || no_root
                .as_ref()
                .is_err_and(|e| e.contains("root certificate"))
            || std::path::Path::new(&format!(
                "{}/.postgresql/root.crt",
                std::env::var("HOME").unwrap_or_default()
            ))
            .exists(),
        "verify-full without a root certificate is refused, as libpq does: {no_root:?}"
    );
}
