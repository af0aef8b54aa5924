//! Command-line flags, their defaults and ranges, and the settings that `CONFIG SET`
//! may change while the server runs.
//!
//! Every default and every range is a named constant here, so the `--help` text,
//! `CONFIG GET`/`SET` and the README agree. A value outside its range is refused —
//! at start with the flag's name, at run time by `CONFIG SET` with the range — so no
//! setting can wrap around or lock clients out (the ranges' lower ends leave room for
//! `AUTH`, `HELLO ... AUTH ... SETNAME ...`, `CONFIG SET` and `QUIT`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use clap::Parser;

pub use crate::clock::ClockMode;
pub use crate::persist::log::Fsync;

pub mod file;

/// Address to listen on by default: loopback, so a fresh install is not on the network.
pub const DEFAULT_BIND: &str = "127.0.0.1";
/// Redis's port, so clients work without flags.
pub const DEFAULT_PORT: u16 = 6379;
/// Log filter when neither `--log-level` nor `RUST_LOG` is given.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Seconds in the window.
pub const DEFAULT_WINDOW: u32 = 60;
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

const KB: u64 = 1024;
const MB: u64 = 1024 * KB;
const GB: u64 = 1024 * MB;

/// What a number counts, for parsing (`64mb`) and for the range in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain count or number of seconds.
    Plain,
    /// Bytes, with Redis's units (`64kb`, `2gb`).
    Bytes,
}

/// A numeric setting: its default and the values it may take.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
    pub unit: Unit,
}

impl Limit {
    /// Parses `text` and checks the range; the error names the range.
    pub fn parse(&self, text: &str) -> Result<u64, String> {
        let v = match self.unit {
            Unit::Plain => text.trim().parse::<u64>().ok(),
            Unit::Bytes => parse_memory(text),
        };
        let Some(v) = v else {
            return Err(match self.unit {
                Unit::Plain => "argument couldn't be parsed into an integer".to_string(),
                Unit::Bytes => "argument must be a memory value".to_string(),
            });
        };
        if v < self.min || v > self.max {
            return Err(format!(
                "argument must be between {} and {} inclusive",
                self.min, self.max
            ));
        }
        Ok(v)
    }
}

/// How far ahead of `now` an event may be and still count (as happening at `now`):
/// at most a day.
pub const MAX_FUTURE_SKEW: Limit = Limit {
    name: "max-future-skew",
    default: 5,
    min: 0,
    max: 86_400,
    unit: Unit::Plain,
};
/// Longest `user_id` / `event_type`, in bytes; the ceiling is what the snapshot's
/// 16-bit length fields hold, so every id accepted round-trips through a snapshot.
pub const MAX_ID_LEN: Limit = Limit {
    name: "max-id-len",
    default: 512,
    min: 1,
    max: u16::MAX as u64,
    unit: Unit::Bytes,
};
/// Largest bulk argument: one event never needs more than a few hundred bytes, and
/// Redis's 512 MB default would let one client hold that much memory. At least 1 KiB,
/// so a password or a setting's value always fits.
pub const PROTO_MAX_BULK_LEN: Limit = Limit {
    name: "proto-max-bulk-len",
    default: MB,
    min: KB,
    max: 4 * GB,
    unit: Unit::Bytes,
};
/// Most arguments in one command (`EVT.MADD` with many events). At least 8, so that
/// `HELLO 3 AUTH user pass SETNAME name` and `CONFIG SET name value` always fit.
pub const MAX_ARGS: Limit = Limit {
    name: "max-args",
    default: MB,
    min: 8,
    max: i32::MAX as u64,
    unit: Unit::Plain,
};
/// Most unprocessed bytes held for one connection before it is closed; at least
/// 16 KiB, so a login or a setting always fits.
pub const CLIENT_QUERY_BUFFER_LIMIT: Limit = Limit {
    name: "client-query-buffer-limit",
    default: 64 * MB,
    min: 16 * KB,
    max: 4 * GB,
    unit: Unit::Bytes,
};
/// Most connected clients; the next one is refused with an error.
pub const MAXCLIENTS: Limit = Limit {
    name: "maxclients",
    default: 10_000,
    min: 1,
    max: 1_000_000,
    unit: Unit::Plain,
};
/// Idle seconds before a client is closed; 0 never closes, as in Redis.
pub const TIMEOUT: Limit = Limit {
    name: "timeout",
    default: 0,
    min: 0,
    max: i32::MAX as u64,
    unit: Unit::Plain,
};
/// Unsent reply bytes beyond which a client that does not read is disconnected; at
/// least 64 KiB so an ordinary reply never trips it.
pub const CLIENT_OUTPUT_BUFFER_LIMIT: Limit = Limit {
    name: "client-output-buffer-limit",
    default: 64 * MB,
    min: 64 * KB,
    max: 16 * GB,
    unit: Unit::Bytes,
};
/// Memory limit; 0 is none.
pub const MAXMEMORY: Limit = Limit {
    name: "maxmemory",
    default: 0,
    min: 0,
    max: u64::MAX,
    unit: Unit::Bytes,
};
/// Seconds of silence after which the kernel probes a client's connection (and
/// drops it when the peer is gone), as Redis's `tcp-keepalive`; 0 is off.
pub const TCP_KEEPALIVE: Limit = Limit {
    name: "tcp-keepalive",
    default: 300,
    min: 0,
    max: i32::MAX as u64,
    unit: Unit::Plain,
};
/// With the event clock, how far one event may move `now` forward at once; further
/// ahead it is refused as too far in the future. A day: replaying a real recording
/// never jumps that far between consecutive events, and one bad timestamp cannot
/// end the clock.
pub const MAX_CLOCK_JUMP: Limit = Limit {
    name: "max-clock-jump",
    default: 86_400,
    min: 1,
    max: u32::MAX as u64,
    unit: Unit::Plain,
};

/// How long a cluster-wide query waits for the other nodes' shares, in milliseconds:
/// a second is a thousand round trips on a LAN, and short enough that a dead node
/// turns into a clear error before a client's own timeout fires.
pub const CLUSTER_TIMEOUT: Limit = Limit {
    name: "cluster-timeout",
    default: 1000,
    min: 1,
    max: 3_600_000,
    unit: Unit::Plain,
};

/// A clap value parser for `limit`.
fn ranged(limit: &'static Limit) -> impl Fn(&str) -> Result<u64, String> + Clone {
    move |s| limit.parse(s)
}

/// ScalableAnalytics: exact sliding-window aggregates of user events, served over the
/// Redis protocol.
///
/// A configuration file in redis.conf syntax may be given first
/// (`scalable-analytics /etc/analytics.conf`); flags override it.
#[derive(Debug, Clone, Parser)]
#[command(version, about, args_override_self = true)]
pub struct Config {
    /// The configuration file the settings were read from (`CONFIG REWRITE` writes
    /// back to it).
    #[arg(skip)]
    pub config_file: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: IpAddr,

    /// TCP port; 0 picks a free one (the log line `listening on` shows it).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Port for the HTTP view on `--bind`: Prometheus metrics at `/metrics`, a live
    /// page of the window at `/`, its JSON at `/api/window`; 0 picks a free port (the
    /// log line `http listening on` shows it). Off when absent.
    #[arg(long)]
    pub http_port: Option<u16>,

    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive);
    /// `RUST_LOG` is used when this flag is absent.
    #[arg(long, alias = "loglevel")]
    pub log_level: Option<String>,

    /// Seconds in the sliding window (1 to 60).
    #[arg(long, default_value_t = DEFAULT_WINDOW, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub window: u32,

    /// Where `now` comes from.
    #[arg(long, value_enum, default_value_t = ClockMode::Wall)]
    pub clock: ClockMode,

    /// Where the manual clock starts (Unix seconds); the wall time by default.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..=u32::MAX as i64))]
    pub clock_start: Option<i64>,

    /// Seconds an event may be ahead of `now` and still count, as happening at `now`
    /// (0 to 86400).
    #[arg(long, default_value_t = MAX_FUTURE_SKEW.default, value_parser = ranged(&MAX_FUTURE_SKEW))]
    pub max_future_skew: u64,

    /// With `--clock event`, the most seconds one event may move `now` forward;
    /// an event further ahead is refused as too far in the future.
    #[arg(long, default_value_t = MAX_CLOCK_JUMP.default, value_parser = ranged(&MAX_CLOCK_JUMP))]
    pub max_clock_jump: u64,

    /// Longest `user_id` / `event_type`, in bytes (1 to 65535).
    #[arg(long, default_value_t = MAX_ID_LEN.default, value_parser = ranged(&MAX_ID_LEN))]
    pub max_id_len: u64,

    /// Largest bulk argument a client may send, in bytes (1kb to 4gb).
    #[arg(long, default_value_t = PROTO_MAX_BULK_LEN.default, value_parser = ranged(&PROTO_MAX_BULK_LEN))]
    pub proto_max_bulk_len: u64,

    /// Most arguments in one command (at least 8).
    #[arg(long, default_value_t = MAX_ARGS.default, value_parser = ranged(&MAX_ARGS))]
    pub max_args: u64,

    /// Most unprocessed bytes held for one connection; beyond it the connection
    /// closes (16kb to 4gb).
    #[arg(long, default_value_t = CLIENT_QUERY_BUFFER_LIMIT.default, value_parser = ranged(&CLIENT_QUERY_BUFFER_LIMIT))]
    pub client_query_buffer_limit: u64,

    /// Threads serving clients, each a single-threaded runtime keeping the
    /// connections dealt to it; 0 picks half the CPU cores, at least one.
    #[arg(long, default_value_t = DEFAULT_THREADS)]
    pub threads: usize,

    /// Shards of the window store; 0 picks 4 per serving thread.
    #[arg(long, default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=4096))]
    pub shards: usize,

    /// File the window is saved to on shutdown (and by SAVE) and loaded from at start;
    /// a bare file name is taken inside `--dir`.
    #[arg(long)]
    pub snapshot: Option<PathBuf>,

    // --- The window log (src/persist/log): Redis's names. ---
    /// Log every accepted event (`yes` or `no`), so a crash loses none (see
    /// `--appendfsync`); the log is replayed at start.
    #[arg(long, default_value = "no", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub appendonly: bool,

    /// When the log reaches the disk: `always` (before the reply), `everysec`
    /// (once a second) or `no` (when the operating system likes).
    #[arg(long, value_enum, default_value_t = Fsync::Everysec)]
    pub appendfsync: Fsync,

    /// Directory of the log (`<dir>/appendonlydir`), and of the snapshot when
    /// `--snapshot` is a bare file name.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,

    /// Start even when a log segment is damaged in its middle, leaving that whole
    /// segment out (renamed `*.damaged`); without it the server refuses to start
    /// (`yes` or `no`).
    #[arg(long, default_value = "no", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub aof_skip_damaged: bool,

    /// Back the store's large tables (4 MiB and more) with transparent huge pages
    /// where the kernel allows it (`madvise`): fewer TLB misses on a million users'
    /// lookups (`yes` or `no`).
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub huge_pages: bool,

    /// Password clients must give (AUTH, or HELLO ... AUTH) before any other command.
    #[arg(long)]
    pub requirepass: Option<String>,

    /// Refuse non-loopback clients while listening on a non-loopback address without
    /// a password (`yes` or `no`).
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub protected_mode: bool,

    /// Most connected clients (1 to 1000000).
    #[arg(long, default_value_t = MAXCLIENTS.default, value_parser = ranged(&MAXCLIENTS))]
    pub maxclients: u64,

    /// Seconds a client may stay idle before it is closed (0: never).
    #[arg(long, default_value_t = TIMEOUT.default, value_parser = ranged(&TIMEOUT))]
    pub timeout: u64,

    /// Seconds of silence before the kernel checks that a client's machine is still
    /// there (TCP keepalive; 0: off).
    #[arg(long, default_value_t = TCP_KEEPALIVE.default, value_parser = ranged(&TCP_KEEPALIVE))]
    pub tcp_keepalive: u64,

    /// Unsent reply bytes (for a client that does not read) beyond which it is
    /// disconnected; reading from it pauses well before that (64kb to 16gb).
    #[arg(long, default_value_t = CLIENT_OUTPUT_BUFFER_LIMIT.default, value_parser = ranged(&CLIENT_OUTPUT_BUFFER_LIMIT))]
    pub client_output_buffer_limit: u64,

    /// Memory limit (`64mb`, `2gb`, bytes; 0: none). At the limit, events that need
    /// a new user, type or pair are refused with -OOM; nothing is evicted.
    #[arg(long, default_value = "0", value_parser = ranged(&MAXMEMORY))]
    pub maxmemory: u64,

    /// Run as one node of a cluster whose map is this JSON file (the same file on
    /// every node; README "Cluster"); needs --cluster-node.
    #[arg(long, requires = "cluster_node")]
    pub cluster_config: Option<PathBuf>,

    /// Which node of --cluster-config this server is (its "id" in the file).
    #[arg(long, requires = "cluster_config")]
    pub cluster_node: Option<String>,

    /// Milliseconds a cluster-wide query waits for the other nodes' shares before it
    /// answers with an error naming the node that did not answer (1 to 3600000).
    #[arg(long, default_value_t = CLUSTER_TIMEOUT.default, value_parser = ranged(&CLUSTER_TIMEOUT))]
    pub cluster_timeout: u64,

    /// Commands slower than this many microseconds go to the slow log (SLOWLOG);
    /// -1 turns it off, 0 logs every command.
    #[arg(long, default_value_t = crate::observe::SLOWLOG_DEFAULT_THRESHOLD_US, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-1..))]
    pub slowlog_log_slower_than: i64,

    /// Entries the slow log keeps.
    #[arg(long, default_value_t = crate::observe::SLOWLOG_DEFAULT_MAX_LEN as i64, value_parser = clap::value_parser!(i64).range(0..=i32::MAX as i64))]
    pub slowlog_max_len: i64,

    /// Commands slower than this many milliseconds are recorded by the latency
    /// monitor (LATENCY); 0 turns it off.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub latency_monitor_threshold: i64,
}

pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, got '{s}'")),
    }
}

impl Config {
    /// The configuration from the program's arguments, a configuration file first
    /// if one is named. A file that cannot be read or holds an unknown setting is an
    /// error naming the line; a bad flag is clap's error (it prints and exits).
    pub fn load(argv: Vec<std::ffi::OsString>) -> Result<Config, String> {
        let (args, file) = file::expand(argv)?;
        let mut config = Config::try_parse_from(args).unwrap_or_else(|e| e.exit());
        config.config_file = file;
        Ok(config)
    }

    /// Threads serving clients, `--threads 0` resolved.
    pub fn serving_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .max(1),
            n => n,
        }
    }

    /// The snapshot file: `--snapshot`, inside `--dir` when it is a bare file name.
    pub fn snapshot_path(&self) -> Option<PathBuf> {
        let p = self.snapshot.as_ref()?;
        let bare = p.parent().is_none_or(|d| d.as_os_str().is_empty()) && !p.is_absolute();
        Some(if bare { self.dir.join(p) } else { p.clone() })
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
    pub max_clock_jump: AtomicU64,
    pub max_id_len: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub max_args: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    pub maxclients: AtomicU64,
    pub timeout: AtomicU64,
    pub tcp_keepalive: AtomicU64,
    pub client_output_buffer_limit: AtomicU64,
    pub maxmemory: AtomicU64,
    /// The log filter as last set, for `CONFIG GET loglevel`.
    pub log_level: Mutex<String>,
    /// The password, if one is set (`CONFIG SET requirepass`).
    requirepass: Mutex<Option<String>>,
    /// Whether a password is set: read by every request, so an atomic, not the lock.
    password_required: AtomicBool,
}

impl Settings {
    /// Settings as the flags give them.
    pub fn from_config(c: &Config) -> Self {
        let password = c.requirepass.clone().filter(|p| !p.is_empty());
        Settings {
            max_future_skew: AtomicU64::new(c.max_future_skew),
            max_clock_jump: AtomicU64::new(c.max_clock_jump),
            max_id_len: AtomicU64::new(c.max_id_len),
            proto_max_bulk_len: AtomicU64::new(c.proto_max_bulk_len),
            max_args: AtomicU64::new(c.max_args),
            client_query_buffer_limit: AtomicU64::new(c.client_query_buffer_limit),
            maxclients: AtomicU64::new(c.maxclients),
            timeout: AtomicU64::new(c.timeout),
            tcp_keepalive: AtomicU64::new(c.tcp_keepalive),
            client_output_buffer_limit: AtomicU64::new(c.client_output_buffer_limit),
            maxmemory: AtomicU64::new(c.maxmemory),
            password_required: AtomicBool::new(password.is_some()),
            requirepass: Mutex::new(password),
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

    /// Sets (or, with an empty text, removes) the password.
    pub fn set_password(&self, password: String) {
        let password = Some(password).filter(|p| !p.is_empty());
        let mut p = self
            .requirepass
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.password_required
            .store(password.is_some(), Ordering::Relaxed);
        *p = password;
    }

    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        self.password_required.load(Ordering::Relaxed)
    }

    /// Reads a numeric setting.
    pub fn get(cell: &AtomicU64) -> u64 {
        cell.load(Ordering::Relaxed)
    }

    /// Reads a numeric setting as a size in memory (saturating on 32-bit targets).
    pub fn size(cell: &AtomicU64) -> usize {
        usize::try_from(cell.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }
}

/// Whether `given` is the password, compared in constant time so that the reply's
/// timing says nothing about how much of it matched (RESP `AUTH` and HTTP both use it).
pub fn password_matches(given: &[u8], password: &[u8]) -> bool {
    let mut diff = given.len() ^ password.len();
    for i in 0..given.len().max(password.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = password.get(i).copied().unwrap_or(0);
        diff |= usize::from(a ^ b);
    }
    std::hint::black_box(diff) == 0
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
        "kb" => KB,
        "m" => 1000 * 1000,
        "mb" => MB,
        "g" => 1000 * 1000 * 1000,
        "gb" => GB,
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
    fn defaults_are_the_constants_and_inside_their_ranges() {
        let c = Config::default();
        assert_eq!(c.port, DEFAULT_PORT);
        assert_eq!(c.window, DEFAULT_WINDOW);
        assert_eq!(c.proto_max_bulk_len, PROTO_MAX_BULK_LEN.default);
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        for l in [
            MAX_FUTURE_SKEW,
            MAX_ID_LEN,
            PROTO_MAX_BULK_LEN,
            MAX_ARGS,
            CLIENT_QUERY_BUFFER_LIMIT,
            MAXCLIENTS,
            TIMEOUT,
            CLIENT_OUTPUT_BUFFER_LIMIT,
            MAXMEMORY,
            TCP_KEEPALIVE,
            MAX_CLOCK_JUMP,
            CLUSTER_TIMEOUT,
        ] {
            assert!(l.min <= l.default && l.default <= l.max, "{}", l.name);
            assert_eq!(l.parse(&l.default.to_string()), Ok(l.default), "{}", l.name);
        }
    }

    #[test]
    fn out_of_range_values_name_the_range() {
        assert_eq!(
            MAX_ARGS.parse("2"),
            Err("argument must be between 8 and 2147483647 inclusive".into())
        );
        assert!(MAX_FUTURE_SKEW.parse("9223372036854775808").is_err());
        assert!(MAX_ID_LEN.parse("100000").is_err());
        assert_eq!(
            MAX_ID_LEN.parse("64kb"),
            Err("argument must be between 1 and 65535 inclusive".into())
        );
        assert!(Config::try_parse_from(["x", "--max-args", "2"]).is_err());
    }
}
