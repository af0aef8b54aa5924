//! The event types of the whole store, for counting distinct types without asking
//! every shard.
//!
//! Each shard keeps its own share of a type (`TypeRec`), so a type lives in as many
//! shards as its users span. To count *distinct* types, each shard registers its
//! share here when it creates it and unregisters it when it removes it, and reports
//! when its share's newest second moves forward. The registry keeps, per type, how
//! many shards hold it and the newest second any of them has seen, and a
//! [`SecondHist`] over those newest seconds: active types in the last `s` seconds is
//! then a sum of at most `s` counters.
//!
//! ```text
//!  index: HashTable<u32> ── entries: Slab<Entry { name, hash, shards: u32, newest: i64 }>
//!  newest: SecondHist over the entries' `newest`
//! ```
//!
//! The lock is taken only when a shard creates or removes its share of a type, or
//! its share's newest second moves (at most once per type, shard and second): never
//! once per event. A shard holds its own lock when it calls in, so the order is
//! always shard, then registry; the registry never takes a shard's lock.

use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;
use slab::Slab;

use super::hist::SecondHist;
use super::name::Name;

/// One event type, across shards.
#[derive(Debug)]
struct Entry {
    name: Name,
    hash: u64,
    /// Shards holding a share of the type.
    shards: u32,
    /// The newest second of an event of this type in any shard.
    newest: i64,
}

#[derive(Debug)]
struct Inner {
    index: HashTable<u32>,
    entries: Slab<Entry>,
    newest: SecondHist,
}

impl Inner {
    /// The id of type `name` (of hash `hash`), if the registry holds it.
    fn find(&self, name: &str, hash: u64) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| {
                entries
                    .get(i as usize)
                    .is_some_and(|e| e.name.as_bytes() == name.as_bytes())
            })
            .copied()
    }

    fn release(&mut self, id: u32) {
        let Some(e) = self.entries.get_mut(id as usize) else {
            return;
        };
        e.shards = e.shards.saturating_sub(1);
        if e.shards > 0 {
            return;
        }
        let e = self.entries.remove(id as usize);
        self.newest.remove(e.newest);
        if let Ok(entry) = self.index.find_entry(e.hash, |&i| i == id) {
            entry.remove();
        }
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    /// An empty registry for a window of `window` seconds ending at `now`.
    pub fn new(window: u32, now: i64) -> Self {
        Registry {
            inner: Mutex::new(Inner {
                index: HashTable::new(),
                entries: Slab::new(),
                newest: SecondHist::new(window, now),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Held for a hash-table operation, never across an `.await`; the data is
        // consistent between operations, so a poisoned lock is taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A shard now holds a share of type `name` (hashed `hash`), whose newest event
    /// is in second `sec`. Returns the type's id, to pass to the other calls.
    pub fn acquire(&self, name: &str, hash: u64, sec: i64, now: i64) -> u32 {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.newest.advance(now);
        let found = inner.find(name, hash);
        match found.and_then(|id| Some((id, inner.entries.get_mut(id as usize)?))) {
            Some((id, e)) => {
                e.shards += 1;
                if sec > e.newest {
                    inner.newest.moved(e.newest, sec);
                    e.newest = sec;
                }
                id
            }
            None => {
                let id = inner.entries.insert(Entry {
                    name: Name::new(name),
                    hash,
                    shards: 1,
                    newest: sec,
                }) as u32;
                let entries = &inner.entries;
                inner
                    .index
                    .insert_unique(hash, id, |&i| entries.get(i as usize).map_or(0, |e| e.hash));
                inner.newest.add(sec);
                id
            }
        }
    }

    /// A shard's share of type `id` has an event in second `sec`, newer than any it
    /// had before.
    pub fn raise(&self, id: u32, sec: i64, now: i64) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.newest.advance(now);
        if let Some(e) = inner.entries.get_mut(id as usize)
            && sec > e.newest
        {
            inner.newest.moved(e.newest, sec);
            e.newest = sec;
        }
    }

    /// A shard no longer holds a share of type `id`.
    pub fn release(&self, id: u32, now: i64) {
        let mut inner = self.lock();
        inner.newest.advance(now);
        inner.release(id);
    }

    /// A shard no longer holds its shares of the types `ids` (FLUSHALL): one lock.
    pub fn release_all(&self, ids: impl Iterator<Item = u32>, now: i64) {
        let mut inner = self.lock();
        inner.newest.advance(now);
        for id in ids {
            inner.release(id);
        }
    }

    /// Whether acquiring type `name` would allocate: under the memory limit, only a
    /// type the registry already knows, or one that fits its tables, may be added.
    pub fn fits(&self, name: &str, hash: u64) -> bool {
        let inner = self.lock();
        inner.find(name, hash).is_some()
            || (Name::is_inline(name)
                && inner.entries.len() < inner.entries.capacity()
                && inner.index.len() < inner.index.capacity())
    }

    /// Distinct types with an event in the last `span` seconds up to `now`.
    pub fn active(&self, span: u32, now: i64) -> u64 {
        let mut inner = self.lock();
        inner.newest.advance(now);
        inner.newest.active(span)
    }

    /// The names of the types with an event in the last `span` seconds up to `now`:
    /// O(types), for a cluster's count of distinct types across nodes.
    pub fn active_names(&self, span: u32, now: i64) -> Vec<Vec<u8>> {
        let mut inner = self.lock();
        inner.newest.advance(now);
        // As `active`: the window ends at the latest `now` the registry has seen.
        let after = inner.newest.end() - i64::from(span);
        inner
            .entries
            .iter()
            .filter(|(_, e)| e.newest > after)
            .map(|(_, e)| e.name.as_bytes().to_vec())
            .collect()
    }

    /// Types registered, active or not yet swept (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_is_counted_once_across_shards_and_leaves_with_its_newest_second() {
        let r = Registry::new(60, 1000);
        let a = r.acquire("click", 1, 990, 1000);
        assert_eq!(
            r.acquire("click", 1, 1000, 1000),
            a,
            "a second shard's share"
        );
        let b = r.acquire("view", 2, 995, 1000);
        assert_ne!(a, b);
        assert_eq!(
            (r.active(60, 1000), r.active(1, 1000), r.active(6, 1000)),
            (2, 1, 2)
        );
        r.raise(b, 1000, 1000);
        assert_eq!(r.active(1, 1000), 2);
        // Neither went away with one share: they leave when their newest second does.
        r.release(a, 1000);
        assert_eq!(r.active(60, 1000), 2);
        assert_eq!(r.active(60, 1060), 0);
        r.release(a, 1060);
        r.release(b, 1060);
        assert_eq!(r.len(), 0);
        assert_eq!(r.active(60, 1060), 0);
    }

    #[test]
    fn fits_knows_existing_types_and_free_room() {
        let r = Registry::new(60, 1000);
        assert!(!r.fits("click", 1), "an empty registry has no room");
        let a = r.acquire("click", 1, 1000, 1000);
        assert!(r.fits("click", 1));
        r.release(a, 1000);
        // The freed slot and index room are reused without allocating.
        assert!(r.fits("click", 1));
        assert!(
            !r.fits(&"x".repeat(100), 3),
            "a long name needs an allocation"
        );
    }
}
