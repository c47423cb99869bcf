//! The HTML pages: the notification center (`/inbox`, [`inbox`]) and the operator's dashboard
//! (`/admin`, [`dashboard`], signed in through [`sessions`]), their words in [`i18n`]. Every
//! page loads its scripts from `/static/…` (the CSP forbids inline script).

pub mod dashboard;
pub mod i18n;
pub mod inbox;
pub mod sessions;
