//! Multibulk requests (`*<n>\r\n$<len>\r\n<bytes>\r\n...`): the header walk and
//! the limits it enforces before waiting for any announced bytes.

use super::{ArgBuf, Limits, MAX_INLINE_LEN, Parsed, ProtocolError};

/// Largest multibulk count Redis accepts at all (`INT_MAX`); our own limit is usually lower.
const REDIS_MAX_MULTIBULK: i64 = i32::MAX as i64;

/// Finds the `\r` ending the header line that starts at `from`; `Ok(None)` when the line
/// (and the `\n` after the `\r`) has not arrived yet.
fn header_end(buf: &[u8], from: usize, what: &str) -> Result<Option<usize>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\r') {
        Some(i) if from + i + 1 < buf.len() => Ok(Some(from + i)),
        Some(_) => Ok(None),
        None if rest.len() > MAX_INLINE_LEN => Err(ProtocolError::new(&format!("too big {what}"))),
        None => Ok(None),
    }
}

/// Parses a decimal the way Redis's `string2ll` does: no sign on zero-padded numbers,
/// no spaces, no `+`.
fn parse_len(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let leading_zero = digits.len() > 1 && digits.first() == Some(&b'0');
    if digits.is_empty() || leading_zero || (negative && digits == b"0") {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if negative { -v } else { v })
}

pub(super) fn parse_multibulk(
    buf: &[u8],
    limits: &Limits,
    out: &mut ArgBuf,
) -> Result<Parsed, ProtocolError> {
    let Some(cr) = header_end(buf, 1, "mbulk count string")? else {
        return Ok(Parsed::Incomplete);
    };
    let count = match parse_len(&buf[1..cr]) {
        Some(n) if n <= REDIS_MAX_MULTIBULK && n <= limits.max_args as i64 => n,
        _ => return Err(ProtocolError::new("invalid multibulk length")),
    };
    let mut pos = cr + 2;
    if count <= 0 {
        return Ok(Parsed::Empty { consumed: pos });
    }
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete);
        }
        let Some(cr) = header_end(buf, pos, "bulk count string")? else {
            return Ok(Parsed::Incomplete);
        };
        if buf[pos] != b'$' {
            let got = match buf[pos] {
                b'\r' | b'\n' => ' ',
                b => b as char,
            };
            return Err(ProtocolError::new(&format!("expected '$', got '{got}'")));
        }
        let len = match parse_len(&buf[pos + 1..cr]) {
            Some(n) if n >= 0 && n as u64 <= limits.max_bulk_len as u64 => n as usize,
            _ => return Err(ProtocolError::new("invalid bulk length")),
        };
        let end = cr + 2 + len;
        if end + 2 > buf.len() {
            return Ok(Parsed::Incomplete);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::new("expected CRLF after bulk string"));
        }
        out.ranges.push((cr + 2, end));
        pos = end + 2;
    }
    Ok(Parsed::Command {
        consumed: pos,
        inline: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_request;

    const LIMITS: Limits = Limits {
        max_bulk_len: 1024,
        max_args: 16,
    };

    fn parse(buf: &[u8]) -> Result<Parsed, ProtocolError> {
        parse_request(buf, &LIMITS, &mut ArgBuf::default())
    }

    #[test]
    fn announced_lengths_fail_at_once() {
        let err = |s: &str| Err(ProtocolError::new(s));
        assert_eq!(parse(b"*1\r\n$2147483648\r\n"), err("invalid bulk length"));
        assert_eq!(parse(b"*99999999999\r\n"), err("invalid multibulk length"));
        assert_eq!(parse(b"*17\r\n"), err("invalid multibulk length"));
        assert_eq!(parse(b"*1\r\nx\r\n"), err("expected '$', got 'x'"));
        assert_eq!(parse(b"*1\r\n$-1\r\n"), err("invalid bulk length"));
        assert_eq!(parse(b"*1\r\n$3\r\nab"), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"*0\r\n"), Ok(Parsed::Empty { consumed: 4 }));
        assert_eq!(parse(b"\r\n"), Ok(Parsed::Empty { consumed: 2 }));
    }

    #[test]
    fn multibulk_arguments_are_slices_of_the_buffer() {
        let buf = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nrest";
        let mut args = ArgBuf::default();
        let parsed = parse_request(buf, &LIMITS, &mut args).unwrap();
        assert_eq!(
            parsed,
            Parsed::Command {
                consumed: 25,
                inline: false
            }
        );
        let a = args.args(buf);
        assert_eq!(
            (a.get(0), a.get(1)),
            (Some(&b"ECHO"[..]), Some(&b"hello"[..]))
        );
        assert_eq!(a.get(1).unwrap().as_ptr(), buf[18..].as_ptr());
    }

    fn resp_command(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    proptest::proptest! {
        /// Our ranges are exactly what the `redis-protocol` codec decodes, for any
        /// pipeline of commands, and a cut anywhere is just "incomplete".
        #[test]
        fn ranges_match_the_codec(
            commands in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..6),
                1..5,
            ),
            cut in proptest::num::usize::ANY,
        ) {
            use redis_protocol::resp2::decode::decode_range;
            use redis_protocol::resp2::types::RangeFrame;
            let limits = Limits { max_bulk_len: 1024, max_args: 16 };
            let wire: Vec<u8> = commands.iter().flat_map(|c| resp_command(c)).collect();
            let mut pos = 0;
            let mut args = ArgBuf::default();
            while pos < wire.len() {
                let parsed = parse_request(&wire[pos..], &limits, &mut args).unwrap();
                let Parsed::Command { consumed, inline: false } = parsed else {
                    panic!("expected a command, got {parsed:?}");
                };
                let (frame, used) = decode_range(&wire[pos..]).unwrap().unwrap();
                proptest::prop_assert_eq!(consumed, used);
                let RangeFrame::Array(items) = frame else { panic!("not an array") };
                let theirs: Vec<(usize, usize)> = items
                    .iter()
                    .map(|f| match f {
                        RangeFrame::BulkString(r) => *r,
                        other => panic!("not a bulk string: {other:?}"),
                    })
                    .collect();
                proptest::prop_assert_eq!(&args.ranges, &theirs);
                pos += consumed;
            }
            let cut = cut % wire.len();
            let first = commands.first().map(|c| resp_command(c).len()).unwrap_or(0);
            if cut < first {
                proptest::prop_assert_eq!(
                    parse_request(&wire[..cut], &limits, &mut args).unwrap(),
                    Parsed::Incomplete
                );
            }
        }
    }

    #[test]
    fn lengths_parse_like_string2ll() {
        assert_eq!(parse_len(b"0"), Some(0));
        assert_eq!(parse_len(b"130"), Some(130));
        assert_eq!(parse_len(b"-1"), Some(-1));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1a",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_len(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
