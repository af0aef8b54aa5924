//! A key's per-second event counts over the window, bit-packed.
//!
//! ```text
//!  bits: u64   [ width code : 4 | occupancy : 60 ]      bit i set <=> slot i holds >= 1 event
//!  extra: ThinVec<u64>  (empty, no allocation, while every occupied slot holds exactly 1)
//!         [ Σ(count-1) | (count-1) of each occupied slot, in slot order, `width` bits each ]
//! ```
//!
//! Slot `i` holds the second `s` with `s % window == i`; which of the seconds congruent
//! to `i` is the owner's business (its *anchor*, see `shard.rs`). A count of one is
//! implied by the occupancy bit, so a key whose seconds each hold one event (the
//! common case for a user) costs 16 bytes and no allocation. Larger counts are stored
//! as `count - 1` in the narrowest of 1, 2, 4, 8, 16 or 32 bits that fits every
//! occupied slot; the width grows when a count outgrows it and shrinks again when
//! expiry leaves only small counts. Powers of two never straddle a 64-bit word, so a
//! field is one shift and one mask away. The first word of `extra` keeps `Σ(count-1)`
//! so that the key's total over the whole window is `popcount + extra[0]`: O(1).

use thin_vec::ThinVec;

/// Most slots a ring has; the window can be at most this many seconds.
pub const MAX_SLOTS: u32 = 60;

const OCC_MASK: u64 = (1 << MAX_SLOTS) - 1;
const WIDTH_SHIFT: u32 = 60;
/// Bits per stored `count - 1`, by width code.
const WIDTHS: [u32; 7] = [0, 1, 2, 4, 8, 16, 32];
/// Largest count one slot can hold; a busier second saturates (4.29 billion events
/// for one key in one second is far beyond what one server ingests).
pub const MAX_SLOT_COUNT: u64 = 1 << 32;

/// Per-second counts of one key; see the module doc.
#[derive(Debug, Default, Clone)]
pub struct Ring {
    bits: u64,
    extra: ThinVec<u64>,
}

/// The slots of the seconds in `(after, through]` for a window of `slots` seconds.
pub fn seconds_mask(after: i64, through: i64, slots: u32) -> u64 {
    let full = full_mask(slots);
    if through <= after {
        return 0;
    }
    let len = through - after;
    if len >= i64::from(slots) {
        return full;
    }
    let start = (after + 1).rem_euclid(i64::from(slots)) as u32;
    let run = ((1u128 << len) - 1) << start;
    ((run | (run >> slots)) as u64) & full
}

/// All slots of a window of `slots` seconds.
pub fn full_mask(slots: u32) -> u64 {
    if slots >= 64 {
        u64::MAX
    } else {
        (1u64 << slots) - 1
    }
}

/// The slot of second `sec` in a window of `slots` seconds.
pub fn slot_of(sec: i64, slots: u32) -> u32 {
    sec.rem_euclid(i64::from(slots)) as u32
}

fn width_code_for(max_extra: u64) -> u64 {
    let bits = 64 - max_extra.leading_zeros();
    WIDTHS
        .iter()
        .position(|&w| w >= bits)
        .unwrap_or(WIDTHS.len() - 1) as u64
}

impl Ring {
    /// An empty ring.
    pub const fn new() -> Self {
        Ring {
            bits: 0,
            extra: ThinVec::new(),
        }
    }

    /// Occupied slots.
    pub fn occupancy(&self) -> u64 {
        self.bits & OCC_MASK
    }

    /// Whether no slot holds an event.
    pub fn is_empty(&self) -> bool {
        self.occupancy() == 0
    }

    fn width(&self) -> u32 {
        WIDTHS[((self.bits >> WIDTH_SHIFT) as usize).min(WIDTHS.len() - 1)]
    }

    /// Bytes this ring owns on the heap (for memory accounting and the layout doc).
    pub fn heap_bytes(&self) -> usize {
        if self.extra.capacity() == 0 {
            0
        } else {
            16 + 8 * self.extra.capacity()
        }
    }

    /// Events in every occupied slot.
    pub fn total(&self) -> u64 {
        u64::from(self.occupancy().count_ones()) + self.extra.first().copied().unwrap_or(0)
    }

    /// Rank of `slot` among the occupied slots.
    fn rank(&self, slot: u32) -> u32 {
        (self.occupancy() & ((1u64 << slot) - 1)).count_ones()
    }

    fn field(&self, rank: u32) -> u64 {
        let w = self.width();
        if w == 0 {
            return 0;
        }
        let bit = rank * w;
        let word = self
            .extra
            .get(1 + (bit / 64) as usize)
            .copied()
            .unwrap_or(0);
        (word >> (bit % 64)) & ((1u64 << w) - 1)
    }

    /// The count in `slot` (0 when unoccupied).
    pub fn count_at(&self, slot: u32) -> u64 {
        if self.occupancy() & (1 << slot) == 0 {
            0
        } else {
            1 + self.field(self.rank(slot))
        }
    }

    /// Sum of the counts of the slots in `mask`.
    pub fn count_in(&self, mask: u64) -> u64 {
        let occ = self.occupancy();
        if mask & occ == occ {
            return self.total();
        }
        let mut hit = occ & mask;
        let mut sum = u64::from(hit.count_ones());
        if self.width() == 0 {
            return sum;
        }
        while hit != 0 {
            let slot = hit.trailing_zeros();
            sum += self.field(self.rank(slot));
            hit &= hit - 1;
        }
        sum
    }

    /// The `count - 1` of every occupied slot, in slot order, into `out`; returns how many.
    fn unpack(&self, out: &mut [u64; 64]) -> usize {
        let n = self.occupancy().count_ones() as usize;
        for (rank, v) in out.iter_mut().enumerate().take(n) {
            *v = self.field(rank as u32);
        }
        n
    }

    /// Rebuilds the packed part from `extras` (the `count - 1` of the occupied slots in
    /// slot order) at the narrowest width that fits them.
    fn repack(&mut self, occ: u64, extras: &[u64]) {
        let max = extras.iter().copied().max().unwrap_or(0);
        let code = width_code_for(max);
        let w = WIDTHS[code as usize];
        self.bits = (code << WIDTH_SHIFT) | occ;
        if w == 0 {
            self.extra = ThinVec::new();
            return;
        }
        let words = (extras.len() * w as usize).div_ceil(64);
        let mut extra = ThinVec::with_capacity(1 + words);
        extra.push(extras.iter().sum());
        extra.extend(std::iter::repeat_n(0, words));
        for (rank, &v) in extras.iter().enumerate() {
            let bit = rank * w as usize;
            if let Some(word) = extra.get_mut(1 + bit / 64) {
                *word |= v << (bit % 64);
            }
        }
        self.extra = extra;
    }

    /// Adds `n` (>= 1) events to `slot`. Returns whether the slot was empty before.
    pub fn add(&mut self, slot: u32, n: u64) -> bool {
        let n = n.max(1);
        let bit = 1u64 << slot;
        let was_empty = self.occupancy() & bit == 0;
        if was_empty && n == 1 && self.width() == 0 {
            self.bits |= bit;
            return true;
        }
        let rank = self.rank(slot) as usize;
        if !was_empty {
            let old = self.field(rank as u32);
            let new = (old + n).min(MAX_SLOT_COUNT - 1);
            let w = self.width();
            if w > 0 && (w == 64 || new < (1u64 << w)) {
                // Fits in place: the common "one more event this second" path.
                let at = rank * w as usize;
                if let Some(word) = self.extra.get_mut(1 + at / 64) {
                    *word = (*word & !(((1u64 << w) - 1) << (at % 64))) | (new << (at % 64));
                }
                if let Some(sum) = self.extra.first_mut() {
                    *sum += new - old;
                }
                return false;
            }
        }
        let mut vals = [0u64; 64];
        let len = self.unpack(&mut vals);
        let occ = self.occupancy() | bit;
        if was_empty {
            vals.copy_within(rank..len, rank + 1);
            vals[rank] = (n - 1).min(MAX_SLOT_COUNT - 1);
            self.repack(occ, &vals[..len + 1]);
        } else {
            vals[rank] = (vals[rank] + n).min(MAX_SLOT_COUNT - 1);
            self.repack(occ, &vals[..len]);
        }
        was_empty
    }

    /// Empties the slots in `mask`; returns how many events they held.
    pub fn clear(&mut self, mask: u64) -> u64 {
        let occ = self.occupancy();
        let gone = occ & mask;
        if gone == 0 {
            return 0;
        }
        let removed = self.count_in(gone);
        if self.width() == 0 {
            self.bits &= !gone;
            return removed;
        }
        let mut vals = [0u64; 64];
        let len = self.unpack(&mut vals);
        let mut kept = [0u64; 64];
        let mut k = 0;
        let mut rest = occ;
        for v in vals.iter().take(len) {
            let slot = rest.trailing_zeros();
            rest &= rest - 1;
            if gone & (1 << slot) == 0 {
                kept[k] = *v;
                k += 1;
            }
        }
        self.repack(occ & !gone, &kept[..k]);
        removed
    }

    /// Rank of `slot` among the occupied slots, for owners keeping data per occupied slot.
    pub fn rank_of(&self, slot: u32) -> usize {
        self.rank(slot) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_wrap_and_saturate() {
        assert_eq!(seconds_mask(10, 10, 60), 0);
        assert_eq!(seconds_mask(10, 9, 60), 0);
        assert_eq!(seconds_mask(10, 11, 60), 1 << 11);
        assert_eq!(seconds_mask(58, 61, 60), (1 << 59) | 1 | 2);
        assert_eq!(seconds_mask(0, 60, 60), full_mask(60));
        assert_eq!(seconds_mask(-5, 1000, 60), full_mask(60));
        assert_eq!(seconds_mask(-3, -1, 60), (1 << 58) | (1 << 59));
        assert_eq!(seconds_mask(3, 5, 4), 0b0011);
    }

    #[test]
    fn ones_cost_no_allocation() {
        let mut r = Ring::new();
        for slot in 0..60 {
            assert!(r.add(slot, 1));
        }
        assert_eq!(r.total(), 60);
        assert_eq!(r.heap_bytes(), 0);
        assert_eq!(r.count_in(0b111), 3);
    }

    #[test]
    fn widens_and_narrows() {
        let mut r = Ring::new();
        r.add(5, 1);
        r.add(9, 1);
        assert!(!r.add(5, 1));
        assert_eq!(r.width(), 1);
        assert_eq!((r.count_at(5), r.count_at(9), r.total()), (2, 1, 3));
        r.add(9, 300);
        assert_eq!(r.width(), 16);
        assert_eq!((r.count_at(5), r.count_at(9), r.total()), (2, 301, 303));
        assert_eq!(r.clear(1 << 9), 301);
        assert_eq!(r.width(), 1);
        assert_eq!(r.clear(1 << 5), 2);
        assert_eq!((r.width(), r.total(), r.heap_bytes()), (0, 0, 0));
        assert!(r.is_empty());
    }

    #[test]
    fn insert_between_keeps_order() {
        let mut r = Ring::new();
        r.add(40, 7);
        r.add(2, 3);
        r.add(20, 1);
        r.add(59, 100_000);
        assert_eq!([2, 20, 40, 59].map(|s| r.count_at(s)), [3, 1, 7, 100_000]);
        assert_eq!(r.count_in(seconds_mask(10, 45, 60)), 8);
        r.clear(1 << 20);
        assert_eq!([2, 20, 40, 59].map(|s| r.count_at(s)), [3, 0, 7, 100_000]);
    }

    #[test]
    fn saturates_instead_of_wrapping() {
        let mut r = Ring::new();
        r.add(0, u64::MAX);
        r.add(0, 5);
        assert_eq!(r.count_at(0), MAX_SLOT_COUNT);
    }
}
