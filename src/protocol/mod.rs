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
//!    allocates) those bytes, so `*1\r\n$2147483648\r\n` fails at once. A request
//!    that has not fully arrived is not walked again from its start on the next read:
//!    the walk goes on where it stopped, so the work is linear in the bytes received
//!    however they are cut (a 62 MB `EVT.MADD` sent in 4 KB pieces once cost 9.7 s).
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
//!
//! Files: this one holds the request types and [`parse_request`]; `request` the
//! multibulk walk and its limits; `inline` inline requests and [`split_args`];
//! `reply` the [`Reply`] value and its encoding; `client` the other direction, for the
//! cluster's requests to other nodes.

mod client;
mod inline;
mod reply;
mod request;

pub use client::{decode_reply, encode_request};
pub use inline::split_args;
pub use reply::{Reply, Resp, encode, encode_oks};

use crate::error::ReplyError;

use inline::parse_inline;
use request::parse_multibulk;

/// Longest inline request, and longest `*<n>` / `$<len>` header line, Redis's
/// `PROTO_INLINE_MAX_SIZE`. Beyond it without a newline the peer is not speaking RESP.
pub const MAX_INLINE_LEN: usize = 64 * 1024;

/// How large a request may be, in the units a peer announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single bulk argument, in bytes.
    pub max_bulk_len: usize,
    /// Most arguments in one command.
    pub max_args: usize,
}

/// A request that cannot be framed. The connection replies with the error and
/// closes, because after a framing error the byte stream has no known command
/// boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(ReplyError);

impl ProtocolError {
    fn new(what: &str) -> Self {
        ProtocolError(ReplyError::err(format!("Protocol error: {what}")))
    }

    /// The error reply.
    pub fn reply(self) -> ReplyError {
        self.0
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
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
/// parsing allocates nothing in the steady state. While the command at the front of the
/// buffer is incomplete, it also remembers how far [`parse_request`] got.
#[derive(Debug, Default)]
pub struct ArgBuf {
    ranges: Vec<(usize, usize)>,
    inline: Vec<u8>,
    is_inline: bool,
    resume: Resume,
}

/// How far the parse of the incomplete request at the front of the buffer got, so that
/// the next call, given the same bytes extended, goes on from there.
#[derive(Debug, Default, Clone, Copy)]
enum Resume {
    /// Nothing to go on from: the request is parsed from its first byte.
    #[default]
    Start,
    /// A multibulk request part-way through its headers; the arguments found so far
    /// are in `ranges`.
    Multibulk(request::Walk),
    /// An inline request with no `\n` in its first `searched` bytes.
    Inline { searched: usize },
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

/// A request's arguments copied out of the read buffer, for requests kept past it
/// (a transaction's queue).
#[derive(Debug, Clone, Default)]
pub struct OwnedArgs {
    bytes: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

impl OwnedArgs {
    /// A copy of `args`.
    pub fn copy(args: Args<'_>) -> Self {
        let mut out = OwnedArgs {
            bytes: Vec::with_capacity(args.iter().map(<[u8]>::len).sum()),
            ranges: Vec::with_capacity(args.len()),
        };
        for a in args.iter() {
            let start = out.bytes.len();
            out.bytes.extend_from_slice(a);
            out.ranges.push((start, out.bytes.len()));
        }
        out
    }

    /// The arguments.
    pub fn args(&self) -> Args<'_> {
        Args {
            src: &self.bytes,
            ranges: &self.ranges,
        }
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.bytes.len() + self.ranges.len() * std::mem::size_of::<(usize, usize)>()
    }
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

    /// The arguments after the first `n` (`COMMAND GETKEYS <command> ...`).
    pub fn skip(&self, n: usize) -> Args<'a> {
        Args {
            src: self.src,
            ranges: self.ranges.get(n..).unwrap_or_default(),
        }
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
///
/// # Resuming
///
/// After `Incomplete`, `out` remembers how far the parse got (the headers walked, the
/// arguments found, how far the search for a line end went) and the next call goes on
/// from there, so a request that arrives in many pieces costs work in proportion to its
/// length, however it is cut. This is only right if the next call is given **the same
/// bytes again, extended at the end**: the read buffer from the same request start,
/// with whatever has been read since. A connection calls it that way, as its buffer's
/// front does not move while a request is incomplete. To parse other bytes, use a fresh
/// `ArgBuf`. (Different limits, or a buffer shorter than what was examined, make the
/// parse start over, but nothing else is checked.) Any other outcome than
/// `Incomplete` forgets the resume point.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
    out: &mut ArgBuf,
) -> Result<Parsed, ProtocolError> {
    out.is_inline = false;
    match buf.first() {
        None => {
            out.ranges.clear();
            out.resume = Resume::Start;
            Ok(Parsed::Incomplete)
        }
        Some(b'*') => parse_multibulk(buf, limits, out),
        Some(_) => {
            out.ranges.clear();
            parse_inline(buf, limits, out)
        }
    }
}

/// The position of the first `byte` in `hay`. Every search of the request parser goes
/// through here, so that tests can count the bytes it examines.
fn find(hay: &[u8], byte: u8) -> Option<usize> {
    let found = hay.iter().position(|&b| b == byte);
    #[cfg(test)]
    work::add(found.map_or(hay.len(), |i| i + 1));
    found
}

/// Bytes the request parser examined on this thread: the measure of its work that
/// tests hold to linear in the bytes received.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static EXAMINED: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn add(n: usize) {
        EXAMINED.with(|e| e.set(e.get() + n));
    }

    /// The count since the last call, and a fresh start.
    pub(crate) fn take() -> usize {
        EXAMINED.with(|e| e.replace(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What one call of the parser produced, arguments copied out.
    #[derive(Debug, Clone, PartialEq)]
    enum Outcome {
        Command(Vec<Vec<u8>>, bool, usize),
        Empty(usize),
        Error(String),
    }

    /// Runs the parser over `wire` as a connection does, one `ArgBuf` throughout, the
    /// bytes arriving in the pieces that `cuts` (sorted) make. Returns what each call
    /// produced, up to an error or the end, and where the unparsed bytes start.
    fn run(wire: &[u8], cuts: &[usize], limits: &Limits) -> (Vec<Outcome>, usize) {
        let mut out = ArgBuf::default();
        let (mut outcomes, mut pos) = (Vec::new(), 0);
        for &avail in cuts.iter().chain([&wire.len()]) {
            loop {
                let buf = &wire[pos..avail];
                match parse_request(buf, limits, &mut out) {
                    Ok(Parsed::Incomplete) => break,
                    Ok(Parsed::Empty { consumed }) => {
                        outcomes.push(Outcome::Empty(consumed));
                        pos += consumed;
                    }
                    Ok(Parsed::Command { consumed, inline }) => {
                        let args = out.args(buf).iter().map(<[u8]>::to_vec).collect();
                        outcomes.push(Outcome::Command(args, inline, consumed));
                        pos += consumed;
                    }
                    Err(e) => {
                        outcomes.push(Outcome::Error(e.to_string()));
                        return (outcomes, pos);
                    }
                }
            }
        }
        (outcomes, pos)
    }

    /// One request of a pipeline: mostly well formed (some over the small limits the
    /// property uses), some malformed.
    fn request() -> impl Strategy<Value = Vec<u8>> {
        let arg = prop::collection::vec(any::<u8>(), 0..40);
        let multibulk = prop::collection::vec(arg, 0..7).prop_map(|args| {
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(&a);
                out.extend_from_slice(b"\r\n");
            }
            out
        });
        let inline = ("[a-z\"' \\\\x0-9]{0,30}", prop::bool::ANY).prop_map(|(line, cr)| {
            let mut out = line.into_bytes();
            out.extend_from_slice(if cr { b"\r\n" } else { b"\n" });
            out
        });
        prop_oneof![
            6 => multibulk,
            2 => inline,
            1 => Just(b"\r\n".to_vec()),
            1 => Just(b"*-1\r\n".to_vec()),
            1 => Just(b"*1\r\n$3\r\nabcd\r\n".to_vec()),
            1 => Just(b"*2\r\n:1\r\n".to_vec()),
            1 => Just(b"*1\r\n\r\n".to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..12),
        ]
    }

    proptest! {
        /// Parsing a pipeline as it arrives, cut anywhere, gives exactly what parsing it
        /// whole gives: the same commands, the same errors at the same place.
        #[test]
        fn pieces_parse_like_the_whole(
            requests in prop::collection::vec(request(), 1..12),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
            bytewise in any::<bool>(),
        ) {
            let limits = Limits { max_bulk_len: 32, max_args: 5 };
            let wire: Vec<u8> = requests.concat();
            let mut cuts: Vec<usize> = if bytewise {
                (0..wire.len()).collect()
            } else {
                cuts.iter().map(|i| i.index(wire.len() + 1)).collect()
            };
            cuts.sort_unstable();
            let whole = run(&wire, &[], &limits);
            let pieces = run(&wire, &cuts, &limits);
            prop_assert_eq!(pieces, whole);
        }
    }

    /// The resume point belongs to the limits it was walked under: with other limits
    /// (the connection logged in meanwhile, or `CONFIG SET` moved them) the request is
    /// checked again from its start.
    #[test]
    fn other_limits_start_the_walk_over() {
        let wire = b"*3\r\n$1\r\na\r\n$5\r\nhello\r\n$1\r\nc\r\n";
        let wide = Limits {
            max_bulk_len: 16,
            max_args: 16,
        };
        let narrow = Limits {
            max_bulk_len: 4,
            max_args: 16,
        };
        let mut out = ArgBuf::default();
        assert_eq!(
            parse_request(&wire[..20], &wide, &mut out),
            Ok(Parsed::Incomplete)
        );
        assert_eq!(
            parse_request(wire, &narrow, &mut out),
            Err(ProtocolError::new("invalid bulk length"))
        );
        // An error forgets the walk: the same bytes under the wide limits parse whole.
        assert_eq!(
            parse_request(wire, &wide, &mut out),
            Ok(Parsed::Command {
                consumed: wire.len(),
                inline: false
            })
        );
        let got: Vec<&[u8]> = out.args(wire).iter().collect();
        assert_eq!(got, [&b"a"[..], b"hello", b"c"]);
    }

    /// A blank line where a `$<len>` header belongs is refused as Redis refuses it, not
    /// read as a header with nothing after the `$`, whole or in pieces.
    #[test]
    fn a_blank_line_for_a_header_is_refused() {
        let limits = Limits {
            max_bulk_len: 16,
            max_args: 16,
        };
        for wire in [&b"*1\r\n\r\n"[..], b"*2\r\n$1\r\na\r\n\r\n$1\r\nb\r\n"] {
            for cuts in [vec![], (0..wire.len()).collect()] {
                let (outcomes, _) = run(wire, &cuts, &limits);
                assert_eq!(
                    outcomes,
                    [Outcome::Error(
                        "ERR Protocol error: expected '$', got ' '".into()
                    )]
                );
            }
        }
    }

    /// A line that never ends is refused as soon as more than [`MAX_INLINE_LEN`] bytes
    /// of it have arrived, however they arrive, even though each call searches only
    /// the new bytes.
    #[test]
    fn an_endless_line_is_refused_at_the_limit_whatever_the_pieces() {
        let limits = Limits {
            max_bulk_len: 1 << 20,
            max_args: 16,
        };
        let endless = |head: &[u8]| {
            let mut wire = head.to_vec();
            wire.resize(head.len() + MAX_INLINE_LEN + 5000, b'7');
            wire
        };
        for (wire, start, what) in [
            (endless(b""), 0, "too big inline request"),
            (endless(b"*"), 1, "too big mbulk count string"),
            (endless(b"*2\r\n$"), 4, "too big bulk count string"),
        ] {
            for piece in [1, 1000, 4096] {
                let mut out = ArgBuf::default();
                let mut end = 0;
                let refused_at = loop {
                    end = (end + piece).min(wire.len());
                    match parse_request(&wire[..end], &limits, &mut out) {
                        Ok(Parsed::Incomplete) => {
                            assert!(end < wire.len(), "{what}: never refused")
                        }
                        Ok(other) => panic!("{what}: {other:?}"),
                        Err(e) => {
                            assert_eq!(e, ProtocolError::new(what));
                            break end;
                        }
                    }
                };
                // The first call that holds more than the limit past the line's start.
                let first_over = (start + MAX_INLINE_LEN + 1).div_ceil(piece) * piece;
                assert_eq!(refused_at, first_over, "{what} in pieces of {piece}");
            }
        }
    }
}
