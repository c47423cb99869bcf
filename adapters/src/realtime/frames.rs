//! The frames of the live inbox, serialized once per event and shared ([`Bytes`]) by every
//! open connection of the recipient: the JSON text of a WebSocket frame, and the same JSON
//! wrapped as a Server-Sent Event (WHATWG HTML § 9.2).

use bytes::Bytes;
use clairon_domain::{Metadata, Notification, NotificationId};
use serde::Serialize;

/// A notification as live clients see it.
#[derive(Debug, Serialize)]
pub struct LiveNotification<'a> {
    /// UUIDv7.
    pub id: &'a str,
    /// Its place in the recipient's feed (1, 2, 3…).
    pub seq: u64,
    /// `info|success|warning|error`.
    pub kind: &'static str,
    /// Title.
    pub title: &'a str,
    /// Plain-text body.
    pub body: &'a str,
    /// Call-to-action URL.
    pub action_url: Option<&'a str>,
    /// Call-to-action label.
    pub action_label: Option<&'a str>,
    /// The producer's data, as sent.
    pub metadata: &'a Metadata,
    /// `planning.assigned`, `custom`, …
    pub event_type: &'a str,
    /// RFC 3339.
    pub created_at: String,
    /// Whether it was read.
    pub read: bool,
}

impl<'a> LiveNotification<'a> {
    /// Notification `n`, number `seq` of its recipient's feed.
    pub fn new(seq: u64, n: &'a Notification) -> Self {
        Self {
            id: n.id.as_str(),
            seq,
            kind: n.kind.as_str(),
            title: n.title.as_str(),
            body: n.body.as_str(),
            action_url: n.action_url.as_ref().map(|u| u.as_str()),
            action_label: n.action_label.as_ref().map(|l| l.as_str()),
            metadata: &n.metadata,
            event_type: n.event_type.as_str(),
            created_at: n.created_at.to_rfc3339(),
            read: n.is_read(),
        }
    }
}

/// A frame of the live inbox: a WebSocket text frame, or the `data:` of an SSE event; JSON
/// with its kind in `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum LiveFrame<'a> {
    /// A new notification.
    #[serde(rename = "notification.created")]
    Created {
        /// It.
        notification: LiveNotification<'a>,
    },
    /// Notifications read (here or elsewhere).
    #[serde(rename = "notification.read")]
    Read {
        /// Their ids.
        ids: &'a [NotificationId],
    },
    /// The unread count now.
    #[serde(rename = "unread_count")]
    UnreadCount {
        /// Unread notifications that are due and not cancelled.
        count: u64,
    },
    /// Events were lost: refetch the list.
    #[serde(rename = "resync")]
    Resync,
    /// A client frame was refused (nothing was done).
    #[serde(rename = "error")]
    Error {
        /// Why.
        message: &'a str,
        /// Over the rate limit: seconds until a frame is taken again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

impl LiveFrame<'_> {
    /// As JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// As JSON text, in shareable bytes.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// The `notification.created` frame of notification `n`, number `seq`.
pub fn created(seq: u64, n: &Notification) -> Bytes {
    LiveFrame::Created {
        notification: LiveNotification::new(seq, n),
    }
    .to_bytes()
}

/// The `notification.read` frame of `ids`.
pub fn read(ids: &[NotificationId]) -> Bytes {
    LiveFrame::Read { ids }.to_bytes()
}

/// The `unread_count` frame.
pub fn count(count: u64) -> Bytes {
    LiveFrame::UnreadCount { count }.to_bytes()
}

/// The `resync` frame.
pub fn resync() -> Bytes {
    LiveFrame::Resync.to_bytes()
}

/// One SSE event: `id:` (when given), `event:` and `data:` lines, then the blank line. `data`
/// is one line of JSON (serde_json escapes line breaks inside strings).
pub fn sse_event(event: &str, id: Option<u64>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + event.len() + 32);
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The frames of one event, built once for every connection of its recipient: the WebSocket
/// text frames in order, and the SSE chunk carrying the same events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// WebSocket text frames (JSON), in order.
    pub ws: Vec<Bytes>,
    /// The same events as one SSE chunk.
    pub sse: Bytes,
}

impl Framed {
    /// A notification (`created`, [`created`]) and the unread count after it.
    pub fn created(seq: u64, created_json: Bytes, unread: u64) -> Self {
        let count_json = count(unread);
        let mut sse = sse_event("notification.created", Some(seq), &created_json).to_vec();
        sse.extend_from_slice(&sse_event("unread_count", None, &count_json));
        Self {
            ws: vec![created_json, count_json],
            sse: Bytes::from(sse),
        }
    }

    /// Notifications read, and the unread count after it.
    pub fn read(ids: &[NotificationId], unread: u64) -> Self {
        let read_json = read(ids);
        let count_json = count(unread);
        let mut sse = sse_event("notification.read", None, &read_json).to_vec();
        sse.extend_from_slice(&sse_event("unread_count", None, &count_json));
        Self {
            ws: vec![read_json, count_json],
            sse: Bytes::from(sse),
        }
    }
}
