//! Transactions (issue 11): MULTI / EXEC / DISCARD / WATCH / UNWATCH through real
//! clients, with Redis's replies, and EXEC's one instant under concurrent writers.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;
use redis::Value;

#[test]
fn an_atomic_pipeline_runs_as_one_transaction_in_resp2_and_resp3() {
    let srv = TestServer::start(&["--clock", "manual"]);
    for (proto, mut c) in [(2, srv.client()), (3, srv.client3())] {
        let now = clock(&mut c);
        let user = format!("u-resp{proto}");
        let ((), count, sum): ((), i64, f64) = redis::pipe()
            .atomic()
            .cmd("EVT.ADD")
            .arg(event(&user, "buy", now, 2.5))
            .cmd("EVT.USER")
            .arg(&user)
            .cmd("EVT.SUM")
            .arg(&user)
            .arg("buy")
            .query(&mut c)
            .expect("atomic pipeline");
        assert_eq!(count, 1);
        assert_eq!(sum, 2.5);
    }
}

#[test]
fn queued_commands_wait_for_exec_and_discard_drops_them() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut c = srv.client();
    let mut other = srv.client();
    let now = clock(&mut c);
    assert_eq!(q(&mut c, &["MULTI"]), Ok(Value::Okay));
    assert_eq!(
        q(&mut c, &["EVT.ADD", &bare_event("a", "view", now)]),
        Ok(Value::SimpleString("QUEUED".into()))
    );
    assert_eq!(
        q(&mut c, &["EVT.USER", "a"]),
        Ok(Value::SimpleString("QUEUED".into()))
    );
    // Not applied yet: another client sees nothing.
    assert_eq!(q(&mut other, &["EVT.TOTAL"]), Ok(Value::Int(0)));
    assert_eq!(
        q(&mut c, &["EXEC"]),
        Ok(Value::Array(vec![Value::Okay, Value::Int(1)]))
    );
    assert_eq!(q(&mut other, &["EVT.TOTAL"]), Ok(Value::Int(1)));
    // DISCARD forgets the queue.
    assert_eq!(q(&mut c, &["MULTI"]), Ok(Value::Okay));
    q(&mut c, &["EVT.ADD", &bare_event("a", "view", now)]).unwrap();
    assert_eq!(q(&mut c, &["DISCARD"]), Ok(Value::Okay));
    assert_eq!(q(&mut c, &["EVT.TOTAL"]), Ok(Value::Int(1)));
}

#[test]
fn transaction_errors_are_worded_as_redis() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut c = srv.client();
    assert_eq!(q(&mut c, &["EXEC"]), Err("ERR EXEC without MULTI".into()));
    assert_eq!(
        q(&mut c, &["DISCARD"]),
        Err("ERR DISCARD without MULTI".into())
    );
    q(&mut c, &["MULTI"]).unwrap();
    assert_eq!(
        q(&mut c, &["MULTI"]),
        Err("ERR MULTI calls can not be nested".into())
    );
    assert_eq!(
        q(&mut c, &["WATCH", "a"]),
        Err("ERR WATCH inside MULTI is not allowed".into())
    );
    // A refusal while queueing dooms the transaction.
    let e = q(&mut c, &["NOSUCH", "x"]).unwrap_err();
    assert!(e.starts_with("ERR unknown command 'NOSUCH'"), "{e}");
    assert_eq!(
        q(&mut c, &["EXEC"]),
        Err("EXECABORT Transaction discarded because of previous errors.".into())
    );
    q(&mut c, &["MULTI"]).unwrap();
    assert_eq!(
        q(&mut c, &["EVT.USER"]),
        Err("ERR wrong number of arguments for 'evt.user' command".into())
    );
    assert!(q(&mut c, &["EXEC"]).unwrap_err().starts_with("EXECABORT"));
    q(&mut c, &["MULTI"]).unwrap();
    assert_eq!(
        q(&mut c, &["SHUTDOWN"]),
        Err("ERR Command not allowed inside a transaction".into())
    );
    assert!(q(&mut c, &["EXEC"]).unwrap_err().starts_with("EXECABORT"));
    // Errors when running are per command, inside EXEC's array.
    let mut raw = srv.raw();
    let mut req = resp_str(&["MULTI"]);
    req.extend(resp_str(&["EVT.ADD", "not json"]));
    req.extend(resp_str(&["EVT.TOTAL"]));
    req.extend(resp_str(&["EXEC"]));
    let want =
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR invalid event: expected a JSON object\r\n:0\r\n";
    let got = String::from_utf8_lossy(&send_recv(&mut raw, &req, want.len())).into_owned();
    assert_eq!(got, want);
}

#[test]
fn watch_makes_exec_answer_null_when_an_event_for_a_watched_user_came_first() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut a = srv.client();
    let mut b = srv.client();
    let now = clock(&mut a);
    q(&mut a, &["WATCH", "alice", "bob"]).unwrap();
    add(&mut b, &bare_event("carol", "view", now)).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    q(&mut a, &["EVT.USER", "alice"]).unwrap();
    assert_eq!(q(&mut a, &["EXEC"]), Ok(Value::Array(vec![Value::Int(0)])));
    // An event for a watched user between WATCH and EXEC: EXEC does nothing.
    q(&mut a, &["WATCH", "alice"]).unwrap();
    add(&mut b, &bare_event("alice", "view", now)).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    q(&mut a, &["EVT.ADD", &bare_event("alice", "view", now)]).unwrap();
    assert_eq!(q(&mut a, &["EXEC"]), Ok(Value::Nil));
    assert_eq!(q(&mut a, &["EVT.USER", "alice"]), Ok(Value::Int(1)));
    // In RESP2 on the wire that is the null array.
    let mut raw = srv.raw();
    let mut req = resp_str(&["WATCH", "dave"]);
    req.extend(resp_str(&["EVT.ADD", &bare_event("dave", "view", now)]));
    req.extend(resp_str(&["MULTI"]));
    req.extend(resp_str(&["EXEC"]));
    let want = b"+OK\r\n+OK\r\n+OK\r\n*-1\r\n";
    assert_eq!(send_recv(&mut raw, &req, want.len()), want);
    // UNWATCH forgets, and EXEC has unwatched too.
    q(&mut a, &["WATCH", "alice"]).unwrap();
    q(&mut a, &["UNWATCH"]).unwrap();
    add(&mut b, &bare_event("alice", "view", now)).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    q(&mut a, &["EVT.USER", "alice"]).unwrap();
    assert_eq!(q(&mut a, &["EXEC"]), Ok(Value::Array(vec![Value::Int(2)])));
    // FLUSHALL touches every watched user.
    q(&mut a, &["WATCH", "alice"]).unwrap();
    q(&mut b, &["FLUSHALL"]).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    q(&mut a, &["EVT.TOTAL"]).unwrap();
    assert_eq!(q(&mut a, &["EXEC"]), Ok(Value::Nil));
}

#[test]
fn a_transaction_has_bounded_size() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut raw = srv.raw();
    let mut req = resp_str(&["MULTI"]);
    for _ in 0..1001 {
        req.extend(resp_str(&["EVT.TOTAL"]));
    }
    req.extend(resp_str(&["EXEC"]));
    raw.write_all(&req).unwrap();
    let got = read_until_suffix(&mut raw, b"previous errors.\r\n");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("+QUEUED").count(), 1000, "{}", &text[..200]);
    assert!(
        text.contains("-ERR transaction too long"),
        "{}",
        &text[text.len() - 400..]
    );
    assert!(text.ends_with("-EXECABORT Transaction discarded because of previous errors.\r\n"));
}

/// Eight writers add events while a reader's transactions read the total and every
/// user's count: each EXEC sees one instant, so the counts always add up.
#[test]
fn exec_reads_one_instant_under_concurrent_writers() {
    const USERS: usize = 40;
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut c = srv.client();
    let now = clock(&mut c);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = srv.url();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url)
                    .and_then(|c| c.get_connection())
                    .expect("writer connects");
                let mut sent = 0u64;
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let mut p = redis::pipe();
                    for _ in 0..32 {
                        p.cmd("EVT.ADD")
                            .arg(bare_event(&format!("u{}", i % USERS), "view", now))
                            .ignore();
                        i += 7;
                    }
                    p.query::<()>(&mut c).expect("writes");
                    sent += 32;
                }
                sent
            })
        })
        .collect();
    let mut checked = 0;
    while checked < 150 {
        let mut p = redis::pipe();
        p.atomic().cmd("EVT.TOTAL");
        for u in 0..USERS {
            p.cmd("EVT.USER").arg(format!("u{u}"));
        }
        let counts: Vec<i64> = p.query(&mut c).expect("EXEC");
        let (total, users) = counts.split_first().expect("replies");
        assert_eq!(
            *total,
            users.iter().sum::<i64>(),
            "EXEC saw writes in the middle"
        );
        checked += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert_eq!(q(&mut c, &["EVT.TOTAL"]), Ok(Value::Int(sent as i64)));
}

#[test]
fn with_appendfsync_always_exec_answers_once_its_events_are_durable() {
    let dir = std::env::temp_dir().join(format!("sa-tx-always-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let srv = TestServer::start(&[
        "--clock",
        "manual",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        d,
    ]);
    let mut c = srv.client();
    let now = clock(&mut c);
    let (added, madd): ((), Vec<Value>) = redis::pipe()
        .atomic()
        .cmd("EVT.ADD")
        .arg(bare_event("a", "view", now))
        .cmd("EVT.MADD")
        .arg(bare_event("b", "view", now))
        .arg(bare_event("c", "view", now))
        .query(&mut c)
        .expect("EXEC under appendfsync always");
    let () = added;
    assert_eq!(madd.len(), 2);
    assert_eq!(madd, [Value::Okay, Value::Okay]);
    assert_eq!(q(&mut c, &["EVT.TOTAL"]), Ok(Value::Int(3)));
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
