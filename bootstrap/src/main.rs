//! The `clairon` binary: `serve` (the default), `migrate`, `send-test`, `replay`, `run-job`,
//! `api-keys`, `templates`, `routing`.
//!
//! Exit status: 0 when the command did its job; 1 when it ran and failed (a channel failed,
//! `templates check` found a problem); 2 when it could not start: a bad `CLAIRON_*` variable,
//! an unreadable template override, a broken template, an unreachable database, a taken port.
//! A start-up error is one line on stderr naming what to fix, and nothing has been written then
//! (no database file, no outbox). `CLAIRON_LOG=debug` adds the causes and a backtrace.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clairon_application::commands::{SendTestNotification, TestTarget};
use clairon_bootstrap::{
    api_keys, replay, routing, telemetry, templates, Application, Components, Settings,
};
use clairon_domain::{ApiScope, ChannelSet, EmailAddress, RecipientId, TelegramChatId};
use clap::{Parser, Subcommand};

/// Clairon: a self-hosted notification service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the delivery dispatcher (the default).
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Send a test message now on each configured channel and print the outcome per channel.
    SendTest {
        /// A registered recipient.
        #[arg(long, conflicts_with_all = ["email", "telegram_chat_id"])]
        recipient: Option<String>,
        /// An email address.
        #[arg(long)]
        email: Option<String>,
        /// A Telegram chat id.
        #[arg(long)]
        telegram_chat_id: Option<String>,
        /// Channels to test, comma-separated (default: every channel that is on).
        #[arg(long)]
        channels: Option<String>,
    },
    /// Register a dataset's recipients, feed its planning events through the in-process bus in
    /// order, send everything, and print the counts.
    Replay {
        /// A dataset such as tests/data/planning-spring-2027.json.
        dataset: PathBuf,
    },
    /// Run one job now (`lease_reaper`, `retention`, `idempotency_purge`, `digests`,
    /// `dead_letter_alert`, or one of `CLAIRON_JOBS_FILE`) and the jobs chained after it, record
    /// the run (trigger `manual`) and print it.
    RunJob {
        /// The job's name.
        job: String,
    },
    /// Manage the API keys stored in the database (CLAIRON_API_KEYS keys are always admin).
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
    /// The message templates compiled into the binary: export them for editing, check a set.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// The routing rules (event → topics, channels, priority): import a TOML file as the new
    /// version, export the rules in force.
    #[command(subcommand)]
    Routing(RoutingCommand),
}

#[derive(Subcommand)]
enum RoutingCommand {
    /// Validate FILE (`[[rule]]` tables: event, topics, channels, priority) and store it as the
    /// next version, in force at once; the previous versions are kept.
    Import {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print the rules in force as TOML (version 0: the built-in default set).
    Export,
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Write the built-in templates (and their README) into DIR, to edit them there and point
    /// CLAIRON_TEMPLATES_DIR at DIR; files left out of DIR keep coming from the binary.
    Export {
        /// Where to write them (created if missing).
        dir: PathBuf,
        /// Overwrite files that already exist in DIR.
        #[arg(long)]
        force: bool,
    },
    /// Render every template (the built-in ones, with DIR's files in their place) against the
    /// sample contexts in every locale and channel; print each problem as `file:line: message`.
    /// Exit status 1 when there is one.
    Check {
        /// The overrides to check (default: CLAIRON_TEMPLATES_DIR; neither: the built-in set).
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Make a key and print it once; only its SHA-256 hash is stored.
    Create {
        /// Whose key it is (shown by `list`).
        #[arg(long)]
        name: String,
        /// send (ingestion), read (inboxes, deliveries, exports) or admin (everything).
        #[arg(long, default_value = "send", value_parser = parse_scope)]
        scope: ApiScope,
    },
    /// List the keys: id, scope, name, times; never a secret.
    List,
    /// Revoke a key by id: running servers refuse it within CLAIRON_API_KEY_CACHE_MS.
    Revoke {
        /// The key's id, as `list` shows it.
        id: i64,
    },
}

fn parse_scope(raw: &str) -> Result<ApiScope, String> {
    ApiScope::parse(raw).map_err(|e| e.message)
}

/// How the binary ended, when not well.
enum Failure {
    /// It could not start: exit status 2.
    Startup(anyhow::Error),
    /// The command ran and failed: exit status 1.
    Command(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::Command(error)
    }
}

/// Marks an error as a start-up error (exit status 2).
fn starting<T>(result: anyhow::Result<T>) -> Result<T, Failure> {
    result.map_err(Failure::Startup)
}

/// Whether `CLAIRON_LOG` asks for debug output: then errors come with their causes and a
/// backtrace.
fn debug_wanted() -> bool {
    std::env::var("CLAIRON_LOG").is_ok_and(|v| v.contains("debug") || v.contains("trace"))
}

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let debug = debug_wanted();
    if debug && std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // Read by anyhow when an error is made; set before any thread exists.
        std::env::set_var("RUST_LIB_BACKTRACE", "1");
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Startup)
        .and_then(|runtime| runtime.block_on(run(cli)));
    let (code, error) = match outcome {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Startup(error)) => (2, error),
        Err(Failure::Command(error)) => (1, error),
    };
    if debug {
        eprintln!("clairon: {error:?}");
    } else {
        // One line: the error and its causes (a driver's multi-line message folded), never a
        // backtrace.
        let message = format!("{error:#}");
        eprintln!(
            "clairon: {}",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    ExitCode::from(code)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Templates(TemplatesCommand::Export { dir, force }) = &command {
        // Needs no configuration: it only writes what the binary holds.
        let written = templates::export(dir, *force)?;
        println!(
            "wrote {written} files to {}; point CLAIRON_TEMPLATES_DIR at it (files you delete there come from the binary)",
            dir.display()
        );
        return Ok(());
    }
    let settings = starting(Settings::load())?;
    starting(settings.check_log_format())?;
    telemetry::init_with_secrets(&settings.log, &settings.log_format, settings.secrets());
    tracing::debug!(?settings, "configuration");
    match command {
        Command::Serve => {
            starting(Application::build(settings).await)?
                .run_until_stopped()
                .await?;
            Ok(())
        }
        Command::Migrate => {
            let db = starting(connect(&settings).await)?;
            starting(
                db.run_migrations()
                    .await
                    .context("running database migrations"),
            )?;
            println!("migrations applied");
            Ok(())
        }
        Command::SendTest {
            recipient,
            email,
            telegram_chat_id,
            channels,
        } => {
            let target = match recipient {
                Some(id) => TestTarget::Recipient(RecipientId::parse(&id).map_err(anyhow_of)?),
                None => TestTarget::Addresses {
                    email: email
                        .as_deref()
                        .map(EmailAddress::parse)
                        .transpose()
                        .map_err(anyhow_of)?,
                    telegram_chat_id: telegram_chat_id
                        .as_deref()
                        .map(TelegramChatId::parse)
                        .transpose()
                        .map_err(anyhow_of)?,
                },
            };
            let channels = channels
                .as_deref()
                .map(ChannelSet::parse_list)
                .transpose()
                .map_err(anyhow_of)?;
            let components = starting(Components::build(&settings).await)?;
            let results = components
                .handlers
                .send_test
                .execute(SendTestNotification { target, channels })
                .await
                .map_err(anyhow::Error::from)?;
            components.drain().await?;
            let mut failed = false;
            for r in &results {
                println!(
                    "{:<9} {:<8} {}",
                    r.channel.as_str(),
                    format!("{:?}", r.status).to_lowercase(),
                    r.detail
                );
                failed |= r.status == clairon_application::commands::TestStatus::Failed;
            }
            if failed {
                return Err(anyhow::anyhow!("at least one channel failed").into());
            }
            Ok(())
        }
        Command::RunJob { job } => {
            let components = starting(Components::build(&settings).await)?;
            let name = clairon_domain::jobs::JobName::parse(&job).map_err(|_| {
                anyhow::anyhow!(
                    "unknown job {job:?}: {}",
                    components.run_job.catalog().names()
                )
            })?;
            let runs = components
                .run_job
                .execute(clairon_application::commands::RunJob::now(
                    name,
                    clairon_application::ports::JobTrigger::Manual,
                ))
                .await
                .map_err(anyhow::Error::from)?;
            let mut failed = false;
            for run in &runs {
                println!(
                    "{}{} {} in {} ms: {}{}{}",
                    if run.parent_run_id.is_some() {
                        "  after: "
                    } else {
                        ""
                    },
                    run.job,
                    run.status.as_str(),
                    run.duration_ms.unwrap_or(0),
                    run.stats,
                    run.message
                        .as_ref()
                        .map(|m| format!(" — {m}"))
                        .unwrap_or_default(),
                    run.error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
                failed |= !run.status.succeeded();
            }
            if failed {
                return Err(anyhow::anyhow!("a job run did not succeed").into());
            }
            Ok(())
        }
        Command::ApiKeys(action) => {
            let db = starting(connect(&settings).await)?;
            starting(
                db.run_migrations()
                    .await
                    .context("running database migrations"),
            )?;
            match action {
                ApiKeysCommand::Create { name, scope } => {
                    let created = api_keys::create(&db, &name, scope).await?;
                    println!(
                        "created API key {} ({}, scope {}). It is shown this once; only its hash is stored:\n\n    {}\n",
                        created.record.id, created.record.name, created.record.scope, created.secret
                    );
                }
                ApiKeysCommand::List => {
                    print!("{}", api_keys::format_list(&api_keys::list(&db).await?))
                }
                ApiKeysCommand::Revoke { id } => match api_keys::revoke(&db, id).await? {
                    Some(key) => println!(
                        "revoked API key {} ({}); running servers refuse it within {} ms",
                        key.id, key.name, settings.api_key_cache_ms
                    ),
                    None => return Err(anyhow::anyhow!("no API key with id {id}").into()),
                },
            }
            Ok(())
        }
        Command::Routing(action) => {
            let db = starting(connect(&settings).await)?;
            starting(
                db.run_migrations()
                    .await
                    .context("running database migrations"),
            )?;
            match action {
                RoutingCommand::Import { file } => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let version = routing::import(&db, &text)
                        .await
                        .with_context(|| format!("importing {}", file.display()))?;
                    println!("stored routing rules version {version}, in force now");
                }
                RoutingCommand::Export => print!("{}", routing::export(&db).await?),
            }
            Ok(())
        }
        Command::Replay { dataset } => {
            let components = starting(Components::build(&settings).await)?;
            let report = replay::replay(&components, &dataset)
                .await
                .with_context(|| format!("replaying {}", dataset.display()))?;
            print!("{report}");
            Ok(())
        }
        Command::Templates(TemplatesCommand::Check { dir }) => {
            let locale = starting(settings.locale())?;
            let overrides = dir.as_deref().or(settings.templates_override());
            let (set, problems) = starting(templates::check(overrides, locale).context(
                if dir.is_some() {
                    "DIR"
                } else {
                    "CLAIRON_TEMPLATES_DIR"
                },
            ))?;
            for problem in &problems {
                println!("{problem}");
            }
            if problems.is_empty() {
                println!(
                    "{} templates ({set}) render against the sample contexts",
                    set.len()
                );
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "{} template problem{} in {set}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )
                .into())
            }
        }
        // Done above, before the configuration is read.
        Command::Templates(TemplatesCommand::Export { .. }) => Ok(()),
    }
}

/// Opens the database for the commands that need it alone (`migrate`, `api-keys`).
async fn connect(settings: &Settings) -> anyhow::Result<clairon_adapters::persistence::Database> {
    clairon_adapters::persistence::Database::connect(&settings.database_url, 1)
        .await
        .context("CLAIRON_DATABASE_URL")
}

/// An error of the domain or the application, as the binary reports it.
fn anyhow_of(error: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
    anyhow::Error::new(error)
}
