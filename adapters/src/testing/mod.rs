//! Test doubles of the outside world, for this crate's tests and the end-to-end tests (feature
//! `test-support`): real servers on loopback that stand in for the providers.
//!
//! - [`telegram_stub::TelegramStub`]: an HTTP server playing the Telegram Bot API's
//!   `sendMessage`, checking every request against the documented shape and recording the valid
//!   ones, with scripted failures.
//! - [`smtp_sink::SmtpSink`]: a real SMTP server (`tests/support/smtp_sink.py`, Python's
//!   `aiosmtpd`) that stores every accepted message and can answer scripted reply codes.
//!
//! - [`push_stub::PushStub`]: a Web Push service playing one browser's subscription, checking
//!   the VAPID JWT with OpenSSL and decrypting the payload with Mozilla's `ece`.
//!
//! - [`twilio_stub::TwilioStub`]: Twilio's Messages API (SMS and WhatsApp), checking the
//!   path, Basic auth, form body and E.164 numbers, with scripted Twilio errors.
//! - [`webhook_stub::WebhookStub`]: a receiver of signed webhooks (Standard Webhooks 1.0) that
//!   checks the headers and body shape, records requests and answers scripted statuses;
//!   [`webhook_stub::verify_with_reference`] checks a signature with the reference library.
//! - [`slack_stub::SlackStub`]: Slack's incoming webhooks, checking the JSON and Block Kit
//!   shape, with scripted Slack answers (429 + `Retry-After`, `no_service`, `invalid_token`,
//!   `channel_not_found`, 500).
//!
//! Nothing here is compiled into the service itself.

use actix_web::dev::ServerHandle;
use actix_web::{web, App, FromRequest, Handler, HttpServer, Responder};

pub mod push_stub;
pub mod slack_stub;
pub mod smtp_sink;
pub mod telegram_stub;
pub mod twilio_stub;
pub mod webhook_stub;

pub use push_stub::{PushStub, ReceivedPush};
pub use slack_stub::{ReceivedSlackMessage, SlackAnswer, SlackStub};
pub use smtp_sink::{ParsedMailbox, ReceivedEmail, SmtpAttempt, SmtpSink};
pub use telegram_stub::{ReceivedTelegramMessage, StubChatId, TelegramStub};
pub use twilio_stub::{ReceivedSms, TwilioStub};
pub use webhook_stub::{verify_with_reference, ReceivedWebhook, WebhookStub};

/// Serves `answer` for every request on `listener`, with `state` as app data, on a thread of
/// its own named `name` (one worker, no signal handling, 1 s shutdown): the provider stand-ins'
/// server. Returns once it listens.
///
/// # Panics
/// When the thread cannot be spawned or the server cannot listen: a test cannot go on then.
pub(crate) async fn serve_stand_in<S, F, Args>(
    name: String,
    listener: std::net::TcpListener,
    state: web::Data<S>,
    answer: F,
) -> ServerHandle
where
    S: Send + Sync + 'static,
    F: Handler<Args> + Clone + Send + 'static,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<std::io::Result<ServerHandle>>();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .default_service(web::to(answer.clone()))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener);
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = ready_tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            });
        })
        .unwrap_or_else(|e| panic!("the {name} thread could not be spawned: {e}"));
    ready_rx
        .await
        .expect("the stand-in's thread ended before it was ready")
        .expect("the stand-in could not listen on its port")
}
