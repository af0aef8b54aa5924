//! Framing, through real sockets: RESP multibulk and inline requests, pipelines,
//! requests split across reads, protocol errors (the reply, then the close) and the
//! framing limits, with the exact reply bytes; and properties over any split of a
//! pipeline and over hostile bytes.
//!
//! Every test starts its own server with the manual clock, so tests run in parallel
//! and time only moves when a test moves it.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};

use crate::common::*;

// ---------------------------------------------------------------------------------
// Inline commands
// ---------------------------------------------------------------------------------

#[test]
fn inline_commands_with_quotes_escapes_and_empty_lines() {
    let server = manual();
    let mut s = server.raw();
    let req: &[u8] = b"ECHO \"a b\"\r\n\
        ECHO 'x'\r\n\
        ECHO \"\\x41\\x42\\n\"\r\n\
        ECHO 'it\\'s'\r\n\
        \r\n\
        \n\
        \t  PING   \r\n\
        ping\n\
        EcHo  \"\"  \r\n";
    let want: &[u8] =
        b"$3\r\na b\r\n$1\r\nx\r\n$3\r\nAB\n\r\n$4\r\nit's\r\n+PONG\r\n+PONG\r\n$0\r\n\r\n";
    assert_eq!(text(&send_recv(&mut s, req, want.len())), text(want));
}

#[test]
fn inline_evt_add_with_quoted_json() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    let mut s = server.raw();
    let req = format!(
        "EVT.ADD '{{\"user_id\": \"user123\", \"event_type\": \"click\", \"timestamp\": {now}, \"attributes\": {{\"value\": 2.5}}}}'\r\nEVT.SUM user123 click\r\n"
    );
    let want = b"+OK\r\n$3\r\n2.5\r\n";
    assert_eq!(
        text(&send_recv(&mut s, req.as_bytes(), want.len())),
        text(want)
    );
}

#[test]
fn inline_unbalanced_quotes_are_a_protocol_error_that_closes() {
    let server = manual();
    for line in [&b"ECHO \"abc\r\n"[..], b"ECHO 'abc\r\n", b"ECHO \"a\"b\r\n"] {
        let mut s = server.raw();
        let mut req = b"PING\r\n".to_vec();
        req.extend_from_slice(line);
        s.write_all(&req).unwrap();
        expect_reply_then_close(
            &mut s,
            b"+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n",
        );
    }
    // The server is unaffected.
    let mut c = server.client();
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

// ---------------------------------------------------------------------------------
// Protocol errors: the reply, then the close
// ---------------------------------------------------------------------------------

#[test]
fn protocol_errors_reply_then_close() {
    let server = manual();
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$x\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\nx\r\n",
            b"-ERR Protocol error: expected '$', got 'x'\r\n",
        ),
        (
            b"*2\r\n$4\r\nECHO\r\n:12\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
    ];
    for (req, want) in cases {
        let mut s = server.raw();
        s.write_all(req).unwrap();
        expect_reply_then_close(&mut s, want);
    }
    let mut c = server.client();
    assert_eq!(
        info_i64(&mut c, "protocol_errors"),
        cases.len() as i64,
        "each protocol error is counted"
    );
}

#[test]
fn announced_lengths_are_refused_at_once() {
    let server = manual();
    for (req, want) in [
        (
            &b"*1\r\n$2147483648\r\n"[..],
            &b"-ERR Protocol error: invalid bulk length\r\n"[..],
        ),
        (
            b"*99999999999\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$99999999999999999999999\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
    ] {
        // Only the header is sent: the reply must come without more bytes (the
        // server neither waits for nor allocates the announced length).
        let mut s = server.raw();
        s.write_all(req).unwrap();
        expect_reply_then_close(&mut s, want);
    }
    let mut c = server.client();
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

#[test]
fn announced_lengths_are_refused_at_once_and_never_allocated() {
    // The default bulk limit (1 MiB): refused before any byte of it arrives.
    let srv = TestServer::start(&[]);
    let mut s = srv.raw();
    s.write_all(b"*1\r\n$1000000000\r\n").unwrap();
    let (bytes, closed) = read_until_closed(&mut s);
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed);

    // With limits raised to allow it, an announced 1.9 GB bulk is still not reserved:
    // memory grows with the bytes that arrive, not with what the header claims.
    let srv = TestServer::start(&[
        "--proto-max-bulk-len",
        "2000000000",
        "--client-query-buffer-limit",
        "4000000000",
    ]);
    let mut other = Raw::connect(srv.addr);
    let before = num_field(&other.info(), "used_memory");
    let input = num_field(&other.info(), "total_net_input_bytes");
    let mut s = srv.raw();
    let header = b"*2\r\n$4\r\nECHO\r\n$1900000000\r\nxxxxxxxxxx";
    s.write_all(header).unwrap();
    // Wait until the server has read it. Each INFO counts its own request bytes.
    let info_len = resp_str(&["INFO"]).len() as i64;
    let mut polls = 0;
    let read = eventually(Duration::from_secs(10), || {
        polls += 1;
        let n = num_field(&other.info(), "total_net_input_bytes");
        n >= input + polls * info_len + header.len() as i64
    });
    assert!(read, "the server never read the announced bulk's header");
    assert_eq!(other.cmd(&["PING"]), R::Simple("PONG".into()));
    let during = num_field(&other.info(), "used_memory");
    assert!(
        during - before < 512 << 20,
        "used_memory grew from {before} to {during} for an announced bulk"
    );
    drop(s);
    assert!(pings(srv.addr));
}

#[test]
fn too_big_inline_request() {
    let server = manual();
    let mut s = server.raw();
    // 70 KB without a newline: not RESP, not an inline command either.
    let line = vec![b'a'; 70 * 1024];
    let _ = s.write_all(&line);
    expect_reply_then_close(&mut s, b"-ERR Protocol error: too big inline request\r\n");
    let mut c = server.client();
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

#[test]
fn commands_before_a_protocol_error_in_the_same_write_are_answered_first() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    let mut s = server.raw();
    let mut req = b"PING\r\n".to_vec();
    req.extend(resp_str(&["ECHO", "before"]));
    req.extend(resp_str(&["EVT.ADD", &bare_event("u", "click", now)]));
    req.extend_from_slice(b"*1\r\nx\r\n");
    req.extend_from_slice(b"PING\r\n"); // after the error: never run
    s.write_all(&req).unwrap();
    expect_reply_then_close(
        &mut s,
        b"+PONG\r\n$6\r\nbefore\r\n+OK\r\n-ERR Protocol error: expected '$', got 'x'\r\n",
    );
    let total: i64 = redis::cmd("EVT.TOTAL").query(&mut c).unwrap();
    assert_eq!(total, 1, "the EVT.ADD before the error was applied");
}

#[test]
fn other_connections_keep_working_after_a_protocol_error() {
    let server = manual();
    let mut a = server.raw();
    let mut c = server.client();
    assert_eq!(send_recv(&mut a, b"PING\r\n", 7), b"+PONG\r\n");
    let mut bad = server.raw();
    bad.write_all(b"*abc\r\n").unwrap();
    expect_reply_then_close(
        &mut bad,
        b"-ERR Protocol error: invalid multibulk length\r\n",
    );
    assert_eq!(
        text(&send_recv(&mut a, b"ECHO still-here\r\n", 16)),
        "$10\r\nstill-here\r\n"
    );
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

// ---------------------------------------------------------------------------------
// Pipelining and framing across reads
// ---------------------------------------------------------------------------------

#[test]
fn ten_thousand_pipelined_commands_in_one_write_answered_in_order() {
    let server = manual();
    let mut s = server.raw();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..10_000 {
        let msg = i.to_string();
        if i % 2 == 0 {
            req.extend(resp_str(&["PING", &msg]));
        } else {
            req.extend(format!("PING {msg}\r\n").into_bytes());
        }
        want.extend(format!("${}\r\n{msg}\r\n", msg.len()).into_bytes());
    }
    let got = send_recv_concurrent(&mut s, req, want.len());
    assert_eq!(got.len(), want.len());
    assert!(got == want, "10,000 replies, each in its place");

    // Plain PINGs too.
    let req = b"PING\r\n".repeat(10_000);
    let want = b"+PONG\r\n".repeat(10_000);
    let got = send_recv_concurrent(&mut s, req, want.len());
    assert!(got == want, "10,000 +PONG");
}

#[test]
fn ten_thousand_pipelined_evt_adds_in_one_write() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    let mut s = server.raw();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..10_000 {
        let user = format!("u{i}");
        req.extend(resp_str(&["EVT.ADD", &event(&user, "click", now, 1.0)]));
        want.extend_from_slice(b"+OK\r\n");
        if i % 1000 == 999 {
            // Queries in the middle see exactly the events before them.
            req.extend(resp_str(&["EVT.TOTAL"]));
            want.extend(format!(":{}\r\n", i + 1).into_bytes());
            req.extend(resp_str(&["EVT.USER", &user]));
            want.extend_from_slice(b":1\r\n");
        }
    }
    let got = send_recv_concurrent(&mut s, req, want.len());
    assert_eq!(got.len(), want.len(), "all replies arrived");
    assert!(got == want, "all replies in order");
    let total: i64 = redis::cmd("EVT.TOTAL").query(&mut c).unwrap();
    assert_eq!(total, 10_000);
    assert_eq!(info_i64(&mut c, "events_accepted"), 10_000);
    assert_eq!(info_i64(&mut c, "active_users"), 10_000);
}

/// A pipelined run of events, its later requests differing from its first (the
/// name's case, the keyed form, wrong arities, bad and late JSON), in one write gets
/// the same replies, counts and command statistics as the same requests sent one at
/// a time; and a monitor sees every event of a run.
#[test]
fn a_pipelined_run_of_events_answers_each_request_as_if_alone() {
    let requests = |now: i64| -> Vec<Vec<u8>> {
        let ev = |u: &str, ts: i64| event(u, "click", ts, 1.5);
        vec![
            resp_str(&["EVT.ADD", &ev("a", now)]),
            resp_str(&["EVT.ADD", &ev("b", now)]),
            resp_str(&["evt.add", &ev("c", now)]),
            resp_str(&["EVT.ADD", &ev("a", now - 1)]),
            resp_str(&["EVT.ADD", "d", &ev("d", now)]),
            resp_str(&["EVT.ADD", &ev("e", now)]),
            resp_str(&["EVT.ADD"]),
            resp_str(&["EVT.ADD", &ev("f", now)]),
            resp_str(&["EVT.ADD", "x", "y", "z"]),
            resp_str(&["EVT.ADD", "{bad"]),
            resp_str(&["EVT.ADD", &ev("late", now - 600)]),
            resp_str(&["EVT.ADD", "e", &ev("other", now)]),
            resp_str(&["EVT.ADD", &ev("g", now)]),
            resp_str(&["EVT.TOTAL"]),
            resp_str(&["EVT.USER", "a"]),
        ]
    };
    let stats = |c: &mut redis::Connection| -> String {
        let all = info(c, Some("commandstats"));
        let line = all
            .lines()
            .find(|l| l.starts_with("cmdstat_evt.add:"))
            .unwrap_or_else(|| panic!("{all}"));
        // The time fields differ from run to run.
        line.split(',')
            .filter(|f| !f.contains("usec"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let run = |pipelined: bool| -> (Vec<R>, String) {
        let server = manual();
        let mut c = server.client();
        let now = clock(&mut c);
        let mut raw = Raw::connect(server.addr);
        let reqs = requests(now);
        let replies = if pipelined {
            raw.send(&reqs.concat());
            reqs.iter().map(|_| raw.reply()).collect()
        } else {
            reqs.iter()
                .map(|r| {
                    raw.send(r);
                    raw.reply()
                })
                .collect()
        };
        (replies, stats(&mut c))
    };
    let (alone, alone_stats) = run(false);
    let ok = R::Simple("OK".into());
    let oks = alone.iter().filter(|r| **r == ok).count();
    assert_eq!(oks, 8, "{alone:?}");
    assert_eq!(alone.get(13), Some(&R::Int(8)), "{alone:?}");
    assert_eq!(alone.get(14), Some(&R::Int(2)), "{alone:?}");
    assert!(
        alone[6].text().contains("wrong number of arguments"),
        "{alone:?}"
    );
    assert!(
        alone_stats.starts_with("cmdstat_evt.add:calls="),
        "{alone_stats}"
    );
    let (piped, piped_stats) = run(true);
    assert_eq!(piped, alone);
    assert_eq!(piped_stats, alone_stats);

    // A monitor attached: every event of a run is shown.
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    let mut m = server.raw();
    assert_eq!(send_recv(&mut m, b"MONITOR\r\n", 5), b"+OK\r\n");
    let mut raw = Raw::connect(server.addr);
    let run: Vec<u8> = (0..50)
        .flat_map(|i| resp_str(&["EVT.ADD", &event(&format!("m{i}"), "view", now, 1.0)]))
        .chain(resp_str(&["ECHO", "last"]))
        .collect();
    raw.send(&run);
    for _ in 0..51 {
        raw.reply();
    }
    let shown = String::from_utf8_lossy(&read_until_suffix(&mut m, b"\"last\"\r\n")).into_owned();
    for i in 0..50 {
        let user = format!(r#"\"user_id\":\"m{i}\""#);
        assert!(shown.contains(&user), "m{i} not shown: {shown}");
    }
}

/// Whether a reply has already arrived (without waiting for one).
fn reply_pending(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let pending = matches!(s.peek(&mut b), Ok(n) if n > 0);
    s.set_nonblocking(false).unwrap();
    pending
}

#[test]
fn a_command_fed_one_byte_at_a_time() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    let mut s = server.raw();
    let commands = [
        resp_str(&["ECHO", "hello"]),
        resp_str(&["EVT.ADD", &event("slow", "click", now, 1.5)]),
        b"PING\r\n".to_vec(),
        b"ECHO \"one byte\"\r\n".to_vec(),
    ];
    let replies: [&[u8]; 4] = [
        b"$5\r\nhello\r\n",
        b"+OK\r\n",
        b"+PONG\r\n",
        b"$8\r\none byte\r\n",
    ];
    for (cmd, want) in commands.iter().zip(replies) {
        for (i, byte) in cmd.iter().enumerate() {
            s.write_all(std::slice::from_ref(byte)).unwrap();
            if i + 1 < cmd.len() {
                assert!(
                    !reply_pending(&mut s),
                    "no reply before the command is complete ({} of {} bytes)",
                    i + 1,
                    cmd.len()
                );
            }
        }
        assert_eq!(text(&read_n(&mut s, want.len())), text(want));
    }
    let sum: String = redis::cmd("EVT.SUM")
        .arg("slow")
        .arg("click")
        .query(&mut c)
        .unwrap();
    assert_eq!(sum, "1.5");
}

#[test]
fn a_client_that_disconnects_mid_command_changes_nothing() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    {
        let json = event("gone", "click", now, 1.0);
        let full = resp_str(&["EVT.ADD", &json]);
        let mut s = server.raw();
        s.write_all(&full[..full.len() - 10]).unwrap();
        let mut inline = server.raw();
        inline
            .write_all(format!("EVT.ADD '{json}'").as_bytes())
            .unwrap();
        let mut header = server.raw();
        header.write_all(b"*3\r\n$4\r\nECHO\r\n").unwrap();
        // All three close here, mid-command.
    }
    assert_eq!(
        wait_info(&mut c, "connected_clients", "1", Duration::from_secs(10)),
        Ok(()),
        "the half-sent connections are gone"
    );
    assert_eq!(redis::cmd("EVT.TOTAL").query::<i64>(&mut c).unwrap(), 0);
    assert_eq!(info_i64(&mut c, "events_accepted"), 0);
    assert_eq!(info_i64(&mut c, "events_rejected"), 0);
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
    // And a complete command afterwards works.
    add(&mut c, &event("gone", "click", now, 1.0)).unwrap();
    assert_eq!(redis::cmd("EVT.TOTAL").query::<i64>(&mut c).unwrap(), 1);
}

/// Issue 9: a big command that arrives slowly is parsed on from where the last read
/// stopped, not from its start. Through the real server, every event of a 3.5 MB
/// `EVT.MADD` written 4 KB at a time is counted. (The bound on the parser's work is a
/// unit test in `src/protocol`; this checks that resuming loses nothing.)
#[test]
fn a_big_evt_madd_sent_in_small_writes_counts_every_event() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut s = Raw::connect(srv.addr);
    let now = s.cmd(&["EVT.CLOCK"]).int();
    let n = 30_000;
    let events: Vec<String> = (0..n)
        .map(|i| {
            let user = format!("user{}", i % 1000);
            event(&user, &format!("type{}", i % 7), now - (i % 30), 1.0)
        })
        .collect();
    let mut args = vec!["EVT.MADD"];
    args.extend(events.iter().map(String::as_str));
    let wire = resp_str(&args);
    assert!(wire.len() > 3_000_000, "{} bytes", wire.len());
    for (i, piece) in wire.chunks(4096).enumerate() {
        s.send(piece);
        if i % 4 == 0 {
            // Lets the server read the pieces apart rather than all at once.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let R::Array(replies) = s.reply() else {
        panic!("EVT.MADD did not reply with an array");
    };
    assert_eq!(replies.len(), n as usize);
    assert!(replies.iter().all(|r| *r == R::Simple("OK".into())));
    assert_eq!(s.cmd(&["EVT.TOTAL"]).int(), n);
    assert_eq!(s.cmd(&["EVT.USER", "user7"]).int(), n / 1000);
    let type3 = (0..n).filter(|i| i % 7 == 3).count();
    assert_eq!(s.cmd(&["EVT.TYPE", "type3"]).int(), type3 as i64);
    assert!(pings(srv.addr));
}

// ---------------------------------------------------------------------------------
// Framing limits
// ---------------------------------------------------------------------------------

#[test]
fn limit_proto_max_bulk_len() {
    let server = TestServer::start(&["--clock", "manual", "--proto-max-bulk-len", "1024"]);
    let mut s = server.raw();
    let ok = vec![b'x'; 1024];
    let mut want = b"$1024\r\n".to_vec();
    want.extend_from_slice(&ok);
    want.extend_from_slice(b"\r\n");
    assert_eq!(send_recv(&mut s, &resp(&[b"ECHO", &ok]), want.len()), want);

    let big = vec![b'x'; 2048];
    s.write_all(&resp(&[b"ECHO", &big])).unwrap();
    expect_reply_then_close(&mut s, b"-ERR Protocol error: invalid bulk length\r\n");

    // The header alone is enough to refuse it.
    let mut s = server.raw();
    s.write_all(b"*2\r\n$4\r\nECHO\r\n$1025\r\n").unwrap();
    expect_reply_then_close(&mut s, b"-ERR Protocol error: invalid bulk length\r\n");

    let mut c = server.client();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("proto-max-bulk-len")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, ["proto-max-bulk-len", "1024"]);
}

#[test]
fn proto_max_bulk_len_is_enforced_and_settable() {
    let srv = TestServer::start(&["--proto-max-bulk-len", "1024"]);
    let mut s = Raw::connect(srv.addr);
    let ok = "a".repeat(1024);
    assert_eq!(s.cmd(&["ECHO", &ok]), R::Bulk(ok.clone().into_bytes()));
    s.send(&resp_str(&["ECHO", &"a".repeat(1025)]));
    let (bytes, closed) = s.until_closed();
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed);
    let mut admin = Raw::connect(srv.addr);
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "2048"]),
        R::Simple("OK".into())
    );
    // Below 1 KiB a password or a setting might not fit: refused, naming the range.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "100"]),
        R::Err("ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1024 and 4294967296 inclusive".into())
    );
    let mid = "b".repeat(1500);
    assert_eq!(admin.cmd(&["ECHO", &mid]), R::Bulk(mid.into_bytes()));
    assert!(num_field(&admin.info(), "protocol_errors") >= 1);
}

#[test]
fn limit_max_args() {
    // 8 is the least max-args may be: `HELLO 3 AUTH u p SETNAME n` always fits.
    let server = TestServer::start(&["--clock", "manual", "--max-args", "8"]);
    let mut s = server.raw();
    let want = b"$1\r\n0\r\n";
    assert_eq!(
        send_recv(
            &mut s,
            &resp_str(&["EVT.SUM", "u", "t", "WINDOW", "1"]),
            want.len()
        ),
        want
    );
    s.write_all(b"*9\r\n").unwrap();
    expect_reply_then_close(&mut s, b"-ERR Protocol error: invalid multibulk length\r\n");
    let mut s = server.raw();
    assert_eq!(send_recv(&mut s, b"PING a\r\n", 7), b"$1\r\na\r\n");
    s.write_all(b"PING a b c d e f g h\r\n").unwrap();
    let (got, closed) = read_until_closed(&mut s);
    assert!(
        text(&got).starts_with("-ERR Protocol error"),
        "an inline command over the limit is refused too: {:?}",
        text(&got)
    );
    assert!(closed);
}

// ---------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------

/// A pipeline of every kind of request, whose replies depend only on its own content
/// (it starts with FLUSHALL): multibulk and inline, binary and quoted arguments, empty
/// lines and an empty multibulk, valid, invalid and late events, `EVT.MADD`, queries
/// with and without `WINDOW`, command errors, and `QUIT`, which ends it.
fn sample_pipeline(now: i64) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(resp_str(&["FLUSHALL"]));
    p.extend(resp_str(&["PING"]));
    p.extend(resp(&[b"ECHO", b"bin\r\n\x00"]));
    p.extend(resp_str(&["EVT.ADD", &event("u1", "click", now, 2.5)]));
    p.extend(resp_str(&["EVT.ADD", &event("u2", "view", now - 3, 1.0)]));
    p.extend_from_slice(b"EVT.TOTAL\r\n");
    p.extend(resp_str(&["EVT.ADD", "{not json"]));
    p.extend(resp_str(&["EVT.USER", "u1"]));
    p.extend(resp_str(&["EVT.SUM", "u1", "click"]));
    p.extend_from_slice(b"ECHO \"x y\"\r\n");
    p.extend_from_slice(b"\r\n");
    p.extend(resp_str(&[
        "EVT.MADD",
        &event("u3", "click", now, 0.5),
        "[]",
        &bare_event("u1", "view", now - 1),
    ]));
    p.extend(resp_str(&["EVT.TOTAL", "WINDOW", "2"]));
    p.extend(resp_str(&["EVT.TYPE", "click"]));
    p.extend(resp_str(&["SELECT", "0"]));
    p.extend_from_slice(b"PING split\r\n");
    p.extend_from_slice(b"PING\r\n\r\n");
    p.extend_from_slice(&resp(&[b"ECHO", b"bin\r\n\0ary"]));
    for (i, (u, t)) in [("a", "view"), ("b", "view"), ("a", "click")]
        .iter()
        .enumerate()
    {
        p.extend_from_slice(&resp_str(&["EVT.ADD", &event(u, t, now - i as i64, 1.5)]));
    }
    p.extend_from_slice(&resp_str(&["EVT.ADD", "{\"user_id\":1}"]));
    p.extend_from_slice(&resp_str(&[
        "EVT.ADD",
        &event("late", "view", now - 600, 1.0),
    ]));
    p.extend_from_slice(&resp_str(&[
        "EVT.MADD",
        &event("c", "buy", now, 9.0),
        "nope",
        &bare_event("d", "view", now - 3),
    ]));
    p.extend_from_slice(format!("EVT.ADD '{}'\r\n", event("e", "view", now, 0.5)).as_bytes());
    p.extend_from_slice(b"*0\r\n");
    p.extend_from_slice(&resp_str(&["EVT.TOTAL"]));
    p.extend_from_slice(&resp_str(&["EVT.TOTAL", "WINDOW", "2"]));
    p.extend_from_slice(&resp_str(&["EVT.USER", "a"]));
    p.extend_from_slice(&resp_str(&["EVT.TYPE", "view"]));
    p.extend_from_slice(&resp_str(&["EVT.SUM", "a", "view"]));
    p.extend_from_slice(b"ECHO \"quoted \\x41\\r\\n\" 'single'\r\n");
    p.extend_from_slice(&resp_str(&["NOSUCHCOMMAND", "x"]));
    p.extend_from_slice(&resp_str(&["EVT.TOTAL", "WINDOW", "0"]));
    p.extend_from_slice(&resp_str(&["QUIT"]));
    p
}

/// How a pipeline is cut into writes.
#[derive(Debug, Clone)]
enum Split {
    /// Chunks of these sizes, repeated until the pipeline is used up.
    Sizes(Vec<usize>),
    /// Cuts at these offsets; `bytewise` sends the start one byte at a time, so that
    /// every header there is split every way.
    Cuts { cuts: Vec<usize>, bytewise: bool },
}

impl Split {
    fn chunks<'a>(&self, pipeline: &'a [u8]) -> Vec<&'a [u8]> {
        let len = pipeline.len();
        let mut chunks: Vec<&[u8]> = Vec::new();
        match self {
            Split::Sizes(sizes) => {
                let mut rest = pipeline;
                for size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (head, tail) = rest.split_at((*size).min(rest.len()));
                    chunks.push(head);
                    rest = tail;
                }
            }
            Split::Cuts { cuts, bytewise } => {
                let mut cuts = cuts.clone();
                cuts.sort_unstable();
                cuts.dedup();
                if *bytewise {
                    let end = cuts.first().copied().unwrap_or(len).min(200);
                    chunks.extend(pipeline[..end].chunks(1));
                    cuts.retain(|&c| c > end);
                    cuts.insert(0, end);
                } else {
                    cuts.insert(0, 0);
                }
                cuts.push(len);
                for w in cuts.windows(2) {
                    chunks.push(&pipeline[w[0]..w[1]]);
                }
            }
        }
        chunks
    }
}

/// Any way of cutting a pipeline into writes: sizes that repeat, or random offsets
/// with the start byte by byte or not; with or without a pause after each write.
fn splits(len: usize) -> impl Strategy<Value = (Split, bool)> {
    let split = prop_oneof![
        prop::collection::vec(1usize..40, 1..60).prop_map(Split::Sizes),
        (prop::collection::vec(1..len, 0..24), any::<bool>())
            .prop_map(|(cuts, bytewise)| Split::Cuts { cuts, bytewise }),
    ];
    (split, any::<bool>())
}

/// One pipeline (33 requests, see [`sample_pipeline`]) cut into writes every way
/// [`splits`] makes gets byte-identical replies, which are well-formed, 33 of them,
/// and followed by the close QUIT asks for.
#[test]
fn any_split_of_a_pipeline_gets_the_same_replies() {
    let server = manual();
    let addr = server.addr;
    let mut c = server.client();
    let now = clock(&mut c);
    let pipeline = sample_pipeline(now);
    let run = |chunks: &[&[u8]], pause: bool| -> Vec<u8> {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        for chunk in chunks {
            s.write_all(chunk).expect("write");
            if pause {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let (out, closed) = read_until_closed(&mut s);
        assert!(closed, "QUIT did not close");
        out
    };

    // The reference: the whole pipeline in one write.
    let reference = run(&[&pipeline], false);
    assert!(
        text(&reference).starts_with(
            "+OK\r\n+PONG\r\n$6\r\nbin\r\n\0\r\n+OK\r\n+OK\r\n:2\r\n-ERR invalid event"
        ),
        "{:?}",
        text(&reference)
    );
    let parsed = parse_all(&reference).expect("well-formed replies");
    assert_eq!(parsed.len(), 33, "{}", text(&reference));
    assert_eq!(parsed[14], R::Bulk(b"split".to_vec()));
    assert_eq!(parsed.last(), Some(&R::Simple("OK".into())));

    let mut runner = TestRunner::new(PropConfig {
        cases: 96,
        failure_persistence: None,
        ..PropConfig::default()
    });
    runner
        .run(&splits(pipeline.len()), |(split, pause)| {
            let got = run(&split.chunks(&pipeline), pause);
            prop_assert_eq!(text(&got), text(&reference));
            Ok(())
        })
        .unwrap();
    assert!(pings(addr));
}

/// Sends `bytes` on a fresh connection, ends our side, and reads until the server
/// closes: what it answered, and `false` when it kept the connection open (stuck on
/// it).
fn feed_and_hang_up(server: &Spawned, bytes: &[u8]) -> (Vec<u8>, bool) {
    let Ok(mut s) = TcpStream::connect(server.addr) else {
        return (Vec::new(), true); // nothing left to hang: `pings` reports the dead server
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    // The server may close first (a protocol error): then writes fail.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    read_until_closed(&mut s)
}

// These two run the real binary in a child process under a memory limit: the bug
// they look for (a parser looping while it allocates) would otherwise exhaust the
// machine's memory from inside the test process.

#[test]
fn a_nul_byte_in_an_inline_command_does_not_wedge_the_server() {
    let mut server = Spawned::start(&["--clock", "manual"]);
    for line in [&b"PING\0\r\n"[..], b"\0\r\n", b"ECHO a\0b\r\n"] {
        let (_, closed) = feed_and_hang_up(&server, line);
        assert!(
            server.alive(),
            "the server died on {line:?}; its log:\n{}",
            server.log()
        );
        assert!(closed, "the connection that sent {line:?} never ended");
        assert!(
            server.pings(),
            "the server stopped answering after {line:?}"
        );
    }
}

/// Protocol-looking pieces that random inputs are built from, plus raw bytes: RESP
/// and inline syntax, lengths at and past every limit, command names, JSON fragments.
/// Nothing here stops the server or changes its settings (no SHUTDOWN, CONFIG,
/// FLUSHALL).
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\x".to_vec()),
        Just(b"\\x4".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"0".to_vec()),
        Just(b"1".to_vec()),
        Just(b"2".to_vec()),
        Just(b"3".to_vec()),
        Just(b"4".to_vec()),
        Just(b"10".to_vec()),
        Just(b"2147483648".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        Just(b"PING".to_vec()),
        Just(b"ECHO".to_vec()),
        Just(b"EVT.ADD".to_vec()),
        Just(b"EVT.MADD".to_vec()),
        Just(b"EVT.TOTAL".to_vec()),
        Just(b"EVT.SUM".to_vec()),
        Just(b"WINDOW".to_vec()),
        Just(b"HELLO".to_vec()),
        Just(b"AUTH".to_vec()),
        Just(b"CLIENT".to_vec()),
        Just(b"SETNAME".to_vec()),
        Just(b"INFO".to_vec()),
        Just(b"POST".to_vec()),
        Just(b"{\"user_id\":".to_vec()),
        Just(br#"{"user_id":"u","event_type":"t","timestamp":"#.to_vec()),
        Just(br#""attributes":{"value":1e400}}"#.to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 1..24),
    ];
    prop::collection::vec(token, 0..48).prop_map(|parts| parts.concat())
}

/// Hostile bytes (see [`hostile_bytes`]) on a fresh connection that the client then
/// half-closes: the server stays up, closes the connection, answers only well-formed
/// RESP, and a new client gets `+PONG` after each.
#[test]
fn arbitrary_bytes_never_take_the_server_down() {
    let mut server = Spawned::start(&["--clock", "manual"]);
    let mut runner = TestRunner::new(PropConfig {
        cases: 128,
        failure_persistence: None,
        // Shrinking against a server that died would only shrink to "anything
        // fails"; the input that killed it is the one worth reporting.
        max_shrink_iters: 0,
        ..PropConfig::default()
    });
    let result = runner.run(&hostile_bytes(), |bytes| {
        // The server answers what it can, and closes once it sees our end.
        let (replies, closed) = feed_and_hang_up(&server, &bytes);
        prop_assert!(server.pings(), "a fresh connection gets +PONG");
        prop_assert!(closed, "the connection ends once the client is done");
        let parsed = parse_all(&replies);
        prop_assert!(
            parsed.is_ok(),
            "malformed replies {:?}: {:?}",
            text(&replies),
            parsed.err()
        );
        Ok(())
    });
    assert!(
        server.alive(),
        "the server died; its log:\n{}",
        server.log()
    );
    result.unwrap();
    assert!(server.pings());
}
