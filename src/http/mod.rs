//! The HTTP view (`--http-port`): Prometheus metrics, a live page of the window and
//! the JSON it polls. Read-only: nothing here changes the window or a setting.
//!
//! ```text
//! GET /             page.rs     the live page (one self-contained HTML file)
//! GET /metrics      metrics.rs  OpenMetrics text, read from the stats at each scrape
//! GET /api/window   api.rs      the window now: totals, per-second series, errors
//! GET /api/top      api.rs      top users and event types (EVT.TOP)
//! ```
//!
//! Adding an endpoint is one handler and one `.route` line in [`router`].
//!
//! # Where it runs, and what it costs the hot path
//!
//! [`Endpoint::bind`] binds the port in `server::build`, so a taken port fails the
//! start with a clear message; `server::serve` spawns [`run`] on the main thread's
//! runtime and the task ends at shutdown. Nothing is recorded per event or per command
//! for HTTP: every figure is read from [`crate::stats::Stats`] and the store when a
//! request asks for it, as `INFO` reads them. A request takes each store shard's lock
//! for the time of one read, never longer. Reading and encoding (`/metrics` takes
//! about a millisecond) run on the runtime's blocking pool, so the main thread, which
//! also serves clients, only parses requests and writes responses.
//!
//! # Limits
//!
//! The connection loop is hyper's HTTP/1 server with bounds an exposed port needs:
//! [`MAX_CONNECTIONS`] at once (more are closed at accept), request heads of at most
//! [`MAX_REQUEST_HEAD`] bytes, arriving within [`HEADER_READ_TIMEOUT`] (this also
//! closes idle keep-alive connections), and every connection closed after
//! [`MAX_CONNECTION_AGE`] (a client that stops reading cannot keep its slot).
//!
//! # Access
//!
//! With a password set (`--requirepass` or `CONFIG SET requirepass`, read at every
//! request) every path needs it, as HTTP basic auth (any user name) or a bearer
//! token; otherwise 401 with `WWW-Authenticate: Basic`. Protected mode applies as on
//! the RESP port: listening on a non-loopback address without a password, only
//! loopback peers are served.

mod api;
mod auth;
mod metrics;
mod page;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::shared::Shared;

/// HTTP connections served at once; more are closed as soon as they are accepted.
/// A page polls over one connection and a scraper uses one: 64 leaves room for many
/// viewers while bounding what a flood of connections can hold.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request's head, counted from the moment the server
/// waits for one: a slow sender is closed, and so is a keep-alive connection idle
/// this long (the live page polls every second, well within it).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) in bytes; every request this
/// server answers fits in a few hundred. hyper refuses values below 8 KiB.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Age at which a connection is asked to close after its current response; a
/// browser reconnects for its next poll. Bounds how long a client that stops
/// reading its responses holds a slot.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// Time a connection has to finish its response once asked to close (at its age
/// limit or at shutdown) before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

const _: () = assert!(MAX_REQUEST_HEAD >= 8192, "hyper's minimum buffer size");

/// The HTTP listener: bound by `server::build` (so a taken port fails the start),
/// served by [`spawn`].
#[derive(Debug, Default)]
pub struct Endpoint {
    addr: Option<SocketAddr>,
    /// Taken once, by [`spawn`]; a lock only because `Shared` is shared.
    listener: Mutex<Option<std::net::TcpListener>>,
}

impl Endpoint {
    /// Binds `bind:port`, or nothing without a port.
    pub fn bind(bind: IpAddr, port: Option<u16>) -> std::io::Result<Endpoint> {
        let Some(port) = port else {
            return Ok(Endpoint::default());
        };
        let listener = std::net::TcpListener::bind(SocketAddr::new(bind, port))?;
        // Tokio takes over the socket in `spawn`, which needs it non-blocking.
        listener.set_nonblocking(true)?;
        Ok(Endpoint {
            addr: Some(listener.local_addr()?),
            listener: Mutex::new(Some(listener)),
        })
    }

    /// The address the HTTP view listens on, if it is on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    fn take(&self) -> Option<std::net::TcpListener> {
        self.listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Starts serving the HTTP view on the current runtime, if it is on. The task ends
/// once shutdown has begun and its connections have closed.
pub fn spawn(shared: &Arc<Shared>) -> Option<JoinHandle<()>> {
    let listener = shared.http.take()?;
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve HTTP");
            return None;
        }
    };
    if let Some(addr) = shared.http.addr() {
        tracing::info!("http listening on http://{addr}/");
    }
    Some(tokio::spawn(run(shared.clone(), listener)))
}

/// What every request handler gets.
#[derive(Debug)]
struct App {
    shared: Arc<Shared>,
    metrics: prometheus_client::registry::Registry,
}

/// The peer of the connection a request came on.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Every path the view serves. All of them pass through [`guard`] first.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/metrics", get(metrics::scrape))
        .route("/api/window", get(api::window))
        .route("/api/top", get(api::top))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Protected mode and the password, then the handler; every response is marked
/// not to be cached (it is the state of a moment) nor sniffed.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let shared = &app.shared;
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    let mut resp = match auth::check(shared, peer, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.respond(shared, peer).await,
    };
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Accepts HTTP connections until shutdown begins, then lets each finish its
/// response (at most [`CLOSE_GRACE`]).
async fn run(shared: Arc<Shared>, listener: TcpListener) {
    let mut registry = prometheus_client::registry::Registry::with_prefix(metrics::PREFIX);
    registry.register_collector(Box::new(metrics::Collector::new(shared.clone())));
    let app = Arc::new(App {
        shared: shared.clone(),
        metrics: registry,
    });
    let router = router(app);
    let mut stop = shared.shutdown.subscribe();
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // (The guard `wait_for` returns must not live across an await.)
            _ = async { stop.wait_for(|s| *s).await.is_ok() } => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if connections.len() >= MAX_CONNECTIONS {
                        if let Some(suppressed) = shared.may_log() {
                            tracing::warn!(%peer, suppressed, max = MAX_CONNECTIONS, "too many HTTP connections; closed");
                        }
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    connections.spawn(serve_connection(socket, peer, router.clone(), closing_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    closing.send_replace(true);
    let drained = tokio::time::timeout(CLOSE_GRACE * 2, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.abort_all();
    }
}

/// Serves one connection: HTTP/1 with keep-alive, within the limits of the module.
async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut closing: watch::Receiver<bool>,
) {
    let routes = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        hyper::service::Service::call(&routes, req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD);
    let conn = builder.serve_connection(TokioIo::new(socket), service);
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(MAX_CONNECTION_AGE);
    tokio::pin!(deadline);
    let mut asked_to_close = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = async { closing.wait_for(|c| *c).await.is_ok() }, if !asked_to_close => {}
            _ = &mut deadline => {
                // Asked to close and still not done: the client is not reading.
                if asked_to_close {
                    return;
                }
            }
        }
        conn.as_mut().graceful_shutdown();
        asked_to_close = true;
        deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + CLOSE_GRACE);
    }
}
