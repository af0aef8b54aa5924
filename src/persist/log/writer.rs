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
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::format::{self, Encoder, Header};
use super::lane::{self, CLOCK, FLAG_PROMISE, LaneBuf, PENDING};
use super::ticket::Promise;
use super::{Control, Fsync, Log, SEGMENT_MAX_BYTES, SEGMENT_MAX_SPAN};
use crate::persist::{Addition, add};
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
        retry: Batch {
            raw: Vec::new(),
            promises: Vec::new(),
        },
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
            let retry = std::mem::replace(
                &mut self.retry,
                Batch {
                    raw: Vec::new(),
                    promises: Vec::new(),
                },
            );
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
                need_sync |= item.kind == PENDING || item.flags & FLAG_PROMISE != 0;
                if item.kind == CLOCK {
                    continue;
                }
                // With a million users, each id's slot and bytes are cache misses:
                // hashes first, so the events ahead can be prefetched.
                evs.clear();
                evs.extend(item.events().map(|e| (seg.enc.user_hash(e.user), e)));
                for (k, (uh, ev)) in evs.iter().enumerate() {
                    if let Some((h, _)) = evs.get(k + 4) {
                        seg.enc.prefetch(*h, true);
                    }
                    if let Some((h, _)) = evs.get(k + 1) {
                        seg.enc.prefetch(*h, false);
                    }
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

    /// Opens the next segment of the current generation.
    fn open(&mut self) -> Result<(), String> {
        let shared = self.shared.clone();
        let log = &shared.log;
        let generation = log.generation();
        let seq = self.next_seq;
        let path = log
            .dir()
            .join(format!("log-{generation:010}-{seq:010}.sal"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if log.fsync() != Fsync::No
            && let Ok(d) = File::open(log.dir())
        {
            // The new file's name is durable only once the directory is.
            let _ = d.sync_all();
        }
        self.next_seq += 1;
        log.stats.segments.fetch_add(1, Ordering::Relaxed);
        self.seg = Some(Segment {
            file,
            path,
            generation,
            seq,
            opened_now: self.shared.clock.now(),
            len: 0,
            fresh: true,
            max_second: i64::MIN,
            frames: 0,
            dirty: false,
            enc: Encoder::default(),
        });
        Ok(())
    }

    /// The span of seconds one segment covers.
    fn span(&self) -> i64 {
        (i64::from(self.shared.store.window()) / 10).clamp(1, SEGMENT_MAX_SPAN)
    }

    /// Closes the current segment when it is full or its span of seconds is over.
    fn rotate_if_due(&mut self, now: i64) {
        let span = self.span();
        let due = self.seg.as_ref().is_some_and(|s| {
            s.frames > 0 && (now - s.opened_now >= span || s.len >= SEGMENT_MAX_BYTES)
        });
        if due {
            self.close();
        }
    }

    /// Closes the current segment (fsynced first, unless `appendfsync no`).
    fn close(&mut self) {
        if self.log().fsync() != Fsync::No
            && let Err(e) = self.fsync()
        {
            let why: Arc<str> = Arc::from(e.as_str());
            self.failed(&why);
            return;
        }
        if let Some(seg) = self.seg.take() {
            if seg.len == 0 {
                drop(seg.file);
                let _ = std::fs::remove_file(&seg.path);
                log(&self.shared)
                    .stats
                    .segments
                    .fetch_sub(1, Ordering::Relaxed);
                return;
            }
            self.closed.push_back(Closed {
                path: seg.path,
                generation: seg.generation,
                max_second: seg.max_second,
                bytes: seg.len,
            });
        }
    }

    /// The periodic work: everysec fsync, idle segment closed, old segments deleted,
    /// a failing log tried again.
    fn tick(&mut self) {
        if self.loading {
            return;
        }
        let now = self.shared.clock.now();
        if self.log().fsync() == Fsync::Everysec
            && self.last_fsync.elapsed() >= TICK
            && let Err(e) = self.fsync()
        {
            let why: Arc<str> = Arc::from(e.as_str());
            self.failed(&why);
        }
        self.rotate_if_due(now);
        self.delete_old(now);
        if self.log().failing()
            && self.retry.raw.is_empty()
            && self.last_attempt.is_none_or(|t| t.elapsed() >= RETRY_EVERY)
        {
            self.probe();
        }
    }

    /// A failing log with nothing to write again: can a new segment be written?
    fn probe(&mut self) {
        self.last_attempt = Some(Instant::now());
        let tried = (|| {
            if self.seg.is_none() {
                self.open()?;
            }
            let Some(seg) = self.seg.as_mut() else {
                return Err("no segment".to_string());
            };
            if seg.fresh {
                let h = Header {
                    generation: seg.generation,
                    seq: seg.seq,
                    clock: self.shared.clock.mode(),
                    window: self.shared.store.window(),
                    now: self.max_now,
                };
                seg.file.write_all(&h.encode()).map_err(|e| e.to_string())?;
                seg.fresh = false;
                seg.len = format::HEADER_LEN as u64;
                seg.dirty = true;
                log(&self.shared)
                    .stats
                    .current_size
                    .fetch_add(seg.len, Ordering::Relaxed);
            }
            self.fsync()
        })();
        match tried {
            Ok(()) => {
                tracing::info!("writes to the log succeed again: events are accepted");
                self.log().set_failing(None);
            }
            Err(e) => {
                let why: Arc<str> = Arc::from(e.as_str());
                self.failed(&why);
            }
        }
    }

    /// Deletes closed segments whose newest second has left the window, keeping
    /// the newest segment (its `now` is where the event and manual clocks resume).
    fn delete_old(&mut self, now: i64) {
        let edge = now - i64::from(self.shared.store.window());
        let keep_last = self.seg.is_none();
        let n = self.closed.len();
        let mut kept = VecDeque::with_capacity(n);
        for (i, c) in std::mem::take(&mut self.closed).into_iter().enumerate() {
            if c.max_second <= edge && !(keep_last && i + 1 == n) {
                self.remove(&c, "left the window");
            } else {
                kept.push_back(c);
            }
        }
        self.closed = kept;
    }

    fn remove(&self, c: &Closed, why: &str) {
        // Counted out first: whoever sees the file gone sees the size without it.
        let stats = &log(&self.shared).stats;
        let size = stats.current_size.load(Ordering::Relaxed);
        stats
            .current_size
            .fetch_sub(c.bytes.min(size), Ordering::Relaxed);
        stats.segments.fetch_sub(1, Ordering::Relaxed);
        match std::fs::remove_file(&c.path) {
            Ok(()) => tracing::debug!(path = %c.path.display(), why, "log segment deleted"),
            Err(e) => {
                stats.current_size.fetch_add(c.bytes, Ordering::Relaxed);
                stats.segments.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %c.path.display(), error = %e, "cannot delete a log segment");
            }
        }
    }

    /// Writes what is left and fsyncs (the server stops).
    fn finish(&mut self) {
        let batches = self.take_lanes();
        self.process(batches, true);
        if self.log().failing() && !self.retry.raw.is_empty() {
            tracing::error!(
                "the log could not be written before stopping: events since the last failure are only in the snapshot, if one is saved"
            );
        }
        self.close();
    }

    fn control(&mut self, c: Control) {
        match c {
            Control::Save(reply) => {
                let r = self.cut(Op::Save);
                let _ = reply.send(r);
            }
            Control::FlushAll(reply) => {
                let r = self.cut(Op::FlushAll);
                let _ = reply.send(r);
            }
            Control::Enable(on, reply) => {
                let r = self.cut(if on { Op::Enable } else { Op::Disable });
                let _ = reply.send(r);
            }
            Control::Loaded(closed, max_now) => {
                self.closed.extend(closed);
                self.max_now = self.max_now.max(max_now);
                self.loading = false;
            }
            Control::Stop(_) => {}
        }
    }

    /// Everything logged so far written, durable and counted, while every lane is
    /// locked (no event is counted or logged meanwhile); then `op`.
    fn cut(&mut self, op: Op) -> Result<(), String> {
        let shared = self.shared.clone();
        let log = log(&shared);
        if op == Op::Save && !shared.snapshot.configured() {
            return Err(crate::persist::snapshot::SnapshotError::NotConfigured.to_string());
        }
        if op == Op::Enable && log.enabled() {
            return Ok(());
        }
        let registry = log.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut guards: Vec<MutexGuard<'_, LaneBuf>> = registry.iter().map(|l| l.lock()).collect();
        let batches: Vec<Batch> = guards.iter_mut().filter_map(|g| self.swap(g)).collect();
        let was_on = log.enabled();
        if was_on {
            self.process(batches, true);
        } else {
            self.settle(batches);
        }
        let result = match op {
            Op::Save => self.save(was_on),
            Op::FlushAll => self.flush_all(was_on),
            Op::Enable => self.enable(&mut guards),
            Op::Disable => {
                self.disable(&mut guards);
                Ok(())
            }
        };
        drop(guards);
        drop(registry);
        result
    }

    /// The snapshot; the segments before it are no longer needed.
    fn save(&mut self, on: bool) -> Result<(), String> {
        let shared = self.shared.clone();
        let log = log(&shared);
        let generation = if on {
            log.generation() + 1
        } else {
            log.generation()
        };
        shared
            .snapshot
            .save(
                &shared.store,
                shared.clock.mode(),
                shared.clock.now(),
                generation,
            )
            .map_err(|e| e.to_string())?;
        if on {
            self.new_generation(generation);
        }
        Ok(())
    }

    /// Starts generation `generation`: the current segment closes, and every segment of
    /// an older generation goes (a snapshot or the manifest covers them).
    fn new_generation(&mut self, generation: u64) {
        self.close();
        log(&self.shared)
            .generation
            .store(generation, Ordering::Relaxed);
        self.next_seq = 0;
        // What failed to be written is in the snapshot now (or flushed).
        self.retry = Batch {
            raw: Vec::new(),
            promises: Vec::new(),
        };
        let old: Vec<Closed> = self.closed.drain(..).collect();
        for c in old {
            if c.generation < generation {
                self.remove(&c, "covered");
            } else {
                self.closed.push_back(c);
            }
        }
    }

    fn flush_all(&mut self, on: bool) -> Result<(), String> {
        let shared = self.shared.clone();
        shared.store.clear();
        if !on {
            return Ok(());
        }
        let log = log(&shared);
        let generation = log.generation() + 1;
        super::replay::write_manifest(log.dir(), generation)?;
        if shared.snapshot.configured() {
            // An old snapshot must not bring the flushed window back.
            shared
                .snapshot
                .save(
                    &shared.store,
                    shared.clock.mode(),
                    shared.clock.now(),
                    generation,
                )
                .map_err(|e| e.to_string())?;
        }
        self.new_generation(generation);
        Ok(())
    }

    /// `CONFIG SET appendonly yes`: a new generation whose first segment holds the
    /// window as it is (one aggregate record per occupied second), then the events.
    fn enable(&mut self, guards: &mut [MutexGuard<'_, LaneBuf>]) -> Result<(), String> {
        let shared = self.shared.clone();
        let log = log(&shared);
        std::fs::create_dir_all(log.dir()).map_err(|e| {
            format!(
                "cannot create the log directory {}: {e}",
                log.dir().display()
            )
        })?;
        let generation = log.generation() + 1;
        super::replay::write_manifest(log.dir(), generation)?;
        self.new_generation(generation);
        let stale: Vec<super::replay::SegFile> = super::replay::list(log.dir())
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| s.generation < generation)
            .collect();
        for s in stale {
            let _ = std::fs::remove_file(&s.path);
        }
        self.open()?;
        let now = shared.clock.now();
        self.max_now = self.max_now.max(now);
        let written = self.write_base(now);
        if let Err(e) = written {
            let why: Arc<str> = Arc::from(e.as_str());
            self.failed(&why);
            return Err(e);
        }
        for g in guards.iter_mut() {
            g.on = true;
        }
        log.enabled.store(true, Ordering::Relaxed);
        tracing::info!("append-only log on");
        Ok(())
    }

    fn write_base(&mut self, now: i64) -> Result<(), String> {
        let shared = self.shared.clone();
        let Some(seg) = self.seg.as_mut() else {
            return Err("no segment".to_string());
        };
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(
            &Header {
                generation: seg.generation,
                seq: seg.seq,
                clock: shared.clock.mode(),
                window: shared.store.window(),
                now,
            }
            .encode(),
        );
        let mut start = format::begin_frame(out, now);
        let enc = &mut seg.enc;
        let mut max_second = seg.max_second;
        let mut frames = 0;
        shared
            .store
            .export(now, &mut |user, ty, second, count, sum| {
                let age = u64::try_from(now - second).unwrap_or(0);
                enc.aggregate(out, user.as_bytes(), ty.as_bytes(), age, count, sum);
                max_second = max_second.max(second);
                if out.len() - start > format::FRAME_TARGET {
                    format::end_frame(out, start);
                    start = format::begin_frame(out, now);
                    frames += 1;
                }
            });
        format::end_frame(out, start);
        seg.frames += frames + 1;
        seg.max_second = max_second;
        seg.file.write_all(out).map_err(|e| e.to_string())?;
        seg.fresh = false;
        seg.len += out.len() as u64;
        seg.dirty = true;
        log(&shared)
            .stats
            .current_size
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        self.fsync()
    }

    /// `CONFIG SET appendonly no`: written, fsynced and then deleted — a log that
    /// stopped would otherwise be replayed, stale, by a later start.
    fn disable(&mut self, guards: &mut [MutexGuard<'_, LaneBuf>]) {
        for g in guards.iter_mut() {
            g.on = false;
        }
        let log = log(&self.shared);
        log.enabled.store(false, Ordering::Relaxed);
        log.set_failing(None);
        self.close();
        let old: Vec<Closed> = self.closed.drain(..).collect();
        for c in old {
            self.remove(&c, "appendonly no");
        }
        self.retry = Batch {
            raw: Vec::new(),
            promises: Vec::new(),
        };
        tracing::info!("append-only log off");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Save,
    FlushAll,
    Enable,
    Disable,
}
