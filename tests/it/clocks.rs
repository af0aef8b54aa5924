//! Time: the wall, event and manual clocks, where each starts and how it may move;
//! late events, future events within and beyond `--max-future-skew`, and the event
//! clock's `--max-clock-jump`.

use crate::common::*;

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

#[test]
fn one_event_cannot_end_the_event_clock() {
    let srv = TestServer::start(&["--clock", "event"]);
    let mut c = srv.client();
    assert_eq!(add(&mut c, &bare_event("a", "view", 1_700_000_000)), Ok(()));
    let err = add(&mut c, &bare_event("a", "view", 4_294_967_295)).unwrap_err();
    assert!(
        err.starts_with("ERR event is too far in the future: timestamp 4294967295 > now 1700000000 + max-clock-jump 86400"),
        "{err}"
    );
    assert_eq!(clock(&mut c), 1_700_000_000);
    assert_eq!(add(&mut c, &bare_event("a", "view", 1_700_000_001)), Ok(()));
    assert_eq!(q_i64(&mut c, &["EVT.USER", "a"]), 2);
    assert_eq!(info_i64(&mut c, "events_future"), 1);
    // A day ahead is fine (replaying a recording with a gap).
    assert_eq!(add(&mut c, &bare_event("a", "view", 1_700_086_401)), Ok(()));
    q(&mut c, &["CONFIG", "SET", "max-clock-jump", "10"]).unwrap();
    assert!(add(&mut c, &bare_event("a", "view", 1_700_086_412)).is_err());
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

#[test]
fn the_manual_clock_starts_where_asked() {
    let srv = TestServer::start(&["--clock", "manual", "--clock-start", "1700000000"]);
    let mut c = srv.client();
    assert_eq!(clock(&mut c), 1_700_000_000);
    assert_eq!(
        q_i64(&mut c, &["EVT.CLOCK", "SET", "1700000005"]),
        1_700_000_005
    );
}
