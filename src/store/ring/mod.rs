//! A key's per-second event counts (and, for a (user, type) pair, per-second exact
//! sums of `value`) over the window, bit-packed.
//!
//! ```text
//!  bits: u64   [ sums? : 1 | width code : 3 | occupancy : 60 ]   bit i <=> slot i holds >= 1 event
//!  spill: ThinVec<u64>   (empty, no allocation, while nothing below is needed)
//!         [ Σ(count-1) | (count-1) per occupied slot, `width` bits each ]   when width > 0
//!         [ wl | wh ] [ per occupied slot: wl low + wh high partials ]     when sums? is set
//!         [ the running sum's low partials, high partials ]                 when the owner's
//!                                                                            Running is tagged
//! ```
//!
//! Slot `i` holds the second `s` with `s % window == i`; which of the seconds congruent
//! to `i` is the owner's business (its *anchor*, see `shard/mod.rs`). A count of one is
//! implied by the occupancy bit, so a key whose seconds each hold one event — the
//! common case for a user — costs these 16 bytes and no allocation. Larger counts are
//! stored as `count - 1` in the narrowest of 1, 2, 4, 8, 16 or 32 bits that fits every
//! occupied slot; the width grows when a count outgrows it and shrinks again when
//! expiry leaves only small counts. Powers of two never straddle a 64-bit word, so a
//! field is one shift and one mask away. `Σ(count-1)` makes the total over the whole
//! window `popcount + spill[0]`: O(1). Entries are in slot order, so an entry's index
//! is the number of occupied slots below it (one `popcount`).
//!
//! A key with a single occupied second (a user who sent a burst in one second) needs
//! no bitmap: width code 7 stores the slot in the low 6 bits and `count - 1` in the
//! next 54, so it too costs no allocation whatever its count.
//!
//! ```text
//!  single: [ 0 : 1 | 111 : 3 | count-1 : 54 | slot : 6 ]
//! ```
//!
//! # Sums
//!
//! Sums are exact (`store/exact.rs`): each second's sum and the window's running sum
//! are expansions of doubles whose exact total is the sum of the values, never
//! rounded until a query reads them. The owner keeps the running sum in a [`Running`]
//! word: the one double it is exactly — the common case, a single value or values
//! whose sum needs at most 53 bits — or a tag giving the lengths of its partials at
//! the end of the spill. Per-second sums are stored only when more than one second is
//! occupied and some sum is not zero: with one second its sum *is* the running sum.
//! They share one width, the most partials any second needs (one, for one value per
//! second or values that add up exactly), and are zero-padded to it.
//!
//! The running sum is maintained exactly: each value is added to it and to its
//! second's sum, and a second that leaves is subtracted — both exact, so the running
//! sum is the exact sum of what remains, and a key whose seconds have all left is
//! empty again, with a sum of exactly 0. `WINDOW <s>` adds up the seconds asked for,
//! or subtracts the others from the running sum, whichever is fewer.

mod sums;

use thin_vec::ThinVec;

pub use sums::Running;

/// Most slots a ring has; the window can be at most this many seconds.
pub const MAX_SLOTS: u32 = 60;

const OCC_MASK: u64 = (1 << MAX_SLOTS) - 1;
const WIDTH_SHIFT: u32 = 60;
const WIDTH_MASK: u64 = 0b111 << WIDTH_SHIFT;
const HAS_SUMS: u64 = 1 << 63;
/// Width code of the single-slot form.
const SINGLE: u64 = 0b111;
const SINGLE_SLOT_MASK: u64 = 0b11_1111;
/// Bits per stored `count - 1`, by width code.
const WIDTHS: [u32; 7] = [0, 1, 2, 4, 8, 16, 32];
/// Largest count one slot can hold; a busier second saturates (4.29 billion events
/// for one key in one second is far beyond what one server ingests).
pub const MAX_SLOT_COUNT: u64 = 1 << 32;

/// Per-second counts (and sums) of one key; see the module doc.
#[derive(Debug, Default, Clone)]
pub struct Ring {
    bits: u64,
    spill: ThinVec<u64>,
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

/// Words of spill the packed counts take for `n` entries of `w` bits.
fn counts_words(n: usize, w: u32) -> usize {
    if w == 0 {
        0
    } else {
        1 + (n * w as usize).div_ceil(64)
    }
}

/// Per-second sums, packed: `n` entries of `wl` low then `wh` high partials, each
/// group zero-padded.
#[derive(Debug, Clone, Default)]
struct Sums {
    wl: usize,
    wh: usize,
    words: Vec<u64>,
}

/// A ring's contents unpacked, for changes that move entries around.
struct Unpacked {
    occ: u64,
    n: usize,
    extra: [u64; 64],
    sums: Option<Sums>,
    /// The running sum's partials at the end of the spill (owner's tag says how many).
    tail: Vec<u64>,
}

impl Ring {
    /// An empty ring.
    pub const fn new() -> Self {
        Ring {
            bits: 0,
            spill: ThinVec::new(),
        }
    }

    fn is_single(&self) -> bool {
        (self.bits & WIDTH_MASK) >> WIDTH_SHIFT == SINGLE
    }

    /// `count - 1` of the one slot of the single-slot form.
    fn single_extra(&self) -> u64 {
        (self.bits & OCC_MASK) >> 6
    }

    /// Occupied slots.
    pub fn occupancy(&self) -> u64 {
        if self.is_single() {
            1 << (self.bits & SINGLE_SLOT_MASK)
        } else {
            self.bits & OCC_MASK
        }
    }

    /// Whether no slot holds an event.
    pub fn is_empty(&self) -> bool {
        self.occupancy() == 0
    }

    /// Bits per packed entry; 0 also for the single-slot form, which packs nothing.
    fn width(&self) -> u32 {
        WIDTHS
            .get(((self.bits & WIDTH_MASK) >> WIDTH_SHIFT) as usize)
            .copied()
            .unwrap_or(0)
    }

    fn has_sums(&self) -> bool {
        self.bits & HAS_SUMS != 0
    }

    fn n(&self) -> usize {
        self.occupancy().count_ones() as usize
    }

    /// Where the sums section (its header word) starts.
    fn sums_start(&self) -> usize {
        counts_words(self.n(), self.width())
    }

    /// Bytes this ring owns on the heap (tests check what allocates).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        if self.spill.capacity() == 0 {
            0
        } else {
            16 + 8 * self.spill.capacity()
        }
    }

    /// Events in every occupied slot. On every event's path (the ranking reads it
    /// before and after): one look at the width code, no table.
    #[inline]
    pub fn total(&self) -> u64 {
        match (self.bits & WIDTH_MASK) >> WIDTH_SHIFT {
            SINGLE => 1 + self.single_extra(),
            0 => u64::from((self.bits & OCC_MASK).count_ones()),
            _ => {
                u64::from((self.bits & OCC_MASK).count_ones())
                    + self.spill.first().copied().unwrap_or(0)
            }
        }
    }

    /// Rank of `slot` among the occupied slots.
    fn rank_of(&self, slot: u32) -> usize {
        (self.occupancy() & ((1u64 << slot) - 1)).count_ones() as usize
    }

    fn field(&self, rank: usize) -> u64 {
        if self.is_single() {
            return if rank == 0 { self.single_extra() } else { 0 };
        }
        let w = self.width() as usize;
        if w == 0 {
            return 0;
        }
        let bit = rank * w;
        let word = self.spill.get(1 + bit / 64).copied().unwrap_or(0);
        (word >> (bit % 64)) & ((1u64 << w) - 1)
    }

    /// The count in `slot` (0 when unoccupied).
    pub fn count_at(&self, slot: u32) -> u64 {
        if self.occupancy() & (1 << slot) == 0 {
            0
        } else {
            1 + self.field(self.rank_of(slot))
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
        if self.width() == 0 && !self.is_single() {
            return sum;
        }
        while hit != 0 {
            let slot = hit.trailing_zeros();
            sum += self.field(self.rank_of(slot));
            hit &= hit - 1;
        }
        sum
    }

    /// The contents, unpacked; `tail` words of running sum sit at the spill's end.
    fn unpack(&self, tail: usize) -> Unpacked {
        let n = self.n();
        let mut u = Unpacked {
            occ: self.occupancy(),
            n,
            extra: [0; 64],
            sums: None,
            tail: Vec::new(),
        };
        for (rank, v) in u.extra.iter_mut().enumerate().take(n) {
            *v = self.field(rank);
        }
        if self.has_sums() {
            let start = self.sums_start();
            let header = self.spill.get(start).copied().unwrap_or(0);
            let (wl, wh) = (
                (header & 0xffff) as usize,
                ((header >> 16) & 0xffff) as usize,
            );
            let from = start + 1;
            let words = self
                .spill
                .get(from..from + n * (wl + wh))
                .map(<[u64]>::to_vec)
                .unwrap_or_else(|| vec![0; n * (wl + wh)]);
            u.sums = Some(Sums { wl, wh, words });
        }
        if tail > 0 {
            let len = self.spill.len();
            u.tail = self
                .spill
                .get(len.saturating_sub(tail)..)
                .map(<[u64]>::to_vec)
                .unwrap_or_default();
        }
        u
    }

    /// Rebuilds bits and spill from unpacked contents, at the narrowest width, keeping
    /// sums only when some are non-zero and more than one slot is occupied.
    fn repack(&mut self, u: &Unpacked) {
        let n = u.n;
        let extras = &u.extra[..n];
        let code = width_code_for(extras.iter().copied().max().unwrap_or(0));
        let w = WIDTHS[code as usize];
        let sums = u
            .sums
            .as_ref()
            .filter(|s| n > 1 && s.words.iter().any(|&x| x != 0));
        if n == 1 && w > 0 && u.tail.is_empty() {
            // One second with several events: the single-slot form, no spill.
            let slot = u64::from(u.occ.trailing_zeros());
            self.bits = (SINGLE << WIDTH_SHIFT)
                | (extras.first().copied().unwrap_or(0).min(MAX_SLOT_COUNT - 1) << 6)
                | slot;
            self.spill = ThinVec::new();
            return;
        }
        let single = n == 1 && w > 0;
        let counts = if single { 0 } else { counts_words(n, w) };
        let sums_len = sums.map_or(0, |s| 1 + s.words.len());
        let words = counts + sums_len + u.tail.len();
        self.bits = if single {
            (SINGLE << WIDTH_SHIFT)
                | (extras.first().copied().unwrap_or(0).min(MAX_SLOT_COUNT - 1) << 6)
                | u64::from(u.occ.trailing_zeros())
        } else {
            (code << WIDTH_SHIFT) | u.occ | if sums.is_some() { HAS_SUMS } else { 0 }
        };
        if words == 0 {
            self.spill = ThinVec::new();
            return;
        }
        // Reuse the allocation while it fits and is not more than twice too big; grow
        // in steps of 8 words. A key gaining one second at a time (an event every
        // second) then reallocates every 8 seconds, not every second, which keeps the
        // allocator from fragmenting.
        let mut spill = std::mem::take(&mut self.spill);
        if spill.capacity() >= words && spill.capacity() <= 2 * words + 8 {
            spill.clear();
        } else {
            spill = ThinVec::with_capacity(words.next_multiple_of(8));
        }
        if counts > 0 {
            spill.push(extras.iter().sum());
            let start = spill.len();
            spill.extend(std::iter::repeat_n(0, counts - 1));
            for (rank, &v) in extras.iter().enumerate() {
                let bit = rank * w as usize;
                if let Some(word) = spill.get_mut(start + bit / 64) {
                    *word |= v << (bit % 64);
                }
            }
        }
        if let Some(s) = sums {
            spill.push((s.wl as u64) | ((s.wh as u64) << 16));
            spill.extend(s.words.iter().copied());
        }
        spill.extend(u.tail.iter().copied());
        self.spill = spill;
    }

    /// Adds `n` (>= 1) events to `slot` of a ring without sums. Returns whether the
    /// slot was empty before.
    pub fn add(&mut self, slot: u32, n: u64) -> bool {
        self.add_counted(slot, n, 0)
    }

    /// Adds `n` events to `slot`, keeping sums and the `tail` words of running sum.
    fn add_counted(&mut self, slot: u32, n: u64, tail: usize) -> bool {
        let n = n.max(1);
        let bit = 1u64 << slot;
        let was_empty = self.occupancy() & bit == 0;
        if was_empty && n == 1 && self.width() == 0 && !self.has_sums() && !self.is_single() {
            self.bits |= bit;
            return true;
        }
        let rank = self.rank_of(slot);
        if !was_empty && self.is_single() {
            let new = (self.single_extra() + n).min(MAX_SLOT_COUNT - 1);
            self.bits = (SINGLE << WIDTH_SHIFT) | (new << 6) | u64::from(slot);
            return false;
        }
        if !was_empty {
            let old = self.field(rank);
            let new = (old + n).min(MAX_SLOT_COUNT - 1);
            let w = self.width() as usize;
            if w > 0 && new < (1u64 << w) {
                // Fits in place: the common "one more event this second" path.
                let at = rank * w;
                if let Some(word) = self.spill.get_mut(1 + at / 64) {
                    *word = (*word & !(((1u64 << w) - 1) << (at % 64))) | (new << (at % 64));
                }
                if let Some(sum) = self.spill.first_mut() {
                    *sum += new - old;
                }
                return false;
            }
        }
        let mut u = self.unpack(tail);
        u.occ |= bit;
        if was_empty {
            u.extra.copy_within(rank..u.n, rank + 1);
            u.extra[rank] = (n - 1).min(MAX_SLOT_COUNT - 1);
            if let Some(s) = u.sums.as_mut() {
                s.insert_zero(rank);
            }
            u.n += 1;
        } else {
            u.extra[rank] = (u.extra[rank] + n).min(MAX_SLOT_COUNT - 1);
        }
        self.repack(&u);
        was_empty
    }

    /// Empties the slots in `mask` of a ring without sums; returns how many events
    /// they held.
    pub fn clear(&mut self, mask: u64) -> u64 {
        self.clear_counted(mask, 0).0
    }

    /// Empties the slots in `mask`, keeping `tail` words of running sum; returns the
    /// events they held and the unpacked sums of the slots that left (by old rank),
    /// with the ranks of those that stay.
    fn clear_counted(&mut self, mask: u64, tail: usize) -> (u64, Option<Cleared>) {
        let occ = self.occupancy();
        let gone = occ & mask;
        if gone == 0 {
            return (0, None);
        }
        let removed = self.count_in(gone);
        let left = (occ & !gone).count_ones();
        if left == 0 {
            self.bits = 0;
            self.spill = ThinVec::new();
            return (removed, Some(Cleared::default()));
        }
        if self.width() == 0 && !self.has_sums() && !self.is_single() && tail == 0 {
            self.bits &= !gone;
            return (removed, None);
        }
        let u = self.unpack(tail);
        let mut kept = Unpacked {
            occ: occ & !gone,
            n: 0,
            extra: [0; 64],
            sums: None,
            tail: u.tail.clone(),
        };
        let mut cleared = Cleared::default();
        let mut kept_sums = u.sums.as_ref().map(Sums::empty_like);
        let mut rest = occ;
        for rank in 0..u.n {
            let slot = rest.trailing_zeros();
            rest &= rest - 1;
            if gone & (1 << slot) == 0 {
                kept.extra[kept.n] = u.extra[rank];
                if let (Some(dst), Some(src)) = (kept_sums.as_mut(), u.sums.as_ref()) {
                    dst.push_from(src, rank);
                }
                kept.n += 1;
            } else if let Some(src) = u.sums.as_ref() {
                cleared.gone.push(src.exact(rank));
            }
        }
        if let Some(s) = kept_sums.as_ref()
            && kept.n == 1
        {
            cleared.only = Some(s.exact(0));
        }
        kept.sums = kept_sums;
        self.repack(&kept);
        (removed, Some(cleared))
    }
}

/// What [`Ring::clear_counted`] removed, for the owner's running sum.
#[derive(Debug, Default)]
struct Cleared {
    /// The exact sums of the seconds that left (when sums were stored).
    gone: Vec<super::exact::Exact>,
    /// The one second left's exact sum, when exactly one is left and sums were stored.
    only: Option<super::exact::Exact>,
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
        assert!(r.is_single());
        assert_eq!((r.count_at(5), r.heap_bytes()), (2, 0));
        r.add(7, 1);
        assert_eq!(r.width(), 1);
        assert_eq!(r.clear(1 << 7), 1);
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
