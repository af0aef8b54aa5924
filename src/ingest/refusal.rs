//! Why an event is refused, checked against the clock once per batch, and how
//! each outcome is answered, logged and counted in INFO.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::clients::ClientInfo;
use crate::clock::ClockMode;
use crate::config::Settings;
use crate::error::{ErrorKind, ReplyError};
use crate::event::{Event, EventError};
use crate::protocol::Reply;
use crate::shared::Shared;

/// The longest reply to one event: `+OK`, or an error of at most this many bytes
/// (longer messages are cut), so the reply to `EVT.MADD` is bounded by its length.
pub const MAX_EVENT_REPLY: usize = 256;

/// Why an event was refused, and how INFO counts it.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    Invalid(EventError),
    Late {
        timestamp: u64,
        now: i64,
        window: u32,
    },
    Future {
        timestamp: u64,
        now: i64,
        skew: u64,
    },
    /// Would move the event clock forward by more than `--max-clock-jump`.
    Jump {
        timestamp: u64,
        now: i64,
        jump: i64,
    },
    NoMemory,
    /// Cluster mode: another node serves the user (`-MOVED`).
    Moved(ReplyError),
    /// The log could not be written (its error); nothing was counted.
    Misconf(Arc<str>),
}

impl Rejection {
    /// Refused as older than the window, which the store's clock has passed (read
    /// now, for the reply).
    pub fn late(shared: &Shared, timestamp: u64, window: u32) -> Self {
        Rejection::Late {
            timestamp,
            now: shared.clock.now(),
            window,
        }
    }

    /// The error reply.
    pub fn error(&self) -> ReplyError {
        match self {
            Rejection::Invalid(e) => ReplyError::err(format!("invalid event: {e}")),
            Rejection::Late {
                timestamp,
                now,
                window,
            } => ReplyError::err(format!(
                "event is older than the window: timestamp {timestamp} <= now {now} - window {window}"
            )),
            Rejection::Future {
                timestamp,
                now,
                skew,
            } => ReplyError::err(format!(
                "event is too far in the future: timestamp {timestamp} > now {now} + max-future-skew {skew}"
            )),
            Rejection::Jump {
                timestamp,
                now,
                jump,
            } => ReplyError::err(format!(
                "event is too far in the future: timestamp {timestamp} > now {now} + max-clock-jump {jump}"
            )),
            Rejection::NoMemory => ReplyError::new(
                ErrorKind::Oom,
                "command not allowed when used memory > 'maxmemory'.",
            ),
            Rejection::Moved(e) => e.clone(),
            Rejection::Misconf(why) => ReplyError::new(
                ErrorKind::Misconf,
                format!("Errors writing to the AOF file: {why}"),
            ),
        }
    }
}

/// The checks of an event's time against the clock, read once per batch.
pub(super) struct Admission {
    pub(super) window: u32,
    skew: u64,
    /// With the event clock: the most one event may move it forward.
    max_jump: i64,
    event_clock: bool,
    batch_now: i64,
}

impl Admission {
    pub(super) fn new(shared: &Shared, now: Option<i64>) -> Self {
        Admission {
            window: shared.store.window(),
            skew: shared.settings.max_future_skew.load(Ordering::Relaxed),
            max_jump: i64::try_from(Settings::get(&shared.settings.max_clock_jump))
                .unwrap_or(i64::MAX),
            event_clock: shared.clock.mode() == ClockMode::Event,
            batch_now: now.unwrap_or_else(|| shared.clock.now()),
        }
    }

    /// The event's `now`, or why it is refused.
    #[inline]
    pub(super) fn check(&self, shared: &Shared, ev: &Event<'_>) -> Result<i64, Rejection> {
        let ts = i64::from(ev.timestamp);
        let now = if self.event_clock {
            // The clock at 0 has seen no event yet: the first one sets it.
            let before = shared.clock.now();
            if before > 0 && ts > before.saturating_add(self.max_jump) {
                return Err(Rejection::Jump {
                    timestamp: ev.timestamp.into(),
                    now: before,
                    jump: self.max_jump,
                });
            }
            shared.clock.observe(ts)
        } else {
            self.batch_now
        };
        if ts <= now - i64::from(self.window) {
            Err(Rejection::Late {
                timestamp: ev.timestamp.into(),
                now,
                window: self.window,
            })
        } else if ts > now.saturating_add(self.skew as i64) {
            Err(Rejection::Future {
                timestamp: ev.timestamp.into(),
                now,
                skew: self.skew,
            })
        } else {
            Ok(now)
        }
    }
}

/// Counts of a batch's outcomes, added to INFO once per batch.
#[derive(Default)]
pub(super) struct Tally {
    accepted: u64,
    rejected: u64,
    late: u64,
    future: u64,
}

impl Tally {
    /// The reply for one event's outcome; refusals are counted and logged.
    #[inline]
    pub(super) fn reply(
        &mut self,
        shared: &Shared,
        peer: &ClientInfo,
        bytes: usize,
        outcome: Result<(), Rejection>,
    ) -> Reply {
        let r = match outcome {
            Ok(()) => {
                self.accepted += 1;
                return Reply::Ok;
            }
            // A redirection, not a refusal: the client sends it on to its node.
            Err(Rejection::Moved(e)) => return Reply::Error(e),
            Err(r) => r,
        };
        self.rejected += 1;
        match r {
            Rejection::Late { .. } => self.late += 1,
            Rejection::Future { .. } | Rejection::Jump { .. } => self.future += 1,
            Rejection::Invalid(_)
            | Rejection::NoMemory
            | Rejection::Moved(_)
            | Rejection::Misconf(_) => {}
        }
        let mut error = r.error();
        if error.msg.len() > MAX_EVENT_REPLY - 16 {
            let mut cut = MAX_EVENT_REPLY - 16;
            while !error.msg.is_char_boundary(cut) {
                cut -= 1;
            }
            error.msg = error.msg[..cut].to_string().into();
        }
        if let Some(suppressed) = shared.may_log() {
            tracing::warn!(
                peer = %peer.addr,
                client_id = peer.id,
                error = %error,
                bytes,
                suppressed,
                "event rejected"
            );
        }
        Reply::Error(error)
    }

    #[inline]
    pub(super) fn record(&self, shared: &Shared) {
        let s = &shared.stats;
        if self.accepted > 0 {
            s.events_accepted.add(self.accepted);
        }
        if self.rejected > 0 {
            s.events_rejected
                .fetch_add(self.rejected, Ordering::Relaxed);
            s.events_late.fetch_add(self.late, Ordering::Relaxed);
            s.events_future.fetch_add(self.future, Ordering::Relaxed);
        }
    }
}
