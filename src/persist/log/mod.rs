//! The window log (`--appendonly yes`): every event the store accepts, on disk, so a
//! `kill -9` loses nothing acknowledged (`appendfsync always`) or at most the last
//! second or so (`everysec`).
//!
//! # Flow
//!
//! ```text
//! serving thread ──(its lane: plain bytes, its own lock)──┐
//! serving thread ──(its lane)─────────────────────────────┤
//!                                                         ▼
//!                    log thread: one group commit per round:
//!                    lanes swapped out → records encoded into ONE segment
//!                    stream (ids interned per segment) → write → fdatasync
//!                    → (always) events counted, tickets fulfilled
//! ```
//!
//! - `everysec` / `no`: the serving thread counts the events, then appends the
//!   accepted ones to its lane under the lane's lock (so a `SAVE` cut, which takes
//!   every lane's lock, sees each batch whole on one side). The reply goes out at
//!   once; the log thread writes within moments and fsyncs once a second
//!   (`everysec`) or never (`no`).
//! - `always`: the serving thread checks the events' time, appends them to its lane
//!   as *pending* and hands its connection a [`Ticket`]. The connection writes no
//!   further reply until the ticket is fulfilled: after the round's write and its one
//!   `fdatasync` (shared by every waiting connection of every thread), the log thread
//!   counts the events — durable first, counted second, so a failed write leaves
//!   nothing counted and the events are refused with `-MISCONF`.
//! - One segment stream, not one per serving thread: a round costs one
//!   `fdatasync`, whatever the number of threads. Measured on the reference machine
//!   (a VM disk): `write` + `fdatasync` of one file 0.27 ms mean (p99 0.43 ms), of
//!   two files one after the other 0.51 ms (p99 0.86 ms) — per-thread segments would
//!   double the latency of every `always` round with two threads.
//!
//! Segments ([`format`]) cover a span of seconds (a tenth of the window, 1 to 10 s)
//! and at most [`SEGMENT_MAX_BYTES`]; a closed segment is deleted once its newest
//! second has left the window, so disk use is about one window of traffic. Start-up
//! ([`replay`]) loads the snapshot, then the segments after it, in the background
//! while clients get `-LOADING`.

mod dict;
mod format;
mod lane;
mod replay;
mod ticket;
mod writer;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

pub use lane::LogEvent;
pub use ticket::{Outcome, Ticket};

use crate::config::Config;
use crate::store::AddError;
use lane::{APPLIED, FLAG_GROW, Lane, PENDING};

/// The log's directory under `--dir`, named as Redis 7 names its own.
pub const LOG_DIR: &str = "appendonlydir";
/// The file holding the oldest generation still to replay (written by `FLUSHALL`
/// and by `CONFIG SET appendonly yes`).
pub const MANIFEST: &str = "manifest";
/// A segment is closed at this size even before its span of seconds ends: a reader
/// holds one whole segment in memory.
pub const SEGMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes a serving thread's lane may hold before the connection appending to it
/// waits for the log thread to write them (`everysec`, `no`: while the disk is
/// slow, connections wait instead of memory growing; ~500,000 events).
pub const LANE_LIMIT: usize = 32 * 1024 * 1024;
/// Longest time covered by one segment, in seconds (a tenth of the window, at least
/// one second): the disk holds about `window + span` seconds of events.
pub const SEGMENT_MAX_SPAN: i64 = 10;

/// When the log fsyncs, as Redis's `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    /// Before any reply to the events: one `fdatasync` per group commit.
    Always,
    /// Once a second, in the background.
    Everysec,
    /// Never: the operating system writes the pages back when it likes.
    No,
}

impl Fsync {
    /// The name `CONFIG GET appendfsync` shows.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }

    fn from_u8(v: u8) -> Fsync {
        match v {
            0 => Fsync::Always,
            1 => Fsync::Everysec,
            _ => Fsync::No,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Fsync::Always => 0,
            Fsync::Everysec => 1,
            Fsync::No => 2,
        }
    }

    /// Parses a `CONFIG SET` value.
    pub fn parse(s: &str) -> Option<Fsync> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(Fsync::Always),
            "everysec" => Some(Fsync::Everysec),
            "no" => Some(Fsync::No),
            _ => None,
        }
    }
}

/// What became of a batch handed to the log.
#[derive(Debug)]
pub enum Appended {
    /// Counted now (everysec, no, or the log is off): one result per event.
    Stored(Vec<Result<(), AddError>>),
    /// To be counted once durable (always): wait for the ticket.
    Pending(Ticket),
    /// Counted now, but the lane is full: answer once the ticket is fulfilled
    /// (what the lane holds is written).
    Held(Vec<Result<(), AddError>>, Ticket),
    /// Refused whole: the last write to the log failed (its error).
    Failing(Arc<str>),
    /// Refused whole: at the memory limit, with `always` (which events would need a
    /// new record is known only once they are counted, after the write).
    NoMemory,
}

/// Counters for INFO `# Persistence`.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Bytes of all segments on disk.
    pub current_size: AtomicU64,
    pub segments: AtomicU64,
    pub fsyncs: AtomicU64,
    /// Unix seconds of the last successful fsync (0: none yet).
    pub last_fsync: AtomicI64,
    pub write_errors: AtomicU64,
    /// Torn last frames dropped at start-up.
    pub torn: AtomicU64,
    /// Damaged segments skipped at start-up (`--aof-skip-damaged yes`).
    pub skipped: AtomicU64,
    pub replayed_events: AtomicU64,
    pub loading_started: AtomicI64,
    pub loading_total: AtomicU64,
    pub loading_done: AtomicU64,
}

/// Requests to the log thread.
enum Control {
    /// `SAVE` / the save at shutdown: snapshot, then segments before it go.
    Save(Sender<Result<(), String>>),
    /// `FLUSHALL`: the window and the log emptied together.
    FlushAll(Sender<Result<(), String>>),
    /// `CONFIG SET appendonly yes|no`.
    Enable(bool, Sender<Result<(), String>>),
    /// Start-up replay finished: the segments it kept, and the newest `now` seen.
    Loaded(Vec<writer::Closed>, i64),
    /// Write what is left, fsync, stop.
    Stop(Sender<()>),
}

/// The log's shared state; see the module doc.
#[derive(Debug)]
pub struct Log {
    /// Tells this log's lanes from another's in a thread's list (tests run several
    /// servers in one process).
    id: u64,
    dir: PathBuf,
    fsync: AtomicU8,
    enabled: AtomicBool,
    loading: AtomicBool,
    /// Set while writes fail: events are refused until one succeeds.
    failing: AtomicBool,
    /// Set while the log thread sleeps long (it wrote nothing lately): appends must
    /// wake it.
    idle: AtomicBool,
    /// Set while the log thread gathers a group commit: every waiting append wakes it.
    gathering: AtomicBool,
    last_error: Mutex<Option<Arc<str>>>,
    /// Why the server must not start (damage found by the replay).
    fatal: Mutex<Option<String>>,
    lanes: Mutex<Vec<Arc<Lane>>>,
    /// The log thread, to wake it.
    thread: OnceLock<std::thread::Thread>,
    control: Mutex<Option<Sender<Control>>>,
    joins: Mutex<Vec<JoinHandle<()>>>,
    /// The current generation; a snapshot saved now carries it.
    generation: AtomicU64,
    skip_damaged: bool,
    plan: Mutex<Option<replay::Plan>>,
    pub stats: LogStats,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's lanes, by the id of the log they belong to.
    static MINE: RefCell<Vec<(u64, Arc<Lane>)>> = const { RefCell::new(Vec::new()) };
}

/// What start-up decided about the snapshot and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Whether the snapshot is to be loaded: `false` when the log was started over
    /// after it (`FLUSHALL`, `CONFIG SET appendonly yes`), so the log alone holds
    /// the window.
    pub use_snapshot: bool,
    /// With the event or manual clock: the newest `now` the log holds, where the
    /// clock resumes (or at the snapshot's, if later) before the store is built.
    pub log_now: Option<i64>,
}

impl Log {
    /// Opens the log for `config`: lists `--dir`, drops segments a snapshot of
    /// generation `snapshot_gen` covers, and plans the replay of the rest.
    pub fn open(config: &Config, snapshot_gen: Option<u64>) -> Result<(Log, Opened), String> {
        let dir = config.dir.join(LOG_DIR);
        let found =
            replay::list(&dir).map_err(|e| format!("log directory {}: {e}", dir.display()))?;
        let manifest = replay::read_manifest(&dir)?;
        let use_snapshot = !config.appendonly || snapshot_gen.is_none_or(|g| g >= manifest);
        let from = if use_snapshot {
            snapshot_gen.unwrap_or(0).max(manifest)
        } else {
            manifest
        };
        let newest = found.iter().map(|s| s.generation).max();
        let generation = from.max(newest.map_or(0, |g| g + 1)).max(1);
        let mut plan = Vec::new();
        if config.appendonly {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
            replay::check_writable(&dir)?;
            for seg in found {
                if seg.generation < from {
                    tracing::info!(path = %seg.path.display(), "log segment covered by the snapshot: removed");
                    let _ = std::fs::remove_file(&seg.path);
                } else {
                    plan.push(seg);
                }
            }
            if !use_snapshot {
                tracing::warn!(
                    "the snapshot is older than the log's start (FLUSHALL or CONFIG SET appendonly yes since): the log alone is loaded"
                );
            }
        }
        let log_now = if config.clock == crate::clock::ClockMode::Wall {
            None
        } else {
            replay::newest_now(&plan)
        };
        let log = Log {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dir,
            fsync: AtomicU8::new(config.appendfsync.to_u8()),
            enabled: AtomicBool::new(config.appendonly),
            loading: AtomicBool::new(!plan.is_empty()),
            failing: AtomicBool::new(false),
            idle: AtomicBool::new(true),
            gathering: AtomicBool::new(false),
            last_error: Mutex::new(None),
            fatal: Mutex::new(None),
            lanes: Mutex::new(Vec::new()),
            thread: OnceLock::new(),
            control: Mutex::new(None),
            joins: Mutex::new(Vec::new()),
            generation: AtomicU64::new(generation),
            skip_damaged: config.aof_skip_damaged,
            plan: Mutex::new(Some(replay::Plan { segments: plan })),
            stats: LogStats::default(),
        };
        Ok((
            log,
            Opened {
                use_snapshot,
                log_now,
            },
        ))
    }

    /// Whether events are logged (`appendonly`).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The fsync policy.
    pub fn fsync(&self) -> Fsync {
        Fsync::from_u8(self.fsync.load(Ordering::Relaxed))
    }

    /// `CONFIG SET appendfsync`.
    pub fn set_fsync(&self, f: Fsync) {
        self.fsync.store(f.to_u8(), Ordering::Relaxed);
        self.wake();
    }

    /// Whether the start-up replay is still running: clients get `-LOADING`.
    pub fn loading(&self) -> bool {
        self.loading.load(Ordering::Relaxed)
    }

    /// Whether the last write failed (events are refused).
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// The error of the last failed write.
    pub fn last_error(&self) -> Arc<str> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| Arc::from("unknown error"))
    }

    fn set_failing(&self, error: Option<Arc<str>>) {
        let failing = error.is_some();
        if let Some(e) = error {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(e);
        }
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// The generation a snapshot saved now belongs to.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Why the server must stop (damage found while loading).
    pub fn fatal(&self) -> Option<String> {
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_fatal(&self, why: String) {
        *self.fatal.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// The log's directory (`<dir>/appendonlydir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// This thread's lane, registered on first use.
    fn lane(&self) -> Arc<Lane> {
        MINE.try_with(|mine| {
            if let Some((_, lane)) = mine.borrow().iter().find(|(id, _)| *id == self.id) {
                return lane.clone();
            }
            let lane = self.register();
            let mut mine = mine.borrow_mut();
            // Lanes of logs that are gone: only this list still holds them.
            mine.retain(|(_, l)| Arc::strong_count(l) > 1);
            mine.push((self.id, lane.clone()));
            lane
        })
        // The thread is being torn down: a lane of its own for this once.
        .unwrap_or_else(|_| self.register())
    }

    fn register(&self) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        // Read under the registry's lock: switching the log on or off holds it.
        let lane = Arc::new(Lane::new(self.enabled()));
        lanes.push(lane.clone());
        lane
    }

    /// Hands a batch of admitted events to the log. `apply` counts them in the
    /// store (called at once, or never with `always`); `events` are the same
    /// events, read after `apply` to log the ones it accepted. `grow`: the memory
    /// limit is not reached.
    pub fn append<'e>(
        &self,
        grow: bool,
        events: impl Iterator<Item = LogEvent<'e>>,
        apply: impl FnOnce() -> Vec<Result<(), AddError>>,
    ) -> Appended {
        let lane = self.lane();
        let mut buf = lane.lock();
        if !buf.on {
            return Appended::Stored(apply());
        }
        if self.failing() {
            return Appended::Failing(self.last_error());
        }
        let was_empty = buf.raw.is_empty();
        let (out, urgent) = if self.fsync() == Fsync::Always {
            if !grow {
                return Appended::NoMemory;
            }
            let (ticket, promise) = ticket::pair();
            buf.push(PENDING, FLAG_GROW, events, Some(promise));
            (Appended::Pending(ticket), true)
        } else {
            let results = apply();
            let mut each = results.iter();
            let accepted = events.filter(|_| matches!(each.next(), Some(Ok(()))));
            buf.push(APPLIED, 0, accepted, None);
            if buf.raw.len() > LANE_LIMIT {
                let (ticket, promise) = ticket::pair();
                buf.push_mark(promise);
                (Appended::Held(results, ticket), true)
            } else {
                (Appended::Stored(results), false)
            }
        };
        let wake = was_empty && !buf.raw.is_empty();
        drop(buf);
        if wake {
            self.nudge(urgent);
        } else if urgent && self.gathering.load(Ordering::Relaxed) {
            // The log thread counts the connections coming back for its next round.
            self.wake();
        }
        out
    }

    /// After a lane went from empty to not: a connection waits on it (`urgent`),
    /// or the log thread sleeps long (nothing was written lately) — wake it; else it
    /// comes by within [`writer::FLUSH_EVERY`] anyway, and the serving thread
    /// makes no system call.
    fn nudge(&self, urgent: bool) {
        // Pairs with the log thread's store of `idle` and its look at the lanes.
        std::sync::atomic::fence(Ordering::SeqCst);
        if urgent || self.idle.load(Ordering::Relaxed) {
            self.wake();
        }
    }

    /// Logs a move of the manual clock to `now`; with `always`, the ticket the
    /// reply waits for.
    pub fn clock_moved(&self, now: i64) -> Option<Ticket> {
        let lane = self.lane();
        let mut buf = lane.lock();
        if !buf.on {
            return None;
        }
        let was_empty = buf.raw.is_empty();
        let ticket = if self.fsync() == Fsync::Always {
            let (t, p) = ticket::pair();
            buf.push_clock(now, Some(p));
            Some(t)
        } else {
            buf.push_clock(now, None);
            None
        };
        drop(buf);
        if was_empty {
            self.nudge(ticket.is_some());
        }
        ticket
    }

    /// Sends `make`'s request to the log thread and waits for its answer.
    fn request<R>(&self, make: impl FnOnce(Sender<R>) -> Control) -> Result<R, String> {
        let (tx, rx) = mpsc::channel();
        {
            let control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = control.as_ref().ok_or("the log is not running")?;
            sender
                .send(make(tx))
                .map_err(|_| "the log thread stopped".to_string())?;
        }
        self.wake();
        rx.recv().map_err(|_| "the log thread stopped".to_string())
    }

    /// Whether the log thread runs (between `start` and `stop`).
    pub fn running(&self) -> bool {
        self.control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// `SAVE` through the log thread: the snapshot, and a cut of the log after it.
    pub fn save(&self) -> Result<(), String> {
        self.request(Control::Save)?
    }

    /// `FLUSHALL` through the log thread.
    pub fn flush_all(&self) -> Result<(), String> {
        self.request(Control::FlushAll)?
    }

    /// `CONFIG SET appendonly yes|no`.
    pub fn set_enabled(&self, on: bool) -> Result<(), String> {
        if on == self.enabled() {
            return Ok(());
        }
        if self.loading() {
            return Err("the log is still being loaded".to_string());
        }
        self.request(|tx| Control::Enable(on, tx))?
    }
}

/// Starts the log thread (and the start-up replay, when there is one).
pub fn start(shared: &Arc<crate::shared::Shared>) -> std::io::Result<()> {
    let log = &shared.log;
    let (tx, rx): (Sender<Control>, Receiver<Control>) = mpsc::channel();
    let plan = log
        .plan
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_default();
    let loading = !plan.segments.is_empty();
    let s = shared.clone();
    let writer = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || writer::run(s, rx, loading))?;
    let _ = log.thread.set(writer.thread().clone());
    *log.control.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    let mut joins = log.joins.lock().unwrap_or_else(PoisonError::into_inner);
    joins.push(writer);
    if loading {
        let s = shared.clone();
        joins.push(
            std::thread::Builder::new()
                .name("log-replay".into())
                .spawn(move || replay::run(s, plan))?,
        );
    }
    Ok(())
}

/// Stops the log: waits for the replay (it stops early at shutdown), then the log
/// thread writes what is left, fsyncs and ends.
pub fn stop(log: &Log) {
    let replay: Vec<JoinHandle<()>> = {
        let mut joins = log.joins.lock().unwrap_or_else(PoisonError::into_inner);
        joins
            .iter()
            .position(|j| j.thread().name() == Some("log-replay"))
            .map(|i| joins.remove(i))
            .into_iter()
            .collect()
    };
    for j in replay {
        let _ = j.join();
    }
    let _ = log.request(Control::Stop);
    *log.control.lock().unwrap_or_else(PoisonError::into_inner) = None;
    let joins: Vec<JoinHandle<()>> =
        std::mem::take(&mut *log.joins.lock().unwrap_or_else(PoisonError::into_inner));
    for j in joins {
        let _ = j.join();
    }
}

/// Writes to a file past the process's file-size limit fail with `EFBIG` instead
/// of killing the process (SIGXFSZ), so a full log is an error the server reports
/// and recovers from (`ulimit -f` is how the tests fill the disk without root).
pub fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: installs the predefined "ignore" disposition for one signal; no
    // handler code runs, and nothing else in the process handles SIGXFSZ.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn open_in(dir: &Path, fsync: &str) -> Log {
        let config = Config::try_parse_from([
            "x",
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
            "--dir",
            dir.to_str().unwrap(),
        ])
        .unwrap();
        Log::open(&config, None).unwrap().0
    }

    #[test]
    fn a_full_lane_holds_its_connection_back_instead_of_growing() {
        let dir = std::env::temp_dir().join(format!("sa-lane-limit-{}", std::process::id()));
        let log = open_in(&dir, "everysec");
        // No log thread here: nothing drains the lane.
        let user = "u".repeat(500);
        let ev = LogEvent {
            user: &user,
            event_type: "t",
            second: 100,
            value: Some(1.0),
            now: 100,
        };
        let batch = [ev; 1000];
        let mut held = None;
        for round in 0..200 {
            match log.append(true, batch.iter().copied(), || vec![Ok(()); batch.len()]) {
                Appended::Stored(r) => assert_eq!(r.len(), 1000, "round {round}"),
                Appended::Held(r, t) => {
                    assert_eq!(r.len(), 1000);
                    held = Some((round, t));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        let (round, ticket) = held.expect("the lane never filled up");
        // ~530 bytes an event: held once past the limit, not before.
        assert!(
            round >= LANE_LIMIT / (1000 * 540),
            "held too early: {round}"
        );
        assert!(
            round <= LANE_LIMIT / (1000 * 500) + 1,
            "held too late: {round}"
        );
        // The ticket waits for the log thread; its lane (and promise) going away
        // fails it rather than leaving the connection waiting.
        drop(log);
        MINE.with(|m| m.borrow_mut().clear());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(ticket.wait());
        assert!(ticket.outcome().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_always_events_wait_and_at_the_memory_limit_the_batch_is_refused() {
        let dir = std::env::temp_dir().join(format!("sa-always-{}", std::process::id()));
        let log = open_in(&dir, "always");
        let ev = LogEvent {
            user: "a",
            event_type: "t",
            second: 5,
            value: None,
            now: 5,
        };
        let applied = std::cell::Cell::new(false);
        let apply = || {
            applied.set(true);
            vec![Ok(())]
        };
        assert!(matches!(
            log.append(true, [ev].into_iter(), apply),
            Appended::Pending(_)
        ));
        assert!(
            !applied.get(),
            "with always, nothing is counted before it is durable"
        );
        assert!(matches!(
            log.append(false, [ev].into_iter(), || vec![Ok(())]),
            Appended::NoMemory
        ));
        log.set_failing(Some(Arc::from("disk full")));
        match log.append(true, [ev].into_iter(), || vec![Ok(())]) {
            Appended::Failing(why) => assert_eq!(&*why, "disk full"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
