//! Compatibility with the real `redis-cli` and `redis-benchmark` (Debian's
//! `redis-tools`). A test whose tool is not installed is ignored, with the reason, so
//! that `cargo test` lists it as such; under CI it runs, and fails without the tool.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args`, feeding `stdin`; the test fails when it is still running
/// after [`TOOL_TIMEOUT`].
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let done = run_program(cmd, stdin, TOOL_TIMEOUT);
    let status = done
        .status
        .unwrap_or_else(|| panic!("{program} {args:?} did not finish in {TOOL_TIMEOUT:?}"));
    Output {
        success: status.success(),
        stdout: done.stdout,
        stderr: done.stderr,
    }
}

/// `redis-cli -h 127.0.0.1 -p <port> <extra...> <args...>`.
fn cli(server: &TestServer, extra: &[&str], args: &[&str], stdin: Option<&str>) -> Output {
    let port = server.addr.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(extra);
    all.extend_from_slice(args);
    let out = run("redis-cli", &all, stdin);
    assert!(
        out.success,
        "redis-cli {all:?} failed: {}{}",
        out.stdout, out.stderr
    );
    out
}

const SEED: &str = r#"{"user_id": "user123", "event_type": "click", "timestamp": 1678886400, "attributes": {"item_id": "item456", "value": 10.5}}"#;

#[test]
#[cfg_attr(
    not(have_redis_cli),
    ignore = "needs redis-cli (apt-get install redis-tools)"
)]
fn redis_cli_one_shot_commands() {
    let server = TestServer::start(&["--clock", "event"]);
    assert_eq!(cli(&server, &[], &["ping"], None).stdout, "PONG\n");
    assert_eq!(cli(&server, &[], &["EVT.ADD", SEED], None).stdout, "OK\n");
    assert_eq!(
        cli(&server, &[], &["EVT.USER", "user123"], None).stdout,
        "1\n"
    );
    assert_eq!(
        cli(&server, &[], &["EVT.TYPE", "click"], None).stdout,
        "1\n"
    );
    assert_eq!(
        cli(&server, &[], &["EVT.SUM", "user123", "click"], None).stdout,
        "10.5\n"
    );
    assert_eq!(
        cli(&server, &[], &["EVT.CLOCK"], None).stdout,
        "1678886400\n"
    );
    assert_eq!(
        cli(&server, &["--no-raw"], &["EVT.TOTAL", "WINDOW", "10"], None).stdout,
        "(integer) 1\n"
    );
    let bad = cli(&server, &[], &["EVT.ADD", "{not json"], None);
    assert!(
        bad.stdout.starts_with("ERR invalid event: "),
        "the error reaches the user: {:?}",
        bad.stdout
    );
    assert_eq!(cli(&server, &[], &["EVT.TOTAL"], None).stdout, "1\n");
}

#[test]
#[cfg_attr(
    not(have_redis_cli),
    ignore = "needs redis-cli (apt-get install redis-tools)"
)]
fn redis_cli_reading_commands_from_stdin() {
    let server = TestServer::start(&["--clock", "event"]);
    let input = format!(
        "PING\nEVT.ADD '{SEED}'\nEVT.ADD '{}'\nEVT.TOTAL\nEVT.SUM user123 click\nECHO \"a b\"\n",
        r#"{"user_id":"user456","event_type":"view","timestamp":1678886401}"#
    );
    let out = cli(&server, &[], &[], Some(&input));
    assert_eq!(
        out.stdout, "PONG\nOK\nOK\n2\n10.5\na b\n",
        "stderr: {}",
        out.stderr
    );

    let out = cli(
        &server,
        &["--no-raw"],
        &[],
        Some("PING\nEVT.TOTAL\nEVT.SUM user123 click\nEVT.SUM nobody click\nEVT.USER nobody\n"),
    );
    assert_eq!(
        out.stdout, "PONG\n(integer) 2\n\"10.5\"\n\"0\"\n(integer) 0\n",
        "stderr: {}",
        out.stderr
    );
}

#[test]
#[cfg_attr(
    not(have_redis_cli),
    ignore = "needs redis-cli (apt-get install redis-tools)"
)]
fn redis_cli_resp3_prints_sums_as_doubles() {
    let server = TestServer::start(&["--clock", "event"]);
    assert_eq!(
        cli(&server, &["-3"], &["EVT.ADD", SEED], None).stdout,
        "OK\n"
    );
    assert_eq!(
        cli(
            &server,
            &["-3", "--no-raw"],
            &["EVT.SUM", "user123", "click"],
            None
        )
        .stdout,
        "(double) 10.5\n"
    );
    assert_eq!(
        cli(
            &server,
            &["-3", "--no-raw"],
            &["EVT.SUM", "nobody", "click"],
            None
        )
        .stdout,
        "(double) 0\n"
    );
    assert_eq!(
        cli(&server, &["-3"], &["EVT.SUM", "user123", "click"], None).stdout,
        "10.5\n"
    );
    // In RESP2 the same sum is a bulk string.
    assert_eq!(
        cli(
            &server,
            &["--no-raw"],
            &["EVT.SUM", "user123", "click"],
            None
        )
        .stdout,
        "\"10.5\"\n"
    );
    let hello = cli(&server, &["-3", "--no-raw"], &["HELLO", "3"], None).stdout;
    assert!(hello.contains("\"proto\" => (integer) 3"), "{hello}");
}

#[test]
#[cfg_attr(
    not(have_redis_cli),
    ignore = "needs redis-cli (apt-get install redis-tools)"
)]
fn redis_cli_gets_command_docs_for_every_command() {
    let server = TestServer::start(&["--clock", "manual"]);
    // Interactive redis-cli asks COMMAND DOCS for its hints.
    let docs = cli(&server, &[], &["COMMAND", "DOCS"], None).stdout;
    let list = cli(&server, &[], &["COMMAND", "LIST"], None).stdout;
    let names: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    for required in [
        "evt.add",
        "evt.madd",
        "evt.total",
        "evt.user",
        "evt.type",
        "evt.sum",
        "evt.clock",
        "ping",
        "echo",
        "hello",
        "select",
        "client",
        "command",
        "config",
        "info",
        "shutdown",
    ] {
        assert!(
            names.contains(&required),
            "COMMAND LIST lacks {required}: {list}"
        );
    }
    let doc_lines: Vec<&str> = docs.lines().collect();
    for name in &names {
        assert!(doc_lines.contains(name), "COMMAND DOCS lacks {name}");
    }
    assert!(
        docs.contains("summary") && docs.contains("arguments"),
        "{docs}"
    );

    let one = cli(
        &server,
        &["--no-raw"],
        &["COMMAND", "DOCS", "evt.sum"],
        None,
    )
    .stdout;
    assert!(one.contains("\"evt.sum\""), "{one}");
    assert!(
        one.contains("\"WINDOW\""),
        "the WINDOW token is documented: {one}"
    );
}

#[test]
#[cfg_attr(
    not(have_redis_benchmark),
    ignore = "needs redis-benchmark (apt-get install redis-tools)"
)]
fn redis_benchmark_ping_without_config_warnings() {
    let server = TestServer::start(&["--clock", "manual"]);
    let port = server.addr.port().to_string();
    let out = run(
        "redis-benchmark",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "ping",
            "-P",
            "64",
            "-n",
            "20000",
            "-q",
        ],
        None,
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(out.success, "{all}");
    assert!(
        all.contains("PING_INLINE")
            && all.contains("PING_MBULK")
            && all.contains("requests per second"),
        "{all}"
    );
    let mut c = server.client();
    assert!(info_i64(&mut c, "total_commands_processed") >= 40_000);
    assert!(!all.contains("WARNING"), "no warning: {all}");
    assert!(!all.contains("ERROR"), "no error: {all}");
}

#[test]
#[cfg_attr(
    not(have_redis_benchmark),
    ignore = "needs redis-benchmark (apt-get install redis-tools)"
)]
fn redis_benchmark_evt_add_counts_every_event() {
    let server = TestServer::start(&["--clock", "manual"]);
    let mut c = server.client();
    let now = clock(&mut c);
    let json = format!(
        r#"{{"user_id":"user:__rand_int__","event_type":"click","timestamp":{now},"attributes":{{"item_id":"item456","value":1}}}}"#
    );
    let port = server.addr.port().to_string();
    let out = run(
        "redis-benchmark",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-n",
            "20000",
            "-r",
            "1000",
            "-P",
            "16",
            "-q",
            "EVT.ADD",
            &json,
        ],
        None,
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(out.success, "{all}");

    let total: i64 = redis::cmd("EVT.TOTAL").query(&mut c).unwrap();
    assert_eq!(total, 20_000, "every event counted");
    let clicks: i64 = redis::cmd("EVT.TYPE").arg("click").query(&mut c).unwrap();
    assert_eq!(clicks, 20_000);
    assert_eq!(info_i64(&mut c, "events_accepted"), 20_000);
    assert_eq!(info_i64(&mut c, "events_rejected"), 0);
    let users = info_i64(&mut c, "active_users");
    assert!(
        (900..=1000).contains(&users),
        "__rand_int__ spreads the events over at most 1000 users: {users}"
    );
    assert!(!all.contains("WARNING") && !all.contains("ERROR"), "{all}");
}
