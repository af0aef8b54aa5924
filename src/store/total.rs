//! A shard's share of the total: one plain counter per second, and their sum.
//!
//! Unlike a key's [`Ring`](super::ring::Ring) it never needs packing: there is one
//! per shard, so `window` words cost nothing, and a count per second makes
//! `EVT.TOTAL WINDOW s` a sum of `s` words.

use super::ring::{full_mask, seconds_mask, slot_of};

/// See the module doc.
#[derive(Debug)]
pub struct TotalRing {
    /// The newest second held; slot `i` holds the second in `(anchor - window,
    /// anchor]` congruent to `i`.
    anchor: i64,
    counts: Box<[u64]>,
    /// Sum of `counts`.
    running: u64,
}

impl TotalRing {
    /// An empty ring for a window of `window` seconds.
    pub fn new(window: u32) -> Self {
        TotalRing {
            anchor: i64::MIN / 2,
            counts: vec![0; window as usize].into_boxed_slice(),
            running: 0,
        }
    }

    #[inline]
    fn window(&self) -> u32 {
        self.counts.len() as u32
    }

    /// Clears the seconds at or before `now - window`.
    #[inline]
    fn normalize(&mut self, now: i64) {
        let w = i64::from(self.window());
        let mut stale = seconds_mask(self.anchor - w, now - w, self.window());
        while stale != 0 {
            let slot = stale.trailing_zeros() as usize;
            stale &= stale - 1;
            if let Some(c) = self.counts.get_mut(slot) {
                self.running -= *c;
                *c = 0;
            }
        }
        self.anchor = self.anchor.max(now - w);
    }

    /// Adds `n` events in second `sec` (inside the window of `now`).
    #[inline]
    pub fn add(&mut self, sec: i64, n: u64, now: i64) {
        self.normalize(now);
        self.anchor = self.anchor.max(sec);
        if let Some(c) = self.counts.get_mut(slot_of(sec, self.window()) as usize) {
            *c += n;
            self.running += n;
        }
    }

    /// Events per second over the last `span` seconds up to `now`, oldest first,
    /// added to `out` (which has `span` entries).
    pub fn add_series(&mut self, span: u32, now: i64, out: &mut [u64]) {
        self.normalize(now);
        let first = now - i64::from(span) + 1;
        for (i, o) in out.iter_mut().enumerate() {
            let sec = first + i as i64;
            *o += self
                .counts
                .get(slot_of(sec, self.window()) as usize)
                .copied()
                .unwrap_or(0);
        }
    }

    /// Events in the slots of `mask` once the window ends at `now`.
    pub fn count(&mut self, mask: u64, now: i64) -> u64 {
        self.normalize(now);
        if mask == full_mask(self.window()) {
            return self.running;
        }
        let mut rest = mask;
        let mut sum = 0;
        while rest != 0 {
            let slot = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            sum += self.counts.get(slot).copied().unwrap_or(0);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_leave_as_the_window_moves() {
        let mut t = TotalRing::new(60);
        t.add(100, 2, 100);
        t.add(130, 3, 130);
        assert_eq!(t.count(full_mask(60), 130), 5);
        assert_eq!(t.count(seconds_mask(120, 130, 60), 130), 3);
        assert_eq!(t.count(full_mask(60), 160), 3, "second 100 left at 160");
        assert_eq!(t.count(full_mask(60), 1000), 0);
    }
}
