//! Looking into a test app's database directly, on either engine: counts, sizes, and the odd
//! statement that sets a scene the API cannot (a lost answer, a failing write).

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

/// A connection to the app's SQLite file that waits for the app's writers, as the app does.
fn open_sqlite(path: &str) -> SqliteConnection {
    use diesel::connection::SimpleConnection;
    let mut conn = SqliteConnection::establish(path).expect("the SQLite file");
    conn.batch_execute("PRAGMA busy_timeout = 5000;")
        .expect("a busy timeout");
    conn
}

#[derive(diesel::QueryableByName)]
struct Number {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The one `BigInt` column `n` of the first row `sql` returns.
///
/// # Panics
/// When the database refuses the query or it returns no row.
pub fn number(database_url: &str, sql: &str) -> i64 {
    let rows: Vec<Number> = if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut conn = open_sqlite(path);
        diesel::sql_query(sql).load(&mut conn).expect("the query")
    } else {
        let mut conn = PgConnection::establish(database_url).expect("the PostgreSQL database");
        diesel::sql_query(sql).load(&mut conn).expect("the query")
    };
    rows.first().map(|r| r.n).expect("a row")
}

/// Runs `sqlite` or `postgres` (the same statement in each engine's dialect), returning the
/// rows changed.
///
/// # Panics
/// When the database refuses it.
pub fn execute(database_url: &str, sqlite: &str, postgres: &str) -> usize {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut conn = open_sqlite(path);
        diesel::sql_query(sqlite)
            .execute(&mut conn)
            .expect("the statement")
    } else {
        let mut conn = PgConnection::establish(database_url).expect("the PostgreSQL database");
        diesel::sql_query(postgres)
            .execute(&mut conn)
            .expect("the statement")
    }
}

/// What the database takes on disk, in bytes: the SQLite file with its write-ahead log, or
/// `pg_database_size`.
pub fn size_bytes(database_url: &str) -> u64 {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let len = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
        len(path.to_owned()) + len(format!("{path}-wal"))
    } else {
        let n = number(
            database_url,
            "SELECT pg_database_size(current_database())::BIGINT AS n",
        );
        u64::try_from(n).unwrap_or(0)
    }
}

/// Runs several statements (`sqlite` or `postgres`, one per engine's dialect) as one batch.
///
/// # Panics
/// When the database refuses one.
pub fn batch(database_url: &str, sqlite: &str, postgres: &str) {
    use diesel::connection::SimpleConnection;
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut conn = open_sqlite(path);
        conn.batch_execute(sqlite).expect("the statements");
    } else {
        let mut conn = PgConnection::establish(database_url).expect("the PostgreSQL database");
        conn.batch_execute(postgres).expect("the statements");
    }
}
