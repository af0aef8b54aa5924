//! Giving memory back: a shard's tables (the slabs, the users' index, the wheel's
//! buffers) grow with the keys in the window and do not shrink by themselves, so
//! after a burst has left they would hold the burst's memory for good.
//!
//! Once the sweep has caught up and a table is at most a quarter full (and more
//! than [`COMPACT_MIN_SLOTS`] big), the shard rebuilds all of them at twice the
//! size of what they hold: records move to new slab keys, so the index, the pair
//! tables and the wheel are rebuilt from the live records, and users' references
//! to types are remapped. A quarter to shrink and a doubling to grow keep a
//! shard that hovers around one size from rebuilding again and again.
//!
//! The rebuild runs under the shard's lock, so it is bounded: it finds the live
//! records through the wheel (not by walking the tables, which are mostly empty),
//! moves each once, and runs only when at most [`COMPACT_MAX_RECORDS`] records are
//! live; the old tables are freed on the reclaim thread (`store/reclaim.rs`). The
//! longest sweep step, the one that rebuilds, measured 2.9 – 3.9 ms for a shard
//! whose million-slot tables were left with 100 users (21.7 ms when the old tables
//! were dropped in place), 0.3 – 0.8 ms for 262,144 slots (a million-user burst
//! over the default four shards) and 2.1 – 3.6 ms with 32,000 users to move
//! (`cargo bench --bench store -- compact`, three runs on a busy two-core machine). A shard that stays bigger than the bound keeps its peak tables until
//! it shrinks below it.

use hashbrown::{HashMap, HashTable};
use slab::Slab;

use super::super::index::Index;
use super::super::reclaim;
use super::super::wheel::Wheel;
use super::record::{PairRec, TypeRec, Types, UserRec};
use super::{Shard, TYPE_KEY, hash_of, oldest};

/// Tables with at most this many slots are left as they are: a few KB.
pub const COMPACT_MIN_SLOTS: usize = 1024;

/// Most live records (users and types) a rebuild moves, under the shard's lock:
/// moving 32,000 users took 2.1 – 3.6 ms (`cargo bench --bench store -- compact`),
/// so a client never waits much longer than that for it.
pub const COMPACT_MAX_RECORDS: usize = 32_768;

/// Old tables of at most this many slots are dropped in place; bigger ones on the
/// reclaim thread (see `store/reclaim.rs`): walking 65,536 slots takes ~1 ms.
const RECLAIM_INLINE_SLOTS: usize = 1 << 16;

/// Room a rebuilt table gets for `n` records: twice as many, rounded up to a power
/// of two, so that it is not sparse again (a quarter) before it has halved, nor full
/// before it has doubled; and so that it grows back through the same sizes as a
/// table grown from empty, with the same memory at the same number of keys.
fn room(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        n.saturating_mul(2).next_power_of_two()
    }
}

/// Whether a table of `cap` slots holding `len` is big and at most a quarter full.
fn sparse(len: usize, cap: usize) -> bool {
    cap > COMPACT_MIN_SLOTS && len.saturating_mul(4) <= cap
}

impl Shard {
    /// Whether some table holds far more room than its keys need.
    fn is_sparse(&self) -> bool {
        sparse(self.users.len(), self.users.capacity())
            // The index is kept between 2/5 and 4/5 full: a tenth is sparse.
            || sparse(self.user_index.len() * 5 / 2, self.user_index.capacity())
            || sparse(self.types.len(), self.types.capacity())
            || sparse(self.type_index.len(), self.type_index.capacity())
            || sparse(self.many.len(), self.many.capacity())
            || sparse(self.wheel.entries(), self.wheel.capacity())
    }

    /// Rebuilds the tables at the size of what they hold if they are sparse and the
    /// rebuild is small enough (see the module doc). For the sweep, once it is done:
    /// no wheel entry is due then, so the wheel can be rebuilt from the records.
    pub(super) fn compact_if_sparse(&mut self) {
        if self.is_sparse() && self.users.len() + self.types.len() <= COMPACT_MAX_RECORDS {
            self.compact();
        }
    }

    /// Sweeps everything due, then rebuilds the tables whatever their size or
    /// fill: unbounded, for an explicit request (and tests).
    pub fn compact_now(&mut self, now: i64) {
        while !self.expire_step(now, usize::MAX) {}
        self.compact();
    }

    /// The rebuild; see the module doc.
    fn compact(&mut self) {
        // The live records are found through the wheel, where each is filed under its
        // oldest second: O(entries), where walking a table is O(its peak). The
        // indexes then catch any the wheel does not hold (a type kept only by its
        // pairs has no second of its own).
        let (type_hints, user_hints): (Vec<u32>, Vec<u32>) =
            self.wheel.keys().partition(|&k| k & TYPE_KEY != 0);
        let mut wheel = Wheel::new(self.window, self.wheel.cutoff());
        // Types first: users and pairs refer to them by key.
        let (old_types, old_type_index, type_keys) = self.compact_types(&type_hints, &mut wheel);
        let (old_users, old_many, old_user_index) =
            self.compact_users(&user_hints, &type_keys, &mut wheel);
        let old_wheel = std::mem::replace(&mut self.wheel, wheel);
        let big = old_users.capacity() + old_types.capacity() > RECLAIM_INLINE_SLOTS;
        let old = (
            old_users,
            old_types,
            old_many,
            old_type_index,
            old_user_index,
            old_wheel,
        );
        if big {
            reclaim::drop_later(Box::new(old));
        }
    }

    /// Moves the types into new tables, filing them on `wheel`. Returns the old
    /// tables and each type's old key → new key.
    fn compact_types(
        &mut self,
        hints: &[u32],
        wheel: &mut Wheel,
    ) -> (Slab<TypeRec>, HashTable<u32>, HashMap<u32, u32>) {
        let window = self.window;
        let hasher = &self.hasher;
        let mut old_types = std::mem::take(&mut self.types);
        let old_index = std::mem::take(&mut self.type_index);
        let mut types = Slab::with_capacity(room(old_types.len()));
        let mut index: HashTable<u32> = HashTable::with_capacity(room(old_types.len()));
        let mut keys: HashMap<u32, u32> = HashMap::with_capacity(old_types.len());
        let mut move_type = |old_types: &mut Slab<TypeRec>, old: u32| {
            let Some(t) = old_types.try_remove(old as usize) else {
                return;
            };
            let hash = hash_of(hasher, t.name.as_bytes());
            let next = oldest(t.ring.occupancy(), i64::from(t.anchor), window);
            let key = types.insert(t) as u32;
            index.insert_unique(hash, key, |&i| {
                types
                    .get(i as usize)
                    .map_or(0, |t| hash_of(hasher, t.name.as_bytes()))
            });
            keys.insert(old, key);
            if let Some(o) = next {
                wheel.register(key | TYPE_KEY, o);
            }
        };
        for &hint in hints {
            move_type(&mut old_types, hint & !TYPE_KEY);
        }
        if !old_types.is_empty() {
            for &old in old_index.iter() {
                move_type(&mut old_types, old);
            }
        }
        self.types = types;
        self.type_index = index;
        (old_types, old_index, keys)
    }

    /// Moves the users and their pair tables into new tables, remapping their types
    /// by `type_keys` and filing them on `wheel`. Returns the old tables.
    fn compact_users(
        &mut self,
        hints: &[u32],
        type_keys: &HashMap<u32, u32>,
        wheel: &mut Wheel,
    ) -> (Slab<UserRec>, Slab<HashTable<PairRec>>, Index) {
        let window = self.window;
        let hasher = &self.hasher;
        // A pair's type outlives the pair, so every type referred to is mapped.
        let remap = |ty: u32| type_keys.get(&ty).copied().unwrap_or(ty);
        let mut old_users = std::mem::take(&mut self.users);
        let mut old_many = std::mem::take(&mut self.many);
        let mut users = Slab::with_capacity(room(old_users.len()));
        let mut many = Slab::with_capacity(room(old_many.len()));
        let mut index = Index::with_room_for(old_users.len());
        let mut move_user = |old_users: &mut Slab<UserRec>, old: u32, bits: Option<u64>| {
            let Some(mut u) = old_users.try_remove(old as usize) else {
                return;
            };
            match u.types() {
                Types::One { ty, running } => u.set_one(remap(ty), running),
                Types::Many(table) => {
                    let pairs = old_many.try_remove(table).unwrap_or_default();
                    let mut rebuilt: HashTable<PairRec> = HashTable::with_capacity(pairs.len());
                    for mut p in pairs {
                        p.ty = remap(p.ty);
                        rebuilt.insert_unique(u64::from(p.ty), p, |p| u64::from(p.ty));
                    }
                    u.set_many(many.insert(rebuilt));
                }
            }
            let bits = bits.unwrap_or_else(|| hash_of(hasher, u.name.as_bytes()));
            let next = oldest(u.ring.occupancy(), i64::from(u.anchor), window);
            let key = users.insert(u) as u32;
            index.insert(bits, key);
            if let Some(o) = next {
                wheel.register(key, o);
            }
        };
        for &old in hints {
            move_user(&mut old_users, old, None);
        }
        // Every user holds a second, so the wheel has them all: the index is a guard.
        debug_assert!(
            old_users.is_empty(),
            "{} users off the wheel",
            old_users.len()
        );
        if !old_users.is_empty() {
            for (bits, old) in self.user_index.keys() {
                move_user(&mut old_users, old, Some(bits));
            }
        }
        self.users = users;
        self.many = many;
        // Every user has a new key: the ranking's region is made again.
        let counts = self
            .users
            .iter()
            .map(|(k, u)| (k as u32, u.ring.total(), u.name.as_bytes()));
        self.rank.rekey(counts);
        let old_index = std::mem::replace(&mut self.user_index, index);
        (old_users, old_many, old_index)
    }
}
