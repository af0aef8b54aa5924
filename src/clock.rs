//! The server's `now`, in whole Unix seconds.
//!
//! The store never reads a clock: every operation is handed `now` by the caller, so
//! tests (and the manual clock) move time by hand. This type owns the one place where
//! `now` comes from, in the mode the operator chose.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest timestamp accepted: Unix seconds must fit the store's u32 seconds (year 2106).
pub const MAX_TIMESTAMP: u64 = u32::MAX as u64;

/// Where `now` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockMode {
    /// The system clock.
    Wall,
    /// The largest event timestamp accepted so far (replaying recorded streams).
    Event,
    /// Starts at the wall time; moves only by `EVT.CLOCK SET|ADVANCE`.
    Manual,
}

impl ClockMode {
    /// The byte a snapshot or a log segment records the clock as.
    pub fn to_byte(self) -> u8 {
        match self {
            ClockMode::Wall => 0,
            ClockMode::Event => 1,
            ClockMode::Manual => 2,
        }
    }

    /// The clock a snapshot's or a segment's byte names, if it names one.
    pub fn from_byte(byte: u8) -> Option<ClockMode> {
        match byte {
            0 => Some(ClockMode::Wall),
            1 => Some(ClockMode::Event),
            2 => Some(ClockMode::Manual),
            _ => None,
        }
    }

    /// The name `CONFIG GET clock` and INFO show.
    pub fn name(self) -> &'static str {
        match self {
            ClockMode::Wall => "wall",
            ClockMode::Event => "event",
            ClockMode::Manual => "manual",
        }
    }
}

/// The clock; see the module doc.
#[derive(Debug)]
pub struct Clock {
    mode: ClockMode,
    /// The event or manual clock's `now`; unused by the wall clock.
    now: AtomicI64,
}

/// Why the clock did not move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockError {
    /// Only the manual clock moves by command.
    NotManual(ClockMode),
    /// The clock never goes back.
    Backwards { now: i64 },
    /// Past the largest timestamp an event may carry.
    OutOfRange,
}

impl std::fmt::Display for ClockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockError::NotManual(mode) => write!(
                f,
                "the clock is '{}'; EVT.CLOCK SET/ADVANCE need --clock manual",
                mode.name()
            ),
            ClockError::Backwards { now } => {
                write!(f, "the clock never moves backwards (now is {now})")
            }
            ClockError::OutOfRange => write!(f, "the clock cannot pass {MAX_TIMESTAMP}"),
        }
    }
}

/// Seconds since the Unix epoch by the system clock.
pub fn wall_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Clock {
    /// A clock in `mode`. The manual clock starts at `start` (`--clock-start`), else
    /// at the wall time; the event clock at 0, until the first event.
    pub fn new(mode: ClockMode, start: Option<i64>) -> Self {
        let start = match mode {
            ClockMode::Event => 0,
            ClockMode::Manual => start.unwrap_or_else(wall_seconds),
            ClockMode::Wall => wall_seconds(),
        };
        Clock {
            mode,
            now: AtomicI64::new(start),
        }
    }

    /// The mode.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Puts the event or manual clock at `now` (a snapshot was loaded); the wall clock
    /// ignores it.
    pub fn resume(&self, now: i64) {
        if self.mode != ClockMode::Wall {
            self.now.store(now, Ordering::Release);
        }
    }

    /// `now`.
    pub fn now(&self) -> i64 {
        match self.mode {
            ClockMode::Wall => wall_seconds(),
            ClockMode::Event | ClockMode::Manual => self.now.load(Ordering::Acquire),
        }
    }

    /// With the event clock, moves `now` up to `timestamp` if it is later, and returns
    /// `now`; other clocks just return `now`.
    pub fn observe(&self, timestamp: i64) -> i64 {
        match self.mode {
            ClockMode::Event => {
                // Read first: most events are not the newest, and a plain load keeps the
                // line shared between cores instead of bouncing it on every event.
                let now = self.now.load(Ordering::Acquire);
                if timestamp > now {
                    self.now
                        .fetch_max(timestamp, Ordering::AcqRel)
                        .max(timestamp)
                } else {
                    now
                }
            }
            _ => self.now(),
        }
    }

    /// Sets the manual clock.
    pub fn set(&self, to: i64) -> Result<i64, ClockError> {
        if self.mode != ClockMode::Manual {
            return Err(ClockError::NotManual(self.mode));
        }
        if to > MAX_TIMESTAMP as i64 {
            return Err(ClockError::OutOfRange);
        }
        let mut now = self.now.load(Ordering::Acquire);
        loop {
            if to < now {
                return Err(ClockError::Backwards { now });
            }
            match self
                .now
                .compare_exchange(now, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(to),
                Err(actual) => now = actual,
            }
        }
    }

    /// Moves the manual clock forward by `by` seconds.
    pub fn advance(&self, by: i64) -> Result<i64, ClockError> {
        if self.mode != ClockMode::Manual {
            return Err(ClockError::NotManual(self.mode));
        }
        if by < 0 {
            return Err(ClockError::Backwards { now: self.now() });
        }
        let mut now = self.now.load(Ordering::Acquire);
        loop {
            let to = now.checked_add(by).filter(|&t| t <= MAX_TIMESTAMP as i64);
            let Some(to) = to else {
                return Err(ClockError::OutOfRange);
            };
            match self
                .now
                .compare_exchange(now, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(to),
                Err(actual) => now = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_moves_only_forward() {
        let c = Clock::new(ClockMode::Manual, None);
        let start = c.now();
        assert_eq!(c.advance(10), Ok(start + 10));
        assert_eq!(
            c.set(start + 5),
            Err(ClockError::Backwards { now: start + 10 })
        );
        assert_eq!(c.set(start + 100), Ok(start + 100));
        assert_eq!(
            c.advance(-1),
            Err(ClockError::Backwards { now: start + 100 })
        );
        assert_eq!(c.set(MAX_TIMESTAMP as i64 + 1), Err(ClockError::OutOfRange));
    }

    #[test]
    fn event_clock_follows_the_newest_event() {
        let c = Clock::new(ClockMode::Event, None);
        assert_eq!(c.now(), 0);
        assert_eq!(c.observe(1678886400), 1678886400);
        assert_eq!(c.observe(1678886300), 1678886400);
        assert_eq!(c.set(5), Err(ClockError::NotManual(ClockMode::Event)));
    }

    #[test]
    fn wall_clock_ignores_events() {
        let c = Clock::new(ClockMode::Wall, None);
        let now = c.now();
        assert!(c.observe(now + 1000) < now + 1000);
        assert!(matches!(c.advance(1), Err(ClockError::NotManual(_))));
    }
}
