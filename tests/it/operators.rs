//! The tools operators reach for (issue 11): INFO's per-command sections, SLOWLOG,
//! LATENCY, MONITOR, CLIENT KILL / PAUSE / REPLY, through real clients.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::*;
use redis::Value;

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => format!("{other:?}"),
    }
}

#[test]
fn info_has_commandstats_latencystats_errorstats_and_the_keyspace_line() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut c = srv.client();
    let now = clock(&mut c);
    for i in 0..5 {
        add(&mut c, &bare_event(&format!("u{i}"), "view", now)).unwrap();
    }
    add(&mut c, "not json").unwrap_err();
    q(&mut c, &["EVT.USER"]).unwrap_err();
    q(&mut c, &["EVT.TOTAL"]).unwrap();
    let all = info(&mut c, Some("all"));
    let line = |prefix: &str| {
        all.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in INFO all:\n{all}"))
            .to_string()
    };
    let add_line = line("cmdstat_evt.add:");
    assert!(
        add_line.starts_with("cmdstat_evt.add:calls=6,usec="),
        "{add_line}"
    );
    assert!(
        add_line.ends_with(",rejected_calls=0,failed_calls=1"),
        "{add_line}"
    );
    let user_line = line("cmdstat_evt.user:");
    assert!(
        user_line.contains("calls=0,") && user_line.contains("rejected_calls=1"),
        "{user_line}"
    );
    let lat = line("latency_percentiles_usec_evt.total:");
    assert!(
        lat.contains("p50=") && lat.contains(",p99=") && lat.contains(",p99.9="),
        "{lat}"
    );
    assert_eq!(line("errorstat_ERR:"), "errorstat_ERR:count=2");
    assert_eq!(line("db0:"), "db0:keys=11,expires=0,avg_ttl=0");
    // The default INFO leaves the per-command sections out, as Redis.
    let default = info(&mut c, None);
    assert!(!default.contains("# Commandstats") && default.contains("# Keyspace"));
    assert!(info(&mut c, Some("commandstats")).starts_with("# Commandstats"));
    // CONFIG RESETSTAT forgets them.
    q(&mut c, &["CONFIG", "RESETSTAT"]).unwrap();
    assert!(!info(&mut c, Some("commandstats")).contains("cmdstat_evt.add"));
}

#[test]
fn slowlog_keeps_slow_commands_cut_and_redacted() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut c = srv.client();
    let v = q(&mut c, &["CONFIG", "GET", "slowlog-*"]).unwrap();
    assert!(
        format!("{v:?}").contains("10000") && format!("{v:?}").contains("128"),
        "{v:?}"
    );
    q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).unwrap();
    q(&mut c, &["SLOWLOG", "RESET"]).unwrap();
    let long = "x".repeat(200);
    let mut many = vec!["ECHO"];
    many.push(&long);
    q(&mut c, &many).unwrap();
    q(&mut c, &["AUTH", "secret-password"]).unwrap_err();
    let mut forty = vec!["CONFIG", "GET"];
    let words: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
    forty.extend(words.iter().map(String::as_str));
    let _ = q(&mut c, &forty);
    let entries: Vec<Value> = cmd(&["SLOWLOG", "GET", "3"]).query(&mut c).unwrap();
    assert_eq!(entries.len(), 3);
    let args_of = |e: &Value| -> Vec<String> {
        let Value::Array(fields) = e else {
            panic!("{e:?}")
        };
        assert!(matches!(fields[0], Value::Int(_)) && matches!(fields[2], Value::Int(_)));
        assert!(text(&fields[4]).starts_with("127.0.0.1:"));
        let Value::Array(args) = &fields[3] else {
            panic!("{e:?}")
        };
        args.iter().map(text).collect()
    };
    // Newest first.
    let ping = args_of(&entries[0]);
    assert_eq!(ping.len(), 32);
    assert_eq!(ping[31], "... (11 more arguments)");
    assert_eq!(args_of(&entries[1]), ["AUTH", "(redacted)"]);
    let echo = args_of(&entries[2]);
    assert_eq!(echo[1], format!("{}... (72 more bytes)", "x".repeat(128)));
    let len: i64 = cmd(&["SLOWLOG", "LEN"]).query(&mut c).unwrap();
    assert!(len >= 4);
    q(&mut c, &["SLOWLOG", "RESET"]).unwrap();
    let len: i64 = cmd(&["SLOWLOG", "LEN"]).query(&mut c).unwrap();
    assert!(len <= 1, "{len}");
    q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]).unwrap();
    q(&mut c, &["SLOWLOG", "RESET"]).unwrap();
    q(&mut c, &["PING"]).unwrap();
    assert_eq!(q(&mut c, &["SLOWLOG", "LEN"]), Ok(Value::Int(0)));
}

#[test]
fn latency_monitor_records_commands_over_the_threshold() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut c = srv.client();
    assert_eq!(q(&mut c, &["LATENCY", "LATEST"]), Ok(Value::Array(vec![])));
    q(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "1"]).unwrap();
    // A command that takes well over a millisecond: 10,000 events at once.
    let now = clock(&mut c);
    let mut madd = redis::cmd("EVT.MADD");
    for i in 0..10_000 {
        madd.arg(bare_event(&format!("u{i}"), "view", now));
    }
    let _: Value = madd.query(&mut c).unwrap();
    let latest: Vec<Value> = cmd(&["LATENCY", "LATEST"]).query(&mut c).unwrap();
    let Some(Value::Array(e)) = latest.first() else {
        panic!("{latest:?}")
    };
    assert_eq!(text(&e[0]), "command");
    let Value::Int(ms) = e[2] else {
        panic!("{e:?}")
    };
    assert!(ms >= 1);
    let history: Vec<Value> = cmd(&["LATENCY", "HISTORY", "command"])
        .query(&mut c)
        .unwrap();
    assert!(!history.is_empty());
    let hist = q(&mut c, &["LATENCY", "HISTOGRAM", "evt.madd"]).unwrap();
    let shown = format!("{hist:?}");
    assert!(
        shown.contains("evt.madd") && shown.contains("calls") && shown.contains("histogram_usec"),
        "{shown}"
    );
    assert_eq!(q(&mut c, &["LATENCY", "RESET"]), Ok(Value::Int(1)));
    assert_eq!(q(&mut c, &["LATENCY", "LATEST"]), Ok(Value::Array(vec![])));
}

#[test]
fn monitor_streams_commands_with_credentials_redacted() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut m = srv.raw();
    assert_eq!(send_recv(&mut m, b"MONITOR\r\n", 5), b"+OK\r\n");
    let mut c = srv.client();
    let now = clock(&mut c);
    add(&mut c, &bare_event("monitored", "view", now)).unwrap();
    q(&mut c, &["ECHO", "say \"hi\"\n"]).unwrap();
    q(&mut c, &["AUTH", "user", "hunter2"]).unwrap_err();
    q(&mut c, &["CONFIG", "GET", "port"]).unwrap();
    q(&mut c, &["ECHO", "last"]).unwrap();
    // The monitor's stream ends with the last command (or the read times out).
    let got = String::from_utf8_lossy(&read_until_suffix(&mut m, b"\"last\"\r\n")).into_owned();
    let lines: Vec<&str> = got.lines().collect();
    let evt = lines
        .iter()
        .find(|l| l.contains("\"EVT.ADD\""))
        .unwrap_or_else(|| panic!("{got}"));
    assert!(evt.starts_with('+'), "{evt}");
    assert!(evt.contains(" [0 127.0.0.1:"), "{evt}");
    assert!(evt.contains(r#"\"user_id\":\"monitored\""#), "{evt}");
    assert!(got.contains(r#""ECHO" "say \"hi\"\n""#), "{got}");
    assert!(got.contains(r#""AUTH" "(redacted)" "(redacted)""#), "{got}");
    assert!(!got.contains("hunter2"));
    assert!(
        !got.contains("\"CONFIG\""),
        "admin commands are not shown: {got}"
    );
}

#[test]
fn a_monitor_that_stops_reading_is_disconnected_by_the_output_limit() {
    let srv = TestServer::start(&["--client-output-buffer-limit", "64kb"]);
    let mut m = srv.raw();
    // A small receive buffer, so the kernel cannot soak up what the monitor does
    // not read and hide it from the server's output limit.
    socket2::SockRef::from(&m)
        .set_recv_buffer_size(4096)
        .expect("SO_RCVBUF");
    assert_eq!(send_recv(&mut m, b"MONITOR\r\n", 5), b"+OK\r\n");
    // The monitor never reads again; someone else sends a lot.
    let mut c = srv.client();
    let big = "y".repeat(8000);
    for _ in 0..1000 {
        let _ = q(&mut c, &["ECHO", &big]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut gone = false;
    while Instant::now() < deadline {
        let list: String = cmd(&["CLIENT", "LIST"]).query(&mut c).unwrap();
        if list.lines().count() == 1 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone, "the monitor that stopped reading is still connected");
}

#[test]
fn client_kill_closes_the_chosen_connections() {
    let srv = TestServer::start(&[]);
    let mut admin = srv.client();
    let mut victim = srv.raw();
    assert_eq!(send_recv(&mut victim, b"CLIENT ID\r\n", 4)[0], b':');
    let victim_addr = victim.local_addr().unwrap().to_string();
    // Old form: the address.
    assert_eq!(
        q(&mut admin, &["CLIENT", "KILL", &victim_addr]),
        Ok(Value::Okay)
    );
    assert!(
        read_until_closed(&mut victim).1,
        "the killed client is still open"
    );
    assert_eq!(
        q(&mut admin, &["CLIENT", "KILL", "127.0.0.1:1"]),
        Err("ERR No such client".into())
    );
    // New form: by id, and SKIPME.
    let mut other = srv.client();
    let id: i64 = cmd(&["CLIENT", "ID"]).query(&mut other).unwrap();
    assert_eq!(
        q(&mut admin, &["CLIENT", "KILL", "ID", &id.to_string()]),
        Ok(Value::Int(1))
    );
    let my_id: i64 = cmd(&["CLIENT", "ID"]).query(&mut admin).unwrap();
    assert_eq!(
        q(&mut admin, &["CLIENT", "KILL", "ID", &my_id.to_string()]),
        Ok(Value::Int(0)),
        "SKIPME yes is the default"
    );
    let _a = srv.raw();
    let _b = srv.raw();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        q(&mut admin, &["CLIENT", "KILL", "MAXAGE", "0"]),
        Ok(Value::Int(2))
    );
    assert_eq!(
        q(
            &mut admin,
            &["CLIENT", "KILL", "ID", &my_id.to_string(), "SKIPME", "no"]
        ),
        Ok(Value::Int(1))
    );
    assert!(q(&mut admin, &["PING"]).is_err(), "killed itself");
}

#[test]
fn client_pause_holds_writes_or_everything_until_it_ends() {
    let srv = TestServer::start(&["--clock", "manual"]);
    let mut admin = srv.client();
    let mut c = srv.client();
    let now = clock(&mut c);
    q(&mut admin, &["CLIENT", "PAUSE", "800", "WRITE"]).unwrap();
    // Reads go on.
    let t = Instant::now();
    q(&mut c, &["EVT.TOTAL"]).unwrap();
    assert!(t.elapsed() < Duration::from_millis(500));
    // A write waits for the pause to end.
    let t = Instant::now();
    add(&mut c, &bare_event("p", "view", now)).unwrap();
    let held = t.elapsed();
    assert!(
        held >= Duration::from_millis(500),
        "a write ran during the pause ({held:?})"
    );
    // ALL holds everything, until CLIENT UNPAUSE (which is never held).
    q(&mut admin, &["CLIENT", "PAUSE", "60000"]).unwrap();
    let mut s = srv.raw();
    s.write_all(b"PING\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300))).ok();
    let mut buf = [0u8; 16];
    assert!(
        s.read(&mut buf).is_err(),
        "PING answered during CLIENT PAUSE ALL"
    );
    q(&mut admin, &["CLIENT", "UNPAUSE"]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    assert_eq!(read_n(&mut s, 7), b"+PONG\r\n");
    assert_eq!(q(&mut c, &["EVT.TOTAL"]), Ok(Value::Int(1)));
}

#[test]
fn client_reply_off_and_skip_silence_replies() {
    let srv = TestServer::start(&[]);
    let mut s = srv.raw();
    s.write_all(b"CLIENT REPLY OFF\r\nPING\r\nECHO a\r\nCLIENT REPLY ON\r\nPING\r\n")
        .unwrap();
    assert_eq!(read_n(&mut s, 12), b"+OK\r\n+PONG\r\n");
    s.write_all(b"CLIENT REPLY SKIP\r\nPING\r\nECHO b\r\n")
        .unwrap();
    assert_eq!(read_n(&mut s, 7), b"$1\r\nb\r\n");
    let mut c = srv.client();
    assert_eq!(q(&mut c, &["CLIENT", "NO-EVICT", "on"]), Ok(Value::Okay));
    assert_eq!(q(&mut c, &["CLIENT", "NO-TOUCH", "off"]), Ok(Value::Okay));
}

#[test]
fn unsupported_redis_commands_answer_the_unknown_command_error() {
    let srv = TestServer::start(&[]);
    let mut c = srv.client();
    for name in ["SCAN", "KEYS", "SUBSCRIBE", "PUBLISH", "GET", "SET", "EVAL"] {
        let e = q(&mut c, &[name, "x"]).unwrap_err();
        assert!(
            e.starts_with(&format!("ERR unknown command '{name}'")),
            "{e}"
        );
    }
}

#[test]
fn a_config_file_sets_the_server_up_flags_override_it_and_config_rewrite_writes_back() {
    let dir = std::env::temp_dir().join(format!("sa-conffile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("analytics.conf");
    std::fs::write(
        &path,
        "# ScalableAnalytics\nmaxclients 77\ntimeout 40\nloglevel info\nslowlog-max-len 5\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let srv = Spawned::start_with_file(Some(p), &["--timeout", "50"]);
    let mut s = Raw::connect(srv.addr);
    // The value `CONFIG GET name` answers.
    let config = |s: &mut Raw, name: &str| match s.cmd(&["CONFIG", "GET", name]) {
        R::Array(pair) if pair.len() == 2 => pair[1].text(),
        other => panic!("CONFIG GET {name}: {other:?}"),
    };
    assert_eq!(config(&mut s, "maxclients"), "77");
    assert_eq!(
        config(&mut s, "timeout"),
        "50",
        "the flag wins over the file"
    );
    let info = s.cmd(&["INFO", "server"]).text();
    assert!(info.contains(&format!("config_file:{p}")), "{info}");
    let ok = R::Simple("OK".into());
    assert_eq!(
        s.cmd(&[
            "CONFIG",
            "SET",
            "maxclients",
            "88",
            "slowlog-log-slower-than",
            "500",
        ]),
        ok
    );
    assert_eq!(s.cmd(&["CONFIG", "REWRITE"]), ok);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# ScalableAnalytics\nmaxclients 88\ntimeout 50\n"),
        "{text}"
    );
    assert!(text.contains("slowlog-max-len 5\n"), "{text}");
    assert!(text.contains("# Generated by CONFIG REWRITE\n"), "{text}");
    assert!(text.contains("slowlog-log-slower-than 500\n"), "{text}");
    drop(srv);
    // The rewritten file starts a server.
    let again = Spawned::start_with_file(Some(p), &[]);
    let mut s = Raw::connect(again.addr);
    assert_eq!(config(&mut s, "maxclients"), "88");
    // Without a file, CONFIG REWRITE says so, as Redis.
    let plain = TestServer::start(&[]);
    let mut c = plain.client();
    assert_eq!(
        q(&mut c, &["CONFIG", "REWRITE"]),
        Err("ERR The server is running without a config file".into())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_config_file_with_an_unknown_setting_is_refused_naming_the_line() {
    let dir = std::env::temp_dir().join(format!("sa-badconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.conf");
    std::fs::write(&path, "port 7000\nsave-the-world yes\n").unwrap();
    let (status, log) = run_binary(&[path.to_str().unwrap()], Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.code() == Some(2)), "{log}");
    assert!(
        log.contains("bad.conf:2: unknown setting 'save-the-world'"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
