//! Expiry: clearing the seconds that left the window from the records touched (on
//! access) or due on the wheel (the background sweep), and removing records that
//! are left empty.

use super::super::ring::{Running, seconds_mask, slot_of};
use super::record::Types;
use super::{Shard, TYPE_KEY, hash_of, newest, oldest};

impl Shard {
    /// Clears the user's seconds at or before `now - window`; removes the user when
    /// nothing is left. Returns whether the user still exists.
    pub(super) fn expire_user(&mut self, idx: u32, now: i64) -> bool {
        let window = self.window;
        let w = self.w();
        let Some(u) = self.users.get_mut(idx as usize) else {
            return false;
        };
        let anchor = i64::from(u.anchor);
        let stale = seconds_mask(anchor - w, now - w, window) & u.ring.occupancy();
        if stale == 0 {
            return true;
        }
        let count_before = u.ring.total();
        // The pairs that went away, with their newest seconds.
        let mut dropped: Vec<(u32, i64)> = Vec::new();
        match u.types() {
            Types::One { ty, mut running } => {
                u.ring.clear_sums(stale, &mut running);
                u.set_one(ty, running);
                if u.ring.is_empty() {
                    dropped.push((ty, anchor));
                }
            }
            Types::Many(table_idx) => {
                u.ring.clear(stale);
                let mut collapse = false;
                if let Some(table) = self.many.get_mut(table_idx) {
                    table.retain(|p| {
                        let was = newest(p.ring.occupancy(), anchor, window);
                        p.ring.clear_sums(stale, &mut p.running);
                        if p.ring.is_empty() {
                            dropped.push((p.ty, was.unwrap_or(anchor)));
                            false
                        } else {
                            true
                        }
                    });
                    collapse = table.len() <= 1;
                }
                if collapse {
                    // Back to one type (or none): its ring equals the user's ring again,
                    // and its newest second is the user's anchor.
                    let table = self.many.remove(table_idx);
                    match table.into_iter().next() {
                        Some(p) => {
                            u.ring = p.ring;
                            u.set_one(p.ty, p.running);
                        }
                        // No pair left: the user is removed below.
                        None => u.set_one(0, Running::ZERO),
                    }
                }
            }
        }
        let alive = !u.ring.is_empty();
        let next = oldest(u.ring.occupancy(), anchor, window);
        let count_after = u.ring.total();
        self.rank_moved(idx, count_before, count_after);
        for (ty, was) in dropped {
            self.pair_newest.remove(was);
            self.release_type(ty, now);
        }
        if alive {
            if let Some(o) = next {
                self.wheel.register(idx, o);
            }
        } else {
            let u = self.users.remove(idx as usize);
            self.user_newest.remove(anchor);
            let hash = hash_of(&self.hasher, u.name.as_bytes());
            self.user_index.remove(hash, idx);
        }
        alive
    }

    /// A pair of type `ty` went away.
    fn release_type(&mut self, ty: u32, now: i64) {
        if let Some(t) = self.types.get_mut(ty as usize) {
            t.pairs = t.pairs.saturating_sub(1);
        }
        self.expire_type(ty, now);
    }

    /// Clears the type's stale seconds; removes it when it is empty and no pair refers
    /// to it. Returns whether it still exists.
    pub(super) fn expire_type(&mut self, idx: u32, now: i64) -> bool {
        let window = self.window;
        let w = self.w();
        let Some(t) = self.types.get_mut(idx as usize) else {
            return false;
        };
        let occ = t.ring.occupancy();
        let stale = seconds_mask(i64::from(t.anchor) - w, now - w, window) & occ;
        if stale != 0 {
            t.ring.clear(stale);
            if let Some(o) = oldest(t.ring.occupancy(), i64::from(t.anchor), window) {
                self.wheel.register(idx | TYPE_KEY, o);
            }
        }
        let Some(t) = self.types.get(idx as usize) else {
            return false;
        };
        if t.ring.is_empty() && t.pairs == 0 {
            let t = self.types.remove(idx as usize);
            self.registry.release(t.id, now);
            let hash = hash_of(&self.hasher, t.name.as_bytes());
            if let Ok(entry) = self.type_index.find_entry(hash, |&i| i == idx) {
                entry.remove();
            }
            return false;
        }
        true
    }

    /// Sweeps the wheel up to `now - window`, handling at most `budget` entries.
    /// Returns whether the sweep is complete.
    pub fn expire_step(&mut self, now: i64, budget: usize) -> bool {
        let now = self.advance(now);
        self.wheel.begin(now - self.w());
        let mut done = 0;
        while done < budget {
            let Some((key, slot)) = self.wheel.next_due() else {
                // Caught up: the ranking's region, if expiry shrank it, is rebuilt in
                // steps of reading (cheaper than expiring: more per step).
                if self.rebuild_rank_step(budget.saturating_mul(16)) {
                    return false;
                }
                self.compact_if_sparse();
                return true;
            };
            done += 1;
            let cutoff = self.wheel.cutoff();
            let (is_type, idx) = (key & TYPE_KEY != 0, key & !TYPE_KEY);
            let (occ, anchor) = if is_type {
                match self.types.get(idx as usize) {
                    Some(t) => (t.ring.occupancy(), t.anchor),
                    None => continue,
                }
            } else {
                match self.users.get(idx as usize) {
                    Some(u) => (u.ring.occupancy(), u.anchor),
                    None => continue,
                }
            };
            match oldest(occ, i64::from(anchor), self.window) {
                Some(o) if o <= cutoff => {
                    if is_type {
                        self.expire_type(idx, now);
                    } else {
                        self.expire_user(idx, now);
                    }
                }
                // Still due later under this very slot (registered again after the
                // slot was taken for this sweep): keep the entry.
                Some(o) if slot_of(o, self.window) == slot => self.wheel.register(key, o),
                // Empty type kept alive by its pairs, or a stale hint: drop it.
                _ => {}
            }
        }
        !self.wheel.pending()
    }
}
