//! The window: exact per-second counts and sums of the last `window` seconds, shared by
//! every connection.
//!
//! # Layout
//!
//! ```text
//! Store ── shards[hash(user_id) → i]: Mutex<Shard>   (each on its own cache lines)
//!   ├─ Shard
//!   │  ├─ user_index: Index (8-byte slots: hash bits | slab key) ── users: Slab<UserRec>
//!   │  │     UserRec (56 B) { name: Name (24 B, inline ≤ 22 B), anchor: u32,
//!   │  │                      ty: u32 (the user's one type, or MANY),
//!   │  │                      ring: Ring (16 B: occupancy + width | spill pointer),
//!   │  │                      word: u64 (that pair's exact running sum, or its pair table) }
//!   │  ├─ many: Slab<table of PairRec>                          users with several types
//!   │  ├─ type_index: HashTable<u32> ── types: Slab<TypeRec>    this shard's share of a type
//!   │  ├─ total: one u64 per second                             this shard's share of the total
//!   │  ├─ user_newest, pair_newest: SecondHist (64 × u64)       users, pairs by newest second
//!   │  ├─ rank: Ranking   users by count (4 KB) + the top region (≤ 4,096 users, ~100 KB)
//!   │  └─ wheel: `window` slots of u32 keys, filed under each key's oldest second
//!   └─ registry: Mutex<Registry>   every type once: shards holding it, newest second,
//!                                  and a SecondHist over those seconds
//! ```
//!
//! Sharding is by user id, and each shard keeps its *own* per-type and total
//! counters for the events it ingests, so an event touches exactly one lock and no
//! shared cache line; `EVT.TYPE` and `EVT.TOTAL` add up the shards' shares.
//!
//! # Counting what is active
//!
//! DBSIZE and INFO's `active_*` are read, never computed by walking keys: each shard
//! keeps its users and pairs in a histogram by their newest second (`hist.rs`),
//! updated only when a key's newest second moves (its first event in a new
//! second), and the registry of types (`registry.rs`) does the same for
//! types across shards, touched only when a shard creates or removes its share of a
//! type or that share's newest second moves. Keys active in the last `s` seconds
//! are a sum of `s` counters per shard, exact at every moment: a key whose events
//! have left counts no more, whether or not the sweep has removed it.
//!
//! # Memory
//!
//! Tables follow the keys in the window: once the sweep has caught up, a shard
//! whose tables are at most a quarter full rebuilds them at twice what they hold
//! (`shard/compact.rs`); old tables are freed on a background thread
//! (`reclaim.rs`). Under the memory limit, only growth is refused: a new key that
//! fits in room already allocated is taken.
//!
//! # Bytes per active user
//!
//! A user with one event type — the common case — costs, in its shard:
//!
//! | part | bytes |
//! |---|---|
//! | `UserRec` slab slot: id inline, anchor, type, ring, running sum (size asserted in a test) | 56 |
//! | index slot (8 bytes, the table kept between 2/5 and 4/5 full) | 10 – 20 |
//! | wheel entry (`u32`), once, at the slot of the user's oldest second | 4 |
//! | spill, only when ≥ 2 seconds are occupied and some holds ≥ 2 events or a non-zero `value`, or the running sum is not one double: header, packed counts, the per-second exact sums (one `f64` per second in the common case, see `ring/mod.rs`), grown 8 words at a time | 16 + 8 × words |
//! | the ranking (`rank.rs`): a user in the top region costs an entry there; the others nothing | 0 |
//!
//! A user with one event (or a burst within one second whose values add up exactly,
//! or have no `value`) needs no spill: ~75 bytes. Exact sums cost nothing more while
//! each second's sum and the running sum are each one double — one value per
//! second, or values that add up exactly (`10.5`, whole numbers); values such as
//! `0.1` several times in one second need a second partial. Measured by
//! `scripts/bench` as resident memory: see `docs/benchmarks.md` (79 B per user for a
//! million users with one event each, 663 B for 20,000 users with an event in every
//! second, before exact sums; the rows of that run now measure them).
//!
//! INFO's `used_memory` is measured at the allocator (`src/alloc.rs`); the
//! benchmark measures the process's resident size per user against Redis.
//!
//! # API
//!
//! Callers speak ids: an [`Ingest`] names its user and type as strings, and the
//! store hashes them (once per id, the type once per run of equal types in a batch,
//! all before any lock so that a shard can prefetch by the hashes of the events it
//! has not reached yet). Hashes and record layouts never leave this module.
//!
//! # Files
//!
//! `shard/` (`mod.rs` the shard and its lookups, `add.rs` counting, `expire.rs`
//! expiry, `compact.rs` rebuilding sparse tables, `query.rs` answers and series,
//! `top.rs` its share of top lists, `record.rs` the records' layout, `guess.rs`
//! prefetching the users of a run ahead), `points.rs` runs of point queries, `ring/` a
//! key's packed per-second counts (`mod.rs`) and exact sums (`sums.rs`),
//! `exact.rs` exact sums of doubles and their rounding, `rank.rs` users ranked by
//! count, `top.rs` top lists in bounded steps, `series.rs` series and profiles,
//! `total.rs` a shard's share of the total, `hist.rs` keys by newest second,
//! `registry.rs` the store's distinct types, `index.rs` the users' index,
//! `wheel.rs` the expiry wheel, `reclaim.rs` freeing old tables off the serving
//! threads, `name.rs` ids kept inline.

mod exact;
mod hist;
mod index;
mod name;
mod points;
mod rank;
mod reclaim;
mod registry;
mod ring;
mod series;
mod shard;
mod top;
mod total;
mod wheel;

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;

pub use exact::{Exact, two_sum};
pub use points::{Answer, Point};

/// Values at least this large are kept in an exact sum's high part (a snapshot
/// checks its high partials against it).
pub fn exact_huge() -> f64 {
    exact::HUGE
}
use registry::Registry;
pub use ring::MAX_SLOTS as MAX_WINDOW;
use shard::{Keyed, KeyedPoint, Shard, ShardStats};
pub use top::{Ranked, SCAN_BUDGET, Score, TopScan};

use crate::scratch;

thread_local! {
    /// A batch's events with their hashes ([`crate::scratch`]), and grouped by shard.
    static KEYED: Cell<Vec<Keyed<'static>>> = const { Cell::new(Vec::new()) };
    static KEYED_SORTED: Cell<Vec<Keyed<'static>>> = const { Cell::new(Vec::new()) };
    /// A run's point queries with their hashes, and grouped by shard.
    static KEYED_POINTS: Cell<Vec<KeyedPoint<'static>>> = const { Cell::new(Vec::new()) };
    static POINTS_SORTED: Cell<Vec<KeyedPoint<'static>>> = const { Cell::new(Vec::new()) };
    /// Where each shard's group ends.
    static ENDS: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
    /// One shard's results.
    static OUTCOME: Cell<Vec<Result<(), AddError>>> = const { Cell::new(Vec::new()) };
}

/// Why an event was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// Its second is at or before `now - window`.
    Late,
    /// It needs a new user, type or pair record and the memory limit is reached.
    NoMemory,
}

/// One event as the store sees it.
#[derive(Debug, Clone, Copy)]
pub struct Ingest<'a> {
    pub user: &'a str,
    pub event_type: &'a str,
    /// Its second, already clamped to at most `now`.
    pub second: u32,
    pub value: Option<f64>,
    /// `now` as the caller read it for this event.
    pub now: i64,
    /// Events this stands for: 1 for a live event, more when a snapshot is restored
    /// (then `value` is their sum).
    pub count: u64,
}

/// Wheel entries one sweep step handles before it lets go of the shard's lock and
/// lets clients in: ~100 µs of work, so a second holding a million users never
/// blocks a client for long.
pub const EXPIRE_BUDGET: usize = 256;

/// A shard on its own cache lines, so that two cores locking neighbouring shards do
/// not bounce one line between them.
#[repr(align(128))]
#[derive(Debug)]
struct Padded(Mutex<Shard>);

/// The window store; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    window: u32,
    hasher: DefaultHashBuilder,
    shards: Box<[Padded]>,
    /// The distinct event types across shards.
    registry: Arc<Registry>,
}

/// What the store holds, summed over the shards. The `active_*` counts are exact at
/// every moment: a key whose events have all left the window is not counted, swept
/// or not.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub window_events: u64,
    pub active_users: usize,
    pub active_event_types: usize,
    pub active_user_event_types: usize,
    pub wheel_entries: usize,
    /// Users, types and pairs held, whether in the window or left and not yet swept.
    pub held_records: usize,
}

/// Distinct keys with at least one event in a span of seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Active {
    pub users: u64,
    pub types: u64,
    pub pairs: u64,
}

impl Store {
    /// A store for a window of `window` seconds (1..=[`MAX_WINDOW`]) split in `shards`
    /// shards, whose clock starts at `now`.
    pub fn new(window: u32, shards: usize, now: i64) -> Self {
        let window = window.clamp(1, MAX_WINDOW);
        let hasher = DefaultHashBuilder::default();
        let registry = Arc::new(Registry::new(window, now));
        let shards = (0..shards.max(1))
            .map(|_| {
                let shard = Shard::new(window, hasher.clone(), registry.clone(), now);
                Padded(Mutex::new(shard))
            })
            .collect();
        Store {
            window,
            hasher,
            shards,
            registry,
        }
    }

    /// The window, in seconds.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Hash of an id, as the store uses it for shard choice and lookups.
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id.as_bytes())
    }

    /// The shard a user lives in.
    fn shard_of(&self, user_hash: u64) -> usize {
        // High bits: the hash tables use the low ones.
        (((user_hash >> 32) * self.shards.len() as u64) >> 32) as usize
    }

    /// `items` grouped by shard into `sorted` with a counting sort, which keeps
    /// arrival order within a shard (a user's events stay in order) and costs
    /// O(items + shards); `ends[s]` is where shard `s`'s group ends in it.
    fn by_shard<T: Copy>(
        &self,
        items: &[T],
        user_hash: impl Fn(&T) -> u64,
        sorted: &mut Vec<T>,
        ends: &mut Vec<usize>,
    ) {
        ends.clear();
        ends.resize(self.shards.len(), 0);
        for it in items {
            if let Some(e) = ends.get_mut(self.shard_of(user_hash(it))) {
                *e += 1;
            }
        }
        let mut start = 0;
        for e in ends.iter_mut() {
            start += *e;
            *e = start - *e;
        }
        // `ends[s]` is now where shard `s`'s group starts; filling moves it to its end.
        sorted.clear();
        let Some(&any) = items.first() else {
            return;
        };
        sorted.resize(items.len(), any);
        for it in items {
            if let Some(e) = ends.get_mut(self.shard_of(user_hash(it)))
                && let Some(slot) = sorted.get_mut(*e)
            {
                *slot = *it;
                *e += 1;
            }
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // The shard's lock is `std`'s: it is held for microseconds, never across an
        // `.await`, and nothing panics while holding it; if something ever did, the data
        // is still consistent between operations, so a poisoned lock is taken over.
        let shard = &self.shards[i % self.shards.len()].0;
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An event with its ids hashed.
    fn keyed<'a>(&self, ev: &'a Ingest<'a>) -> Keyed<'a> {
        Keyed {
            ev,
            user_hash: self.hash(ev.user),
            type_hash: self.hash(ev.event_type),
            pos: 0,
            sum: None,
        }
    }

    /// Counts one event.
    pub fn add(&self, ev: &Ingest<'_>) -> Result<(), AddError> {
        let k = self.keyed(ev);
        self.lock(self.shard_of(k.user_hash)).add(&k, true)
    }

    /// Counts a batch of events, taking each shard's lock once; `results[i]` receives
    /// the outcome of `events[i]`. With `grow` false (memory limit reached), events
    /// that need a new record are refused with [`AddError::NoMemory`].
    pub fn add_batch(
        &self,
        events: &[Ingest<'_>],
        grow: bool,
        results: &mut [Result<(), AddError>],
    ) {
        self.add_batch_with(events, None, grow, results);
    }

    /// [`Store::add_batch`] of persisted records: `sums[i]`, when given, is the exact
    /// sum of `events[i]`'s values (its `value` is not read).
    pub fn add_batch_exact(
        &self,
        events: &[Ingest<'_>],
        sums: &[Option<&Exact>],
        grow: bool,
        results: &mut [Result<(), AddError>],
    ) {
        self.add_batch_with(events, Some(sums), grow, results);
    }

    fn add_batch_with(
        &self,
        events: &[Ingest<'_>],
        sums: Option<&[Option<&Exact>]>,
        grow: bool,
        results: &mut [Result<(), AddError>],
    ) {
        let sum_of = |i: usize| sums.and_then(|s| s.get(i).copied().flatten());
        if let ([ev], [r]) = (events, &mut *results) {
            let k = Keyed {
                sum: sum_of(0),
                ..self.keyed(ev)
            };
            *r = self.lock(self.shard_of(k.user_hash)).add(&k, grow);
            return;
        }
        // Every hash before any lock: the shards prefetch by the hashes of the events
        // after the one they count. Most events of a run share their type, so it is
        // hashed once per run of equal types.
        let mut last_type: Option<(&str, u64)> = None;
        let mut keyed: Vec<Keyed<'_>> = scratch::take(&KEYED);
        keyed.extend(events.iter().enumerate().map(|(pos, ev)| {
            let type_hash = match last_type {
                Some((ty, h)) if ty == ev.event_type => h,
                _ => {
                    let h = self.hash(ev.event_type);
                    last_type = Some((ev.event_type, h));
                    h
                }
            };
            Keyed {
                ev,
                user_hash: self.hash(ev.user),
                type_hash,
                pos,
                sum: sum_of(pos),
            }
        }));
        let (mut sorted, mut ends) = (scratch::take(&KEYED_SORTED), scratch::take(&ENDS));
        self.by_shard(&keyed, |k| k.user_hash, &mut sorted, &mut ends);
        let mut outcome = scratch::take(&OUTCOME);
        let mut from = 0;
        for (shard, &end) in ends.iter().enumerate() {
            let group = sorted.get(from..end).unwrap_or_default();
            from = end;
            if group.is_empty() {
                continue;
            }
            outcome.clear();
            outcome.resize(group.len(), Ok(()));
            self.lock(shard).add_many(group, grow, &mut outcome);
            for (k, r) in group.iter().zip(&outcome) {
                if let Some(slot) = results.get_mut(k.pos) {
                    *slot = *r;
                }
            }
        }
        scratch::give(&KEYED, keyed);
        scratch::give(&KEYED_SORTED, sorted);
        scratch::give(&ENDS, ends);
        scratch::give(&OUTCOME, outcome);
    }

    /// Events of `user` in the last `span` seconds.
    pub fn user_count(&self, user: &str, span: u32, now: i64) -> u64 {
        let point = Point {
            user,
            event_type: None,
            span,
        };
        match self.point(&point, now) {
            Answer::Count(n) => n,
            Answer::Sum(_) => 0,
        }
    }

    /// Events of type `ty` in the last `span` seconds.
    pub fn type_count(&self, ty: &str, span: u32, now: i64) -> u64 {
        let h = self.hash(ty);
        (0..self.shards.len())
            .map(|i| self.lock(i).type_count(ty, h, span, now))
            .sum()
    }

    /// All events in the last `span` seconds.
    pub fn total(&self, span: u32, now: i64) -> u64 {
        (0..self.shards.len())
            .map(|i| self.lock(i).total(span, now))
            .sum()
    }

    /// Sum of `value` for (`user`, `ty`) over the last `span` seconds.
    pub fn sum(&self, user: &str, ty: &str, span: u32, now: i64) -> f64 {
        let point = Point {
            user,
            event_type: Some(ty),
            span,
        };
        match self.point(&point, now) {
            Answer::Sum(sum) => sum,
            Answer::Count(_) => 0.0,
        }
    }

    /// One bounded step of the background sweep of shard `shard`: at most `budget`
    /// wheel entries under its lock. Returns whether the shard is swept up to
    /// `now - window`.
    pub fn expire_shard_step(&self, shard: usize, now: i64, budget: usize) -> bool {
        self.lock(shard).expire_step(now, budget)
    }

    /// One bounded step of the background sweep over every shard. Returns whether all
    /// shards are swept up to `now - window`.
    pub fn expire_step(&self, now: i64, budget: usize) -> bool {
        let mut done = true;
        for i in 0..self.shards.len() {
            done &= self.expire_shard_step(i, now, budget);
        }
        done
    }

    /// Sweeps every shard and rebuilds its tables at the size of what they hold,
    /// whatever their fill. The sweep does this by itself, in bounded steps, once a
    /// shard's tables are sparse; this is the unbounded, explicit form.
    pub fn compact(&self, now: i64) {
        for i in 0..self.shards.len() {
            self.lock(i).compact_now(now);
        }
    }

    /// Sweeps until every shard is done. For tests: the server's background task
    /// sweeps in bounded steps and lets clients in between them.
    pub fn expire_all(&self, now: i64) {
        while !self.expire_step(now, EXPIRE_BUDGET) {}
    }

    /// What the store holds now: O(shards), whatever the number of keys.
    pub fn stats(&self, now: i64) -> StoreStats {
        let mut total = StoreStats::default();
        for i in 0..self.shards.len() {
            let s: ShardStats = self.lock(i).stats(now);
            total.window_events += s.window_events;
            total.active_users += s.users as usize;
            total.active_user_event_types += s.pairs as usize;
            total.wheel_entries += s.wheel_entries;
            total.held_records += s.held;
        }
        total.active_event_types = self.registry.active(self.window, now) as usize;
        total
    }

    /// Distinct users, event types and (user, type) pairs with an event in the last
    /// `span` seconds: O(shards × span).
    pub fn active(&self, span: u32, now: i64) -> Active {
        let mut active = Active::default();
        for i in 0..self.shards.len() {
            let (users, pairs) = self.lock(i).active(span, now);
            active.users += users;
            active.pairs += pairs;
        }
        active.types = self.registry.active(span, now);
        active
    }

    /// The event types with an event in the last `span` seconds: O(types).
    pub fn active_types(&self, span: u32, now: i64) -> Vec<Vec<u8>> {
        // The registry's newest seconds move only when shards report, which they do
        // on every event: reading them is exact, as `active` is.
        self.registry.active_names(span, now)
    }

    /// Hands every occupied second of every (user, type) pair to `f` as
    /// `(user, type, second, events, exact sum of value)`: what a snapshot saves.
    pub fn export(&self, now: i64, f: &mut dyn FnMut(&str, &str, i64, u64, &Exact)) {
        for i in 0..self.shards.len() {
            self.lock(i).export(now, f);
        }
    }

    /// Empties the window (FLUSHALL).
    pub fn clear(&self) {
        for i in 0..self.shards.len() {
            self.lock(i).clear();
        }
    }
}
