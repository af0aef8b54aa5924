//! A cursor over a command's arguments: each command's parser takes what it needs
//! and the dispatcher refuses what is left over.

use crate::error::ReplyError;
use crate::protocol::Args;

/// A cursor over a command's arguments (the name and, for subcommands, the
/// subcommand name already behind it).
#[derive(Debug)]
pub struct Cursor<'a> {
    args: Args<'a>,
    next: usize,
    /// The store's window: the largest `WINDOW <s>`.
    window: u32,
}

impl<'a> Cursor<'a> {
    /// A cursor at argument `skip` of `args`; `window` bounds `WINDOW <s>`.
    pub fn new(args: Args<'a>, skip: usize, window: u32) -> Self {
        Cursor {
            args,
            next: skip,
            window,
        }
    }

    /// The next argument, if any.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<&'a [u8]> {
        let arg = self.args.get(self.next)?;
        self.next += 1;
        Some(arg)
    }

    /// The next argument; the dispatcher's arity check guarantees it for required
    /// arguments, and an absent one reads as empty rather than panicking.
    pub fn required(&mut self) -> &'a [u8] {
        self.next().unwrap_or_default()
    }

    /// The next argument as an integer.
    pub fn int(&mut self) -> Result<i64, ReplyError> {
        self.next()
            .and_then(parse_int)
            .ok_or_else(ReplyError::not_integer)
    }

    /// Whether the next argument is `word` (any case); consumes it if so.
    pub fn eat(&mut self, word: &str) -> bool {
        match self.args.get(self.next) {
            Some(a) if a.eq_ignore_ascii_case(word.as_bytes()) => {
                self.next += 1;
                true
            }
            _ => false,
        }
    }

    /// Every remaining argument.
    pub fn rest(&mut self) -> Vec<&'a [u8]> {
        let mut out = Vec::with_capacity(self.remaining());
        while let Some(a) = self.next() {
            out.push(a);
        }
        out
    }

    /// Every remaining argument, as a request of its own (`COMMAND GETKEYS`).
    pub fn rest_args(&mut self) -> Args<'a> {
        let rest = self.args.skip(self.next);
        self.next = self.args.len();
        rest
    }

    /// Arguments not taken yet.
    pub fn remaining(&self) -> usize {
        self.args.len().saturating_sub(self.next)
    }

    /// `ERR syntax error` unless every argument was taken.
    pub fn finish(&self) -> Result<(), ReplyError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(ReplyError::syntax())
        }
    }

    /// An optional trailing `WINDOW <s>`, then the end.
    pub fn window(&mut self) -> Result<Option<u32>, ReplyError> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        if !self.eat("WINDOW") {
            return Err(ReplyError::syntax());
        }
        let span = self.window_value()?;
        self.finish()?;
        Ok(Some(span))
    }

    /// The `<s>` of a `WINDOW <s>` whose `WINDOW` was just taken: 1 to the window.
    pub fn window_value(&mut self) -> Result<u32, ReplyError> {
        let span = self.next().ok_or_else(ReplyError::syntax)?;
        let max = self.window;
        match parse_int(span) {
            Some(s) if s >= 1 && s <= i64::from(max) => Ok(s as u32),
            _ => Err(ReplyError::err(format!(
                "WINDOW must be an integer from 1 to {max}"
            ))),
        }
    }
}

/// A decimal integer as Redis reads one (`string2ll`): no `+`, no leading zeros.
pub fn parse_int(arg: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty()
        || s.starts_with('+')
        || (s.len() > 1 && (s.starts_with('0') || s.starts_with("-0")))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_int;

    #[test]
    fn integers_as_redis_reads_them() {
        assert_eq!(parse_int(b"42"), Some(42));
        assert_eq!(parse_int(b"-7"), Some(-7));
        assert_eq!(parse_int(b"0"), Some(0));
        for bad in [&b"+1"[..], b"01", b"-0", b"", b"1.5", b" 1"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }
}
