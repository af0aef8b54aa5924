//! The serde_json path: every event, every error message.
//!
//! A single `serde_json` pass over the input with a hand-written map visitor, no
//! `serde_json::Value` tree.
//!
//! Every member value is taken as a borrowed [`RawValue`] (a slice of the
//! input that serde_json has validated) and then examined by us. This keeps
//! type errors ours and precise (`"user_id": 1e400` is "must be a string"),
//! and it is the only way serde_json skips a value without converting its
//! numbers: a depth-counting `DeserializeSeed` would have to use
//! `deserialize_any`, which fails on valid JSON such as `1e400` (too large for
//! `f64`) inside an ignored field. serde_json skips raw values without
//! recursion, so nesting is bounded afterwards by a cheap scan of the
//! validated text, which applies our [`MAX_JSON_DEPTH`](super::MAX_JSON_DEPTH) everywhere (unknown
//! fields, `attributes`, `attributes.value`) rather than only serde_json's
//! built-in recursion limit of 128. For `attributes` the same single scan also
//! finds the `value` member, so the object is not parsed a second time.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer as _, MapAccess, Visitor};
use serde_json::error::Category;
use serde_json::value::RawValue;

use super::member::{check_member_depth, value_from_attributes};
use super::timestamp::timestamp_from_raw;
use super::{Event, EventError, Field};

#[cfg(test)]
mod tests;

/// The serde_json path: every event, every error message. [`parse_event`](super::parse_event) tries the
/// fast path first and comes here when that is unsure.
pub fn parse_slow(json: &[u8], max_id_len: usize) -> Result<Event<'_>, EventError> {
    parse_slow_for(json, max_id_len, None)
}

/// [`parse_slow`], with `user` standing for a `user_id` the JSON leaves out.
pub fn parse_slow_for<'a>(
    json: &'a [u8],
    max_id_len: usize,
    user: Option<&'a str>,
) -> Result<Event<'a>, EventError> {
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
        default_user: user,
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
struct EventVisitor<'r, 'u> {
    max_id_len: usize,
    /// The `user_id` when the object has none (keyed `EVT.ADD`).
    default_user: Option<&'u str>,
    /// Where a semantic rejection is stored before aborting the serde parse.
    rejection: &'r mut Option<EventError>,
}

impl<'de, 'u: 'de> Visitor<'de> for EventVisitor<'_, 'u> {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
        let EventVisitor {
            max_id_len,
            default_user,
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

        let user_id = user_id
            .or(default_user.map(Cow::Borrowed))
            .ok_or_else(|| reject(EventError::MissingField(Field::UserId)))?;
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
