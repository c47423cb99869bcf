//! Clairon's use cases.
//!
//! Commands change state (`CreateNotification`, `HandlePlanningEvent`, `MarkNotificationRead`,
//! ...), queries return read models (`NotificationView`, `UnreadCount`), and both reach the world
//! only through the [`ports`]. The in-process [`events::EventBus`] carries domain events from
//! producers (the HTTP endpoint, a Rust host application) to listeners such as
//! [`events::PlanningListener`]. The [`dispatch::DeliveryDispatcher`] sends what the outbox holds; [`live::PublishAtCommit`] publishes
//! in-app notifications right after the transaction that wrote them.
//!
//! Nothing here knows actix, Diesel, lettre, frankenstein or Tera.

pub mod alerts;
pub mod commands;
pub mod dead_letters;
pub mod digests;
pub mod dispatch;
pub mod events;
pub mod host_events;
pub mod live;
pub mod ports;
pub mod queries;
pub mod routing;
pub mod scheduler;
pub mod slack;
pub mod webhook;

#[cfg(test)]
mod test_support;
