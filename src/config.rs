//! Command-line flags, their defaults, and the settings that `CONFIG SET` may change
//! while the server runs.
//!
//! Every default is a named constant here, so the `--help` text, `CONFIG GET` and the
//! README agree.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use clap::Parser;

pub use crate::clock::ClockMode;

/// Address to listen on by default: loopback, so a fresh install is not on the network.
pub const DEFAULT_BIND: &str = "127.0.0.1";
/// Redis's port, so clients work without flags.
pub const DEFAULT_PORT: u16 = 6379;
/// Log filter when neither `--log-level` nor `RUST_LOG` is given.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Largest bulk argument: one event never needs more than a few hundred bytes, and
/// Redis's 512 MB default would let one client hold that much memory.
pub const DEFAULT_PROTO_MAX_BULK_LEN: usize = 1024 * 1024;
/// Most arguments in one command (`EVT.MADD` with many events).
pub const DEFAULT_MAX_ARGS: usize = 1024 * 1024;
/// Most unprocessed bytes held for one connection before it is closed.
pub const DEFAULT_CLIENT_QUERY_BUFFER_LIMIT: usize = 64 * 1024 * 1024;
/// Seconds in the window.
pub const DEFAULT_WINDOW: u32 = 60;
/// How far ahead of `now` an event may be and still count (as happening at `now`).
pub const DEFAULT_MAX_FUTURE_SKEW: u64 = 5;
/// Longest `user_id` / `event_type`, in bytes.
pub const DEFAULT_MAX_ID_LEN: usize = 512;
/// Most connected clients; the next one is refused with an error.
pub const DEFAULT_MAXCLIENTS: usize = 10_000;
/// Idle seconds before a client is closed; 0 never closes, as in Redis.
pub const DEFAULT_TIMEOUT: u64 = 0;
/// Unsent reply bytes beyond which a client that does not read is disconnected.
pub const DEFAULT_CLIENT_OUTPUT_BUFFER_LIMIT: usize = 64 * 1024 * 1024;
/// Threads serving clients by default: 0 means half the CPU cores, at least one.
/// Each runs its own single-threaded runtime and keeps the connections dealt to it.
/// The other half is left to the kernel's network stack, which does most of the work
/// for unpipelined clients (69% of the CPU time at `-P 1`, perf). On the 2-core
/// reference machine, shared with the load generator, one thread kept unpipelined
/// p99 at 0.49 ms where two threads took 1.2 ms; two threads ingest pipelined events
/// faster (1.6M/s against 1.0M/s): `--threads 2` (`docs/benchmarks.md`).
pub const DEFAULT_THREADS: usize = 0;
/// Store shards per serving thread by default: enough that threads rarely meet on a
/// lock; more shards only spread the per-shard type and total counters over more
/// cache lines (64 shards on one thread measured ~15% slower than 4).
pub const SHARDS_PER_THREAD: usize = 4;

/// ScalableAnalytics: exact sliding-window aggregates of user events, served over the
/// Redis protocol.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: IpAddr,

    /// TCP port; 0 picks a free one (the log line `listening on` shows it).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive);
    /// `RUST_LOG` is used when this flag is absent.
    #[arg(long)]
    pub log_level: Option<String>,

    /// Seconds in the sliding window (1 to 60).
    #[arg(long, default_value_t = DEFAULT_WINDOW, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub window: u32,

    /// Where `now` comes from.
    #[arg(long, value_enum, default_value_t = ClockMode::Wall)]
    pub clock: ClockMode,

    /// Seconds an event may be ahead of `now` and still count, as happening at `now`.
    #[arg(long, default_value_t = DEFAULT_MAX_FUTURE_SKEW)]
    pub max_future_skew: u64,

    /// Longest `user_id` / `event_type`, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_ID_LEN)]
    pub max_id_len: usize,

    /// Largest bulk argument a client may send, in bytes.
    #[arg(long, default_value_t = DEFAULT_PROTO_MAX_BULK_LEN, value_parser = parse_size)]
    pub proto_max_bulk_len: usize,

    /// Most arguments in one command.
    #[arg(long, default_value_t = DEFAULT_MAX_ARGS)]
    pub max_args: usize,

    /// Most unprocessed bytes held for one connection; beyond it the connection closes.
    #[arg(long, default_value_t = DEFAULT_CLIENT_QUERY_BUFFER_LIMIT, value_parser = parse_size)]
    pub client_query_buffer_limit: usize,

    /// Threads serving clients, each a single-threaded runtime keeping the
    /// connections dealt to it; 0 picks half the CPU cores, at least one.
    #[arg(long, default_value_t = DEFAULT_THREADS)]
    pub threads: usize,

    /// Shards of the window store; 0 picks 4 per serving thread.
    #[arg(long, default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=4096))]
    pub shards: usize,

    /// File the window is saved to on shutdown (and by SAVE) and loaded from at start.
    #[arg(long)]
    pub snapshot: Option<PathBuf>,

    /// Password clients must give (AUTH, or HELLO ... AUTH) before any other command.
    #[arg(long)]
    pub requirepass: Option<String>,

    /// Refuse non-loopback clients while listening on a non-loopback address without
    /// a password (`yes` or `no`).
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub protected_mode: bool,

    /// Most connected clients.
    #[arg(long, default_value_t = DEFAULT_MAXCLIENTS)]
    pub maxclients: usize,

    /// Seconds a client may stay idle before it is closed (0: never).
    #[arg(long, default_value_t = DEFAULT_TIMEOUT)]
    pub timeout: u64,

    /// Unsent reply bytes (for a client that does not read) beyond which it is
    /// disconnected; reading from it pauses well before that.
    #[arg(long, default_value_t = DEFAULT_CLIENT_OUTPUT_BUFFER_LIMIT, value_parser = parse_size)]
    pub client_output_buffer_limit: usize,

    /// Memory limit (`64mb`, `2gb`, bytes; 0: none). At the limit, events that need
    /// a new user, type or pair are refused with -OOM; nothing is evicted.
    #[arg(long, default_value = "0", value_parser = parse_size)]
    pub maxmemory: usize,
}

fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, got '{s}'")),
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    parse_memory(s)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("expected a size like 1048576, 64kb, 64mb or 2gb, got '{s}'"))
}

impl Config {
    /// Threads serving clients, `--threads 0` resolved.
    pub fn serving_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .max(1),
            n => n,
        }
    }

    /// Store shards, `--shards 0` resolved.
    pub fn store_shards(&self) -> usize {
        match self.shards {
            0 => SHARDS_PER_THREAD * self.serving_threads(),
            n => n,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["scalable-analytics"])
    }
}

/// The settings `CONFIG SET` can change at run time; readers take a relaxed atomic
/// load on the hot path.
#[derive(Debug)]
pub struct Settings {
    pub max_future_skew: AtomicU64,
    pub max_id_len: AtomicUsize,
    pub proto_max_bulk_len: AtomicUsize,
    pub max_args: AtomicUsize,
    pub client_query_buffer_limit: AtomicUsize,
    pub maxclients: AtomicUsize,
    pub timeout: AtomicU64,
    pub client_output_buffer_limit: AtomicUsize,
    pub maxmemory: AtomicUsize,
    /// The log filter as last set, for `CONFIG GET loglevel`.
    pub log_level: Mutex<String>,
    /// The password, if one is set (`CONFIG SET requirepass`).
    pub requirepass: Mutex<Option<String>>,
}

impl Settings {
    /// Settings as the flags give them.
    pub fn from_config(c: &Config) -> Self {
        Settings {
            max_future_skew: AtomicU64::new(c.max_future_skew),
            max_id_len: AtomicUsize::new(c.max_id_len),
            proto_max_bulk_len: AtomicUsize::new(c.proto_max_bulk_len),
            max_args: AtomicUsize::new(c.max_args),
            client_query_buffer_limit: AtomicUsize::new(c.client_query_buffer_limit),
            maxclients: AtomicUsize::new(c.maxclients),
            timeout: AtomicU64::new(c.timeout),
            client_output_buffer_limit: AtomicUsize::new(c.client_output_buffer_limit),
            maxmemory: AtomicUsize::new(c.maxmemory),
            requirepass: Mutex::new(c.requirepass.clone().filter(|p| !p.is_empty())),
            log_level: Mutex::new(
                c.log_level
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string()),
            ),
        }
    }

    /// Current log filter text.
    pub fn log_level(&self) -> String {
        self.log_level
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The password, if one is set.
    pub fn password(&self) -> Option<String> {
        self.requirepass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        self.requirepass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Reads a setting.
    pub fn get(cell: &AtomicUsize) -> usize {
        cell.load(Ordering::Relaxed)
    }
}

/// Parses a memory size as Redis does: `1024`, `64kb`, `64k`, `2mb`, `1gb` (case
/// insensitive; `k` is 1000 and `kb` 1024, as in redis.conf).
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_as_redis_conf() {
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("64kb"), Some(65536));
        assert_eq!(parse_memory("64k"), Some(64000));
        assert_eq!(parse_memory("2MB"), Some(2 * 1024 * 1024));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("12xb"), None);
        assert_eq!(parse_memory(""), None);
    }

    #[test]
    fn defaults_are_the_constants() {
        let c = Config::default();
        assert_eq!(c.port, DEFAULT_PORT);
        assert_eq!(c.window, DEFAULT_WINDOW);
        assert_eq!(c.proto_max_bulk_len, DEFAULT_PROTO_MAX_BULK_LEN);
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
    }
}
