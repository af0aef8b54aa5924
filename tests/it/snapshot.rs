//! The window on disk: `SAVE`, the save at SHUTDOWN and SIGTERM, what survives
//! `kill -9`, loading only what is still inside the window, refusing damaged files and
//! another clock's file without changing them, unwritable paths, and ids up to the
//! format's ceiling.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

fn temp_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("sa-hardening-{}-{name}.snap", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(p.with_extension("tmp"));
    p
}

/// Removes a file when dropped.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("tmp"));
    }
}

// ---------------------------------------------------------------------------------
// Save and load
// ---------------------------------------------------------------------------------

/// Everything the queries say about `users` × `types`.
fn window_view(c: &mut redis::Connection, users: &[&str], types: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!("clock {}", clock(c)));
    for span in ["60", "45", "30", "10", "1"] {
        out.push(format!(
            "total/{span} {}",
            q_i64(c, &["EVT.TOTAL", "WINDOW", span])
        ));
    }
    for u in users {
        out.push(format!("user {u} {}", q_i64(c, &["EVT.USER", u])));
        out.push(format!(
            "user/20 {u} {}",
            q_i64(c, &["EVT.USER", u, "WINDOW", "20"])
        ));
        for t in types {
            out.push(format!("sum {u} {t} {}", q_f64(c, &["EVT.SUM", u, t])));
        }
    }
    for t in types {
        out.push(format!("type {t} {}", q_i64(c, &["EVT.TYPE", t])));
    }
    let info = info(c, None);
    for f in [
        "window_events",
        "active_users",
        "active_event_types",
        "active_user_event_types",
    ] {
        out.push(format!("{f} {:?}", info_field(&info, f)));
    }
    out
}

#[test]
fn snapshot_round_trip_through_shutdown_keeps_every_total() {
    let path = temp_path("round-trip");
    let _cleanup = Cleanup(path.clone());
    let p = path.to_str().unwrap();
    let flags = ["--clock", "manual", "--snapshot", p];
    let mut srv = TestServer::start(&flags);
    let mut c = srv.client();
    let t0 = clock(&mut c);
    let users = ["alice", "bob", "carol", "dave \u{e9}", "eve"];
    let types = ["view", "click", "buy"];
    let mut expected_at_t0 = 0;
    for (i, u) in users.iter().enumerate() {
        for (j, t) in types.iter().enumerate() {
            for (k, age) in [0, 5, 20, 50, 59].into_iter().enumerate() {
                if (i + j + k) % 3 == 0 {
                    continue;
                }
                let value = (i * 7 + j * 3 + k) as f64 * 0.25 - 1.0;
                let json = event(u, t, t0 - age, value);
                add(&mut c, &json).unwrap_or_else(|e| panic!("{json}: {e}"));
                if age == 0 {
                    expected_at_t0 += 1;
                }
            }
            // Events without a value count but add nothing to sums.
            add(&mut c, &bare_event(u, t, t0 - 1)).unwrap();
        }
    }
    // Move on so that the oldest seconds leave the window before the save.
    assert_eq!(q_i64(&mut c, &["EVT.CLOCK", "ADVANCE", "15"]), t0 + 15);
    let before = window_view(&mut c, &users, &types);
    assert!(total(&mut c, None) > 0);

    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(
        srv.wait_stopped(Duration::from_secs(30)),
        "SHUTDOWN did not stop the server"
    );
    assert!(path.exists(), "no snapshot at {p}");
    assert!(
        !path.with_extension("tmp").exists(),
        "a temporary file was left"
    );

    let srv = TestServer::start(&flags);
    let mut c = srv.client();
    let after = window_view(&mut c, &users, &types);
    assert_eq!(before, after);

    // Restored events keep their own seconds: they leave the window on time.
    assert_eq!(q_i64(&mut c, &["EVT.CLOCK", "ADVANCE", "44"]), t0 + 59);
    assert_eq!(total(&mut c, None), expected_at_t0);
    q_i64(&mut c, &["EVT.CLOCK", "ADVANCE", "1"]);
    assert_eq!(total(&mut c, None), 0);
}

/// Writes a snapshot file by the documented format (see src/snapshot.rs).
fn write_snapshot(path: &Path, window: u32, now: i64, records: &[(&str, &str, i64, u64, f64)]) {
    let mut b = b"SAWIN\0\0\x01".to_vec();
    b.extend_from_slice(&window.to_le_bytes());
    b.extend_from_slice(&now.to_le_bytes());
    b.extend_from_slice(&(records.len() as u64).to_le_bytes());
    for (user, ty, second, events, sum) in records {
        for id in [user, ty] {
            b.extend_from_slice(&(id.len() as u16).to_le_bytes());
            b.extend_from_slice(id.as_bytes());
        }
        b.extend_from_slice(&second.to_le_bytes());
        b.extend_from_slice(&events.to_le_bytes());
        b.extend_from_slice(&sum.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_snapshot_loads_only_what_is_still_inside_the_window() {
    let path = temp_path("window-at-load");
    let _cleanup = Cleanup(path.clone());
    let p = path.to_str().unwrap();
    let w = system_now();
    let records = [
        ("a", "view", w - 30, 3, 6.0),
        ("b", "view", w - 85, 2, 4.0),
        ("c", "click", w - 10, 1, 0.5),
        ("d", "view", w - 200, 7, 7.0),
    ];
    write_snapshot(&path, 60, w - 30, &records);

    // The wall clock: now is (about) w, so `b` (85 s old) and `d` are gone.
    let srv = TestServer::start(&["--snapshot", p]);
    let mut c = srv.client();
    assert_eq!(total(&mut c, None), 4);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "a"]), 3);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "b"]), 0);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "d"]), 0);
    assert_eq!(q_i64(&mut c, &["EVT.TYPE", "view"]), 3);
    assert_eq!(q_f64(&mut c, &["EVT.SUM", "a", "view"]), 6.0);
    assert_eq!(q_f64(&mut c, &["EVT.SUM", "c", "click"]), 0.5);
    drop(c);
    srv.stop();

    // The manual clock resumes at the saved now (w - 30): `b` is 55 s old there.
    write_snapshot(&path, 60, w - 30, &records);
    let srv = TestServer::start(&["--clock", "manual", "--snapshot", p]);
    let mut c = srv.client();
    assert_eq!(clock(&mut c), w - 30);
    assert_eq!(
        total(&mut c, None),
        5,
        "c (in the future of w - 30) is dropped too"
    );
    assert_eq!(q_i64(&mut c, &["EVT.USER", "b"]), 2);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "c"]), 0);
    assert_eq!(q_f64(&mut c, &["EVT.SUM", "b", "view"]), 4.0);
}

#[test]
fn save_writes_a_snapshot_on_demand() {
    let path = temp_path("save");
    let _cleanup = Cleanup(path.clone());
    let p = path.to_str().unwrap();
    let srv = TestServer::start(&["--clock", "manual", "--snapshot", p]);
    let mut c = srv.client();
    let now = clock(&mut c);
    for i in 0..50 {
        add(
            &mut c,
            &event(&format!("u{}", i % 7), "view", now - i % 30, 1.5),
        )
        .unwrap();
    }
    assert!(!path.exists());
    assert_eq!(redis::cmd("SAVE").query::<String>(&mut c).unwrap(), "OK");
    let snap = scalable_analytics::read_snapshot(&path)
        .expect("a readable snapshot")
        .expect("a snapshot file");
    assert_eq!(snap.saved_now, now);
    assert_eq!(snap.records.iter().map(|r| r.events).sum::<u64>(), 50);
    assert_eq!(snap.records.iter().map(|r| r.sum).sum::<f64>(), 75.0);
    assert!(!path.with_extension("tmp").exists());

    // Without --snapshot, SAVE says how to get one.
    let plain = TestServer::start(&[]);
    let mut c = plain.client();
    let e = query_err(&mut c, &redis::cmd("SAVE"));
    assert!(e.starts_with("ERR ") && e.contains("--snapshot"), "{e}");
}

#[test]
fn sigterm_saves_and_kill_9_keeps_only_the_last_save() {
    let path = temp_path("signals");
    let _cleanup = Cleanup(path.clone());
    let p = path.to_str().unwrap();
    let flags = ["--clock", "manual", "--snapshot", p];
    let url = |sp: &Spawned| format!("redis://{}/", sp.addr);

    // SIGTERM: everything acknowledged survives.
    let mut a = Spawned::start(&flags);
    let mut c = redis_at(url(&a));
    let now = clock(&mut c);
    for i in 0..40 {
        add(&mut c, &event(&format!("u{}", i % 4), "t", now - i, 1.0)).unwrap();
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &a.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let log = a.final_log(Duration::from_secs(30));
    assert!(log.contains("snapshot saved"), "{log}");
    assert!(a.wait_exit(Duration::from_secs(1)).unwrap().success());

    let mut b = Spawned::start(&flags);
    let mut c = redis_at(url(&b));
    assert_eq!(total(&mut c, None), 40);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "u1"]), 10);

    // kill -9: what SAVE wrote survives, what came after it does not (README).
    for i in 0..5 {
        add(&mut c, &event("after-restart", "t", now - i, 1.0)).unwrap();
    }
    assert_eq!(redis::cmd("SAVE").query::<String>(&mut c).unwrap(), "OK");
    for i in 0..7 {
        add(&mut c, &event("after-save", "t", now - i, 1.0)).unwrap();
    }
    assert_eq!(total(&mut c, None), 52);
    let status = std::process::Command::new("kill")
        .args(["-KILL", &b.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(b.wait_exit(Duration::from_secs(10)).is_some());

    let d = Spawned::start(&flags);
    let mut c = redis_at(url(&d));
    assert_eq!(total(&mut c, None), 45);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "after-save"]), 0);
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

// ---------------------------------------------------------------------------------
// Files that cannot be used
// ---------------------------------------------------------------------------------

/// Starts a server's state on `flags` and returns why it refused.
fn build_error(flags: &[&str]) -> String {
    use clap::Parser;
    let mut argv = vec!["scalable-analytics", "--port", "0"];
    argv.extend_from_slice(flags);
    let config = scalable_analytics::Config::try_parse_from(argv).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        match scalable_analytics::build(&listener, config, scalable_analytics::Options::default()) {
            Ok(_) => panic!("started with {flags:?}"),
            Err(e) => e.to_string(),
        }
    })
}

#[test]
fn corrupt_or_truncated_snapshots_refuse_to_start_and_a_missing_one_starts_empty() {
    let path = temp_path("damaged");
    let _cleanup = Cleanup(path.clone());
    let p = path.to_str().unwrap();

    // Missing: starts empty (and SHUTDOWN writes one).
    let mut srv = TestServer::start(&["--clock", "manual", "--snapshot", p]);
    let mut c = srv.client();
    assert_eq!(total(&mut c, None), 0);
    let now = clock(&mut c);
    for i in 0..20 {
        add(&mut c, &event(&format!("user-{i}"), "view", now - i, 2.0)).unwrap();
    }
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(srv.wait_stopped(Duration::from_secs(30)));
    let good = std::fs::read(&path).expect("a snapshot after SHUTDOWN");
    assert!(good.len() > 40);

    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("a flipped byte in a record", {
            let mut b = good.clone();
            let i = b.len() / 2;
            b[i] ^= 0x40;
            b
        }),
        ("a flipped byte in the header", {
            let mut b = good.clone();
            b[13] ^= 1;
            b
        }),
        ("a flipped checksum", {
            let mut b = good.clone();
            let i = b.len() - 1;
            b[i] ^= 0xff;
            b
        }),
        ("the last record cut", good[..good.len() - 12].to_vec()),
        ("only the header", good[..20].to_vec()),
        ("empty", Vec::new()),
        ("another format", b"REDIS0011\xfa\x09redis-ver".to_vec()),
    ];
    for (what, bytes) in &damaged {
        std::fs::write(&path, bytes).unwrap();
        let e = build_error(&["--snapshot", p]);
        assert!(
            e.contains(p),
            "{what}: the error does not name the file: {e}"
        );
        assert!(
            e.contains("corrupt") || e.contains("truncated"),
            "{what}: {e}"
        );
    }

    // The binary: a clear message naming the file, and a failing exit status.
    std::fs::write(&path, &damaged[0].1).unwrap();
    let (status, out) = run_binary(&["--port", "0", "--snapshot", p], Duration::from_secs(30));
    let status = status.expect("the server should exit by itself");
    assert!(!status.success(), "started with a corrupt snapshot:\n{out}");
    assert!(out.contains(p), "{out}");

    // The intact file still loads.
    std::fs::write(&path, &good).unwrap();
    let srv = TestServer::start(&["--clock", "manual", "--snapshot", p]);
    let mut c = srv.client();
    assert_eq!(total(&mut c, None), 20);
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
    // The whole log: its last lines may still be in the pipe when the exit is seen.
    let log = srv.final_log(Duration::from_secs(10));
    assert!(log.contains("snapshot not saved"), "{log}");
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
