//! The input sixteen bytes at a time: where the quotes, the bytes a plain string may
//! not hold and the digits lie, by a few SSE2 instructions on x86_64 (a byte loop
//! elsewhere); and words of eight bytes, for digits and for keys.

/// The input, readable sixteen bytes at a time from any position up to its end.
pub(super) struct Blocks<'a> {
    s: &'a [u8],
    /// Where the last sixteen bytes of the input start.
    last: usize,
    /// The last sixteen bytes of the input, then zeros: a block that runs past the
    /// end is read here, where the zeros (control characters, not digits) stop every
    /// scan at the end of the input.
    tail: [u8; 32],
}

impl<'a> Blocks<'a> {
    /// `None` for inputs of fewer than sixteen bytes, which hold no event.
    #[inline(always)]
    pub(super) fn new(s: &'a [u8]) -> Option<Blocks<'a>> {
        let last = s.len().checked_sub(16)?;
        let mut tail = [0; 32];
        tail[..16].copy_from_slice(s.get(last..)?);
        Some(Blocks { s, last, tail })
    }

    /// The sixteen bytes from `at`, zeros past the end of the input; `None` when
    /// `at` is past the end.
    #[inline(always)]
    pub(super) fn at(&self, at: usize) -> Option<&[u8; 16]> {
        match self.within(at) {
            Some(block) => Some(block),
            None => self.tail.get(at.checked_sub(self.last)?..)?.first_chunk(),
        }
    }

    /// The sixteen bytes from `at` when the input holds that many there.
    #[inline(always)]
    pub(super) fn within(&self, at: usize) -> Option<&'a [u8; 16]> {
        if at > self.last {
            return None;
        }
        self.s.get(at..)?.first_chunk()
    }
}

/// Where in a block (bit `j` for its byte `j`) the quotes and the special bytes lie:
/// backslashes, control characters (below 0x20) and bytes that are not ASCII (0x80
/// and up), which a plain string does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Marks {
    pub quote: u32,
    pub special: u32,
}

impl Marks {
    /// The length of the string that starts the block, when its closing quote is in
    /// the block and no special byte comes before it.
    #[inline(always)]
    pub(super) fn plain_len(self) -> Option<usize> {
        // Up to and including the first quote; every bit when there is none.
        let to_quote = self.quote ^ self.quote.wrapping_sub(1);
        if self.quote == 0 || self.special & to_quote != 0 {
            return None;
        }
        // The mask keeps the length below 16 for the optimizer too (a quote is in
        // the block, so it changes nothing), which spares a bounds check on
        // `&block[..len]`.
        Some((self.quote.trailing_zeros() & 15) as usize)
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_sub_epi8,
    };

    use super::Marks;

    #[inline(always)]
    fn load(block: &[u8; 16]) -> __m128i {
        // SAFETY: `block` is sixteen readable bytes, and an unaligned load asks
        // nothing of their alignment. SSE2 is part of the x86_64 baseline.
        unsafe { _mm_loadu_si128(block.as_ptr().cast()) }
    }

    #[inline(always)]
    pub(in super::super) fn marks(block: &[u8; 16]) -> Marks {
        let x = load(block);
        // SAFETY: only computes, with SSE2, which is part of the x86_64 baseline.
        unsafe {
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            // A signed compare: bytes from 0x80 up are negative, so one compare finds
            // them along with the control characters.
            let special = _mm_or_si128(
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8)),
                _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
            );
            Marks {
                quote: _mm_movemask_epi8(quote) as u32,
                special: _mm_movemask_epi8(special) as u32,
            }
        }
    }

    #[inline(always)]
    pub(in super::super) fn digits(block: &[u8; 16]) -> u32 {
        let x = load(block);
        // SAFETY: only computes, with SSE2, which is part of the x86_64 baseline.
        unsafe {
            // A digit is below 10 after subtracting '0', which min(d, 9) == d tells
            // unsigned.
            let d = _mm_sub_epi8(x, _mm_set1_epi8(b'0' as i8));
            _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d)) as u32
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use sse2::{digits, marks};

#[cfg(not(target_arch = "x86_64"))]
pub(super) use portable::{digits, marks};

/// The same a byte at a time, for other targets (and, in the tests, to hold the
/// SSE2 code to).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
mod portable {
    use super::Marks;

    /// The marks of a block's bytes.
    pub(in super::super) fn marks(block: &[u8; 16]) -> Marks {
        let mut marks = Marks {
            quote: 0,
            special: 0,
        };
        for (j, &b) in block.iter().enumerate() {
            marks.quote |= u32::from(b == b'"') << j;
            marks.special |= u32::from(b == b'\\' || !(0x20..0x80).contains(&b)) << j;
        }
        marks
    }

    /// Where a block's ASCII digits lie.
    pub(in super::super) fn digits(block: &[u8; 16]) -> u32 {
        let mut digits = 0;
        for (j, b) in block.iter().enumerate() {
            digits |= u32::from(b.is_ascii_digit()) << j;
        }
        digits
    }
}

/// The little-endian word of eight bytes, for comparing keys a word at a time.
pub(super) const fn le(b: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*b)
}

/// A block's two little-endian words.
#[inline(always)]
pub(super) fn words(block: &[u8; 16]) -> (u64, u64) {
    let (lo, hi) = block.split_at(8);
    let word = |half: &[u8]| half.try_into().map_or(0, u64::from_le_bytes);
    (word(lo), word(hi))
}

/// The value of the `len` (1 to 10) ASCII digits that start `block`, eight at a
/// time by the shifts and multiplications of "SIMD within a register".
#[inline(always)]
pub(super) fn decimal(block: &[u8; 16], len: usize) -> u64 {
    // Eight digits, most significant first (the lowest byte), each 0 to 9, as one
    // number: pairs, then fours, then all eight.
    fn eight(v: u64) -> u64 {
        const LOW: u64 = 0x00ff_0000_00ff;
        // The products overflow by design: only bits 32 to 63 are kept.
        let v = v * 10 + (v >> 8);
        let high = (v & LOW).wrapping_mul(100 + (1_000_000 << 32));
        let low = ((v >> 16) & LOW).wrapping_mul(1 + (10_000 << 32));
        high.wrapping_add(low) >> 32
    }
    const NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let (lo, hi) = words(block);
    if len <= 8 {
        // The digits moved to the top; the zeros below them are leading zeros.
        return eight((lo & NIBBLES) << (8 * (8 - len)));
    }
    let first = eight(lo & NIBBLES);
    let (d8, d9) = (hi & 0xf, (hi >> 8) & 0xf);
    if len == 9 {
        first * 10 + d8
    } else {
        first * 100 + d8 * 10 + d9
    }
}

/// A key and its colon as services write them (`"user_id":`), 8 to 16 bytes, by its
/// first and last eight bytes (which overlap when it is shorter than 16).
pub(super) struct Pattern {
    pub len: usize,
    pub first: u64,
    pub last: u64,
}

impl Pattern {
    pub(super) const fn of(text: &[u8]) -> Pattern {
        assert!(text.len() >= 8 && text.len() <= 16);
        Pattern {
            len: text.len(),
            first: Pattern::word(text, 0),
            last: Pattern::word(text, text.len() - 8),
        }
    }

    /// The little-endian word of the eight bytes of `text` at `at`.
    const fn word(text: &[u8], at: usize) -> u64 {
        let mut word = 0;
        let mut k = 0;
        while k < 8 {
            word |= (text[at + k] as u64) << (8 * k);
            k += 1;
        }
        word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every place of a block, with a quote elsewhere, from
    /// every start that sees it, near the end of the input or not, in inputs of
    /// lengths around one and two blocks.
    #[test]
    fn blocks_and_marks_match_the_definitions() {
        for len in [16, 17, 23, 31, 32, 33, 47] {
            for b in 0..=255u8 {
                for place in 0..len {
                    let mut s: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
                    s[(place * 7 + 3) % len] = b'"';
                    s[place] = b;
                    let blocks = Blocks::new(&s).expect("16 bytes or more");
                    for at in place.saturating_sub(15)..=len.min(place + 1) {
                        let block = blocks.at(at).expect("at most the length");
                        let mut want = [0; 16];
                        let have = s.get(at..).unwrap_or_default();
                        let n = have.len().min(16);
                        want[..n].copy_from_slice(&have[..n]);
                        assert_eq!(block, &want, "{s:?} at {at}");
                        let mut quote = 0;
                        let mut special = 0;
                        let mut digit = 0;
                        for (j, &c) in want.iter().enumerate() {
                            quote |= u32::from(c == b'"') << j;
                            special |= u32::from(c == b'\\' || !(0x20..=0x7f).contains(&c)) << j;
                            digit |= u32::from(c.is_ascii_digit()) << j;
                        }
                        assert_eq!(marks(block), Marks { quote, special }, "{s:?} at {at}");
                        assert_eq!(digits(block), digit, "{s:?} at {at}");
                        assert_eq!(portable::marks(block), marks(block));
                        assert_eq!(portable::digits(block), digit);
                    }
                }
            }
        }
    }

    #[test]
    fn decimal_reads_every_length() {
        for len in 1..=10 {
            let text = &"4294967295123456"[..len];
            let mut block = [b'x'; 16];
            block[..len].copy_from_slice(text.as_bytes());
            assert_eq!(decimal(&block, len), text.parse::<u64>().unwrap(), "{text}");
        }
        assert_eq!(decimal(b"0000000000xxxxxx", 10), 0);
        assert_eq!(decimal(b"9999999999999999", 10), 9_999_999_999);
    }

    #[test]
    fn short_inputs_and_starts_past_the_end_have_no_block() {
        assert!(Blocks::new(b"0123456789abcde").is_none());
        let blocks = Blocks::new(b"0123456789abcdef").expect("16 bytes");
        assert_eq!(blocks.at(16), Some(&[0; 16]));
        assert_eq!(blocks.at(17), None);
    }

    #[test]
    fn plain_len_is_the_first_quote_unless_a_special_byte_comes_first() {
        let marks = |quote, special| Marks { quote, special };
        assert_eq!(marks(0b1000, 0).plain_len(), Some(3));
        assert_eq!(marks(0b1010, 0).plain_len(), Some(1));
        assert_eq!(marks(0b1000, 0b1_0000).plain_len(), Some(3));
        assert_eq!(marks(0b1000, 0b0100).plain_len(), None);
        assert_eq!(marks(0b1000, 0b0001).plain_len(), None);
        assert_eq!(marks(0, 0).plain_len(), None);
        assert_eq!(marks(0, 0b1).plain_len(), None);
        assert_eq!(marks(1 << 15, 0).plain_len(), Some(15));
    }
}
