//! The analytics beyond the four counts (issue 12) through real clients, in RESP2 and
//! RESP3: `EVT.TOP`, `EVT.ACTIVE`, `EVT.SERIES`, `EVT.PROFILE`, sums rounded exactly,
//! INFO's distinct counts exact at every moment, and one instant inside `EXEC`.
//!
//! Time moves only by `EVT.CLOCK` (manual clock).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::{Connection, Value};

use crate::common::*;

const T: i64 = 1_700_000_000;

/// A manual clock starting at `T`.
fn at_t() -> TestServer {
    TestServer::start(&["--clock", "manual", "--clock-start", &T.to_string()])
}

/// Events (user, type, second, value) in one `EVT.MADD` per 1,000.
fn madd(con: &mut Connection, events: &[(String, &str, i64, Option<f64>)]) {
    for chunk in events.chunks(1000) {
        let mut cmd = redis::cmd("EVT.MADD");
        for (u, t, ts, v) in chunk {
            cmd.arg(match v {
                Some(v) => event(u, t, *ts, *v),
                None => bare_event(u, t, *ts),
            });
        }
        let replies: Vec<String> = cmd.query(con).expect("EVT.MADD");
        assert!(replies.iter().all(|r| r == "OK"), "{replies:?}");
    }
}

fn one(con: &mut Connection, u: &str, t: &str, ts: i64, v: f64) {
    add(con, &event(u, t, ts, v)).expect("EVT.ADD");
}

/// A command's reply; the test fails on an error reply.
fn v(con: &mut Connection, args: &[&str]) -> Value {
    q(con, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// A RESP2 top list: `id, count, id, count, ...`, as `ZRANGE ... WITHSCORES`.
fn flat(pairs: &[(&str, i64)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .flat_map(|&(id, n)| [bulk(id), Value::Int(n)])
            .collect(),
    )
}

fn ints(v: &[i64]) -> Value {
    Value::Array(v.iter().map(|&n| Value::Int(n)).collect())
}

fn sum3(con: &mut Connection, u: &str, t: &str, window: Option<u32>) -> Value {
    let mut c = redis::cmd("EVT.SUM");
    c.arg(u).arg(t);
    if let Some(w) = window {
        c.arg("WINDOW").arg(w);
    }
    c.query(con).expect("EVT.SUM")
}

// ---------------------------------------------------------------------------------
// Sums rounded exactly
// ---------------------------------------------------------------------------------

#[test]
fn sums_are_the_exact_sum_rounded_once_as_math_fsum() {
    let srv = at_t();
    let mut c = srv.client();
    let mut c3 = srv.client3();
    for _ in 0..10 {
        one(&mut c, "tenths", "buy", T, 0.1);
    }
    for v in [1e16, 1.0, -1e16] {
        one(&mut c, "cancel", "buy", T, v);
    }
    for v in [0.1, 0.2, 0.3] {
        one(&mut c, "mixed", "buy", T, v);
    }
    // Plain float addition says 0.9999999999999999, 0 and 0.6000000000000001.
    assert_eq!(sum(&mut c, "tenths", "buy", None), "1");
    assert_eq!(sum(&mut c, "cancel", "buy", None), "1");
    assert_eq!(sum(&mut c, "mixed", "buy", None), "0.6");
    assert_eq!(sum3(&mut c3, "tenths", "buy", None), Value::Double(1.0));
    assert_eq!(sum3(&mut c3, "cancel", "buy", Some(1)), Value::Double(1.0));
    assert_eq!(sum3(&mut c3, "mixed", "buy", None), Value::Double(0.6));
    // Spread over seconds, and every WINDOW: the same exactness.
    advance(&mut c, 1);
    for _ in 0..10 {
        one(&mut c, "tenths", "buy", T + 1, 0.1);
    }
    assert_eq!(sum(&mut c, "tenths", "buy", None), "2");
    assert_eq!(sum(&mut c, "tenths", "buy", Some(1)), "1");
    advance(&mut c, 59);
    assert_eq!(sum(&mut c, "tenths", "buy", None), "1", "second T left");
    advance(&mut c, 1);
    assert_eq!(sum(&mut c, "tenths", "buy", None), "0");
    assert_eq!(sum(&mut c, "cancel", "buy", None), "0");
    match sum3(&mut c3, "tenths", "buy", None) {
        Value::Double(d) => assert!(d == 0.0 && d.is_sign_positive(), "{d}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn overflow_is_the_same_infinity_in_every_window_and_recovers() {
    let srv = at_t();
    let mut c = srv.client();
    let mut c3 = srv.client3();
    one(&mut c, "big", "x", T, 1e308);
    one(&mut c, "big", "x", T, 1e308);
    one(&mut c, "neg", "x", T, -1e308);
    one(&mut c, "neg", "x", T, -1e308);
    advance(&mut c, 1);
    one(&mut c, "big", "x", T + 1, 1.0);
    one(&mut c, "neg", "x", T + 1, 1.0);
    // Before this work: inf for the whole window, nan for WINDOW 2.
    assert_eq!(sum(&mut c, "big", "x", None), "inf");
    assert_eq!(sum(&mut c, "big", "x", Some(2)), "inf");
    assert_eq!(sum(&mut c, "big", "x", Some(1)), "1");
    assert_eq!(sum(&mut c, "neg", "x", Some(2)), "-inf");
    assert_eq!(
        sum3(&mut c3, "big", "x", Some(2)),
        Value::Double(f64::INFINITY)
    );
    // The wire form, byte for byte.
    let mut s = srv.raw();
    let want: &[u8] = b"$3\r\ninf\r\n$4\r\n-inf\r\n";
    let got = send_recv(
        &mut s,
        b"EVT.SUM big x WINDOW 2\r\nEVT.SUM neg x\r\n",
        want.len(),
    );
    assert_eq!(got, want);
    // Values that overflow only on the way: the exact sum is finite.
    one(&mut c, "back", "x", T + 1, 1e308);
    one(&mut c, "back", "x", T + 1, 1e308);
    one(&mut c, "back", "x", T + 1, -1e308);
    assert_eq!(
        sum(&mut c, "back", "x", None),
        1e308.to_string(),
        "doubles are written without an exponent"
    );
    // Second T leaves (now T + 60): the sums recover.
    advance(&mut c, 59);
    assert_eq!(sum(&mut c, "big", "x", None), "1");
    assert_eq!(sum(&mut c, "neg", "x", None), "1");
    assert_eq!(
        sum(&mut c, "neg", "x", Some(2)),
        "0",
        "second T + 1 is not among the last 2"
    );
    assert_eq!(sum3(&mut c3, "big", "x", None), Value::Double(1.0));
}

#[test]
fn exact_sums_survive_a_snapshot() {
    let path = std::env::temp_dir().join(format!("sa-analytics-{}.snap", std::process::id()));
    let p = path.to_str().unwrap().to_string();
    let flags = [
        "--clock",
        "manual",
        "--clock-start",
        &T.to_string(),
        "--snapshot",
        &p,
    ];
    let srv = TestServer::start(&flags);
    let mut c = srv.client();
    for _ in 0..10 {
        one(&mut c, "tenths", "buy", T, 0.1);
    }
    one(&mut c, "big", "x", T, 1e308);
    one(&mut c, "big", "x", T, 1e308);
    advance(&mut c, 1);
    one(&mut c, "big", "x", T + 1, 1.0);
    for _ in 0..3 {
        one(&mut c, "tenths", "buy", T + 1, 0.1);
    }
    assert_eq!(v(&mut c, &["SAVE"]), Value::Okay);
    drop(c);
    srv.stop();
    let srv = TestServer::start(&flags);
    let mut c = srv.client();
    // Thirteen 0.1s are 1.3000000000000000444 exactly, three 0.3000000000000000166:
    // rounded once, as math.fsum does.
    assert_eq!(sum(&mut c, "tenths", "buy", None), "1.3");
    assert_eq!(sum(&mut c, "tenths", "buy", Some(1)), "0.30000000000000004");
    assert_eq!(sum(&mut c, "big", "x", None), "inf");
    advance(&mut c, 59);
    assert_eq!(
        sum(&mut c, "big", "x", None),
        "1",
        "recovers after a restart too"
    );
    assert_eq!(sum(&mut c, "tenths", "buy", None), "0.30000000000000004");
    drop(c);
    srv.stop();
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------
// EVT.TOP
// ---------------------------------------------------------------------------------

/// Users with counts 5, 3, 3, 3, 1 and types with 8, 5, 2.
fn fill_top(c: &mut Connection) {
    let mut evs = Vec::new();
    let mut push = |u: &str, t: &'static str, n: usize, v: f64| {
        for _ in 0..n {
            evs.push((u.to_string(), t, T, Some(v)));
        }
    };
    push("carol", "click", 5, 1.0);
    push("bob", "click", 3, 2.5);
    push("alice", "view", 3, 0.1);
    push("dave", "view", 2, 4.0);
    push("dave", "buy", 1, 10.0);
    push("erin", "buy", 1, 19.99);
    madd(c, &evs);
}

#[test]
fn top_users_and_types_ordered_by_count_then_id_in_resp2_and_resp3() {
    let srv = at_t();
    let mut c = srv.client();
    fill_top(&mut c);
    // RESP2: a flat array, as ZRANGE ... WITHSCORES.
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS"]),
        flat(&[
            ("carol", 5),
            ("alice", 3),
            ("bob", 3),
            ("dave", 3),
            ("erin", 1)
        ])
    );
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS", "COUNT", "2"]),
        flat(&[("carol", 5), ("alice", 3)])
    );
    assert_eq!(
        v(&mut c, &["evt.top", "types", "count", "2"]),
        flat(&[("click", 8), ("view", 5)])
    );
    // RESP3: [id, score] pairs.
    let mut c3 = srv.client3();
    assert_eq!(
        v(&mut c3, &["EVT.TOP", "TYPES"]),
        Value::Array(vec![
            flat(&[("click", 8)]),
            flat(&[("view", 5)]),
            flat(&[("buy", 2)]),
        ])
    );
    // Byte for byte, both protocols.
    let mut s = srv.raw();
    let want: &[u8] = b"*4\r\n$5\r\ncarol\r\n:5\r\n$5\r\nalice\r\n:3\r\n";
    assert_eq!(
        send_recv(&mut s, b"EVT.TOP USERS COUNT 2\r\n", want.len()),
        want
    );
    s.write_all(b"HELLO 3\r\nPING\r\n").unwrap();
    let mut seen = Vec::new();
    while !seen.ends_with(b"+PONG\r\n") {
        let more = read_n(&mut s, 1);
        assert!(!more.is_empty(), "no PONG after HELLO 3");
        seen.extend(more);
    }
    let want: &[u8] = b"*1\r\n*2\r\n$5\r\ncarol\r\n:5\r\n";
    assert_eq!(
        send_recv(&mut s, b"EVT.TOP USERS COUNT 1\r\n", want.len()),
        want
    );
}

#[test]
fn top_sum_is_a_leaderboard_of_one_type_with_double_scores() {
    let srv = at_t();
    let mut c = srv.client();
    fill_top(&mut c);
    one(&mut c, "frank", "buy", T, 10.0);
    // dave 10, frank 10 (tie: by id), erin 19.99; users without the type are absent.
    assert_eq!(
        v(&mut c, &["EVT.TOP", "SUM", "buy"]),
        Value::Array(vec![
            bulk("erin"),
            bulk("19.99"),
            bulk("dave"),
            bulk("10"),
            bulk("frank"),
            bulk("10"),
        ])
    );
    // Sums of tenths are exact in the leaderboard too.
    let mut c3 = srv.client3();
    assert_eq!(
        v(&mut c3, &["EVT.TOP", "SUM", "view", "COUNT", "1"]),
        Value::Array(vec![Value::Array(vec![bulk("dave"), Value::Double(8.0)])])
    );
    assert_eq!(
        v(&mut c3, &["EVT.TOP", "SUM", "view", "COUNT", "2"]),
        Value::Array(vec![
            Value::Array(vec![bulk("dave"), Value::Double(8.0)]),
            Value::Array(vec![bulk("alice"), Value::Double(0.30000000000000004)]),
        ]),
        "three 0.1s: the exact sum rounds to 0.30000000000000004, as math.fsum says"
    );
    assert_eq!(
        v(&mut c, &["EVT.TOP", "SUM", "nothing"]),
        Value::Array(vec![])
    );
}

#[test]
fn top_follows_the_window_and_its_last_seconds() {
    let srv = at_t();
    let mut c = srv.client();
    fill_top(&mut c);
    advance(&mut c, 10);
    madd(
        &mut c,
        &[
            ("erin".to_string(), "buy", T + 10, None),
            ("erin".to_string(), "buy", T + 10, None),
            ("zed".to_string(), "view", T + 9, None),
        ],
    );
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS", "WINDOW", "1"]),
        flat(&[("erin", 2)])
    );
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS", "COUNT", "3", "WINDOW", "2"]),
        flat(&[("erin", 2), ("zed", 1)])
    );
    // erin has 3 now, tied with alice, bob and dave: alice comes first.
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS", "COUNT", "5"]),
        flat(&[
            ("carol", 5),
            ("alice", 3),
            ("bob", 3),
            ("dave", 3),
            ("erin", 3)
        ])
    );
    // Second T leaves, before any sweep: only what came later counts.
    advance(&mut c, 50);
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS"]),
        flat(&[("erin", 2), ("zed", 1)])
    );
    assert_eq!(
        v(&mut c, &["EVT.TOP", "TYPES"]),
        flat(&[("buy", 2), ("view", 1)])
    );
    advance(&mut c, 10);
    assert_eq!(v(&mut c, &["EVT.TOP", "USERS"]), Value::Array(vec![]));
}

#[test]
fn twenty_thousand_users_tied_at_one_give_the_smallest_ids() {
    let srv = at_t();
    let mut c = srv.client();
    // Inserted in descending order so that no structure gets the order for free.
    let evs: Vec<(String, &str, i64, Option<f64>)> = (0..20_000)
        .rev()
        .map(|i| (format!("user{i:06}"), "click", T, None))
        .collect();
    madd(&mut c, &evs);
    let want: Vec<Value> = (0..10)
        .flat_map(|i| [bulk(&format!("user{i:06}")), Value::Int(1)])
        .collect();
    assert_eq!(v(&mut c, &["EVT.TOP", "USERS"]), Value::Array(want));
    // One pulls ahead; a shorter window scans and agrees.
    one(&mut c, "user019999", "click", T, 0.0);
    let want = vec![
        bulk("user019999"),
        Value::Int(2),
        bulk("user000000"),
        Value::Int(1),
        bulk("user000001"),
        Value::Int(1),
    ];
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS", "COUNT", "3"]),
        Value::Array(want.clone())
    );
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS", "COUNT", "3", "WINDOW", "30"]),
        Value::Array(want)
    );
    // The longest list.
    match v(&mut c, &["EVT.TOP", "USERS", "COUNT", "1000"]) {
        Value::Array(items) => {
            assert_eq!(items.len(), 2000);
            assert_eq!(items[1998], bulk("user000998"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_scan_over_many_users_answers_while_other_clients_are_served() {
    let srv = at_t();
    let mut c = srv.client();
    let evs: Vec<(String, &str, i64, Option<f64>)> = (0..200_000)
        .map(|i| (format!("u{i}"), "click", T - (i % 50), Some(1.0)))
        .collect();
    madd(&mut c, &evs);
    // WINDOW 10 cannot use the ranking: every user is read, in steps.
    let done = Arc::new(AtomicBool::new(false));
    let pinger = {
        let done = done.clone();
        let mut p = srv.client();
        std::thread::spawn(move || {
            let mut pings = 0u64;
            while !done.load(Ordering::Relaxed) {
                let pong: String = redis::cmd("PING").query(&mut p).expect("PING");
                assert_eq!(pong, "PONG");
                pings += 1;
            }
            pings
        })
    };
    // The users with i % 50 < 10 have their event in the last 10 seconds: 40,000 tie
    // at 1, and the smallest ids bytewise win ("u10" is at T - 10). A hundred is more
    // than the ranking's edge holds: every user is read.
    let mut tied: Vec<String> = (0..200_000)
        .filter(|i| i % 50 < 10)
        .map(|i| format!("u{i}"))
        .collect();
    tied.sort_unstable();
    let want: Vec<Value> = tied[..100]
        .iter()
        .flat_map(|u| [bulk(u), Value::Int(1)])
        .collect();
    assert_eq!(
        &want[..6],
        &[
            bulk("u0"),
            Value::Int(1),
            bulk("u1"),
            Value::Int(1),
            bulk("u100"),
            Value::Int(1)
        ]
    );
    for _ in 0..5 {
        let got = v(
            &mut c,
            &["EVT.TOP", "USERS", "COUNT", "100", "WINDOW", "10"],
        );
        assert_eq!(got, Value::Array(want.clone()));
    }
    done.store(true, Ordering::Relaxed);
    let pings = pinger.join().expect("pinger");
    assert!(pings > 0, "another client was served while the scans ran");
    // The replies of a pipeline keep their order around a scan.
    let mut p = redis::pipe();
    p.cmd("PING")
        .cmd("EVT.TOP")
        .arg("TYPES")
        .arg("WINDOW")
        .arg(5)
        .cmd("EVT.TOTAL")
        .arg("WINDOW")
        .arg(5);
    let (pong, types, total): (String, Value, i64) = p.query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(types, Value::Array(vec![bulk("click"), Value::Int(20_000)]));
    assert_eq!(total, 20_000);
}

#[test]
fn top_refuses_what_it_cannot_answer() {
    let srv = at_t();
    let mut c = srv.client();
    let err = |c: &mut Connection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        query_err(c, &cmd)
    };
    assert_eq!(
        err(&mut c, &["EVT.TOP"]),
        "ERR wrong number of arguments for 'evt.top' command"
    );
    assert_eq!(err(&mut c, &["EVT.TOP", "PEOPLE"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["EVT.TOP", "SUM"]), "ERR syntax error");
    for bad in ["0", "1001", "-1", "ten", "1.5"] {
        assert_eq!(
            err(&mut c, &["EVT.TOP", "USERS", "COUNT", bad]),
            "ERR COUNT must be an integer from 1 to 1000"
        );
    }
    assert_eq!(
        err(&mut c, &["EVT.TOP", "USERS", "WINDOW", "61"]),
        "ERR WINDOW must be an integer from 1 to 60"
    );
    assert_eq!(
        err(&mut c, &["EVT.TOP", "USERS", "COUNT", "1", "COUNT", "2"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut c, &["EVT.ACTIVE", "THINGS"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["EVT.SERIES", "SUM", "u"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["EVT.SERIES", "USER", "u", "LOCAL"]),
        "ERR syntax error",
        "a user's series is answered by its node"
    );
    assert_eq!(
        err(&mut c, &["EVT.PROFILE"]),
        "ERR wrong number of arguments for 'evt.profile' command"
    );
    // Options in either order.
    assert_eq!(
        v(&mut c, &["EVT.TOP", "USERS", "WINDOW", "5", "COUNT", "3"]),
        Value::Array(vec![])
    );
}

// ---------------------------------------------------------------------------------
// EVT.ACTIVE, EVT.SERIES, EVT.PROFILE
// ---------------------------------------------------------------------------------

#[test]
fn active_counts_distinct_keys_exactly_in_every_window() {
    let srv = at_t();
    let mut c = srv.client();
    madd(
        &mut c,
        &[
            ("a".to_string(), "x", T - 30, None),
            ("a".to_string(), "y", T - 5, None),
            ("b".to_string(), "x", T, None),
            ("b".to_string(), "x", T, None),
            ("c".to_string(), "z", T - 59, None),
        ],
    );
    let active = |c: &mut Connection, what: &str, w: Option<&str>| -> i64 {
        let mut cmd = redis::cmd("EVT.ACTIVE");
        cmd.arg(what);
        if let Some(w) = w {
            cmd.arg("WINDOW").arg(w);
        }
        cmd.query(c).unwrap()
    };
    assert_eq!(active(&mut c, "USERS", None), 3);
    assert_eq!(active(&mut c, "TYPES", None), 3);
    assert_eq!(active(&mut c, "PAIRS", None), 4);
    assert_eq!(active(&mut c, "USERS", Some("1")), 1);
    assert_eq!(active(&mut c, "TYPES", Some("6")), 2);
    assert_eq!(active(&mut c, "PAIRS", Some("31")), 3);
    // Second T-59 leaves; before any sweep, the counts already say so.
    advance(&mut c, 1);
    assert_eq!(active(&mut c, "USERS", None), 2);
    assert_eq!(active(&mut c, "TYPES", None), 2);
    assert_eq!(active(&mut c, "PAIRS", None), 3);
    let mut c3 = srv.client3();
    assert_eq!(v(&mut c3, &["EVT.ACTIVE", "USERS"]), Value::Int(2));
}

#[test]
fn series_are_per_second_oldest_first_zeros_included() {
    let srv = at_t();
    let mut c = srv.client();
    madd(
        &mut c,
        &[
            ("a".to_string(), "x", T - 2, Some(0.1)),
            ("a".to_string(), "x", T - 2, Some(0.2)),
            ("a".to_string(), "y", T, Some(5.0)),
            ("b".to_string(), "x", T, Some(1.0)),
            ("b".to_string(), "x", T - 59, None),
        ],
    );
    assert_eq!(
        v(&mut c, &["EVT.SERIES", "TOTAL", "WINDOW", "4"]),
        ints(&[0, 2, 0, 2])
    );
    assert_eq!(
        v(&mut c, &["EVT.SERIES", "USER", "a", "WINDOW", "3"]),
        ints(&[2, 0, 1])
    );
    assert_eq!(
        v(&mut c, &["EVT.SERIES", "TYPE", "x", "WINDOW", "3"]),
        ints(&[2, 0, 1])
    );
    // The whole window by default: 60 values, the oldest second first.
    match v(&mut c, &["EVT.SERIES", "USER", "b"]) {
        Value::Array(v) => {
            assert_eq!(v.len(), 60);
            assert_eq!(
                (v[0].clone(), v[59].clone()),
                (Value::Int(1), Value::Int(1))
            );
            assert!(v[1..59].iter().all(|x| *x == Value::Int(0)));
        }
        other => panic!("{other:?}"),
    }
    // Sums: bulk strings in RESP2, doubles in RESP3; each second exact.
    assert_eq!(
        v(&mut c, &["EVT.SERIES", "SUM", "a", "x", "WINDOW", "3"]),
        Value::Array(vec![bulk("0.30000000000000004"), bulk("0"), bulk("0")])
    );
    let mut c3 = srv.client3();
    assert_eq!(
        v(&mut c3, &["EVT.SERIES", "SUM", "a", "y", "WINDOW", "2"]),
        Value::Array(vec![Value::Double(0.0), Value::Double(5.0)])
    );
    assert_eq!(
        v(&mut c3, &["EVT.SERIES", "USER", "nobody", "WINDOW", "2"]),
        ints(&[0, 0])
    );
    advance(&mut c, 1);
    assert_eq!(
        v(&mut c, &["EVT.SERIES", "TOTAL", "WINDOW", "3"]),
        ints(&[0, 2, 0]),
        "the current second is last"
    );
}

#[test]
fn profile_lists_a_users_types_with_counts_and_exact_sums() {
    let srv = at_t();
    let mut c = srv.client();
    madd(
        &mut c,
        &[
            ("u".to_string(), "view", T - 10, None),
            ("u".to_string(), "buy", T, Some(1e16)),
            ("u".to_string(), "buy", T, Some(1.0)),
            ("u".to_string(), "buy", T, Some(-1e16)),
            ("u".to_string(), "add_to_cart", T - 1, Some(0.5)),
        ],
    );
    assert_eq!(
        v(&mut c, &["EVT.PROFILE", "u"]),
        Value::Array(vec![
            Value::Array(vec![bulk("add_to_cart"), Value::Int(1), bulk("0.5")]),
            Value::Array(vec![bulk("buy"), Value::Int(3), bulk("1")]),
            Value::Array(vec![bulk("view"), Value::Int(1), bulk("0")]),
        ])
    );
    let mut c3 = srv.client3();
    assert_eq!(
        v(&mut c3, &["EVT.PROFILE", "u", "WINDOW", "1"]),
        Value::Array(vec![Value::Array(vec![
            bulk("buy"),
            Value::Int(3),
            Value::Double(1.0)
        ])])
    );
    assert_eq!(v(&mut c, &["EVT.PROFILE", "nobody"]), Value::Array(vec![]));
}

// ---------------------------------------------------------------------------------
// Exact at every moment
// ---------------------------------------------------------------------------------

#[test]
fn info_distinct_counts_are_exact_right_after_the_clock_moves() {
    let srv = at_t();
    let mut c = srv.client();
    const USERS: i64 = 50_000;
    // Half the users at T - 30, half at T: advancing 31 seconds removes exactly half.
    let evs: Vec<(String, &str, i64, Option<f64>)> = (0..USERS)
        .map(|i| {
            let t = if i % 2 == 0 { T - 30 } else { T };
            (
                format!("user{i}"),
                if i % 3 == 0 { "a" } else { "b" },
                t,
                Some(1.0),
            )
        })
        .collect();
    madd(&mut c, &evs);
    assert_eq!(info_i64(&mut c, "active_users"), USERS);
    advance(&mut c, 31);
    // No waiting for the sweep: the first INFO after the move is exact.
    assert_eq!(info_i64(&mut c, "active_users"), USERS / 2);
    assert_eq!(info_i64(&mut c, "active_user_event_types"), USERS / 2);
    assert_eq!(info_i64(&mut c, "active_event_types"), 2);
    advance(&mut c, 30);
    assert_eq!(info_i64(&mut c, "active_users"), 0);
    assert_eq!(info_i64(&mut c, "active_event_types"), 0);
    assert_eq!(info_i64(&mut c, "active_user_event_types"), 0);
    // 50,000 users all leaving at once, ADVANCE 61 as the issue reports it.
    let t = clock(&mut c);
    let evs: Vec<(String, &str, i64, Option<f64>)> = (0..USERS)
        .map(|i| (format!("user{i}"), "a", t, None))
        .collect();
    madd(&mut c, &evs);
    assert_eq!(info_i64(&mut c, "active_users"), USERS);
    advance(&mut c, 61);
    let text = info(&mut c, Some("analytics"));
    for field in [
        "active_users",
        "active_event_types",
        "active_user_event_types",
        "window_events",
    ] {
        assert_eq!(info_field(&text, field).as_deref(), Some("0"), "{field}");
    }
    assert_eq!(v(&mut c, &["EVT.ACTIVE", "USERS"]), Value::Int(0));
    assert_eq!(v(&mut c, &["EVT.TOP", "USERS"]), Value::Array(vec![]));
}

#[test]
fn inside_exec_every_answer_is_of_one_instant_under_concurrent_writers() {
    let srv = at_t();
    let mut c = srv.client();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let stop = stop.clone();
            let mut con = srv.client();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let now = clock(&mut con);
                    let mut cmd = redis::cmd("EVT.MADD");
                    for j in 0..20 {
                        let u = format!("w{w}u{}", (i * 7 + j) % 300);
                        cmd.arg(event(&u, if j % 2 == 0 { "a" } else { "b" }, now, 0.1));
                    }
                    let _: Vec<String> = cmd.query(&mut con).expect("EVT.MADD");
                    i += 1;
                }
            })
        })
        .collect();
    for round in 0..40 {
        if round % 10 == 9 {
            advance(&mut c, 1);
        }
        let mut p = redis::pipe();
        p.atomic()
            .cmd("EVT.TOTAL")
            .cmd("EVT.SERIES")
            .arg("TOTAL")
            .cmd("EVT.TOP")
            .arg("USERS")
            .arg("COUNT")
            .arg(1000)
            .cmd("EVT.ACTIVE")
            .arg("USERS")
            .cmd("EVT.TOP")
            .arg("TYPES")
            .cmd("EVT.ACTIVE")
            .arg("PAIRS");
        let (total, series, top, active, types, pairs): (
            i64,
            Vec<i64>,
            Vec<Value>,
            i64,
            Vec<Value>,
            i64,
        ) = p.query(&mut c).expect("EXEC");
        assert_eq!(series.iter().sum::<i64>(), total, "round {round}");
        let counts: Vec<i64> = top
            .chunks(2)
            .map(|p| match p[1] {
                Value::Int(n) => n,
                ref other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            counts.len() as i64,
            active,
            "round {round}: every user listed once"
        );
        assert_eq!(counts.iter().sum::<i64>(), total, "round {round}");
        let type_total: i64 = types
            .chunks(2)
            .map(|p| match p[1] {
                Value::Int(n) => n,
                ref other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(type_total, total, "round {round}");
        assert!(pairs >= active && pairs <= 2 * active, "round {round}");
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
}

#[test]
fn commands_describe_themselves_and_name_their_keys() {
    let srv = at_t();
    let mut c = srv.client();
    for name in ["evt.top", "evt.active", "evt.series", "evt.profile"] {
        match v(&mut c, &["COMMAND", "DOCS", name]) {
            Value::Array(v) => assert_eq!(v.first(), Some(&bulk(name)), "{name}"),
            Value::Map(m) => assert_eq!(m.first().map(|p| &p.0), Some(&bulk(name))),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(
        v(&mut c, &["COMMAND", "GETKEYS", "EVT.PROFILE", "alice"]),
        Value::Array(vec![bulk("alice")])
    );
    assert_eq!(
        v(
            &mut c,
            &["COMMAND", "GETKEYS", "EVT.SERIES", "SUM", "bob", "buy"]
        ),
        Value::Array(vec![bulk("bob")])
    );
    let e = query_err(
        &mut c,
        redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg("EVT.SERIES")
            .arg("TOTAL"),
    );
    assert!(e.starts_with("ERR"), "{e}");
}
