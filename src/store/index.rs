//! The users' index: an id's hash to the user's slab key, with linear probing over one
//! array of 8-byte slots.
//!
//! ```text
//!  slot: u64 = [ low 32 bits of the hash : 32 | slab key + 1 : 32 ]      0 = empty
//! ```
//!
//! Why not `hashbrown`: profiling ingest of a million random users showed half the
//! server's time in `Shard::add`, almost all of it waiting on three dependent cache
//! misses per event — hashbrown's control bytes, then its bucket (a separate array),
//! then the user's record. Here the hash bits and the key share one slot, so a lookup
//! is one miss into the index plus the record; and because a slot's address follows
//! from the hash alone, a batch of events can prefetch the slots (and then the records)
//! of the events after the one being counted ([`Index::prefetch`]).
//!
//! The stored hash bits place the slot (`bits & mask`), act as a 32-bit tag so the
//! record is compared only when they match, and let the table grow and delete
//! (backward shifting, no tombstones) without hashing any id again. At most 4/5 of the
//! slots are used, which keeps probe sequences short.

use crate::prefetch::prefetch;

/// Slots of a new index.
const INITIAL_SLOTS: usize = 16;

/// The index; see the module doc.
#[derive(Debug)]
pub struct Index {
    slots: Vec<u64>,
    len: usize,
}

fn bits(hash: u64) -> u64 {
    hash & 0xffff_ffff
}

fn entry(hash: u64, key: u32) -> u64 {
    (bits(hash) << 32) | (u64::from(key) + 1)
}

fn key_of(slot: u64) -> u32 {
    ((slot & 0xffff_ffff) as u32).wrapping_sub(1)
}

impl Default for Index {
    fn default() -> Self {
        Index::new()
    }
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Index {
            slots: vec![0; INITIAL_SLOTS],
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, hash_bits: u64) -> usize {
        hash_bits as usize & self.mask()
    }

    /// An empty index sized for `n` keys at most 2/5 full, so that it neither grows
    /// soon nor wastes much (a rebuilt index: see `Shard::compact`).
    pub fn with_room_for(n: usize) -> Self {
        let slots = (n.saturating_mul(5) / 2)
            .max(INITIAL_SLOTS)
            .next_power_of_two();
        Index {
            slots: vec![0; slots],
            len: 0,
        }
    }

    /// Keys filed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether one more key fits without growing the table.
    pub fn has_room(&self) -> bool {
        (self.len + 1) * 5 <= self.slots.len() * 4
    }

    /// Every key with a hash that files it in the same place (the stored hash bits),
    /// for rebuilding the index under new keys without hashing any id again.
    pub fn keys(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.slots
            .iter()
            .filter(|&&slot| slot != 0)
            .map(|&slot| (slot >> 32, key_of(slot)))
    }

    /// Starts loading the slot where a lookup of `hash` begins.
    pub fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(bits(hash))) {
            prefetch(slot);
        }
    }

    /// The first key whose stored hash bits match `hash`: the likely answer of a
    /// lookup, for prefetching its record.
    pub fn first_candidate(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// The key filed under `hash` for which `is_it` holds.
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let want = bits(hash);
        let mut i = self.home(want);
        loop {
            let slot = *self.slots.get(i)?;
            if slot == 0 {
                return None;
            }
            if slot >> 32 == want && is_it(key_of(slot)) {
                return Some(key_of(slot));
            }
            i = (i + 1) & self.mask();
        }
    }

    /// [`Index::find`], or where the lookup ended: the empty slot a new key of
    /// `hash` would be filed in, good for [`Index::insert_at`] while the index is
    /// not changed.
    pub fn find_or_vacancy(
        &self,
        hash: u64,
        mut is_it: impl FnMut(u32) -> bool,
    ) -> Result<u32, Vacancy> {
        let want = bits(hash);
        let mut i = self.home(want);
        loop {
            let Some(&slot) = self.slots.get(i) else {
                return Err(Vacancy(None));
            };
            if slot == 0 {
                return Err(Vacancy(Some(i)));
            }
            if slot >> 32 == want && is_it(key_of(slot)) {
                return Ok(key_of(slot));
            }
            i = (i + 1) & self.mask();
        }
    }

    /// [`Index::insert`] into the slot a lookup of `hash` just found empty, when
    /// the index has room: a new user's key is filed without walking its probe run
    /// a second time.
    pub fn insert_at(&mut self, hash: u64, key: u32, at: Vacancy) {
        let room = (self.len + 1) * 5 <= self.slots.len() * 4;
        match at.0.and_then(|i| self.slots.get_mut(i)) {
            Some(slot) if room && *slot == 0 => {
                *slot = entry(hash, key);
                self.len += 1;
            }
            _ => self.insert(hash, key),
        }
    }

    /// Files `key` under `hash` (the caller knows it is not filed yet).
    pub fn insert(&mut self, hash: u64, key: u32) {
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        self.place(entry(hash, key));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = self.home(e >> 32);
        while let Some(slot) = self.slots.get_mut(i) {
            if *slot == 0 {
                *slot = e;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Unfiles `key`, filed under `hash`.
    pub fn remove(&mut self, hash: u64, key: u32) {
        let target = entry(hash, key);
        let mask = self.mask();
        let mut i = self.home(target >> 32);
        loop {
            match self.slots.get(i) {
                Some(&slot) if slot == target => break,
                Some(&0) | None => return,
                Some(_) => i = (i + 1) & mask,
            }
        }
        // Backward shift: pull later members of the probe run into the hole unless
        // their home lies cyclically in (hole, their slot].
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let slot = match self.slots.get(j) {
                Some(&s) if s != 0 => s,
                _ => break,
            };
            let home = self.home(slot >> 32);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    /// Slots allocated.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

/// Where a lookup found no key: see [`Index::find_or_vacancy`].
#[derive(Debug, Clone, Copy)]
pub struct Vacancy(Option<usize>);

impl Vacancy {
    /// No known slot: [`Index::insert_at`] walks the probe run itself.
    pub const UNKNOWN: Vacancy = Vacancy(None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Against a `HashMap` model, with hashes drawn from a small set so that
        /// probe runs collide, wrap around and get shifted back on removal.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let mut index = Index::new();
            let mut model: HashMap<u32, u64> = HashMap::new();
            let mut next_key = 0u32;
            for (insert, id) in ops {
                // Hashes whose low bits (the home slot) often coincide.
                let hash = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !0xfff) | ((id % 5) * 3);
                let found = index.find(hash, |k| model.get(&k) == Some(&id));
                let modelled = model.iter().find(|&(_, &v)| v == id).map(|(&k, _)| k);
                prop_assert_eq!(found, modelled);
                let vacancy = index.find_or_vacancy(hash, |k| model.get(&k) == Some(&id));
                prop_assert_eq!(vacancy.ok(), found);
                match (insert, vacancy) {
                    (true, Err(at)) if next_key.is_multiple_of(2) => {
                        index.insert_at(hash, next_key, at);
                        model.insert(next_key, id);
                        next_key += 1;
                    }
                    (true, Err(_)) => {
                        index.insert(hash, next_key);
                        model.insert(next_key, id);
                        next_key += 1;
                    }
                    (false, Ok(k)) => {
                        index.remove(hash, k);
                        model.remove(&k);
                    }
                    _ => {}
                }
                prop_assert_eq!(index.len(), model.len());
                prop_assert!(index.len() * 5 <= index.capacity() * 4);
            }
        }
    }

    #[test]
    fn first_candidate_is_the_match_without_collisions() {
        let mut index = Index::new();
        for k in 0..1000u32 {
            index.insert(u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15), k);
        }
        for k in 0..1000u32 {
            let h = u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(index.first_candidate(h), Some(k));
            assert_eq!(index.find(h, |c| c == k), Some(k));
        }
        for k in (0..1000u32).step_by(2) {
            index.remove(u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15), k);
        }
        for k in 0..1000u32 {
            let h = u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let want = (k % 2 == 1).then_some(k);
            assert_eq!(index.find(h, |c| c == k), want);
        }
        assert_eq!(index.len(), 500);
        // Rebuilt from the stored bits under new keys, every key is found again.
        let mut rebuilt = Index::with_room_for(index.len());
        for (bits, key) in index.keys() {
            rebuilt.insert(bits, key + 7);
        }
        assert_eq!(rebuilt.len(), 500);
        for k in (1..1000u32).step_by(2) {
            let h = u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(rebuilt.find(h, |c| c == k + 7), Some(k + 7));
        }
    }
}
