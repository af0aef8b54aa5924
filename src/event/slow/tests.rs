//! The parser as a whole, through [`parse_event`]: ids, fields, and every error
//! the serde path words.

use std::borrow::Cow;

use crate::event::tests::{SEED, err, err_bytes, ok, with_extra};
use crate::event::{DEFAULT_MAX_ID_LEN, Event, parse_event};

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
    let event =
        ok(r#"{"user_id":"user\u0041","event_type":"a\"b\\c\/d\n\t\ud83d\ude00","timestamp":1}"#);
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
        err(r#"{"user_id":"a","event_type":"e","timestamp":1,"attributes":null,"attributes":{}}"#),
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
