//! Per-command figures: calls, time, rejected and failed calls, and a latency
//! histogram — what `INFO commandstats` / `latencystats` and `/metrics` show.
//!
//! Every serving thread records into its own [`Block`], so recording is plain loads
//! and stores on lines no other core writes (no locked instruction, no bouncing);
//! readers add the blocks up. A block is created the first time a thread records and
//! lives as long as the server.
//!
//! # Histogram
//!
//! Durations in nanoseconds fall in log-linear buckets: [`SUB_BUCKETS`] per power of
//! two from 2^[`MIN_EXP`] ns (256 ns; anything shorter counts there) up to
//! 2^[`MAX_EXP`] ns (~69 s; anything longer counts in the last bucket). A bucket's
//! upper bound is within 1/8 (12.5 %) of any value in it, so a percentile read from
//! it is that close.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Commands the blocks have room for (more than the command table holds).
pub const MAX_COMMANDS: usize = 96;
/// Buckets per power of two.
pub const SUB_BUCKETS: usize = 8;
/// The first bucket ends at 2^MIN_EXP ns.
pub const MIN_EXP: u32 = 8;
/// The last power of two covered.
pub const MAX_EXP: u32 = 36;
/// Histogram buckets.
pub const BUCKETS: usize = (MAX_EXP - MIN_EXP) as usize * SUB_BUCKETS + 1;

/// One command's counters in one thread's block.
#[derive(Debug)]
struct Counters {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    hist: [AtomicU64; BUCKETS],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            calls: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            hist: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Adds `n` to a counter only this thread writes: a load and a store, no locked
/// instruction. Readers on other threads see a recent value.
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// One thread's counters for every command.
#[derive(Debug)]
struct Block {
    commands: Box<[Counters]>,
}

impl Default for Block {
    fn default() -> Self {
        Block {
            commands: (0..MAX_COMMANDS).map(|_| Counters::default()).collect(),
        }
    }
}

/// The bucket of a duration of `nanos`.
pub fn bucket_of(nanos: u64) -> usize {
    if nanos < 1 << MIN_EXP {
        return 0;
    }
    let exp = 63 - nanos.leading_zeros();
    if exp >= MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((nanos >> (exp - 3)) & (SUB_BUCKETS as u64 - 1)) as usize;
    ((exp - MIN_EXP) as usize * SUB_BUCKETS + sub + 1).min(BUCKETS - 1)
}

/// The largest duration (ns) bucket `i` holds: its upper bound.
pub fn bucket_upper(i: usize) -> u64 {
    if i == 0 {
        return 1 << MIN_EXP;
    }
    let exp = MIN_EXP as usize + (i - 1) / SUB_BUCKETS;
    let sub = ((i - 1) % SUB_BUCKETS) as u64;
    let base = 1u64 << exp;
    base + (sub + 1) * (base / SUB_BUCKETS as u64)
}

/// A command's figures, added up over the threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub calls: u64,
    pub nanos: u64,
    pub rejected: u64,
    pub failed: u64,
    pub hist: Vec<u64>,
}

impl Snapshot {
    /// Samples in the histogram.
    pub fn samples(&self) -> u64 {
        self.hist.iter().sum()
    }

    /// The `p`th percentile (0–100) in nanoseconds: the upper bound of its bucket.
    pub fn percentile(&self, p: f64) -> u64 {
        let total = self.samples();
        if total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper(i);
            }
        }
        bucket_upper(BUCKETS - 1)
    }
}

/// Every thread's block.
#[derive(Debug)]
pub struct CommandStats {
    /// Tells this server's blocks from another's in a thread's list (tests run
    /// several servers in one process, one after the other).
    id: u64,
    blocks: Mutex<Vec<Arc<Block>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            blocks: Mutex::new(Vec::new()),
        }
    }
}

thread_local! {
    /// This thread's blocks, by the id of the stats they belong to.
    static MINE: RefCell<Vec<(u64, Arc<Block>)>> = const { RefCell::new(Vec::new()) };
}

impl CommandStats {
    fn with_block(&self, f: impl FnOnce(&Block)) {
        let key = self.id;
        let found = MINE.try_with(|mine| {
            let mut mine = mine.borrow_mut();
            if let Some((_, b)) = mine.iter().find(|(k, _)| *k == key) {
                return b.clone();
            }
            // Blocks of servers that are gone: only this list still holds them.
            mine.retain(|(_, b)| Arc::strong_count(b) > 1);
            let b = Arc::new(Block::default());
            self.blocks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(b.clone());
            mine.push((key, b.clone()));
            b
        });
        if let Ok(b) = found {
            f(&b);
        }
    }

    /// Records `calls` executions of command `id` that took `took` together, of
    /// which `failed` answered with an error.
    pub fn record(&self, id: usize, calls: u64, took: Duration, failed: u64) {
        self.with_block(|b| {
            let Some(c) = b.commands.get(id) else {
                return;
            };
            let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
            bump(&c.calls, calls);
            bump(&c.nanos, nanos);
            bump(&c.failed, failed);
            // A batch is one sample per call, each taking its share of the time.
            let each = nanos / calls.max(1);
            if let Some(h) = c.hist.get(bucket_of(each)) {
                bump(h, calls);
            }
        });
    }

    /// Records a call of command `id` refused before it ran (arity, syntax, login).
    pub fn reject(&self, id: usize) {
        self.with_block(|b| {
            if let Some(c) = b.commands.get(id) {
                bump(&c.rejected, 1);
            }
        });
    }

    /// Command `id`'s figures over every thread.
    pub fn snapshot(&self, id: usize) -> Snapshot {
        let mut s = Snapshot {
            calls: 0,
            nanos: 0,
            rejected: 0,
            failed: 0,
            hist: vec![0; BUCKETS],
        };
        let blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        for b in blocks.iter() {
            let Some(c) = b.commands.get(id) else {
                continue;
            };
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            s.calls += load(&c.calls);
            s.nanos += load(&c.nanos);
            s.rejected += load(&c.rejected);
            s.failed += load(&c.failed);
            for (t, h) in s.hist.iter_mut().zip(&c.hist) {
                *t += load(h);
            }
        }
        s
    }

    /// Back to zero (`CONFIG RESETSTAT`). A thread recording at the same moment may
    /// keep one update.
    pub fn reset(&self) {
        let blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        for b in blocks.iter() {
            for c in b.commands.iter() {
                for a in [&c.calls, &c.nanos, &c.rejected, &c.failed]
                    .into_iter()
                    .chain(c.hist.iter())
                {
                    a.store(0, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values_within_an_eighth() {
        for nanos in [300u64, 1_000, 1_234, 50_000, 999_999, 12_345_678, 1 << 35] {
            let i = bucket_of(nanos);
            let upper = bucket_upper(i);
            assert!(upper >= nanos, "{nanos} above its bucket's bound {upper}");
            assert!(
                (upper - nanos) as f64 <= nanos as f64 / 8.0 + 1.0,
                "{nanos} in a bucket up to {upper}"
            );
            if i > 0 {
                assert!(bucket_upper(i - 1) <= nanos, "{nanos} belongs below {i}");
            }
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn threads_add_up_and_percentiles_follow_the_samples() {
        let stats = Arc::new(CommandStats::default());
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..98 {
                        stats.record(5, 1, Duration::from_micros(10), 0);
                    }
                    stats.record(5, 2, Duration::from_millis(20), 1);
                    stats.reject(5);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = stats.snapshot(5);
        assert_eq!(s.calls, 300);
        assert_eq!(s.failed, 3);
        assert_eq!(s.rejected, 3);
        assert_eq!(s.samples(), 300);
        let p50 = s.percentile(50.0);
        assert!((10_000..=11_250).contains(&p50), "{p50}");
        let p999 = s.percentile(99.9);
        assert!((10_000_000..=11_250_000).contains(&p999), "{p999}");
        stats.reset();
        assert_eq!(stats.snapshot(5).calls, 0);
    }
}
