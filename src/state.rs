//! What every connection shares: the store, the clock, the settings, the statistics
//! and the list of connected clients. Connections hold no aggregate state of their own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use slab::Slab;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::{Config, Settings};
use crate::store::Store;

/// Redis version whose behaviour and reply shapes we follow; clients that gate
/// features on the server version (HELLO, INFO) read this one.
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";

/// Error-reply prefixes counted separately in `INFO errorstats`; others count as ERR.
pub const ERROR_KINDS: &[&str] = &[
    "ERR",
    "NOPROTO",
    "NOAUTH",
    "WRONGPASS",
    "OOM",
    "DENIED",
    "WRONGTYPE",
];

/// A counter bumped by every serving thread (per batch of commands): one cache line
/// per thread stripe, summed when read, so threads on two cores do not pass one line
/// back and forth on every request.
#[derive(Debug)]
pub struct Striped([Padded64; crate::alloc::COUNTER_STRIPES]);

#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded64(AtomicU64);

impl Default for Striped {
    fn default() -> Self {
        Striped(std::array::from_fn(|_| Padded64::default()))
    }
}

impl Striped {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        if let Some(s) = self.0.get(crate::alloc::stripe_index()) {
            s.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }

    /// Back to zero (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        for s in &self.0 {
            s.0.store(0, Ordering::Relaxed);
        }
    }
}

/// Server-wide counters (`INFO stats`). Connections add their counts once per batch;
/// the ones every request bumps are [`Striped`].
#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_commands_processed: Striped,
    pub total_error_replies: AtomicU64,
    pub error_kinds: [AtomicU64; 7],
    pub protocol_errors: AtomicU64,
    pub query_buffer_disconnections: AtomicU64,
    pub output_buffer_disconnections: AtomicU64,
    pub events_accepted: Striped,
    pub events_rejected: AtomicU64,
    pub events_late: AtomicU64,
    pub events_future: AtomicU64,
    pub net_input_bytes: Striped,
    pub net_output_bytes: Striped,
}

impl Stats {
    /// Counts an error reply by its prefix.
    pub fn count_error(&self, text: &str) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let prefix = text.split(' ').next().unwrap_or("ERR");
        let i = ERROR_KINDS.iter().position(|k| *k == prefix).unwrap_or(0);
        if let Some(c) = self.error_kinds.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&self) {
        for c in [
            &self.total_commands_processed,
            &self.events_accepted,
            &self.net_input_bytes,
            &self.net_output_bytes,
        ] {
            c.reset();
        }
        for c in [
            &self.total_connections_received,
            &self.rejected_connections,
            &self.total_error_replies,
            &self.protocol_errors,
            &self.query_buffer_disconnections,
            &self.output_buffer_disconnections,
            &self.events_rejected,
            &self.events_late,
            &self.events_future,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        for c in &self.error_kinds {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// What `CLIENT LIST` shows of a connection; written by the connection, read by others.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    /// Milliseconds since the server started, at the last command.
    pub last_active_ms: AtomicU64,
    pub resp: AtomicU32,
    /// Index into the command table of the last command (`usize::MAX`: none yet).
    pub last_cmd: AtomicUsize,
    pub names: Mutex<ClientNames>,
}

/// The client-set strings of a connection.
#[derive(Debug, Default, Clone)]
pub struct ClientNames {
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
}

impl ClientInfo {
    /// The names, copied out.
    pub fn names(&self) -> ClientNames {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the names.
    pub fn update(&self, f: impl FnOnce(&mut ClientNames)) {
        f(&mut self.names.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Connected clients, for `CLIENT LIST` and `connected_clients`.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    // A plain mutex: taken on connect, disconnect and CLIENT LIST only.
    list: Mutex<Slab<Arc<ClientInfo>>>,
}

impl Clients {
    /// Registers a new connection; the returned key unregisters it.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> (usize, Arc<ClientInfo>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicU32::new(2),
            last_cmd: AtomicUsize::new(usize::MAX),
            names: Mutex::new(ClientNames::default()),
        });
        let key = self
            .list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info.clone());
        (key, info)
    }

    /// Forgets a connection.
    pub fn unregister(&self, key: usize) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if list.contains(key) {
            list.remove(key);
        }
    }

    /// A snapshot of every connection.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        let list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = list.iter().map(|(_, c)| c.clone()).collect();
        v.sort_by_key(|c| c.id);
        v
    }
}

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
    pub store: Store,
    pub clock: Clock,
    pub stats: Stats,
    pub clients: Clients,
    pub started: Instant,
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
    /// Serialises snapshot writes (SAVE and shutdown never write at once).
    pub saving: Mutex<()>,
    /// Set by `SHUTDOWN NOSAVE`: stop without writing the snapshot.
    pub skip_snapshot: AtomicBool,
    /// Connected clients, for the `maxclients` check on accept.
    pub connected: AtomicUsize,
    /// Runtimes (one thread each) that serve connections besides the main one.
    pub workers: Vec<tokio::runtime::Handle>,
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
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
