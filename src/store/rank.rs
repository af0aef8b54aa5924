//! A shard's users ranked by their events in the window: what makes `EVT.TOP USERS`
//! over the whole window a read of a few thousand entries, not of every user.
//!
//! ```text
//!  hist:   low[c] (c < 1024, 4 KB) + high: BTreeMap<c, users>    users by count
//!  region: HashMap<key, count>   every user whose count is ≥ theta (at most CAP)
//! ```
//!
//! A user's *count* here is what its ring holds: the events of its seconds in the
//! window, plus those of seconds that have left it but that neither the sweep nor an
//! access has cleared yet. It only grows by events and only shrinks when seconds are
//! cleared, and the shard reports every change ([`Ranking::moved`]): two counter
//! updates in `hist`, one comparison with `theta`, and, for a user in the region, one
//! update of its entry. A user outside the region costs nothing more.
//!
//! `theta` is kept near the lowest count at which at most [`CAP`] users have that
//! many events or more: when the region overflows, its lowest count is evicted and
//! `theta` rises past it; when it has shrunk below a quarter of `CAP` (counts fall as seconds
//! leave) and a lower `theta` would bring it back to at most half of `CAP`, a rebuild
//! walks the shard's users in bounded steps and lowers it. During a rebuild the users
//! already walked (keys below `next`) are held to the new threshold, the others to
//! the old one, so the region is at every moment exactly the users at or above their
//! threshold.
//!
//! The query (`shard/top.rs`) orders the region by count, reads the true count of
//! the first entries (a count is an upper bound of the true one: cleared seconds only
//! lower it), and stops once the k-th best true count is above anything a user
//! outside the region can have (`theta - 1`). When it cannot conclude — more than
//! `CAP` users tie at the edge (a million users with one event each), or stale
//! seconds pushed the region's counts down — it scans the shard instead, in bounded
//! steps. The region holds a user's key and count: 4,096 entries of ~16 bytes per
//! shard, ~100 KB with the table's room, whatever the number of users.

use std::collections::BTreeMap;

use hashbrown::HashMap;

/// Most users the region holds. A region smaller than a quarter of it is rebuilt
/// when a lower threshold would bring it back to at most half of it.
pub const CAP: usize = 4096;
/// Counts below this are counted in an array, the others in a map.
const DIRECT: usize = 1024;

/// A rebuild lowering the threshold to `target`, done for keys below `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rebuild {
    next: u32,
    target: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct Ranking {
    /// Most users the region holds: [`CAP`] (smaller in tests).
    cap: usize,
    low: Box<[u32; DIRECT]>,
    high: BTreeMap<u64, u32>,
    region: HashMap<u32, u64>,
    theta: u64,
    rebuild: Option<Rebuild>,
}

impl Default for Ranking {
    fn default() -> Self {
        Ranking::new()
    }
}

impl Ranking {
    /// No users.
    pub fn new() -> Self {
        Ranking::with_cap(CAP)
    }

    /// No users; the region holds at most `cap`.
    pub fn with_cap(cap: usize) -> Self {
        Ranking {
            cap: cap.max(1),
            low: Box::new([0; DIRECT]),
            high: BTreeMap::new(),
            region: HashMap::new(),
            theta: 1,
            rebuild: None,
        }
    }

    fn hist_add(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        match self.low.get_mut(count as usize) {
            Some(c) => *c += 1,
            None => *self.high.entry(count).or_insert(0) += 1,
        }
    }

    fn hist_sub(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        match self.low.get_mut(count as usize) {
            Some(c) => *c = c.saturating_sub(1),
            None => {
                if let Some(c) = self.high.get_mut(&count) {
                    *c -= 1;
                    if *c == 0 {
                        self.high.remove(&count);
                    }
                }
            }
        }
    }

    /// Users with exactly `count` events.
    fn hist(&self, count: u64) -> u64 {
        match self.low.get(count as usize) {
            Some(&c) => u64::from(c),
            None => self.high.get(&count).map_or(0, |&c| u64::from(c)),
        }
    }

    /// The count from which user `key` belongs to the region.
    #[inline]
    fn threshold(&self, key: u32) -> u64 {
        match self.rebuild {
            Some(r) if key < r.next => r.target,
            _ => self.theta,
        }
    }

    /// User `key`'s count went from `from` to `to` (0: absent).
    #[inline]
    pub fn moved(&mut self, key: u32, from: u64, to: u64) {
        if from == to {
            return;
        }
        self.hist_sub(from);
        self.hist_add(to);
        let thr = self.threshold(key);
        match (from >= thr, to >= thr) {
            (true, true) => {
                if let Some(c) = self.region.get_mut(&key) {
                    *c = to;
                }
            }
            (false, true) => {
                self.region.insert(key, to);
                if self.region.len() > self.cap {
                    self.evict();
                }
            }
            (true, false) => {
                self.region.remove(&key);
            }
            (false, false) => {}
        }
    }

    /// Drops the region's lowest count until it fits, raising the thresholds past it.
    fn evict(&mut self) {
        while self.region.len() > self.cap {
            let Some(min) = self.region.values().copied().min() else {
                return;
            };
            self.region.retain(|_, c| *c != min);
            self.theta = self.theta.max(min + 1);
            if let Some(r) = self.rebuild.as_mut() {
                r.target = r.target.max(min + 1);
                if r.target >= self.theta {
                    self.rebuild = None;
                }
            }
        }
    }

    /// Whether a rebuild would grow a region that has shrunk.
    pub fn wants_rebuild(&self) -> bool {
        self.rebuild.is_none()
            && self.theta > 1
            && self.region.len() < self.cap / 4
            && self.region.len() as u64 + self.hist(self.theta - 1) <= (self.cap / 2) as u64
    }

    /// The lowest threshold at which at most half of `CAP` users are at or above it.
    fn target(&self) -> u64 {
        let room = (self.cap / 2) as u64;
        let mut above = 0u64;
        for (&c, &n) in self.high.iter().rev() {
            above += u64::from(n);
            if above > room {
                return c + 1;
            }
        }
        for c in (1..DIRECT).rev() {
            above += u64::from(self.low[c]);
            if above > room {
                return c as u64 + 1;
            }
        }
        1
    }

    /// Starts a rebuild if one is wanted.
    pub fn start_rebuild(&mut self) {
        if !self.wants_rebuild() {
            return;
        }
        let target = self.target();
        if target < self.theta {
            self.rebuild = Some(Rebuild { next: 0, target });
        }
    }

    /// Whether a rebuild is under way.
    pub fn rebuilding(&self) -> bool {
        self.rebuild.is_some()
    }

    /// One step of the rebuild: users `(key, count)` with keys from where it stopped
    /// up to `until` (exclusive), given in key order. `end` says whether `until` is
    /// past the last key: the rebuild is then done.
    pub fn rebuild_step(&mut self, users: impl Iterator<Item = (u32, u64)>, until: u32, end: bool) {
        let Some(r) = self.rebuild else {
            return;
        };
        for (key, count) in users {
            if key >= r.next && count >= r.target && count < self.theta {
                self.region.insert(key, count);
            }
        }
        match self.rebuild.as_mut() {
            Some(r) if !end => r.next = r.next.max(until),
            Some(r) => {
                self.theta = r.target;
                self.rebuild = None;
            }
            None => {}
        }
        if self.region.len() > self.cap {
            self.evict();
        }
    }

    /// Where the rebuild goes on from.
    pub fn rebuild_next(&self) -> Option<u32> {
        self.rebuild.map(|r| r.next)
    }

    /// Every user under new keys (the shard's tables were rebuilt): the region is
    /// made again from `users`, `(key, count)`, at the best threshold.
    pub fn rekey(&mut self, users: impl Iterator<Item = (u32, u64)>) {
        self.rebuild = None;
        self.region.clear();
        self.theta = self.target().max(1);
        for (key, count) in users {
            if count >= self.theta {
                self.region.insert(key, count);
            }
        }
        if self.region.len() > self.cap {
            self.evict();
        }
        self.region.shrink_to(self.cap);
    }

    /// The region: `(key, count)`.
    pub fn region(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.region.iter().map(|(&k, &c)| (k, c))
    }

    /// Users in the region.
    pub fn region_len(&self) -> usize {
        self.region.len()
    }

    /// The most events a user outside the region can have.
    pub fn outside_bound(&self) -> u64 {
        self.theta - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as Map;

    /// The region is exactly the users at or above their threshold.
    fn check(r: &Ranking, counts: &Map<u32, u64>) {
        for (&key, &count) in counts {
            let inside = count >= r.threshold(key) && count > 0;
            assert_eq!(
                r.region.get(&key).copied(),
                inside.then_some(count),
                "user {key}"
            );
        }
        assert!(r.region.len() <= r.cap);
        let total: u64 = (1..=4000).map(|c| r.hist(c)).sum();
        assert_eq!(total, counts.values().filter(|&&c| c > 0).count() as u64);
    }

    #[test]
    fn the_region_follows_counts_up_and_down_and_is_rebuilt() {
        let mut r = Ranking::new();
        let mut counts: Map<u32, u64> = Map::new();
        let set = |r: &mut Ranking, counts: &mut Map<u32, u64>, key: u32, to: u64| {
            let from = counts.get(&key).copied().unwrap_or(0);
            r.moved(key, from, to);
            counts.insert(key, to);
        };
        // 10,000 users with one event each: the region cannot hold them, and none of
        // them is above anyone else.
        for key in 0..10_000 {
            set(&mut r, &mut counts, key, 1);
        }
        check(&r, &counts);
        assert_eq!((r.region_len(), r.outside_bound()), (0, 1));
        // A hundred climb.
        for key in 0..100 {
            set(&mut r, &mut counts, key, 2 + u64::from(key));
        }
        check(&r, &counts);
        assert_eq!(r.region_len(), 100);
        // Most of the others leave; the 1s are few enough to be held again.
        for key in 100..9_000 {
            set(&mut r, &mut counts, key, 0);
        }
        check(&r, &counts);
        assert!(r.wants_rebuild());
        r.start_rebuild();
        assert!(r.rebuilding());
        let mut key = 0;
        while r.rebuilding() {
            let until = key + 700;
            let users: Vec<(u32, u64)> = (key..until.min(10_000))
                .map(|k| (k, counts.get(&k).copied().unwrap_or(0)))
                .collect();
            r.rebuild_step(users.into_iter(), until, until >= 10_000);
            // Changes between steps respect the two thresholds.
            set(&mut r, &mut counts, 9_500, 1 + u64::from(key % 3));
            check(&r, &counts);
            key = until;
        }
        check(&r, &counts);
        assert_eq!(r.outside_bound(), 0, "every user is held again");
        assert_eq!(r.region_len(), 1100);
    }
}
