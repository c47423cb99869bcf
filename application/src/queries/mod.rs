//! Queries: read models of the inbox and of deliveries. They never return aggregates.

pub mod export_recipient;
pub mod get_notification;
pub mod get_preferences;
pub mod list_consents;
pub mod list_deliveries;
pub mod list_job_runs;
pub mod list_notifications;
pub mod operations_stats;
pub mod unread_count;
mod views;

pub use export_recipient::{
    ExportRecipient, ExportRecipientError, ExportRecipientHandler, RecipientExportView,
    RecipientProfileView,
};
pub use get_notification::{GetNotification, GetNotificationError, GetNotificationHandler};
pub use get_preferences::{GetPreferences, GetPreferencesError, GetPreferencesHandler};
pub use list_consents::{ListConsents, ListConsentsError, ListConsentsHandler};
pub use list_deliveries::{
    DeliveryListItem, DeliveryListPage, ListDeliveries, ListDeliveriesError, ListDeliveriesHandler,
};
pub use list_job_runs::ListJobRunsHandler;
pub use list_notifications::{
    ListNotifications, ListNotificationsError, ListNotificationsHandler, NotificationPage,
};
pub use operations_stats::{
    job_stats, ChannelStats, GetOperationsStats, GetOperationsStatsHandler, JobStats,
    OperationsStats,
};
pub use unread_count::{UnreadCount, UnreadCountError, UnreadCountHandler};
pub use views::{
    AttemptView, ConsentView, DeliveryView, NotificationDetailsView, NotificationView,
};
