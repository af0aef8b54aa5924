//! Exact sums of doubles, rounded once: what `EVT.SUM` and every sum of the analytics
//! commands answer.
//!
//! # Representation
//!
//! A sum is kept as two *expansions*: lists of doubles whose exact (unrounded) sum is
//! the value, nonoverlapping and in increasing magnitude, as Shewchuk's and Python's
//! `math.fsum` partials are.
//!
//! ```text
//!  value = Σ low[i]  +  2^128 · Σ high[j]
//!  low:  every input with |v| < 2^960, as it is
//!  high: every input with |v| ≥ 2^960, scaled by 2^-128 (exact: such a value has no
//!        bits below 2^908, far above the subnormal range)
//! ```
//!
//! Adding a double `v` to an expansion is Python's `msum` step (Shewchuk's
//! Grow-Expansion with zero elimination): `v` is carried up through the partials with
//! TwoSum, every rounding error that is not zero is kept as a partial, and the final
//! carry is the new top. Every step is exact — TwoSum returns the rounded sum *and*
//! its exact error — as long as nothing overflows, and nothing can: the low inputs
//! are each below 2^960, so any sum of fewer than 2^63 of them is below 2^1023, and
//! the same holds for the scaled high inputs (each below 2^896). Subtracting is adding
//! the negated partials of what leaves, so a running sum maintained by adding each
//! value and subtracting each second that leaves is the exact sum of the values in
//! the window at every moment: no rounding error accumulates, ever, and once every
//! value has left the expansion is empty, which reads exactly 0.
//!
//! Typical data needs one or two partials: a sum of values with at most 53
//! significant bits between them is one double; ten `0.1`s need two
//! (`1.0 + 5.55e-17`).
//!
//! # Rounding
//!
//! Without a high part the value is rounded by `math.fsum`'s final step: add the
//! partials from the top until the sum becomes inexact, then correct the last bit
//! for round-half-even using the sign of the next partial down. With a high part
//! (values of 1e289 and more), the partials are added as one 2,304-bit integer in
//! units of 2^-1074 and rounded to the nearest double, ties to even, `±inf` beyond
//! the largest double: `1e308 + 1e308` is `inf` whichever part of the window is
//! asked, and back to finite once those values have left. Finite inputs never give
//! NaN. A sum that is exactly zero is `+0.0`, as `math.fsum` returns.

/// Inputs at least this large (in magnitude) go to the high part.
pub const HUGE: f64 = f64::from_bits((960 + 1023) << 52);
/// The high part's scale: inputs are multiplied by `DOWN` on the way in.
const DOWN: f64 = f64::from_bits((1023 - 128) << 52);
/// Bits of the high part's scale.
const HIGH_SHIFT: u32 = 128;

/// TwoSum (Knuth): the rounded sum and its exact error, without branches.
#[inline]
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// Adds `x` to the partials `parts[..len]` in place; `parts` has room for `len + 1`.
/// Returns the new length (at most `len + 1`).
#[inline]
pub fn grow(parts: &mut [f64], len: usize, x: f64) -> usize {
    let mut x = x;
    let mut kept = 0;
    for j in 0..len.min(parts.len()) {
        let (hi, lo) = two_sum(x, parts[j]);
        if lo != 0.0 {
            parts[kept] = lo;
            kept += 1;
        }
        x = hi;
    }
    if x != 0.0
        && let Some(slot) = parts.get_mut(kept)
    {
        *slot = x;
        kept += 1;
    }
    kept
}

/// Adds `x` to an expansion held in a `Vec`.
fn grow_vec(parts: &mut Vec<f64>, x: f64) {
    if x == 0.0 {
        return;
    }
    let len = parts.len();
    parts.push(0.0);
    let n = grow(parts, len, x);
    parts.truncate(n);
}

/// `math.fsum`'s final rounding of nonoverlapping partials in increasing magnitude.
pub fn round_partials(p: &[f64]) -> f64 {
    let mut n = p.len();
    let Some(&top) = p.last() else {
        return 0.0;
    };
    n -= 1;
    let mut hi = top;
    let mut lo = 0.0;
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = p[n];
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    // Half-even rounding across partials: the remainder below `lo` breaks a tie the
    // way round-half-even alone would not.
    if n > 0 {
        let below = p[n - 1];
        if (lo < 0.0 && below < 0.0) || (lo > 0.0 && below > 0.0) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
    }
    hi
}

/// Which part a value is added to, and as what.
#[inline]
pub fn split(v: f64) -> (bool, f64) {
    if v.abs() >= HUGE {
        (true, v * DOWN)
    } else {
        (false, v)
    }
}

/// An exact sum; see the module doc.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exact {
    low: Vec<f64>,
    high: Vec<f64>,
}

impl Exact {
    /// Zero.
    pub const fn new() -> Self {
        Exact {
            low: Vec::new(),
            high: Vec::new(),
        }
    }

    /// The sum of one value.
    pub fn of(v: f64) -> Self {
        let mut e = Exact::new();
        e.add(v);
        e
    }

    /// One partial: of the high part (already scaled) when `high`.
    pub fn part(high: bool, x: f64) -> Self {
        let mut e = Exact::new();
        if x != 0.0 {
            if high {
                e.high.push(x);
            } else {
                e.low.push(x);
            }
        }
        e
    }

    /// An expansion from its stored partials (each list nonoverlapping, increasing;
    /// zeros are skipped).
    pub fn from_parts(low: &[f64], high: &[f64]) -> Self {
        Exact {
            low: low.iter().copied().filter(|&x| x != 0.0).collect(),
            high: high.iter().copied().filter(|&x| x != 0.0).collect(),
        }
    }

    /// The low partials.
    pub fn low(&self) -> &[f64] {
        &self.low
    }

    /// The high partials (scaled by 2^-128).
    pub fn high(&self) -> &[f64] {
        &self.high
    }

    /// Adds `v` (finite; anything else is ignored: inputs are checked at the door).
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        match split(v) {
            (false, x) => grow_vec(&mut self.low, x),
            (true, x) => grow_vec(&mut self.high, x),
        }
    }

    /// The sum of partials read from a file (a snapshot's record, a log's aggregate):
    /// the low ones are added as values, so even partials this server did not write
    /// (overlapping, unordered) sum exactly; the high ones are taken as scaled
    /// partials, which the reader has bounded already.
    pub fn from_untrusted(low: &[f64], high: &[f64]) -> Self {
        let mut e = Exact::new();
        for &x in low {
            e.add(x);
        }
        e.add_parts(&[], high, false);
        e
    }

    /// Adds (or, with `negate`, subtracts) stored partials.
    pub fn add_parts(&mut self, low: &[f64], high: &[f64], negate: bool) {
        let sign = if negate { -1.0 } else { 1.0 };
        for &x in low {
            grow_vec(&mut self.low, sign * x);
        }
        for &x in high {
            grow_vec(&mut self.high, sign * x);
        }
    }

    /// Adds another exact sum.
    pub fn add_exact(&mut self, other: &Exact) {
        self.add_parts(&other.low, &other.high, false);
    }

    /// Subtracts another exact sum.
    pub fn sub_exact(&mut self, other: &Exact) {
        self.add_parts(&other.low, &other.high, true);
    }

    /// Whether the sum is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.low.is_empty() && self.high.is_empty()
    }

    /// The sum as one double, when it is exactly one (zero included).
    pub fn single(&self) -> Option<f64> {
        match (self.low.as_slice(), self.high.is_empty()) {
            ([], true) => Some(0.0),
            ([x], true) => Some(*x),
            _ => None,
        }
    }

    /// The sum correctly rounded to a double (ties to even; `±inf` beyond the range).
    pub fn round(&self) -> f64 {
        if self.high.is_empty() {
            round_partials(&self.low)
        } else {
            let mut w = Wide::default();
            for &x in &self.low {
                w.add(x, 0);
            }
            for &x in &self.high {
                w.add(x, HIGH_SHIFT);
            }
            w.round()
        }
    }
}

/// Limbs of [`Wide`]: 2,304 bits, two's complement, in units of 2^-1074. The largest
/// magnitude it is asked to hold is below 2^(1024 + 1074 + 128 + 64).
const LIMBS: usize = 36;

/// A wide fixed-point integer for rounding sums with a high part.
#[derive(Debug, Clone)]
struct Wide([u64; LIMBS]);

impl Default for Wide {
    fn default() -> Self {
        Wide([0; LIMBS])
    }
}

/// `|d| = m · 2^(pos - 1074)` with `m < 2^53`.
fn decompose(d: f64) -> (bool, u64, u32) {
    let bits = d.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as u32;
    let frac = bits & ((1 << 52) - 1);
    let neg = bits >> 63 == 1;
    if exp == 0 {
        (neg, frac, 0)
    } else {
        (neg, frac | (1 << 52), exp - 1)
    }
}

impl Wide {
    /// Adds finite `d · 2^shift`.
    fn add(&mut self, d: f64, shift: u32) {
        let (neg, m, pos) = decompose(d);
        let pos = pos + shift;
        let (limb, off) = ((pos / 64) as usize, pos % 64);
        let wide = u128::from(m) << off;
        let parts = [wide as u64, (wide >> 64) as u64];
        let mut carry = false;
        for i in limb..LIMBS {
            let add = parts.get(i - limb).copied().unwrap_or(0);
            let Some(x) = self.0.get_mut(i) else { break };
            if neg {
                let (a, b1) = x.overflowing_sub(add);
                let (a, b2) = a.overflowing_sub(u64::from(carry));
                *x = a;
                carry = b1 || b2;
            } else {
                let (a, c1) = x.overflowing_add(add);
                let (a, c2) = a.overflowing_add(u64::from(carry));
                *x = a;
                carry = c1 || c2;
            }
            if !carry && i > limb {
                break;
            }
        }
    }

    /// Rounds to the nearest double, ties to even.
    fn round(mut self) -> f64 {
        let neg = self.0[LIMBS - 1] >> 63 == 1;
        if neg {
            // Two's complement negation: invert, add one.
            let mut carry = true;
            for x in self.0.iter_mut() {
                let (a, c) = (!*x).overflowing_add(u64::from(carry));
                *x = a;
                carry = c;
            }
        }
        let sign = if neg { -1.0 } else { 1.0 };
        let Some(top_limb) = self.0.iter().rposition(|&x| x != 0) else {
            return 0.0;
        };
        let top = top_limb as u32 * 64 + (63 - self.0[top_limb].leading_zeros());
        if top < 53 {
            // Below 2^53 units of 2^-1074: representable as it is.
            return sign * (self.0[0] as f64) * f64::from_bits(1);
        }
        let shift = top - 52;
        let q = self.bits(shift, 53);
        let half = self.bit(shift - 1);
        let sticky = shift >= 2 && self.any_below(shift - 1);
        let mut q = q;
        let mut shift = shift;
        if half && (sticky || q & 1 == 1) {
            q += 1;
            if q == 1 << 53 {
                q >>= 1;
                shift += 1;
            }
        }
        // value = q · 2^(shift - 1074), q in [2^52, 2^53).
        let exp = i64::from(shift) - 1074 + 52;
        if exp > 1023 {
            return sign * f64::INFINITY;
        }
        let bits = (((exp + 1023) as u64) << 52) | (q - (1 << 52));
        sign * f64::from_bits(bits)
    }

    /// `len` (≤ 64) bits starting at bit `from`.
    fn bits(&self, from: u32, len: u32) -> u64 {
        let (limb, off) = ((from / 64) as usize, from % 64);
        let lo = self.0.get(limb).copied().unwrap_or(0) >> off;
        let hi = if off == 0 {
            0
        } else {
            self.0.get(limb + 1).copied().unwrap_or(0) << (64 - off)
        };
        (lo | hi) & if len >= 64 { u64::MAX } else { (1 << len) - 1 }
    }

    fn bit(&self, at: u32) -> bool {
        self.bits(at, 1) == 1
    }

    /// Whether any bit below `at` is set.
    fn any_below(&self, at: u32) -> bool {
        let (limb, off) = ((at / 64) as usize, at % 64);
        self.0.iter().take(limb).any(|&x| x != 0)
            || self
                .0
                .get(limb)
                .is_some_and(|&x| off > 0 && x & ((1 << off) - 1) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fsum(values: &[f64]) -> f64 {
        let mut e = Exact::new();
        for &v in values {
            e.add(v);
        }
        e.round()
    }

    #[test]
    fn the_issues_examples() {
        assert_eq!(fsum(&[0.1; 10]), 1.0);
        assert_eq!(fsum(&[1e16, 1.0, -1e16]), 1.0);
        assert_eq!(fsum(&[1e308, 1e308]), f64::INFINITY);
        assert_eq!(fsum(&[1e308, 1e308, 1.0]), f64::INFINITY);
        assert_eq!(fsum(&[-1e308, -1e308]), f64::NEG_INFINITY);
        assert_eq!(fsum(&[1e308, 1e308, -1e308]), 1e308);
        let mut e = Exact::new();
        for v in [1e308, 1e308, 1.0] {
            e.add(v);
        }
        e.sub_exact(&Exact::from_parts(&[], &[1e308 * DOWN * 2.0]));
        assert_eq!(e.round(), 1.0, "recovers once the huge values leave");
        let mut e = Exact::of(1e308);
        e.add(-1e308);
        assert!(e.is_zero());
        assert_eq!(e.round().to_bits(), 0f64.to_bits());
    }

    #[test]
    fn zero_is_positive_and_singles_are_themselves() {
        assert_eq!(fsum(&[]).to_bits(), 0f64.to_bits());
        assert_eq!(fsum(&[-0.0]).to_bits(), 0f64.to_bits());
        assert_eq!(fsum(&[0.5, -0.5]).to_bits(), 0f64.to_bits());
        assert_eq!(Exact::of(10.5).single(), Some(10.5));
        assert_eq!(Exact::of(0.1).single(), Some(0.1));
        let mut e = Exact::of(0.1);
        e.add(0.2);
        assert_eq!(e.single(), None);
        assert_eq!(e.round(), 0.30000000000000004);
    }

    #[test]
    fn wide_rounding_handles_subnormals_and_ties() {
        let tiny = f64::from_bits(1);
        let mut w = Wide::default();
        w.add(tiny, 0);
        w.add(tiny, 0);
        assert_eq!(w.round(), 2.0 * tiny);
        // 2^53 + 1 ties to 2^53; 2^53 + 3 ties to 2^53 + 4.
        let two53 = 9007199254740992.0;
        let mut w = Wide::default();
        w.add(two53, 0);
        w.add(1.0, 0);
        assert_eq!(w.round(), two53);
        let mut w = Wide::default();
        w.add(two53, 0);
        w.add(3.0, 0);
        assert_eq!(w.round(), two53 + 4.0);
        let mut w = Wide::default();
        w.add(-f64::MAX, 0);
        assert_eq!(w.round(), -f64::MAX);
        let mut w = Wide::default();
        w.add(f64::MAX, 0);
        w.add(f64::MAX * DOWN, 128);
        assert_eq!(w.round(), f64::INFINITY);
    }

    /// Doubles across the whole range: small integers, decimals, subnormals, huge.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1000i32..1000).prop_map(|v| f64::from(v) / 8.0),
            (-1e6f64..1e6),
            any::<u64>()
                .prop_map(f64::from_bits)
                .prop_filter("finite", |v| v.is_finite()),
            (1u64..1 << 52).prop_map(f64::from_bits),
            (-1.0f64..1.0).prop_map(|m| m * 1e308),
            Just(0.1),
            Just(1e16),
        ]
    }

    proptest! {
        /// `math.fsum`'s rounding of the partials agrees with the wide integer's, and
        /// adding then subtracting leaves exactly zero.
        #[test]
        fn partial_rounding_matches_wide_rounding(values in proptest::collection::vec(value(), 0..30)) {
            let mut e = Exact::new();
            let mut w = Wide::default();
            for &v in &values {
                e.add(v);
                match split(v) {
                    (false, x) => w.add(x, 0),
                    (true, x) => w.add(x, HIGH_SHIFT),
                }
            }
            let got = e.round();
            let want = w.round();
            prop_assert_eq!(got.to_bits(), want.to_bits(), "{:?}", values);
            prop_assert!(!got.is_nan());
            let mut back = e.clone();
            for &v in &values {
                back.add(-v);
            }
            prop_assert!(back.is_zero(), "{:?} left {:?}", values, back);
        }
    }
}
