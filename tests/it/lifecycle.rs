//! The binary from start to stop: its flags and `--help`, start-up failures and their
//! exit status, what it logs, and the graceful stop (SIGTERM, SIGINT, SHUTDOWN, or the
//! embedding program's shutdown future) that flushes the reply of every command it ran.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::*;

const BINARY_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// Flags and start-up failures
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------

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
