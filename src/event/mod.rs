//! Parsing of one analytics event from the JSON object a client sends.
//!
//! An event looks like
//! `{"user_id": "user123", "event_type": "click", "timestamp": 1678886400,
//! "attributes": {"item_id": "item456", "value": 10.5}}`.
//!
//! This is the server's hot path, so nothing is allocated or formatted unless the
//! event is rejected, and ids are borrowed straight from the input unless they
//! contain escapes. [`parse_event`] tries two parsers in turn:
//!
//! - `fast`: one pass over the bytes for the events services actually send; it
//!   answers only when it is sure.
//! - `slow` ([`parse_slow`]): a single `serde_json` pass with a hand-written map
//!   visitor; it takes every event and words every error. Two helpers of its own
//!   concern stand beside it: `timestamp` (the timestamp's JSON number floored to
//!   whole seconds, exactly) and `member` (the nesting bound on every member, and
//!   `attributes.value`).
//!
//! When an event has several problems, the first one met is reported.

mod fast;
mod member;
mod slow;
#[cfg(test)]
mod tests;
mod timestamp;

use std::borrow::Cow;
use std::fmt;

pub use slow::parse_slow;

/// Longest `user_id`/`event_type` accepted by default, in bytes (after unescaping).
pub const DEFAULT_MAX_ID_LEN: usize = 512;
/// Deepest JSON nesting accepted anywhere in an event (the top-level object is depth 1).
pub const MAX_JSON_DEPTH: usize = 32;
pub use crate::clock::MAX_TIMESTAMP;

/// One parsed event, borrowing from the input buffer where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Who did it. Borrowed from the input when the JSON string has no escapes,
    /// so the common case costs no allocation; owned (unescaped) otherwise.
    pub user_id: Cow<'a, str>,
    /// What happened; borrowed or owned exactly like `user_id`.
    pub event_type: Cow<'a, str>,
    /// Whole Unix seconds. A fractional JSON value is floored
    /// (`1678886400.9` becomes `1678886400`), because the store keeps seconds.
    pub timestamp: u32,
    /// `attributes.value` when `attributes` is an object and its `value` member
    /// is a finite JSON number; `None` for anything else (a string such as
    /// `"10.5"`, null, bool, array, object, a number too large for `f64`, a
    /// missing member or a missing/non-object `attributes`), which is not an
    /// error. If `attributes` holds `value` more than once the **last**
    /// occurrence decides, as with most JSON parsers (so
    /// `{"value": 1, "value": "x"}` gives `None`).
    pub value: Option<f64>,
}

/// A known top-level field of an event, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `user_id`
    UserId,
    /// `event_type`
    EventType,
    /// `timestamp`
    Timestamp,
    /// `attributes`
    Attributes,
}

impl Field {
    /// The field's name exactly as it appears in the JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Field::UserId => "user_id",
            Field::EventType => "event_type",
            Field::Timestamp => "timestamp",
            Field::Attributes => "attributes",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an event was rejected.
///
/// The server sends `-ERR invalid event: {error}` back to the client, so the
/// [`Display`](fmt::Display) text is short, lowercase, a single line, names the
/// offending field and never echoes the input (which could be huge or contain
/// protocol-breaking bytes).
#[derive(Debug, Clone, PartialEq)]
pub enum EventError {
    /// The input bytes are not UTF-8 (JSON text must be).
    InvalidUtf8,
    /// The input is not syntactically valid JSON. Holds a short reason taken
    /// from `serde_json` with position information removed (may be empty).
    InvalidJson(String),
    /// The top-level JSON value is not an object.
    NotAnObject,
    /// Something other than whitespace follows the event object.
    TrailingCharacters,
    /// Some value nests deeper than [`MAX_JSON_DEPTH`].
    TooDeep,
    /// A required field is absent.
    MissingField(Field),
    /// A known top-level field occurs more than once. Rejected rather than
    /// picking one, because the client clearly sent something it did not mean.
    DuplicateField(Field),
    /// `user_id` or `event_type` is not a JSON string.
    NotAString(Field),
    /// `user_id` or `event_type` is the empty string.
    EmptyId(Field),
    /// `user_id` or `event_type` is longer than the configured limit (bytes
    /// after unescaping).
    IdTooLong {
        /// Which id.
        field: Field,
        /// The configured limit, shown in the message.
        max_len: usize,
    },
    /// `timestamp` is not a JSON number.
    TimestampNotANumber,
    /// `timestamp` is below zero (`-0` is fine).
    TimestampNegative,
    /// `timestamp` is above [`MAX_TIMESTAMP`] (or too large for any float).
    TimestampOutOfRange,
    /// `EVT.ADD <user_id> <json>`: the JSON's `user_id` is another user.
    NotTheKey,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::InvalidUtf8 => f.write_str("input is not valid UTF-8"),
            EventError::InvalidJson(reason) if reason.is_empty() => f.write_str("not valid JSON"),
            EventError::InvalidJson(reason) => write!(f, "not valid JSON ({reason})"),
            EventError::NotAnObject => f.write_str("expected a JSON object"),
            EventError::TrailingCharacters => {
                f.write_str("trailing characters after the JSON object")
            }
            EventError::TooDeep => write!(f, "nested deeper than {MAX_JSON_DEPTH} levels"),
            EventError::MissingField(field) => write!(f, "missing field '{field}'"),
            EventError::DuplicateField(field) => write!(f, "duplicate field '{field}'"),
            EventError::NotAString(field) => write!(f, "'{field}' must be a string"),
            EventError::EmptyId(field) => write!(f, "'{field}' must not be empty"),
            EventError::IdTooLong { field, max_len } => {
                write!(f, "'{field}' is longer than {max_len} bytes")
            }
            EventError::TimestampNotANumber => f.write_str("'timestamp' must be a number"),
            EventError::TimestampNegative => f.write_str("'timestamp' must not be negative"),
            EventError::TimestampOutOfRange => f.write_str("'timestamp' is out of range"),
            EventError::NotTheKey => {
                f.write_str("'user_id' is not the user id given before the JSON")
            }
        }
    }
}

impl std::error::Error for EventError {}

/// `bytes` as text when they are UTF-8. Ids are short and nearly always ASCII, where
/// `std::str::from_utf8` spent ~100 instructions on 16 bytes (callgrind); an ASCII
/// check costs a fraction of that.
pub fn text_of(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Parses one event from `json`, which must hold exactly one JSON object
/// (surrounding whitespace allowed).
///
/// `user_id` and `event_type` must be non-empty strings of at most
/// `max_id_len` bytes after unescaping; `timestamp` a non-negative number no
/// greater than [`MAX_TIMESTAMP`] (floored to whole seconds); `attributes` is
/// optional and only its numeric `value` member is kept (see [`Event::value`]).
/// Unknown fields are ignored, but no value anywhere may nest deeper than
/// [`MAX_JSON_DEPTH`].
///
/// # Errors
///
/// Returns the first problem found as an [`EventError`]; its `Display` text
/// is meant to be sent back to the client.
///
/// Never panics, whatever the input.
pub fn parse_event(json: &[u8], max_id_len: usize) -> Result<Event<'_>, EventError> {
    match fast::parse(json, max_id_len) {
        Some(event) => Ok(event),
        None => parse_slow(json, max_id_len),
    }
}

/// Parses the event of `EVT.ADD <user_id> <json>`: `user` is the user (an id as
/// `user_id` must be), the JSON's `user_id` may be left out, and when present must be
/// the same user ([`EventError::NotTheKey`] otherwise).
pub fn parse_keyed<'a>(
    json: &'a [u8],
    max_id_len: usize,
    user: &'a [u8],
) -> Result<Event<'a>, EventError> {
    let user = text_of(user).ok_or(EventError::InvalidUtf8)?;
    if user.is_empty() {
        return Err(EventError::EmptyId(Field::UserId));
    }
    if user.len() > max_id_len {
        return Err(EventError::IdTooLong {
            field: Field::UserId,
            max_len: max_id_len,
        });
    }
    let event = match fast::parse_for(json, max_id_len, Some(user)) {
        Some(event) => event,
        None => slow::parse_slow_for(json, max_id_len, Some(user))?,
    };
    if event.user_id != user {
        return Err(EventError::NotTheKey);
    }
    Ok(event)
}
