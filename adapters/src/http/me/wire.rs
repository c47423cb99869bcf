//! One upgraded WebSocket connection on its bare socket (RFC 6455 framing by actix-http's
//! `ws` codec): frames in through a buffer that is released as soon as it is drained, frames
//! out written straight from the shared, once-serialized frame bytes. An idle connection holds
//! its socket, an empty buffer and the codec's two words — no buffer, no channel, no second
//! task (see `http::upgrade`).

use std::io;
use std::time::Duration;

use actix_codec::Decoder;
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, OpCode, Parser, ProtocolError};
use actix_rt::net::TcpStream;
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;

/// The largest client frame accepted, in bytes: client messages are a few dozen bytes of JSON
/// (`mark_read`); anything larger is closed with 1009 (message too big).
const MAX_CLIENT_FRAME: usize = 4 * 1024;
/// Bytes read from the socket per `read` call (on the stack, not kept).
const READ_CHUNK: usize = 2 * 1024;
/// How long a closing connection waits for the client's own close before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What the client sent, as the session needs it.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A text message (one frame; fragmented messages are ignored, as before).
    Text(Bytes),
    /// A ping, to be answered with a pong carrying the same bytes.
    Ping(Bytes),
    /// The client closes (its reason, echoed back).
    Close(Option<CloseReason>),
    /// Anything else (pong, binary, continuation): proof of life only.
    Other,
}

/// An upgraded WebSocket connection (server side).
pub(crate) struct Wire {
    io: TcpStream,
    /// Bytes read and not yet decoded; unallocated while empty.
    pending: BytesMut,
    /// Whether `pending` holds bytes not decoded yet (the handshake's leftover): the next
    /// [`Wire::readable`] returns at once.
    primed: bool,
    codec: Codec,
}

impl Wire {
    /// The connection on `io`, with the bytes the client sent after its handshake.
    pub(crate) fn new(io: TcpStream, leftover: BytesMut) -> Self {
        let pending = if leftover.is_empty() {
            BytesMut::new()
        } else {
            BytesMut::from(&leftover[..])
        };
        Self {
            io,
            primed: !pending.is_empty(),
            pending,
            codec: Codec::new().max_size(MAX_CLIENT_FRAME),
        }
    }

    /// Waits until the client sent something (or the socket is readable at end of stream).
    pub(crate) async fn readable(&self) -> io::Result<()> {
        if self.primed {
            Ok(())
        } else {
            self.io.readable().await
        }
    }

    /// Reads what the socket holds, without waiting, and decodes every complete frame.
    /// `Ok(None)`: the client is gone (end of stream).
    ///
    /// # Errors
    /// A socket error, or a protocol error (unmasked or oversized frame, bad opcode) as the
    /// close code to answer with.
    pub(crate) fn read(&mut self) -> Result<Option<Vec<Incoming>>, Option<CloseCode>> {
        self.primed = false;
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.io.try_read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    // Decode what came before reading more: a flood stays in the kernel's
                    // buffer (and the socket stays readable), not in ours.
                    if n < chunk.len() || self.pending.len() >= 4 * READ_CHUNK {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(None),
            }
        }
        let mut frames = Vec::new();
        loop {
            match self.codec.decode(&mut self.pending) {
                Ok(Some(frame)) => frames.push(match frame {
                    Frame::Text(text) => Incoming::Text(text),
                    Frame::Ping(bytes) => Incoming::Ping(bytes),
                    Frame::Close(reason) => Incoming::Close(reason),
                    Frame::Binary(_) | Frame::Pong(_) | Frame::Continuation(_) => Incoming::Other,
                }),
                Ok(None) => break,
                Err(ProtocolError::Overflow) => return Err(Some(CloseCode::Size)),
                Err(_) => return Err(Some(CloseCode::Protocol)),
            }
        }
        if self.pending.is_empty() {
            // Release the buffer: an idle connection keeps none.
            self.pending = BytesMut::new();
        }
        Ok(Some(frames))
    }

    /// Writes `payloads` as text frames, in order, in one write.
    ///
    /// # Errors
    /// When the socket is gone.
    pub(crate) async fn text(&mut self, payloads: &[Bytes]) -> io::Result<()> {
        let size: usize = payloads.iter().map(|p| p.len() + 10).sum();
        let mut out = BytesMut::with_capacity(size);
        for payload in payloads {
            Parser::write_message(&mut out, payload, OpCode::Text, true, false);
        }
        self.io.write_all(&out).await
    }

    /// Writes one control frame (ping or pong) carrying `payload` (at most 125 bytes).
    ///
    /// # Errors
    /// When the socket is gone.
    pub(crate) async fn control(&mut self, op: OpCode, payload: &[u8]) -> io::Result<()> {
        let mut out = BytesMut::with_capacity(payload.len() + 2);
        Parser::write_message(&mut out, payload, op, true, false);
        self.io.write_all(&out).await
    }

    /// Sends a close frame (with `reason`), then waits a little for the client's close or its
    /// end of stream so that the close frame is read before the socket goes (dropping a socket
    /// with unread bytes resets the connection, and the client may lose the frame).
    pub(crate) async fn close(mut self, reason: Option<CloseReason>) {
        let mut out = BytesMut::new();
        Parser::write_close(&mut out, reason, false);
        if self.io.write_all(&out).await.is_err() {
            return;
        }
        let _ = self.io.flush().await;
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            loop {
                if self.io.readable().await.is_err() {
                    return;
                }
                match self.read() {
                    Ok(Some(frames)) => {
                        if frames.iter().any(|f| matches!(f, Incoming::Close(_))) {
                            return;
                        }
                    }
                    Ok(None) | Err(_) => return,
                }
            }
        })
        .await;
        let _ = self.io.shutdown().await;
    }
}
