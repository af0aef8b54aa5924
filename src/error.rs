//! The one error type of replies: a [`ErrorKind`] (the code a client sees first, as
//! `-ERR`, `-NOAUTH`, `-OOM` ...) plus a message.
//!
//! Every refusal the server answers — a command error, a protocol error, an event
//! that is late, a login that failed — becomes a [`ReplyError`]. INFO `errorstats`
//! counts by [`ErrorKind::index`], never by parsing reply text.

use std::borrow::Cow;
use std::fmt;

macro_rules! kinds {
    ($($kind:ident => $code:literal,)*) => {
        /// The code at the front of an error reply.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $(#[doc = concat!("`-", $code, "`")] $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in [`ErrorKind::index`] order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// The code, as the client sees it after the `-`.
            pub fn code(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $code,)*
                }
            }
        }
    };
}

kinds! {
    Err => "ERR",
    WrongType => "WRONGTYPE",
    NoAuth => "NOAUTH",
    WrongPass => "WRONGPASS",
    NoProto => "NOPROTO",
    Oom => "OOM",
    Denied => "DENIED",
    ExecAbort => "EXECABORT",
    Loading => "LOADING",
    Misconf => "MISCONF",
    Moved => "MOVED",
    CrossSlot => "CROSSSLOT",
    ClusterDown => "CLUSTERDOWN",
}

/// Number of error kinds (the size of per-kind counter arrays).
pub const ERROR_KINDS: usize = ErrorKind::ALL.len();

impl ErrorKind {
    /// Position in [`ErrorKind::ALL`], for per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An error reply: its kind and the message after the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError {
    pub kind: ErrorKind,
    pub msg: Cow<'static, str>,
}

impl ReplyError {
    /// An error of `kind` with `msg` (without the code).
    pub fn new(kind: ErrorKind, msg: impl Into<Cow<'static, str>>) -> Self {
        ReplyError {
            kind,
            msg: msg.into(),
        }
    }

    /// A plain `-ERR msg`.
    pub fn err(msg: impl Into<Cow<'static, str>>) -> Self {
        ReplyError::new(ErrorKind::Err, msg)
    }

    /// `ERR syntax error`.
    pub fn syntax() -> Self {
        ReplyError::err("syntax error")
    }

    /// `ERR value is not an integer or out of range`.
    pub fn not_integer() -> Self {
        ReplyError::err("value is not an integer or out of range")
    }

    /// Redis's arity error for command `name`.
    pub fn arity(name: &str) -> Self {
        ReplyError::err(format!("wrong number of arguments for '{name}' command"))
    }

    /// The whole reply text: code, space, message.
    pub fn text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.code(), self.msg)
    }
}

impl std::error::Error for ReplyError {}

/// Text of a client-supplied argument for an error message: at most `max` bytes,
/// lossy UTF-8, no CR/LF (a simple error must stay on one line).
pub fn quote(arg: &[u8], max: usize) -> String {
    let cut = arg.get(..arg.len().min(max)).unwrap_or_default();
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed_in_order_and_render_with_their_code() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        let e = ReplyError::new(ErrorKind::Oom, "no room");
        assert_eq!(e.text(), "OOM no room");
        assert_eq!(
            ReplyError::arity("get").text(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(quote(b"a\r\nb", 10), "a  b");
        assert_eq!(quote(b"abcdef", 3), "abc");
    }
}
