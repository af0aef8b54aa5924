//! The fast path for the events services actually send: no escapes, an integer
//! timestamp, shallow nesting. One pass over the bytes, no allocation; strings and
//! the timestamp are read sixteen bytes at a time (`block`), and a string whose
//! bytes are all ASCII needs no UTF-8 check.
//!
//! It is an *accelerator*, not a second parser to trust: it answers only when it is
//! sure, and anything unusual — an escape, a fractional timestamp, a duplicate
//! field, deep nesting, any syntax it does not like — makes it give up, and the
//! serde_json path (`parse_event`'s slow path) decides, error messages included.
//! Whenever it does answer, the answer is the one the slow path gives: a differential
//! property test holds it to that.
//!
//! Why it exists: under `redis-benchmark`, callgrind showed the serde_json path at
//! ~3,900 instructions per 130-byte event, 45% of the server's; this takes ~720
//! (callgrind, the benchmark's 132-byte event with its 16-byte ids).

use std::borrow::Cow;

use super::Event;

mod block;
mod key;
use block::{Blocks, Pattern, decimal, digits, marks};
use key::{ATTRIBUTES, EVENT_TYPE, Key, TIMESTAMP, USER_ID, VALUE};

/// Deepest nesting the fast path walks (the top-level object is depth 1); deeper
/// input goes to the slow path, which enforces the real limit.
const FAST_MAX_DEPTH: usize = 8;

/// Most significant digits of an `attributes.value` the fast path converts itself:
/// below 2^53, so the digits are an exact `f64`.
const FAST_VALUE_DIGITS: usize = 15;

/// Powers of ten that are exact `f64`s (10^22 is the last), for the value's
/// fraction: an exact mantissa divided by an exact power of ten is rounded once,
/// by the division, so the result is the correctly rounded value that
/// `str::parse::<f64>` gives (Clinger's fast path, which the standard library
/// takes first too).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Scan<'a> {
    s: &'a [u8],
    i: usize,
    blocks: Blocks<'a>,
}

impl<'a> Scan<'a> {
    /// The byte at `i`, or 0 past the end: no token holds a 0, so the end of the
    /// input stops every scan like any other unexpected byte.
    #[inline(always)]
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn peek(&self) -> u8 {
        self.at(self.i)
    }

    /// Skips whitespace. It runs before most tokens, so the usual cases — none, or
    /// one space — are tested first.
    #[inline(always)]
    fn ws(&mut self) {
        let b = self.peek();
        if b > b' ' {
            return;
        }
        if b == b' ' {
            self.i += 1;
            if self.peek() > b' ' {
                return;
            }
        }
        while let b' ' | b'\t' | b'\n' | b'\r' = self.peek() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, b: u8) -> Option<()> {
        if self.peek() != b {
            self.ws();
            if self.peek() != b {
                return None;
            }
        }
        self.i += 1;
        Some(())
    }

    /// A string without escapes or control characters: its contents. The sixteen
    /// bytes after the opening quote are looked at together, which finds the closing
    /// quote of a short plain string at once.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.ws();
        if self.peek() != b'"' {
            return None;
        }
        let start = self.i + 1;
        if let Some(block) = self.blocks.within(start) {
            let first = marks(block);
            if let Some(len) = first.plain_len()
                && let Some(text) = block.get(..len)
            {
                self.i = start + len + 1;
                // SAFETY: no byte before the closing quote is special, so none is
                // above 0x7f: the text is ASCII, hence UTF-8.
                return Some(unsafe { std::str::from_utf8_unchecked(text) });
            }
            // Ids of 16 to 31 bytes (`user` and 12 digits): the next block ends them.
            // (One return for both paths measured 10 instructions an event more: the
            // first block's text then comes from the input, with a bounds check.)
            if first.quote | first.special == 0
                && let Some(next) = self.blocks.within(start + 16)
                && let Some(len) = marks(next).plain_len()
                && let Some(text) = self.s.get(start..start + 16 + len)
            {
                self.i = start + 16 + len + 1;
                // SAFETY: as above, over both blocks.
                return Some(unsafe { std::str::from_utf8_unchecked(text) });
            }
        }
        self.long_string(start)
    }

    /// [`Scan::string`] when the closing quote is not among the first sixteen bytes
    /// or a special byte comes before it: bytes above 0x7f are taken and checked to
    /// be UTF-8; anything else special (the zeros past the end included) declines.
    #[inline(never)]
    fn long_string(&mut self, start: usize) -> Option<&'a str> {
        let mut at = start;
        let mut ascii = true;
        loop {
            let block = self.blocks.at(at)?;
            let marks = marks(block);
            let mut stops = marks.quote | marks.special;
            while stops != 0 {
                let j = stops.trailing_zeros() as usize;
                match block.get(j) {
                    Some(b'"') => {
                        let text = self.s.get(start..at + j)?;
                        self.i = at + j + 1;
                        if ascii {
                            // SAFETY: every byte of `text` was seen, none special.
                            return Some(unsafe { std::str::from_utf8_unchecked(text) });
                        }
                        return std::str::from_utf8(text).ok();
                    }
                    Some(0x80..=0xff) => ascii = false,
                    _ => return None,
                }
                stops &= stops - 1;
            }
            at += 16;
        }
    }

    /// A member's key, the cursor after it. The keys an event names are told from
    /// the block that holds them, by their length and two words.
    #[inline(always)]
    fn key(&mut self) -> Option<Key> {
        self.ws();
        if self.peek() != b'"' {
            return None;
        }
        let start = self.i + 1;
        let block = self.blocks.at(start)?;
        if let Some(len) = marks(block).plain_len() {
            self.i = start + len + 1;
            return Some(Key::of_block(block, len));
        }
        self.long_string(start).map(|name| Key::of(name.as_bytes()))
    }

    /// An id: a non-empty string of at most `max` bytes.
    #[inline(always)]
    fn id(&mut self, max: usize) -> Option<&'a str> {
        let text = self.string()?;
        if text.is_empty() || text.len() > max {
            return None;
        }
        Some(text)
    }

    /// A plain non-negative integer timestamp within `u32`; anything else (a
    /// fraction, an exponent, a sign, a leading zero) is for the slow path.
    #[inline(always)]
    fn timestamp(&mut self) -> Option<u32> {
        self.ws();
        let block = self.blocks.at(self.i)?;
        let len = (!digits(block)).trailing_zeros() as usize;
        if len == 0 || len > 10 || (len > 1 && block[0] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = block.get(len) {
            return None;
        }
        self.i += len;
        u32::try_from(decimal(block, len)).ok()
    }

    /// The value of `attributes`, the cursor before it: the last `value` member's
    /// number when it is an object, `None` for anything else.
    #[inline(always)]
    fn attributes(&mut self) -> Option<Option<f64>> {
        self.ws();
        if self.peek() != b'{' {
            self.skip(1)?;
            return Some(None);
        }
        self.i += 1;
        self.ws();
        let mut value = None;
        if self.peek() == b'}' {
            self.i += 1;
            return Some(value);
        }
        loop {
            let key = match self.pattern_at(self.i, &VALUE) {
                Some(at) => {
                    self.i = at;
                    Key::Value
                }
                None => {
                    let key = self.key()?;
                    self.eat(b':')?;
                    key
                }
            };
            if key == Key::Value {
                self.ws();
                value = match self.peek() {
                    b'-' | b'0'..=b'9' => self.value()?,
                    _ => {
                        self.skip(2)?;
                        None
                    }
                };
            } else {
                self.ws();
                if self.peek() == b'"' {
                    self.string()?;
                } else {
                    self.skip(2)?;
                }
            }
            self.ws();
            match self.peek() {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Some(value);
                }
                _ => return None,
            }
        }
    }

    /// The position after `pattern` when the input holds it at `at`.
    #[inline(always)]
    fn pattern_at(&self, at: usize, pattern: &Pattern) -> Option<usize> {
        let end = at.checked_add(pattern.len)?;
        let bytes = self.s.get(at..end)?;
        let (first, last) = (bytes.first_chunk::<8>()?, bytes.last_chunk::<8>()?);
        let matches = u64::from_le_bytes(*first) == pattern.first
            && u64::from_le_bytes(*last) == pattern.last;
        matches.then_some(end)
    }

    /// After a value: the position after the next member's key and colon, when the
    /// next member is `pattern`'s and written as services write it: `,"key":` or
    /// `, "key":`.
    #[inline(always)]
    fn next_member(&self, pattern: &Pattern) -> Option<usize> {
        let mut at = self.i;
        if self.at(at) != b',' {
            return None;
        }
        at += 1;
        if self.at(at) == b' ' {
            at += 1;
        }
        self.pattern_at(at, pattern)
    }

    /// A JSON number's text, checked against the JSON grammar.
    fn number(&mut self) -> Option<&'a [u8]> {
        self.ws();
        let start = self.i;
        if self.peek() == b'-' {
            self.i += 1;
        }
        match self.peek() {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == b'.' {
            self.i += 1;
            if !self.peek().is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let b'e' | b'E' = self.peek() {
            self.i += 1;
            if let b'+' | b'-' = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        self.s.get(start..self.i)
    }

    fn digits(&mut self) {
        while self.peek().is_ascii_digit() {
            self.i += 1;
        }
    }

    /// `attributes.value` when it is a number: its finite `f64`, or `None` (too
    /// large). Short decimals are converted in the same pass that reads them; the
    /// rest (an exponent, more than 15 digits) by `str::parse`.
    #[inline(always)]
    fn value(&mut self) -> Option<Option<f64>> {
        let s = self.s;
        let start = self.i;
        let mut i = start;
        let negative = self.at(i) == b'-';
        if negative {
            i += 1;
        }
        let mut m: u64 = 0;
        let int_start = i;
        while let Some(&d @ b'0'..=b'9') = s.get(i) {
            m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            i += 1;
        }
        let int_len = i - int_start;
        if int_len == 0 || (int_len > 1 && s.get(int_start) == Some(&b'0')) {
            return None;
        }
        let mut frac = 0;
        if s.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while let Some(&d @ b'0'..=b'9') = s.get(i) {
                m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                i += 1;
            }
            frac = i - frac_start;
            if frac == 0 {
                return None;
            }
        }
        let exponent = matches!(s.get(i), Some(b'e' | b'E'));
        match POW10.get(frac) {
            Some(&scale) if !exponent && int_len + frac <= FAST_VALUE_DIGITS => {
                self.i = i;
                // Exact: m < 10^15 < 2^53 (signed, which converts in one instruction).
                let v = m as i64 as f64 / scale;
                Some(Some(if negative { -v } else { v }))
            }
            _ => {
                let text = std::str::from_utf8(self.number()?).ok()?;
                Some(text.parse::<f64>().ok().filter(|v| v.is_finite()))
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.s.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips any value at nesting `depth` (the depth of the container holding it).
    fn skip(&mut self, depth: usize) -> Option<()> {
        self.ws();
        match self.peek() {
            b'"' => self.string().map(drop),
            b'{' => {
                self.i += 1;
                self.members(depth + 1, |scan, _key| scan.skip(depth + 1))
            }
            b'[' => {
                if depth + 1 > FAST_MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek() == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// The members of an object whose `{` was just read, at nesting `depth`, each
    /// handed to `member` with the cursor before its value.
    fn members(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, Key) -> Option<()>,
    ) -> Option<()> {
        if depth > FAST_MAX_DEPTH {
            return None;
        }
        self.ws();
        if self.peek() == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            member(self, key)?;
            self.ws();
            match self.peek() {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// The event, when the fast path is sure of it; `None` means "ask the slow path".
pub fn parse(json: &[u8], max_id_len: usize) -> Option<Event<'_>> {
    parse_for(json, max_id_len, None)
}

/// [`parse`], with `user` standing for a `user_id` the JSON leaves out (the keyed
/// `EVT.ADD <user_id> <json>`).
pub fn parse_for<'a>(
    json: &'a [u8],
    max_id_len: usize,
    user: Option<&'a str>,
) -> Option<Event<'a>> {
    // JSON text is UTF-8 throughout. Outside strings the grammar takes only ASCII,
    // and every string read or skipped is checked, so the whole input is.
    let default_user = user;
    let mut scan = Scan {
        s: json,
        i: 0,
        blocks: Blocks::new(json)?,
    };
    scan.eat(b'{')?;
    let mut event = Fields::default();
    // The members services send, in the order they send them, are taken straight,
    // each when it comes next as the service writes it (`,"key":` or `, "key":`);
    // from the first that does not, the general loop goes on (with what was taken
    // counting as seen, so a repeat still declines).
    let mut after_value = false;
    'direct: {
        let Some(at) = scan.pattern_at(scan.i, &USER_ID) else {
            break 'direct;
        };
        scan.i = at;
        event.user = Some(scan.id(max_id_len)?);
        after_value = true;
        let Some(at) = scan.next_member(&EVENT_TYPE) else {
            break 'direct;
        };
        scan.i = at;
        event.ty = Some(scan.id(max_id_len)?);
        let Some(at) = scan.next_member(&TIMESTAMP) else {
            break 'direct;
        };
        scan.i = at;
        event.ts = Some(scan.timestamp()?);
        let Some(at) = scan.next_member(&ATTRIBUTES) else {
            break 'direct;
        };
        scan.i = at;
        event.attributes = true;
        event.value = scan.attributes()?;
    }
    loop {
        scan.ws();
        if after_value {
            match scan.peek() {
                b',' => scan.i += 1,
                b'}' => break,
                _ => return None,
            }
        } else if scan.peek() == b'}' {
            break;
        }
        let key = scan.key()?;
        scan.eat(b':')?;
        event.member(&mut scan, key, max_id_len)?;
        after_value = true;
    }
    scan.i += 1;
    scan.ws();
    if scan.i != json.len() {
        return None;
    }
    Some(Event {
        user_id: Cow::Borrowed(event.user.or(default_user)?),
        event_type: Cow::Borrowed(event.ty?),
        timestamp: event.ts?,
        value: event.value,
    })
}

/// What the top-level members have given so far.
#[derive(Default)]
struct Fields<'a> {
    user: Option<&'a str>,
    ty: Option<&'a str>,
    ts: Option<u32>,
    attributes: bool,
    value: Option<f64>,
}

impl<'a> Fields<'a> {
    /// Takes the value of a top-level member, the cursor before it.
    fn member(&mut self, scan: &mut Scan<'a>, key: Key, max_id_len: usize) -> Option<()> {
        match key {
            Key::User if self.user.is_none() => self.user = Some(scan.id(max_id_len)?),
            Key::Type if self.ty.is_none() => self.ty = Some(scan.id(max_id_len)?),
            Key::Time if self.ts.is_none() => self.ts = Some(scan.timestamp()?),
            Key::Attributes if !self.attributes => {
                self.attributes = true;
                self.value = scan.attributes()?;
            }
            // A repeated known field: the slow path reports it.
            Key::User | Key::Type | Key::Time | Key::Attributes => return None,
            Key::Value | Key::Other => scan.skip(1)?,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests;
