//! What operators watch: the slow log (`SLOWLOG`), the latency monitor (`LATENCY`)
//! and the connections in `MONITOR` mode, as Redis keeps them.
//!
//! All three are off the hot path: the slow log and the latency monitor take their
//! lock only for a command slower than their threshold, and feeding monitors costs
//! one relaxed load per request while nobody monitors.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::clients::ClientInfo;
use crate::protocol::Args;

/// Arguments a slow-log entry keeps, as Redis's `SLOWLOG_ENTRY_MAX_ARGC`.
pub const SLOWLOG_MAX_ARGS: usize = 32;
/// Bytes of one argument a slow-log entry keeps (`SLOWLOG_ENTRY_MAX_STRING`).
pub const SLOWLOG_MAX_ARG_BYTES: usize = 128;
/// Samples the latency monitor keeps per event, as Redis's `LATENCY_TS_LEN`.
pub const LATENCY_HISTORY: usize = 160;

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// One slow command.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub time: i64,
    pub micros: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: SocketAddr,
    pub name: String,
}

/// The slow log: the last `slowlog-max-len` commands slower than
/// `slowlog-log-slower-than` microseconds.
#[derive(Debug)]
pub struct SlowLog {
    /// Microseconds; negative: off; 0: every command.
    pub threshold: AtomicI64,
    pub max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<SlowEntry>>,
}

/// Redis's default `slowlog-log-slower-than`.
pub const SLOWLOG_DEFAULT_THRESHOLD_US: i64 = 10_000;
/// Redis's default `slowlog-max-len`.
pub const SLOWLOG_DEFAULT_MAX_LEN: usize = 128;

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            threshold: AtomicI64::new(SLOWLOG_DEFAULT_THRESHOLD_US),
            max_len: AtomicUsize::new(SLOWLOG_DEFAULT_MAX_LEN),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

/// An argument as a slow-log entry keeps it (cut to [`SLOWLOG_MAX_ARG_BYTES`]).
fn cut_arg(a: &[u8]) -> Vec<u8> {
    if a.len() <= SLOWLOG_MAX_ARG_BYTES {
        return a.to_vec();
    }
    let mut v = a[..SLOWLOG_MAX_ARG_BYTES].to_vec();
    v.extend_from_slice(format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_ARG_BYTES).as_bytes());
    v
}

impl SlowLog {
    /// A slow log for commands over `threshold_us` keeping `max_len` entries.
    pub fn new(threshold_us: i64, max_len: usize) -> Self {
        SlowLog {
            threshold: AtomicI64::new(threshold_us),
            max_len: AtomicUsize::new(max_len),
            ..SlowLog::default()
        }
    }

    /// Whether a command that took `took` belongs in the log.
    pub fn is_slow(&self, took: Duration) -> bool {
        let t = self.threshold.load(Ordering::Relaxed);
        t >= 0 && took.as_micros() >= t as u128
    }

    /// Logs a command (call only when [`SlowLog::is_slow`]).
    pub fn record(&self, args: Args<'_>, took: Duration, client: &ClientInfo) {
        let secret = args.get(0).is_some_and(redacted);
        let mut kept: Vec<Vec<u8>> = args
            .iter()
            .take(SLOWLOG_MAX_ARGS)
            .enumerate()
            .map(|(i, a)| {
                if secret && i > 0 {
                    b"(redacted)".to_vec()
                } else {
                    cut_arg(a)
                }
            })
            .collect();
        if args.len() > SLOWLOG_MAX_ARGS {
            kept.truncate(SLOWLOG_MAX_ARGS - 1);
            kept.push(
                format!("... ({} more arguments)", args.len() - SLOWLOG_MAX_ARGS + 1).into_bytes(),
            );
        }
        let entry = SlowEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: unix_now().as_secs() as i64,
            micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            args: kept,
            addr: client.addr,
            name: client.names().name,
        };
        let max = self.max_len.load(Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.push_front(entry);
        entries.truncate(max);
    }

    /// The newest `count` entries, newest first.
    pub fn get(&self, count: usize) -> Vec<SlowEntry> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().take(count).cloned().collect()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Forgets every entry.
    pub fn reset(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// One latency event's samples: the worst latency of each second, newest last.
#[derive(Debug, Clone, Default)]
pub struct LatencyEvent {
    pub samples: VecDeque<(i64, u64)>,
    pub max_ms: u64,
}

/// The latency monitor: events (`command`, `fast-command`) slower than
/// `latency-monitor-threshold` milliseconds (0: off).
#[derive(Debug, Default)]
pub struct Latency {
    pub threshold_ms: AtomicU64,
    events: Mutex<HashMap<&'static str, LatencyEvent>>,
}

impl Latency {
    /// A latency monitor for events over `threshold_ms` (0: off).
    pub fn new(threshold_ms: u64) -> Self {
        Latency {
            threshold_ms: AtomicU64::new(threshold_ms),
            ..Latency::default()
        }
    }

    /// Whether a sample that `took` this long is recorded (the monitor is on and the
    /// sample reaches its threshold).
    pub fn watches(&self, took: Duration) -> bool {
        let threshold = self.threshold_ms.load(Ordering::Relaxed);
        threshold != 0 && u64::try_from(took.as_millis()).unwrap_or(u64::MAX) >= threshold
    }

    /// Records that `event` took `took`, if that passes the threshold.
    pub fn observe(&self, event: &'static str, took: Duration) {
        let threshold = self.threshold_ms.load(Ordering::Relaxed);
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        if threshold == 0 || ms < threshold {
            return;
        }
        let now = unix_now().as_secs() as i64;
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let e = events.entry(event).or_default();
        match e.samples.back_mut() {
            Some((t, worst)) if *t == now => *worst = (*worst).max(ms),
            _ => e.samples.push_back((now, ms)),
        }
        while e.samples.len() > LATENCY_HISTORY {
            e.samples.pop_front();
        }
        e.max_ms = e.max_ms.max(ms);
    }

    /// Every event, by name.
    pub fn events(&self) -> Vec<(&'static str, LatencyEvent)> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = events.iter().map(|(k, e)| (*k, e.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// Forgets `names` (all events when empty); how many were forgotten.
    pub fn reset(&self, names: &[&[u8]]) -> usize {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        let before = events.len();
        events.retain(|k, _| !names.iter().any(|n| n.eq_ignore_ascii_case(k.as_bytes())));
        before - events.len()
    }
}

/// A connection in `MONITOR` mode, as the feeders see it.
#[derive(Debug)]
struct Monitor {
    id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    /// Bytes queued and not yet taken by the monitor's connection.
    pending: Arc<AtomicUsize>,
    info: Arc<ClientInfo>,
}

/// The receiving end a monitoring connection drains.
#[derive(Debug)]
pub struct MonitorFeed {
    pub rx: mpsc::UnboundedReceiver<Bytes>,
    pub pending: Arc<AtomicUsize>,
}

/// Every connection in `MONITOR` mode.
#[derive(Debug, Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Monitor>>,
}

impl Monitors {
    /// Whether anyone monitors.
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Adds the connection of `info` as a monitor.
    pub fn add(&self, info: Arc<ClientInfo>) -> MonitorFeed {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|m| m.id != info.id);
        list.push(Monitor {
            id: info.id,
            tx,
            pending: pending.clone(),
            info,
        });
        self.count.store(list.len(), Ordering::Relaxed);
        MonitorFeed { rx, pending }
    }

    /// Removes the monitor of client `id`.
    pub fn remove(&self, id: u64) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|m| m.id != id);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Sends a command's line to every monitor. A monitor with more than
    /// `max_pending` bytes it has not taken is closed, as Redis's output limit closes
    /// a monitor that stops reading.
    pub fn feed(&self, client: &ClientInfo, args: Args<'_>, max_pending: usize) {
        let line = Bytes::from(monitor_line(client.addr, args));
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|m| {
            let pending = m.pending.fetch_add(line.len(), Ordering::Relaxed) + line.len();
            if pending > max_pending {
                m.info.kill();
                return false;
            }
            m.tx.send(line.clone()).is_ok()
        });
        self.count.store(list.len(), Ordering::Relaxed);
    }
}

/// Whether `name` carries credentials: its arguments are shown as `(redacted)`.
fn redacted(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"auth") || name.eq_ignore_ascii_case(b"hello")
}

/// The line `MONITOR` shows for a command, as Redis prints it:
/// `+1700000000.123456 [0 127.0.0.1:50000] "evt.add" "{...}"`.
pub fn monitor_line(addr: SocketAddr, args: Args<'_>) -> String {
    let t = unix_now();
    let mut line = format!("+{}.{:06} [0 {addr}]", t.as_secs(), t.subsec_micros());
    let secret = args.get(0).is_some_and(redacted);
    for (i, a) in args.iter().enumerate() {
        line.push(' ');
        if secret && i > 0 {
            line.push_str("\"(redacted)\"");
        } else {
            repr(&mut line, a);
        }
    }
    line.push_str("\r\n");
    line
}

/// Redis's `sdscatrepr`: a quoted string with escapes for quotes, backslashes and
/// bytes that are not printable ASCII.
pub fn repr(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_escapes_as_redis() {
        let mut s = String::new();
        repr(&mut s, b"a\"b\\c\n\x01\xff");
        assert_eq!(s, r#""a\"b\\c\n\x01\xff""#);
    }

    #[test]
    fn latency_keeps_the_worst_of_each_second_and_a_bounded_history() {
        let l = Latency::default();
        l.observe("command", Duration::from_millis(50));
        assert!(l.events().is_empty(), "off while the threshold is 0");
        l.threshold_ms.store(10, Ordering::Relaxed);
        l.observe("command", Duration::from_millis(5));
        l.observe("command", Duration::from_millis(30));
        l.observe("command", Duration::from_millis(20));
        let events = l.events();
        assert_eq!(events.len(), 1);
        let (name, e) = &events[0];
        assert_eq!(*name, "command");
        assert_eq!(e.max_ms, 30);
        assert!(e.samples.len() <= 2);
        assert_eq!(l.reset(&[]), 1);
    }
}
