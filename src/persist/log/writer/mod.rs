//! The log thread: group commits, segments, fsync, counting `always` events, the
//! cut of `SAVE`/`FLUSHALL`, deleting segments that left the window, and recovery
//! from failed writes.
//!
//! # A round
//!
//! Wake (a lane went from empty to not, a request, or the one-second tick) → swap
//! every lane's buffer out → encode all their items as frames of the current
//! segment → one `write` → one `fdatasync` when `always` items wait (or the second
//! is up with `everysec`) → count the pending events in the store → fulfil their
//! promises. Connections waiting meanwhile fill the lanes for the next round: that is
//! the group commit.
//!
//! # Failure
//!
//! A failed write or fsync truncates the segment back to its last whole frame and
//! closes it (its dictionary of ids is no longer what the file holds), marks the
//! log as failing (events are refused with `-MISCONF` until a write succeeds),
//! fails the pending items (their events were never counted), and keeps the already
//! counted ones (`everysec`, `no`) to write again. Once a second the thread tries
//! again in a new segment.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

mod cut;
mod segments;

use super::format::{self, Encoder, Header};
use super::lane::{self, CLOCK, FLAG_PROMISE, LaneBuf, MARK, PENDING};
use super::ticket::Promise;
use super::{Control, Fsync, Log};
use crate::persist::{Addition, add};
use crate::prefetch;
use crate::shared::Shared;

/// How often a failing log tries to write again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// The periodic work (everysec fsync, deleting old segments, closing an idle
/// segment) runs this often.
const TICK: Duration = Duration::from_secs(1);
/// While events arrive, the log thread writes what the lanes hold this often
/// (`everysec`, `no`), instead of being woken by every batch: at `EVT.ADD -P 64`,
/// a wake-up and a write per batch cost more CPU than encoding the events. A crash
/// of the process loses at most this much of what was acknowledged (`always` is
/// woken at once: a connection waits).
pub const FLUSH_EVERY: Duration = Duration::from_millis(2);
/// The longest a group commit waits for the connections of the last one to come
/// back (see `Writer::gather`).
const GATHER_MAX: Duration = Duration::from_millis(2);

/// A segment no longer written to.
#[derive(Debug, Clone)]
pub struct Closed {
    pub path: PathBuf,
    pub generation: u64,
    /// Its newest event second (`i64::MIN`: none): it is deleted once this second
    /// has left the window.
    pub max_second: i64,
    pub bytes: u64,
}

/// The segment being written.
struct Segment {
    file: File,
    path: PathBuf,
    generation: u64,
    seq: u64,
    opened_now: i64,
    /// Bytes known to be in the file, whole frames only.
    len: u64,
    /// Its header is not written yet (it goes with the first frame).
    fresh: bool,
    max_second: i64,
    frames: u64,
    /// Written since the last fsync.
    dirty: bool,
    enc: Encoder,
}

/// One swapped-out lane.
#[derive(Default)]
struct Batch {
    raw: Vec<u8>,
    promises: Vec<Promise>,
}

struct Writer {
    shared: Arc<Shared>,
    seg: Option<Segment>,
    closed: VecDeque<Closed>,
    next_seq: u64,
    /// The newest `now` written so far (the header of the next segment carries it).
    max_now: i64,
    /// Already counted items whose write failed, to write again.
    retry: Batch,
    last_attempt: Option<Instant>,
    last_fsync: Instant,
    last_tick: Instant,
    loading: bool,
    out: Vec<u8>,
    spare: Vec<Vec<u8>>,
    /// Promises the last round fulfilled, and how long its fsync took (gathering).
    fulfilled_last: usize,
    last_sync_took: Duration,
}

fn log(shared: &Shared) -> &Log {
    &shared.log
}

/// Runs the log thread until it is asked to stop.
pub fn run(shared: Arc<Shared>, rx: Receiver<Control>, loading: bool) {
    let mut w = Writer {
        shared,
        seg: None,
        closed: VecDeque::new(),
        next_seq: 0,
        max_now: 0,
        retry: Batch::default(),
        last_attempt: None,
        last_fsync: Instant::now(),
        last_tick: Instant::now(),
        loading,
        out: Vec::new(),
        spare: Vec::new(),
        fulfilled_last: 0,
        last_sync_took: Duration::ZERO,
    };
    let mut busy = false;
    loop {
        let tick = TICK.saturating_sub(w.last_tick.elapsed());
        if busy {
            std::thread::park_timeout(tick.min(FLUSH_EVERY));
        } else {
            // Long sleep: appends wake us from now on. Look at the lanes once more
            // after saying so, or an append made just before would wait a second.
            w.log().idle.store(true, Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !w.lanes_empty() {
                w.log().idle.store(false, Ordering::Relaxed);
            } else {
                std::thread::park_timeout(tick);
                w.log().idle.store(false, Ordering::Relaxed);
            }
        }
        loop {
            match rx.try_recv() {
                Ok(Control::Stop(done)) => {
                    w.finish();
                    let _ = done.send(());
                    return;
                }
                Ok(c) => w.control(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    w.finish();
                    return;
                }
            }
        }
        w.gather();
        let batches = w.take_lanes();
        busy = !batches.is_empty();
        w.process(batches, false);
        if w.last_tick.elapsed() >= TICK {
            w.last_tick = Instant::now();
            w.tick();
        }
    }
}

impl Writer {
    fn log(&self) -> &Log {
        log(&self.shared)
    }

    /// Whether no lane holds anything.
    fn lanes_empty(&self) -> bool {
        let lanes = self
            .log()
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        lanes.iter().all(|l| l.lock().raw.is_empty())
    }

    /// Swaps out every lane that holds something.
    fn take_lanes(&mut self) -> Vec<Batch> {
        let shared = self.shared.clone();
        let lanes = log(&shared)
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for lane in lanes.iter() {
            let mut buf = lane.lock();
            if let Some(b) = self.swap(&mut buf) {
                out.push(b);
            }
        }
        out
    }

    fn swap(&mut self, buf: &mut LaneBuf) -> Option<Batch> {
        if buf.raw.is_empty() {
            return None;
        }
        let fresh = self.spare.pop().unwrap_or_default();
        Some(Batch {
            raw: std::mem::replace(&mut buf.raw, fresh),
            promises: std::mem::take(&mut buf.promises),
        })
    }

    fn recycle(&mut self, mut raw: Vec<u8>) {
        // Keep a few buffers, not one that grew for a burst.
        if self.spare.len() < 8 && raw.capacity() <= 4 * 1024 * 1024 {
            raw.clear();
            self.spare.push(raw);
        }
    }

    /// One round: writes `batches` (and what failed before), fsyncs as the policy
    /// says (always when `sync`), counts pending events, fulfils promises.
    fn process(&mut self, mut batches: Vec<Batch>, sync: bool) {
        if !self.retry.raw.is_empty() {
            let retry = std::mem::take(&mut self.retry);
            batches.insert(0, retry);
        }
        if batches.is_empty() {
            return;
        }
        let failing = self.log().failing();
        if failing && self.last_attempt.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
            let why = self.log().last_error();
            self.give_up(batches, &why);
            return;
        }
        let now = self.shared.clock.now();
        let round_now = batches
            .iter()
            .flat_map(|b| lane::items(&b.raw).map(|(_, i)| i.now))
            .fold(self.max_now, i64::max);
        self.max_now = round_now;
        self.rotate_if_due(now);
        let written = self.write(&batches, round_now, sync);
        match written {
            Ok(()) => {
                if failing {
                    tracing::info!("writes to the log succeed again: events are accepted");
                    self.log().set_failing(None);
                }
                self.settle(batches);
            }
            Err(e) => {
                let why: Arc<str> = Arc::from(e.as_str());
                self.failed(&why);
                self.give_up(batches, &why);
            }
        }
    }

    /// Encodes and writes the round; fsyncs when needed.
    fn write(&mut self, batches: &[Batch], round_now: i64, sync: bool) -> Result<(), String> {
        let policy = self.log().fsync();
        let mut need_sync = sync || policy == Fsync::Always;
        if self.seg.is_none() {
            self.open()?;
        }
        let Some(seg) = self.seg.as_mut() else {
            return Err("no segment".to_string());
        };
        let out = &mut self.out;
        out.clear();
        if seg.fresh {
            out.extend_from_slice(
                &Header {
                    generation: seg.generation,
                    seq: seg.seq,
                    clock: self.shared.clock.mode(),
                    window: self.shared.store.window(),
                    now: round_now,
                }
                .encode(),
            );
        }
        let mut start = format::begin_frame(out, round_now);
        let mut evs = Vec::new();
        for b in batches {
            for (_, item) in lane::items(&b.raw) {
                need_sync |=
                    item.kind == PENDING || (item.kind != MARK && item.flags & FLAG_PROMISE != 0);
                if item.kind == CLOCK || item.kind == MARK {
                    continue;
                }
                // With a million users, each id's slot and bytes are cache misses:
                // hashes first, so the events ahead can be prefetched.
                evs.clear();
                evs.extend(item.events().map(|e| (seg.enc.user_hash(e.user), e)));
                for (k, (uh, ev)) in evs.iter().enumerate() {
                    let enc = &seg.enc;
                    prefetch::ahead(
                        k,
                        |j| evs.get(j).map(|(h, _)| enc.prefetch(*h, true)).is_some(),
                        |j| evs.get(j).map(|(h, _)| enc.prefetch(*h, false)).is_some(),
                    );
                    let age = u64::try_from(round_now - i64::from(ev.second)).unwrap_or(0);
                    seg.enc
                        .event(out, ev.user, *uh, ev.event_type, age, ev.value);
                    seg.max_second = seg.max_second.max(i64::from(ev.second));
                    if out.len() - start > format::FRAME_TARGET {
                        format::end_frame(out, start);
                        start = format::begin_frame(out, round_now);
                        seg.frames += 1;
                    }
                }
            }
        }
        format::end_frame(out, start);
        seg.frames += 1;
        seg.file.write_all(out).map_err(|e| e.to_string())?;
        let wrote = out.len() as u64;
        seg.fresh = false;
        seg.len += wrote;
        seg.dirty = true;
        let shared = self.shared.clone();
        let stats = &shared.log.stats;
        stats.current_size.fetch_add(wrote, Ordering::Relaxed);
        if need_sync && let Err(e) = self.fsync() {
            // Not known to be on disk: this round's frames are cut off again.
            if let Some(seg) = self.seg.as_mut() {
                seg.len -= wrote;
            }
            let size = stats.current_size.load(Ordering::Relaxed);
            stats
                .current_size
                .fetch_sub(wrote.min(size), Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    /// fdatasyncs the current segment.
    fn fsync(&mut self) -> Result<(), String> {
        let Some(seg) = self.seg.as_mut() else {
            return Ok(());
        };
        if !seg.dirty {
            return Ok(());
        }
        let started = Instant::now();
        seg.file.sync_data().map_err(|e| e.to_string())?;
        seg.dirty = false;
        self.last_fsync = Instant::now();
        self.last_sync_took = self.last_fsync - started;
        let stats = &log(&self.shared).stats;
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        stats
            .last_fsync
            .store(crate::clock::wall_seconds(), Ordering::Relaxed);
        Ok(())
    }

    /// After a durable round: counts pending events, then fulfils all promises at
    /// once (the serving threads then answer the whole round in one go, and its
    /// clients come back together for the next one).
    fn settle(&mut self, batches: Vec<Batch>) {
        let mut done = Vec::new();
        for b in batches {
            let mut promises = b.promises.into_iter();
            for (_, item) in lane::items(&b.raw) {
                let promise = if item.flags & FLAG_PROMISE != 0 {
                    promises.next()
                } else {
                    None
                };
                let outcome = if item.kind == PENDING {
                    Ok(self.count(&item))
                } else {
                    Ok(Vec::new())
                };
                if let Some(p) = promise {
                    done.push((p, outcome));
                }
            }
            self.recycle(b.raw);
        }
        self.fulfilled_last = done.len();
        for (p, outcome) in done {
            p.fulfil(outcome);
        }
    }

    /// Connections waiting on promises not yet written.
    fn pending_promises(&self) -> usize {
        let lanes = self
            .log()
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        lanes.iter().map(|l| l.lock().promises.len()).sum()
    }

    /// Group commit's gathering: the connections answered by the last round are
    /// likely to come back at once; a round started at the first of them would
    /// leave the rest for the one after (at `-P 1` with 50 clients, 21 events per
    /// fsync instead of Redis's 49, measured). So, while fewer than that many wait,
    /// wait for them — at most the last fsync's duration, capped at [`GATHER_MAX`].
    fn gather(&mut self) {
        let expect = self.fulfilled_last;
        if expect < 2 || self.log().fsync() != Fsync::Always {
            return;
        }
        let waiting = self.pending_promises();
        if waiting == 0 || waiting >= expect {
            return;
        }
        let deadline = Instant::now() + self.last_sync_took.min(GATHER_MAX);
        self.log().gathering.store(true, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        while self.pending_promises() < expect {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::park_timeout(deadline - now);
        }
        self.log().gathering.store(false, Ordering::Relaxed);
    }

    /// Counts a pending item's events; the indexes of those too late by now.
    fn count(&self, item: &lane::Item<'_>) -> Vec<u32> {
        // The ids came from `&str`s: the check cannot fail.
        let adds: Vec<Addition<'_>> = item
            .events()
            .filter_map(|e| {
                Some(Addition {
                    user: std::str::from_utf8(e.user).ok()?,
                    event_type: std::str::from_utf8(e.event_type).ok()?,
                    second: e.second,
                    value: e.value,
                    exact: None,
                    count: 1,
                    now: e.now,
                })
            })
            .collect();
        let mut results = Vec::new();
        add(&self.shared.store, &adds, true, &mut results);
        results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// A round that could not be written: pending items fail (nothing of them was
    /// counted); counted ones wait to be written again.
    fn give_up(&mut self, batches: Vec<Batch>, why: &Arc<str>) {
        for b in batches {
            let mut promises = b.promises.into_iter();
            for (start, item) in lane::items(&b.raw) {
                let promise = if item.flags & FLAG_PROMISE != 0 {
                    promises.next()
                } else {
                    None
                };
                if item.kind == PENDING {
                    if let Some(p) = promise {
                        p.fulfil(Err(why.clone()));
                    }
                } else {
                    self.retry
                        .raw
                        .extend_from_slice(item.bytes_with_header(&b.raw, start));
                    if let Some(p) = promise {
                        self.retry.promises.push(p);
                    }
                }
            }
            self.recycle(b.raw);
        }
    }

    /// A write or fsync failed: back to the last whole frame, segment closed.
    fn failed(&mut self, why: &Arc<str>) {
        self.last_attempt = Some(Instant::now());
        log(&self.shared)
            .stats
            .write_errors
            .fetch_add(1, Ordering::Relaxed);
        if !self.log().failing() {
            tracing::error!(error = %why, "writing the log failed: events are refused (-MISCONF) until a write succeeds");
        }
        self.log().set_failing(Some(why.clone()));
        if let Some(seg) = self.seg.take() {
            let stats = &log(&self.shared).stats;
            if seg.len == 0 {
                // Not even its header made it: nothing to keep.
                drop(seg.file);
                let _ = std::fs::remove_file(&seg.path);
                stats.segments.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            if let Err(e) = seg.file.set_len(seg.len) {
                // The refused events' bytes may stay in the file: move it out of
                // the replay's way rather than have them counted after a restart.
                tracing::error!(path = %seg.path.display(), error = %e, "cannot cut the log back after a failed write");
                let bad = seg.path.with_extension("damaged");
                let _ = std::fs::rename(&seg.path, &bad);
            }
            self.closed.push_back(Closed {
                path: seg.path,
                generation: seg.generation,
                max_second: seg.max_second,
                bytes: seg.len,
            });
        }
    }
}
