//! The 60-second window's answers through a real client: `EVT.TOTAL`, `EVT.USER`,
//! `EVT.TYPE` and `EVT.SUM` with and without `WINDOW`, exact at the second boundary,
//! sums that return to exactly zero, expiry at scale, many writers at once, FLUSHALL,
//! the figures INFO and DBSIZE give, and a narrower `--window`.
//!
//! Time moves only by `EVT.CLOCK` (the manual clock).

use std::time::{Duration, Instant};

use redis::Value;

use crate::common::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
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
// FLUSHALL, INFO, DBSIZE, --window
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

/// Sends every command of `cmds` in one write, then reads one reply each.
fn pipelined(s: &mut Raw, cmds: &[&[&str]]) -> Vec<R> {
    let bytes: Vec<u8> = cmds.iter().flat_map(|c| resp_str(c)).collect();
    s.send(&bytes);
    cmds.iter().map(|_| s.reply()).collect()
}

/// Issue 9, item 4: with 1M event types, each DBSIZE took 165 ms under the shard
/// locks, and 50 pipelined DBSIZE froze every client for 8.6 s. Here (200,000 types,
/// a debug build, two cores) 50 DBSIZE and 10 INFO took 25.8 s before the fix, a
/// concurrent PING waited as long, and DBSIZE after the clock move still counted all
/// 401,000 keys.
#[test]
fn dbsize_and_info_over_many_types_are_instant_and_exact_before_the_sweep() {
    const TYPES: usize = 200_000;
    const USERS: usize = 1_000;
    // One serving thread, as on a two-core machine: whatever holds it stalls everyone.
    let srv = Spawned::start(&["--clock", "manual", "--threads", "1"]);
    let mut s = Raw::connect(srv.addr);
    let now = s.cmd(&["EVT.CLOCK"]).int();
    // Every type once, for one of 1,000 users; the even half 40 seconds ago (so even
    // users hold only old events), the odd half now.
    let events: Vec<String> = (0..TYPES)
        .map(|i| {
            let ts = if i % 2 == 0 { now - 40 } else { now };
            event(&format!("u{}", i % USERS), &format!("type-{i}"), ts, 1.0)
        })
        .collect();
    assert!(madd_accepted(&mut s, &events).iter().all(|&a| a));
    let keys = (USERS + TYPES + TYPES) as i64;
    assert_eq!(s.cmd(&["DBSIZE"]).int(), keys);

    // 50 DBSIZE and 10 INFO in one pipeline, while another client pings.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let (stop, addr) = (stop.clone(), srv.addr);
        std::thread::spawn(move || {
            let mut p = Raw::connect(addr);
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                assert_eq!(p.cmd(&["PING"]), R::Simple("PONG".into()));
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(2));
            }
            worst
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut cmds: Vec<&[&str]> = vec![&["DBSIZE"]; 50];
    cmds.extend(std::iter::repeat_n(&["INFO"][..], 10));
    let started = Instant::now();
    let replies = pipelined(&mut s, &cmds);
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst_ping = pinger.join().expect("pinger");
    for r in &replies[..50] {
        assert_eq!(r.int(), keys);
    }
    for r in &replies[50..] {
        let info = r.text();
        assert_eq!(
            num_field(&info, "active_event_types"),
            TYPES as i64,
            "{info}"
        );
    }
    // Generous bounds: the same work took 25 s before.
    assert!(
        took < Duration::from_secs(2),
        "50 DBSIZE + 10 INFO took {took:?}"
    );
    assert!(
        worst_ping < Duration::from_secs(1),
        "a PING waited {worst_ping:?}"
    );

    // The clock moves 25 s: the even half (then 65 s old) has left the window. DBSIZE
    // and INFO in the same pipeline as the move, before the sweep has removed
    // anything, already count only what is in the window.
    let replies = pipelined(
        &mut s,
        &[&["EVT.CLOCK", "ADVANCE", "25"], &["DBSIZE"], &["INFO"]],
    );
    let half = TYPES / 2;
    assert_eq!(replies[1].int(), (USERS / 2 + half + half) as i64);
    let info = replies[2].text();
    assert_eq!(
        num_field(&info, "active_users"),
        (USERS / 2) as i64,
        "{info}"
    );
    assert_eq!(
        num_field(&info, "active_event_types"),
        half as i64,
        "{info}"
    );
    assert_eq!(
        num_field(&info, "active_user_event_types"),
        half as i64,
        "{info}"
    );
    assert_eq!(num_field(&info, "window_events"), half as i64, "{info}");
    // And once the sweep has run (one wheel entry left per user and per type, each
    // type here having one user), the same.
    let info = wait_info_num(&mut s, "wheel_entries", (USERS / 2 + half) as i64);
    assert_eq!(
        num_field(&info, "active_event_types"),
        half as i64,
        "{info}"
    );
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
