//! The wire: request framing in, reply encoding out.
//!
//! This is the only module that imports the RESP codec (`redis-protocol`); the rest of
//! the server sees a request as an argument list ([`Args`]) and answers with a [`Reply`].
//!
//! Requests are parsed the way Redis's `processMultibulkBuffer` / `processInlineBuffer`
//! parse them, so clients see the same behaviour and the same error texts:
//!
//! 1. [`parse_request`] walks a multibulk request's `*<n>` and `$<len>` headers without
//!    copying, enforces the limits, and records each argument as a range of the read
//!    buffer: arguments are zero-copy slices of the bytes we read. A length the peer
//!    merely announces is compared with the limit before anything waits for (or
//!    allocates) those bytes, so `*1\r\n$2147483648\r\n` fails at once.
//! 2. `redis-protocol`'s `decode_range` is the reference these ranges are tested
//!    against (a property test feeds both the same pipelines). It is not called on the
//!    hot path: the walk above must read every header anyway to enforce the limits,
//!    and decoding a second time cost ~1,150 instructions per command — 15% of all
//!    the server did per event under `redis-benchmark` (callgrind; see
//!    `docs/benchmarks.md`) — plus a `Vec` per command.
//! 3. Inline requests (`PING\r\n` typed into telnet) are split like `sdssplitargs`,
//!    quotes and escapes included; their unescaped bytes live in a per-connection scratch
//!    buffer that is reused from one request to the next.
//!
//! Replies are built as [`Reply`] values and encoded for the connection's protocol
//! version (RESP2 or RESP3) by `redis-protocol`'s encoder.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::error::ReplyError;
use redis_protocol::resp2::encode::extend_encode_borrowed as encode2;
use redis_protocol::resp2::types::{BorrowedFrame as Frame2, OwnedFrame as Owned2};
use redis_protocol::resp3::encode::complete::extend_encode_borrowed as encode3;
use redis_protocol::resp3::types::{
    BorrowedFrame as Frame3, FrameMap, OwnedFrame as Owned3, VerbatimStringFormat,
};

/// Longest inline request, and longest `*<n>` / `$<len>` header line, Redis's
/// `PROTO_INLINE_MAX_SIZE`. Beyond it without a newline the peer is not speaking RESP.
pub const MAX_INLINE_LEN: usize = 64 * 1024;

/// Largest multibulk count Redis accepts at all (`INT_MAX`); our own limit is usually lower.
const REDIS_MAX_MULTIBULK: i64 = i32::MAX as i64;

/// How large a request may be, in the units a peer announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single bulk argument, in bytes.
    pub max_bulk_len: usize,
    /// Most arguments in one command.
    pub max_args: usize,
}

/// A request that cannot be framed. The connection replies with the text and closes,
/// because after a framing error the byte stream has no known command boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(what: &str) -> Self {
        ProtocolError(format!("ERR Protocol error: {what}"))
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`parse_request`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A command of `consumed` bytes; its arguments are in the [`ArgBuf`].
    Command { consumed: usize, inline: bool },
    /// `consumed` bytes that hold no command (an empty line, `*0\r\n`, `*-1\r\n`).
    Empty { consumed: usize },
    /// The front of the buffer is a command that has not fully arrived yet.
    Incomplete,
}

/// Where the current command's arguments are: ranges into the read buffer (multibulk)
/// or into the scratch buffer of unescaped inline bytes. Reused across commands so that
/// parsing allocates nothing in the steady state.
#[derive(Debug, Default)]
pub struct ArgBuf {
    ranges: Vec<(usize, usize)>,
    inline: Vec<u8>,
    is_inline: bool,
}

impl ArgBuf {
    /// The arguments of the last command parsed out of `buf`.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        let src = if self.is_inline {
            &self.inline[..]
        } else {
            buf
        };
        Args {
            src,
            ranges: &self.ranges,
        }
    }
}

/// A command's arguments, the command name first. Every argument is a slice of bytes
/// already read; nothing is copied.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    src: &'a [u8],
    ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are no arguments at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The `i`th argument, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let &(start, end) = self.ranges.get(i)?;
        self.src.get(start..end)
    }

    /// All arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Reads the command at the front of `buf`.
///
/// `Ok(Parsed::Incomplete)` means "read more"; the caller bounds how much it will
/// buffer. A `ProtocolError` is final for this connection.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
    out: &mut ArgBuf,
) -> Result<Parsed, ProtocolError> {
    out.ranges.clear();
    out.is_inline = false;
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'*') => parse_multibulk(buf, limits, out),
        Some(_) => parse_inline(buf, limits, out),
    }
}

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

fn parse_multibulk(buf: &[u8], limits: &Limits, out: &mut ArgBuf) -> Result<Parsed, ProtocolError> {
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

fn parse_inline(buf: &[u8], limits: &Limits, out: &mut ArgBuf) -> Result<Parsed, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(ProtocolError::new("too big inline request"));
        }
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

/// Protocol version a connection speaks, switched by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resp {
    #[default]
    V2,
    V3,
}

/// A reply, independent of the protocol version it will be encoded in.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple (status) string.
    Simple(Cow<'static, str>),
    /// An error.
    Error(ReplyError),
    Int(i64),
    Bulk(Vec<u8>),
    /// RESP2 `$-1`, RESP3 `_`.
    Null,
    /// RESP3 double; in RESP2 a bulk string formatted as Redis formats doubles.
    Double(f64),
    Array(Vec<Reply>),
    /// RESP3 map; in RESP2 a flat array of keys and values.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set; in RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 verbatim text (as `INFO` replies); in RESP2 a bulk string.
    Verbatim(String),
}

impl Reply {
    /// A bulk string of text.
    pub fn bulk(text: impl Into<Vec<u8>>) -> Self {
        Reply::Bulk(text.into())
    }
}

/// Formats a double as Redis does for `INCRBYFLOAT` and RESP2 `ZSCORE`: the shortest text
/// that reads back as the same double, no exponent; `inf` / `-inf` beyond the range.
pub fn format_double(v: f64) -> Cow<'static, str> {
    // The same text the codec writes for a RESP3 double, so RESP2 and RESP3 agree.
    if v.is_nan() {
        Cow::Borrowed("nan")
    } else if v.is_infinite() {
        Cow::Borrowed(if v < 0.0 { "-inf" } else { "inf" })
    } else {
        Cow::Owned(v.to_string())
    }
}

/// Appends the encoding of `reply` to `out`.
///
/// Scalars (the hot path: `+OK`, integers, doubles, short bulks) are encoded from
/// borrowed frames without allocating; aggregates become the codec's owned frame tree.
pub fn encode(reply: &Reply, version: Resp, out: &mut BytesMut) {
    if let Reply::Ok = reply {
        // The reply to every accepted event: encoded by the codec once, then copied.
        out.extend_from_slice(ok_bytes(version));
        return;
    }
    // The `extend_` encoders grow the buffer before writing and the owned encoders are
    // given a buffer of exactly `encode_len` bytes, so the codec has no reason to fail;
    // if it ever did, that is a bug to log, never a panic reachable from a client.
    let result = match (version, reply) {
        (_, Reply::Array(_) | Reply::Map(_) | Reply::Set(_)) => encode_owned(reply, version, out),
        (Resp::V2, _) => scalar2(reply, &mut |f| encode2(out, f, false).map(drop)),
        (Resp::V3, _) => scalar3(reply, &mut |f| encode3(out, f, false).map(drop)),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "reply encoding failed");
    }
}

type EncodeResult = Result<(), redis_protocol::error::RedisProtocolError>;

/// `+OK` as the codec encodes it, per protocol version.
fn ok_bytes(version: Resp) -> &'static [u8] {
    static OK: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let [v2, v3] = OK.get_or_init(|| {
        [Resp::V2, Resp::V3].map(|v| {
            let mut b = BytesMut::new();
            let result = match v {
                Resp::V2 => scalar2(&Reply::Ok, &mut |f| encode2(&mut b, f, false).map(drop)),
                Resp::V3 => scalar3(&Reply::Ok, &mut |f| encode3(&mut b, f, false).map(drop)),
            };
            if result.is_err() {
                // Cannot happen (see `encode`); the literal keeps replies flowing.
                b = BytesMut::from(&b"+OK\r\n"[..]);
            }
            b.to_vec()
        })
    });
    match version {
        Resp::V2 => v2,
        Resp::V3 => v3,
    }
}

/// Hands the borrowed RESP2 frame of a scalar reply to `f`.
fn scalar2(reply: &Reply, f: &mut dyn FnMut(&Frame2) -> EncodeResult) -> EncodeResult {
    match reply {
        Reply::Ok => f(&Frame2::SimpleString(b"OK")),
        Reply::Simple(s) => f(&Frame2::SimpleString(s.as_bytes())),
        Reply::Error(e) => f(&Frame2::Error(&e.text())),
        Reply::Int(i) => f(&Frame2::Integer(*i)),
        Reply::Bulk(b) => f(&Frame2::BulkString(b)),
        Reply::Verbatim(s) => f(&Frame2::BulkString(s.as_bytes())),
        Reply::Double(d) => f(&Frame2::BulkString(format_double(*d).as_bytes())),
        Reply::Null | Reply::Array(_) | Reply::Map(_) | Reply::Set(_) => f(&Frame2::Null),
    }
}

/// Hands the borrowed RESP3 frame of a scalar reply to `f`.
fn scalar3(reply: &Reply, f: &mut dyn FnMut(&Frame3) -> EncodeResult) -> EncodeResult {
    let attributes = None;
    match reply {
        Reply::Ok => f(&Frame3::SimpleString {
            data: b"OK",
            attributes,
        }),
        Reply::Simple(s) => f(&Frame3::SimpleString {
            data: s.as_bytes(),
            attributes,
        }),
        Reply::Error(e) => f(&Frame3::SimpleError {
            data: &e.text(),
            attributes,
        }),
        Reply::Int(i) => f(&Frame3::Number {
            data: *i,
            attributes,
        }),
        Reply::Bulk(b) => f(&Frame3::BlobString {
            data: b,
            attributes,
        }),
        Reply::Verbatim(s) => f(&Frame3::VerbatimString {
            data: s.as_bytes(),
            format: VerbatimStringFormat::Text,
            attributes,
        }),
        Reply::Double(d) => f(&Frame3::Double {
            data: *d,
            attributes,
        }),
        Reply::Null | Reply::Array(_) | Reply::Map(_) | Reply::Set(_) => f(&Frame3::Null),
    }
}

fn encode_owned(reply: &Reply, version: Resp, out: &mut BytesMut) -> EncodeResult {
    use redis_protocol::resp2::types::Resp2Frame;
    use redis_protocol::resp3::types::Resp3Frame;
    let start = out.len();
    match version {
        Resp::V2 => {
            let frame = owned2(reply);
            out.resize(start + frame.encode_len(false), 0);
            redis_protocol::resp2::encode::encode(&mut out[start..], &frame, false)?;
        }
        Resp::V3 => {
            let frame = owned3(reply);
            out.resize(start + frame.encode_len(false), 0);
            redis_protocol::resp3::encode::complete::encode(&mut out[start..], &frame, false)?;
        }
    }
    Ok(())
}

fn owned2(reply: &Reply) -> Owned2 {
    match reply {
        Reply::Ok => Owned2::SimpleString(b"OK".to_vec()),
        Reply::Simple(s) => Owned2::SimpleString(s.as_bytes().to_vec()),
        Reply::Error(e) => Owned2::Error(e.text()),
        Reply::Int(i) => Owned2::Integer(*i),
        Reply::Bulk(b) => Owned2::BulkString(b.clone()),
        Reply::Verbatim(s) => Owned2::BulkString(s.as_bytes().to_vec()),
        Reply::Double(d) => Owned2::BulkString(format_double(*d).as_bytes().to_vec()),
        Reply::Null => Owned2::Null,
        Reply::Array(items) | Reply::Set(items) => {
            Owned2::Array(items.iter().map(owned2).collect())
        }
        Reply::Map(pairs) => Owned2::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [owned2(k), owned2(v)])
                .collect(),
        ),
    }
}

fn owned3(reply: &Reply) -> Owned3 {
    let attributes = None;
    match reply {
        Reply::Ok => Owned3::SimpleString {
            data: b"OK".to_vec(),
            attributes,
        },
        Reply::Simple(s) => Owned3::SimpleString {
            data: s.as_bytes().to_vec(),
            attributes,
        },
        Reply::Error(e) => Owned3::SimpleError {
            data: e.to_string(),
            attributes,
        },
        Reply::Int(i) => Owned3::Number {
            data: *i,
            attributes,
        },
        Reply::Bulk(b) => Owned3::BlobString {
            data: b.clone(),
            attributes,
        },
        Reply::Verbatim(s) => Owned3::VerbatimString {
            data: s.as_bytes().to_vec(),
            format: VerbatimStringFormat::Text,
            attributes,
        },
        Reply::Double(d) => Owned3::Double {
            data: *d,
            attributes,
        },
        Reply::Null => Owned3::Null,
        Reply::Array(items) => Owned3::Array {
            data: items.iter().map(owned3).collect(),
            attributes,
        },
        Reply::Set(items) => Owned3::Set {
            data: items.iter().map(owned3).collect(),
            attributes,
        },
        Reply::Map(pairs) => {
            let mut data = FrameMap::default();
            for (k, v) in pairs {
                data.insert(owned3(k), owned3(v));
            }
            Owned3::Map { data, attributes }
        }
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

    const LIMITS: Limits = Limits {
        max_bulk_len: 1024,
        max_args: 16,
    };

    fn parse(buf: &[u8]) -> Result<Parsed, ProtocolError> {
        parse_request(buf, &LIMITS, &mut ArgBuf::default())
    }

    #[test]
    fn announced_lengths_fail_at_once() {
        let err = |s: &str| Err(ProtocolError(format!("ERR Protocol error: {s}")));
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

    #[test]
    fn ok_is_encoded_by_the_codec() {
        let mut out = BytesMut::new();
        encode(&Reply::Ok, Resp::V2, &mut out);
        encode(&Reply::Ok, Resp::V3, &mut out);
        assert_eq!(&out[..], b"+OK\r\n+OK\r\n");
    }

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.0), "0");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(0.1 + 0.2), "0.30000000000000004");
    }
}
