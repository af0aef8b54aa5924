//! What every connection shares: the store, the clock, the settings, the statistics
//! and the list of connected clients. Connections hold no aggregate state of their own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

use crate::clients::{Clients, Pause};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::{Config, Settings};
use crate::gate::Gate;
use crate::observe::{Latency, Monitors, SlowLog};
use crate::persist::log::Log;
use crate::persist::snapshot::SnapshotFile;
use crate::stats::{Stats, Stopwatch};
use crate::store::Store;
use crate::watch::Watches;

/// Redis version whose behaviour and reply shapes we follow; clients that gate
/// features on the server version (HELLO, INFO) read this one.
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";

/// Lets warnings that a client can provoke through at a bounded rate, so a flood of
/// bad input cannot flood the log or slow the server with log I/O.
#[derive(Debug, Default)]
pub struct RateLimiter {
    second: AtomicU64,
    used: AtomicU32,
    suppressed: AtomicU64,
}

/// Log lines of one kind allowed per second.
pub const LOG_LINES_PER_SECOND: u32 = 10;

impl RateLimiter {
    /// Whether a line may be logged now; with it, how many were suppressed before it.
    pub fn allow(&self, now_secs: u64) -> Option<u64> {
        if self.second.load(Ordering::Relaxed) != now_secs {
            self.second.store(now_secs, Ordering::Relaxed);
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < LOG_LINES_PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Applies a new log filter text; errors are shown to the client.
pub type LogFilterSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Everything the connections share.
pub struct Shared {
    pub config: Config,
    pub settings: Settings,
    /// Shared with scans that outlive the command that started them (`EVT.TOP`).
    pub store: Arc<Store>,
    pub clock: Clock,
    pub stats: Stats,
    pub clients: Clients,
    /// When the server started (uptime; [`Shared::uptime_ms`] is read by every
    /// command).
    pub started: Stopwatch,
    pub local_addr: SocketAddr,
    pub run_id: String,
    /// Set once shutdown has begun: connections finish what they read and close.
    pub shutdown: watch::Sender<bool>,
    /// Wakes the expiry task early (the manual clock moved).
    pub expiry_wake: Notify,
    /// Rate limit for "bad event" / "bad request" warnings.
    pub bad_input_log: RateLimiter,
    /// Applies a new log filter (`CONFIG SET loglevel`); absent when logging was set
    /// up by someone else (tests).
    pub set_log_filter: Option<LogFilterSetter>,
    /// The HTTP view's listener (`--http-port`), if it is on.
    pub http: crate::http::Endpoint,
    /// The snapshot file, if one is configured.
    pub snapshot: SnapshotFile,
    /// The window log (`--appendonly`).
    pub log: Log,
    /// Connected clients, for the `maxclients` check on accept.
    pub connected: AtomicUsize,
    /// Runtimes (one thread each) that serve connections besides the main one.
    pub workers: Vec<tokio::runtime::Handle>,
    /// Closed by `EXEC` for the time of a transaction; held by scans that outlive the
    /// command that started them (`EVT.TOP`) too.
    pub gate: Arc<Gate>,
    /// Users watched by `WATCH`.
    pub watches: Watches,
    /// `CLIENT PAUSE`.
    pub pause: Pause,
    /// `SLOWLOG`.
    pub slowlog: SlowLog,
    /// `LATENCY`.
    pub latency: Latency,
    /// Connections in `MONITOR` mode.
    pub monitors: Monitors,
    /// This server's place in a cluster; `None` when it runs alone.
    pub cluster: Option<Arc<Cluster>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Milliseconds since the server started.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Starts a graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        // Connections wait on their own signal, not on the watch.
        for c in self.clients.all() {
            c.wake();
        }
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Whether a warning a client provoked may be logged now, and how many were
    /// suppressed before it.
    pub fn may_log(&self) -> Option<u64> {
        self.bad_input_log.allow(self.uptime_ms() / 1000)
    }
}
