//! The 60-second window (issue 3) through a real client: events in, exact aggregates
//! out, in every clock mode, from many connections at once.
//!
//! Time moves only by `EVT.CLOCK` (manual clock) unless a test is about another clock.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use redis::{Connection, ConnectionLike, Value};

fn manual() -> TestServer {
    TestServer::start(&["--clock", "manual"])
}

fn with_window(mut c: redis::Cmd, window: Option<u32>) -> redis::Cmd {
    if let Some(w) = window {
        c.arg("WINDOW").arg(w);
    }
    c
}

fn total(con: &mut Connection, window: Option<u32>) -> i64 {
    with_window(redis::cmd("EVT.TOTAL"), window)
        .query(con)
        .expect("EVT.TOTAL")
}

fn user(con: &mut Connection, user: &str, window: Option<u32>) -> i64 {
    let mut c = redis::cmd("EVT.USER");
    c.arg(user);
    with_window(c, window).query(con).expect("EVT.USER")
}

fn typ(con: &mut Connection, ty: &str, window: Option<u32>) -> i64 {
    let mut c = redis::cmd("EVT.TYPE");
    c.arg(ty);
    with_window(c, window).query(con).expect("EVT.TYPE")
}

/// EVT.SUM as the RESP2 bulk string.
fn sum(con: &mut Connection, u: &str, t: &str, window: Option<u32>) -> String {
    let mut c = redis::cmd("EVT.SUM");
    c.arg(u).arg(t);
    with_window(c, window).query(con).expect("EVT.SUM")
}

fn advance(con: &mut Connection, by: i64) -> i64 {
    redis::cmd("EVT.CLOCK")
        .arg("ADVANCE")
        .arg(by)
        .query(con)
        .expect("EVT.CLOCK ADVANCE")
}

fn clock_set(con: &mut Connection, to: i64) -> Result<i64, String> {
    redis::cmd("EVT.CLOCK")
        .arg("SET")
        .arg(to)
        .query(con)
        .map_err(|e| err_text(&e))
}

fn dbsize(con: &mut Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).expect("DBSIZE")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
}

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
// Late and future events
// ---------------------------------------------------------------------------------

#[test]
fn late_events_are_rejected_and_counted_as_late() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    let e = add(&mut c, &event("u", "click", t - 60, 1.0)).unwrap_err();
    assert!(e.starts_with("ERR "), "{e}");
    assert!(e.contains("older than the window"), "{e}");
    let e = add(&mut c, &bare_event("u", "click", 0)).unwrap_err();
    assert!(e.contains("older than the window"), "{e}");
    add(&mut c, &event("u", "click", t - 59, 1.0)).expect("t-59 is inside");
    assert_eq!(total(&mut c, None), 1);
    assert_eq!(info_i64(&mut c, "events_late"), 2);
    assert_eq!(info_i64(&mut c, "events_rejected"), 2);
    assert_eq!(info_i64(&mut c, "events_accepted"), 1);
    // The one accepted leaves when its second does.
    advance(&mut c, 1);
    assert_eq!(total(&mut c, None), 0);
}

#[test]
fn future_events_within_the_skew_count_at_now_and_beyond_it_are_rejected() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &event("u", "click", t + 5, 2.0)).expect("5 s ahead is accepted");
    assert_eq!(total(&mut c, Some(1)), 1, "counted at now");
    assert_eq!(user(&mut c, "u", Some(1)), 1);
    let e = add(&mut c, &event("u", "click", t + 6, 2.0)).unwrap_err();
    assert!(e.starts_with("ERR ") && e.contains("future"), "{e}");
    assert_eq!(info_i64(&mut c, "events_rejected"), 1);
    assert_eq!(
        info_i64(&mut c, "events_late"),
        0,
        "a future event is not late"
    );
    // Stored at t, it leaves at t+60 (had it been stored at t+5 it would stay).
    advance(&mut c, 59);
    assert_eq!(total(&mut c, None), 1);
    assert_eq!(sum(&mut c, "u", "click", None), "2");
    advance(&mut c, 1);
    assert_eq!(total(&mut c, None), 0);
    assert_eq!(sum(&mut c, "u", "click", None), "0");
}

#[test]
fn max_future_skew_flag() {
    let server = TestServer::start(&["--clock", "manual", "--max-future-skew", "0"]);
    let mut c = server.client();
    let t = clock(&mut c);
    assert!(add(&mut c, &bare_event("u", "click", t + 1)).is_err());
    add(&mut c, &bare_event("u", "click", t)).unwrap();

    let server = TestServer::start(&["--clock", "manual", "--max-future-skew", "30"]);
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &bare_event("u", "click", t + 30)).unwrap();
    assert!(add(&mut c, &bare_event("u", "click", t + 31)).is_err());
    assert_eq!(total(&mut c, Some(1)), 1);
    assert_eq!(
        info_field(&info(&mut c, None), "max_future_skew").as_deref(),
        Some("30")
    );
}

// ---------------------------------------------------------------------------------
// Clock modes
// ---------------------------------------------------------------------------------

#[test]
fn wall_clock_follows_the_system_and_cannot_be_moved() {
    let server = TestServer::start(&[]);
    let mut c = server.client();
    let now = clock(&mut c);
    assert!(
        (now - system_now()).abs() <= 5,
        "EVT.CLOCK {now} vs system {}",
        system_now()
    );
    assert!(
        clock_set(&mut c, now + 100)
            .unwrap_err()
            .starts_with("ERR ")
    );
    let e = query_err(&mut c, redis::cmd("EVT.CLOCK").arg("ADVANCE").arg(1));
    assert!(e.starts_with("ERR "), "{e}");
    assert!(
        (clock(&mut c) - system_now()).abs() <= 5,
        "the clock did not move"
    );
    add(&mut c, &event("u", "click", system_now(), 1.0)).unwrap();
    assert_eq!(total(&mut c, None), 1);
    assert_eq!(
        info_field(&info(&mut c, Some("analytics")), "clock").as_deref(),
        Some("wall")
    );
}

#[test]
fn event_clock_replays_the_seed_example() {
    let server = TestServer::start(&["--clock", "event"]);
    let mut c = server.client();
    let seed = r#"{"user_id": "user123", "event_type": "click", "timestamp": 1678886400, "attributes": {"item_id": "item456", "value": 10.5}}"#;
    add(&mut c, seed).expect("the 2023 seed event just works");
    assert_eq!(clock(&mut c), 1678886400, "now is the newest timestamp");
    assert_eq!(user(&mut c, "user123", None), 1);
    assert_eq!(typ(&mut c, "click", None), 1);
    assert_eq!(sum(&mut c, "user123", "click", None), "10.5");
    assert_eq!(total(&mut c, None), 1);

    add(&mut c, &bare_event("other", "view", 1678886430)).unwrap();
    assert_eq!(clock(&mut c), 1678886430);
    add(&mut c, &bare_event("other", "view", 1678886420)).expect("older but inside");
    assert_eq!(
        clock(&mut c),
        1678886430,
        "an older event does not move now back"
    );
    let e = add(&mut c, &bare_event("other", "view", 1678886370)).unwrap_err();
    assert!(e.contains("older than the window"), "{e}");
    assert_eq!(total(&mut c, None), 3);

    add(&mut c, &bare_event("other", "view", 1678886460)).unwrap();
    assert_eq!(clock(&mut c), 1678886460);
    assert_eq!(
        user(&mut c, "user123", None),
        0,
        "the seed event left the window"
    );
    assert_eq!(sum(&mut c, "user123", "click", None), "0");
    assert_eq!(total(&mut c, None), 3);

    assert!(
        clock_set(&mut c, 1678886500)
            .unwrap_err()
            .starts_with("ERR ")
    );
    let e = query_err(&mut c, redis::cmd("EVT.CLOCK").arg("ADVANCE").arg(5));
    assert!(e.starts_with("ERR "), "{e}");
    assert_eq!(clock(&mut c), 1678886460);
    let analytics = info(&mut c, Some("analytics"));
    assert_eq!(info_field(&analytics, "clock").as_deref(), Some("event"));
    assert_eq!(info_field(&analytics, "now").as_deref(), Some("1678886460"));
}

#[test]
fn manual_clock_starts_at_wall_time_and_only_moves_forward() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    assert!((t - system_now()).abs() <= 5, "starts at the wall time");
    assert_eq!(clock_set(&mut c, t + 100), Ok(t + 100));
    assert_eq!(advance(&mut c, 5), t + 105);
    assert_eq!(clock(&mut c), t + 105);
    let e = clock_set(&mut c, t + 50).unwrap_err();
    assert!(e.starts_with("ERR "), "{e}");
    let e = query_err(&mut c, redis::cmd("EVT.CLOCK").arg("ADVANCE").arg(-1));
    assert!(e.starts_with("ERR "), "{e}");
    let e = query_err(&mut c, redis::cmd("EVT.CLOCK").arg("SET").arg("soon"));
    assert_eq!(e, "ERR value is not an integer or out of range");
    let e = query_err(&mut c, redis::cmd("EVT.CLOCK").arg("BOGUS"));
    assert!(e.starts_with("ERR "), "{e}");
    assert_eq!(clock(&mut c), t + 105, "failed moves change nothing");
    let analytics = info(&mut c, Some("analytics"));
    assert_eq!(info_field(&analytics, "clock").as_deref(), Some("manual"));
    assert_eq!(info_field(&analytics, "now"), Some((t + 105).to_string()));
    // Events follow the moved clock.
    add(&mut c, &bare_event("u", "click", t + 105)).unwrap();
    assert!(add(&mut c, &bare_event("u", "click", t)).is_err());
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
// Queries
// ---------------------------------------------------------------------------------

#[test]
fn queries_with_and_without_window() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &event("u1", "click", t - 50, 1.0)).unwrap();
    add(&mut c, &event("u1", "click", t - 20, 2.0)).unwrap();
    add(&mut c, &event("u2", "view", t - 20, 8.0)).unwrap();
    add(&mut c, &event("u1", "view", t, 4.0)).unwrap();

    assert_eq!(total(&mut c, None), 4);
    assert_eq!(total(&mut c, Some(60)), 4);
    assert_eq!(total(&mut c, Some(51)), 4);
    assert_eq!(total(&mut c, Some(50)), 3, "t-50 is not > t-50");
    assert_eq!(total(&mut c, Some(21)), 3);
    assert_eq!(total(&mut c, Some(20)), 1);
    assert_eq!(total(&mut c, Some(1)), 1);

    assert_eq!(user(&mut c, "u1", None), 3);
    assert_eq!(user(&mut c, "u1", Some(30)), 2);
    assert_eq!(user(&mut c, "u1", Some(1)), 1);
    assert_eq!(user(&mut c, "u2", None), 1);
    assert_eq!(user(&mut c, "nobody", None), 0);
    assert_eq!(user(&mut c, "nobody", Some(5)), 0);

    assert_eq!(typ(&mut c, "click", None), 2);
    assert_eq!(typ(&mut c, "click", Some(30)), 1);
    assert_eq!(typ(&mut c, "view", None), 2);
    assert_eq!(typ(&mut c, "view", Some(20)), 1);
    assert_eq!(typ(&mut c, "nothing", None), 0);

    assert_eq!(sum(&mut c, "u1", "click", None), "3");
    assert_eq!(sum(&mut c, "u1", "click", Some(30)), "2");
    assert_eq!(sum(&mut c, "u1", "click", Some(20)), "0");
    assert_eq!(sum(&mut c, "u1", "view", None), "4");
    assert_eq!(sum(&mut c, "u2", "view", Some(21)), "8");
    assert_eq!(sum(&mut c, "u2", "click", None), "0");
    assert_eq!(sum(&mut c, "nobody", "nothing", None), "0");

    // The keyword is case-insensitive, as Redis keywords are.
    let n: i64 = redis::cmd("EVT.TOTAL")
        .arg("window")
        .arg(21)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn window_must_be_an_integer_from_1_to_the_window() {
    let server = manual();
    let mut c = server.client();
    for bad in ["0", "61", "-1", "abc", "1.5", "", "99999999999999999999"] {
        for base in [
            vec!["EVT.TOTAL"],
            vec!["EVT.USER", "u"],
            vec!["EVT.TYPE", "t"],
            vec!["EVT.SUM", "u", "t"],
        ] {
            let mut cmd = redis::cmd(base[0]);
            for a in &base[1..] {
                cmd.arg(*a);
            }
            cmd.arg("WINDOW").arg(bad);
            let e = query_err(&mut c, &cmd);
            assert!(e.starts_with("ERR "), "{base:?} WINDOW {bad:?}: {e}");
        }
    }
    for args in [
        vec!["WINDOW"],
        vec!["WINDOW", "5", "extra"],
        vec!["SINCE", "5"],
        vec!["5"],
    ] {
        let mut cmd = redis::cmd("EVT.TOTAL");
        for a in &args {
            cmd.arg(*a);
        }
        let e = query_err(&mut c, &cmd);
        assert!(e.starts_with("ERR "), "EVT.TOTAL {args:?}: {e}");
    }
    assert_eq!(
        query_err(&mut c, &redis::cmd("EVT.USER")),
        "ERR wrong number of arguments for 'evt.user' command"
    );
    assert_eq!(
        query_err(&mut c, redis::cmd("EVT.SUM").arg("u")),
        "ERR wrong number of arguments for 'evt.sum' command"
    );
    assert_eq!(total(&mut c, Some(1)), 0);
    assert_eq!(total(&mut c, Some(60)), 0);
}

#[test]
fn counts_are_exact_right_at_the_second_boundary() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &event("edge", "tick", t, 0.25)).unwrap();
    advance(&mut c, 59);
    let (n, u, ty, s, w): (i64, i64, i64, String, i64) = redis::pipe()
        .cmd("EVT.TOTAL")
        .cmd("EVT.USER")
        .arg("edge")
        .cmd("EVT.TYPE")
        .arg("tick")
        .cmd("EVT.SUM")
        .arg("edge")
        .arg("tick")
        .cmd("EVT.TOTAL")
        .arg("WINDOW")
        .arg(60)
        .query(&mut c)
        .unwrap();
    assert_eq!(
        (n, u, ty, s.as_str(), w),
        (1, 1, 1, "0.25", 1),
        "at t+59 it is inside"
    );
    // The clock move and the queries go in one write: they run back to back, before
    // any background sweep can be relied on.
    let (now, n, u, ty, s, w): (i64, i64, i64, i64, String, i64) = redis::pipe()
        .cmd("EVT.CLOCK")
        .arg("ADVANCE")
        .arg(1)
        .cmd("EVT.TOTAL")
        .cmd("EVT.USER")
        .arg("edge")
        .cmd("EVT.TYPE")
        .arg("tick")
        .cmd("EVT.SUM")
        .arg("edge")
        .arg("tick")
        .cmd("EVT.TOTAL")
        .arg("WINDOW")
        .arg(60)
        .query(&mut c)
        .unwrap();
    assert_eq!(now, t + 60);
    assert_eq!(
        (n, u, ty, s.as_str(), w),
        (0, 0, 0, "0", 0),
        "at t+60 it is gone"
    );

    // The same for a narrower WINDOW.
    let t = clock(&mut c);
    add(&mut c, &bare_event("edge", "tick", t)).unwrap();
    advance(&mut c, 9);
    assert_eq!(total(&mut c, Some(10)), 1);
    assert_eq!(total(&mut c, Some(9)), 0);
    assert_eq!(user(&mut c, "edge", Some(10)), 1);
    assert_eq!(user(&mut c, "edge", Some(9)), 0);
}

// ---------------------------------------------------------------------------------
// Sums
// ---------------------------------------------------------------------------------

#[test]
fn sum_is_a_redis_double_bulk_in_resp2_and_a_double_in_resp3() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &event("a", "x", t, 10.5)).unwrap();
    add(&mut c, &event("b", "x", t, 1.0)).unwrap();
    add(&mut c, &event("b", "x", t, 2.0)).unwrap();
    add(&mut c, &event("n", "x", t, -1.25)).unwrap();
    add(&mut c, &event("z", "x", t, 1.5)).unwrap();
    add(&mut c, &event("z", "x", t, -1.5)).unwrap();
    add(&mut c, &event("m", "x", t, 1000000.0)).unwrap();
    assert_eq!(sum(&mut c, "a", "x", None), "10.5");
    assert_eq!(sum(&mut c, "b", "x", None), "3");
    assert_eq!(sum(&mut c, "n", "x", None), "-1.25");
    assert_eq!(sum(&mut c, "z", "x", None), "0");
    assert_eq!(sum(&mut c, "m", "x", None), "1000000");
    assert_eq!(sum(&mut c, "none", "x", None), "0");

    // Byte-exact on the wire, RESP2 then RESP3.
    let mut s = server.raw();
    let want: &[u8] = b"$4\r\n10.5\r\n$1\r\n3\r\n$1\r\n0\r\n$1\r\n0\r\n";
    let got = send_recv(
        &mut s,
        b"EVT.SUM a x\r\nEVT.SUM b x\r\nEVT.SUM z x\r\nEVT.SUM none x\r\n",
        want.len(),
    );
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));

    let mut c3 = server.client3();
    let v: Value = redis::cmd("EVT.SUM")
        .arg("a")
        .arg("x")
        .query(&mut c3)
        .unwrap();
    assert_eq!(v, Value::Double(10.5));
    let v: Value = redis::cmd("EVT.SUM")
        .arg("none")
        .arg("x")
        .query(&mut c3)
        .unwrap();
    assert_eq!(v, Value::Double(0.0));
    let v: Value = redis::cmd("EVT.SUM")
        .arg("b")
        .arg("x")
        .arg("WINDOW")
        .arg(1)
        .query(&mut c3)
        .unwrap();
    assert_eq!(v, Value::Double(3.0));
}

#[test]
fn sums_return_to_exactly_zero_when_the_window_passes() {
    let server = manual();
    let mut c = server.client();
    let t0 = clock(&mut c);
    let values = [
        [0.1, 0.2, 0.3],
        [0.7, 1e-3, 1e15],
        [123456.789, -0.05, 1e-9],
    ];
    for (i, second) in values.iter().enumerate() {
        for v in second {
            add(&mut c, &event("u", "t", t0 + i as i64, *v)).unwrap();
        }
        advance(&mut c, 1);
    }
    // now = t0 + 3
    let expect = |from: usize| -> f64 { values[from..].iter().flatten().sum() };
    let got: f64 = sum(&mut c, "u", "t", None).parse().unwrap();
    assert!(close(got, expect(0)), "{got} vs {}", expect(0));
    let got: f64 = sum(&mut c, "u", "t", Some(2)).parse().unwrap();
    assert!(close(got, expect(2)), "WINDOW 2: {got} vs {}", expect(2));
    advance(&mut c, 57); // t0 leaves
    let got: f64 = sum(&mut c, "u", "t", None).parse().unwrap();
    assert!(close(got, expect(1)), "{got} vs {}", expect(1));
    advance(&mut c, 1); // t0+1 (with 1e15) leaves
    let got: f64 = sum(&mut c, "u", "t", None).parse().unwrap();
    assert!(close(got, expect(2)), "{got} vs {}", expect(2));
    advance(&mut c, 1); // everything has left
    assert_eq!(
        sum(&mut c, "u", "t", None),
        "0",
        "exactly zero, not a rounding residue"
    );
    let mut c3 = server.client3();
    match redis::cmd("EVT.SUM")
        .arg("u")
        .arg("t")
        .query::<Value>(&mut c3)
        .unwrap()
    {
        Value::Double(d) => assert!(d == 0.0 && d.is_sign_positive(), "{d:?}"),
        other => panic!("{other:?}"),
    }

    // A long stream of tenths, added and expired second by second: no drift.
    let t1 = clock(&mut c);
    for i in 0..150 {
        let mut p = redis::pipe();
        p.cmd("EVT.ADD")
            .arg(event("d", "t", t1 + i, 0.1))
            .ignore()
            .cmd("EVT.ADD")
            .arg(event("d", "t", t1 + i, 0.2))
            .ignore()
            .cmd("EVT.CLOCK")
            .arg("ADVANCE")
            .arg(1)
            .ignore();
        let () = p.query(&mut c).unwrap();
    }
    // now = t1 + 150, which has no events: 59 seconds of 0.3 are in the window.
    let got: f64 = sum(&mut c, "d", "t", None).parse().unwrap();
    assert!(close(got, 59.0 * 0.3), "{got}");
    let got: f64 = sum(&mut c, "d", "t", Some(10)).parse().unwrap();
    assert!(close(got, 9.0 * 0.3), "{got}");
    advance(&mut c, 60);
    assert_eq!(sum(&mut c, "d", "t", None), "0");
    assert_eq!(sum(&mut c, "d", "t", Some(5)), "0");
}

// ---------------------------------------------------------------------------------
// Scale and concurrency
// ---------------------------------------------------------------------------------

#[test]
fn fifty_thousand_users_expire_back_to_zero() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    const USERS: usize = 50_000;
    for chunk in 0..USERS / 1000 {
        let mut cmd = redis::cmd("EVT.MADD");
        for i in chunk * 1000..(chunk + 1) * 1000 {
            cmd.arg(event(
                &format!("user{i}"),
                &format!("type{}", i % 10),
                t - (i % 30) as i64,
                1.0,
            ));
        }
        let replies: Vec<String> = cmd.query(&mut c).unwrap();
        assert!(replies.iter().all(|r| r == "OK"));
    }
    assert_eq!(total(&mut c, None), USERS as i64);
    let analytics = info(&mut c, Some("analytics"));
    assert_eq!(
        info_field(&analytics, "active_users"),
        Some(USERS.to_string())
    );
    assert_eq!(
        info_field(&analytics, "active_event_types").as_deref(),
        Some("10")
    );
    assert_eq!(
        info_field(&analytics, "active_user_event_types"),
        Some(USERS.to_string())
    );
    assert_eq!(
        info_field(&analytics, "window_events"),
        Some(USERS.to_string())
    );
    assert_eq!(user(&mut c, "user49999", None), 1);

    advance(&mut c, 61);
    assert_eq!(total(&mut c, None), 0, "queries see the expiry at once");
    assert_eq!(user(&mut c, "user49999", None), 0);
    assert_eq!(typ(&mut c, "type3", None), 0);
    for field in [
        "active_users",
        "active_event_types",
        "active_user_event_types",
        "window_events",
    ] {
        assert_eq!(
            wait_info(&mut c, field, "0", Duration::from_secs(10)),
            Ok(()),
            "{field} returns to 0"
        );
    }
    assert_eq!(dbsize(&mut c), 0);
    // The store is usable afterwards.
    let t = clock(&mut c);
    add(&mut c, &bare_event("user1", "type1", t)).unwrap();
    assert_eq!(total(&mut c, None), 1);
    assert_eq!(info_i64(&mut c, "active_users"), 1);
}

#[test]
fn eight_connections_writing_at_once_lose_nothing() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    const THREADS: usize = 8;
    const PER_THREAD: usize = 2500;
    let workers: Vec<_> = (0..THREADS)
        .map(|w| {
            let mut con = server.client();
            std::thread::spawn(move || {
                for batch in 0..PER_THREAD / 250 {
                    let events: Vec<String> = (batch * 250..(batch + 1) * 250)
                        .map(|i| {
                            event(
                                &format!("w{w}-u{}", i % 25),
                                &format!("type{}", i % 4),
                                t,
                                0.5,
                            )
                        })
                        .collect();
                    if w % 2 == 0 {
                        let mut p = redis::pipe();
                        for e in &events {
                            p.cmd("EVT.ADD").arg(e);
                        }
                        let replies: Vec<String> = p.query(&mut con).unwrap();
                        assert!(replies.iter().all(|r| r == "OK"));
                    } else {
                        let mut cmd = redis::cmd("EVT.MADD");
                        for e in &events {
                            cmd.arg(e);
                        }
                        let replies: Vec<String> = cmd.query(&mut con).unwrap();
                        assert!(replies.iter().all(|r| r == "OK"));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("writer thread");
    }
    let n = (THREADS * PER_THREAD) as i64;
    assert_eq!(total(&mut c, None), n);
    assert_eq!(info_i64(&mut c, "events_accepted"), n);
    assert_eq!(info_i64(&mut c, "window_events"), n);
    for ty in 0..4 {
        assert_eq!(typ(&mut c, &format!("type{ty}"), None), n / 4);
    }
    for w in 0..THREADS {
        for u in 0..25 {
            assert_eq!(user(&mut c, &format!("w{w}-u{u}"), None), 100, "w{w}-u{u}");
        }
        // Each (i % 25, i % 4) pair is one residue of i mod 100: 25 events, 0.5 each.
        for u in 0..25 {
            for ty in 0..4 {
                assert_eq!(
                    sum(&mut c, &format!("w{w}-u{u}"), &format!("type{ty}"), None),
                    "12.5"
                );
            }
        }
        assert_eq!(sum(&mut c, &format!("w{w}-u0"), "type9", None), "0");
    }
    assert_eq!(info_i64(&mut c, "active_users"), (THREADS * 25) as i64);
    assert_eq!(info_i64(&mut c, "active_event_types"), 4);
    assert_eq!(
        info_i64(&mut c, "active_user_event_types"),
        (THREADS * 100) as i64
    );
}

// ---------------------------------------------------------------------------------
// FLUSHALL, INFO, --window
// ---------------------------------------------------------------------------------

#[test]
fn flushall_empties_the_window() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    for i in 0..20 {
        add(&mut c, &event(&format!("u{}", i % 3), "click", t - i, 1.0)).unwrap();
    }
    assert_eq!(total(&mut c, None), 20);
    let ok: String = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(total(&mut c, None), 0);
    assert_eq!(total(&mut c, Some(5)), 0);
    assert_eq!(user(&mut c, "u0", None), 0);
    assert_eq!(typ(&mut c, "click", None), 0);
    assert_eq!(sum(&mut c, "u0", "click", None), "0");
    let analytics = info(&mut c, Some("analytics"));
    for field in [
        "window_events",
        "active_users",
        "active_event_types",
        "active_user_event_types",
    ] {
        assert_eq!(
            info_field(&analytics, field).as_deref(),
            Some("0"),
            "{field}"
        );
    }
    // The same seconds take new events, which count from zero.
    add(&mut c, &event("u0", "click", t - 5, 2.0)).unwrap();
    assert_eq!(total(&mut c, None), 1);
    assert_eq!(sum(&mut c, "u0", "click", None), "2");
    // And nothing flushed comes back when its second expires.
    advance(&mut c, 55);
    assert_eq!(total(&mut c, None), 0);
    assert_eq!(sum(&mut c, "u0", "click", None), "0");
}

#[test]
fn info_analytics_section() {
    let server = manual();
    let mut c = server.client();
    let t = clock(&mut c);
    add(&mut c, &event("u1", "click", t, 1.0)).unwrap();
    add(&mut c, &event("u2", "click", t - 3, 1.0)).unwrap();
    add(&mut c, &event("u2", "click", t - 4, 1.0)).unwrap();
    assert!(add(&mut c, "{}").is_err());
    assert!(add(&mut c, &bare_event("u3", "view", t - 61)).is_err());
    let text = info(&mut c, Some("analytics"));
    assert!(text.starts_with("# Analytics\r\n"), "{text}");
    let field = |name: &str| {
        info_field(&text, name).unwrap_or_else(|| panic!("INFO analytics lacks {name}:\n{text}"))
    };
    assert_eq!(field("window_seconds"), "60");
    assert_eq!(field("clock"), "manual");
    assert_eq!(field("now"), t.to_string());
    assert_eq!(field("events_accepted"), "3");
    assert_eq!(field("events_rejected"), "2");
    assert_eq!(field("events_late"), "1");
    assert_eq!(field("window_events"), "3");
    assert_eq!(field("active_users"), "2");
    assert_eq!(field("active_event_types"), "1");
    assert_eq!(field("active_user_event_types"), "2");
    // The default INFO includes the section too.
    assert!(info(&mut c, None).contains("# Analytics\r\n"));

    // After the window passes, the gauges fall and the counters stay.
    advance(&mut c, 60);
    for f in [
        "window_events",
        "active_users",
        "active_event_types",
        "active_user_event_types",
    ] {
        assert_eq!(
            wait_info(&mut c, f, "0", Duration::from_secs(10)),
            Ok(()),
            "{f}"
        );
    }
    let text = info(&mut c, Some("analytics"));
    assert_eq!(info_field(&text, "events_accepted").as_deref(), Some("3"));
    assert_eq!(info_field(&text, "now"), Some((t + 60).to_string()));
}

#[test]
fn a_narrower_window_flag() {
    let server = TestServer::start(&["--clock", "manual", "--window", "30"]);
    let mut c = server.client();
    let t = clock(&mut c);
    assert_eq!(info_i64(&mut c, "window_seconds"), 30);
    let e = add(&mut c, &bare_event("u", "click", t - 30)).unwrap_err();
    assert!(e.contains("older than the window"), "{e}");
    add(&mut c, &bare_event("u", "click", t - 29)).unwrap();
    assert_eq!(total(&mut c, Some(30)), 1);
    let e = query_err(&mut c, redis::cmd("EVT.TOTAL").arg("WINDOW").arg(31));
    assert!(e.starts_with("ERR "), "{e}");
    assert_eq!(total(&mut c, None), 1);
    advance(&mut c, 1);
    assert_eq!(total(&mut c, None), 0);
    assert_eq!(user(&mut c, "u", None), 0);
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
