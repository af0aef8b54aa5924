//! The cut: `SAVE`, `FLUSHALL` and `CONFIG SET appendonly`, done by the log thread
//! while every lane is locked, so that no event is counted or logged meanwhile and
//! the snapshot and the segments split the events exactly.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};

use super::super::Control;
use super::super::format::{self, Header};
use super::super::lane::LaneBuf;
use super::{Batch, Closed, Writer, log};

impl Writer {
    pub(super) fn control(&mut self, c: Control) {
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
        crate::persist::save_snapshot(&shared, generation)?;
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
        self.retry = Batch::default();
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
        super::super::replay::write_manifest(log.dir(), generation)?;
        if shared.snapshot.configured() {
            // An old snapshot must not bring the flushed window back.
            crate::persist::save_snapshot(&shared, generation)?;
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
        super::super::replay::write_manifest(log.dir(), generation)?;
        self.new_generation(generation);
        let stale: Vec<super::super::replay::SegFile> = super::super::replay::list(log.dir())
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
        self.retry = Batch::default();
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
