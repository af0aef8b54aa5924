//! Shared helpers for the event parser's tests, and properties of the parser as a
//! whole: any bytes give an event or a one-line error, generated events parse to
//! the values they were made from.

use proptest::prelude::*;

use super::*;

pub(super) const SEED: &str = r#"{"user_id": "user123", "event_type": "click", "timestamp": 1678886400, "attributes": {"item_id": "item456", "value": 10.5}}"#;

/// Parses with the default id limit, expecting success.
pub(super) fn ok(json: &str) -> Event<'_> {
    match parse_event(json.as_bytes(), DEFAULT_MAX_ID_LEN) {
        Ok(event) => event,
        Err(e) => panic!("expected {json:?} to parse, got error: {e}"),
    }
}

/// Parses with the default id limit, expecting failure; returns the message.
pub(super) fn err(json: &str) -> String {
    err_bytes(json.as_bytes())
}

pub(super) fn err_bytes(json: &[u8]) -> String {
    match parse_event(json, DEFAULT_MAX_ID_LEN) {
        Ok(event) => panic!("expected {json:?} to fail, got {event:?}"),
        Err(e) => e.to_string(),
    }
}

/// A valid event whose `timestamp` raw JSON is `ts`.
pub(super) fn with_ts(ts: &str) -> String {
    format!(r#"{{"user_id":"u","event_type":"e","timestamp":{ts}}}"#)
}

/// A valid event whose `attributes` raw JSON is `attrs`.
pub(super) fn with_attrs(attrs: &str) -> String {
    format!(r#"{{"user_id":"u","event_type":"e","timestamp":1,"attributes":{attrs}}}"#)
}

/// A valid event with an extra member `"extra": value`.
pub(super) fn with_extra(value: &str) -> String {
    format!(r#"{{"user_id":"u","event_type":"e","extra":{value},"timestamp":1}}"#)
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

}
