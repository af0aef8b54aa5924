//! One shard of the store: the users whose id hashes here, their (user, type) pairs,
//! and this shard's share of the per-type and total counters.
//!
//! Every operation takes `now` and first *normalises* what it touches: seconds at or
//! before `now - window` are cleared on access, so answers are exact even before the
//! background sweep has reached them. The sweep ([`Shard::expire_step`]) then reclaims
//! keys nobody touches, a bounded number per call.
//!
//! A record's *anchor* is the newest second it has held data for. Every occupied slot
//! `i` of its rings stands for the one second `s` in `(anchor - window, anchor]` with
//! `s % window == i`. Moving the anchor forward is safe once the seconds it pushes out
//! are cleared, and they are always stale: the anchor never passes `now`.

//!
//! The work is split by concern: [`add`] counts events, [`expire`] clears what left
//! the window and reclaims records, [`query`] answers; [`record`] holds the records'
//! layout.

mod add;
mod expire;
mod query;
mod record;

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;
use std::hash::BuildHasher;

use super::Ingest;
use super::index::Index;
use super::ring::{full_mask, slot_of};
use super::total::TotalRing;
use super::wheel::Wheel;
use record::{PairRec, TypeRec, UserRec};

/// Wheel entries for event types carry this bit; user entries do not.
const TYPE_KEY: u32 = 1 << 31;

/// An event with the hashes of its ids, computed by the store before it takes the
/// shard's lock (and one batch ahead, for prefetching).
#[derive(Debug, Clone, Copy)]
pub struct Keyed<'a> {
    pub ev: &'a Ingest<'a>,
    pub user_hash: u64,
    pub type_hash: u64,
    /// Its place in the caller's batch, where its outcome goes.
    pub pos: usize,
}

/// Counts of what a shard holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub users: usize,
    pub pairs: usize,
    pub window_events: u64,
    pub wheel_entries: usize,
}

/// One shard; see the module doc.
#[derive(Debug)]
pub struct Shard {
    window: u32,
    now: i64,
    hasher: DefaultHashBuilder,
    users: Slab<UserRec>,
    user_index: Index,
    types: Slab<TypeRec>,
    type_index: HashTable<u32>,
    /// Pair tables of users with several event types.
    many: Slab<HashTable<PairRec>>,
    pairs: usize,
    total: TotalRing,
    wheel: Wheel,
}

/// The second in `(anchor - window, anchor]` that occupies `slot`.
fn second_of(slot: u32, anchor: i64, window: u32) -> i64 {
    anchor - (anchor - i64::from(slot)).rem_euclid(i64::from(window))
}

/// The oldest second held by a ring with occupancy `occ` and anchor `anchor`.
fn oldest(occ: u64, anchor: i64, window: u32) -> Option<i64> {
    if occ == 0 {
        return None;
    }
    let first = anchor - i64::from(window) + 1;
    let start = slot_of(first, window);
    let rotated = if start == 0 {
        occ
    } else {
        ((occ >> start) | (occ << (window - start))) & full_mask(window)
    };
    Some(first + i64::from(rotated.trailing_zeros()))
}

fn hash_of(hasher: &DefaultHashBuilder, bytes: &[u8]) -> u64 {
    hasher.hash_one(bytes)
}

impl Shard {
    /// An empty shard for a window of `window` seconds; `hasher` must be the one the
    /// store hashes ids with, so that hashes computed outside the lock are valid here.
    pub fn new(window: u32, hasher: DefaultHashBuilder, now: i64) -> Self {
        Shard {
            window,
            now,
            hasher,
            users: Slab::new(),
            user_index: Index::new(),
            types: Slab::new(),
            type_index: HashTable::new(),
            many: Slab::new(),
            pairs: 0,
            total: TotalRing::new(window),
            wheel: Wheel::new(window, now - i64::from(window)),
        }
    }

    fn w(&self) -> i64 {
        i64::from(self.window)
    }

    /// Moves this shard's clock to `now` unless it is already later: connections read
    /// the clock independently, and a slightly older reading must never bring back a
    /// second that was already expired here.
    fn advance(&mut self, now: i64) -> i64 {
        self.now = self.now.max(now);
        self.now
    }

    fn find_user(&self, name: &str, hash: u64) -> Option<u32> {
        let users = &self.users;
        self.user_index.find(hash, |i| {
            users
                .get(i as usize)
                .is_some_and(|u| u.name.as_bytes() == name.as_bytes())
        })
    }

    fn find_type(&self, name: &str, hash: u64) -> Option<u32> {
        let types = &self.types;
        self.type_index
            .find(hash, |&i| {
                types
                    .get(i as usize)
                    .is_some_and(|t| t.name.as_bytes() == name.as_bytes())
            })
            .copied()
    }

    /// Forgets everything (FLUSHALL).
    pub fn clear(&mut self) {
        let now = self.now;
        *self = Shard::new(self.window, self.hasher.clone(), now);
    }
}
