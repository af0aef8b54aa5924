//! The server: accepts connections, runs the background sweep, and stops gracefully.
//!
//! [`build`] takes a bound listener and [`serve`] a shutdown future, so tests bind
//! `127.0.0.1:0`, start a server inside the test, and stop it when they are done.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::alloc;
use crate::clients::Clients;
use crate::clock::Clock;
use crate::config::{Config, Settings};
use crate::connection;
use crate::http;
use crate::persist::log::Log;
use crate::persist::snapshot::{self, SnapshotFile};
use crate::persist::{self, StopError};
use crate::shared::{LogFilterSetter, RateLimiter, Shared};
use crate::stats::Stats;
use crate::store::{EXPIRE_BUDGET, Store};

/// How long shutdown waits for connections to write their last replies before it
/// closes them anyway (a client that stopped reading must not hold the server up).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Hooks the binary gives the server.
#[derive(Default)]
pub struct Options {
    /// Applies a new log filter for `CONFIG SET loglevel`.
    pub set_log_filter: Option<LogFilterSetter>,
    /// More single-threaded runtimes to serve connections on, besides the one running
    /// [`serve`]: connections are dealt round-robin and each stays on its thread.
    pub workers: Vec<tokio::runtime::Handle>,
}

/// A built server, to serve and to look at from the outside.
#[derive(Debug, Clone)]
pub struct Handle(pub(crate) Arc<Shared>);

impl Handle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.0.local_addr
    }

    /// The address of the HTTP view (`--http-port`), if it is on.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.0.http.addr()
    }

    /// Events counted since the start.
    pub fn events_accepted(&self) -> u64 {
        self.0.stats.events_accepted.get()
    }

    /// Threads serving clients.
    pub fn threads(&self) -> usize {
        self.0.workers.len() + 1
    }

    /// Shards of the store.
    pub fn shards(&self) -> usize {
        self.0.store.shard_count()
    }

    /// The clock's mode, by name.
    pub fn clock_mode(&self) -> &'static str {
        self.0.clock.mode().name()
    }
}

/// Why the server could not start.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the shared state for a server listening on `listener`, loading the
/// snapshot if one is configured.
pub fn build(
    listener: &TcpListener,
    config: Config,
    options: Options,
) -> Result<Handle, StartError> {
    let local_addr = listener.local_addr()?;
    let cluster = crate::cluster::from_config(&config, local_addr.port())?;
    let clock = Clock::new(config.clock, config.clock_start);
    let snapshot_path = config.snapshot_path();
    let saved = match &snapshot_path {
        Some(path) => {
            let saved = snapshot::read(path)?;
            snapshot::check_writable(path).map_err(|e| {
                format!("{e}; the snapshot could not be saved there (check that the directory exists and is writable, or change --snapshot)")
            })?;
            saved
        }
        None => None,
    };
    // The log decides whether the snapshot still counts (a FLUSHALL since?).
    let (log, opened) = Log::open(&config, saved.as_ref().map(|s| s.log_gen))?;
    let saved = saved.filter(|_| opened.use_snapshot);
    if let Some(s) = &saved {
        clock.resume(snapshot::resume_now(config.clock, clock.now(), s.saved_now));
        let path = snapshot_path.as_deref().unwrap_or(std::path::Path::new(""));
        if let Some(why) =
            snapshot::clock_mismatch(s, config.clock, clock.now(), config.window, path)
        {
            return Err(why.into());
        }
    }
    // The event and manual clocks resume where the log stopped, if it went on after
    // the snapshot; the store is built at that `now`.
    if let Some(log_now) = opened.log_now {
        let floor = saved.as_ref().map_or(log_now, |s| s.saved_now.max(log_now));
        clock.resume(floor.max(0));
    }
    let http = http::Endpoint::bind(config.bind, config.http_port).map_err(|e| {
        format!(
            "cannot listen for HTTP on {}:{}: {e}; choose another --http-port",
            config.bind,
            config.http_port.unwrap_or(0)
        )
    })?;
    let store = Store::new(config.window, config.store_shards(), clock.now());
    if let (Some(s), Some(path)) = (&saved, &snapshot_path) {
        let loaded = snapshot::apply(&store, cluster.as_deref(), clock.now(), s);
        if loaded.foreign_records > 0 {
            tracing::warn!(
                records = loaded.foreign_records,
                "snapshot records of users served by other nodes dropped"
            );
        }
        tracing::info!(
            path = %path.display(),
            records = loaded.records,
            events = loaded.events,
            dropped_records = loaded.dropped_records,
            "snapshot loaded"
        );
    }
    // Before anything is written (the log may be switched on at run time).
    persist::log::ignore_file_size_signal();
    let (shutdown, _) = watch::channel(false);
    let slowlog = crate::observe::SlowLog::new(
        config.slowlog_log_slower_than,
        usize::try_from(config.slowlog_max_len).unwrap_or(usize::MAX),
    );
    let latency =
        crate::observe::Latency::new(u64::try_from(config.latency_monitor_threshold).unwrap_or(0));
    Ok(Handle(Arc::new(Shared {
        settings: Settings::from_config(&config),
        config,
        store: Arc::new(store),
        clock,
        stats: Stats::default(),
        clients: Clients::default(),
        started: crate::stats::Stopwatch::start(),
        local_addr,
        run_id: run_id(),
        shutdown,
        expiry_wake: Notify::new(),
        bad_input_log: RateLimiter::default(),
        set_log_filter: options.set_log_filter,
        workers: options.workers,
        snapshot: SnapshotFile::new(snapshot_path),
        log,
        http,
        connected: std::sync::atomic::AtomicUsize::new(0),
        gate: Default::default(),
        watches: Default::default(),
        pause: Default::default(),
        slowlog,
        latency,
        monitors: Default::default(),
        cluster,
    })))
}

fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(40);
    for i in 0..3u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .elapsed()
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

/// Serves until `shutdown` completes or a client sends `SHUTDOWN`; then stops
/// accepting, lets every connection finish the commands it has read and write their
/// replies, saves the snapshot if one is configured, and returns. An error means the
/// window could not be saved, or the log could not be loaded: the process should exit
/// with a failure status.
pub async fn serve(
    listener: TcpListener,
    handle: Handle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StopError> {
    let shared = handle.0;
    // The log thread, and the replay of the log while clients get -LOADING.
    persist::log::start(&shared)?;
    let mut stop = shared.shutdown.subscribe();
    let mut connections = JoinSet::new();
    // Which thread gets the next connection: 0 is this one, then the workers.
    let mut next_thread = 0usize;
    let expiry = tokio::spawn(expire_forever(shared.clone()));
    let http = http::spawn(&shared);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutdown signal received");
                shared.begin_shutdown();
                break;
            }
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let max = Settings::size(&shared.settings.maxclients);
                    if shared.connected.load(Ordering::Relaxed) >= max
                        && !evict_for_newcomer(&shared)
                    {
                        refuse(&shared, &socket, peer);
                        continue;
                    }
                    shared.connected.fetch_add(1, Ordering::Relaxed);
                    // Replies are written once per batch already; Nagle would only add
                    // latency to them.
                    let _ = socket.set_nodelay(true);
                    set_keepalive(&socket, Settings::get(&shared.settings.tcp_keepalive));
                    let thread = next_thread % (shared.workers.len() + 1);
                    next_thread = next_thread.wrapping_add(1);
                    match thread.checked_sub(1).and_then(|w| shared.workers.get(w)) {
                        None => {
                            connections.spawn(connection::serve(shared.clone(), socket, peer));
                        }
                        Some(worker) => {
                            let shared = shared.clone();
                            connections.spawn_on(serve_on_worker(shared, socket, peer), worker);
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow with every client.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let deadline = tokio::time::sleep(SHUTDOWN_GRACE);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                tracing::warn!(left = connections.len(), "closing connections that did not finish in time");
                connections.abort_all();
                break;
            }
        }
    }
    expiry.abort();
    if let Some(http) = http {
        // It ends by itself once shutdown has begun, within its own grace.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, http).await;
    }
    persist::shutdown(&shared)?;
    tracing::info!("server stopped");
    Ok(())
}

/// Serves a connection accepted on the main thread from a worker's thread. A socket
/// belongs to the reactor that registered it, so the worker registers it again.
async fn serve_on_worker(
    shared: Arc<Shared>,
    socket: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) {
    let moved = socket.into_std().and_then(tokio::net::TcpStream::from_std);
    match moved {
        Ok(socket) => connection::serve(shared, socket, peer).await,
        Err(e) => {
            shared.connected.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(%peer, error = %e, "cannot move a connection to its thread");
        }
    }
}

/// Connections that have not logged in may hold at most this share of `maxclients`
/// (numerator over denominator); the rest stays reachable for clients that log in.
pub const LOGIN_SHARE: (usize, usize) = (1, 2);

/// With a password set, keeps connections that have not logged in to their share of
/// `maxclients`: when a newly registered one passes it, the oldest of them are
/// closed. Someone holding connections open without the password thus holds about
/// half the slots, and a client that connects and logs in finds one.
pub fn make_room_for_logins(shared: &Shared) {
    if !shared.settings.has_password() {
        return;
    }
    let maxclients = Settings::size(&shared.settings.maxclients);
    let share = (maxclients * LOGIN_SHARE.0 / LOGIN_SHARE.1).max(1);
    if shared.clients.unauthenticated() > share {
        log_evictions(shared, shared.clients.evict_unauthenticated(share));
    }
}

/// At `maxclients`, with a password set: closes the oldest connection that has not
/// logged in so the newcomer gets its slot (the evicted one leaves within moments).
/// Whether there was one.
fn evict_for_newcomer(shared: &Shared) -> bool {
    if !shared.settings.has_password() || shared.clients.unauthenticated() == 0 {
        return false;
    }
    let keep = shared.clients.unauthenticated().saturating_sub(1);
    let closed = shared.clients.evict_unauthenticated(keep);
    log_evictions(shared, closed);
    closed > 0
}

fn log_evictions(shared: &Shared, closed: usize) {
    if closed > 0
        && let Some(suppressed) = shared.may_log()
    {
        tracing::warn!(
            closed,
            suppressed,
            "closed the oldest connections that had not logged in, to keep slots for clients that do"
        );
    }
}

/// TCP keepalive as Redis sets it: probes after `secs` of silence, then every
/// `secs / 3`, and the peer is declared gone after 3 unanswered probes.
fn set_keepalive(socket: &tokio::net::TcpStream, secs: u64) {
    let sock = socket2::SockRef::from(socket);
    if secs == 0 {
        let _ = sock.set_keepalive(false);
        return;
    }
    let idle = Duration::from_secs(secs);
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(Duration::from_secs((secs / 3).max(1)))
        .with_retries(3);
    if let Err(e) = sock.set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "cannot set TCP keepalive");
    }
}

/// Turns a client away at `maxclients`, as Redis does: one error line, then close.
fn refuse(shared: &Shared, socket: &tokio::net::TcpStream, peer: std::net::SocketAddr) {
    shared
        .stats
        .rejected_connections
        .fetch_add(1, Ordering::Relaxed);
    // A fresh socket's send buffer always has room for one line; if not, the client
    // just sees the connection close.
    let _ = socket.try_write(b"-ERR max number of clients reached\r\n");
    if let Some(suppressed) = shared.may_log() {
        tracing::warn!(%peer, suppressed, "max number of clients reached; connection refused");
    }
}

/// The background sweep: once a second (or when the manual clock moves), expire the
/// seconds that left the window, a bounded step at a time.
async fn expire_forever(shared: Arc<Shared>) {
    // The most memory in use since the allocator was last asked to give pages back.
    let mut high_water = 0u64;
    loop {
        let now = shared.clock.now();
        for shard in 0..shared.store.shard_count() {
            // Small bites, each followed by a yield to the runtime, so a second holding
            // a million users is swept between client batches, not instead of them.
            // Each step passes the gate: no second expires inside a transaction.
            while !{
                let _pass = shared.gate.pass();
                shared.store.expire_shard_step(shard, now, EXPIRE_BUDGET)
            } {
                tokio::task::yield_now().await;
            }
            tokio::task::yield_now().await;
        }
        let used = alloc::used_memory();
        high_water = high_water.max(used);
        if high_water - used > TRIM_AFTER_FREED_BYTES {
            alloc::release_freed_memory();
            high_water = used;
        }
        let wait = next_second();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.expiry_wake.notified() => {}
        }
    }
}

/// Bytes freed since the last trim after which the allocator is asked to return free
/// pages to the system ([`alloc::release_freed_memory`]).
pub const TRIM_AFTER_FREED_BYTES: u64 = 16 * 1024 * 1024;

/// Time until just after the next wall-clock second.
fn next_second() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(u64::from(1_000_000_000 - nanos) + 1_000_000)
}
