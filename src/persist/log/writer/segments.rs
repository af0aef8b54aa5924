//! The log thread's segments: opening, closing when full or when their span of
//! seconds is over, deleting them once their seconds have left the window, the
//! once-a-second work, and trying again after a failed write.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::super::format::{self, Encoder, Header};
use super::super::{Fsync, SEGMENT_MAX_BYTES, SEGMENT_MAX_SPAN};
use super::{Closed, RETRY_EVERY, Segment, TICK, Writer, log};

impl Writer {
    /// Opens the next segment of the current generation.
    pub(super) fn open(&mut self) -> Result<(), String> {
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
    pub(super) fn span(&self) -> i64 {
        (i64::from(self.shared.store.window()) / 10).clamp(1, SEGMENT_MAX_SPAN)
    }

    /// Closes the current segment when it is full or its span of seconds is over.
    pub(super) fn rotate_if_due(&mut self, now: i64) {
        let span = self.span();
        let due = self.seg.as_ref().is_some_and(|s| {
            s.frames > 0 && (now - s.opened_now >= span || s.len >= SEGMENT_MAX_BYTES)
        });
        if due {
            self.close();
        }
    }

    /// Closes the current segment (fsynced first, unless `appendfsync no`).
    pub(super) fn close(&mut self) {
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
    pub(super) fn tick(&mut self) {
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
    pub(super) fn probe(&mut self) {
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
    pub(super) fn delete_old(&mut self, now: i64) {
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

    pub(super) fn remove(&self, c: &Closed, why: &str) {
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
    pub(super) fn finish(&mut self) {
        let batches = self.take_lanes();
        self.process(batches, true);
        if self.log().failing() && !self.retry.raw.is_empty() {
            tracing::error!(
                "the log could not be written before stopping: events since the last failure are only in the snapshot, if one is saved"
            );
        }
        self.close();
    }
}
