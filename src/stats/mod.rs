//! Server-wide counters for INFO (`stats`, `errorstats`, `analytics`). Connections
//! add their counts once per batch; the ones every request bumps are [`Striped`].
//! Per-command figures are in [`commands`].

pub mod commands;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ERROR_KINDS, ErrorKind};
use crate::stripe::Striped;

/// Times a command for its statistics: the monotonic clock in nanoseconds.
///
/// Every command is timed; `Instant::now` and `Instant::elapsed` spent ~280
/// instructions a command between them (callgrind: the checks and conversions around
/// the vDSO's `clock_gettime`), this ~80. The same clock as `Instant` on Linux.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(u64);

impl Stopwatch {
    fn now_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on
        // Linux, and on failure `ts` stays zero (a zero time, never undefined).
        unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        }
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }

    /// Starts timing.
    pub fn start() -> Self {
        Stopwatch(Self::now_ns())
    }

    /// The time since [`Stopwatch::start`].
    pub fn elapsed(self) -> std::time::Duration {
        std::time::Duration::from_nanos(Self::now_ns().saturating_sub(self.0))
    }

    /// The instant it started, for the rare command whose reply comes later.
    pub fn started(self) -> std::time::Instant {
        let now = std::time::Instant::now();
        now.checked_sub(self.elapsed()).unwrap_or(now)
    }
}

/// Server-wide counters; see the module doc.
#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_commands_processed: Striped,
    pub total_error_replies: AtomicU64,
    /// Error replies by [`ErrorKind::index`].
    pub error_kinds: [AtomicU64; ERROR_KINDS],
    pub protocol_errors: AtomicU64,
    /// Failed AUTH / HELLO ... AUTH attempts (`acl_access_denied_auth`, as Redis).
    pub auth_failures: AtomicU64,
    pub query_buffer_disconnections: AtomicU64,
    pub output_buffer_disconnections: AtomicU64,
    pub events_accepted: Striped,
    pub events_rejected: AtomicU64,
    pub events_late: AtomicU64,
    pub events_future: AtomicU64,
    pub net_input_bytes: Striped,
    pub net_output_bytes: Striped,
    /// Calls, time, errors and latency by command.
    pub commands: commands::CommandStats,
}

impl Stats {
    /// Counts an error reply of `kind`.
    pub fn count_error(&self, kind: ErrorKind) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.error_kinds.get(kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Error replies of `kind` so far.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.error_kinds
            .get(kind.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
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
            &self.auth_failures,
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
        self.commands.reset();
    }
}
