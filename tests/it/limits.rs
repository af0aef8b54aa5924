//! Limits that keep one client from hurting the others, through real sockets:
//! `--maxclients`, the idle `--timeout`, TCP keepalive, the output buffer (a client
//! that does not read is paused, then disconnected), the query buffer, `--maxmemory`,
//! memory given back after large requests and bursts, cheap requests that would cost
//! the server dearly, the ranges `CONFIG SET` accepts, and the guard against HTTP
//! requests sent to the RESP port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;
use redis::Value;

const MAXCLIENTS: &str = "-ERR max number of clients reached\r\n";

// ---------------------------------------------------------------------------------
// Cross-protocol requests
// ---------------------------------------------------------------------------------

#[test]
fn an_http_request_is_dropped_without_a_reply_and_without_running_anything() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut c = srv.client();
    let now = clock(&mut c);
    let ev = event("browser", "view", now, 1.0);

    // A browser's POST, with a command smuggled in its body.
    let mut s = srv.raw();
    let mut req =
        b"POST / HTTP/1.1\r\nHost: localhost:6379\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    req.extend_from_slice(&resp_str(&["EVT.ADD", &ev]));
    s.write_all(&req).ok();
    let (bytes, closed) = read_until_closed(&mut s);
    assert!(closed, "a POST should close the connection");
    assert!(
        bytes.is_empty(),
        "replied {:?}",
        String::from_utf8_lossy(&bytes)
    );

    // `Host:` as the first line.
    let mut s = srv.raw();
    s.write_all(format!("Host: evil.example\r\nEVT.ADD '{ev}'\r\n").as_bytes())
        .ok();
    let (bytes, closed) = read_until_closed(&mut s);
    assert!(closed, "a Host: line should close the connection");
    assert!(
        bytes.is_empty(),
        "replied {:?}",
        String::from_utf8_lossy(&bytes)
    );

    // A GET request is closed at its Host: line.
    let mut s = srv.raw();
    s.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n*2\r\n$7\r\nEVT.ADD\r\n${}\r\n{ev}\r\n",
            ev.len()
        )
        .as_bytes(),
    )
    .ok();
    let (_, closed) = read_until_closed(&mut s);
    assert!(closed, "a GET request should be closed at its Host: line");

    // Nothing ran, and others are served as before.
    assert_eq!(total(&mut c, None), 0);
    assert!(pings(srv.addr));
    let mut s = srv.raw();
    assert_eq!(send_recv(&mut s, b"PING\r\n", 7), b"+PONG\r\n");
}

// ---------------------------------------------------------------------------------
// Connections: maxclients, timeout, keepalive
// ---------------------------------------------------------------------------------

#[test]
fn maxclients_refuses_the_next_client_with_an_error_and_counts_it() {
    let srv = TestServer::start(&["--maxclients", "2"]);
    let mut a = Raw::connect(srv.addr);
    assert_eq!(a.cmd(&["PING"]), R::Simple("PONG".into()));
    let mut b = Raw::connect(srv.addr);
    assert_eq!(b.cmd(&["PING"]), R::Simple("PONG".into()));

    let mut third = srv.raw();
    let (bytes, closed) = read_until_closed(&mut third);
    assert_eq!(String::from_utf8_lossy(&bytes), MAXCLIENTS);
    assert!(closed, "the refused client should be disconnected");

    let info = a.info();
    assert_eq!(num_field(&info, "rejected_connections"), 1, "{info}");
    assert_eq!(num_field(&info, "connected_clients"), 2, "{info}");
    assert_eq!(num_field(&info, "total_connections_received"), 2, "{info}");
    assert_eq!(num_field(&info, "maxclients"), 2, "{info}");

    // A freed slot takes a new client.
    drop(b);
    wait_info_num(&mut a, "connected_clients", 1);
    let mut d = Raw::connect(srv.addr);
    assert_eq!(d.cmd(&["PING"]), R::Simple("PONG".into()));
    // The limit holds again, and CONFIG SET raises it.
    let mut e = srv.raw();
    assert_eq!(
        String::from_utf8_lossy(&read_until_closed(&mut e).0),
        MAXCLIENTS
    );
    assert_eq!(
        a.cmd(&["CONFIG", "SET", "maxclients", "3"]),
        R::Simple("OK".into())
    );
    let mut f = Raw::connect(srv.addr);
    assert_eq!(f.cmd(&["PING"]), R::Simple("PONG".into()));
    assert_eq!(num_field(&a.info(), "rejected_connections"), 2);
}

#[test]
fn timeout_closes_idle_clients_only() {
    let srv = TestServer::start(&["--timeout", "1"]);
    let mut idle = Raw::connect(srv.addr);
    assert_eq!(idle.cmd(&["PING"]), R::Simple("PONG".into()));
    let mut busy = Raw::connect(srv.addr);
    // The busy client talks every 200 ms until the idle one is gone.
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let (bytes, closed) = idle.until_closed();
        let _ = tx.send(());
        (bytes, closed)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.try_recv().is_err() {
        assert!(
            Instant::now() < deadline,
            "the idle client was never closed"
        );
        assert_eq!(busy.cmd(&["PING"]), R::Simple("PONG".into()));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (bytes, closed) = waiter.join().unwrap();
    assert!(closed, "the idle client was not closed");
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(busy.cmd(&["PING"]), R::Simple("PONG".into()));
    // CONFIG SET timeout 0 turns it off for everyone.
    assert_eq!(
        busy.cmd(&["CONFIG", "SET", "timeout", "0"]),
        R::Simple("OK".into())
    );
    assert_eq!(
        busy.cmd(&["CONFIG", "GET", "timeout"]),
        R::Array(vec![R::Bulk(b"timeout".to_vec()), R::Bulk(b"0".to_vec())])
    );
}

/// The server side of `port`'s established connections, as `ss` shows them.
fn ss_server_side(port: u16) -> String {
    let out = std::process::Command::new("ss")
        .args([
            "-tnoH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[cfg_attr(not(have_ss), ignore = "needs `ss` from iproute2 (CI installs it)")]
fn tcp_keepalive_is_on_by_default_and_settable() {
    let srv = TestServer::start(&[]);
    let mut c = srv.client();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tcp-keepalive")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, ["tcp-keepalive", "300"]);
    // Once nothing is in flight, the connection's timer is the keepalive one.
    std::thread::sleep(Duration::from_millis(500));
    let shown = ss_server_side(srv.addr.port());
    assert!(shown.contains("timer:(keepalive"), "{shown}");
    q(&mut c, &["CONFIG", "SET", "tcp-keepalive", "0"]).unwrap();
    let _second = srv.client();
    let shown = ss_server_side(srv.addr.port());
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines.iter().filter(|l| l.contains("keepalive")).count(),
        1,
        "{lines:?}"
    );
}

// ---------------------------------------------------------------------------------
// Output and query buffers
// ---------------------------------------------------------------------------------

/// An ECHO command with a payload of `size` bytes and the reply it gets.
fn echo_pair(size: usize) -> (Vec<u8>, Vec<u8>) {
    let payload = vec![b'x'; size];
    let cmd = resp(&[b"ECHO", &payload]);
    let mut reply = format!("${size}\r\n").into_bytes();
    reply.extend_from_slice(&payload);
    reply.extend_from_slice(b"\r\n");
    (cmd, reply)
}

/// What a writer that never reads saw.
#[derive(Debug)]
enum Writer {
    /// A write made no progress for 2 s after `sent` bytes.
    Blocked { sent: usize },
    /// Everything was written without ever blocking.
    Finished,
    /// The server closed the connection.
    Closed,
}

/// Writes `unit` `count` times on `s` without ever reading, reporting the first block
/// (or the end) on `tx`; after a block it keeps writing (blocking) while `keep_going`.
fn unread_writer(
    mut s: TcpStream,
    unit: Vec<u8>,
    count: usize,
    keep_going: bool,
    tx: mpsc::Sender<Writer>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        s.set_write_timeout(Some(Duration::from_secs(2))).ok();
        let total = unit.len() * count;
        let mut sent = 0;
        let mut reported = false;
        while sent < total {
            let at = sent % unit.len();
            match s.write(&unit[at..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if !reported {
                        reported = true;
                        let _ = tx.send(Writer::Blocked { sent });
                    }
                    if !keep_going {
                        return;
                    }
                    s.set_write_timeout(None).ok();
                }
                Err(_) => {
                    let _ = tx.send(Writer::Closed);
                    return;
                }
            }
        }
        if !reported {
            let _ = tx.send(Writer::Finished);
        }
    })
}

#[test]
fn unread_replies_pause_the_client_instead_of_growing_memory() {
    // The real binary, so that `used_memory` is the server's alone (this test process
    // runs other tests' allocations in parallel).
    let sp = Spawned::start(&[]);
    let mut other = Raw::connect(sp.addr);
    let before = num_field(&other.info(), "used_memory");
    assert!(before > 0, "used_memory should come from the allocator");

    const N: usize = 1000;
    let (one, reply) = echo_pair(64 * 1024);
    let total = one.len() * N;
    let s = sp.raw();
    let (tx, rx) = mpsc::channel();
    let writer = unread_writer(s.try_clone().unwrap(), one, N, true, tx);

    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Writer::Blocked { sent }) => assert!(sent < total),
        other => {
            panic!("the server kept reading a client that does not read its replies: {other:?}")
        }
    }
    // Paused, not buffering: the server holds far less than the 64 MiB sent at it.
    let during = num_field(&other.info(), "used_memory");
    assert!(
        during - before < (total / 4) as i64,
        "used_memory grew from {before} to {during} while a client did not read"
    );
    // Other clients are served meanwhile.
    assert_eq!(other.cmd(&["PING"]), R::Simple("PONG".into()));
    assert!(pings(sp.addr));

    // Once it reads, every reply arrives, in order, and nothing was dropped.
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let want = reply.len() * N;
    let mut got = 0;
    let mut buf = vec![0; 1 << 20];
    while got < want {
        let n = s.read(&mut buf).expect("replies");
        assert!(n > 0, "closed after {got} of {want} reply bytes");
        let mut i = 0;
        while i < n {
            // Compare a run up to the end of the current reply at once.
            let at = (got + i) % reply.len();
            let run = (reply.len() - at).min(n - i);
            assert!(
                buf[i..i + run] == reply[at..at + run],
                "reply bytes from {} differ",
                got + i
            );
            i += run;
        }
        got += n;
    }
    writer.join().unwrap();
    let info = other.info();
    assert_eq!(
        num_field(&info, "client_output_buffer_limit_disconnections"),
        0,
        "{info}"
    );
    let after = num_field(&info, "used_memory");
    assert!(
        after - before < (total / 4) as i64,
        "used_memory is {after} after the client caught up (from {before})"
    );
}

/// Pipelines ECHOs of `size` bytes at a server with `--client-output-buffer-limit
/// <limit>` without reading, and expects that client to be disconnected.
fn output_limit_disconnects(limit: &str, size: usize) {
    let srv = TestServer::start(&["--client-output-buffer-limit", limit]);
    let mut other = Raw::connect(srv.addr);
    let (one, _) = echo_pair(size);
    let n = (256 << 20) / one.len();
    let s = srv.raw();
    let (tx, rx) = mpsc::channel();
    let _writer = unread_writer(s.try_clone().unwrap(), one, n, true, tx);
    let mut last = 0;
    let disconnected = eventually(Duration::from_secs(20), || {
        // Others are served all along.
        assert_eq!(other.cmd(&["PING"]), R::Simple("PONG".into()));
        last = num_field(&other.info(), "client_output_buffer_limit_disconnections");
        last >= 1
    });
    let first = rx.try_recv();
    assert!(
        disconnected,
        "a client that never read {size}-byte replies was not disconnected at \
         --client-output-buffer-limit {limit} (writer: {first:?})"
    );
    // Its connection is closed (the server may reset it: unread bytes were pending).
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = vec![0; 1 << 20];
    let closed = eventually(Duration::from_secs(20), || match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    });
    assert!(closed, "the disconnected client's socket is still open");
    assert!(pings(srv.addr));
    drop(s);
}

#[test]
fn a_reply_that_overflows_the_output_limit_disconnects_the_client() {
    output_limit_disconnects("100kb", 1024 * 1024);
}

#[test]
fn a_client_that_never_reads_is_disconnected_at_the_output_limit() {
    // Small replies, as COMMAND DOCS or ECHO pipelines give, piling up unread.
    output_limit_disconnects("1mb", 64 * 1024);
}

#[test]
fn client_query_buffer_limit_closes_a_client_with_too_much_unprocessed_input() {
    let srv = TestServer::start(&["--client-query-buffer-limit", "65536"]);
    let mut other = Raw::connect(srv.addr);
    // One request that never completes, larger than the limit.
    let mut s = srv.raw();
    let mut partial = b"*2\r\n$4\r\nECHO\r\n$500000\r\n".to_vec();
    partial.extend_from_slice(&[b'q'; 200_000]);
    let _ = s.write_all(&partial);
    let (bytes, closed) = read_until_closed(&mut s);
    assert!(closed, "the client over the query buffer limit was kept");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.is_empty() || text.starts_with("-ERR"),
        "unexpected reply {text:?}"
    );
    wait_info_num(&mut other, "client_query_buffer_limit_disconnections", 1);
    // The limit is on unprocessed bytes: a long pipeline of complete commands is fine.
    let mut p = srv.raw();
    let n = 20_000;
    let pipeline = b"PING\r\n".repeat(n);
    let got = send_recv_concurrent(&mut p, pipeline, 7 * n);
    assert_eq!(got.len(), 7 * n);
    assert!(got.chunks(7).all(|c| c == b"+PONG\r\n"));
    assert_eq!(
        num_field(&other.info(), "client_query_buffer_limit_disconnections"),
        1
    );
}

#[test]
fn limit_client_query_buffer() {
    let server = TestServer::start(&["--clock", "manual", "--client-query-buffer-limit", "16384"]);
    let mut c = server.client();
    let mut s = server.raw();
    // A command announcing 50000 bytes (allowed as a bulk) but sent only in part:
    // the server holds at most 16384 unread bytes for it.
    let mut req = b"*2\r\n$4\r\nECHO\r\n$50000\r\n".to_vec();
    req.extend(vec![b'x'; 30000]);
    let _ = s.write_all(&req);
    let (_, closed) = read_until_closed(&mut s);
    assert!(closed, "the connection is closed at the limit");
    assert_eq!(
        wait_info(
            &mut c,
            "client_query_buffer_limit_disconnections",
            "1",
            Duration::from_secs(10)
        ),
        Ok(())
    );
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
    // Below the limit everything is as usual.
    let mut s = server.raw();
    let msg = vec![b'y'; 5000];
    let mut want = b"$5000\r\n".to_vec();
    want.extend_from_slice(&msg);
    want.extend_from_slice(b"\r\n");
    assert_eq!(send_recv(&mut s, &resp(&[b"ECHO", &msg]), want.len()), want);
}

// ---------------------------------------------------------------------------------
// Cheap requests that cost the server dearly
// ---------------------------------------------------------------------------------

#[test]
fn command_docs_names_each_command_once_however_often_it_is_asked() {
    let srv = TestServer::start(&[]);
    let mut c = srv.client();
    let mut cmd = redis::cmd("COMMAND");
    cmd.arg("DOCS");
    for _ in 0..100_000 {
        cmd.arg("client");
    }
    cmd.arg("ping");
    let v: Value = cmd.query(&mut c).expect("COMMAND DOCS");
    let entries = match v {
        Value::Map(m) => m.len(),
        Value::Array(a) => a.len() / 2,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(entries, 2, "one entry each for client and ping");
    assert!(ping_within(srv.addr, None, Duration::from_secs(2)));
}

#[test]
fn command_info_refuses_a_reply_larger_than_the_output_limit_before_building_it() {
    let srv = TestServer::start(&["--client-output-buffer-limit", "1mb"]);
    let mut c = srv.client();
    let mut cmd = redis::cmd("COMMAND");
    cmd.arg("INFO");
    for _ in 0..50_000 {
        cmd.arg("client");
    }
    let err = match cmd.query::<redis::Value>(&mut c) {
        Ok(_) => panic!("a 50,000-entry COMMAND INFO reply was built"),
        Err(e) => err_text(&e),
    };
    assert!(err.starts_with("ERR COMMAND INFO takes at most "), "{err}");
    // The connection is still there, and a reasonable request is answered in full.
    let v: Vec<redis::Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("ping")
        .arg("client")
        .arg("nosuch")
        .query(&mut c)
        .expect("COMMAND INFO");
    assert_eq!(v.len(), 3);
    assert_eq!(v[2], redis::Value::Nil);
}

#[test]
fn config_get_patterns_match_in_polynomial_time() {
    let srv = TestServer::start(&[]);
    let mut c = srv.client();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Each `*?` doubled the old backtracking matcher's work: 30 of them would take
    // hours there. The reply must come within the client's read timeout.
    let pattern = format!("{}!", "*?".repeat(30));
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(&pattern)
        .arg(&pattern)
        .arg(&pattern)
        .query(&mut c)
        .expect("CONFIG GET");
    assert!(got.is_empty());
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*max*")
        .arg("*max*")
        .query(&mut c)
        .unwrap();
    assert!(got.contains(&"maxclients".to_string()));
    let names: Vec<&String> = got.iter().step_by(2).collect();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "each parameter once");
}

#[test]
fn info_renders_each_section_once_however_often_it_is_named() {
    let srv = TestServer::start(&[]);
    let mut c = srv.client();
    let mut cmd = redis::cmd("INFO");
    for _ in 0..10_000 {
        cmd.arg("server").arg("ALL");
    }
    let text: String = cmd.query(&mut c).unwrap();
    assert_eq!(text.matches("# Server").count(), 1);
    assert_eq!(text.matches("# Analytics").count(), 1);
}

#[test]
fn an_evt_madd_whose_reply_would_not_fit_is_refused_whole_and_the_client_stays() {
    let srv = TestServer::start(&["--clock", "manual", "--client-output-buffer-limit", "1mb"]);
    let mut c = srv.client();
    let now = clock(&mut c);
    // 20,000 late events: ~2 MB of error replies, over the 1 MB output limit.
    let mut cmd = redis::cmd("EVT.MADD");
    for i in 0..20_000 {
        cmd.arg(bare_event(
            &format!("u{i}"),
            "view",
            if i == 0 { now } else { 1 },
        ));
    }
    let err = match cmd.query::<redis::Value>(&mut c) {
        Ok(v) => panic!("answered {:?}", std::mem::discriminant(&v)),
        Err(e) => err_text(&e),
    };
    assert!(
        err.starts_with("ERR EVT.MADD takes at most 2048 events"),
        "{err}"
    );
    // Nothing of it was applied, and the connection goes on.
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 0);
    let events: Vec<String> = (0..2000)
        .map(|i| bare_event(&format!("u{i}"), "view", if i == 0 { now } else { 1 }))
        .collect();
    let mut raw = Raw::connect(srv.addr);
    let replies = raw.madd(&events).expect("a MADD that fits");
    assert_eq!(replies.len(), 2000);
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 1);
    // Over the fixed ceiling, whatever the output limit.
    q(
        &mut c,
        &["CONFIG", "SET", "client-output-buffer-limit", "16gb"],
    )
    .unwrap();
    let mut huge = redis::cmd("EVT.MADD");
    for _ in 0..100_001 {
        huge.arg("x");
    }
    let err = match huge.query::<redis::Value>(&mut c) {
        Ok(_) => panic!("100,001 events accepted"),
        Err(e) => err_text(&e),
    };
    assert!(
        err.starts_with("ERR EVT.MADD takes at most 100000 events"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// --maxmemory and memory that comes back
// ---------------------------------------------------------------------------------

/// Pipelines one EVT.ADD per event and returns each reply: `Ok` or the error text.
fn add_all(s: &mut Raw, events: &[String]) -> Vec<Result<(), String>> {
    let mut bytes = Vec::new();
    for e in events {
        bytes.extend_from_slice(&resp_str(&["EVT.ADD", e]));
    }
    s.send(&bytes);
    (0..events.len())
        .map(|_| match s.reply() {
            R::Simple(ok) if ok == "OK" => Ok(()),
            R::Err(e) => Err(e),
            other => panic!("EVT.ADD replied {other:?}"),
        })
        .collect()
}

#[test]
fn maxmemory_refuses_new_users_with_oom_and_loses_nothing_accepted() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut s = Raw::connect(srv.addr);
    let now = s.cmd(&["EVT.CLOCK"]).int();
    let info = s.info();
    assert_eq!(num_field(&info, "maxmemory"), 0, "{info}");

    let mut acked: std::collections::HashMap<String, i64> = Default::default();
    let mut total = 0i64;
    // Counts the acknowledged events; returns how many were refused with -OOM.
    let record = |acked: &mut std::collections::HashMap<String, i64>,
                  total: &mut i64,
                  replies: &[Result<(), String>],
                  users: &[String]|
     -> usize {
        let mut oom = 0;
        for (r, u) in replies.iter().zip(users) {
            match r {
                Ok(()) => {
                    *acked.entry(u.clone()).or_default() += 1;
                    *total += 1;
                }
                Err(e) => {
                    assert_eq!(e, OOM);
                    oom += 1;
                }
            }
        }
        oom
    };

    // Some users while there is no limit.
    let users: Vec<String> = (0..1000).map(|i| format!("early-{i}")).collect();
    let events: Vec<String> = users.iter().map(|u| event(u, "view", now, 1.0)).collect();
    assert_eq!(
        record(&mut acked, &mut total, &add_all(&mut s, &events), &users),
        0
    );

    // A limit a few MB above what is used now; new users until every one is refused
    // (over the limit, new users still fill the room the tables have allocated).
    let used = num_field(&s.info(), "used_memory");
    assert!(used > 0);
    let limit = used + (4 << 20);
    assert_eq!(
        s.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]),
        R::Simple("OK".into())
    );
    let mut batch = 0;
    loop {
        assert!(
            batch < 500,
            "4 MB more never ran out ({total} events accepted)"
        );
        let users: Vec<String> = (0..2000).map(|i| format!("late-{batch}-{i}")).collect();
        let events: Vec<String> = users.iter().map(|u| event(u, "view", now, 1.0)).collect();
        let oom = record(&mut acked, &mut total, &add_all(&mut s, &events), &users);
        batch += 1;
        if oom == users.len() {
            break;
        }
    }
    // From here, certainly over the limit (whatever else this process allocates).
    assert_eq!(
        s.cmd(&["CONFIG", "SET", "maxmemory", "1"]),
        R::Simple("OK".into())
    );
    assert_eq!(
        add_all(&mut s, &[event("brand-new", "view", now, 1.0)]),
        vec![Err(OOM.to_string())]
    );
    // A new type for a known user needs new records too.
    assert_eq!(
        add_all(&mut s, &[event("early-0", "a-new-type", now, 1.0)]),
        vec![Err(OOM.to_string())]
    );
    // Known (user, type) pairs in the same second still count.
    let users: Vec<String> = (0..100).map(|i| format!("early-{i}")).collect();
    let events: Vec<String> = users.iter().map(|u| event(u, "view", now, 2.5)).collect();
    assert_eq!(
        record(&mut acked, &mut total, &add_all(&mut s, &events), &users),
        0
    );

    // Queries answer, and every acknowledged event is there: nothing was evicted.
    assert_eq!(s.cmd(&["EVT.TOTAL"]).int(), total);
    assert_eq!(s.cmd(&["EVT.TYPE", "view"]).int(), total);
    assert_eq!(s.cmd(&["EVT.TYPE", "a-new-type"]).int(), 0);
    assert_eq!(s.cmd(&["EVT.USER", "brand-new"]).int(), 0);
    for (u, n) in acked.iter().take(300) {
        assert_eq!(s.cmd(&["EVT.USER", u]).int(), *n, "{u}");
    }
    assert_eq!(s.cmd(&["EVT.USER", "early-7"]).int(), 2);
    assert_eq!(s.cmd(&["EVT.SUM", "early-7", "view"]).text(), "3.5");
    let info = s.info();
    assert_eq!(num_field(&info, "maxmemory"), 1, "{info}");
    assert!(num_field(&info, "used_memory") > 1, "{info}");
    assert!(errorstat(&info, "OOM") >= 3, "{info}");
    assert_eq!(num_field(&info, "window_events"), total, "{info}");

    // Lifting the limit lets new users in again.
    assert_eq!(
        s.cmd(&["CONFIG", "SET", "maxmemory", "0"]),
        R::Simple("OK".into())
    );
    assert_eq!(
        add_all(&mut s, &[event("brand-new", "view", now, 1.0)]),
        vec![Ok(())]
    );
    assert_eq!(s.cmd(&["EVT.TOTAL"]).int(), total + 1);
}

/// `used_memory` of a spawned server.
fn spawned_used_memory(srv: &Spawned) -> i64 {
    let info = Raw::connect(srv.addr).cmd(&["INFO", "memory"]).text();
    num_field(&info, "used_memory")
}

#[test]
fn an_idle_connection_gives_back_the_buffers_of_its_largest_request() {
    // The real binary: the measure is its own allocator's count, without this test's.
    let srv = Spawned::start(&["--clock", "manual"]);
    let mut c = Raw::connect(srv.addr);
    assert_eq!(c.cmd(&["PING"]), R::Simple("PONG".into()));
    let before = spawned_used_memory(&srv);
    // 90,000 late events: nothing is stored, but the request (~7 MB) and the
    // replies (~8 MB) pass through the connection's buffers.
    let late = vec![bare_event("someone", "view", 1); 90_000];
    let replies = c.madd(&late).expect("EVT.MADD");
    assert_eq!(replies.len(), 90_000);
    assert!(
        replies[0]
            .text()
            .starts_with("ERR event is older than the window")
    );
    let after = spawned_used_memory(&srv);
    assert!(
        after - before < 4 << 20,
        "an idle connection still holds {} bytes after one large request",
        after - before
    );
}

#[test]
fn a_large_batch_is_not_refused_for_the_memory_it_uses_only_while_it_runs() {
    // The real binary: the limit is on its own allocator's count.
    let srv = Spawned::start(&["--clock", "manual", "--maxmemory", "40mb"]);
    let mut c = Raw::connect(srv.addr);
    let now = c.cmd(&["EVT.CLOCK"]).int();
    let n = 100_000;
    let events: Vec<String> = (0..n)
        .map(|i| bare_event(&format!("user{i:08}"), "view", now))
        .collect();
    let replies = c.madd(&events).expect("EVT.MADD");
    let ok = R::Simple("OK".into());
    assert_eq!(
        replies.iter().filter(|r| **r == ok).count(),
        n,
        "every event of a batch whose result fits is counted: {:?}",
        replies.iter().find(|r| **r != ok)
    );
}

/// Issue 9, item 5: after a burst of users left the window with 100 still active,
/// used memory stayed at the burst's peak and every new user got `-OOM` for as long
/// as traffic kept the shards non-empty. Memory follows the keys in the window:
/// the burst's tables are given back, and a new burst of the same size fits again.
/// Before the fix (debug build): a 265,000-user burst, used memory 37.3 MB at the
/// peak and still 37.3 MB after it left (0.15 MB at the start), and all 265,000
/// users refused when they came back. After: 267,035 users, 26.3 MB at the peak,
/// 1.7 MB once they left, none refused when they came back.
#[test]
fn after_a_burst_leaves_memory_comes_back_and_a_new_burst_of_the_same_size_fits() {
    // Its own process: `used_memory` counts only that server's allocations.
    let srv = Spawned::start(&["--clock", "manual"]);
    let mut s = Raw::connect(srv.addr);
    let now = s.cmd(&["EVT.CLOCK"]).int();
    let stay = |ts: i64| -> Vec<String> {
        (0..100)
            .map(|i| event(&format!("stay-{i}"), "view", ts, 1.0))
            .collect()
    };
    assert!(madd_accepted(&mut s, &stay(now)).iter().all(|&a| a));
    let start = num_field(&s.info(), "used_memory");
    let limit = start + (24 << 20);
    assert_eq!(
        s.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]),
        R::Simple("OK".into())
    );

    // The burst: new users until the first -OOM (new users are taken while the
    // tables have room, so memory ends somewhat above the limit).
    let mut users: Vec<String> = Vec::new();
    for round in 0.. {
        assert!(round < 100, "24 MB never ran out ({} users)", users.len());
        let names: Vec<String> = (0..20_000).map(|i| format!("u{round}-{i}")).collect();
        let events: Vec<String> = names.iter().map(|u| event(u, "click", now, 1.0)).collect();
        let accepted = madd_accepted(&mut s, &events);
        let refused = accepted.iter().any(|&a| !a);
        users.extend(
            names
                .into_iter()
                .zip(accepted)
                .filter_map(|(u, a)| a.then_some(u)),
        );
        if refused {
            break;
        }
    }
    let peak = num_field(&s.info(), "used_memory");
    assert!(peak > limit, "peak {peak}, limit {limit}");

    // Thirty seconds on, the 100 stayers are active again (known pairs count under
    // the limit); thirty-one more, and the burst has left the window.
    s.cmd(&["EVT.CLOCK", "ADVANCE", "30"]);
    assert!(madd_accepted(&mut s, &stay(now + 30)).iter().all(|&a| a));
    s.cmd(&["EVT.CLOCK", "ADVANCE", "31"]);
    assert_eq!(s.cmd(&["DBSIZE"]).int(), 100 + 1 + 100);

    // The sweep gives the burst's memory back: used memory falls near its start
    // (1.7 MB above it when measured, the connection's buffers among it).
    let mut used = peak;
    let back = eventually(Duration::from_secs(20), || {
        used = num_field(&s.info(), "used_memory");
        used < start + (4 << 20)
    });
    assert!(
        back,
        "used_memory stayed at {used} (start {start}, peak {peak})"
    );

    // The burst comes back, as many users (the same ones, so that each shard gets as
    // many as before): every one is accepted under the same limit.
    let events: Vec<String> = users
        .iter()
        .map(|u| event(u, "click", now + 61, 1.0))
        .collect();
    let accepted = madd_accepted(&mut s, &events);
    let refused = accepted.iter().filter(|&&a| !a).count();
    assert_eq!(refused, 0, "{refused} of {} refused", users.len());
    assert_eq!(s.cmd(&["EVT.TOTAL"]).int(), (users.len() + 100) as i64);
}

// ---------------------------------------------------------------------------------
// Settings that would accept what breaks the server
// ---------------------------------------------------------------------------------

#[test]
fn config_set_refuses_values_outside_their_range_and_names_it() {
    let srv = TestServer::start(&[]);
    let mut c = srv.client();
    for (name, value, range) in [
        (
            "max-future-skew",
            "9223372036854775808",
            "between 0 and 86400",
        ),
        ("max-args", "2", "between 8 and 2147483647"),
        ("maxclients", "0", "between 1 and 1000000"),
        ("client-output-buffer-limit", "1", "between 65536 and"),
        ("timeout", "-1", "couldn't be parsed"),
    ] {
        let err = q_err(&mut c, &["CONFIG", "SET", name, value]);
        assert!(
            err.starts_with(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - "
            )) && err.contains(range),
            "{name} {value}: {err}"
        );
    }
    // At the lowest max-args, AUTH, HELLO, CONFIG and QUIT still fit.
    q(&mut c, &["CONFIG", "SET", "max-args", "8"]).unwrap();
    let mut s = srv.raw();
    let hello = resp_str(&["HELLO", "2", "AUTH", "default", "x", "SETNAME", "n"]);
    let got = send_recv(&mut s, &hello, 1);
    assert_eq!(
        got.first(),
        Some(&b'*'),
        "{}",
        String::from_utf8_lossy(&got)
    );
    q(&mut c, &["CONFIG", "SET", "max-args", "1000"]).unwrap();
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "max-args"]).unwrap(),
        redis::Value::Array(vec![
            redis::Value::BulkString(b"max-args".to_vec()),
            redis::Value::BulkString(b"1000".to_vec())
        ])
    );
}

/// `--huge-pages`: the store's large tables ask for transparent huge pages, or do not.
/// What the kernel then does depends on its THP mode, read here: with `madvise`
/// (Debian's default) the asked-for tables get huge pages and the others none; with
/// `always` every server gets them; with `never` none does.
#[test]
fn huge_pages_follow_the_flag_and_the_kernels_mode() {
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let mode = mode
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .unwrap_or("[never]")
        .to_string();
    // One shard, so 200k users make tables of several MiB (slab records: 56 B each).
    let huge_kib = |flag: &str| {
        let sp = Spawned::start(&["--clock", "manual", "--shards", "1", "--huge-pages", flag]);
        let mut c = redis::Client::open(format!("redis://{}", sp.addr))
            .and_then(|cl| cl.get_connection())
            .expect("connect");
        assert_eq!(
            q(&mut c, &["CONFIG", "GET", "huge-pages"]).unwrap(),
            Value::Array(vec![
                Value::BulkString(b"huge-pages".to_vec()),
                Value::BulkString(flag.as_bytes().to_vec())
            ])
        );
        let now = clock(&mut c);
        for chunk in 0..20 {
            let mut p = redis::pipe();
            for i in 0..10_000 {
                p.cmd("EVT.ADD")
                    .arg(bare_event(&format!("u{}", chunk * 10_000 + i), "view", now))
                    .ignore();
            }
            p.query::<()>(&mut c).expect("fill");
        }
        assert_eq!(info_i64(&mut c, "active_users"), 200_000);
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", sp.pid()))
            .expect("smaps_rollup");
        smaps
            .lines()
            .find_map(|l| l.strip_prefix("AnonHugePages:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("AnonHugePages in smaps_rollup")
    };
    let (on, off) = (huge_kib("yes"), huge_kib("no"));
    match mode.as_str() {
        "[madvise]" => {
            assert!(on >= 2048, "asked for: {on} KiB of huge pages");
            assert_eq!(off, 0, "not asked for");
        }
        "[always]" => assert!(on >= 2048 && off >= 2048, "{on} / {off} KiB"),
        _ => assert_eq!((on, off), (0, 0), "THP is {mode}"),
    }
}
