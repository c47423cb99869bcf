//! Links Clairon writes into messages that point back at itself: today the one-click
//! unsubscribe link of an email (RFC 8058). The application decides when a message carries one;
//! the adapter knows the public base URL and how the link is signed.

use clairon_domain::{EventType, RecipientId};

/// Makes the one-click unsubscribe link of a recipient's emails of one event type.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait UnsubscribeLinks: Send + Sync {
    /// The absolute `http(s)` URL that, `POST`ed with `List-Unsubscribe=One-Click` (RFC 8058
    /// §3.1), switches `recipient`'s email off for `event_type`
    /// (`{CLAIRON_PUBLIC_URL}/unsubscribe/{token}`). It MUST be verifiable without storage and
    /// stay valid for as long as the signing secret does, MUST NOT be forgeable for another
    /// recipient or event type, and MUST be a single line of URL characters (it goes into the
    /// `List-Unsubscribe` header). Never fails.
    fn unsubscribe_url(&self, recipient: &RecipientId, event_type: &EventType) -> String;
}
