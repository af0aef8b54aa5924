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
//!
//! Files: this one holds the request types and [`parse_request`]; `request` the
//! multibulk walk and its limits; `inline` inline requests and [`split_args`];
//! `reply` the [`Reply`] value and its encoding.

mod inline;
mod reply;
mod request;

pub use reply::{Reply, Resp, encode};

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
