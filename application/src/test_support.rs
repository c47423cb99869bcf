//! Builders shared by the handlers' unit tests.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{TimeZone as _, Utc};
use clairon_domain::{
    Body, DeliveryId, DisplayName, EmailAddress, EventType, Locale, Metadata, Notification,
    NotificationId, NotificationKind, Priority, Recipient, RecipientId, TelegramChatId, TimeZone,
    Title,
};

use crate::commands::NotificationDraft;
use crate::ports::{MockClock, MockIdGenerator};

pub fn recipient(id: &str) -> Recipient {
    Recipient {
        id: RecipientId::parse(id).unwrap(),
        name: DisplayName::parse("Zoé Tremblay").unwrap(),
        email: Some(EmailAddress::parse(&format!("{id}@example.org")).unwrap()),
        telegram_chat_id: Some(TelegramChatId::parse("100000001").unwrap()),
        phone: None,
        locale: Some(Locale::Fr),
        timezone: Some(TimeZone::parse("America/Montreal").unwrap()),
        telegram_unreachable: None,
        webhook_url: None,
        webhook_secret: None,
        webhook_disabled: None,
        slack_webhook_url: None,
        slack_unreachable: None,
    }
}

pub fn draft(recipient_id: &str) -> NotificationDraft {
    NotificationDraft {
        recipient_id: RecipientId::parse(recipient_id).unwrap(),
        kind: NotificationKind::Info,
        priority: Priority::Normal,
        title: Title::parse("Nouvelle affectation").unwrap(),
        body: Body::parse("Vous êtes affectée à Carmen.").unwrap(),
        action_url: None,
        action_label: None,
        metadata: Metadata::new(),
        event_type: EventType::parse("custom").unwrap(),
        source_event_id: None,
        channels: None,
        rule: None,
        fallback: Vec::new(),
    }
}

pub fn notification(id: &str, recipient_id: &str) -> Notification {
    Notification {
        id: NotificationId::parse(id).unwrap(),
        recipient_id: RecipientId::parse(recipient_id).unwrap(),
        kind: NotificationKind::Info,
        priority: Priority::Normal,
        title: Title::parse("Titre").unwrap(),
        body: Body::parse("Corps").unwrap(),
        action_url: None,
        action_label: None,
        metadata: Metadata::new(),
        event_type: EventType::parse("custom").unwrap(),
        source_event_id: None,
        created_at: Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap(),
        read_at: None,
    }
}

pub fn fixed_clock() -> MockClock {
    let mut clock = MockClock::new();
    clock
        .expect_now()
        .returning(|| Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap());
    clock
}

pub fn sequential_ids() -> MockIdGenerator {
    let mut ids = MockIdGenerator::new();
    let notifications = AtomicU32::new(0);
    let deliveries = AtomicU32::new(0);
    ids.expect_notification_id().returning(move || {
        NotificationId::parse(&format!(
            "n-{}",
            notifications.fetch_add(1, Ordering::Relaxed) + 1
        ))
        .unwrap()
    });
    ids.expect_delivery_id().returning(move || {
        DeliveryId::parse(&format!(
            "d-{}",
            deliveries.fetch_add(1, Ordering::Relaxed) + 1
        ))
        .unwrap()
    });
    ids
}
