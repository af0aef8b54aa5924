//! Hostile and long-running use (issue 9): each test is one way the server was hurt,
//! through the real server, and fails on the code before its fix.

#[global_allocator]
static ALLOCATOR: scalable_analytics::Counting<std::alloc::System> =
    scalable_analytics::Counting(std::alloc::System);

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const PASS: &str = "s3cret-Pass_word";

fn q(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

fn q_i64(c: &mut redis::Connection, args: &[&str]) -> i64 {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).expect("integer reply")
}

fn q_err(c: &mut redis::Connection, args: &[&str]) -> String {
    match q(c, args) {
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
        Err(e) => err_text(&e),
    }
}

fn authed(srv: &TestServer) -> redis::Connection {
    redis::Client::open(format!("redis://:{PASS}@{}/", srv.addr))
        .and_then(|c| c.get_connection())
        .expect("connect with password")
}

/// Whether another client's PING answers within `within` (logging in first when
/// `password` is given).
fn ping_within(addr: std::net::SocketAddr, password: Option<&str>, within: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(within)).ok();
    if let Some(p) = password
        && send_recv(&mut s, &resp_str(&["AUTH", p]), 5) != b"+OK\r\n"
    {
        return false;
    }
    let t = Instant::now();
    send_recv(&mut s, b"PING\r\n", 7) == b"+PONG\r\n" && t.elapsed() <= within
}

/// Sends `EVT.MADD` with `events` on a raw socket and returns each reply line
/// (`+OK` or `-ERR ...`), or the one error line that refused the whole command.
fn madd_raw(s: &mut TcpStream, events: &[String]) -> Result<Vec<String>, String> {
    // Debug builds of the server take a while over 100,000 events.
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let mut args: Vec<&[u8]> = vec![b"EVT.MADD"];
    args.extend(events.iter().map(|e| e.as_bytes()));
    s.write_all(&resp(&args)).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        s.read_exact(&mut byte).expect("reply");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).trim_end().to_string();
    let Some(n) = head.strip_prefix('*') else {
        return Err(head);
    };
    let n: usize = n.parse().expect("array length");
    let mut body = Vec::new();
    let mut lines = 0;
    let mut buf = vec![0u8; 1 << 16];
    while lines < n {
        let k = s.read(&mut buf).expect("reply body");
        assert!(k > 0, "closed after {lines} of {n} replies");
        // A CRLF may straddle two reads: count from the last byte already held.
        let from = body.len().saturating_sub(1);
        body.extend_from_slice(&buf[..k]);
        lines += body[from..].windows(2).filter(|w| w == b"\r\n").count();
    }
    Ok(String::from_utf8_lossy(&body)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

// ---------------------------------------------------------------------------------
// Cheap requests that cost the server dearly.
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
    let v: redis::Value = cmd.query(&mut c).expect("COMMAND DOCS");
    let entries = match v {
        redis::Value::Map(m) => m.len(),
        redis::Value::Array(a) => a.len() / 2,
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

// ---------------------------------------------------------------------------------
// Memory that does not come back.
// ---------------------------------------------------------------------------------

fn used_memory(c: &mut redis::Connection) -> i64 {
    info_i64(c, "used_memory")
}

/// `used_memory` of a spawned server.
fn spawned_used_memory(srv: &Spawned) -> i64 {
    let mut s = srv.raw();
    let text = String::from_utf8_lossy(&send_recv(&mut s, b"INFO memory\r\n", 300)).into_owned();
    info_field(&text, "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory")
}

#[test]
fn an_idle_connection_gives_back_the_buffers_of_its_largest_request() {
    // The real binary: the measure is its own allocator's count, without this test's.
    let srv = Spawned::start(&["--clock", "manual"]);
    let mut c = srv.raw();
    assert_eq!(send_recv(&mut c, b"PING\r\n", 7), b"+PONG\r\n");
    let before = spawned_used_memory(&srv);
    // 90,000 late events: nothing is stored, but the request (~7 MB) and the
    // replies (~8 MB) pass through the connection's buffers.
    let late = vec![bare_event("someone", "view", 1); 90_000];
    let replies = madd_raw(&mut c, &late).expect("EVT.MADD");
    assert_eq!(replies.len(), 90_000);
    assert!(replies[0].starts_with("-ERR event is older than the window"));
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
    let mut c = srv.raw();
    let now = String::from_utf8_lossy(&send_recv(&mut c, b"EVT.CLOCK\r\n", 13))
        .trim_start_matches(':')
        .trim()
        .parse::<i64>()
        .expect("EVT.CLOCK");
    let n = 100_000;
    let events: Vec<String> = (0..n)
        .map(|i| bare_event(&format!("user{i:08}"), "view", now))
        .collect();
    let replies = madd_raw(&mut c, &events).expect("EVT.MADD");
    let ok = replies.iter().filter(|r| *r == "+OK").count();
    assert_eq!(
        ok,
        n,
        "every event of a batch whose result fits is counted: {:?}",
        replies.iter().find(|r| *r != "+OK")
    );
}

// ---------------------------------------------------------------------------------
// Before login.
// ---------------------------------------------------------------------------------

#[test]
fn the_login_deadline_counts_from_connect_whatever_arrives() {
    let srv = TestServer::start(&["--requirepass", PASS]);
    let mut s = srv.raw();
    s.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let start = Instant::now();
    // One byte of a command every 2 s: it never completes, and never logs in.
    let mut closed = false;
    for b in b"*1\r\n$4\r\nPINGxxxxxx".iter().cycle().take(12) {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(0) = s.read(&mut buf) {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        closed,
        "a client trickling bytes without logging in was kept"
    );
    let held = start.elapsed();
    assert!(
        held < Duration::from_secs(16),
        "closed only after {held:?}; the deadline is 10 s from connect"
    );
}

#[test]
fn clients_that_do_not_log_in_hold_at_most_half_the_slots() {
    let srv = TestServer::start(&["--requirepass", PASS, "--maxclients", "20"]);
    // Someone without the password opens every slot and sends nothing.
    let squatters: Vec<TcpStream> = (0..20).map(|_| srv.raw()).collect();
    std::thread::sleep(Duration::from_millis(200));
    // A real client still gets in and logs in.
    let mut c = authed(&srv);
    assert_eq!(
        q(&mut c, &["PING"]).expect("PING after login"),
        redis::Value::SimpleString("PONG".into())
    );
    let connected = info_i64(&mut c, "connected_clients");
    assert!(
        connected <= 11,
        "{connected} connected: the squatters kept more than half of 20 slots"
    );
    drop(squatters);
}

#[test]
fn connections_without_login_hold_a_bounded_total_of_buffer_memory() {
    let srv = TestServer::start(&["--requirepass", PASS, "--maxclients", "2000"]);
    let mut c = authed(&srv);
    let before = used_memory(&mut c);
    // Each sends most of a command the login limits allow (9 args of 16 KB), never
    // the end: ~150 KB held per connection if nothing bounds the total.
    let mut partial = b"*10\r\n$4\r\nAUTH\r\n".to_vec();
    for _ in 0..9 {
        partial.extend_from_slice(b"$16000\r\n");
        partial.extend(std::iter::repeat_n(b'x', 16000));
        partial.extend_from_slice(b"\r\n");
    }
    let conns: Vec<TcpStream> = (0..400)
        .filter_map(|_| {
            let mut s = TcpStream::connect(srv.addr).ok()?;
            let _ = s.write_all(&partial);
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let during = used_memory(&mut c);
    assert!(
        during - before < 48 << 20,
        "400 half-sent logins hold {} MB",
        (during - before) >> 20
    );
    // The logged-in client is unaffected.
    let now = system_now();
    assert_eq!(add(&mut c, &bare_event("real", "view", now)), Ok(()));
    drop(conns);
}

#[test]
fn failed_logins_slow_the_guesser_and_then_close_it_without_slowing_others() {
    let srv = TestServer::start(&["--requirepass", PASS]);
    let mut admin = authed(&srv);
    let mut s = srv.raw();
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    // 30 guesses in one write.
    let mut guesses = Vec::new();
    for i in 0..30 {
        guesses.extend(resp_str(&["AUTH", &format!("guess{i}")]));
    }
    let start = Instant::now();
    s.write_all(&guesses).unwrap();
    // Meanwhile, others are served at once.
    assert!(ping_within(
        srv.addr,
        Some(PASS),
        Duration::from_millis(500)
    ));
    let (got, closed) = read_until_closed(&mut s);
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(closed, "the guesser was not closed: {text}");
    assert_eq!(text.matches("-WRONGPASS").count(), 10, "{text}");
    assert!(
        took >= Duration::from_secs(3),
        "10 guesses took only {took:?}: no brake"
    );
    assert!(info_i64(&mut admin, "acl_access_denied_auth") >= 10);
}

#[test]
fn removing_the_password_lets_waiting_clients_in_as_redis_does() {
    let srv = TestServer::start(&["--requirepass", PASS]);
    let mut waiting = srv.raw();
    assert_eq!(
        send_recv(&mut waiting, b"PING\r\n", 34),
        b"-NOAUTH Authentication required.\r\n"
    );
    let mut admin = authed(&srv);
    q(&mut admin, &["CONFIG", "SET", "requirepass", ""]).unwrap();
    assert_eq!(send_recv(&mut waiting, b"PING\r\n", 7), b"+PONG\r\n");
}

// ---------------------------------------------------------------------------------
// Answers that are lost or wrong.
// ---------------------------------------------------------------------------------

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
    let mut raw = srv.raw();
    let replies = madd_raw(&mut raw, &events).expect("a MADD that fits");
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

#[test]
fn ids_up_to_the_ceiling_round_trip_through_a_snapshot_and_beyond_it_are_refused() {
    let dir = std::env::temp_dir().join(format!("sa-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.snap");
    let p = path.to_str().unwrap();
    // A 65,535-byte id ending in a two-byte character.
    let long = format!("{}é", "b".repeat(65_533));
    assert_eq!(long.len(), 65_535);
    {
        let srv = TestServer::start(&[
            "--clock",
            "manual",
            "--max-id-len",
            "65535",
            "--snapshot",
            p,
        ]);
        let mut c = srv.client();
        let now = clock(&mut c);
        assert_eq!(add(&mut c, &bare_event(&long, "view", now)), Ok(()));
        q(&mut c, &["SAVE"]).unwrap();
    }
    let srv = TestServer::start(&[
        "--clock",
        "manual",
        "--max-id-len",
        "65535",
        "--snapshot",
        p,
    ]);
    let mut c = srv.client();
    assert_eq!(q_i64(&mut c, &["EVT.USER", &long]), 1);
    // The format's ceiling is the flag's: a larger value is refused at start and by
    // CONFIG SET, with the range.
    use clap::Parser;
    assert!(scalable_analytics::Config::try_parse_from(["x", "--max-id-len", "100000"]).is_err());
    let err = q_err(&mut c, &["CONFIG", "SET", "max-id-len", "100000"]);
    assert!(err.contains("between 1 and 65535"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
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
// Settings that accept what breaks the server.
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

#[test]
fn a_snapshot_path_that_cannot_be_written_is_refused_at_start() {
    let (status, log) = run_binary(
        &[
            "--port",
            "0",
            "--snapshot",
            "/nonexistent-dir/sub/window.snap",
        ],
        Duration::from_secs(10),
    );
    assert!(
        status.is_some_and(|s| !s.success()),
        "started with an unwritable snapshot path: {log}"
    );
    assert!(log.contains("/nonexistent-dir/sub/window.snap"), "{log}");
    assert!(log.contains("writable"), "{log}");
}

#[test]
fn a_failed_save_at_shutdown_exits_with_a_failure_status() {
    let dir = std::env::temp_dir().join(format!("sa-failsave-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.snap");
    let mut srv = Spawned::start(&["--snapshot", path.to_str().unwrap()]);
    // The directory disappears while the server runs.
    std::fs::remove_dir_all(&dir).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &srv.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = srv.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "exit status {status:?} after the window could not be saved; log:\n{}",
        srv.log()
    );
    assert!(srv.log().contains("snapshot not saved"), "{}", srv.log());
}

#[test]
fn a_snapshot_of_another_clock_whose_records_would_all_drop_is_refused_not_emptied() {
    let dir = std::env::temp_dir().join(format!("sa-mismatch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.snap");
    let p = path.to_str().unwrap();
    {
        let srv = TestServer::start(&["--clock", "event", "--snapshot", p]);
        let mut c = srv.client();
        assert_eq!(add(&mut c, &bare_event("a", "view", 1_678_886_400)), Ok(()));
    }
    let saved = std::fs::read(&path).unwrap();
    let (status, log) = run_binary(&["--port", "0", "--snapshot", p], Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{log}");
    assert!(log.contains("--clock event"), "{log}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        saved,
        "the snapshot was changed"
    );
    // Under its own clock it loads.
    let srv = TestServer::start(&["--clock", "event", "--snapshot", p]);
    let mut c = srv.client();
    assert_eq!(q_i64(&mut c, &["EVT.USER", "a"]), 1);
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
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
// Smaller, but a newcomer meets them first.
// ---------------------------------------------------------------------------------

#[test]
fn client_info_on_the_first_command_shows_it_and_no_idle_time() {
    let srv = TestServer::start(&[]);
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = srv.client();
    let line: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(line.contains(" idle=0 "), "{line}");
    assert!(line.contains(" cmd=client|info "), "{line}");
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
