//! Events in: what `EVT.ADD` and `EVT.MADD` accept and refuse (malformed JSON,
//! missing or mistyped fields, ids over `--max-id-len`, values that are not finite
//! numbers, escapes and field order, fractional timestamps), one reply per event of a
//! batch, and a log that does not grow with every bad event.

use std::io::Write;
use std::time::Duration;

use redis::{ConnectionLike, Value};

use crate::common::*;

// ---------------------------------------------------------------------------------
// Bad events
// ---------------------------------------------------------------------------------

#[test]
fn every_kind_of_bad_event_is_rejected_naming_what_is_wrong() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    let deep = format!(
        r#"{{"user_id":"u","event_type":"click","timestamp":{t},"extra":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let deep_attributes = format!(
        r#"{{"user_id":"u","event_type":"click","timestamp":{t},"attributes":{{"value":1,"x":{}{}}}}}"#,
        "{\"a\":".repeat(200),
        "}".repeat(200)
    );
    // (event, the field the error must name)
    let bad: Vec<(String, Option<&str>)> = vec![
        // Not JSON, or not only JSON.
        (
            r#"{"user_id":"u","event_type":"click","timestamp":"#.into(),
            None,
        ),
        ("not json".into(), None),
        ("".into(), None),
        ("{".into(), None),
        (
            format!(r#"{{"user_id":"u","event_type":"click","timestamp":{t}}} x"#),
            None,
        ),
        (
            format!(r#"{{"user_id":"u","event_type":"click","timestamp":{t}}}{{}}"#),
            None,
        ),
        // Not an object.
        ("[1,2]".into(), None),
        (r#""a string""#.into(), None),
        ("42".into(), None),
        ("null".into(), None),
        ("true".into(), None),
        // Missing fields.
        (
            format!(r#"{{"event_type":"click","timestamp":{t}}}"#),
            Some("user_id"),
        ),
        (
            format!(r#"{{"user_id":"u","timestamp":{t}}}"#),
            Some("event_type"),
        ),
        (
            r#"{"user_id":"u","event_type":"click"}"#.into(),
            Some("timestamp"),
        ),
        // Mistyped fields.
        (
            format!(r#"{{"user_id":7,"event_type":"click","timestamp":{t}}}"#),
            Some("user_id"),
        ),
        (
            format!(r#"{{"user_id":null,"event_type":"click","timestamp":{t}}}"#),
            Some("user_id"),
        ),
        (
            format!(r#"{{"user_id":["u"],"event_type":"click","timestamp":{t}}}"#),
            Some("user_id"),
        ),
        (
            format!(r#"{{"user_id":"u","event_type":{{"a":1}},"timestamp":{t}}}"#),
            Some("event_type"),
        ),
        (
            format!(r#"{{"user_id":"u","event_type":false,"timestamp":{t}}}"#),
            Some("event_type"),
        ),
        (
            format!(r#"{{"user_id":"u","event_type":"click","timestamp":"{t}"}}"#),
            Some("timestamp"),
        ),
        (
            r#"{"user_id":"u","event_type":"click","timestamp":null}"#.into(),
            Some("timestamp"),
        ),
        (
            r#"{"user_id":"u","event_type":"click","timestamp":true}"#.into(),
            Some("timestamp"),
        ),
        (
            r#"{"user_id":"u","event_type":"click","timestamp":[1]}"#.into(),
            Some("timestamp"),
        ),
        (
            r#"{"user_id":"u","event_type":"click","timestamp":-1}"#.into(),
            Some("timestamp"),
        ),
        // Empty ids.
        (
            format!(r#"{{"user_id":"","event_type":"click","timestamp":{t}}}"#),
            Some("user_id"),
        ),
        (
            format!(r#"{{"user_id":"u","event_type":"","timestamp":{t}}}"#),
            Some("event_type"),
        ),
        // Nested too deep, in an unknown field and inside attributes.
        (deep, None),
        (deep_attributes, None),
    ];
    for (json, field) in &bad {
        let e = add(&mut c, json).expect_err(json);
        assert!(e.starts_with("ERR invalid event: "), "{json:?} gave {e:?}");
        if let Some(field) = field {
            assert!(
                e.contains(field),
                "{json:?}: the error {e:?} must name {field}"
            );
        }
        assert!(!e.contains('\n') && !e.contains('\r'), "one line: {e:?}");
    }
    // Bytes that are not UTF-8 are not JSON either.
    let not_utf8 = redis::cmd("EVT.ADD")
        .arg(&b"{\"user_id\":\"\xff\xfe\",\"event_type\":\"click\",\"timestamp\":1}"[..])
        .query::<()>(&mut c)
        .map_err(|e| err_text(&e))
        .expect_err("invalid UTF-8");
    assert!(not_utf8.starts_with("ERR invalid event: "), "{not_utf8}");

    let rejected = bad.len() as i64 + 1;
    assert_eq!(total(&mut c, None), 0, "nothing was counted");
    assert_eq!(user(&mut c, "u", None), 0);
    assert_eq!(dbsize(&mut c), 0, "no key was created");
    assert_eq!(info_i64(&mut c, "events_rejected"), rejected);
    assert_eq!(info_i64(&mut c, "events_accepted"), 0);
    assert_eq!(info_i64(&mut c, "events_late"), 0);
    assert_eq!(info_i64(&mut c, "active_users"), 0);
    assert_eq!(info_i64(&mut c, "window_events"), 0);

    // Moderate nesting is fine.
    let nested = format!(
        r#"{{"user_id":"u","event_type":"click","timestamp":{t},"extra":[[[[{{"a":[1]}}]]]]}}"#
    );
    add(&mut c, &nested).unwrap();
    assert_eq!(total(&mut c, None), 1);
}

#[test]
fn ids_longer_than_max_id_len_are_rejected() {
    let server = TestServer::start(&["--clock", "manual", "--max-id-len", "8"]);
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &bare_event("12345678", "abcdefgh", t)).expect("8 bytes is the limit");
    let e = add(&mut c, &bare_event("123456789", "click", t)).unwrap_err();
    assert!(
        e.starts_with("ERR invalid event: ") && e.contains("user_id"),
        "{e}"
    );
    let e = add(&mut c, &bare_event("u", "abcdefghi", t)).unwrap_err();
    assert!(
        e.starts_with("ERR invalid event: ") && e.contains("event_type"),
        "{e}"
    );
    // The limit is in bytes after unescaping: "é" is two bytes, "\u0041" one.
    let e = add(&mut c, &bare_event("éééé_", "click", t)).unwrap_err();
    assert!(e.contains("user_id"), "{e}");
    add(
        &mut c,
        &bare_event(r"\u0041\u0042\u0043\u0044\u0045", "click", t),
    )
    .expect("5 bytes once unescaped");
    assert_eq!(total(&mut c, None), 2);
    assert_eq!(user(&mut c, "ABCDE", None), 1);
    assert_eq!(info_i64(&mut c, "events_rejected"), 3);
}

// ---------------------------------------------------------------------------------
// Values, escapes, field order
// ---------------------------------------------------------------------------------

#[test]
fn values_that_are_not_finite_numbers_are_ignored_but_the_event_counts() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    let head = format!(r#""user_id":"u","event_type":"buy","timestamp":{t}"#);
    let ignored = [
        format!(r#"{{{head},"attributes":{{"value":"10.5"}}}}"#),
        format!(r#"{{{head},"attributes":{{"value":null}}}}"#),
        format!(r#"{{{head},"attributes":{{"value":true}}}}"#),
        format!(r#"{{{head},"attributes":{{"value":[1,2]}}}}"#),
        format!(r#"{{{head},"attributes":{{"value":{{"value":3}}}}}}"#),
        format!(r#"{{{head},"attributes":{{"value":1e400}}}}"#),
        format!(r#"{{{head},"attributes":{{"item_id":"item456"}}}}"#),
        format!(r#"{{{head},"attributes":{{}}}}"#),
        format!(r#"{{{head}}}"#),
        format!(r#"{{{head},"attributes":"value"}}"#),
        format!(r#"{{{head},"attributes":[{{"value":4}}]}}"#),
        format!(r#"{{{head},"attributes":null}}"#),
        format!(r#"{{{head},"attributes":7}}"#),
        format!(r#"{{{head},"value":5}}"#),
    ];
    for json in &ignored {
        add(&mut c, json).unwrap_or_else(|e| panic!("{json} was refused: {e}"));
    }
    assert_eq!(
        sum(&mut c, "u", "buy", None),
        "0",
        "none of them has a value"
    );
    add(
        &mut c,
        &format!(r#"{{{head},"attributes":{{"value":2.5,"item_id":"x"}}}}"#),
    )
    .unwrap();
    add(
        &mut c,
        &format!(r#"{{{head},"attributes":{{"value":-1}}}}"#),
    )
    .unwrap();
    add(
        &mut c,
        &format!(r#"{{{head},"attributes":{{"value":4e0}}}}"#),
    )
    .unwrap();
    let n = ignored.len() as i64 + 3;
    assert_eq!(sum(&mut c, "u", "buy", None), "5.5");
    assert_eq!(user(&mut c, "u", None), n, "every event counts");
    assert_eq!(typ(&mut c, "buy", None), n);
    assert_eq!(total(&mut c, None), n);
    assert_eq!(info_i64(&mut c, "events_accepted"), n);
    assert_eq!(info_i64(&mut c, "events_rejected"), 0);
}

#[test]
fn escapes_unicode_unknown_fields_order_and_whitespace() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &bare_event(r"user\u0041", "click", t)).unwrap();
    add(&mut c, &bare_event("userA", "click", t)).unwrap();
    assert_eq!(
        user(&mut c, "userA", None),
        2,
        r#""user\u0041" is the user userA"#
    );
    assert_eq!(info_i64(&mut c, "active_users"), 1);

    add(&mut c, &bare_event(r"caf\u00e9", r"\ud83d\ude00", t)).unwrap();
    add(&mut c, &bare_event("café", "😀", t)).unwrap();
    add(&mut c, &bare_event("ユーザー", r#"say \"hi\"\t"#, t)).unwrap();
    assert_eq!(user(&mut c, "café", None), 2);
    assert_eq!(typ(&mut c, "😀", None), 2);
    assert_eq!(user(&mut c, "ユーザー", None), 1);
    assert_eq!(typ(&mut c, "say \"hi\"\t", None), 1);

    let shuffled = format!(
        " \n\t{{ \"attributes\" : {{ \"other\" : [1, {{\"x\": null}}], \"value\" : 1.25 }} ,\r\n \
         \"unknown\" : {{\"nested\": [true, false]}}, \"timestamp\" : {t} , \
         \"event_type\" : \"view\" ,\"user_id\":\"w\", \"zzz\": 1e400 }} \n"
    );
    add(&mut c, &shuffled).unwrap();
    assert_eq!(sum(&mut c, "w", "view", None), "1.25");
    assert_eq!(total(&mut c, None), 6);
}

#[test]
fn fractional_timestamps_are_floored() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    // Floored to t-60, which has left the window (rounding would give t-59).
    let e = add(
        &mut c,
        &format!(
            r#"{{"user_id":"u","event_type":"click","timestamp":{}.5}}"#,
            t - 60
        ),
    )
    .unwrap_err();
    assert!(e.contains("older than the window"), "{e}");
    // Floored to t-1: outside WINDOW 1, inside WINDOW 2.
    add(
        &mut c,
        &format!(
            r#"{{"user_id":"u","event_type":"click","timestamp":{}.9}}"#,
            t - 1
        ),
    )
    .unwrap();
    assert_eq!(total(&mut c, Some(1)), 0);
    assert_eq!(total(&mut c, Some(2)), 1);
    // Exponent forms are numbers too.
    let exp = format!("{}e0", t);
    add(
        &mut c,
        &format!(r#"{{"user_id":"u","event_type":"click","timestamp":{exp}}}"#),
    )
    .unwrap();
    assert_eq!(total(&mut c, Some(1)), 1);
}

// ---------------------------------------------------------------------------------
// EVT.MADD
// ---------------------------------------------------------------------------------

#[test]
fn madd_with_good_and_bad_events_applies_the_good_ones() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    let mut cmd = redis::cmd("EVT.MADD");
    cmd.arg(event("u1", "click", t, 1.5))
        .arg("{broken")
        .arg(bare_event("u1", "click", t - 60))
        .arg(event("u2", "click", t - 10, 2.0))
        .arg(bare_event("u2", "click", t + 100))
        .arg(bare_event("", "click", t));
    let reply = c.req_command(&cmd).expect("EVT.MADD replies");
    let Value::Array(items) = reply else {
        panic!("an array: {reply:?}");
    };
    assert_eq!(items.len(), 6, "{items:?}");
    assert_eq!(items[0], Value::Okay);
    assert_eq!(items[3], Value::Okay);
    let errors: Vec<String> = [1, 2, 4, 5]
        .iter()
        .map(|&i| match &items[i] {
            Value::ServerError(e) => format!("{} {}", e.code(), e.details().unwrap_or("")),
            other => panic!("element {i} should be an error: {other:?}"),
        })
        .collect();
    assert!(errors[0].starts_with("ERR invalid event: "), "{errors:?}");
    assert!(errors[1].contains("older than the window"), "{errors:?}");
    assert!(errors[2].starts_with("ERR "), "{errors:?}");
    assert!(errors[3].starts_with("ERR invalid event: ") && errors[3].contains("user_id"));

    assert_eq!(total(&mut c, None), 2);
    assert_eq!(sum(&mut c, "u1", "click", None), "1.5");
    assert_eq!(sum(&mut c, "u2", "click", None), "2");
    assert_eq!(info_i64(&mut c, "events_accepted"), 2);
    assert_eq!(info_i64(&mut c, "events_rejected"), 4);
    assert_eq!(info_i64(&mut c, "events_late"), 1);

    // On the wire: one element per event, in order.
    let mut s = server.raw();
    let req = resp_str(&[
        "EVT.MADD",
        &bare_event("u3", "x", t),
        "[]",
        &bare_event("u3", "x", t),
    ]);
    s.write_all(&req).unwrap();
    let got = read_until_suffix(&mut s, b"\r\n+OK\r\n");
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("*3\r\n+OK\r\n-ERR invalid event: "),
        "{got:?}"
    );
    assert!(got.ends_with("\r\n+OK\r\n"), "{got:?}");
    assert_eq!(user(&mut c, "u3", None), 2);

    let e = query_err(&mut c, &redis::cmd("EVT.MADD"));
    assert_eq!(e, "ERR wrong number of arguments for 'evt.madd' command");
}

// ---------------------------------------------------------------------------------
// Logging of bad events (the real binary, whose log we can read)
// ---------------------------------------------------------------------------------

#[test]
fn bad_events_are_logged_at_a_bounded_rate() {
    let mut server = Spawned::start(&["--clock", "manual"]);
    let mut s = server.raw();
    const BAD: usize = 5000;
    let mut req = Vec::new();
    for i in 0..BAD {
        req.extend(resp_str(&["EVT.ADD", &format!("{{\"bad\":{i}")]));
    }
    req.extend_from_slice(b"PING\r\n");
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&req));
    let replies = read_until_suffix(&mut s, b"+PONG\r\n");
    writer.join().unwrap().unwrap();
    let replies = String::from_utf8_lossy(&replies);
    assert_eq!(
        replies.matches("-ERR invalid event: ").count(),
        BAD,
        "every bad event got its error"
    );
    let mut stop = server.raw();
    stop.write_all(b"SHUTDOWN\r\n").unwrap();
    let log = server.final_log(Duration::from_secs(30));
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings >= 1, "bad events are logged:\n{log}");
    assert!(
        warnings <= 100,
        "{BAD} bad events must not mean {BAD} log lines; got {warnings}"
    );
}
