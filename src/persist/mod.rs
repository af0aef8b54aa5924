//! What outlives the process: the snapshot of the window ([`snapshot`]) and the
//! window log ([`log`], `--appendonly yes`).
//!
//! Start-up loads the snapshot, then replays the log segments written after it.
//! `SAVE` (and a graceful stop) writes the snapshot and lets the segments before it
//! go; a generation number in both tells which segments a snapshot covers.

pub mod log;
pub mod snapshot;

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::shared::Shared;
use crate::store::{AddError, Exact, Ingest, Store};

/// One addition to the store from persistence: `count` events of `user` /
/// `event_type` in `second` whose values add up to `value` — exactly to `exact`
/// when given (a snapshot's or the log's record of a second, kept exact) — counted
/// at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Addition<'a> {
    pub user: &'a str,
    pub event_type: &'a str,
    pub second: u32,
    pub value: Option<f64>,
    pub exact: Option<&'a Exact>,
    pub count: u64,
    pub now: i64,
}

/// In cluster mode, whether this node serves `user`. A snapshot or a log holds the
/// users of the map it was written under: those whose slots another node serves
/// now are that node's, and counted here too they would count twice cluster-wide.
pub fn served_here(cluster: Option<&crate::cluster::Cluster>, user: &str) -> bool {
    cluster.is_none_or(|c| c.foreign(user.as_bytes()).is_none())
}

/// The one place persistence adds to the store (snapshot load, log replay, events
/// counted once durable): one result per addition in `results`. `grow`: new
/// records may be created (the memory limit is not reached).
pub fn add(
    store: &Store,
    adds: &[Addition<'_>],
    grow: bool,
    results: &mut Vec<Result<(), AddError>>,
) {
    let ingests: Vec<Ingest<'_>> = adds
        .iter()
        .map(|a| Ingest {
            user: a.user,
            event_type: a.event_type,
            second: a.second,
            value: a.value,
            now: a.now,
            count: a.count.max(1),
        })
        .collect();
    results.clear();
    results.resize(ingests.len(), Ok(()));
    if adds.iter().any(|a| a.exact.is_some()) {
        let sums: Vec<Option<&Exact>> = adds.iter().map(|a| a.exact).collect();
        store.add_batch_exact(&ingests, &sums, grow, results);
    } else {
        store.add_batch(&ingests, grow, results);
    }
}

/// `SAVE`: the snapshot, and (with the log on) the segments before it go.
pub fn save(shared: &Shared) -> Result<(), String> {
    if shared.log.running() {
        return shared.log.save();
    }
    save_snapshot(shared, shared.log.generation())
}

/// Writes the snapshot of the window as it is now, covering log generation
/// `generation` and those before it.
pub fn save_snapshot(shared: &Shared, generation: u64) -> Result<(), String> {
    shared
        .snapshot
        .save(
            &shared.store,
            shared.clock.mode(),
            shared.clock.now(),
            generation,
        )
        .map_err(|e| e.to_string())
}

/// `FLUSHALL`: the window, and the log with it.
pub fn flush_all(shared: &Shared) -> Result<(), String> {
    if shared.log.running() {
        return shared.log.flush_all();
    }
    shared.store.clear();
    Ok(())
}

/// Why the stop did not keep the window.
pub type StopError = Box<dyn std::error::Error + Send + Sync>;

/// At the end of a graceful stop: the snapshot (when one is configured and the
/// window was fully loaded), then the log written, fsynced and closed. An error
/// means the process should exit with a failure status.
pub fn shutdown(shared: &Shared) -> Result<(), StopError> {
    let log = &shared.log;
    let mut result: Result<(), StopError> = Ok(());
    if log.loading() {
        // A window only partly loaded must not overwrite the snapshot.
        log::stop(log);
        if let Some(why) = log.fatal() {
            return Err(why.into());
        }
        tracing::warn!("stopped while loading the log: no snapshot saved");
        return Ok(());
    }
    if shared.snapshot.save_at_shutdown()
        && let Err(e) = save(shared)
    {
        tracing::error!(error = %e, "snapshot not saved");
        result = Err(e.into());
    }
    log::stop(log);
    result
}

/// INFO `# Persistence`, with Redis's field names where they have a meaning here
/// (redis_exporter reads them), and ours after.
pub fn info(shared: &Shared, out: &mut String) {
    let log = &shared.log;
    let s = &log.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let loading = log.loading();
    let _ = write!(
        out,
        "# Persistence\r\nloading:{}\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\n\
         rdb_last_bgsave_status:ok\r\naof_enabled:{}\r\naof_rewrite_in_progress:0\r\n\
         aof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\n\
         aof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\n\
         aof_last_write_status:{}\r\naof_last_cow_size:0\r\n",
        u8::from(loading),
        u8::from(log.enabled()),
        if log.failing() { "err" } else { "ok" },
    );
    if loading {
        let total = load(&s.loading_total);
        let done = load(&s.loading_done);
        let _ = write!(
            out,
            "loading_start_time:{}\r\nloading_total_bytes:{total}\r\nloading_loaded_bytes:{done}\r\n\
             loading_loaded_perc:{:.2}\r\n",
            s.loading_started.load(Ordering::Relaxed),
            if total == 0 {
                0.0
            } else {
                done as f64 * 100.0 / total as f64
            },
        );
    }
    if log.enabled() {
        let _ = write!(
            out,
            "aof_current_size:{}\r\naof_base_size:0\r\naof_pending_rewrite:0\r\n\
             aof_buffer_length:0\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
            load(&s.current_size),
        );
    }
    let _ = write!(
        out,
        "aof_appendfsync:{}\r\naof_last_fsync:{}\r\naof_fsyncs:{}\r\naof_segments:{}\r\n\
         aof_write_errors:{}\r\naof_last_write_error:{}\r\naof_load_torn_frames:{}\r\n\
         aof_load_skipped_segments:{}\r\naof_loaded_events:{}\r\nsnapshot_file:{}\r\n",
        log.fsync().name(),
        s.last_fsync.load(Ordering::Relaxed),
        load(&s.fsyncs),
        load(&s.segments),
        load(&s.write_errors),
        if log.failing() {
            log.last_error().to_string()
        } else {
            String::new()
        },
        load(&s.torn),
        load(&s.skipped),
        load(&s.replayed_events),
        shared
            .snapshot
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
}
