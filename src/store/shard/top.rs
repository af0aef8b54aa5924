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
        // no bound left can reach the k-th true count. Usually only the first few
        // are read, so only those are sorted at first (O(region), not a full sort):
        // the rest is sorted if the reading goes past them.
        let first = (2 * k + 4).min(candidates.len());
        let desc = |a: &(u64, u32), b: &(u64, u32)| b.0.cmp(&a.0);
        if first > 0 && first < candidates.len() {
            candidates.select_nth_unstable_by(first - 1, desc);
        }
        if let Some(head) = candidates.get_mut(..first) {
            head.sort_unstable_by(desc);
        }
        let mut best = Best::new(k);
        for (i, &(bound, key)) in candidates.iter().enumerate() {
            if let Some(Score::Count(worst)) = best.worst()
                && bound < worst
            {
                break;
            }
            if i == first
                && let Some(tail) = candidates.get(first..)
            {
                // Past the sorted head: the others, in order (rare; a copy keeps the
                // iteration simple).
                let mut tail = tail.to_vec();
                tail.sort_unstable_by(desc);
                for (bound, key) in tail {
                    if let Some(Score::Count(worst)) = best.worst()
                        && bound < worst
                    {
                        break;
                    }
                    self.offer_user(&mut best, key, span, now, window);
                }
                break;
            }
            self.offer_user(&mut best, key, span, now, window);
        }
        // Then the edge: users with `theta - 1` events, the smallest ids first.
        let edge_count = self.rank.outside_bound();
        if let Some(edge) = self.rank.edge() {
            for (id, key) in edge.iter() {
                if let Some((Score::Count(w), wid)) = best.worst_entry()
                    && (w > edge_count || (w == edge_count && id > wid))
                {
                    break;
                }
                self.offer_user(&mut best, key, span, now, window);
            }
        }
        // What a user outside the region and the edge can have: fewer events than the
        // edge's count, or as many with a larger id than its largest.
        let edge = self.rank.edge();
        let complete = edge.is_some_and(|e| e.complete());
        let held = self.rank.region_len()
            + if complete {
                edge.map_or(0, |e| e.len())
            } else {
                0
            };
        let everyone = self.users.len() == held;
        let bound = if complete {
            edge_count.saturating_sub(1)
        } else {
            edge_count
        };
        let beyond = match best.worst_entry() {
            Some((Score::Count(w), wid)) => {
                w > bound
                    || (w == edge_count
                        && edge.and_then(|e| e.last()).is_some_and(|last| wid <= last))
            }
            _ => false,
        };
        (everyone || bound == 0 || beyond).then(|| best.into_vec())
    }

    /// Offers user `key`'s events in the last `span` seconds to `best`.
    fn offer_user(&self, best: &mut Best, key: u32, span: u32, now: i64, window: u32) {
        if let Some(u) = self.users.get(key as usize) {
            let n = u
                .ring
                .count_in(live_mask(i64::from(u.anchor), span, now, window));
            if n > 0 {
                best.offer(Score::Count(n), u.name.as_bytes());
            }
        }
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
                let sum = ring.sum_in(mask, running);
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
        let ids = |k: u32| users.get(k as usize).map(|u| u.name.as_bytes());
        self.rank.rebuild_step(counts, until as u32, last, ids);
        self.rank.rebuilding()
    }
}
