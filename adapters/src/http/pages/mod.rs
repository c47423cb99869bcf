//! The HTML pages: the notification center (`/inbox`, [`inbox`]), the operator's dashboard
//! (`/admin`, [`dashboard`], signed in through [`sessions`]) and the one-click unsubscribe page
//! of the emails (`/unsubscribe/{token}`, [`unsubscribe`]), their words in [`i18n`]. Every
//! page loads its scripts from `/static/…` (the CSP forbids inline script).

pub mod dashboard;
pub mod i18n;
pub mod inbox;
pub mod sessions;
pub mod unsubscribe;
