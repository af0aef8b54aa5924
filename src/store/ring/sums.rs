//! Exact sums in a ring: the owner's running sum ([`Running`]) and the per-second
//! sums in the spill (see the layout in the parent module's doc).

use super::super::exact::{Exact, grow, split, two_sum};
use super::{Ring, Sums};

/// A pair's running sum as its owner keeps it, in 8 bytes: the one double the sum
/// exactly is (never NaN, as the inputs are finite), or a NaN-tagged word giving the
/// number of low and high partials stored at the end of the ring's spill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Running(u64);

const TAG_MASK: u64 = 0xffff_0000_0000_0000;
/// A NaN pattern arithmetic never produces (a signalling NaN), marking the tag.
const TAG: u64 = 0x7ff4_0000_0000_0000;
/// Partials an in-place update works with on the stack; longer expansions (values
/// spanning more than ~800 bits of magnitude) take the general path.
const INLINE_PARTS: usize = 16;

impl Running {
    /// Zero.
    pub const ZERO: Running = Running(0);

    /// The word as stored.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// A word as stored.
    pub fn from_bits(bits: u64) -> Self {
        Running(bits)
    }

    /// The sum, when it is one double.
    fn single(self) -> Option<f64> {
        (self.0 & TAG_MASK != TAG).then(|| f64::from_bits(self.0))
    }

    /// Low and high partials at the end of the spill (none when single).
    fn lens(self) -> (usize, usize) {
        if self.0 & TAG_MASK == TAG {
            (
                (self.0 & 0xffff) as usize,
                ((self.0 >> 16) & 0xffff) as usize,
            )
        } else {
            (0, 0)
        }
    }

    /// Words at the end of the spill.
    pub(super) fn tail(self) -> usize {
        let (l, h) = self.lens();
        l + h
    }

    fn tagged(low: usize, high: usize) -> Self {
        Running(TAG | (low as u64 & 0xffff) | ((high as u64 & 0xffff) << 16))
    }
}

fn words_to_parts(words: &[u64]) -> impl Iterator<Item = f64> + '_ {
    words
        .iter()
        .map(|&w| f64::from_bits(w))
        .filter(|&x| x != 0.0)
}

impl Sums {
    /// `n` zero entries of one low partial.
    pub(super) fn zeroed(n: usize) -> Sums {
        Sums {
            wl: 1,
            wh: 0,
            words: vec![0; n],
        }
    }

    fn stride(&self) -> usize {
        self.wl + self.wh
    }

    /// No entries, the same widths.
    pub(super) fn empty_like(&self) -> Sums {
        Sums {
            wl: self.wl,
            wh: self.wh,
            words: Vec::new(),
        }
    }

    fn entry(&self, rank: usize) -> &[u64] {
        let s = self.stride();
        self.words.get(rank * s..(rank + 1) * s).unwrap_or_default()
    }

    /// Appends entry `rank` of `src` (same widths).
    pub(super) fn push_from(&mut self, src: &Sums, rank: usize) {
        self.words.extend_from_slice(src.entry(rank));
    }

    /// Inserts a zero entry at `rank`.
    pub(super) fn insert_zero(&mut self, rank: usize) {
        let at = (rank * self.stride()).min(self.words.len());
        self.words
            .splice(at..at, std::iter::repeat_n(0, self.stride()));
    }

    /// Entry `rank`'s exact sum.
    pub(super) fn exact(&self, rank: usize) -> Exact {
        let e = self.entry(rank);
        let (low, high) = e.split_at(self.wl.min(e.len()));
        let low: Vec<f64> = words_to_parts(low).collect();
        let high: Vec<f64> = words_to_parts(high).collect();
        Exact::from_parts(&low, &high)
    }

    /// Sets entry `rank` to `e`, widening every entry if it needs more partials.
    pub(super) fn set(&mut self, rank: usize, e: &Exact) {
        let (nl, nh) = (e.low().len(), e.high().len());
        if nl > self.wl || nh > self.wh {
            let (wl, wh) = (self.wl.max(nl), self.wh.max(nh));
            let n = self.words.len() / self.stride().max(1);
            let mut words = vec![0; n * (wl + wh)];
            for r in 0..n {
                let old = self.entry(r);
                let (low, high) = old.split_at(self.wl.min(old.len()));
                let dst = &mut words[r * (wl + wh)..(r + 1) * (wl + wh)];
                dst[..low.len()].copy_from_slice(low);
                dst[wl..wl + high.len()].copy_from_slice(high);
            }
            *self = Sums { wl, wh, words };
        }
        let (wl, s) = (self.wl, self.stride());
        if let Some(dst) = self.words.get_mut(rank * s..(rank + 1) * s) {
            dst.fill(0);
            for (d, &x) in dst.iter_mut().zip(e.low()) {
                *d = x.to_bits();
            }
            for (d, &x) in dst[wl..].iter_mut().zip(e.high()) {
                *d = x.to_bits();
            }
        }
    }
}

/// Adds `x` to the zero-padded partials in `words` in place; false when the result
/// needs more words than there are (nothing is changed then).
fn grow_words(words: &mut [u64], x: f64) -> bool {
    let mut buf = [0.0f64; INLINE_PARTS + 1];
    let mut len = 0;
    for &w in words.iter() {
        if w == 0 {
            break;
        }
        let Some(slot) = buf.get_mut(len) else {
            return false;
        };
        *slot = f64::from_bits(w);
        len += 1;
    }
    if len >= INLINE_PARTS {
        return false;
    }
    let new = grow(&mut buf, len, x);
    if new > words.len() {
        return false;
    }
    for (i, w) in words.iter_mut().enumerate() {
        *w = if i < new { buf[i].to_bits() } else { 0 };
    }
    true
}

impl Ring {
    /// Adds `n` events whose values sum to `v` to `slot` of a pair's ring, whose owner
    /// keeps the running sum in `run`. Returns whether the slot was empty before.
    pub fn add_with_value(&mut self, slot: u32, n: u64, v: f64, run: &mut Running) -> bool {
        let v = if v.is_finite() { v } else { 0.0 };
        let (high, x) = split(v);
        // A pair's first event (the most common add across a wide user base): one
        // slot, and the value is the running sum. It is what `add_counted` and
        // `add_part` make of it, without walking their general cases (~150
        // instructions an event, callgrind).
        if self.bits == 0 && n <= 1 && !high && *run == Running::ZERO {
            self.bits = 1u64 << slot;
            if x != 0.0 {
                *run = Running::from_bits(x.to_bits());
            }
            return true;
        }
        let new_slot = self.add_counted(slot, n, run.tail());
        self.add_part(slot, high, x, new_slot, run);
        new_slot
    }

    /// Adds `n` events whose values sum exactly to `sum` (a snapshot's record).
    pub fn add_with_sum(&mut self, slot: u32, n: u64, sum: &Exact, run: &mut Running) -> bool {
        let new_slot = self.add_counted(slot, n, run.tail());
        let mut first = new_slot;
        if sum.is_zero() {
            self.add_part(slot, false, 0.0, first, run);
        }
        let parts = sum.low().iter().map(|&x| (false, x));
        for (high, x) in parts.chain(sum.high().iter().map(|&x| (true, x))) {
            self.add_part(slot, high, x, first, run);
            first = false;
        }
        new_slot
    }

    /// Adds partial `x` (of the high part when `high`: scaled) to the sum of `slot`,
    /// which [`Ring::add_counted`] just counted into (`new_slot`: it was empty before).
    /// Called for every event of a pair, `x == 0` included, so that a second sum
    /// appearing next to a single one is noticed.
    #[inline]
    fn add_part(&mut self, slot: u32, high: bool, x: f64, new_slot: bool, run: &mut Running) {
        let n = self.n();
        let rank = self.rank_of(slot);
        if self.has_sums() {
            if x != 0.0 {
                self.entry_add(rank, high, x, *run);
                self.running_add(run, high, x);
            }
            return;
        }
        if n <= 1 {
            self.running_add(run, high, x);
            return;
        }
        // Two or more seconds and no sums stored: either the only previous second's sum
        // is the running sum (now two seconds, the new one just added), or all sums
        // are 0.
        let previous_single = new_slot && n == 2;
        if x == 0.0 && (!previous_single || *run == Running::ZERO) {
            return;
        }
        let mut u = self.unpack(run.tail());
        let mut sums = Sums::zeroed(n);
        if previous_single {
            sums.set(if rank == 0 { 1 } else { 0 }, &self.running_exact(*run));
        }
        sums.set(rank, &Exact::part(high, x));
        u.sums = Some(sums);
        self.repack(&u);
        self.running_add(run, high, x);
    }

    /// Adds partial `x` to the stored sum of the second at `rank`.
    fn entry_add(&mut self, rank: usize, high: bool, x: f64, run: Running) {
        let start = self.sums_start();
        let header = self.spill.get(start).copied().unwrap_or(0);
        let (wl, wh) = (
            (header & 0xffff) as usize,
            ((header >> 16) & 0xffff) as usize,
        );
        let at = start + 1 + rank * (wl + wh) + if high { wl } else { 0 };
        let w = if high { wh } else { wl };
        if let Some(words) = self.spill.get_mut(at..at + w)
            && grow_words(words, x)
        {
            return;
        }
        let mut u = self.unpack(run.tail());
        if let Some(s) = u.sums.as_mut() {
            let mut e = s.exact(rank);
            e.add_exact(&Exact::part(high, x));
            s.set(rank, &e);
        }
        self.repack(&u);
    }

    /// The running sum, exactly.
    fn running_exact(&self, run: Running) -> Exact {
        if let Some(x) = run.single() {
            return Exact::of(x);
        }
        let (l, h) = run.lens();
        let len = self.spill.len();
        let tail = self
            .spill
            .get(len.saturating_sub(l + h)..)
            .unwrap_or_default();
        let (low, high) = tail.split_at(l.min(tail.len()));
        let low: Vec<f64> = low.iter().map(|&w| f64::from_bits(w)).collect();
        let high: Vec<f64> = high.iter().map(|&w| f64::from_bits(w)).collect();
        Exact::from_parts(&low, &high)
    }

    /// Makes `e` the running sum: one double in `run`, or partials at the spill's end.
    fn set_running(&mut self, run: &mut Running, e: &Exact) {
        let old = run.tail();
        if old > 0 {
            let len = self.spill.len();
            self.spill.truncate(len.saturating_sub(old));
        }
        match e.single() {
            Some(x) => *run = Running::from_bits(x.to_bits()),
            None => {
                self.spill.extend(e.low().iter().map(|x| x.to_bits()));
                self.spill.extend(e.high().iter().map(|x| x.to_bits()));
                *run = Running::tagged(e.low().len(), e.high().len());
            }
        }
        if self.spill.is_empty() && self.spill.capacity() > 0 {
            self.spill = thin_vec::ThinVec::new();
        }
    }

    /// Adds partial `v` (of the high part when `high`) to the running sum.
    #[inline]
    fn running_add(&mut self, run: &mut Running, high: bool, v: f64) {
        if v == 0.0 {
            return;
        }
        let low = !high;
        if let Some(r) = run.single()
            && low
        {
            let (hi, lo) = two_sum(r, v);
            if lo == 0.0 {
                // `hi` is +0.0 when the sum cancels: round-to-nearest never gives -0.0
                // for x + (-x).
                *run = Running::from_bits(hi.to_bits());
            } else {
                self.spill.extend([lo.to_bits(), hi.to_bits()]);
                *run = Running::tagged(2, 0);
            }
            return;
        }
        let (l, h) = run.lens();
        if run.single().is_none() && h == 0 && low && l < INLINE_PARTS {
            // Low partials only: updated on the stack, written back in place.
            let len = self.spill.len();
            let mut buf = [0.0f64; INLINE_PARTS + 1];
            if let Some(words) = self.spill.get(len.saturating_sub(l)..) {
                for (b, &w) in buf.iter_mut().zip(words) {
                    *b = f64::from_bits(w);
                }
            }
            let new = grow(&mut buf, l, v);
            self.spill.truncate(len.saturating_sub(l));
            if new >= 2 {
                self.spill.extend(buf[..new].iter().map(|x| x.to_bits()));
                *run = Running::tagged(new, 0);
            } else {
                *run = Running::from_bits(if new == 1 { buf[0].to_bits() } else { 0 });
                if self.spill.is_empty() {
                    self.spill = thin_vec::ThinVec::new();
                }
            }
            return;
        }
        let mut e = self.running_exact(*run);
        e.add_exact(&Exact::part(high, v));
        self.set_running(run, &e);
    }

    /// Empties the slots in `mask` of a pair's ring; returns how many events they
    /// held. The running sum in `run` loses exactly their sums.
    pub fn clear_sums(&mut self, mask: u64, run: &mut Running) -> u64 {
        let had_sums = self.has_sums();
        let (removed, cleared) = self.clear_counted(mask, run.tail());
        let Some(cleared) = cleared else {
            return removed;
        };
        if self.is_empty() {
            *run = Running::ZERO;
            return removed;
        }
        if !had_sums {
            // Two or more seconds and no sums stored: every sum was 0, and so is the
            // running sum.
            return removed;
        }
        let e = match cleared.only {
            Some(only) => only,
            None => {
                let mut e = self.running_exact(*run);
                for g in &cleared.gone {
                    e.sub_exact(g);
                }
                e
            }
        };
        self.set_running(run, &e);
        removed
    }

    /// The exact sum of `value` over the slots in `mask`.
    pub fn exact_in(&self, mask: u64, run: Running) -> Exact {
        let occ = self.occupancy();
        let hit = occ & mask;
        if hit == 0 {
            return Exact::new();
        }
        if hit == occ {
            return self.running_exact(run);
        }
        if !self.has_sums() {
            return Exact::new();
        }
        let u = self.unpack(run.tail());
        let Some(s) = u.sums.as_ref() else {
            return Exact::new();
        };
        let n = u.n;
        let fewer_in = hit.count_ones() as usize * 2 <= n;
        let mut e = if fewer_in {
            Exact::new()
        } else {
            self.running_exact(run)
        };
        let mut rest = occ;
        for rank in 0..n {
            let slot = rest.trailing_zeros();
            rest &= rest - 1;
            let inside = hit & (1 << slot) != 0;
            if inside == fewer_in {
                let x = s.exact(rank);
                if fewer_in {
                    e.add_exact(&x);
                } else {
                    e.sub_exact(&x);
                }
            }
        }
        e
    }

    /// The sum of `value` over the slots in `mask`, correctly rounded.
    pub fn sum_in(&self, mask: u64, run: Running) -> f64 {
        let occ = self.occupancy();
        if occ & mask == occ
            && let Some(x) = run.single()
        {
            return x;
        }
        self.exact_in(mask, run).round()
    }

    /// The exact sum of the occupied slot at `rank`.
    pub fn second_exact(&self, rank: usize, run: Running) -> Exact {
        if self.has_sums() {
            let u = self.unpack(run.tail());
            u.sums.map(|s| s.exact(rank)).unwrap_or_default()
        } else if self.n() == 1 {
            self.running_exact(run)
        } else {
            Exact::new()
        }
    }

    /// Every occupied slot with its sum, correctly rounded, in slot order.
    pub fn second_sums(&self, run: Running) -> Vec<(u32, f64)> {
        let occ = self.occupancy();
        let slots = (0..64u32).filter(|s| occ & (1 << s) != 0);
        if !self.has_sums() {
            let only = if self.n() == 1 {
                self.running_exact(run).round()
            } else {
                0.0
            };
            return slots.map(|s| (s, only)).collect();
        }
        let u = self.unpack(run.tail());
        slots
            .enumerate()
            .map(|(rank, s)| {
                let sum = u.sums.as_ref().map_or(0.0, |x| x.exact(rank).round());
                (s, sum)
            })
            .collect()
    }

    /// Drops the per-second sums and the running sum's partials (the ring becomes a
    /// plain count ring; the owner drops `run`).
    pub fn strip_sums(&mut self, run: Running) {
        if self.has_sums() || run.tail() > 0 {
            let mut u = self.unpack(run.tail());
            u.sums = None;
            u.tail.clear();
            self.repack(&u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::seconds_mask;
    use super::*;

    #[test]
    fn sums_appear_only_when_needed() {
        let mut r = Ring::new();
        let mut run = Running::ZERO;
        r.add_with_value(3, 1, 1.5, &mut run);
        assert_eq!((run.single(), r.heap_bytes()), (Some(1.5), 0));
        r.add_with_value(7, 1, 2.25, &mut run);
        assert_eq!(run.single(), Some(3.75));
        assert!(r.has_sums());
        assert_eq!(r.sum_in(1 << 3, run), 1.5);
        assert_eq!(r.sum_in(1 << 7, run), 2.25);
        // Counts widen with the sums in place.
        r.add_with_value(3, 1, 0.5, &mut run);
        assert_eq!((r.count_at(3), r.sum_in(1 << 3, run)), (2, 2.0));
        r.clear_sums(1 << 3, &mut run);
        assert_eq!(
            (run.single(), r.has_sums(), r.total()),
            (Some(2.25), false, 1)
        );
        r.clear_sums(1 << 7, &mut run);
        assert_eq!(run, Running::ZERO);
        // Values of zero never allocate sums.
        let mut r = Ring::new();
        let mut run = Running::ZERO;
        for slot in 0..10 {
            r.add_with_value(slot, 1, 0.0, &mut run);
        }
        assert_eq!((r.heap_bytes(), run), (0, Running::ZERO));
    }

    #[test]
    fn one_busy_second_needs_no_allocation_while_its_sum_is_one_double() {
        let mut r = Ring::new();
        let mut run = Running::ZERO;
        for _ in 0..1000 {
            r.add_with_value(42, 1, 0.5, &mut run);
        }
        assert!(r.is_single());
        assert_eq!(
            (r.count_at(42), r.total(), r.occupancy(), r.heap_bytes()),
            (1000, 1000, 1 << 42, 0)
        );
        assert_eq!(r.sum_in(1 << 42, run), 500.0);
        // A second slot leaves the single form, keeping both counts and sums.
        r.add_with_value(3, 2, 1.0, &mut run);
        assert!(!r.is_single());
        assert_eq!((r.count_at(42), r.count_at(3), r.total()), (1000, 2, 1002));
        assert_eq!(
            (r.sum_in(1 << 42, run), r.sum_in(1 << 3, run)),
            (500.0, 1.0)
        );
        r.clear_sums(1 << 3, &mut run);
        assert!(r.is_single());
        assert_eq!(
            (r.count_at(42), run.single(), r.heap_bytes()),
            (1000, Some(500.0), 0)
        );
        assert_eq!(r.clear_sums(1 << 42, &mut run), 1000);
        assert!(r.is_empty());
        assert_eq!(run, Running::ZERO);
    }

    #[test]
    fn sums_are_exact_in_every_span() {
        let mut r = Ring::new();
        let mut run = Running::ZERO;
        for _ in 0..10 {
            r.add_with_value(5, 1, 0.1, &mut run);
        }
        assert_eq!(r.sum_in(u64::MAX, run), 1.0, "ten 0.1s in one second");
        assert!(r.is_single(), "the running sum's partials need no bitmap");
        for v in [1e16, 1.0, -1e16] {
            r.add_with_value(6, 1, v, &mut run);
        }
        assert_eq!(r.sum_in(1 << 6, run), 1.0);
        assert_eq!(r.sum_in(u64::MAX, run), 2.0);
        r.add_with_value(7, 1, 1e308, &mut run);
        r.add_with_value(7, 1, 1e308, &mut run);
        r.add_with_value(8, 1, 1.0, &mut run);
        assert_eq!(r.sum_in(u64::MAX, run), f64::INFINITY);
        assert_eq!(r.sum_in(seconds_mask(6, 8, 60), run), f64::INFINITY);
        assert_eq!(r.sum_in(1 << 8, run), 1.0);
        r.clear_sums(1 << 7, &mut run);
        assert_eq!(r.sum_in(u64::MAX, run), 3.0, "recovers once they leave");
        r.clear_sums(1 << 5 | 1 << 6, &mut run);
        assert_eq!(r.sum_in(u64::MAX, run), 1.0);
        r.clear_sums(1 << 8, &mut run);
        assert_eq!((run, r.heap_bytes()), (Running::ZERO, 0));
    }
}
