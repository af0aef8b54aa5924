//! A shard's share of `EVT.TOP`: from its ranking when that suffices, else by
//! reading its records in bounded steps (`store/top.rs` drives them). Everything here
//! reads without clearing: a record's seconds that left the window are skipped by its
//! mask, not removed, so a scan never changes what it walks.

use super::super::ring::seconds_mask;
use super::super::top::{Best, Score, ShardScan};
use super::Shard;
use super::record::Types;

/// The slots of a record anchored at `anchor` holding seconds of the last `span`
/// seconds up to `now` (its ring holds the seconds in `(anchor - window, anchor]`,
/// and the anchor never passes `now`).
#[inline]
pub(super) fn live_mask(anchor: i64, span: u32, now: i64, window: u32) -> u64 {
    let w = i64::from(window);
    seconds_mask(
        (anchor - w).max(now - i64::from(span)),
        anchor.min(now),
        window,
    )
}

impl Shard {
    /// The `k` users with the most events in the last `span` seconds, from the
    /// ranking alone: `None` when it cannot tell (see `store/rank.rs`).
    pub fn top_users_fast(
        &mut self,
        k: usize,
        span: u32,
        now: i64,
    ) -> Option<Vec<(Score, Vec<u8>)>> {
        let now = self.advance(now);
        let window = self.window;
        let mut candidates: Vec<(u64, u32)> = self.rank.region().map(|(key, c)| (c, key)).collect();
        // Counts are upper bounds of the true ones: read in that order, and stop when
        // no bound left can reach the k-th true count.
        candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        let mut best = Best::new(k);
        for (bound, key) in candidates {
            if let Some(Score::Count(worst)) = best.worst()
                && bound < worst
            {
                break;
            }
            let Some(u) = self.users.get(key as usize) else {
                continue;
            };
            let n = u
                .ring
                .count_in(live_mask(i64::from(u.anchor), span, now, window));
            if n > 0 {
                best.offer(Score::Count(n), u.name.as_bytes());
            }
        }
        let everyone = self.users.len() == self.rank.region_len();
        let bound = self.rank.outside_bound();
        let beyond = matches!(best.worst(), Some(Score::Count(w)) if w > bound);
        (everyone || bound == 0 || beyond).then(|| best.into_vec())
    }

    /// Moves `scan` on to this shard's `now` if the shard has passed it (the share is
    /// read again from the start). Returns that `now`.
    fn scan_now(&mut self, scan: &mut ShardScan) -> i64 {
        let now = self.advance(scan.now);
        if now != scan.now {
            scan.restart(now);
        }
        now
    }

    /// The slab keys of the next step of a scan over `capacity` slots, and whether it
    /// is the last.
    fn bite(scan: &ShardScan, capacity: usize, budget: usize) -> (u32, u32, bool) {
        let from = scan.next;
        let until = (from as usize).saturating_add(budget.max(1)).min(capacity) as u32;
        (from, until, until as usize >= capacity)
    }

    /// One step of a scan of the users by events. Returns whether it is done.
    pub fn scan_users(&mut self, scan: &mut ShardScan, span: u32, budget: usize) -> bool {
        let now = self.scan_now(scan);
        let window = self.window;
        let (from, until, last) = Self::bite(scan, self.users.capacity(), budget);
        for key in from..until {
            let Some(u) = self.users.get(key as usize) else {
                continue;
            };
            let n = u
                .ring
                .count_in(live_mask(i64::from(u.anchor), span, now, window));
            if n > 0 {
                scan.best.offer(Score::Count(n), u.name.as_bytes());
            }
        }
        scan.next = until;
        last
    }

    /// One step of a scan of this shard's shares of event types, adding their events
    /// to `scan.types`. Returns whether it is done.
    pub fn scan_types(&mut self, scan: &mut ShardScan, span: u32, budget: usize) -> bool {
        let now = self.scan_now(scan);
        let window = self.window;
        let (from, until, last) = Self::bite(scan, self.types.capacity(), budget);
        for key in from..until {
            let Some(t) = self.types.get(key as usize) else {
                continue;
            };
            let n = t
                .ring
                .count_in(live_mask(i64::from(t.anchor), span, now, window));
            if n > 0 {
                *scan.types.entry(t.name.as_bytes().to_vec()).or_insert(0) += n;
            }
        }
        scan.next = until;
        last
    }

    /// One step of a scan of the users by their sum of `value` over events of type
    /// `ty` (with its hash). Returns whether it is done.
    pub fn scan_sums(
        &mut self,
        scan: &mut ShardScan,
        ty: (&str, u64),
        span: u32,
        budget: usize,
    ) -> bool {
        let now = self.scan_now(scan);
        // A type this shard does not hold is no user's here.
        let Some(tidx) = self.find_type(ty.0, ty.1) else {
            return true;
        };
        let window = self.window;
        let (from, until, last) = Self::bite(scan, self.users.capacity(), budget);
        for key in from..until {
            let Some(u) = self.users.get(key as usize) else {
                continue;
            };
            let mask = live_mask(i64::from(u.anchor), span, now, window);
            let pair = match u.types() {
                Types::One { ty, running } if ty == tidx => Some((&u.ring, running)),
                Types::One { .. } => None,
                Types::Many(table) => self
                    .many
                    .get(table)
                    .and_then(|t| t.find(u64::from(tidx), |p| p.ty == tidx))
                    .map(|p| (&p.ring, p.running)),
            };
            if let Some((ring, running)) = pair
                && ring.count_in(mask) > 0
            {
                let sum = ring.exact_in(mask, running).round();
                scan.best.offer(Score::Sum(sum), u.name.as_bytes());
            }
        }
        scan.next = until;
        last
    }

    /// One step of the ranking's rebuild, if one is wanted or under way (the sweep
    /// calls it once it has caught up). Returns whether there is more to do.
    pub(super) fn rebuild_rank_step(&mut self, budget: usize) -> bool {
        self.rank.start_rebuild();
        let Some(from) = self.rank.rebuild_next() else {
            return false;
        };
        let capacity = self.users.capacity();
        let until = (from as usize).saturating_add(budget.max(1)).min(capacity);
        let last = until >= capacity;
        let users = &self.users;
        let counts =
            (from as usize..until).filter_map(|k| users.get(k).map(|u| (k as u32, u.ring.total())));
        self.rank.rebuild_step(counts, until as u32, last);
        self.rank.rebuilding()
    }
}
