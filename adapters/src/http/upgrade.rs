//! The HTTP server, with WebSocket upgrades taken out of actix-web's HTTP/1 dispatcher.
//!
//! [`LiveHttpServer`] is `actix_web::HttpServer` (same settings, same app factory, same
//! `listen` / `disable_signals` / `run`) plus actix-http's upgrade service: a request carrying
//! `Upgrade: websocket` leaves the connection's dispatcher and goes through the same app (every
//! middleware, the route, its extractors) on its own. When the answer is a `101 Switching
//! Protocols` whose extensions hold a [`Takeover`], the head is written, the dispatcher with its
//! buffers (8 KiB each way), its timers and its payload channel is dropped, and the bare
//! `TcpStream` (plus any bytes already read after the head) goes to the takeover, which spawns
//! the connection's one task. Any other answer to an upgrade request is written whole and the
//! connection closed (`Connection: close`).
//!
//! Why: an idle WebSocket through the dispatcher and `actix-ws` kept about 21 KB (the
//! dispatcher, its codec buffers, `actix-ws`'s session and stream channels and a task pair);
//! through the takeover it keeps its socket, one task and its hub queue (BENCHMARKS.md,
//! "Realtime at wire speed", third run).

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{self, BodySize, BoxBody, MessageBody};
use actix_http::header::HeaderValue;
use actix_http::{h1, ConnectionType, HttpService, KeepAlive, Request, Response, StatusCode};
use actix_rt::net::TcpStream;
use actix_server::{Server, ServerBuilder};
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt,
};
use actix_web::dev::AppConfig;
use bytes::BytesMut;
use futures_util::SinkExt;

/// Left in the extensions of a `101` answer by a handler that serves the upgraded connection
/// itself: called with the socket and the bytes the client sent after its request head (often
/// none), once the head of the answer is written. It spawns what serves the connection
/// (`actix_web::rt::spawn`: the worker's thread) and returns.
pub struct Takeover(Box<dyn FnOnce(TcpStream, BytesMut)>);

impl Takeover {
    /// A takeover running `serve` on the upgraded socket.
    pub fn new(serve: impl FnOnce(TcpStream, BytesMut) + 'static) -> Self {
        Self(Box::new(serve))
    }
}

impl fmt::Debug for Takeover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Takeover")
    }
}

/// `actix_web::HttpServer` with WebSocket upgrades served by [`Takeover`]s (see the module).
/// Settings are actix-web's defaults: keep-alive 5 s, client request timeout 5 s, client
/// disconnect timeout 1 s, half-closed connections allowed, one worker per CPU, graceful
/// shutdown of 30 s.
pub struct LiveHttpServer<F, I, S, B> {
    factory: F,
    builder: ServerBuilder,
    _app: PhantomData<AppTypes<I, S, B>>,
}

/// The app factory's types, for [`LiveHttpServer`]'s marker (no value of them is held).
type AppTypes<I, S, B> = fn() -> (I, S, B);

impl<F, I, S, B> LiveHttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    /// A server building one app per worker with `factory` (and one more per worker for the
    /// upgrade requests).
    pub fn new(factory: F) -> Self {
        Self {
            factory,
            builder: ServerBuilder::default(),
            _app: PhantomData,
        }
    }

    /// At most `threads` blocking threads per worker (tokio's blocking pool of the worker's
    /// runtime; at least 1). actix-server's default is 512 divided by the CPUs (256 each here),
    /// and every request's database call is a blocking task waiting for one of the pool's
    /// connections: a burst of 200 WebSocket handshakes (two database calls each) spawned about
    /// 500 threads, ~1 KB of stacks and arenas per connection at 10,000 until they exit 10 s
    /// later (BENCHMARKS.md, "Realtime at wire speed", fourth run). Threads beyond the database
    /// pool's size can only wait on it; with the cap such calls wait in tokio's queue instead.
    #[must_use]
    pub fn worker_max_blocking_threads(mut self, threads: usize) -> Self {
        self.builder = self.builder.worker_max_blocking_threads(threads.max(1));
        self
    }

    /// Leaves SIGINT/SIGTERM to the caller (who stops the server through its handle).
    #[must_use]
    pub fn disable_signals(mut self) -> Self {
        self.builder = self.builder.disable_signals();
        self
    }

    /// Serves HTTP/1.x on `listener`, as it is configured.
    ///
    /// # Errors
    /// When the listener's address cannot be read or it cannot be registered.
    pub fn listen(mut self, listener: std::net::TcpListener) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let factory = self.factory.clone();
        let shutdown = self.builder.graceful_shutdown_signal();
        self.builder =
            self.builder
                .listen(format!("clairon-http-{addr}"), listener, move || {
                    let shutdown = shutdown.clone();
                    let config = move || AppConfig::__priv_test_new(false, addr.to_string(), addr);
                    let upgrade_factory = factory.clone();
                    let upgrades = fn_factory(move || {
                        let app = upgrade_factory().into_factory();
                        async move {
                            let app = app
                                .new_service(config())
                                .await
                                .map_err(|e| format!("the app of upgrade requests: {e:?}"))?;
                            let app = Rc::new(app);
                            Ok::<_, String>(fn_service(
                                move |(req, framed): (Request, Framed<TcpStream, h1::Codec>)| {
                                    upgraded(app.clone(), req, framed)
                                },
                            ))
                        }
                    });
                    let app = factory()
                        .into_factory()
                        .map_err(|err| err.into().error_response());
                    HttpService::build()
                        .graceful_shutdown_signal(move || {
                            let signal = shutdown.clone();
                            async move { signal.notified().await }
                        })
                        .keep_alive(KeepAlive::default())
                        .client_request_timeout(Duration::from_secs(5))
                        .client_disconnect_timeout(Duration::from_secs(1))
                        .h1_allow_half_closed(true)
                        .local_addr(addr)
                        .upgrade(upgrades)
                        .finish(map_config(app, move |()| config()))
                        .tcp()
                })?;
        Ok(self)
    }

    /// Starts the workers; the returned [`Server`] resolves when they stop.
    pub fn run(self) -> Server {
        self.builder.run()
    }
}

/// `req` with its head copied out of the connection's read buffer. actix-http's header values
/// are slices of that buffer (8 KiB), and the app keeps up to 128 finished requests per worker
/// for reuse, heads included: every pooled head of an upgrade would keep its connection's whole
/// buffer alive after the handshake (up to 2 × 128 × 8 KiB here, about 0.4 KB per connection at
/// 10,000). The copy's values are small allocations of their own.
fn detached(req: Request) -> Request {
    let mut copy = Request::new();
    let from = req.head();
    let head = copy.head_mut();
    head.method = from.method.clone();
    head.uri = from.uri.clone();
    head.version = from.version;
    head.peer_addr = from.peer_addr;
    head.set_connection_type(from.connection_type());
    for (name, value) in from.headers.iter() {
        let mut owned = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        head.headers.append(name.clone(), owned);
    }
    copy
}

/// Runs an upgrade request through the app; hands the socket to the answer's [`Takeover`], or
/// writes the answer whole and closes.
async fn upgraded<S, B>(
    app: Rc<S>,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request>,
    S::Error: Into<actix_web::Error>,
    S::Response: Into<Response<B>>,
    B: MessageBody + 'static,
{
    let failed = actix_web::error::ErrorInternalServerError;
    let mut res: Response<BoxBody> = match app.call(detached(req)).await {
        Ok(res) => res.into().map_into_boxed_body(),
        Err(err) => err.into().error_response().into(),
    };
    let takeover = res.extensions_mut().remove::<Takeover>();
    let (mut head, body) = res.into_parts();
    match takeover {
        Some(Takeover(serve)) if head.status() == StatusCode::SWITCHING_PROTOCOLS => {
            framed
                .send(h1::Message::Item((head, BodySize::None)))
                .await
                .map_err(|e| failed(format!("writing the 101: {e}")))?;
            let parts = framed.into_parts();
            serve(parts.io, parts.read_buf);
            Ok(())
        }
        _ => {
            let bytes = body::to_bytes(body)
                .await
                .map_err(|e| failed(format!("the answer's body: {e}")))?;
            head.head_mut().set_connection_type(ConnectionType::Close);
            let size = BodySize::Sized(bytes.len() as u64);
            framed
                .send(h1::Message::Item((head, size)))
                .await
                .map_err(|e| failed(format!("writing the answer: {e}")))?;
            if !bytes.is_empty() {
                framed
                    .send(h1::Message::Chunk(Some(bytes)))
                    .await
                    .map_err(|e| failed(format!("writing the answer: {e}")))?;
            }
            framed
                .send(h1::Message::Chunk(None))
                .await
                .map_err(|e| failed(format!("writing the answer: {e}")))?;
            let _ = SinkExt::<h1::Message<(Response<()>, BodySize)>>::close(&mut framed).await;
            Ok(())
        }
    }
}
