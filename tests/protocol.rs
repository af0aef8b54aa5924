//! The Redis protocol front door (issue 2), through real sockets: byte-exact replies on
//! raw connections for the protocol's edge cases, the `redis` crate for normal use.
//!
//! Every test starts its own server on `127.0.0.1:0` with the manual clock, so tests
//! run in parallel and time only moves when a test moves it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use redis::Value;

const MANUAL: &[&str] = &["--clock", "manual"];

fn manual() -> TestServer {
    TestServer::start(MANUAL)
}

/// Bytes as text for assertion messages (replies are ASCII apart from echoed data).
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that the connection sends exactly `want` and then closes.
#[track_caller]
fn expect_reply_then_close(s: &mut TcpStream, want: &[u8]) {
    let (got, closed) = read_until_closed(s);
    assert_eq!(text(&got), text(want), "reply before the close");
    assert!(
        closed,
        "the server should close the connection after {:?}",
        text(want)
    );
}

/// The value under `key` in a map reply (a RESP3 map or a RESP2 flat array).
fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let is_key = |k: &Value| match k {
        Value::BulkString(b) => b == key.as_bytes(),
        Value::SimpleString(s) => s == key,
        _ => false,
    };
    match v {
        Value::Map(pairs) => pairs.iter().find(|(k, _)| is_key(k)).map(|(_, v)| v),
        Value::Array(items) => items.chunks_exact(2).find(|p| is_key(&p[0])).map(|p| &p[1]),
        _ => None,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => text(b),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Okay => "OK".into(),
        other => panic!("not a string: {other:?}"),
    }
}

fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

/// The keys of a map reply (RESP3 map or RESP2 flat array).
fn map_keys(v: &Value) -> Vec<String> {
    match v {
        Value::Map(pairs) => pairs.iter().map(|(k, _)| as_text(k)).collect(),
        Value::Array(items) => items.chunks_exact(2).map(|p| as_text(&p[0])).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

/// Every command the issues require, with its Redis-convention arity.
const COMMANDS: &[(&str, i64)] = &[
    // `EVT.ADD <json>` or the keyed `EVT.ADD <user_id> <json>` (issue 13).
    ("evt.add", -2),
    ("evt.madd", -2),
    ("evt.total", -1),
    ("evt.user", -2),
    ("evt.type", -2),
    ("evt.sum", -3),
    ("evt.clock", -1),
    ("ping", -1),
    ("echo", 2),
    ("hello", -1),
    ("select", 2),
    ("quit", -1),
    ("reset", 1),
    ("client", -2),
    ("command", -1),
    ("config", -2),
    ("info", -1),
    ("time", 1),
    ("dbsize", 1),
    ("flushall", -1),
    ("flushdb", -1),
    ("shutdown", -1),
];

// ---------------------------------------------------------------------------------
// PING, ECHO, HELLO
// ---------------------------------------------------------------------------------

#[test]
fn ping_and_echo_byte_exact() {
    let server = manual();
    let mut s = server.raw();
    let mut req = b"PING\r\n".to_vec();
    req.extend(resp_str(&["PING"]));
    req.extend(resp_str(&["PING", "hello world"]));
    req.extend(resp(&[b"ECHO", b"bin\r\n\x00\xff"]));
    req.extend(resp(&[b"echo", b""]));
    let want: &[u8] =
        b"+PONG\r\n+PONG\r\n$11\r\nhello world\r\n$7\r\nbin\r\n\x00\xff\r\n$0\r\n\r\n";
    let got = send_recv(&mut s, &req, want.len());
    assert_eq!(got, want);

    let mut c = server.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let echoed: String = redis::cmd("ECHO").arg("héllo ✓").query(&mut c).unwrap();
    assert_eq!(echoed, "héllo ✓");
}

#[test]
fn hello_3_switches_the_connection_to_resp3_and_hello_2_back() {
    let server = manual();
    let mut s = server.raw();
    s.write_all(b"HELLO 3\r\n").unwrap();
    let tail: &[u8] =
        b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    let hello = read_until_suffix(&mut s, tail);
    let hello_text = text(&hello);
    assert!(
        hello_text.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$"),
        "HELLO 3 must reply with a RESP3 map of 7 fields, server first: {hello_text:?}"
    );
    assert!(
        hello_text.contains("\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"),
        "proto 3 and the id: {hello_text:?}"
    );
    assert!(hello.ends_with(tail), "mode, role, modules: {hello_text:?}");

    // The rest of the connection speaks RESP3: doubles, nulls, verbatim INFO.
    let req = b"EVT.SUM nobody nothing\r\nPING\r\nEVT.TOTAL\r\n";
    let want = b",0\r\n+PONG\r\n:0\r\n";
    assert_eq!(text(&send_recv(&mut s, req, want.len())), text(want));
    s.write_all(b"INFO server\r\n").unwrap();
    let info = text(&read_until_suffix(&mut s, b"\r\n\r\n"));
    assert!(
        info.starts_with('=') && info.contains("txt:# Server\r\n"),
        "INFO in RESP3 is a verbatim string: {info:?}"
    );

    // HELLO 2 goes back to RESP2: a flat array of 14, proto 2, doubles as bulk strings.
    s.write_all(b"HELLO 2\r\n").unwrap();
    let hello2 = text(&read_until_suffix(&mut s, tail));
    assert!(
        hello2.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello2:?}"
    );
    assert!(hello2.contains("$5\r\nproto\r\n:2\r\n"), "{hello2:?}");
    let want = b"$1\r\n0\r\n";
    assert_eq!(
        text(&send_recv(
            &mut s,
            b"EVT.SUM nobody nothing\r\n",
            want.len()
        )),
        text(want)
    );
}

#[test]
fn hello_without_version_keeps_the_protocol_and_describes_the_connection() {
    let server = manual();
    let mut s = server.raw();
    s.write_all(b"HELLO\r\n").unwrap();
    let tail: &[u8] = b"$7\r\nmodules\r\n*0\r\n";
    let hello = text(&read_until_suffix(&mut s, tail));
    assert!(hello.starts_with("*14\r\n"), "still RESP2: {hello:?}");
    assert!(hello.contains("$5\r\nproto\r\n:2\r\n"), "{hello:?}");
}

#[test]
fn hello_bad_versions() {
    let server = manual();
    let mut s = server.raw();
    let req = b"HELLO 4\r\nHELLO 1\r\nHELLO x\r\nHELLO 3.0\r\nEVT.SUM a b\r\nPING\r\n";
    let want = b"-NOPROTO unsupported protocol version\r\n\
                 -NOPROTO unsupported protocol version\r\n\
                 -ERR Protocol version is not an integer or out of range\r\n\
                 -ERR Protocol version is not an integer or out of range\r\n\
                 $1\r\n0\r\n+PONG\r\n";
    assert_eq!(text(&send_recv(&mut s, req, want.len())), text(want));
}

#[test]
fn hello_setname_names_the_connection() {
    let server = manual();
    let mut s = server.raw();
    s.write_all(b"HELLO 3 SETNAME worker-1\r\n").unwrap();
    let hello = text(&read_until_suffix(&mut s, b"$7\r\nmodules\r\n*0\r\n"));
    assert!(hello.starts_with("%7\r\n"), "{hello:?}");
    let want = b"$8\r\nworker-1\r\n";
    assert_eq!(
        text(&send_recv(&mut s, b"CLIENT GETNAME\r\n", want.len())),
        text(want)
    );
    // A name with a space is refused, as Redis refuses it; the old name stays.
    let want = b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n$8\r\nworker-1\r\n";
    assert_eq!(
        text(&send_recv(
            &mut s,
            b"HELLO 3 SETNAME \"a b\"\r\nCLIENT GETNAME\r\n",
            want.len()
        )),
        text(want)
    );
}

#[test]
fn hello_with_auth_and_setname_and_its_syntax_errors() {
    let server = manual();
    let mut s = server.raw();
    // No password is configured: the default user needs none, as in Redis.
    s.write_all(b"HELLO 2 AUTH default anything SETNAME n1\r\n")
        .unwrap();
    let hello = text(&read_until_suffix(&mut s, b"$7\r\nmodules\r\n*0\r\n"));
    assert!(hello.starts_with("*14\r\n$6\r\nserver\r\n"), "{hello:?}");
    let want: &[u8] = b"$2\r\nn1\r\n\
        -ERR Syntax error in HELLO option 'AUTH'\r\n\
        -ERR Syntax error in HELLO option 'SETNAME'\r\n\
        -ERR Syntax error in HELLO option 'bogus'\r\n\
        +PONG\r\n";
    let got = send_recv(
        &mut s,
        b"CLIENT GETNAME\r\nHELLO 3 AUTH default\r\nHELLO 3 SETNAME\r\nHELLO 3 bogus\r\nPING\r\n",
        want.len(),
    );
    assert_eq!(text(&got), text(want));
}

#[test]
fn resp3_client_library_connection() {
    let server = manual();
    let mut c = server.client3();
    let hello: Value = redis::cmd("HELLO").arg(3).query(&mut c).unwrap();
    assert!(matches!(hello, Value::Map(_)), "{hello:?}");
    assert_eq!(as_text(map_get(&hello, "server").unwrap()), "redis");
    assert!(!as_text(map_get(&hello, "version").unwrap()).is_empty());
    assert_eq!(as_int(map_get(&hello, "proto").unwrap()), 3);
    assert_eq!(as_text(map_get(&hello, "mode").unwrap()), "standalone");
    assert_eq!(as_text(map_get(&hello, "role").unwrap()), "master");
    assert!(items(map_get(&hello, "modules").unwrap()).is_empty());
    let id = as_int(map_get(&hello, "id").unwrap());
    let client_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut c).unwrap();
    assert_eq!(id, client_id, "HELLO's id is CLIENT ID");

    let now = clock(&mut c);
    add(&mut c, &event("u", "click", now, 10.5)).unwrap();
    let sum: Value = redis::cmd("EVT.SUM")
        .arg("u")
        .arg("click")
        .query(&mut c)
        .unwrap();
    assert_eq!(sum, Value::Double(10.5), "EVT.SUM is a RESP3 double");
    let total: i64 = redis::cmd("EVT.TOTAL").query(&mut c).unwrap();
    assert_eq!(total, 1);
}

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
// Errors worded as Redis words them
// ---------------------------------------------------------------------------------

#[test]
fn command_errors_are_worded_like_redis_and_keep_the_connection() {
    let server = manual();
    let mut s = server.raw();
    let mut req = Vec::new();
    req.extend_from_slice(b"foo a\r\n");
    req.extend(resp_str(&["foo", "a", "b"]));
    req.extend_from_slice(b"foo\r\n");
    req.extend_from_slice(b"ECHO\r\n");
    req.extend_from_slice(b"echo a b\r\n");
    req.extend_from_slice(b"PING a b\r\n");
    req.extend_from_slice(b"FLUSHALL bogus\r\n");
    req.extend_from_slice(b"EVT.TOTAL BOGUS 3\r\n");
    req.extend_from_slice(b"SELECT x\r\n");
    req.extend_from_slice(b"SELECT 1\r\n");
    req.extend_from_slice(b"SELECT 0\r\n");
    req.extend_from_slice(b"PING\r\n");
    let want: &[u8] = b"-ERR unknown command 'foo', with args beginning with: 'a' \r\n\
        -ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n\
        -ERR unknown command 'foo', with args beginning with: \r\n\
        -ERR wrong number of arguments for 'echo' command\r\n\
        -ERR wrong number of arguments for 'echo' command\r\n\
        -ERR wrong number of arguments for 'ping' command\r\n\
        -ERR syntax error\r\n\
        -ERR syntax error\r\n\
        -ERR value is not an integer or out of range\r\n\
        -ERR DB index is out of range\r\n\
        +OK\r\n\
        +PONG\r\n";
    assert_eq!(text(&send_recv(&mut s, &req, want.len())), text(want));

    // Through a client library the same errors arrive as server errors.
    let mut c = server.client();
    assert_eq!(
        query_err(&mut c, &redis::cmd("ECHO")),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        query_err(&mut c, redis::cmd("SELECT").arg("x")),
        "ERR value is not an integer or out of range"
    );
    let ok: String = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
}

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

// ---------------------------------------------------------------------------------
// Connection commands
// ---------------------------------------------------------------------------------

#[test]
fn quit_replies_ok_then_closes() {
    let server = manual();
    let mut s = server.raw();
    s.write_all(b"PING\r\nQUIT\r\nPING\r\n").unwrap();
    expect_reply_then_close(&mut s, b"+PONG\r\n+OK\r\n");
    let mut s = server.raw();
    s.write_all(&resp_str(&["QUIT"])).unwrap();
    expect_reply_then_close(&mut s, b"+OK\r\n");
}

#[test]
fn reset_returns_to_resp2_and_forgets_the_name() {
    let server = manual();
    let mut s = server.raw();
    s.write_all(b"HELLO 3 SETNAME before-reset\r\n").unwrap();
    read_until_suffix(&mut s, b"$7\r\nmodules\r\n*0\r\n");
    let want = b"+RESET\r\n$1\r\n0\r\n$-1\r\n";
    let got = send_recv(
        &mut s,
        b"RESET\r\nEVT.SUM a b\r\nCLIENT GETNAME\r\n",
        want.len(),
    );
    assert_eq!(text(&got), text(want));
}

#[test]
fn client_setname_getname_id_setinfo_info_list() {
    let server = manual();
    let mut other = server.client();
    let mut s = server.raw();
    let want = b"$-1\r\n+OK\r\n$7\r\nmy-conn\r\n+OK\r\n+OK\r\n";
    let got = send_recv(
        &mut s,
        b"CLIENT GETNAME\r\nCLIENT SETNAME my-conn\r\nCLIENT GETNAME\r\n\
          CLIENT SETINFO LIB-NAME mylib\r\nCLIENT SETINFO lib-ver 1.2.3\r\n",
        want.len(),
    );
    assert_eq!(text(&got), text(want));

    s.write_all(b"CLIENT ID\r\n").unwrap();
    let id_reply = text(&read_until_suffix(&mut s, b"\r\n"));
    assert!(
        id_reply.starts_with(':'),
        "CLIENT ID is an integer: {id_reply:?}"
    );
    let id: i64 = id_reply[1..].trim().parse().unwrap();
    let other_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut other).unwrap();
    assert_ne!(id, other_id, "ids are unique");

    // CLIENT INFO describes this connection in CLIENT LIST's `key=value` form.
    s.write_all(b"CLIENT INFO\r\n").unwrap();
    let info = text(&read_until_suffix(&mut s, b"\n\r\n"));
    assert!(info.starts_with('$'), "a bulk string in RESP2: {info:?}");
    for part in [
        format!("id={id} "),
        "name=my-conn ".to_string(),
        "lib-name=mylib ".to_string(),
        "lib-ver=1.2.3".to_string(),
    ] {
        assert!(info.contains(&part), "CLIENT INFO lacks {part:?}: {info:?}");
    }

    // CLIENT LIST has one line per connection.
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut other).unwrap();
    let lines: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "two connections: {list:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("id={id} ")) && l.contains("name=my-conn"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("id={other_id} ")))
    );
}

#[test]
fn client_setname_and_setinfo_refuse_bad_values() {
    let server = manual();
    let mut s = server.raw();
    let want: &[u8] = b"+OK\r\n\
        -ERR Client names cannot contain spaces, newlines or special characters.\r\n\
        $4\r\nkeep\r\n";
    let got = send_recv(
        &mut s,
        b"CLIENT SETNAME keep\r\nCLIENT SETNAME \"a b\"\r\nCLIENT GETNAME\r\n",
        want.len(),
    );
    assert_eq!(text(&got), text(want));
    let mut c = server.client();
    let e = query_err(
        &mut c,
        redis::cmd("CLIENT").arg("SETINFO").arg("NOSUCH").arg("x"),
    );
    assert!(e.starts_with("ERR "), "{e}");
    let e = query_err(&mut c, redis::cmd("CLIENT").arg("NOSUCH"));
    assert!(e.starts_with("ERR unknown subcommand"), "{e}");
}

// ---------------------------------------------------------------------------------
// COMMAND
// ---------------------------------------------------------------------------------

#[test]
fn command_count_list_info_docs_describe_every_command() {
    let server = manual();
    let mut c = server.client();
    let list: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut c).unwrap();
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert_eq!(
        count as usize,
        list.len(),
        "COMMAND COUNT == COMMAND LIST length"
    );
    let all: Value = redis::cmd("COMMAND").query(&mut c).unwrap();
    assert_eq!(
        items(&all).len(),
        list.len(),
        "bare COMMAND describes every command"
    );
    for (name, _) in COMMANDS {
        assert!(
            list.iter().any(|n| n == name),
            "COMMAND LIST lacks {name}: {list:?}"
        );
    }

    for (name, arity) in COMMANDS {
        let info: Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name.to_uppercase())
            .query(&mut c)
            .unwrap();
        let entry = &items(&info)[0];
        let fields = items(entry);
        assert!(fields.len() >= 6, "{name}: {entry:?}");
        assert_eq!(as_text(&fields[0]), *name);
        assert_eq!(as_int(&fields[1]), *arity, "arity of {name}");
        let flags: Vec<String> = items(&fields[2]).iter().map(as_text).collect();
        if *name == "evt.add" || *name == "evt.madd" {
            assert!(flags.iter().any(|f| f == "write"), "{name} flags {flags:?}");
        }
        if ["evt.total", "evt.user", "evt.type", "evt.sum"].contains(name) {
            assert!(
                flags.iter().any(|f| f == "readonly"),
                "{name} flags {flags:?}"
            );
        }
        // First key, last key, step.
        for f in &fields[3..6] {
            as_int(f);
        }
    }

    // Unknown names give a nil entry.
    let info: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("evt.total")
        .arg("no-such-command")
        .query(&mut c)
        .unwrap();
    assert_eq!(items(&info).len(), 2);
    assert_eq!(items(&info)[1], Value::Nil);

    // COMMAND DOCS with no name documents everything (redis-cli's hints).
    let docs: Value = redis::cmd("COMMAND").arg("DOCS").query(&mut c).unwrap();
    let documented = map_keys(&docs);
    for name in &list {
        assert!(documented.contains(name), "COMMAND DOCS lacks {name}");
    }
    let sum_doc: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("EVT.SUM")
        .query(&mut c)
        .unwrap();
    let doc = map_get(&sum_doc, "evt.sum").expect("docs for evt.sum");
    assert!(!as_text(map_get(doc, "summary").expect("summary")).is_empty());
    let args = items(map_get(doc, "arguments").expect("arguments"));
    let names: Vec<String> = args
        .iter()
        .map(|a| as_text(map_get(a, "name").expect("argument name")))
        .collect();
    assert!(names.len() >= 3, "user_id, event_type, WINDOW: {names:?}");
}

#[test]
fn command_docs_in_resp3_is_a_map() {
    let server = manual();
    let mut c = server.client3();
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("evt.add")
        .query(&mut c)
        .unwrap();
    assert!(matches!(docs, Value::Map(_)), "{docs:?}");
    assert!(map_get(&docs, "evt.add").is_some());
}

// ---------------------------------------------------------------------------------
// CONFIG
// ---------------------------------------------------------------------------------

#[test]
fn config_get_answers_what_tools_ask_at_start() {
    let server = manual();
    let mut s = server.raw();
    let want: &[u8] = b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n\
        *2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n\
        *0\r\n";
    let got = send_recv(
        &mut s,
        b"CONFIG GET save\r\nCONFIG GET appendonly\r\nCONFIG GET no-such-setting\r\n",
        want.len(),
    );
    assert_eq!(text(&got), text(want));

    let mut c = server.client();
    let all: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        all.get("port").map(String::as_str),
        Some(&*server.addr.port().to_string())
    );
    assert_eq!(all.get("window").map(String::as_str), Some("60"));
    assert_eq!(all.get("clock").map(String::as_str), Some("manual"));
    assert_eq!(all.get("max-future-skew").map(String::as_str), Some("5"));
    assert_eq!(all.get("save").map(String::as_str), Some(""));
    assert_eq!(all.get("appendonly").map(String::as_str), Some("no"));
    for name in [
        "bind",
        "proto-max-bulk-len",
        "client-query-buffer-limit",
        "max-id-len",
    ] {
        assert!(all.contains_key(name), "CONFIG GET * lacks {name}: {all:?}");
    }
    // Several patterns at once, globs, any case.
    let some: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("SAVE")
        .arg("max-f*")
        .query(&mut c)
        .unwrap();
    assert_eq!(some.len(), 2, "{some:?}");
    assert!(some.contains_key("save") && some.contains_key("max-future-skew"));
}

#[test]
fn config_set_changes_runtime_settings_and_names_immutable_ones() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);

    for immutable in ["window", "clock", "port"] {
        let e = query_err(
            &mut c,
            redis::cmd("CONFIG").arg("SET").arg(immutable).arg("5"),
        );
        assert!(
            e.starts_with("ERR ") && e.contains(&format!("'{immutable}'")),
            "the error names the setting: {e}"
        );
    }
    let window: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("window")
        .query(&mut c)
        .unwrap();
    assert_eq!(window, ["window", "60"]);

    let mut s = server.raw();
    let want = b"-ERR Unknown option or number of arguments for CONFIG SET - 'no-such-option'\r\n";
    assert_eq!(
        text(&send_recv(
            &mut s,
            b"CONFIG SET no-such-option 1\r\n",
            want.len()
        )),
        text(want)
    );

    // max-future-skew moves at run time: 50 s ahead is refused, then accepted.
    let ahead = bare_event("u", "click", now + 50);
    assert!(add(&mut c, &ahead).unwrap_err().contains("future"));
    let ok: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg("max-future-skew")
        .arg("100")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let skew: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("max-future-skew")
        .query(&mut c)
        .unwrap();
    assert_eq!(skew, ["max-future-skew", "100"]);
    add(&mut c, &ahead).unwrap();
    assert_eq!(redis::cmd("EVT.TOTAL").query::<i64>(&mut c).unwrap(), 1);

    // A bad value changes nothing.
    let e = query_err(
        &mut c,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("max-future-skew")
            .arg("abc"),
    );
    assert!(
        e.starts_with("ERR ") && e.contains("max-future-skew"),
        "{e}"
    );
    let skew: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("max-future-skew")
        .query(&mut c)
        .unwrap();
    assert_eq!(skew, ["max-future-skew", "100"]);
    // Tools that turn persistence off get OK.
    let ok: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
}

// ---------------------------------------------------------------------------------
// INFO, TIME, DBSIZE, FLUSHALL
// ---------------------------------------------------------------------------------

#[test]
fn info_sections_in_redis_layout() {
    let server = manual();
    let mut c = server.client();
    let mut c2 = server.client();
    let all = info(&mut c, None);
    for header in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Stats",
        "# Analytics",
    ] {
        assert!(
            all.lines().any(|l| l == header),
            "INFO lacks section {header}:\n{all}"
        );
    }
    for line in all.split("\r\n") {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, _) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not key:value: {line:?}"));
        assert!(
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "odd key {key:?}"
        );
    }
    assert!(
        !all.replace("\r\n", "").contains('\n'),
        "every line ends with CRLF"
    );

    let server_section = info(&mut c, Some("server"));
    assert!(
        server_section.starts_with("# Server\r\n"),
        "{server_section}"
    );
    assert!(
        !server_section.contains("# Clients"),
        "only the section asked for"
    );
    assert_eq!(
        info_field(&server_section, "tcp_port"),
        Some(server.addr.port().to_string())
    );
    assert!(info_field(&server_section, "redis_version").is_some());
    assert!(
        info_field(&server_section, "uptime_in_seconds").is_some_and(|v| v.parse::<u64>().is_ok())
    );

    // A round trip on the second connection: the server surely has it registered.
    redis::cmd("PING").query::<String>(&mut c2).unwrap();
    let clients = info(&mut c, Some("clients"));
    assert!(clients.starts_with("# Clients\r\n"));
    assert_eq!(
        info_field(&clients, "connected_clients").as_deref(),
        Some("2")
    );

    let stats = info(&mut c, Some("STATS"));
    assert!(
        stats.starts_with("# Stats\r\n"),
        "section names are case-insensitive"
    );
    for f in ["total_connections_received", "total_commands_processed"] {
        assert!(
            info_field(&stats, f).is_some_and(|v| v.parse::<u64>().unwrap() > 0),
            "{f} in {stats}"
        );
    }
    let memory = info(&mut c, Some("memory"));
    assert!(memory.starts_with("# Memory\r\n"));
    assert!(info_field(&memory, "used_memory").is_some_and(|v| v.parse::<u64>().is_ok()));

    let analytics = info(&mut c, Some("analytics"));
    assert!(analytics.starts_with("# Analytics\r\n"));
    assert_eq!(
        info_field(&analytics, "window_seconds").as_deref(),
        Some("60")
    );

    let both: String = redis::cmd("INFO")
        .arg("server")
        .arg("analytics")
        .query(&mut c)
        .unwrap();
    assert!(both.contains("# Server") && both.contains("# Analytics") && !both.contains("# Stats"));
}

#[test]
fn time_dbsize_flushall_flushdb() {
    let server = manual();
    let mut c = server.client();
    let (secs, micros): (String, String) = redis::cmd("TIME").query(&mut c).unwrap();
    let secs: i64 = secs.parse().unwrap();
    let micros: i64 = micros.parse().unwrap();
    assert!((secs - system_now()).abs() <= 60, "TIME is the system time");
    assert!((0..1_000_000).contains(&micros));

    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    let now = clock(&mut c);
    add(&mut c, &event("u1", "click", now, 1.0)).unwrap();
    add(&mut c, &event("u2", "click", now, 1.0)).unwrap();
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(dbsize > 0, "DBSIZE counts the active keys");

    let ok: String = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    assert_eq!(redis::cmd("EVT.TOTAL").query::<i64>(&mut c).unwrap(), 0);
    assert_eq!(
        redis::cmd("EVT.USER")
            .arg("u1")
            .query::<i64>(&mut c)
            .unwrap(),
        0
    );

    add(&mut c, &event("u3", "view", now, 1.0)).unwrap();
    assert_eq!(redis::cmd("EVT.TOTAL").query::<i64>(&mut c).unwrap(), 1);
    let ok: String = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(redis::cmd("EVT.TOTAL").query::<i64>(&mut c).unwrap(), 0);
    let ok: String = redis::cmd("FLUSHALL").arg("ASYNC").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
}

// ---------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------

#[test]
fn shutdown_answers_what_came_before_it_then_stops_the_server() {
    let mut server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    let mut idle = server.raw();
    let mut s = server.raw();
    let mut req = b"PING\r\n".to_vec();
    req.extend(resp_str(&["EVT.ADD", &bare_event("last", "click", now)]));
    req.extend(resp_str(&["ECHO", "bye"]));
    req.extend_from_slice(b"SHUTDOWN\r\n");
    s.write_all(&req).unwrap();
    expect_reply_then_close(&mut s, b"+PONG\r\n+OK\r\n$3\r\nbye\r\n");
    assert!(
        server.wait_stopped(Duration::from_secs(10)),
        "the server thread ends after SHUTDOWN"
    );
    assert_eq!(
        server.handle.events_accepted(),
        1,
        "the EVT.ADD before SHUTDOWN was applied"
    );
    // Other connections are closed and nobody new is accepted.
    let (_, closed) = read_until_closed(&mut idle);
    assert!(closed, "idle connections are closed");
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "the listener is closed"
    );
}

#[test]
fn graceful_stop_flushes_replies_of_every_command_it_ran() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    drop(c);
    let handle = server.handle.clone();
    let mut s = server.raw();
    let mut req = Vec::new();
    for i in 0..20_000 {
        req.extend(resp_str(&[
            "EVT.ADD",
            &bare_event(&format!("u{i}"), "click", now),
        ]));
    }
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&req);
    });
    // The server is working through the pipeline...
    let mut first = [0u8; 5];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"+OK\r\n");
    // ...when it is told to stop.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stopper = std::thread::spawn(move || {
        server.stop();
        let _ = done_tx.send(());
    });
    let (rest, closed) = read_until_closed(&mut s);
    assert!(closed, "the connection is closed by the stop");
    assert!(
        done_rx.recv_timeout(Duration::from_secs(15)).is_ok(),
        "the server stopped"
    );
    stopper.join().unwrap();
    writer.join().unwrap();

    assert_eq!(
        rest.len() % 5,
        0,
        "only whole replies: {} bytes",
        rest.len()
    );
    assert!(
        rest.chunks(5).all(|r| r == b"+OK\r\n"),
        "every reply is +OK"
    );
    let replied = 1 + rest.len() / 5;
    let applied = handle.events_accepted() as usize;
    assert_eq!(
        replied, applied,
        "every command the server ran had its reply flushed before the close"
    );
}

// ---------------------------------------------------------------------------------
// Limits
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
// Properties
// ---------------------------------------------------------------------------------

/// A pipeline of several kinds of command, multibulk and inline, with its events at
/// `now`.
fn sample_pipeline(now: i64) -> Vec<u8> {
    let mut p = Vec::new();
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
    p
}

/// Sends `chunks` one write each after a FLUSHALL and reads `expect_len` bytes.
fn run_pipeline(server: &TestServer, chunks: &[&[u8]], expect_len: usize) -> Vec<u8> {
    let mut s = server.raw();
    assert_eq!(send_recv(&mut s, b"FLUSHALL\r\n", 5), b"+OK\r\n");
    for chunk in chunks {
        s.write_all(chunk).unwrap();
    }
    read_n(&mut s, expect_len)
}

#[test]
fn any_split_of_a_pipeline_gets_the_same_replies() {
    let server = manual();
    let mut c = server.client();
    let now = clock(&mut c);
    let pipeline = sample_pipeline(now);

    // The reference: the whole pipeline in one write, read until the last reply.
    let reference = {
        let mut s = server.raw();
        assert_eq!(send_recv(&mut s, b"FLUSHALL\r\n", 5), b"+OK\r\n");
        s.write_all(&pipeline).unwrap();
        read_until_suffix(&mut s, b"$5\r\nsplit\r\n")
    };
    assert!(
        reference.ends_with(b"$5\r\nsplit\r\n"),
        "{}",
        text(&reference)
    );
    assert!(
        text(&reference)
            .starts_with("+PONG\r\n$6\r\nbin\r\n\0\r\n+OK\r\n+OK\r\n:2\r\n-ERR invalid event"),
        "{:?}",
        text(&reference)
    );

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let sizes = proptest::collection::vec(1usize..40, 1..60);
    runner
        .run(&sizes, |sizes| {
            let mut chunks = Vec::new();
            let mut rest = &pipeline[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at((*size).min(rest.len()));
                chunks.push(head);
                rest = tail;
            }
            let got = run_pipeline(&server, &chunks, reference.len());
            prop_assert_eq!(text(&got), text(&reference));
            Ok(())
        })
        .unwrap();
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"0".to_vec()),
        Just(b"2".to_vec()),
        Just(b"4".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        Just(b"2147483648".to_vec()),
        Just(b"PING".to_vec()),
        Just(b"ECHO".to_vec()),
        Just(b"HELLO".to_vec()),
        Just(b"EVT.ADD".to_vec()),
        Just(b"EVT.SUM".to_vec()),
        Just(b"{\"user_id\":".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\x".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\0".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..24),
    ];
    proptest::collection::vec(token, 0..48).prop_map(|parts| parts.concat())
}

/// Sends `bytes` on a fresh connection, ends our side, and reads until the server
/// closes; `false` when the server kept the connection open (stuck on it).
fn feed_and_hang_up(server: &Spawned, bytes: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect(server.addr) else {
        return true; // nothing left to hang: `pings` reports the dead server
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    read_until_closed(&mut s).1
}

// These two run the real binary in a child process under a memory limit: the bug
// they look for (a parser looping while it allocates) would otherwise exhaust the
// machine's memory from inside the test process.

#[test]
fn a_nul_byte_in_an_inline_command_does_not_wedge_the_server() {
    let mut server = Spawned::start(&["--clock", "manual"]);
    for line in [&b"PING\0\r\n"[..], b"\0\r\n", b"ECHO a\0b\r\n"] {
        let closed = feed_and_hang_up(&server, line);
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

#[test]
fn arbitrary_bytes_never_take_the_server_down() {
    let mut server = Spawned::start(&["--clock", "manual"]);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        // Shrinking against a server that died would only shrink to "anything
        // fails"; the input that killed it is the one worth reporting.
        max_shrink_iters: 0,
        ..ProptestConfig::default()
    });
    let result = runner.run(&garbage(), |bytes| {
        // The server answers what it can, and closes once it sees our end.
        let closed = feed_and_hang_up(&server, &bytes);
        prop_assert!(server.pings(), "a fresh connection gets +PONG");
        prop_assert!(closed, "the connection ends once the client is done");
        Ok(())
    });
    assert!(
        server.alive(),
        "the server died; its log:\n{}",
        server.log()
    );
    result.unwrap();
}

// ---------------------------------------------------------------------------------
// The binary: flags, start-up failures, logging, signals
// ---------------------------------------------------------------------------------

const BINARY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `--help` paragraph of `flag`.
fn help_block(help: &str, flag: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    let start = lines.iter().position(|l| {
        let l = l.trim_start();
        l.starts_with(flag) && l[flag.len()..].starts_with([' ', '<', '='])
    })?;
    let end = lines[start + 1..]
        .iter()
        // The next flag: `-` after at most six spaces (value lists are indented more).
        .position(|l| {
            let indent = l.len() - l.trim_start().len();
            indent <= 6 && l.trim_start().starts_with('-')
        })
        .map_or(lines.len(), |i| start + 1 + i);
    Some(lines[start..end].join("\n"))
}

#[test]
fn help_documents_every_flag_and_its_default() {
    let (status, help) = run_binary(&["--help"], BINARY_TIMEOUT);
    assert!(status.is_some_and(|s| s.success()), "{help}");
    let flags: &[(&str, Option<&str>)] = &[
        ("--bind", Some("127.0.0.1")),
        ("--port", Some("6379")),
        ("--log-level", None),
        ("--window", Some("60")),
        ("--clock", Some("wall")),
        ("--max-future-skew", Some("5")),
        ("--max-id-len", Some("")),
        ("--proto-max-bulk-len", Some("")),
        ("--max-args", Some("")),
        ("--client-query-buffer-limit", Some("")),
    ];
    for (flag, default) in flags {
        let block =
            help_block(&help, flag).unwrap_or_else(|| panic!("--help lacks {flag}:\n{help}"));
        assert!(
            block.split_whitespace().count() >= 4,
            "{flag} is described: {block:?}"
        );
        if let Some(default) = default {
            assert!(
                block.contains(&format!("[default: {default}")),
                "{flag} shows its default {default:?}: {block:?}"
            );
        }
    }
    assert!(help.contains("RUST_LOG"), "--log-level mentions RUST_LOG");
}

#[test]
fn a_port_in_use_exits_nonzero_with_one_line_naming_cause_and_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, out) = run_binary(&["--bind", "127.0.0.1", "--port", &port], BINARY_TIMEOUT);
    let status = status.expect("the server exits instead of serving");
    assert!(!status.success(), "{out}");
    assert!(
        !out.contains("panicked") && !out.contains("backtrace"),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {out}");
    assert!(lines[0].contains(&port), "names the port: {out}");
    assert!(
        lines[0].to_lowercase().contains("in use"),
        "names the cause: {out}"
    );
    assert!(lines[0].contains("--port"), "names the fix: {out}");
}

#[test]
fn bad_flags_exit_nonzero_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--window", "0"], "--window"),
        (&["--window", "61"], "--window"),
        (&["--port", "notaport"], "--port"),
        (&["--clock", "sundial"], "--clock"),
        (&["--bind", "nowhere"], "--bind"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, flag) in cases {
        let (status, out) = run_binary(args, BINARY_TIMEOUT);
        let status = status.unwrap_or_else(|| panic!("{args:?} made the server run"));
        assert!(!status.success(), "{args:?}: {out}");
        assert!(!out.contains("panicked"), "{args:?}: {out}");
        let first = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        assert!(
            first.contains(flag),
            "{args:?}: the first line names {flag}: {out}"
        );
    }
}

#[test]
fn one_log_line_says_where_the_server_listens() {
    let server = Spawned::start(&["--clock", "manual"]);
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("listening on")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].ends_with(&format!("listening on {}", server.addr)),
        "{log}"
    );
    assert!(server.pings());
}

#[test]
fn protocol_errors_are_logged_at_debug_with_the_peer_address() {
    for level in ["debug", "info"] {
        let mut server = Spawned::start(&["--clock", "manual", "--log-level", level]);
        let mut s = server.raw();
        let peer = s.local_addr().unwrap().to_string();
        s.write_all(b"*abc\r\n").unwrap();
        expect_reply_then_close(&mut s, b"-ERR Protocol error: invalid multibulk length\r\n");
        let mut stop = server.raw();
        stop.write_all(b"SHUTDOWN\r\n").unwrap();
        let log = server.final_log(BINARY_TIMEOUT);
        let logged: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&peer) && l.to_lowercase().contains("protocol error"))
            .collect();
        if level == "debug" {
            assert!(
                logged.iter().any(|l| l.contains("DEBUG")),
                "a debug line with the peer {peer}:\n{log}"
            );
        } else {
            assert!(logged.is_empty(), "not above debug:\n{log}");
        }
    }
}

#[test]
fn a_flood_of_protocol_errors_does_not_flood_the_log() {
    let mut server = Spawned::start(&["--clock", "manual"]);
    for _ in 0..300 {
        let mut s = server.raw();
        s.write_all(b"*1\r\nx\r\n").unwrap();
        read_until_closed(&mut s);
    }
    let mut stop = server.raw();
    stop.write_all(b"SHUTDOWN\r\n").unwrap();
    let log = server.final_log(BINARY_TIMEOUT);
    let lines = log.lines().count();
    assert!(
        lines < 50,
        "300 bad clients gave {lines} log lines at info:\n{log}"
    );
}

/// Replies to `PING 0`, `PING 1`, ... and where each one ends.
fn numbered_pings(n: usize) -> (Vec<u8>, Vec<u8>, std::collections::HashSet<usize>) {
    let mut req = Vec::new();
    let mut want = Vec::new();
    let mut ends = std::collections::HashSet::new();
    ends.insert(0);
    for i in 0..n {
        let msg = i.to_string();
        req.extend(resp_str(&["PING", &msg]));
        want.extend(format!("${}\r\n{msg}\r\n", msg.len()).into_bytes());
        ends.insert(want.len());
    }
    (req, want, ends)
}

#[test]
fn sigterm_sigint_and_shutdown_stop_the_binary_gracefully_with_exit_0() {
    for how in ["TERM", "INT", "SHUTDOWN"] {
        let mut server = Spawned::start(&["--clock", "manual"]);
        let mut s = server.raw();
        let want = b"+PONG\r\n$2\r\nhi\r\n";
        assert_eq!(send_recv(&mut s, b"PING\r\nECHO hi\r\n", want.len()), want);

        // A long pipeline is in flight when the stop comes.
        let (req, want, ends) = numbered_pings(20_000);
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(&req);
        });
        let mut first = [0u8; 7];
        s.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"$1\r\n0\r\n");
        if how == "SHUTDOWN" {
            let mut other = server.raw();
            other.write_all(b"SHUTDOWN\r\n").unwrap();
        } else {
            let status = std::process::Command::new("kill")
                .arg(format!("-{how}"))
                .arg(server.pid().to_string())
                .status()
                .expect("run kill");
            assert!(status.success());
        }
        let (rest, closed) = read_until_closed(&mut s);
        writer.join().unwrap();
        assert!(closed, "{how}: the connection is closed");
        let status = server
            .wait_exit(BINARY_TIMEOUT)
            .unwrap_or_else(|| panic!("{how}: the server did not exit"));
        assert_eq!(status.code(), Some(0), "{how}: exit status 0");
        let got = first.len() + rest.len();
        assert!(
            want.get(..got) == Some(&[&first[..], &rest[..]].concat()[..]),
            "{how}: the replies are the pipeline's, in order"
        );
        assert!(
            ends.contains(&got),
            "{how}: only whole replies ({got} bytes)"
        );
        assert!(
            server.final_log(BINARY_TIMEOUT).contains("stopped"),
            "{how}"
        );
    }
}
