//! The connection and server commands Redis tools and client libraries send (PING,
//! ECHO, HELLO, QUIT, RESET, CLIENT, COMMAND, CONFIG, INFO, TIME, DBSIZE, FLUSHALL,
//! SHUTDOWN) and the command errors, worded as Redis words them: byte-exact on raw
//! sockets where the wire form is the point, the `redis` crate for normal use.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use redis::Value;

use crate::common::*;

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

#[test]
fn client_info_on_the_first_command_shows_it_and_no_idle_time() {
    let srv = TestServer::start(&[]);
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = srv.client();
    let line: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(line.contains(" idle=0 "), "{line}");
    assert!(line.contains(" cmd=client|info "), "{line}");
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
fn info_counters_move_as_connections_commands_and_errors_happen() {
    let srv = TestServer::start(&[]);
    let mut a = Raw::connect(srv.addr);
    let i0 = a.info();
    for f in [
        "connected_clients",
        "total_connections_received",
        "rejected_connections",
        "total_commands_processed",
        "total_error_replies",
        "client_query_buffer_limit_disconnections",
        "client_output_buffer_limit_disconnections",
        "used_memory",
        "maxmemory",
    ] {
        num_field(&i0, f);
    }
    assert_eq!(num_field(&i0, "connected_clients"), 1);
    assert!(i0.contains("# Errorstats\r\n"), "{i0}");

    // Three more connections: two errors and a PING; one error and a protocol error.
    let mut b = Raw::connect(srv.addr);
    assert!(matches!(b.cmd(&["NOSUCHCOMMAND"]), R::Err(_)));
    assert_eq!(b.cmd(&["PING"]), R::Simple("PONG".into()));
    let mut c = Raw::connect(srv.addr);
    match c.cmd(&["EVT.ADD", "{not json"]) {
        R::Err(e) => assert!(e.starts_with("ERR invalid event"), "{e}"),
        other => panic!("{other:?}"),
    }
    let mut d = Raw::connect(srv.addr);
    assert!(matches!(d.cmd(&["ECHO"]), R::Err(_)));
    d.send(b"*1\r\n$99999999999\r\n");
    assert!(matches!(d.reply(), R::Err(e) if e.starts_with("ERR Protocol error")));
    assert!(d.until_closed().1);

    let i1 = wait_info_num(&mut a, "connected_clients", 3);
    let delta = |f: &str| num_field(&i1, f) - num_field(&i0, f);
    assert_eq!(delta("total_connections_received"), 3, "{i1}");
    assert_eq!(delta("total_error_replies"), 4, "{i1}");
    assert_eq!(errorstat(&i1, "ERR") - errorstat(&i0, "ERR"), 4, "{i1}");
    assert_eq!(delta("protocol_errors"), 1, "{i1}");
    let commands = delta("total_commands_processed");
    assert!((3..=6).contains(&commands), "commands moved by {commands}");
    assert_eq!(delta("rejected_connections"), 0);

    drop((b, c));
    wait_info_num(&mut a, "connected_clients", 1);
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
// SHUTDOWN
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

/// Pipelined `EVT.USER` / `EVT.SUM` are answered a run at a time (`cmd/reads.rs`):
/// each must still see exactly the events sent before it, keep its place among the
/// replies around events, errors and other commands, and count as one call.
#[test]
fn pipelined_queries_see_the_events_before_them_in_order() {
    let srv = manual();
    let mut c = srv.client();
    let now = clock(&mut c);
    let ev = |u: &str, ty: &str, v: f64| event(u, ty, now, v);
    let mut p = redis::pipe();
    p.cmd("EVT.ADD").arg(ev("u1", "click", 2.0));
    p.cmd("EVT.USER").arg("u1");
    p.cmd("EVT.SUM").arg("u1").arg("click");
    p.cmd("EVT.ADD").arg(ev("u1", "click", 3.0));
    p.cmd("EVT.ADD").arg(ev("u2", "view", 1.0));
    p.cmd("EVT.USER").arg("u1");
    p.cmd("EVT.USER").arg("u2");
    p.cmd("EVT.USER").arg("nobody");
    p.cmd("EVT.SUM").arg("u1").arg("click");
    p.cmd("EVT.SUM").arg("u1").arg("view");
    p.cmd("EVT.USER").arg("u1").arg("WINDOW").arg(1);
    p.cmd("EVT.USER").arg(&b"\xff"[..]);
    p.cmd("EVT.USER").arg("u1").arg("WINDOW").arg("nope");
    p.cmd("PING");
    p.cmd("EVT.USER").arg("u2");
    let got: Vec<redis::RedisResult<Value>> = {
        let packed = p.get_packed_pipeline();
        let mut raw = srv.raw();
        raw.write_all(&packed).unwrap();
        let mut parser = redis::Parser::new();
        (0..15)
            .map(|_| {
                parser
                    .parse_value(&mut raw)
                    .map(|v| v.extract_error())
                    .and_then(|v| v)
            })
            .collect()
    };
    let int = |n: i64| Value::Int(n);
    let num = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    let ok = Value::Okay;
    let want = [
        Some(ok.clone()),
        Some(int(1)),
        Some(num("2")),
        Some(ok.clone()),
        Some(ok),
        Some(int(2)),
        Some(int(1)),
        Some(int(0)),
        Some(num("5")),
        Some(num("0")),
        Some(int(2)),
        Some(int(0)),
        None,
        Some(Value::SimpleString("PONG".into())),
        Some(int(1)),
    ];
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        match (g, w) {
            (Ok(g), Some(w)) => assert_eq!(g, w, "reply {i}"),
            (Err(e), None) => assert!(err_text(e).starts_with("ERR"), "reply {i}: {e}"),
            _ => panic!("reply {i}: got {g:?}, want {w:?}"),
        }
    }
    let stats = info(&mut c, Some("commandstats"));
    let line = |name: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("evt.user").starts_with("cmdstat_evt.user:calls=7,"),
        "{stats}"
    );
    assert!(line("evt.user").contains("rejected_calls=1,"), "{stats}");
    assert!(
        line("evt.sum").starts_with("cmdstat_evt.sum:calls=3,"),
        "{stats}"
    );
}
