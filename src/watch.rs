//! `WATCH`ed users: which connections to warn when an event for a user is applied,
//! so that their `EXEC` returns a null array (optimistic locking, as redis-py's
//! `transaction()` helper uses it).
//!
//! Watching is rare and events are many: while nobody watches, an event pays one
//! relaxed load ([`Watches::active`]); while someone does, a read lock and a hash
//! lookup per event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

/// A connection's "something I watch changed" flag.
pub type Dirty = Arc<AtomicBool>;

/// Who watches a user: the flags of the connections that do.
type Watchers = Vec<Weak<AtomicBool>>;

/// Every watched user and who watches it.
#[derive(Debug, Default)]
pub struct Watches {
    /// Users watched by at least one connection.
    watched: AtomicUsize,
    map: RwLock<HashMap<Box<[u8]>, Watchers>>,
}

impl Watches {
    /// Whether anyone watches anything.
    pub fn active(&self) -> bool {
        self.watched.load(Ordering::Relaxed) > 0
    }

    /// `dirty`'s owner watches `user` from now on.
    pub fn watch(&self, user: &[u8], dirty: &Dirty) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let list = map.entry(user.into()).or_default();
        if list.is_empty() {
            self.watched.fetch_add(1, Ordering::Relaxed);
        }
        if !list
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(dirty)))
        {
            list.push(Arc::downgrade(dirty));
        }
    }

    /// `dirty`'s owner no longer watches `users`.
    pub fn unwatch(&self, users: &[Box<[u8]>], dirty: &Dirty) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        for user in users {
            if let Some(list) = map.get_mut(user) {
                list.retain(|w| {
                    w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(dirty))
                });
                if list.is_empty() {
                    map.remove(user);
                    self.watched.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// An event for `user` was applied.
    pub fn touch(&self, user: &[u8]) {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = map.get(user) {
            for w in list {
                if let Some(d) = w.upgrade() {
                    d.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// The window was emptied (`FLUSHALL`): every watcher's users changed.
    pub fn touch_all(&self) {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        for d in map.values().flatten().filter_map(Weak::upgrade) {
            d.store(true, Ordering::Relaxed);
        }
    }
}

/// What one connection watches.
#[derive(Debug, Default)]
pub struct Watching {
    pub users: Vec<Box<[u8]>>,
    pub dirty: Dirty,
}

impl Watching {
    /// Stops watching everything (`UNWATCH`, `EXEC`, `DISCARD`, `RESET`, close).
    pub fn clear(&mut self, watches: &Watches) {
        if !self.users.is_empty() {
            watches.unwatch(&self.users, &self.dirty);
            self.users.clear();
        }
        self.dirty.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_reach_watchers_of_that_user_only_until_unwatched() {
        let w = Watches::default();
        let mut a = Watching::default();
        let b = Watching::default();
        w.watch(b"u1", &a.dirty);
        a.users.push(b"u1".to_vec().into());
        w.watch(b"u2", &b.dirty);
        assert!(w.active());
        w.touch(b"u2");
        assert!(!a.dirty.load(Ordering::Relaxed));
        assert!(b.dirty.load(Ordering::Relaxed));
        w.touch(b"u1");
        assert!(a.dirty.load(Ordering::Relaxed));
        a.clear(&w);
        w.touch(b"u1");
        assert!(!a.dirty.load(Ordering::Relaxed));
        drop(b);
        w.touch_all();
    }
}
