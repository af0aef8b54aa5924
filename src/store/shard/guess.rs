//! Where a slab keeps an entry, worked out without reading the slab: for prefetching.
//!
//! `Slab::get` reads the entry's tag to know whether it is occupied, so "prefetching"
//! a record through it waits for the very miss the prefetch was meant to hide
//! (perf annotate of a batch over a million users put 72% of `add_batch_with` on that
//! one tag read). The slab's entries are one array, so once one record's address is
//! known, any other's is that address plus the key difference times the entry size.
//! A guess is only ever handed to a prefetch, which never faults and reads nothing the
//! program can see, so a stale one (the slab grew since) only wastes a load.

use slab::Slab;

use super::Shard;
use super::record::UserRec;
use crate::prefetch::{ahead, prefetch};

/// Prefetching for a run of user lookups in one shard.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    guess: Option<Guess>,
}

impl Ahead {
    /// To call before the lookup of item `i` of a run whose items' user hashes are
    /// `hash(0..)` (`None` past the end); see [`ahead`].
    #[inline]
    pub fn before(&mut self, shard: &Shard, i: usize, hash: impl Fn(usize) -> Option<u64>) {
        ahead(
            i,
            |j| hash(j).map(|h| shard.user_index.prefetch(h)).is_some(),
            |j| hash(j).map(|h| self.record(shard, h)).is_some(),
        );
    }

    /// Prefetches the record the index names first for `hash` (reading its slot).
    #[inline]
    fn record(&mut self, shard: &Shard, hash: u64) {
        if let Some(key) = shard.user_index.first_candidate(hash) {
            match self.guess {
                Some(g) if g.holds(&shard.users) => prefetch(g.addr::<UserRec>(key as usize)),
                _ => self.guess = Guess::anchor(&shard.users, key as usize),
            }
        }
    }
}

/// Same layout as `slab::Entry<T>` (private to slab), for its size: the stride of the
/// slab's array. A unit test checks it against a real slab.
#[allow(dead_code)]
enum SlabEntry<T> {
    Vacant(usize),
    Occupied(T),
}

/// One record's address and key, and the slab's capacity when it was taken (the array
/// moves only when the capacity changes).
#[derive(Debug, Clone, Copy)]
struct Guess {
    base: usize,
    key: usize,
    capacity: usize,
}

impl Guess {
    /// A guess anchored at `key`, which must be occupied (this reads the slab).
    pub fn anchor<T>(slab: &Slab<T>, key: usize) -> Option<Self> {
        slab.get(key).map(|r| Guess {
            base: r as *const T as usize,
            key,
            capacity: slab.capacity(),
        })
    }

    /// Whether the slab's array is where it was when the guess was taken.
    pub fn holds<T>(&self, slab: &Slab<T>) -> bool {
        self.capacity == slab.capacity()
    }

    /// The likely address of entry `key`'s value; only for prefetching.
    pub fn addr<T>(&self, key: usize) -> *const T {
        let stride = std::mem::size_of::<SlabEntry<T>>();
        self.base
            .wrapping_add(key.wrapping_sub(self.key).wrapping_mul(stride)) as *const T
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::name::Name;
    use super::super::super::ring::{Ring, Running};
    use super::super::record::UserRec;
    use super::*;

    #[test]
    fn guesses_land_on_the_records_of_a_real_slab() {
        let mut slab: Slab<UserRec> = Slab::new();
        let recs: Vec<usize> = (0..100u32)
            .map(|i| {
                let name = Name::new(&format!("user{i}"));
                slab.insert(UserRec::new(name, i, 0, Ring::new(), Running::ZERO))
            })
            .collect();
        slab.remove(recs[50]);
        let g = Guess::anchor(&slab, 7).expect("occupied");
        assert!(g.holds(&slab));
        for &k in recs.iter().filter(|&&k| k != 50) {
            let real = slab.get(k).expect("occupied") as *const _;
            assert_eq!(g.addr(k), real, "key {k}");
        }
        let mut small: Slab<u64> = Slab::with_capacity(1);
        let a = small.insert(1);
        let g = Guess::anchor(&small, a).expect("occupied");
        small.insert(2);
        small.insert(3);
        assert!(!g.holds(&small), "growth moved the array");
        let g = Guess::anchor(&small, a).expect("occupied");
        assert_eq!(
            g.addr::<u64>(2),
            small.get(2).expect("occupied") as *const _
        );
    }
}
