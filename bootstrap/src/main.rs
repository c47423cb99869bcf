//! The `clairon` binary: `serve` (the default), `migrate`, `send-test`, `replay`, `api-keys`.

use std::path::PathBuf;

use anyhow::Context as _;
use clairon_application::commands::{SendTestNotification, TestTarget};
use clairon_bootstrap::{api_keys, replay, telemetry, Application, Components, Settings};
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
    /// Run one background job now (`lease_reaper`, `retention`, `idempotency_purge`), record
    /// the run (trigger `manual`) and print it.
    RunJob {
        /// The job's name.
        job: String,
    },
    /// Manage the API keys stored in the database (CLAIRON_API_KEYS keys are always admin).
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let settings = Settings::load()?;
    telemetry::init_with_secrets(&settings.log, &settings.log_format, settings.secrets());
    tracing::debug!(?settings, "configuration");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate => {
            let db =
                clairon_adapters::persistence::Database::connect(&settings.database_url, 1).await?;
            db.run_migrations().await?;
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
                Some(id) => TestTarget::Recipient(RecipientId::parse(&id)?),
                None => TestTarget::Addresses {
                    email: email.as_deref().map(EmailAddress::parse).transpose()?,
                    telegram_chat_id: telegram_chat_id
                        .as_deref()
                        .map(TelegramChatId::parse)
                        .transpose()?,
                },
            };
            let channels = channels
                .as_deref()
                .map(ChannelSet::parse_list)
                .transpose()?;
            let components = Components::build(&settings).await?;
            let results = components
                .handlers
                .send_test
                .execute(SendTestNotification { target, channels })
                .await?;
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
                anyhow::bail!("at least one channel failed");
            }
            Ok(())
        }
        Command::RunJob { job } => {
            let job = clairon_application::ports::Job::parse(&job).with_context(|| {
                format!("unknown job {job:?}: lease_reaper, retention or idempotency_purge")
            })?;
            let components = Components::build(&settings).await?;
            let run = components
                .run_job
                .execute(clairon_application::commands::RunJob {
                    job,
                    trigger: clairon_application::ports::JobTrigger::Manual,
                })
                .await?;
            println!(
                "{} {} in {} ms: {}{}",
                run.job.as_str(),
                run.status.as_str(),
                run.duration_ms,
                run.stats,
                run.error.map(|e| format!(" ({e})")).unwrap_or_default()
            );
            Ok(())
        }
        Command::ApiKeys(action) => {
            let db =
                clairon_adapters::persistence::Database::connect(&settings.database_url, 1).await?;
            db.run_migrations().await?;
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
                    None => anyhow::bail!("no API key with id {id}"),
                },
            }
            Ok(())
        }
        Command::Replay { dataset } => {
            let components = Components::build(&settings).await?;
            let report = replay::replay(&components, &dataset)
                .await
                .with_context(|| format!("replaying {}", dataset.display()))?;
            print!("{report}");
            Ok(())
        }
    }
}
