//! Access control through real sockets: `--requirepass` and what may run before
//! login, `AUTH` and `HELLO ... AUTH`, `CONFIG SET requirepass`, the limits on clients
//! that have not logged in (request size, idle time, connection slots, buffer memory),
//! the brake on failed logins, passwords kept out of the log, and protected mode from
//! a real non-loopback peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;

const PASS: &str = "s3cret-Pass_word";

const NOAUTH: &str = "-NOAUTH Authentication required.\r\n";

const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

fn authed(srv: &TestServer) -> redis::Connection {
    redis_at(format!("redis://:{PASS}@{}/", srv.addr))
}

// ---------------------------------------------------------------------------------
// requirepass, AUTH, HELLO AUTH, QUIT, CONFIG SET requirepass
// ---------------------------------------------------------------------------------

#[test]
fn requirepass_refuses_everything_but_auth_hello_and_quit_before_login() {
    let srv = TestServer::start(&["--requirepass", PASS, "--clock", "manual"]);
    let mut s = Raw::connect(srv.addr);
    s.send(b"PING\r\n");
    assert_eq!(s.exact(NOAUTH.len()), NOAUTH, "inline PING before login");
    let now = system_now();
    for args in [
        vec!["PING"],
        vec!["EVT.ADD", &event("intruder", "view", now, 1.0)],
        vec!["EVT.TOTAL"],
        vec!["INFO"],
        vec!["CONFIG", "GET", "requirepass"],
        vec!["CONFIG", "SET", "requirepass", ""],
        vec!["CLIENT", "LIST"],
        vec!["SHUTDOWN"],
        vec!["FLUSHALL"],
        vec!["NOSUCHCOMMAND"],
    ] {
        assert_eq!(
            s.cmd(&args),
            R::Err(NOAUTH[1..NOAUTH.len() - 2].into()),
            "{args:?}"
        );
    }
    // HELLO without AUTH names the way in but does not open it.
    match s.cmd(&["HELLO", "3"]) {
        R::Err(e) => assert!(e.starts_with("NOAUTH "), "{e}"),
        other => panic!("HELLO 3 before login: {other:?}"),
    }
    // Wrong passwords and users.
    for args in [
        vec!["AUTH", "wrong"],
        vec!["AUTH", "default", "wrong"],
        vec!["AUTH", "admin", PASS],
        vec!["AUTH", &PASS[..PASS.len() - 1]],
        vec!["AUTH", &format!("{PASS}x")],
    ] {
        s.send(&resp_str(&args));
        assert_eq!(s.exact(WRONGPASS.len()), WRONGPASS, "{args:?}");
    }
    assert_eq!(s.cmd(&["PING"]), R::Err(NOAUTH[1..NOAUTH.len() - 2].into()));
    // The right one.
    assert_eq!(s.cmd(&["AUTH", PASS]), R::Simple("OK".into()));
    assert_eq!(s.cmd(&["PING"]), R::Simple("PONG".into()));
    assert_eq!(
        s.cmd(&["EVT.TOTAL"]),
        R::Int(0),
        "the EVT.ADD sent before login ran"
    );
    assert_eq!(
        s.cmd(&["EVT.ADD", &event("u", "view", now, 1.0)]),
        R::Simple("OK".into())
    );

    // AUTH default <pass>.
    let mut s2 = Raw::connect(srv.addr);
    assert_eq!(s2.cmd(&["AUTH", "default", PASS]), R::Simple("OK".into()));
    assert_eq!(s2.cmd(&["EVT.TOTAL"]), R::Int(1));

    // HELLO 3 AUTH default <pass>: logs in and switches to RESP3 at once.
    let mut s3 = Raw::connect(srv.addr);
    match s3.cmd(&["HELLO", "3", "AUTH", "default", PASS]) {
        R::Map(pairs) => assert!(
            pairs.contains(&(R::Bulk(b"proto".to_vec()), R::Int(3))),
            "{pairs:?}"
        ),
        other => panic!("HELLO 3 AUTH: {other:?}"),
    }
    assert_eq!(s3.cmd(&["PING"]), R::Simple("PONG".into()));
    // ...and with a wrong password it stays out.
    let mut s4 = Raw::connect(srv.addr);
    s4.send(&resp_str(&["HELLO", "3", "AUTH", "default", "nope"]));
    assert_eq!(s4.exact(WRONGPASS.len()), WRONGPASS);
    assert_eq!(
        s4.cmd(&["PING"]),
        R::Err(NOAUTH[1..NOAUTH.len() - 2].into())
    );

    // What client libraries send: AUTH pass, AUTH default pass, HELLO 3 AUTH.
    let port = srv.addr.port();
    for url in [
        format!("redis://:{PASS}@127.0.0.1:{port}/"),
        format!("redis://default:{PASS}@127.0.0.1:{port}/"),
        format!("redis://default:{PASS}@127.0.0.1:{port}/?protocol=resp3"),
    ] {
        let mut c = redis_at(url.clone());
        assert_eq!(total(&mut c, None), 1, "{url}");
    }
    let mut anon = redis_at(format!("redis://127.0.0.1:{port}/"));
    let e = redis::cmd("PING").query::<String>(&mut anon).unwrap_err();
    assert_eq!(e.code(), Some("NOAUTH"), "{e}");
    let wrong = redis::Client::open(format!("redis://:bad@127.0.0.1:{port}/"))
        .unwrap()
        .get_connection();
    assert!(wrong.is_err(), "a wrong password connected");

    let info = s.info();
    assert!(errorstat(&info, "NOAUTH") >= 12, "{info}");
    assert!(errorstat(&info, "WRONGPASS") >= 6, "{info}");
}

#[test]
fn quit_is_allowed_before_login() {
    let srv = TestServer::start(&["--requirepass", PASS]);
    let mut s = Raw::connect(srv.addr);
    s.send(&resp_str(&["QUIT"]));
    let (bytes, closed) = s.until_closed();
    assert_eq!(String::from_utf8_lossy(&bytes), "+OK\r\n");
    assert!(closed, "QUIT should close the connection");
}

#[test]
fn config_set_requirepass_applies_to_new_connections() {
    let srv = TestServer::start(&[]);
    let mut admin = Raw::connect(srv.addr);
    // No password yet: AUTH is refused as Redis refuses it.
    match admin.cmd(&["AUTH", "anything"]) {
        R::Err(e) => assert!(e.starts_with("ERR AUTH <password> called without"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", PASS]),
        R::Simple("OK".into())
    );
    // The connection that set it stays logged in, as in Redis.
    assert_eq!(admin.cmd(&["PING"]), R::Simple("PONG".into()));

    let mut late = Raw::connect(srv.addr);
    assert_eq!(
        late.cmd(&["PING"]),
        R::Err(NOAUTH[1..NOAUTH.len() - 2].into())
    );
    late.send(&resp_str(&["AUTH", "anything"]));
    assert_eq!(late.exact(WRONGPASS.len()), WRONGPASS);
    assert_eq!(late.cmd(&["AUTH", PASS]), R::Simple("OK".into()));
    assert_eq!(late.cmd(&["PING"]), R::Simple("PONG".into()));

    // A new password replaces the old one for new connections.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", "second-pass"]),
        R::Simple("OK".into())
    );
    let mut third = Raw::connect(srv.addr);
    third.send(&resp_str(&["AUTH", PASS]));
    assert_eq!(third.exact(WRONGPASS.len()), WRONGPASS, "the old password");
    assert_eq!(
        third.cmd(&["AUTH", "default", "second-pass"]),
        R::Simple("OK".into())
    );

    // An empty password turns authentication off again.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", ""]),
        R::Simple("OK".into())
    );
    let mut open = Raw::connect(srv.addr);
    assert_eq!(open.cmd(&["PING"]), R::Simple("PONG".into()));
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
// Before login
// ---------------------------------------------------------------------------------

#[test]
fn before_login_more_than_10_args_or_a_bulk_over_16k_is_a_protocol_error_that_closes() {
    let srv = TestServer::start(&["--requirepass", PASS, "--clock", "manual"]);

    // 11 arguments.
    let mut s = Raw::connect(srv.addr);
    let eleven: Vec<&str> = std::iter::once("AUTH").chain(["x"; 10]).collect();
    s.send(&resp_str(&eleven));
    let (bytes, closed) = s.until_closed();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("-ERR Protocol error"), "{text:?}");
    assert!(
        closed,
        "11 arguments before login should close the connection"
    );

    // A 20 KiB bulk, announced only: refused at once, before its bytes arrive.
    let mut s = Raw::connect(srv.addr);
    s.send(b"*2\r\n$4\r\nAUTH\r\n$20480\r\n");
    let (bytes, closed) = s.until_closed();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("-ERR Protocol error"), "{text:?}");
    assert!(closed);

    // ...and sent in full.
    let mut s = Raw::connect(srv.addr);
    let big = "p".repeat(20 * 1024);
    s.w.write_all(&resp_str(&["AUTH", &big])).ok();
    let (bytes, closed) = s.until_closed();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("-ERR Protocol error"), "{text:?}");
    assert!(closed);

    // At the limits (10 arguments, 16 KiB) the request is only refused, not fatal.
    let mut s = Raw::connect(srv.addr);
    let ten: Vec<&str> = std::iter::once("AUTH").chain(["x"; 9]).collect();
    assert!(matches!(s.cmd(&ten), R::Err(_)));
    let k16 = "p".repeat(16 * 1024);
    s.send(&resp_str(&["AUTH", &k16]));
    assert_eq!(s.exact(WRONGPASS.len()), WRONGPASS);
    assert_eq!(s.cmd(&["PING"]), R::Err(NOAUTH[1..NOAUTH.len() - 2].into()));

    // After login the normal limits apply.
    assert_eq!(s.cmd(&["AUTH", PASS]), R::Simple("OK".into()));
    assert_eq!(s.cmd(&["ECHO", &big]), R::Bulk(big.clone().into_bytes()));
    let clock = s.cmd(&["EVT.CLOCK"]).int();
    let events: Vec<String> = (0..11)
        .map(|i| event(&format!("u{i}"), "view", clock, 1.0))
        .collect();
    let mut madd = vec!["EVT.MADD"];
    madd.extend(events.iter().map(String::as_str));
    match s.cmd(&madd) {
        R::Array(items) => assert_eq!(items, vec![R::Simple("OK".into()); 11]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn clients_that_do_not_log_in_are_closed_after_a_short_idle_time() {
    // No --timeout: logged-in clients may idle forever, the others may not.
    let srv = TestServer::start(&["--requirepass", PASS]);
    let mut logged_in = Raw::connect(srv.addr);
    assert_eq!(logged_in.cmd(&["AUTH", PASS]), R::Simple("OK".into()));
    let mut stranger = Raw::connect(srv.addr);
    stranger.set_timeout(Duration::from_secs(40));
    let (bytes, closed) = stranger.until_closed();
    assert!(closed, "an idle client that never logged in was kept open");
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    // The logged-in client idled as long and is still served.
    assert_eq!(logged_in.cmd(&["PING"]), R::Simple("PONG".into()));
}

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

fn used_memory(c: &mut redis::Connection) -> i64 {
    info_i64(c, "used_memory")
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
fn passwords_never_reach_the_log() {
    let secret = "TopSecret-4711";
    let guess = "WrongGuess-0815";
    let changed = "Changed-Secret-99";
    let mut sp = Spawned::start(&["--requirepass", secret, "--log-level", "debug"]);
    let mut s = sp.raw();
    s.write_all(&resp_str(&["AUTH", guess])).unwrap();
    assert_eq!(read_n(&mut s, WRONGPASS.len()), WRONGPASS.as_bytes());
    s.write_all(&resp_str(&["HELLO", "3", "AUTH", "default", guess]))
        .unwrap();
    assert_eq!(read_n(&mut s, WRONGPASS.len()), WRONGPASS.as_bytes());
    s.write_all(&resp_str(&["AUTH", secret])).unwrap();
    assert_eq!(read_n(&mut s, 5), b"+OK\r\n");
    s.write_all(&resp_str(&["CONFIG", "SET", "requirepass", changed]))
        .unwrap();
    assert_eq!(read_n(&mut s, 5), b"+OK\r\n");
    s.write_all(&resp_str(&["SHUTDOWN"])).unwrap();
    let log = sp.final_log(Duration::from_secs(30));
    assert!(log.contains("authentication failed"), "{log}");
    for word in [secret, guess, changed] {
        assert!(!log.contains(word), "the log shows {word}:\n{log}");
    }
}

// ---------------------------------------------------------------------------------
// Protected mode, from a non-loopback address in a network namespace
// ---------------------------------------------------------------------------------

fn loopback(srv: &TestServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], srv.addr.port()))
}

/// A network namespace joined to this one by a veth pair: `host_ip` here, the peer
/// address inside. Removed on drop.
struct Netns {
    name: String,
    host_veth: String,
    host_ip: String,
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let pid = std::process::id();
        let name = format!("sa-hard-{pid}");
        let host_veth = format!("sah{}a", pid % 100_000);
        let ns_veth = format!("sah{}b", pid % 100_000);
        // 198.18.0.0/15 is reserved for network tests: it names no real host.
        let net = format!("198.18.{}", pid % 250);
        let ns = Netns {
            name: name.clone(),
            host_veth: host_veth.clone(),
            host_ip: format!("{net}.1"),
        };
        let ip = |args: &[&str]| -> Result<(), String> {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        ip(&["netns", "add", &name])?;
        // From here on, drop cleans up whatever was made.
        ip(&[
            "link", "add", &host_veth, "type", "veth", "peer", "name", &ns_veth,
        ])?;
        ip(&["link", "set", &ns_veth, "netns", &name])?;
        ip(&["addr", "add", &format!("{net}.1/30"), "dev", &host_veth])?;
        ip(&["link", "set", &host_veth, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &format!("{net}.2/30"), "dev", &ns_veth])?;
        inside(&["link", "set", &ns_veth, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Connects from inside the namespace to `host_ip:port`, sends `payload` (a printf
    /// format: `\r\n` escapes), and returns what the server sent until it closed and
    /// whether it did close (rather than the 10 s reader time-out ending it).
    fn talk(&self, port: u16, payload: &str) -> (String, bool) {
        let script =
            r#"exec 3<>"/dev/tcp/$1/$2" || exit 7; printf "$3" >&3; exec timeout 10 cat <&3"#;
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "bash", "-c", script, "client"])
            .args([&self.host_ip, &port.to_string(), payload])
            .output()
            .expect("run a client in the namespace");
        assert_ne!(
            out.status.code(),
            Some(7),
            "could not connect from the namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.success(),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_veth])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
#[cfg_attr(
    not(have_netns),
    ignore = "needs `ip netns` (apt-get install iproute2) and root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
)]
fn protected_mode_denies_non_loopback_clients_until_a_password_is_set() {
    // The decision itself is unit-tested in src/connection.rs; this drives it from a
    // real non-loopback peer. The peer lives in a network namespace made here (the
    // test sends nothing to any address outside this machine).
    let ns = Netns::create().unwrap_or_else(|e| panic!("cannot make a network namespace: {e}"));

    // Non-loopback bind, no password: the namespace client is turned away...
    let srv = TestServer::start(&["--bind", "0.0.0.0"]);
    let port = srv.addr.port();
    let (got, closed) = ns.talk(port, "");
    assert_eq!(got, scalable_analytics::DENIED);
    assert!(got.starts_with("-DENIED ") && got.contains("--requirepass"));
    assert!(
        closed,
        "the denied connection should be closed by the server"
    );
    // ...while loopback clients are served.
    let lo = loopback(&srv);
    assert!(pings(lo));
    let mut c = Raw::connect(lo);
    let info = c.info();
    assert_eq!(errorstat(&info, "DENIED"), 1, "{info}");

    // With a password the namespace client reaches AUTH instead.
    let srv = TestServer::start(&["--bind", "0.0.0.0", "--requirepass", PASS]);
    let (got, closed) = ns.talk(
        srv.addr.port(),
        &format!("PING\\r\\nAUTH {PASS}\\r\\nPING\\r\\nQUIT\\r\\n"),
    );
    assert_eq!(got, format!("{NOAUTH}+OK\r\n+PONG\r\n+OK\r\n"));
    assert!(closed);

    // A password set at run time (from loopback) opens the door too.
    let srv = TestServer::start(&["--bind", "0.0.0.0"]);
    let port = srv.addr.port();
    assert!(ns.talk(port, "").0.starts_with("-DENIED "));
    let mut admin = Raw::connect(loopback(&srv));
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", PASS]),
        R::Simple("OK".into())
    );
    let (got, _) = ns.talk(port, &format!("AUTH {PASS}\\r\\nPING\\r\\nQUIT\\r\\n"));
    assert_eq!(got, "+OK\r\n+PONG\r\n+OK\r\n");

    // And protected mode can be turned off.
    let srv = TestServer::start(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    let (got, _) = ns.talk(srv.addr.port(), "PING\\r\\nQUIT\\r\\n");
    assert_eq!(got, "+PONG\r\n+OK\r\n");
}
