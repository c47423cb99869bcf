//! The database handle: one r2d2 pool of [`AnyConnection`] for SQLite or PostgreSQL, the embedded
//! migrations, and the translation of Diesel's errors into the ports' errors.
//!
//! Every Diesel call is blocking; [`Database::run`] moves it onto tokio's blocking pool so none
//! ever runs on an async executor thread. Database URLs may hold a password: it is never logged
//! nor put in an error message (see [`Scrubber`]).
//!
//! Writes that fail for want of storage (a read-only database, a full disk, an I/O error) are
//! remembered by the write-transaction helper, and [`Database::check_writes`] also writes one row
//! itself, so `/health/ready` fails while writes do even though reads still answer.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clairon_application::ports::{Clock, RepositoryError};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::migration::MigrationSource;
use diesel::r2d2::{CustomizeConnection, HandleError, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// How long a caller waits for a pooled connection before the call fails as unavailable.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled connection that answered within this long is handed out again without a ping
/// (`SELECT 1`): r2d2 checks each connection at checkout, and at a thousand requests per second
/// the pings were a third of the statements sent to PostgreSQL (BENCHMARKS.md). One idle
/// longer, or whose last use failed, is pinged first, so a connection the server dropped
/// (a restart, an idle timeout) is still replaced before a request gets it.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// Set on every SQLite connection. `busy_timeout` first, so switching to WAL waits for a
/// concurrent writer instead of failing; WAL lets readers proceed while one writer writes;
/// `synchronous = NORMAL` is durable across application crashes in WAL mode (a power loss may
/// lose the last transactions, never corrupt the file); SQLite leaves foreign keys off by default.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
                              PRAGMA journal_mode = WAL; \
                              PRAGMA synchronous = NORMAL; \
                              PRAGMA foreign_keys = ON;";

/// A connection to either engine.
///
/// Code where the engines agree takes `&mut AnyConnection` and lets Diesel dispatch; code where
/// they differ (row locks, SQLite's `BEGIN IMMEDIATE`, migrations) matches on the variant.
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    /// PostgreSQL through libpq.
    Postgresql(PgConnection),
    /// SQLite (bundled).
    Sqlite(SqliteConnection),
}

/// Runs the same Diesel expression on the inner connection of either variant.
///
/// For statements `MultiConnection`'s backend cannot express although both engines can:
/// multi-row `INSERT … VALUES (…), (…)` needs a backend whose SQL dialect has a `DEFAULT`
/// keyword story Diesel knows, and the derived backend has none.
macro_rules! on_inner {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::persistence::connection::AnyConnection::Postgresql($inner) => $body,
            $crate::persistence::connection::AnyConnection::Sqlite($inner) => $body,
        }
    };
}
pub(crate) use on_inner;

/// Which engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file: the embedded default, one process.
    Sqlite,
    /// A PostgreSQL server: several Clairon processes may share it.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, for logs and `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the database could not be opened, migrated or pinged.
///
/// Messages never contain a password from the database URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistenceError {
    /// The URL is neither `sqlite://PATH` / `sqlite:PATH` nor `postgres://…` / `postgresql://…`.
    #[error(
        "unsupported database URL {0:?}: expected sqlite://PATH, postgres://… or postgresql://…"
    )]
    UnsupportedUrl(String),
    /// The database could not be opened (SQLite) or reached (PostgreSQL).
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// The URL, password masked.
        target: String,
        /// The driver's reason.
        reason: String,
    },
    /// An embedded migration failed; the schema is as the last successful one left it.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The database did not answer, or no pooled connection was free in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// How long a write that failed for want of storage keeps [`Database::check_writes`] failing:
/// 30 s. A success does not clear it sooner, because a transaction that happens to write nothing
/// (an empty claim) commits even on a full disk; while writes keep failing, they keep it failing.
pub const WRITE_FAILURE_MEMORY: Duration = Duration::from_secs(30);

/// Why the database cannot take writes, as `/health/ready` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// It refuses writes: an SQLite file opened read-only or not writable (`SQLITE_READONLY`), a
    /// PostgreSQL session or server in read-only mode (SQLSTATE 25006: a hot standby,
    /// `default_transaction_read_only`).
    ReadOnly,
    /// A write failed for want of storage: a full disk (`SQLITE_FULL`, "No space left on
    /// device"), an I/O error.
    Failed,
}

impl WriteFailure {
    /// `read-only` or `write failed`, for `/health/ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::Failed => "write failed",
        }
    }
}

impl fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last storage failure of a write, shared by the clones of a [`Database`].
#[derive(Debug, Default)]
struct WriteHealth {
    last_failure: Mutex<Option<(Instant, WriteFailure)>>,
}

impl WriteHealth {
    fn failed(&self, failure: WriteFailure) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), failure));
    }

    fn recent(&self) -> Option<(Duration, WriteFailure)> {
        let last = *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.map(|(at, failure)| (at.elapsed(), failure))
            .filter(|(ago, _)| *ago < WRITE_FAILURE_MEMORY)
    }
}

thread_local! {
    /// The [`WriteHealth`] of the database whose call runs on this (blocking pool) thread, set by
    /// [`Database::run`] for the length of the call: [`write_transaction`] reports to it without
    /// every repository having to pass it along.
    static WRITES: RefCell<Option<Arc<WriteHealth>>> = const { RefCell::new(None) };
}

/// Sets [`WRITES`] for the life of the guard (panics included).
struct WritesScope;

impl WritesScope {
    fn enter(health: Arc<WriteHealth>) -> Self {
        WRITES.with(|w| *w.borrow_mut() = Some(health));
        Self
    }
}

impl Drop for WritesScope {
    fn drop(&mut self) {
        WRITES.with(|w| *w.borrow_mut() = None);
    }
}

/// Whether `error` says the database could not store a write (as opposed to refusing this
/// write's data: a uniqueness rule, a lock timeout). Engines tell it by kind or by message only:
/// Diesel exposes no SQLSTATE.
fn storage_failure(error: &DbError) -> Option<WriteFailure> {
    let DbError::Diesel(DieselError::DatabaseError(kind, info)) = error else {
        return None;
    };
    if matches!(kind, DatabaseErrorKind::ReadOnlyTransaction) {
        return Some(WriteFailure::ReadOnly);
    }
    let message = info.message().to_ascii_lowercase();
    if message.contains("readonly database") || message.contains("read-only transaction") {
        return Some(WriteFailure::ReadOnly);
    }
    [
        "database or disk is full",
        "disk i/o error",
        "no space left on device",
        "could not extend file",
        "could not write to file",
    ]
    .iter()
    .any(|needle| message.contains(needle))
    .then_some(WriteFailure::Failed)
}

/// What went wrong inside a blocking database call, before it becomes a port's error.
#[derive(Debug)]
pub(crate) enum DbError {
    /// Diesel or the engine refused or failed.
    Diesel(DieselError),
    /// No connection could be had, or the blocking task died.
    Pool(String),
    /// A stored value did not validate into its domain type.
    Corrupt(String),
    /// A migration failed.
    Migration(String),
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> Self {
        Self::Diesel(error)
    }
}

impl From<DbError> for RepositoryError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Diesel(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                info,
            )) => RepositoryError::Conflict(info.message().to_owned()),
            DbError::Diesel(DieselError::DeserializationError(e)) => {
                RepositoryError::Corrupt(e.to_string())
            }
            DbError::Diesel(e) => RepositoryError::Unavailable(e.to_string()),
            DbError::Pool(m) | DbError::Migration(m) => RepositoryError::Unavailable(m),
            DbError::Corrupt(m) => RepositoryError::Corrupt(m),
        }
    }
}

impl From<DbError> for PersistenceError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Migration(m) => PersistenceError::Migration(m),
            DbError::Pool(m) | DbError::Corrupt(m) => PersistenceError::Unavailable(m),
            DbError::Diesel(e) => PersistenceError::Unavailable(e.to_string()),
        }
    }
}

/// Masks the password of a database URL in anything said about it.
#[derive(Debug, Clone, Default)]
struct Scrubber {
    password: Option<Arc<str>>,
}

impl Scrubber {
    fn for_url(url: &str) -> Self {
        Self {
            password: url_password(url).map(Arc::from),
        }
    }

    fn scrub(&self, message: impl fmt::Display) -> String {
        let message = message.to_string();
        match &self.password {
            Some(password) if !password.is_empty() => message.replace(&**password, "***"),
            _ => message,
        }
    }
}

/// The password of a `scheme://user:password@host/…` URL, or of its `password=` query parameter.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            return Some(password.to_owned());
        }
    }
    let query = url.split_once('?').map(|(_, q)| q)?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("password="))
        .map(str::to_owned)
}

/// The URL with its password replaced by `***`.
fn redact(url: &str) -> String {
    Scrubber::for_url(url).scrub(url)
}

/// What a URL points at.
#[derive(Debug, Clone)]
enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Target {
    fn parse(url: &str) -> Result<Self, PersistenceError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| PersistenceError::UnsupportedUrl(redact(url)))?;
        if path.is_empty() || path == ":memory:" {
            return Err(PersistenceError::UnsupportedUrl(redact(url)));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact(url),
        }
    }
}

/// Opens connections of the variant the URL names, and only that one: `AnyConnection::establish`
/// would try each engine in turn, and SQLite accepts any string as a file name.
#[derive(Debug)]
struct AnyConnectionManager {
    target: Target,
}

/// A connection of the pool and when it last answered: `None` when it never has, or when its
/// last use failed (then it is pinged before it is handed out again, see [`TRUSTED_FOR`]).
struct PooledConnection {
    conn: AnyConnection,
    answered: Option<Instant>,
}

impl ManageConnection for AnyConnectionManager {
    type Connection = PooledConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledConnection, Self::Error> {
        match &self.target {
            Target::Sqlite(path) => {
                SqliteConnection::establish(&path.to_string_lossy()).map(AnyConnection::Sqlite)
            }
            Target::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgresql),
        }
        .map(|conn| PooledConnection {
            conn,
            answered: Some(Instant::now()),
        })
        .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, pooled: &mut PooledConnection) -> Result<(), Self::Error> {
        if pooled.answered.is_some_and(|at| at.elapsed() < TRUSTED_FOR) {
            return Ok(());
        }
        pooled
            .conn
            .ping()
            .map_err(diesel::r2d2::Error::QueryError)?;
        pooled.answered = Some(Instant::now());
        Ok(())
    }

    fn has_broken(&self, pooled: &mut PooledConnection) -> bool {
        std::thread::panicking() || pooled.conn.is_broken()
    }
}

/// Applies [`SQLITE_PRAGMAS`] to every new SQLite connection of the pool.
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<PooledConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, pooled: &mut PooledConnection) -> Result<(), diesel::r2d2::Error> {
        if let AnyConnection::Sqlite(sqlite) = &mut pooled.conn {
            sqlite
                .batch_execute(SQLITE_PRAGMAS)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Logs the pool's background connection failures through `tracing`, password masked.
#[derive(Debug)]
struct TracingErrorHandler {
    scrubber: Scrubber,
}

impl HandleError<diesel::r2d2::Error> for TracingErrorHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(error = %self.scrubber.scrub(&error), "database connection failed");
    }
}

/// A pool of connections to Clairon's database, SQLite or PostgreSQL, and the [`Clock`] its
/// repositories read "now" from (the system clock unless [`Database::with_clock`] says
/// otherwise). Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Database {
    pool: Pool<AnyConnectionManager>,
    backend: Backend,
    scrubber: Scrubber,
    writes: Arc<WriteHealth>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("pool_size", &self.pool.max_size())
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens a pool of at most `pool_size` connections (at least 1) to `url`.
    ///
    /// `url` is `sqlite://PATH` or `sqlite:PATH` (a relative or, with `sqlite:///`, absolute
    /// path; the file and its directory are created when missing; `sqlite://file:PATH?mode=ro`,
    /// an SQLite URI filename, is opened as SQLite says, here read-only), or a libpq URL
    /// `postgres://…` / `postgresql://…`. Every SQLite connection runs in WAL mode with
    /// `busy_timeout = 5000` ms, `synchronous = NORMAL` and foreign keys on. A caller waits at
    /// most 10 s for a free connection.
    ///
    /// One connection is opened first so an unreachable database fails at once with the
    /// driver's reason rather than after the pool's timeout.
    ///
    /// # Errors
    /// [`PersistenceError::UnsupportedUrl`] for another scheme (or `:memory:`, which a pool
    /// cannot share); [`PersistenceError::Connect`] when the file cannot be opened or the server
    /// cannot be reached. Neither holds the URL's password.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, PersistenceError> {
        let target = Target::parse(url)?;
        let scrubber = Scrubber::for_url(url);
        let described = target.describe();
        let backend = target.backend();
        let connect_error = {
            let scrubber = scrubber.clone();
            let target = described.clone();
            move |reason: &dyn fmt::Display| PersistenceError::Connect {
                target: target.clone(),
                reason: scrubber.scrub(reason),
            }
        };
        let handler_scrubber = scrubber.clone();
        let pool = tokio::task::spawn_blocking(move || {
            // An SQLite URI filename (`sqlite://file:PATH?mode=ro`) is SQLite's to open.
            let uri =
                matches!(&target, Target::Sqlite(p) if p.to_string_lossy().starts_with("file:"));
            if let (Target::Sqlite(path), false) = (&target, uri) {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| connect_error(&e))?;
                }
            }
            let manager = AnyConnectionManager { target };
            let mut probe = manager.connect().map_err(|e| connect_error(&e))?;
            SqlitePragmas
                .on_acquire(&mut probe)
                .map_err(|e| connect_error(&e))?;
            drop(probe);
            Pool::builder()
                .max_size(pool_size.max(1))
                .connection_timeout(CHECKOUT_TIMEOUT)
                .connection_customizer(Box::new(SqlitePragmas))
                .error_handler(Box::new(TracingErrorHandler {
                    scrubber: handler_scrubber,
                }))
                .build(manager)
                .map_err(|e| connect_error(&e))
        })
        .await
        .map_err(|e| PersistenceError::Unavailable(format!("the connecting task failed: {e}")))??;
        tracing::info!(backend = %backend, database = %described, "database pool ready");
        Ok(Self {
            pool,
            backend,
            scrubber,
            writes: Arc::default(),
            clock: Arc::new(crate::system::SystemClock),
        })
    }

    /// This database with `clock` as the time its repositories write and filter by (creation,
    /// revocation and update times, what is due or visible "now"): the application's clock, so
    /// the adapters read time through the [`Clock`] port only. Clones made before keep theirs.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by this database's [`Clock`].
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations this database has not seen yet (`migrations/sqlite` or
    /// `migrations/postgres`, chosen by the engine). Running it again is harmless.
    ///
    /// # Errors
    /// [`PersistenceError::Migration`] when a migration fails (that migration is rolled back);
    /// [`PersistenceError::Unavailable`] when no connection can be had.
    pub async fn run_migrations(&self) -> Result<(), PersistenceError> {
        let applied = self
            .run(|conn| {
                let applied = match conn {
                    AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
                    AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
                }
                .map_err(|e| DbError::Migration(e.to_string()))?;
                Ok::<_, DbError>(applied.iter().map(ToString::to_string).collect::<Vec<_>>())
            })
            .await?;
        if !applied.is_empty() {
            tracing::info!(backend = %self.backend, migrations = ?applied, "database migrated");
        }
        Ok(())
    }

    /// The embedded migrations this database has not applied yet, by name (empty when the
    /// schema is current), for `/health/ready`.
    ///
    /// # Errors
    /// [`PersistenceError::Unavailable`] when the database does not answer.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, PersistenceError> {
        self.run::<Vec<String>, DbError, _>(|conn| {
            // Read only: the harness's own `pending_migrations` first runs `CREATE TABLE IF NOT
            // EXISTS`, which a read-only database refuses, and readiness would then report
            // migrations pending when the schema is current.
            #[derive(diesel::QueryableByName)]
            struct Applied {
                #[diesel(sql_type = diesel::sql_types::Text)]
                version: String,
            }
            let applied: Vec<Applied> = diesel::RunQueryDsl::load(
                diesel::sql_query("SELECT version FROM __diesel_schema_migrations"),
                conn,
            )?;
            let applied: std::collections::HashSet<String> =
                applied.into_iter().map(|a| a.version).collect();
            let embedded = match conn {
                AnyConnection::Sqlite(_) => {
                    MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                        .map(|all| names(&all))
                }
                AnyConnection::Postgresql(_) => {
                    MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
                        .map(|all| names(&all))
                }
            }
            .map_err(|e| DbError::Migration(e.to_string()))?;
            Ok(embedded
                .into_iter()
                .filter(|(version, _)| !applied.contains(version))
                .map(|(_, name)| name)
                .collect())
        })
        .await
        .map_err(PersistenceError::from)
    }

    /// Checks that the database answers a trivial query (`SELECT 1`), for `/health`.
    ///
    /// # Errors
    /// [`PersistenceError::Unavailable`] when it does not, or no connection is free in time.
    pub async fn ping(&self) -> Result<(), PersistenceError> {
        self.run(|conn| conn.ping().map_err(DbError::from))
            .await
            .map_err(PersistenceError::from)
    }

    /// Whether the database takes writes, for `/health/ready`: writes one row (`health_probe`)
    /// in a write transaction, and looks at the writes of the last [`WRITE_FAILURE_MEMORY`].
    ///
    /// # Errors
    /// The [`WriteFailure`] with its cause (password masked) when the probe's write fails, or
    /// when another write failed for want of storage within [`WRITE_FAILURE_MEMORY`]. A probe
    /// that fails for another reason (no connection, a lock held too long) is
    /// [`WriteFailure::Failed`].
    pub async fn check_writes(&self) -> Result<(), (WriteFailure, String)> {
        let now = self.now().naive_utc();
        let probed = self
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    use crate::persistence::schema::health_probe;
                    use diesel::{ExpressionMethods, RunQueryDsl};
                    diesel::update(health_probe::table)
                        .set(health_probe::checked_at.eq(now))
                        .execute(conn)
                        .map_err(DbError::from)
                })
            })
            .await;
        if let Err(error) = probed {
            let failure = storage_failure(&error).unwrap_or(WriteFailure::Failed);
            return Err((failure, self.scrubber.scrub(format_args!("{error:?}"))));
        }
        match self.writes.recent() {
            Some((ago, failure)) => Err((
                failure,
                format!("a write failed ({failure}) {} s ago", ago.as_secs()),
            )),
            None => Ok(()),
        }
    }

    /// The storage failure of a write within the last [`WRITE_FAILURE_MEMORY`], if any.
    pub fn recent_write_failure(&self) -> Option<WriteFailure> {
        self.writes.recent().map(|(_, failure)| failure)
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool.
    pub(crate) async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let scrubber = self.scrubber.clone();
        let writes = self.writes.clone();
        tokio::task::spawn_blocking(move || {
            let _scope = WritesScope::enter(writes);
            let mut pooled = pool.get().map_err(|e| {
                DbError::Pool(scrubber.scrub(format_args!("no database connection available: {e}")))
            })?;
            let outcome = f(&mut pooled.conn);
            // A failed call may have been the connection's fault: ping it before its next use.
            pooled.answered = outcome.is_ok().then(Instant::now);
            outcome
        })
        .await
        .map_err(|e| E::from(DbError::Pool(format!("the database task failed: {e}"))))?
    }

    /// Like [`Database::run`], for repository calls: errors become [`RepositoryError`]s.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, RepositoryError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(f).await.map_err(RepositoryError::from)
    }
}

/// `(version, name)` of each migration, in order.
fn names<DB: diesel::backend::Backend>(
    migrations: &[Box<dyn diesel::migration::Migration<DB>>],
) -> Vec<(String, String)> {
    migrations
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect()
}

/// Runs `f` in a transaction meant to write: committed when `f` succeeds, rolled back otherwise.
///
/// On SQLite it opens with `BEGIN IMMEDIATE` (what `SqliteConnection::immediate_transaction`
/// does), taking the write lock up front: a deferred transaction that reads and then writes
/// fails with `SQLITE_BUSY` at once, without waiting `busy_timeout`, when another connection
/// wrote in between. On PostgreSQL it is a plain `BEGIN` (READ COMMITTED).
///
/// A failure for want of storage (read-only, disk full) is remembered by the database the call
/// runs for ([`Database::check_writes`] reports it).
pub(crate) fn write_transaction<T, F>(conn: &mut AnyConnection, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DbError>,
{
    let outcome = transaction(conn, f);
    if let Err(error) = &outcome {
        if let Some(failure) = storage_failure(error) {
            WRITES.with(|w| {
                if let Some(health) = &*w.borrow() {
                    health.failed(failure);
                }
            });
        }
    }
    outcome
}

fn transaction<T, F>(conn: &mut AnyConnection, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DbError>,
{
    match conn {
        AnyConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
        }
        AnyConnection::Postgresql(_) => {
            <AnyConnection as Connection>::TransactionManager::begin_transaction(conn)?;
        }
    }
    match f(conn) {
        Ok(value) => {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn) {
                // The first error says what happened; a failed rollback marks the connection
                // broken and r2d2 discards it.
                Ok(()) | Err(_) => Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DbError {
        DbError::Diesel(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn storage_failures_are_told_from_refusals_of_the_data() {
        use DatabaseErrorKind::{ReadOnlyTransaction, UniqueViolation, Unknown};
        for (error, expected) in [
            (
                database_error(Unknown, "attempt to write a readonly database"),
                Some(WriteFailure::ReadOnly),
            ),
            (
                database_error(
                    ReadOnlyTransaction,
                    "cannot execute UPDATE in a read-only transaction",
                ),
                Some(WriteFailure::ReadOnly),
            ),
            (
                database_error(Unknown, "database or disk is full"),
                Some(WriteFailure::Failed),
            ),
            (
                database_error(
                    Unknown,
                    "could not extend file \"base/1/2\": No space left on device",
                ),
                Some(WriteFailure::Failed),
            ),
            (
                database_error(UniqueViolation, "UNIQUE constraint failed: deliveries.id"),
                None,
            ),
            (database_error(Unknown, "database is locked"), None),
            (DbError::Corrupt("recipients \"x\": name".into()), None),
        ] {
            assert_eq!(storage_failure(&error), expected, "{error:?}");
        }
    }

    #[test]
    fn a_postgres_url_password_is_masked() {
        assert_eq!(
            redact("postgres://clairon:s3cr%21t@db.example.org:5432/clairon"),
            "postgres://clairon:***@db.example.org:5432/clairon"
        );
        assert_eq!(
            redact("postgresql://db/clairon?user=c&password=hunter2"),
            "postgresql://db/clairon?user=c&password=***"
        );
        assert_eq!(redact("postgres://db/clairon"), "postgres://db/clairon");
    }

    #[test]
    fn sqlite_urls_name_a_file_and_other_schemes_are_refused() {
        assert!(matches!(
            Target::parse("sqlite://data/clairon.db"),
            Ok(Target::Sqlite(p)) if p == std::path::Path::new("data/clairon.db")
        ));
        assert!(matches!(
            Target::parse("sqlite:///var/lib/clairon.db"),
            Ok(Target::Sqlite(p)) if p == std::path::Path::new("/var/lib/clairon.db")
        ));
        assert!(matches!(
            Target::parse("sqlite:clairon.db"),
            Ok(Target::Sqlite(_))
        ));
        assert!(matches!(
            Target::parse("postgresql://h/db"),
            Ok(Target::Postgres(_))
        ));
        assert!(matches!(
            Target::parse("mysql://u:pw@h/db"),
            Err(PersistenceError::UnsupportedUrl(u)) if !u.contains("pw@")
        ));
        assert!(Target::parse("sqlite://:memory:").is_err());
    }
}
