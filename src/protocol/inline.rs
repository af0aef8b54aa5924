//! Inline requests (`PING\r\n` typed into telnet), split like Redis's `sdssplitargs`.

use super::{ArgBuf, Limits, MAX_INLINE_LEN, Parsed, ProtocolError, Resume, find};

/// Reads the inline request at the front of `buf`, going on with the search for its
/// end from where an earlier call over the same bytes stopped (see `parse_request`).
pub(super) fn parse_inline(
    buf: &[u8],
    limits: &Limits,
    out: &mut ArgBuf,
) -> Result<Parsed, ProtocolError> {
    // No `\n` lies before `from`.
    let from = match out.resume {
        Resume::Inline { searched } => searched.min(buf.len()),
        _ => 0,
    };
    // Set again only if this call ends in `Incomplete`.
    out.resume = Resume::Start;
    let Some(nl) = find(buf.get(from..).unwrap_or_default(), b'\n').map(|i| from + i) else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(ProtocolError::new("too big inline request"));
        }
        out.resume = Resume::Inline {
            searched: buf.len(),
        };
        return Ok(Parsed::Incomplete);
    };
    if nl > MAX_INLINE_LEN {
        return Err(ProtocolError::new("too big inline request"));
    }
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    out.inline.clear();
    split_args(line, &mut out.inline, &mut out.ranges)
        .map_err(|UnbalancedQuotes| ProtocolError::new("unbalanced quotes in request"))?;
    if out.ranges.len() > limits.max_args
        || out.ranges.iter().any(|&(s, e)| e - s > limits.max_bulk_len)
    {
        return Err(ProtocolError::new("invalid multibulk length"));
    }
    out.is_inline = true;
    if out.ranges.is_empty() {
        return Ok(Parsed::Empty { consumed: nl + 1 });
    }
    Ok(Parsed::Command {
        consumed: nl + 1,
        inline: true,
    })
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// An inline command whose quotes do not close (or close mid-word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnbalancedQuotes;

/// Splits an inline command line exactly like Redis's `sdssplitargs`: whitespace
/// separates arguments; `"..."` understands `\n \r \t \b \a \\ \" \xHH`; `'...'`
/// understands `\'`; a closing quote must be followed by whitespace or the end.
/// Arguments are appended to `out` and recorded as ranges of it.
pub fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    ranges: &mut Vec<(usize, usize)>,
) -> Result<(), UnbalancedQuotes> {
    let at = |i: usize| line.get(i).copied();
    let mut p = 0;
    loop {
        while at(p).is_some_and(is_space) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(());
        }
        let start = out.len();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = at(p);
            if in_dq {
                match (c, at(p + 1)) {
                    (Some(b'\\'), Some(b'x'))
                        if at(p + 2).and_then(hex).is_some()
                            && at(p + 3).and_then(hex).is_some() =>
                    {
                        let hi = at(p + 2).and_then(hex).unwrap_or(0);
                        let lo = at(p + 3).and_then(hex).unwrap_or(0);
                        out.push(hi * 16 + lo);
                        p += 3;
                    }
                    (Some(b'\\'), Some(e)) => {
                        out.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        p += 1;
                    }
                    (Some(b'"'), next) => {
                        if next.is_some_and(|n| !is_space(n)) {
                            return Err(UnbalancedQuotes);
                        }
                        p += 1;
                        break;
                    }
                    (None, _) => return Err(UnbalancedQuotes),
                    (Some(b), _) => out.push(b),
                }
            } else if in_sq {
                match (c, at(p + 1)) {
                    (Some(b'\\'), Some(b'\'')) => {
                        out.push(b'\'');
                        p += 1;
                    }
                    (Some(b'\''), next) => {
                        if next.is_some_and(|n| !is_space(n)) {
                            return Err(UnbalancedQuotes);
                        }
                        p += 1;
                        break;
                    }
                    (None, _) => return Err(UnbalancedQuotes),
                    (Some(b), _) => out.push(b),
                }
            } else {
                match c {
                    // A NUL byte is an ordinary byte here (Redis's C string would stop at it;
                    // treating it as a separator could make an empty word forever).
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(b) => out.push(b),
                }
            }
            p += 1;
        }
        ranges.push((start, out.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, UnbalancedQuotes> {
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        split_args(line, &mut out, &mut ranges)?;
        Ok(ranges.iter().map(|&(s, e)| out[s..e].to_vec()).collect())
    }

    #[test]
    fn inline_splitting_matches_sdssplitargs() {
        assert_eq!(split(b"  PING  ").unwrap(), vec![b"PING".to_vec()]);
        assert_eq!(
            split(br#"ECHO "a b" 'c d' "\x41\n" 'it\'s'"#).unwrap(),
            vec![
                b"ECHO".to_vec(),
                b"a b".to_vec(),
                b"c d".to_vec(),
                b"A\n".to_vec(),
                b"it's".to_vec()
            ]
        );
        assert_eq!(split(br#"ECHO "unclosed"#), Err(UnbalancedQuotes));
        assert_eq!(split(br#"ECHO "a"b"#), Err(UnbalancedQuotes));
        assert_eq!(split(b"").unwrap(), Vec::<Vec<u8>>::new());
        // Regression: a NUL byte once ended a word without being consumed, and the
        // splitter produced empty words forever.
        assert_eq!(split(b"PI\0NG").unwrap(), vec![b"PI\0NG".to_vec()]);
    }

    /// An inline line fed a little at a time is searched for its end once, not from
    /// its start on every call (which examined 8.4 MB for this 64 KB line).
    #[test]
    fn an_inline_line_fed_in_pieces_is_searched_once() {
        use crate::protocol::{parse_request, work};
        let mut wire = b"ECHO ".to_vec();
        wire.extend(std::iter::repeat_n(b'x', MAX_INLINE_LEN - 100));
        wire.extend_from_slice(b"\r\n");
        let limits = Limits {
            max_bulk_len: MAX_INLINE_LEN,
            max_args: 16,
        };
        let mut out = ArgBuf::default();
        work::take();
        let mut end = 0;
        let parsed = loop {
            end = (end + 256).min(wire.len());
            let parsed = parse_request(&wire[..end], &limits, &mut out).unwrap();
            if parsed != Parsed::Incomplete || end == wire.len() {
                break parsed;
            }
        };
        let examined = work::take();
        assert_eq!(
            parsed,
            Parsed::Command {
                consumed: wire.len(),
                inline: true
            }
        );
        let args = out.args(&wire);
        assert_eq!(args.get(1).map(<[u8]>::len), Some(MAX_INLINE_LEN - 100));
        assert!(
            examined <= 2 * wire.len(),
            "{examined} bytes examined for a line of {}",
            wire.len()
        );
    }
}
