//! Parsing of one analytics event from the JSON object a client sends.
//!
//! An event looks like
//! `{"user_id": "user123", "event_type": "click", "timestamp": 1678886400,
//! "attributes": {"item_id": "item456", "value": 10.5}}`.
//!
//! This is the server's hot path, so the parser is built for speed: a single
//! `serde_json` pass over the input with a hand-written map visitor, no
//! `serde_json::Value` tree, ids borrowed straight from the input unless they
//! contain escapes, and no allocation or string formatting unless the event is
//! rejected.
//!
//! Every member value is taken as a borrowed [`RawValue`] (a slice of the
//! input that serde_json has validated) and then examined by us. This keeps
//! type errors ours and precise (`"user_id": 1e400` is "must be a string"),
//! and it is the only way serde_json skips a value without converting its
//! numbers: a depth-counting `DeserializeSeed` would have to use
//! `deserialize_any`, which fails on valid JSON such as `1e400` (too large for
//! `f64`) inside an ignored field. serde_json skips raw values without
//! recursion, so nesting is bounded afterwards by a cheap scan of the
//! validated text, which applies our [`MAX_JSON_DEPTH`] everywhere (unknown
//! fields, `attributes`, `attributes.value`) rather than only serde_json's
//! built-in recursion limit of 128. For `attributes` the same single scan also
//! finds the `value` member, so the object is not parsed a second time.
//!
//! When an event has several problems, the first one met is reported.

mod fast;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer as _, MapAccess, Visitor};
use serde_json::error::Category;
use serde_json::value::RawValue;

/// Longest `user_id`/`event_type` accepted by default, in bytes (after unescaping).
pub const DEFAULT_MAX_ID_LEN: usize = 512;
/// Deepest JSON nesting accepted anywhere in an event (the top-level object is depth 1).
pub const MAX_JSON_DEPTH: usize = 32;
/// Largest timestamp accepted: Unix seconds must fit the store's u32 seconds (year 2106).
pub const MAX_TIMESTAMP: u64 = u32::MAX as u64;

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
        }
    }
}

impl std::error::Error for EventError {}

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

/// The serde_json path: every event, every error message. [`parse_event`] tries the
/// fast path first and comes here when that is unsure.
pub fn parse_slow(json: &[u8], max_id_len: usize) -> Result<Event<'_>, EventError> {
    // Validating UTF-8 once up front gives a precise error, and lets serde_json
    // run on a `&str`, where it no longer re-validates each string it meets.
    let text = std::str::from_utf8(json).map_err(|_| EventError::InvalidUtf8)?;

    // A top-level value of the wrong type gets a clear message without asking
    // serde_json, which would otherwise parse it (and fail on `1e400` with a
    // misleading "number out of range"). Bytes that cannot start any JSON value
    // fall through so serde_json explains the syntax error.
    let first = text.bytes().find(|b| !is_json_whitespace(*b));
    if let Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') = first {
        return Err(EventError::NotAnObject);
    }

    let mut de = serde_json::Deserializer::from_str(text);
    // Our own rejections travel through serde as an opaque error; the typed
    // reason waits here so it needs no string formatting or re-parsing.
    let mut rejection = None;
    let parsed = (&mut de).deserialize_map(EventVisitor {
        max_id_len,
        rejection: &mut rejection,
    });
    match parsed {
        Ok(event) => {
            // `end` fails only when non-whitespace follows the object.
            de.end().map_err(|_| EventError::TrailingCharacters)?;
            Ok(event)
        }
        Err(err) => Err(rejection.unwrap_or_else(|| json_error(&err))),
    }
}

/// JSON's four insignificant whitespace bytes (RFC 8259 section 2).
fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Turns a serde_json failure into an [`EventError`] without its
/// "at line 1 column 5" suffix.
fn json_error(err: &serde_json::Error) -> EventError {
    let reason = match err.classify() {
        // serde_json's EOF messages ("EOF while parsing a string") differ only
        // in detail a client cannot act on.
        Category::Eof => "unexpected end of input".to_owned(),
        // Syntax messages are fixed texts such as "expected value" and never
        // contain input; strip the position and, defensively, anything that
        // could break the single-line reply.
        Category::Syntax => {
            let message = err.to_string();
            let reason = message
                .rfind(" at line ")
                .and_then(|end| message.get(..end))
                .unwrap_or(&message);
            reason
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect()
        }
        // Data messages may quote the input, so they are not shown; they do not
        // occur in practice because every value we read is a `RawValue`.
        Category::Data | Category::Io => String::new(),
    };
    EventError::InvalidJson(reason)
}

/// Visits the top-level object, collecting the known fields.
struct EventVisitor<'r> {
    max_id_len: usize,
    /// Where a semantic rejection is stored before aborting the serde parse.
    rejection: &'r mut Option<EventError>,
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
        let EventVisitor {
            max_id_len,
            rejection,
        } = self;
        // Records the typed error and yields the opaque serde error that stops
        // the parse; allocation only happens on this rejection path.
        let mut reject = |error: EventError| -> A::Error {
            *rejection = Some(error);
            de::Error::custom("invalid event")
        };

        let mut user_id = None;
        let mut event_type = None;
        let mut timestamp = None;
        let mut seen_attributes = false;
        let mut value = None;

        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::UserId | TopKey::EventType => {
                    let (slot, field) = if matches!(key, TopKey::UserId) {
                        (&mut user_id, Field::UserId)
                    } else {
                        (&mut event_type, Field::EventType)
                    };
                    if slot.is_some() {
                        return Err(reject(EventError::DuplicateField(field)));
                    }
                    let raw: &'de RawValue = map.next_value()?;
                    *slot = Some(id_from_raw(raw, field, max_id_len).map_err(&mut reject)?);
                }
                TopKey::Timestamp => {
                    if timestamp.is_some() {
                        return Err(reject(EventError::DuplicateField(Field::Timestamp)));
                    }
                    let raw: &'de RawValue = map.next_value()?;
                    timestamp = Some(timestamp_from_raw(raw.get()).map_err(&mut reject)?);
                }
                TopKey::Attributes => {
                    if seen_attributes {
                        return Err(reject(EventError::DuplicateField(Field::Attributes)));
                    }
                    seen_attributes = true;
                    let raw: &'de RawValue = map.next_value()?;
                    value = value_from_attributes(raw.get()).map_err(&mut reject)?;
                }
                TopKey::Other => {
                    let raw: &'de RawValue = map.next_value()?;
                    check_member_depth(raw.get()).map_err(&mut reject)?;
                }
            }
        }

        let user_id = user_id.ok_or_else(|| reject(EventError::MissingField(Field::UserId)))?;
        let event_type =
            event_type.ok_or_else(|| reject(EventError::MissingField(Field::EventType)))?;
        let timestamp =
            timestamp.ok_or_else(|| reject(EventError::MissingField(Field::Timestamp)))?;
        Ok(Event {
            user_id,
            event_type,
            timestamp,
            value,
        })
    }
}

/// A top-level key, classified without allocating (serde_json hands us the
/// key borrowed from the input, or unescaped in its scratch buffer when it
/// contains escapes such as `"user\u005fid"`).
enum TopKey {
    UserId,
    EventType,
    Timestamp,
    Attributes,
    Other,
}

impl<'de> Deserialize<'de> for TopKey {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TopKeyVisitor)
    }
}

struct TopKeyVisitor;

impl Visitor<'_> for TopKeyVisitor {
    type Value = TopKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    // Borrowed and owned keys both arrive here via serde's default forwarding.
    fn visit_str<E: de::Error>(self, key: &str) -> Result<TopKey, E> {
        Ok(match key {
            "user_id" => TopKey::UserId,
            "event_type" => TopKey::EventType,
            "timestamp" => TopKey::Timestamp,
            "attributes" => TopKey::Attributes,
            _ => TopKey::Other,
        })
    }
}

/// Checks an id's raw JSON and returns it unescaped, borrowing when possible.
fn id_from_raw<'de>(
    raw: &'de RawValue,
    field: Field,
    max_len: usize,
) -> Result<Cow<'de, str>, EventError> {
    // Taking the id as a raw value (instead of asking serde_json for a string)
    // keeps type errors ours: a number such as `1e400` is "must be a string",
    // not a misleading number-range error.
    let text = raw.get();
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Err(EventError::NotAString(field));
    };
    let id = if inner.contains('\\') {
        // Rare path: let serde_json decode the escapes. It can still fail on a
        // lone surrogate such as `"\ud800"`, which cannot be a Rust string.
        Cow::Owned(serde_json::from_str::<String>(text).map_err(|e| json_error(&e))?)
    } else {
        Cow::Borrowed(inner)
    };
    if id.is_empty() {
        return Err(EventError::EmptyId(field));
    }
    if id.len() > max_len {
        return Err(EventError::IdTooLong { field, max_len });
    }
    Ok(id)
}

/// Converts the raw JSON of `timestamp` to whole seconds, exactly.
///
/// The decimal digits are floored directly instead of going through `f64`, so
/// there is no rounding at the edges (`4294967295.9999999999` is accepted as
/// `u32::MAX`, `0.99999999999999999999` is 0) and no float overflow (`1e400`
/// is simply out of range).
fn timestamp_from_raw(text: &str) -> Result<u32, EventError> {
    let bytes = text.as_bytes();
    // Fast path for the form nearly every client sends: a plain integer of at
    // most 10 digits, which cannot overflow the u64 accumulator.
    if !bytes.is_empty() && bytes.len() <= 10 && bytes.iter().all(u8::is_ascii_digit) {
        let seconds = bytes
            .iter()
            .fold(0_u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        return u32::try_from(seconds).map_err(|_| EventError::TimestampOutOfRange);
    }
    let (negative, unsigned) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((first, _)) if first.is_ascii_digit() => (false, bytes),
        _ => return Err(EventError::TimestampNotANumber),
    };

    // JSON number grammar: int [. frac] [e|E [+|-] exp]. serde_json has already
    // validated it, the checks below only keep this function total.
    let (int_digits, rest) = split_digits(unsigned);
    let (frac_digits, rest) = match rest.split_first() {
        Some((b'.', after_point)) => split_digits(after_point),
        _ => (&[][..], rest),
    };
    let exponent = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', after_e)) => {
            let (exp_negative, exp_text) = match after_e.split_first() {
                Some((b'-', r)) => (true, r),
                Some((b'+', r)) => (false, r),
                _ => (false, after_e),
            };
            let (exp_digits, rest) = split_digits(exp_text);
            if exp_digits.is_empty() || !rest.is_empty() {
                return Err(EventError::TimestampNotANumber);
            }
            // Saturating keeps absurd exponents meaningful: huge means out of
            // range, hugely negative means zero.
            let magnitude = exp_digits.iter().fold(0_i64, |acc, d| {
                acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
            });
            if exp_negative { -magnitude } else { magnitude }
        }
        Some(_) => return Err(EventError::TimestampNotANumber),
    };
    if int_digits.is_empty() {
        return Err(EventError::TimestampNotANumber);
    }

    let digits = int_digits.iter().chain(frac_digits).copied();
    if digits.clone().all(|d| d == b'0') {
        // Any spelling of zero, including `-0`, `-0.0` and `0e99`.
        return Ok(0);
    }
    if negative {
        return Err(EventError::TimestampNegative);
    }

    // The decimal point sits after `point` digits of int ++ frac; the integer
    // part is those digits, padded with zeros when the exponent moves the point
    // past the end.
    let point = i64::try_from(int_digits.len())
        .unwrap_or(i64::MAX)
        .saturating_add(exponent);
    let Ok(point) = usize::try_from(point) else {
        // Point before the first digit: 0.000ddd floors to zero.
        return Ok(0);
    };
    let mut seconds: u64 = 0;
    for d in digits.chain(std::iter::repeat(b'0')).take(point) {
        // Stays tiny: we stop as soon as it passes MAX_TIMESTAMP, so leading
        // zeros aside this runs at most 11 times however large `point` is.
        seconds = seconds * 10 + u64::from(d - b'0');
        if seconds > MAX_TIMESTAMP {
            return Err(EventError::TimestampOutOfRange);
        }
    }
    u32::try_from(seconds).map_err(|_| EventError::TimestampOutOfRange)
}

/// Splits off the leading ASCII digits.
fn split_digits(bytes: &[u8]) -> (&[u8], &[u8]) {
    let n = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    bytes.split_at(n)
}

/// Containers a top-level member's value may hold: the member sits inside the
/// top-level object (depth 1), so its own outermost bracket is already depth 2.
const MEMBER_DEPTH_LIMIT: usize = MAX_JSON_DEPTH - 1;

/// Extracts `value` from the raw JSON of `attributes`, or `None` when it is
/// absent or not a finite number. Only nesting depth can make this fail.
fn value_from_attributes(text: &str) -> Result<Option<f64>, EventError> {
    if !text.starts_with('{') {
        // `attributes` that is not an object carries no value, but must still
        // respect the depth limit.
        return check_member_depth(text).map(|()| None);
    }
    // One walk over the already-validated object both bounds its depth and
    // finds the last `value` member; this is cheaper than a second serde pass.
    let value_at = scan_member(text)?;
    Ok(value_at
        .and_then(|at| text.get(at..))
        .and_then(leading_finite_number))
}

/// Parses the JSON number at the start of `text` (after whitespace) as a
/// finite `f64`; `None` when a string, literal, array or object starts there,
/// or when the number is too large for `f64`.
fn leading_finite_number(text: &str) -> Option<f64> {
    let text = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let len = text
        .bytes()
        .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .count();
    let number = text.get(..len)?;
    if !number.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return None;
    }
    // Rust's parser accepts every JSON number spelling and rounds correctly;
    // out-of-range input becomes infinity, which is dropped.
    number.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Rejects the raw JSON (already validated) of a top-level member's value
/// when it nests deeper than [`MAX_JSON_DEPTH`] allows.
fn check_member_depth(text: &str) -> Result<(), EventError> {
    // Nesting one level too deep takes at least that many opening brackets
    // and twice as many bytes, so nearly every value is cleared without a
    // real scan (counting brackets vectorizes; the scan does not).
    let too_deep = MEMBER_DEPTH_LIMIT + 1;
    if text.len() < 2 * too_deep
        || text.bytes().filter(|&b| b == b'[' || b == b'{').count() < too_deep
    {
        return Ok(());
    }
    scan_member(text).map(|_| ())
}

/// Walks the raw JSON of a top-level member's value, which serde_json has
/// already validated, failing if it nests deeper than allowed.
///
/// When the value is an object, also returns the byte offset just after the
/// `:` of its last member named `value` (the last occurrence wins).
fn scan_member(text: &str) -> Result<Option<usize>, EventError> {
    let bytes = text.as_bytes();
    let mut depth = 0_usize;
    // The last string (quotes included) that closed at depth 1. In valid JSON
    // a `:` at depth 1 follows its key directly, so this is that key.
    let mut last_string = 0..0;
    let mut value_at = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                let start = i;
                i = string_end(bytes, i + 1);
                if depth == 1 {
                    last_string = start..i.saturating_add(1);
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MEMBER_DEPTH_LIMIT {
                    return Err(EventError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 1 && text.get(last_string.clone()).is_some_and(is_value_key) => {
                value_at = Some(i + 1);
            }
            _ => {}
        }
        i += 1;
    }
    Ok(value_at)
}

/// Index of the `"` that closes a string whose contents start at `i`, or the
/// input length if there is none (impossible in validated JSON).
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return i,
            // Skip the escaped byte so `\"` does not end the string.
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Whether a raw JSON key (quotes included) names `value`, escapes decoded.
fn is_value_key(raw_key: &str) -> bool {
    if raw_key == "\"value\"" {
        return true;
    }
    // Rare: an escaped spelling such as "val\u0075e" (at most 6 bytes per
    // character plus quotes, so longer keys cannot be it).
    raw_key.contains('\\')
        && raw_key.len() <= 32
        && serde_json::from_str::<String>(raw_key).is_ok_and(|key| key == "value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEED: &str = r#"{"user_id": "user123", "event_type": "click", "timestamp": 1678886400, "attributes": {"item_id": "item456", "value": 10.5}}"#;

    /// Parses with the default id limit, expecting success.
    fn ok(json: &str) -> Event<'_> {
        match parse_event(json.as_bytes(), DEFAULT_MAX_ID_LEN) {
            Ok(event) => event,
            Err(e) => panic!("expected {json:?} to parse, got error: {e}"),
        }
    }

    /// Parses with the default id limit, expecting failure; returns the message.
    fn err(json: &str) -> String {
        err_bytes(json.as_bytes())
    }

    fn err_bytes(json: &[u8]) -> String {
        match parse_event(json, DEFAULT_MAX_ID_LEN) {
            Ok(event) => panic!("expected {json:?} to fail, got {event:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// A valid event whose `timestamp` raw JSON is `ts`.
    fn with_ts(ts: &str) -> String {
        format!(r#"{{"user_id":"u","event_type":"e","timestamp":{ts}}}"#)
    }

    /// A valid event whose `attributes` raw JSON is `attrs`.
    fn with_attrs(attrs: &str) -> String {
        format!(r#"{{"user_id":"u","event_type":"e","timestamp":1,"attributes":{attrs}}}"#)
    }

    /// A valid event with an extra member `"extra": value`.
    fn with_extra(value: &str) -> String {
        format!(r#"{{"user_id":"u","event_type":"e","extra":{value},"timestamp":1}}"#)
    }

    /// `depth` nested arrays around a `1`.
    fn nested_arrays(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// `depth` nested objects `{"k":{"k":...1}}`.
    fn nested_objects(depth: usize) -> String {
        format!("{}1{}", r#"{"k":"#.repeat(depth), "}".repeat(depth))
    }

    fn timestamp_of(ts: &str) -> Result<u32, String> {
        parse_event(with_ts(ts).as_bytes(), DEFAULT_MAX_ID_LEN)
            .map(|e| e.timestamp)
            .map_err(|e| e.to_string())
    }

    fn value_of(attrs: &str) -> Option<f64> {
        ok(&with_attrs(attrs)).value
    }

    #[test]
    fn seed_example() {
        let event = ok(SEED);
        assert_eq!(
            event,
            Event {
                user_id: Cow::Borrowed("user123"),
                event_type: Cow::Borrowed("click"),
                timestamp: 1_678_886_400,
                value: Some(10.5),
            }
        );
        // No escapes: both ids borrow from the input.
        assert!(matches!(event.user_id, Cow::Borrowed(_)));
        assert!(matches!(event.event_type, Cow::Borrowed(_)));
    }

    #[test]
    fn minimal_event_without_attributes() {
        let event = ok(r#"{"user_id":"a","event_type":"b","timestamp":0}"#);
        assert_eq!(event.user_id, "a");
        assert_eq!(event.event_type, "b");
        assert_eq!(event.timestamp, 0);
        assert_eq!(event.value, None);
    }

    #[test]
    fn escapes_in_ids_are_decoded() {
        let event = ok(
            r#"{"user_id":"user\u0041","event_type":"a\"b\\c\/d\n\t\ud83d\ude00","timestamp":1}"#,
        );
        assert_eq!(event.user_id, "userA");
        assert!(matches!(event.user_id, Cow::Owned(_)));
        assert_eq!(event.event_type, "a\"b\\c/d\n\t\u{1F600}");
        assert!(matches!(event.event_type, Cow::Owned(_)));
    }

    #[test]
    fn escapes_in_keys_still_match() {
        let event = ok(
            r#"{"user\u005fid":"u","event\u005Ftype":"e","time\u0073tamp":7,"\u0061ttributes":{"val\u0075e":2.5}}"#,
        );
        assert_eq!(event.user_id, "u");
        assert_eq!(event.event_type, "e");
        assert_eq!(event.timestamp, 7);
        assert_eq!(event.value, Some(2.5));
        // An escaped key is still a duplicate of its plain spelling.
        assert_eq!(
            err(r#"{"user_id":"a","user\u005fid":"b","event_type":"e","timestamp":1}"#),
            "duplicate field 'user_id'"
        );
    }

    #[test]
    fn unicode_ids() {
        let event = ok(r#"{"user_id":"ユーザー","event_type":"😀 clíck","timestamp":1}"#);
        assert_eq!(event.user_id, "ユーザー");
        assert_eq!(event.event_type, "😀 clíck");
        assert!(matches!(event.user_id, Cow::Borrowed(_)));
    }

    #[test]
    fn empty_ids_rejected() {
        assert_eq!(
            err(r#"{"user_id":"","event_type":"e","timestamp":1}"#),
            "'user_id' must not be empty"
        );
        assert_eq!(
            err(r#"{"user_id":"u","event_type":"","timestamp":1}"#),
            "'event_type' must not be empty"
        );
    }

    #[test]
    fn id_length_limit_default() {
        let max = "a".repeat(DEFAULT_MAX_ID_LEN);
        let over = "a".repeat(DEFAULT_MAX_ID_LEN + 1);
        let json = format!(r#"{{"user_id":"{max}","event_type":"{max}","timestamp":1}}"#);
        let event = ok(&json);
        assert_eq!(event.user_id.len(), 512);
        assert_eq!(event.event_type.len(), 512);
        assert_eq!(
            err(&format!(
                r#"{{"user_id":"{over}","event_type":"e","timestamp":1}}"#
            )),
            "'user_id' is longer than 512 bytes"
        );
        assert_eq!(
            err(&format!(
                r#"{{"user_id":"u","event_type":"{over}","timestamp":1}}"#
            )),
            "'event_type' is longer than 512 bytes"
        );
    }

    #[test]
    fn id_length_is_measured_in_bytes_after_unescaping() {
        let parse = |user: &str| {
            let json = format!(r#"{{"user_id":"{user}","event_type":"e","timestamp":1}}"#);
            parse_event(json.as_bytes(), 8)
                .map(|e| e.user_id.into_owned())
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("abcdefgh"), Ok("abcdefgh".to_owned()));
        assert_eq!(
            parse("abcdefghi"),
            Err("'user_id' is longer than 8 bytes".to_owned())
        );
        // 8 escapes of 6 raw bytes each decode to 8 bytes: accepted.
        assert_eq!(parse(&r"\u0041".repeat(8)), Ok("A".repeat(8)));
        assert_eq!(
            parse(&r"\u0041".repeat(9)),
            Err("'user_id' is longer than 8 bytes".to_owned())
        );
        // 'é' is two bytes.
        assert_eq!(parse("éééé"), Ok("éééé".to_owned()));
        assert_eq!(
            parse("ééééé"),
            Err("'user_id' is longer than 8 bytes".to_owned())
        );
        // The configured limit is the one reported.
        let json = r#"{"user_id":"u","event_type":"abc","timestamp":1}"#;
        assert_eq!(
            parse_event(json.as_bytes(), 2).map_err(|e| e.to_string()),
            Err("'event_type' is longer than 2 bytes".to_owned())
        );
    }

    #[test]
    fn ids_must_be_strings() {
        for bad in [
            "1",
            "1e400",
            "-1",
            "null",
            "true",
            "false",
            "[]",
            r#"["u"]"#,
            r#"{"a":"u"}"#,
        ] {
            assert_eq!(
                err(&format!(
                    r#"{{"user_id":{bad},"event_type":"e","timestamp":1}}"#
                )),
                "'user_id' must be a string",
                "user_id {bad}"
            );
            assert_eq!(
                err(&format!(
                    r#"{{"user_id":"u","event_type":{bad},"timestamp":1}}"#
                )),
                "'event_type' must be a string",
                "event_type {bad}"
            );
        }
    }

    #[test]
    fn ignored_values_are_none_not_errors() {
        for attrs in [
            r#"{"value":"10.5"}"#,
            r#"{"value":null}"#,
            r#"{"value":true}"#,
            r#"{"value":false}"#,
            r#"{"value":[10.5]}"#,
            r#"{"value":{"x":10.5}}"#,
            r#"{"item_id":"item456"}"#,
            r#"{}"#,
            r#""attrs""#,
            "10.5",
            "[10.5]",
            "[]",
            "null",
            "true",
            r#"{"value":1e400}"#,
            r#"{"value":-1e400}"#,
            "1e400",
        ] {
            assert_eq!(value_of(attrs), None, "attributes {attrs}");
        }
        // No attributes at all.
        assert_eq!(ok(&with_ts("1")).value, None);
    }

    #[test]
    fn numeric_values() {
        assert_eq!(value_of(r#"{"value":10}"#), Some(10.0));
        assert_eq!(value_of(r#"{"value":-3.25}"#), Some(-3.25));
        assert_eq!(value_of(r#"{"value":1.5e3}"#), Some(1500.0));
        assert_eq!(value_of(r#"{"value":2E-2}"#), Some(0.02));
        assert_eq!(value_of(r#"{"value":1e308}"#), Some(1e308));
        assert_eq!(value_of(r#"{"value":0}"#), Some(0.0));
        let neg_zero = value_of(r#"{"value":-0}"#);
        assert_eq!(neg_zero, Some(0.0));
        assert!(neg_zero.is_some_and(f64::is_sign_negative));
        // Other members, including ones that overflow f64, are skipped.
        assert_eq!(
            value_of(r#"{"a":1e400,"b":[{"c":null}],"value":7,"d":"x"}"#),
            Some(7.0)
        );
    }

    #[test]
    fn duplicate_value_last_wins() {
        assert_eq!(value_of(r#"{"value":1,"value":2}"#), Some(2.0));
        assert_eq!(value_of(r#"{"value":1,"value":"x"}"#), None);
        assert_eq!(value_of(r#"{"value":"x","value":3}"#), Some(3.0));
        assert_eq!(value_of(r#"{"value":1,"val\u0075e":4}"#), Some(4.0));
    }

    #[test]
    fn only_the_direct_value_member_counts() {
        // Whitespace around the member is fine.
        assert_eq!(value_of("{ \"value\" :\n 10.5 , \"x\":1}"), Some(10.5));
        assert_eq!(value_of("{\"value\":\t-2\r\n}"), Some(-2.0));
        // `value` nested deeper, or appearing as a string, is not attributes.value.
        assert_eq!(value_of(r#"{"a":{"value":1}}"#), None);
        assert_eq!(value_of(r#"{"a":[{"value":1}]}"#), None);
        assert_eq!(value_of(r#"{"a":"value","b":2}"#), None);
        assert_eq!(value_of(r#"{"value":1,"a":{"value":"x"}}"#), Some(1.0));
        assert_eq!(value_of(r#"[{"value":1}]"#), None);
        // Keys that merely resemble `value`.
        assert_eq!(value_of(r#"{"\"value\"":1}"#), None);
        assert_eq!(value_of(r#"{"value\u0000":1}"#), None);
        assert_eq!(value_of(r#"{"Value":1}"#), None);
        assert_eq!(value_of(r#"{"values":1}"#), None);
        // Strings with brackets, colons and escaped quotes do not confuse it.
        assert_eq!(
            value_of(r#"{"a":"[{\":","b\\":"}]","value":3,"c":":"}"#),
            Some(3.0)
        );
    }

    #[test]
    fn timestamp_forms() {
        assert_eq!(timestamp_of("1678886400"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1678886400.9"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1678886400.0"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1.6788864e9"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1.6788864E+9"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("16788864009e-1"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("0.0000000001e19"), Ok(1_000_000_000));
        assert_eq!(timestamp_of("0"), Ok(0));
        assert_eq!(timestamp_of("0.5"), Ok(0));
        assert_eq!(timestamp_of("0.99999999999999999999"), Ok(0));
        assert_eq!(timestamp_of("1e-400"), Ok(0));
        assert_eq!(timestamp_of("5e-99999999999999999999999"), Ok(0));
        assert_eq!(timestamp_of("0e99999999999999999999999"), Ok(0));
        assert_eq!(timestamp_of("-0"), Ok(0));
        assert_eq!(timestamp_of("-0.0"), Ok(0));
        assert_eq!(timestamp_of("-0e5"), Ok(0));
        assert_eq!(timestamp_of("4294967295"), Ok(u32::MAX));
        assert_eq!(timestamp_of("4294967295.9999999999"), Ok(u32::MAX));
        assert_eq!(timestamp_of("4.294967295e9"), Ok(u32::MAX));
    }

    #[test]
    fn timestamp_rejections() {
        let out = Err("'timestamp' is out of range".to_owned());
        assert_eq!(timestamp_of("4294967296"), out);
        assert_eq!(timestamp_of("4.294967296e9"), out);
        assert_eq!(timestamp_of("1e10"), out);
        assert_eq!(timestamp_of("12345678901234567890123"), out);
        assert_eq!(timestamp_of("1e400"), out);
        assert_eq!(timestamp_of("1e99999999999999999999999"), out);
        let negative = Err("'timestamp' must not be negative".to_owned());
        assert_eq!(timestamp_of("-1"), negative);
        assert_eq!(timestamp_of("-0.5"), negative);
        assert_eq!(timestamp_of("-1e400"), negative);
        assert_eq!(timestamp_of("-1678886400"), negative);
        let not_number = Err("'timestamp' must be a number".to_owned());
        for bad in [
            r#""1678886400""#,
            "null",
            "true",
            "false",
            "[1]",
            r#"{"s":1}"#,
        ] {
            assert_eq!(timestamp_of(bad), not_number, "timestamp {bad}");
        }
    }

    #[test]
    fn missing_required_fields() {
        assert_eq!(
            err(r#"{"event_type":"e","timestamp":1}"#),
            "missing field 'user_id'"
        );
        assert_eq!(
            err(r#"{"user_id":"u","timestamp":1}"#),
            "missing field 'event_type'"
        );
        assert_eq!(
            err(r#"{"user_id":"u","event_type":"e","attributes":{"value":1}}"#),
            "missing field 'timestamp'"
        );
        assert_eq!(err("{}"), "missing field 'user_id'");
    }

    #[test]
    fn duplicate_fields_rejected() {
        assert_eq!(
            err(r#"{"user_id":"a","event_type":"e","timestamp":1,"user_id":"b"}"#),
            "duplicate field 'user_id'"
        );
        assert_eq!(
            err(r#"{"user_id":"a","event_type":"e","event_type":"e","timestamp":1}"#),
            "duplicate field 'event_type'"
        );
        assert_eq!(
            err(r#"{"user_id":"a","event_type":"e","timestamp":1,"timestamp":1}"#),
            "duplicate field 'timestamp'"
        );
        assert_eq!(
            err(
                r#"{"user_id":"a","event_type":"e","timestamp":1,"attributes":null,"attributes":{}}"#
            ),
            "duplicate field 'attributes'"
        );
    }

    #[test]
    fn unknown_fields_of_every_type_are_ignored() {
        for value in [
            r#""text""#,
            r#""[[[[{{{{ \" \\ ]]""#,
            "0",
            "-12.5e-3",
            "1e400",
            "-1e400",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            r#"[1,"two",[3],{"four":4},null]"#,
            r#"{"a":{"b":[true,false,{"c":"]}"}]}}"#,
            r#"{"user_id":5,"timestamp":"x"}"#,
        ] {
            let json = with_extra(value);
            let event = ok(&json);
            assert_eq!(
                (
                    event.user_id.as_ref(),
                    event.event_type.as_ref(),
                    event.timestamp
                ),
                ("u", "e", 1),
                "extra {value}"
            );
        }
        // Several unknown fields, any order, with whitespace everywhere.
        let event = ok(
            " \n{ \"z\" : [ ] ,\t\"timestamp\" :\r\n 5 , \"event_type\":\"e\" , \"a\":{},\"user_id\" : \"u\" } \n",
        );
        assert_eq!(event.timestamp, 5);
        assert_eq!(event.user_id, "u");
    }

    #[test]
    fn nesting_limit_in_unknown_field() {
        // The top-level object is depth 1, so the member may add 31 levels.
        assert_eq!(
            ok(&with_extra(&nested_arrays(MAX_JSON_DEPTH - 1))).timestamp,
            1
        );
        assert_eq!(
            ok(&with_extra(&nested_objects(MAX_JSON_DEPTH - 1))).timestamp,
            1
        );
        assert_eq!(
            err(&with_extra(&nested_arrays(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
        assert_eq!(
            err(&with_extra(&nested_objects(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
        // Far beyond serde_json's own recursion limit: still our error, no
        // stack overflow.
        assert_eq!(
            err(&with_extra(&nested_arrays(100_000))),
            "nested deeper than 32 levels"
        );
        // The shortest spellings of 31 and 32 extra levels (`[[]]`-style).
        let shortest = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert_eq!(ok(&with_extra(&shortest(MAX_JSON_DEPTH - 1))).timestamp, 1);
        assert_eq!(
            err(&with_extra(&shortest(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
        // Brackets inside strings do not count.
        let in_string = format!(r#"["{}"]"#, "[".repeat(100));
        assert_eq!(ok(&with_extra(&in_string)).timestamp, 1);
    }

    #[test]
    fn nesting_limit_inside_attributes() {
        // attributes (depth 2) + member container levels (30) = 32.
        let allowed = format!(r#"{{"other":{}}}"#, nested_arrays(MAX_JSON_DEPTH - 2));
        assert_eq!(value_of(&allowed), None);
        let too_deep = format!(r#"{{"other":{}}}"#, nested_arrays(MAX_JSON_DEPTH - 1));
        assert_eq!(err(&with_attrs(&too_deep)), "nested deeper than 32 levels");
        // attributes itself as deep arrays.
        assert_eq!(value_of(&nested_arrays(MAX_JSON_DEPTH - 1)), None);
        assert_eq!(
            err(&with_attrs(&nested_arrays(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
    }

    #[test]
    fn nesting_limit_inside_attributes_value() {
        let allowed = format!(r#"{{"value":{}}}"#, nested_objects(MAX_JSON_DEPTH - 2));
        assert_eq!(value_of(&allowed), None);
        let too_deep = format!(r#"{{"value":{}}}"#, nested_objects(MAX_JSON_DEPTH - 1));
        assert_eq!(err(&with_attrs(&too_deep)), "nested deeper than 32 levels");
    }

    #[test]
    fn trailing_bytes() {
        assert_eq!(
            err(&format!("{SEED} x")),
            "trailing characters after the JSON object"
        );
        assert_eq!(
            err(&format!("{SEED}{SEED}")),
            "trailing characters after the JSON object"
        );
        assert_eq!(
            err(&format!("{SEED},")),
            "trailing characters after the JSON object"
        );
        assert_eq!(ok(&format!("{SEED} \t\r\n ")).timestamp, 1_678_886_400);
        assert_eq!(ok(&format!(" \t\r\n{SEED}")).timestamp, 1_678_886_400);
    }

    #[test]
    fn top_level_must_be_an_object() {
        for json in [
            "[]",
            "[1,2]",
            r#"["user_id","u"]"#,
            r#""string""#,
            "123",
            "1e400",
            "-1",
            "true",
            "false",
            "null",
            "  [",
        ] {
            assert_eq!(err(json), "expected a JSON object", "input {json}");
        }
    }

    #[test]
    fn invalid_json() {
        assert_eq!(err(r#"{"user_id": }"#), "not valid JSON (expected value)");
        assert_eq!(
            err(r#"{user_id: "u"}"#),
            "not valid JSON (key must be a string)"
        );
        assert_eq!(err(r#"{"user_id" "u"}"#), "not valid JSON (expected `:`)");
        assert_eq!(
            err(r#"{"user_id":"u","event_type":"e","timestamp":1,}"#),
            "not valid JSON (trailing comma)"
        );
        assert_eq!(
            err(r#"{"user_id":"u" "event_type":"e"}"#),
            "not valid JSON (expected `,` or `}`)"
        );
        assert_eq!(
            err(r#"{"user_id":"u","event_type":"e","timestamp":01}"#),
            "not valid JSON (invalid number)"
        );
        assert_eq!(
            err(r#"{"user_id":"u","event_type":"e","timestamp":1,"x":tru}"#),
            "not valid JSON (expected ident)"
        );
        assert_eq!(
            err(r#"{"user_id":"u","event_type":"e","timestamp":1"#),
            "not valid JSON (unexpected end of input)"
        );
        assert_eq!(
            err(r#"{"user_id":"u"#),
            "not valid JSON (unexpected end of input)"
        );
        assert_eq!(err("hello"), "not valid JSON (expected value)");
        assert_eq!(
            err("{\"user_id\":\"a\u{1}b\",\"event_type\":\"e\",\"timestamp\":1}"),
            r"not valid JSON (control character (\u0000-\u001F) found while parsing a string)"
        );
        assert_eq!(
            err(r#"{"user_id":"\q","event_type":"e","timestamp":1}"#),
            "not valid JSON (invalid escape)"
        );
        assert_eq!(
            err(r#"{"user_id":"\ud800","event_type":"e","timestamp":1}"#),
            "not valid JSON (unexpected end of hex escape)"
        );
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(
            err_bytes(b"{\"user_id\":\"\xff\",\"event_type\":\"e\",\"timestamp\":1}"),
            "input is not valid UTF-8"
        );
        assert_eq!(err_bytes(b"\xc3"), "input is not valid UTF-8");
        assert_eq!(
            err_bytes(
                b"{\"user_id\":\"u\",\"event_type\":\"e\",\"timestamp\":1,\"x\":\"\xed\xa0\x80\"}"
            ),
            "input is not valid UTF-8"
        );
    }

    #[test]
    fn empty_input() {
        assert_eq!(err(""), "not valid JSON (unexpected end of input)");
        assert_eq!(err(" \n\t"), "not valid JSON (unexpected end of input)");
    }

    #[test]
    fn error_is_std_error_and_messages_are_single_line() {
        let e: Box<dyn std::error::Error> = Box::new(EventError::MissingField(Field::Timestamp));
        assert_eq!(e.to_string(), "missing field 'timestamp'");
        let all = [
            EventError::InvalidUtf8,
            EventError::InvalidJson(String::new()),
            EventError::InvalidJson("expected value".into()),
            EventError::NotAnObject,
            EventError::TrailingCharacters,
            EventError::TooDeep,
            EventError::MissingField(Field::UserId),
            EventError::DuplicateField(Field::Attributes),
            EventError::NotAString(Field::EventType),
            EventError::EmptyId(Field::UserId),
            EventError::IdTooLong {
                field: Field::UserId,
                max_len: 512,
            },
            EventError::TimestampNotANumber,
            EventError::TimestampNegative,
            EventError::TimestampOutOfRange,
        ];
        let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "input is not valid UTF-8",
                "not valid JSON",
                "not valid JSON (expected value)",
                "expected a JSON object",
                "trailing characters after the JSON object",
                "nested deeper than 32 levels",
                "missing field 'user_id'",
                "duplicate field 'attributes'",
                "'event_type' must be a string",
                "'user_id' must not be empty",
                "'user_id' is longer than 512 bytes",
                "'timestamp' must be a number",
                "'timestamp' must not be negative",
                "'timestamp' is out of range",
            ]
        );
    }

    // ---- property tests ----

    /// Errors must never break the single-line `-ERR` reply.
    fn assert_single_line(result: &Result<Event<'_>, EventError>) {
        if let Err(e) = result {
            let text = e.to_string();
            assert!(!text.contains(['\r', '\n']), "multi-line error {text:?}");
            assert!(!text.is_empty());
        }
    }

    /// Encodes `s` as a JSON string literal, optionally as all `\uXXXX` escapes.
    fn json_string(s: &str, escape_all: bool) -> String {
        if !escape_all {
            return serde_json::to_string(s).unwrap_or_default();
        }
        let mut out = String::from("\"");
        for unit in s.encode_utf16() {
            out.push_str(&format!("\\u{unit:04x}"));
        }
        out.push('"');
        out
    }

    fn ws() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", " ", "\n", "\t", "\r\n", "  "]).prop_map(str::to_owned)
    }

    fn id() -> impl Strategy<Value = String> {
        // Up to 40 chars of 4 bytes at most stays under the 512-byte limit.
        prop::collection::vec(any::<char>(), 1..40).prop_map(String::from_iter)
    }

    /// Small arbitrary JSON for unknown fields and other attribute members.
    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("1e400".to_owned()),
            any::<String>().prop_map(|s| json_string(&s, false)),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec(("[a-z_]{0,6}", inner), 0..4).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{}:{v}", json_string(&k, false)))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// A timestamp in one of several JSON spellings that all floor to `t`.
    fn timestamp_text() -> impl Strategy<Value = (u32, String)> {
        (any::<u32>(), 0..5_u8, "[0-9]{1,6}").prop_map(|(t, form, frac)| {
            let text = match form {
                0 => t.to_string(),
                1 => format!("{t}.{frac}"),
                2 => format!("{}e-1", u64::from(t) * 10),
                3 => {
                    // Scientific: d.ddd e(n-1), exact.
                    let digits = t.to_string();
                    let (head, tail) = digits.split_at(1);
                    let tail = if tail.is_empty() { "0" } else { tail };
                    format!("{head}.{tail}E+{}", digits.len() - 1)
                }
                _ => format!("{t}.{frac}e0"),
            };
            (t, text)
        })
    }

    /// `attributes` JSON and the value it should yield.
    fn attributes() -> impl Strategy<Value = Option<(String, Option<f64>)>> {
        let value = prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| (serde_json::to_string(&v).unwrap_or_default(), Some(v))),
            any::<i32>().prop_map(|n| (n.to_string(), Some(f64::from(n)))),
            json_value().prop_filter_map("not a number", |v| {
                (!v.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']))
                    .then_some((v, None))
            }),
        ];
        prop::option::of(
            (
                value,
                // Other member names never spell `value` (no 'v').
                prop::collection::vec(("[a-uw-z]{1,5}", json_value()), 0..3),
                any::<bool>(),
                ws(),
                ws(),
            )
                .prop_flat_map(
                    |((value_json, expected), others, include_value, ws1, ws2)| {
                        let mut members: Vec<String> = others
                            .into_iter()
                            .map(|(k, v)| format!("{ws1}\"{k}\"{ws2}:{ws1}{v}{ws2}"))
                            .collect();
                        if include_value {
                            members.push(format!("{ws2}\"value\"{ws1}:{ws2}{value_json}{ws1}"));
                        }
                        let expected = if include_value { expected } else { None };
                        (Just(members).prop_shuffle(), Just(expected))
                    },
                )
                .prop_map(|(members, expected)| (format!("{{{}}}", members.join(",")), expected)),
        )
    }

    /// A container nested `depth` levels deep (arrays and objects mixed as
    /// `shape` says), with a string full of brackets at the bottom.
    fn nested_mixed(depth: usize, shape: &[bool]) -> String {
        let mut open = String::new();
        let mut close = String::new();
        for level in 0..depth {
            if shape.get(level).copied().unwrap_or(false) {
                open.push_str(r#"{"k\"[":"#);
                close.insert(0, '}');
            } else {
                open.push_str("[0,");
                close.insert(0, ']');
            }
        }
        format!(r#"{open}"]]}}{{[\\"{close}"#)
    }

    /// A valid event: (JSON bytes, expected user_id, event_type, timestamp, value).
    fn valid_event() -> impl Strategy<Value = (String, String, String, u32, Option<f64>)> {
        (
            id(),
            id(),
            timestamp_text(),
            attributes(),
            prop::collection::vec(("[a-z]{1,8}", json_value()), 0..3),
            any::<(bool, bool)>(),
            prop::collection::vec(ws(), 8),
        )
            .prop_flat_map(
                |(user, kind, (ts, ts_text), attrs, unknown, (esc_user, esc_kind), spaces)| {
                    let mut members = vec![
                        format!("\"user_id\":{}", json_string(&user, esc_user)),
                        format!("\"event_type\":{}", json_string(&kind, esc_kind)),
                        format!("\"timestamp\":{ts_text}"),
                    ];
                    let mut value = None;
                    if let Some((attrs_json, expected)) = attrs {
                        members.push(format!("\"attributes\":{attrs_json}"));
                        value = expected;
                    }
                    for (k, v) in unknown {
                        // Keep unknown names clear of the four known ones.
                        members.push(format!("\"x_{k}\":{v}"));
                    }
                    (
                        Just(members).prop_shuffle(),
                        Just((user, kind, ts, value, spaces)),
                    )
                },
            )
            .prop_map(|(members, (user, kind, ts, value, spaces))| {
                let pad = |i: usize| {
                    spaces
                        .get(i % spaces.len().max(1))
                        .cloned()
                        .unwrap_or_default()
                };
                let body: Vec<String> = members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| format!("{}{m}{}", pad(i), pad(i + 3)))
                    .collect();
                let json = format!("{}{{{}}}{}", pad(1), body.join(","), pad(2));
                (json, user, kind, ts, value)
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            assert_single_line(&parse_event(&bytes, DEFAULT_MAX_ID_LEN));
        }

        #[test]
        fn arbitrary_jsonish_text_never_panics(text in r#"[{}\[\]":,0-9eE.+\- a-z\\]{0,64}"#) {
            assert_single_line(&parse_event(text.as_bytes(), DEFAULT_MAX_ID_LEN));
        }

        #[test]
        fn mutated_events_never_panic(
            (json, ..) in valid_event(),
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            truncate in any::<bool>(),
        ) {
            let mut bytes = json.into_bytes();
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b = byte;
                }
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            assert_single_line(&parse_event(&bytes, DEFAULT_MAX_ID_LEN));
        }

        #[test]
        fn generated_events_parse_to_their_values(
            (json, user, kind, ts, value) in valid_event()
        ) {
            let event = parse_event(json.as_bytes(), DEFAULT_MAX_ID_LEN);
            prop_assert!(event.is_ok(), "{json} -> {event:?}");
            if let Ok(event) = event {
                prop_assert_eq!(event.user_id.as_ref(), user.as_str());
                prop_assert_eq!(event.event_type.as_ref(), kind.as_str());
                prop_assert_eq!(event.timestamp, ts);
                // Compare bit patterns so -0.0 and 0.0 are told apart.
                prop_assert_eq!(event.value.map(f64::to_bits), value.map(f64::to_bits), "{}", json);
            }
        }

        #[test]
        fn depth_limit_is_exact(depth in 1..40_usize, shape in prop::collection::vec(any::<bool>(), 40)) {
            let nested = nested_mixed(depth, &shape);
            // As an unknown member: the top-level object adds one level.
            let json = with_extra(&nested);
            let result = parse_event(json.as_bytes(), DEFAULT_MAX_ID_LEN);
            prop_assert_eq!(result.is_ok(), depth < MAX_JSON_DEPTH, "{}", nested);
            // As attributes.value: the top-level object and attributes add two.
            let attrs = format!(r#"{{"value":{nested}}}"#);
            let json = with_attrs(&attrs);
            let result = parse_event(json.as_bytes(), DEFAULT_MAX_ID_LEN);
            prop_assert_eq!(result.is_ok(), depth < MAX_JSON_DEPTH - 1, "{}", attrs);
            if let Err(e) = result {
                prop_assert_eq!(e, EventError::TooDeep);
            }
        }

        #[test]
        fn timestamps_floor_like_exact_arithmetic(secs in any::<u32>(), frac in "[0-9]{0,12}", shift in 0..12_u32) {
            // secs.frac written as (secs.frac * 10^shift)e-shift.
            let frac_part = if frac.is_empty() { String::new() } else { format!(".{frac}") };
            let plain = format!("{secs}{frac_part}");
            prop_assert_eq!(timestamp_of(&plain), Ok(secs));
            let mut digits = format!("{secs}{frac}");
            let point = secs.to_string().len() + shift as usize;
            while digits.len() < point {
                digits.push('0');
            }
            let (int, rest) = digits.split_at(point);
            // JSON forbids leading zeros ("05e-1").
            let int = match int.trim_start_matches('0') {
                "" => "0",
                trimmed => trimmed,
            };
            let rest = if rest.is_empty() { String::new() } else { format!(".{rest}") };
            let shifted = format!("{int}{rest}e-{shift}");
            prop_assert_eq!(timestamp_of(&shifted), Ok(secs), "{}", shifted);
        }
    }
}
