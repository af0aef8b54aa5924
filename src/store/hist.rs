//! How many records have their newest second in each second of the window: what
//! makes "active in the last `s` seconds" exact at every moment and cheap to read.
//!
//! ```text
//!  counts: [u64; 64]   slot s % 64 = records whose newest second is s,
//!                      for s in (cutoff, cutoff + window]
//!  live:  Σ counts     stale: records whose newest second is ≤ cutoff
//! ```
//!
//! 64 slots rather than `window`: the window is at most 60 seconds, so no two seconds
//! of it share a slot, and a slot is a mask away (`s & 63`), not a division.
//!
//! A record's newest second only moves forward (an event in a later second), so the
//! owner reports each move ([`SecondHist::moved`]) and each record that comes and
//! goes; that is one decrement and one increment, and only when the second changes,
//! never per event within a second. When the window moves ([`SecondHist::advance`]),
//! the slots of the seconds that leave are emptied into `stale`: those records are
//! no longer active although the sweep has not removed them yet. Their removal later
//! decrements `stale`, because a second at or before the cutoff always means the
//! stale count, whichever side of the cutoff it was on when it was added.

use super::ring::MAX_SLOTS;

/// Slots of the histogram: a power of two, at least the longest window.
const SLOTS: u32 = 64;
const _: () = assert!(MAX_SLOTS <= SLOTS);

#[inline]
fn slot(sec: i64) -> usize {
    (sec & i64::from(SLOTS - 1)) as usize
}

/// The slots of the seconds in `(after, through]`, a span of at most [`SLOTS`].
fn seconds(after: i64, through: i64) -> u64 {
    let len = through.saturating_sub(after);
    if len <= 0 {
        return 0;
    }
    if len >= i64::from(SLOTS) {
        return u64::MAX;
    }
    let run = (1u64 << len) - 1;
    run.rotate_left(slot(after + 1) as u32)
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct SecondHist {
    /// Seconds up to here have left the window.
    cutoff: i64,
    window: u32,
    /// Boxed: 512 bytes inline would push the shard's hot fields apart, and the
    /// counts are touched only when a key's newest second moves.
    counts: Box<[u64; SLOTS as usize]>,
    live: u64,
    stale: u64,
}

impl SecondHist {
    /// An empty histogram for a window of `window` seconds ending at `now`.
    pub fn new(window: u32, now: i64) -> Self {
        let window = window.min(MAX_SLOTS);
        SecondHist {
            cutoff: now - i64::from(window),
            window,
            counts: Box::new([0; SLOTS as usize]),
            live: 0,
            stale: 0,
        }
    }

    #[inline]
    fn window(&self) -> u32 {
        self.window
    }

    /// Moves the window to end at `now` (never back): records whose newest second
    /// leaves it become stale.
    #[inline]
    pub fn advance(&mut self, now: i64) {
        let cutoff = now - i64::from(self.window());
        if cutoff > self.cutoff {
            self.leave(cutoff);
        }
    }

    fn leave(&mut self, cutoff: i64) {
        let mut gone = seconds(self.cutoff, cutoff);
        while gone != 0 {
            let slot = gone.trailing_zeros() as usize;
            gone &= gone - 1;
            if let Some(c) = self.counts.get_mut(slot) {
                self.live -= *c;
                self.stale += *c;
                *c = 0;
            }
        }
        self.cutoff = cutoff;
    }

    /// A record whose newest second is `sec` appeared (`sec` at most the end of the
    /// window: the owner advanced first).
    #[inline]
    pub fn add(&mut self, sec: i64) {
        if sec > self.cutoff
            && let Some(c) = self.counts.get_mut(slot(sec))
        {
            *c += 1;
            self.live += 1;
        } else {
            self.stale += 1;
        }
    }

    /// A record whose newest second was `sec` went away.
    #[inline]
    pub fn remove(&mut self, sec: i64) {
        if sec > self.cutoff
            && let Some(c) = self.counts.get_mut(slot(sec))
        {
            *c = c.saturating_sub(1);
            self.live = self.live.saturating_sub(1);
        } else {
            self.stale = self.stale.saturating_sub(1);
        }
    }

    /// A record's newest second moved forward, from `from` to `to`.
    #[inline]
    pub fn moved(&mut self, from: i64, to: i64) {
        if from > self.cutoff && to > from {
            // Both inside the window (the common case): `live` stays as it is.
            if let Some(c) = self.counts.get_mut(slot(from)) {
                *c = c.saturating_sub(1);
            }
            if let Some(c) = self.counts.get_mut(slot(to)) {
                *c += 1;
            }
        } else if from != to {
            self.remove(from);
            self.add(to);
        }
    }

    /// Records whose newest second is in the last `span` seconds of the window
    /// (which ends at `cutoff + window`).
    pub fn active(&self, span: u32) -> u64 {
        if span >= self.window() {
            return self.live;
        }
        let end = self.cutoff + i64::from(self.window());
        let mut slots = seconds(end - i64::from(span), end);
        let mut sum = 0;
        while slots != 0 {
            let slot = slots.trailing_zeros() as usize;
            slots &= slots - 1;
            sum += self.counts.get(slot).copied().unwrap_or(0);
        }
        sum
    }

    /// The last second of the window (the latest `now` it was advanced to).
    pub fn end(&self) -> i64 {
        self.cutoff + i64::from(self.window())
    }

    /// Records held, active or stale.
    pub fn len(&self) -> u64 {
        self.live + self.stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_masks_wrap() {
        assert_eq!(seconds(10, 10), 0);
        assert_eq!(seconds(10, 11), 1 << 11);
        assert_eq!(seconds(62, 65), (1 << 63) | 1 | 2);
        assert_eq!(seconds(-3, -1), (1 << 62) | (1 << 63));
        assert_eq!(seconds(0, 1000), u64::MAX);
        assert_eq!(seconds(0, 60).count_ones(), 60);
    }

    #[test]
    fn records_leave_with_their_newest_second() {
        let mut h = SecondHist::new(60, 1000);
        h.add(1000);
        h.add(990);
        h.add(941);
        assert_eq!((h.active(60), h.active(10), h.active(1)), (3, 1, 1));
        h.moved(990, 1000);
        assert_eq!((h.active(60), h.active(1)), (3, 2));
        h.advance(1001);
        assert_eq!(h.active(60), 2, "941 left at 1001");
        assert_eq!(h.len(), 3, "still held until removed");
        h.remove(941);
        assert_eq!((h.active(60), h.len()), (2, 2));
        h.advance(5000);
        assert_eq!((h.active(60), h.len()), (0, 2));
        h.moved(1000, 4999);
        assert_eq!(
            (h.active(60), h.active(1), h.active(2), h.len()),
            (1, 0, 1, 2)
        );
        h.remove(1000);
        h.remove(4999);
        assert_eq!((h.active(60), h.len()), (0, 0));
    }
}
