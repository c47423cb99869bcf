//! A Rust host application publishing a planning event on Clairon's in-process bus, no HTTP.
//!
//! `cargo run -p clairon-bootstrap --example publish_from_host` — uses a throwaway SQLite
//! database and writes the emails as `.eml` files in a temp dir.

use chrono::{TimeZone as _, Utc};
use clairon_application::commands::UpsertRecipients;
use clairon_application::events::DomainEvent;
use clairon_bootstrap::{Components, Settings};
use clairon_domain::{
    Contact, DisplayName, EmailAddress, Locale, Location, PlanningEvent, PlanningEventId,
    PlanningEventKind, PlanningId, PlanningSnapshot, Recipient, RecipientId, Schedule, TimeZone,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        database_url: format!("sqlite://{}", dir.path().join("host.db").display()),
        email_outbox_dir: dir.path().join("outbox"),
        api_keys: "unused-here".into(),
        ..Settings::default()
    };
    let clairon = Components::build(&settings).await?;

    // The host's users become recipients (normally once, then on every profile change).
    let zoe = Recipient {
        id: RecipientId::parse("artist-0001")?,
        name: DisplayName::parse("Zoé Tremblay")?,
        email: Some(EmailAddress::parse("zoe@example.org")?),
        telegram_chat_id: None,
        phone: None,
        locale: Some(Locale::Fr),
        timezone: Some(TimeZone::parse("America/Montreal")?),
        telegram_unreachable: None,
        webhook_url: None,
        webhook_secret: None,
        webhook_disabled: None,
        slack_webhook_url: None,
        slack_unreachable: None,
    };
    clairon
        .handlers
        .upsert_recipients
        .execute(UpsertRecipients {
            recipients: vec![zoe],
        })
        .await?;

    // Something happened in the host: Zoé was assigned to a performance.
    let montreal = TimeZone::parse("America/Montreal")?;
    let event = PlanningEvent::new(
        PlanningEventId::parse("evt-host-1")?,
        PlanningEventKind::Assigned,
        Utc::now(),
        PlanningSnapshot::new(
            PlanningId::parse("pl-host-1")?,
            "Représentation — Carmen",
            Location::new(
                "Théâtre Outremont",
                "1248 Av. Bernard O, Montréal, QC H2V 1V6",
            )?,
            Schedule::new(
                Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0)
                    .single()
                    .expect("a valid time"),
                Utc.with_ymd_and_hms(2027, 3, 17, 2, 15, 0)
                    .single()
                    .expect("a valid time"),
                montreal,
            )?,
            Contact::new("Samir Nguyễn", Some("+15145550030"), None)?,
        )?,
        vec![RecipientId::parse("artist-0001")?],
        vec![],
        vec![],
    )?;
    let created = clairon.bus.publish(&DomainEvent::Planning(event)).await?;
    println!("{} notification(s) written to the outbox", created.len());

    let sent = clairon.drain().await?;
    println!(
        "{sent} deliveries processed; emails in {}",
        settings.email_outbox_dir.display()
    );
    Ok(())
}
