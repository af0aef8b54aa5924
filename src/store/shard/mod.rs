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
//! the window and removes empty records, [`compact`] rebuilds tables left sparse,
//! [`query`] answers; [`record`] holds the records' layout.
//!
//! Users and (user, type) pairs are also counted by their newest second
//! (`user_newest`, `pair_newest`): a user's newest second is its anchor; a pair's is
//! the user's anchor for a user with one type, and the newest occupied slot of the
//! pair's ring otherwise. Each add, expiry and removal reports its moves there.

mod add;
mod compact;
mod expire;
mod guess;
mod query;
mod record;
mod top;

#[cfg(test)]
mod tests;

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;
use std::hash::BuildHasher;
use std::sync::Arc;

use super::Ingest;
use super::exact::Exact;
use super::hist::SecondHist;
use super::index::{Index, Vacancy};
use super::rank::Ranking;
use super::registry::Registry;
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
    /// A snapshot record's exact sum of `value`, instead of `ev.value`.
    pub sum: Option<&'a Exact>,
}

/// A point query with the hashes of its ids, computed before the shard's lock.
#[derive(Debug, Clone, Copy)]
pub struct KeyedPoint<'a> {
    pub point: &'a super::Point<'a>,
    pub user_hash: u64,
    /// 0 for `EVT.USER`, which names no type.
    pub type_hash: u64,
    /// Its place in the caller's run, where its answer goes.
    pub pos: usize,
}

/// Counts of what a shard holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    /// Users with an event in the window.
    pub users: u64,
    /// (user, type) pairs with an event in the window.
    pub pairs: u64,
    pub window_events: u64,
    pub wheel_entries: usize,
    /// Users, types and pairs held, swept or not.
    pub held: usize,
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
    /// Where this shard's shares of types are registered store-wide.
    registry: Arc<Registry>,
    /// Users by their newest second (their anchor).
    user_newest: SecondHist,
    /// (user, type) pairs by their newest second.
    pair_newest: SecondHist,
    total: TotalRing,
    wheel: Wheel,
    /// Users by their count, and the top region (`store/rank.rs`).
    rank: Ranking,
}

/// The second in `(anchor - window, anchor]` that occupies `slot`.
#[inline]
fn second_of(slot: u32, anchor: i64, window: u32) -> i64 {
    anchor - (anchor - i64::from(slot)).rem_euclid(i64::from(window))
}

/// The oldest second held by a ring with occupancy `occ` and anchor `anchor`.
#[inline]
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

/// The newest second held by a ring with occupancy `occ` and anchor `anchor` (the
/// anchor itself for a user's ring; at most the anchor for a pair's).
#[inline]
fn newest(occ: u64, anchor: i64, window: u32) -> Option<i64> {
    if occ == 0 {
        return None;
    }
    let top = slot_of(anchor, window);
    // Slots at or below the anchor's are its most recent seconds; above it, the
    // seconds of the previous turn of the ring.
    let below = occ & (u64::MAX >> (63 - top));
    let back = if below != 0 {
        top - (63 - below.leading_zeros())
    } else {
        top + window - (63 - occ.leading_zeros())
    };
    Some(anchor - i64::from(back))
}

fn hash_of(hasher: &DefaultHashBuilder, bytes: &[u8]) -> u64 {
    hasher.hash_one(bytes)
}

impl Shard {
    /// An empty shard for a window of `window` seconds; `hasher` must be the one the
    /// store hashes ids with, so that hashes computed outside the lock are valid here.
    pub fn new(window: u32, hasher: DefaultHashBuilder, registry: Arc<Registry>, now: i64) -> Self {
        Shard {
            window,
            now,
            hasher,
            users: Slab::new(),
            user_index: Index::new(),
            types: Slab::new(),
            type_index: HashTable::new(),
            many: Slab::new(),
            registry,
            user_newest: SecondHist::new(window, now),
            pair_newest: SecondHist::new(window, now),
            total: TotalRing::new(window),
            wheel: Wheel::new(window, now - i64::from(window)),
            rank: Ranking::new(),
        }
    }

    fn w(&self) -> i64 {
        i64::from(self.window)
    }

    /// Moves this shard's clock to `now` unless it is already later: connections read
    /// the clock independently, and a slightly older reading must never bring back a
    /// second that was already expired here.
    #[inline]
    fn advance(&mut self, now: i64) -> i64 {
        if now > self.now {
            self.now = now;
            self.user_newest.advance(now);
            self.pair_newest.advance(now);
        }
        self.now
    }

    fn find_user(&self, name: &str, hash: u64) -> Option<u32> {
        self.find_user_or_vacancy(name, hash).ok()
    }

    /// [`Shard::find_user`], or where a new user of `hash` is to be filed.
    fn find_user_or_vacancy(&self, name: &str, hash: u64) -> Result<u32, Vacancy> {
        let users = &self.users;
        self.user_index.find_or_vacancy(hash, |i| {
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

    /// Reports user `idx`'s count going from `from` to `to` to the ranking (which
    /// reads users' ids by key only when its edge needs them).
    #[inline]
    fn rank_moved(&mut self, idx: u32, from: u64, to: u64) {
        let users = &self.users;
        self.rank.moved(idx, from, to, |k| {
            users.get(k as usize).map(|u| u.name.as_bytes())
        });
    }

    /// Forgets everything (FLUSHALL).
    pub fn clear(&mut self) {
        let now = self.now;
        self.registry
            .release_all(self.types.iter().map(|(_, t)| t.id), now);
        *self = Shard::new(self.window, self.hasher.clone(), self.registry.clone(), now);
    }
}
