//! The window log (`--appendonly yes`) through the real server: what survives
//! `kill -9` at each `appendfsync`, torn and damaged segments, a full disk, segments
//! leaving the window, `-LOADING`, `SAVE`/`FLUSHALL`/`CONFIG SET`, and snapshot + log
//! across restarts against a model.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use proptest::prelude::*;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("sa-durability-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn log_dir(&self) -> PathBuf {
        self.0.join("appendonlydir")
    }

    /// The segment files, oldest first.
    fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.log_dir())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sal"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn redis_at(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection())
        .expect("connect")
}

/// Waits until the server has loaded its log (INFO loading:0).
fn wait_loaded(c: &mut redis::Connection) {
    wait_info(c, "loading", "0", Duration::from_secs(60)).expect("the log loads");
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

// ---------------------------------------------------------------------------------
// kill -9 while connections write.
// ---------------------------------------------------------------------------------

/// What one writer connection saw.
#[derive(Default)]
struct Seen {
    acked: HashMap<String, u64>,
    sent: HashMap<String, u64>,
    /// When each acknowledgement arrived, and for whom.
    acks: Vec<(Instant, String)>,
    errors: Vec<String>,
}

/// Writes pipelines of `pipeline` events for its own users until the server dies or
/// `stop` is set.
fn writer(
    addr: SocketAddr,
    id: usize,
    users: usize,
    pipeline: usize,
    now: i64,
    stop: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    let Ok(mut s) = TcpStream::connect(addr) else {
        return seen;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.set_nodelay(true).ok();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<String> = (0..pipeline)
            .map(|i| format!("w{id}-u{}", (n + i * 7) % users))
            .collect();
        n += pipeline;
        let mut bytes = Vec::new();
        for u in &batch {
            let json = event(u, "click", now, 1.0);
            bytes.extend(resp_str(&["EVT.ADD", &json]));
            *seen.sent.entry(u.clone()).or_default() += 1;
        }
        if s.write_all(&bytes).is_err() {
            break;
        }
        for u in &batch {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return seen,
                Ok(_) => {}
            }
            if line == "+OK\r\n" {
                *seen.acked.entry(u.clone()).or_default() += 1;
                seen.acks.push((Instant::now(), u.clone()));
            } else {
                seen.errors.push(line);
            }
        }
    }
    seen
}

/// Starts a server with `fsync`, writes from 4 connections, kills it with -9 after
/// `run`, restarts it and returns (per-user counts after restart, what the writers
/// saw, when the kill was sent).
fn kill_while_writing(fsync: &str, run: Duration) -> (HashMap<String, i64>, Vec<Seen>, Instant) {
    let dir = TempDir::new(&format!("kill-{fsync}"));
    let flags = [
        "--appendonly",
        "yes",
        "--appendfsync",
        fsync,
        "--dir",
        dir.path(),
        "--clock",
        "manual",
    ];
    let a = Spawned::start(&flags);
    let mut c = redis_at(a.addr);
    let now = clock(&mut c);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|id| {
            let stop = stop.clone();
            let addr = a.addr;
            std::thread::spawn(move || writer(addr, id, 32, 16, now, stop))
        })
        .collect();
    std::thread::sleep(run);
    let killed = Instant::now();
    kill9(a.pid());
    let seen: Vec<Seen> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    drop(a);

    let b = Spawned::start(&flags);
    let mut c = redis_at(b.addr);
    wait_loaded(&mut c);
    let mut counts = HashMap::new();
    for s in &seen {
        for u in s.sent.keys() {
            counts.insert(u.clone(), q_i64(&mut c, &["EVT.USER", u]));
        }
    }
    (counts, seen, killed)
}

#[test]
fn kill_9_with_always_loses_no_acknowledged_event_and_counts_none_twice() {
    let (counts, seen, _) = kill_while_writing("always", Duration::from_millis(1500));
    let acked: u64 = seen.iter().flat_map(|s| s.acked.values()).sum();
    let sent: u64 = seen.iter().flat_map(|s| s.sent.values()).sum();
    assert!(
        acked > 500,
        "too few events acknowledged to tell anything: {acked}"
    );
    for s in &seen {
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        for (u, &n) in &s.sent {
            let got = counts[u] as u64;
            let ok = s.acked.get(u).copied().unwrap_or(0);
            assert!(
                got >= ok,
                "{u}: {ok} acknowledged, {got} counted after kill -9"
            );
            assert!(
                got <= n,
                "{u}: {n} sent, {got} counted: something counted twice"
            );
        }
    }
    let counted: i64 = counts.values().sum();
    eprintln!("always: {acked} acknowledged, {sent} sent, {counted} counted after kill -9: 0 lost");
}

#[test]
fn kill_9_with_everysec_loses_at_most_the_last_two_seconds() {
    let (counts, seen, killed) = kill_while_writing("everysec", Duration::from_millis(2500));
    let acked: u64 = seen.iter().flat_map(|s| s.acked.values()).sum();
    assert!(
        acked > 500,
        "too few events acknowledged to tell anything: {acked}"
    );
    let recent = seen
        .iter()
        .flat_map(|s| &s.acks)
        .filter(|(t, _)| killed.saturating_duration_since(*t) <= Duration::from_secs(2))
        .count() as u64;
    let mut lost = 0u64;
    for s in &seen {
        for (u, &n) in &s.sent {
            let got = counts[u] as u64;
            let ok = s.acked.get(u).copied().unwrap_or(0);
            assert!(
                got <= n,
                "{u}: {n} sent, {got} counted: something counted twice"
            );
            lost += ok.saturating_sub(got);
        }
    }
    assert!(
        lost <= recent,
        "{lost} acknowledged events lost, more than the {recent} acknowledged in the last 2 s"
    );
    eprintln!(
        "everysec: {acked} acknowledged, {lost} lost after kill -9 ({recent} acknowledged in the last 2 s)"
    );
}

// ---------------------------------------------------------------------------------
// Torn and damaged segments.
// ---------------------------------------------------------------------------------

/// The documented segment layout: header bytes, then frames of a 12-byte header
/// (`len`, `crc`, `hcrc`) and `len` bytes of body.
const SEGMENT_HEADER: usize = 41;

/// `(start, end)` of every whole frame.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = SEGMENT_HEADER;
    while pos + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let end = pos + 12 + len;
        if end > bytes.len() {
            break;
        }
        out.push((pos, end));
        pos = end;
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_log_cut_anywhere_in_its_last_frame_loads_every_whole_frame() {
    let dir = TempDir::new("torn");
    let flags = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--clock",
        "manual",
        "--dir",
        dir.path(),
    ];
    let srv = TestServer::start(&flags);
    let mut c = srv.client();
    let now = clock(&mut c);
    // One connection, one event at a time, always: one frame per event.
    for i in 0..6 {
        add(&mut c, &event(&format!("user-{i}"), "view", now - i, 2.5)).unwrap();
    }
    drop(c);
    srv.stop();
    let segs = dir.segments();
    assert_eq!(segs.len(), 1, "{segs:?}");
    let bytes = std::fs::read(&segs[0]).unwrap();
    let fr = frames(&bytes);
    assert_eq!(fr.len(), 6, "one frame per acknowledged event");
    let (last, end) = fr[5];
    assert_eq!(end, bytes.len());
    for cut in last..end {
        let copy = TempDir::new("torn-copy");
        copy_dir(&dir.log_dir(), &copy.log_dir());
        let seg = copy.log_dir().join(segs[0].file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let mut f = flags.to_vec();
        f[7] = copy.path();
        let srv = TestServer::start(&f);
        let mut c = srv.client();
        wait_loaded(&mut c);
        assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 5, "cut at {cut}");
        assert_eq!(q_i64(&mut c, &["EVT.USER", "user-5"]), 0, "cut at {cut}");
        assert_eq!(q_f64(&mut c, &["EVT.SUM", "user-4", "view"]), 2.5);
        let torn = info_i64(&mut c, "aof_load_torn_frames");
        assert_eq!(torn, i64::from(cut > last), "cut at {cut}");
        // The torn bytes are cut off, so what is written next follows whole frames.
        add(&mut c, &event("after", "view", now, 1.0)).unwrap();
        drop(c);
        srv.stop();
        let srv = TestServer::start(&f);
        let mut c = srv.client();
        wait_loaded(&mut c);
        assert_eq!(
            q_i64(&mut c, &["EVT.TOTAL"]),
            6,
            "cut at {cut}, after a restart"
        );
        srv.stop();
    }
}

/// Two segments: `first` events in the first (one run), `second` in the next.
fn two_segments(dir: &TempDir, first: usize, second: usize) -> Vec<&'static str> {
    let flags: Vec<&'static str> = vec![
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--clock",
        "manual",
    ];
    for (run, n) in [first, second].into_iter().enumerate() {
        let mut f = flags.clone();
        f.extend(["--dir", dir.path()]);
        let srv = TestServer::start(&f);
        let mut c = srv.client();
        wait_loaded(&mut c);
        let now = clock(&mut c);
        for i in 0..n {
            add(&mut c, &event(&format!("r{run}-u{i}"), "t", now, 1.0)).unwrap();
        }
        srv.stop();
    }
    flags
}

#[test]
fn damage_in_the_middle_of_a_segment_refuses_to_start_unless_told_to_skip_it() {
    let dir = TempDir::new("damaged");
    let flags = two_segments(&dir, 4, 3);
    let segs = dir.segments();
    assert_eq!(segs.len(), 2, "{segs:?}");
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let fr = frames(&bytes);
    assert_eq!(fr.len(), 4);
    // A flipped bit in the body of the second frame (of four).
    let at = fr[1].0 + 14;
    bytes[at] ^= 0x10;
    std::fs::write(&segs[0], &bytes).unwrap();

    let mut args: Vec<&str> = vec!["--port", "0", "--dir", dir.path()];
    args.extend(&flags);
    let (status, out) = run_binary(&args, Duration::from_secs(30));
    let status = status.expect("the server stops by itself");
    assert!(!status.success(), "started with a damaged log:\n{out}");
    let name = segs[0].file_name().unwrap().to_str().unwrap();
    assert!(out.contains(name), "the error names the file:\n{out}");
    assert!(
        out.contains(&format!("offset {}", fr[1].0)),
        "the error names the offset:\n{out}"
    );
    assert!(out.contains("--aof-skip-damaged"), "{out}");
    // Nothing was changed: the same refusal again.
    assert_eq!(std::fs::read(&segs[0]).unwrap(), bytes);

    let mut f = flags.clone();
    f.extend(["--dir", dir.path(), "--aof-skip-damaged", "yes"]);
    let srv = TestServer::start(&f);
    let mut c = srv.client();
    wait_loaded(&mut c);
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 3, "only the second segment");
    assert_eq!(q_i64(&mut c, &["EVT.USER", "r0-u0"]), 0);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "r1-u0"]), 1);
    assert_eq!(info_i64(&mut c, "aof_load_skipped_segments"), 1);
    assert!(
        segs[0].with_extension("damaged").exists(),
        "kept aside for a look"
    );
    assert!(!segs[0].exists());
}

// ---------------------------------------------------------------------------------
// A full disk.
// ---------------------------------------------------------------------------------

/// Adds events one by one until `n` were answered; returns (acknowledged, errors).
fn add_until(
    c: &mut redis::Connection,
    now: i64,
    from: usize,
    n: usize,
) -> (Vec<String>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for i in from..from + n {
        let u = format!("user-with-a-longish-name-{i}");
        match add(c, &event(&u, "click", now, 1.0)) {
            Ok(()) => ok.push(u),
            Err(e) => errs.push(e),
        }
    }
    (ok, errs)
}

#[test]
fn a_full_disk_refuses_events_with_misconf_counts_none_of_them_and_recovers() {
    for fsync in ["always", "everysec"] {
        let dir = TempDir::new(&format!("full-{fsync}"));
        let flags = [
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
            "--clock",
            "manual",
            "--dir",
            dir.path(),
        ];
        let a = Spawned::start_with_file_limit(&flags, 4096);
        let mut c = redis_at(a.addr);
        let now = clock(&mut c);
        // ~60 bytes per event with a new user: the first segment fills up.
        let mut acked = Vec::new();
        let mut refused = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while refused.is_empty() && Instant::now() < deadline {
            let (ok, errs) = add_until(&mut c, now, acked.len() + refused.len(), 10);
            acked.extend(ok);
            refused.extend(errs);
            if fsync == "everysec" {
                // Let the log thread write (and fail) before the next events.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert!(!refused.is_empty(), "{fsync}: no write ever failed");
        for e in &refused {
            assert!(
                e.starts_with("MISCONF Errors writing to the AOF file: File too large"),
                "{fsync}: {e}"
            );
        }
        assert!(info_i64(&mut c, "aof_write_errors") >= 1);
        // Nothing refused is counted; everything acknowledged is.
        assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), acked.len() as i64, "{fsync}");
        // Recovery: a new segment takes writes again within a couple of seconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut recovered = false;
        let mut n = acked.len() + refused.len();
        while Instant::now() < deadline && !recovered {
            std::thread::sleep(Duration::from_millis(200));
            let (ok, errs) = add_until(&mut c, now, n, 1);
            n += 1;
            recovered = !ok.is_empty();
            acked.extend(ok);
            refused.extend(errs);
        }
        assert!(recovered, "{fsync}: the log never recovered");
        wait_info(
            &mut c,
            "aof_last_write_status",
            "ok",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), acked.len() as i64);
        // Let everysec's write of the last ones happen, then crash.
        std::thread::sleep(Duration::from_millis(1200));
        kill9(a.pid());
        drop(a);
        let b = Spawned::start(&flags);
        let mut c = redis_at(b.addr);
        wait_loaded(&mut c);
        assert_eq!(
            q_i64(&mut c, &["EVT.TOTAL"]),
            acked.len() as i64,
            "{fsync}: after kill -9, exactly the acknowledged events ({} refused)",
            refused.len()
        );
        for u in &acked {
            assert_eq!(q_i64(&mut c, &["EVT.USER", u]), 1, "{fsync}: {u}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Disk use bounded by the window.
// ---------------------------------------------------------------------------------

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn segments_that_left_the_window_are_deleted_while_writing_goes_on() {
    let dir = TempDir::new("soak");
    // A 2-second window: segments span 1 s, so at most ~4 stay.
    let srv = TestServer::start(&["--appendonly", "yes", "--window", "2", "--dir", dir.path()]);
    let mut c = srv.client();
    let mut s = srv.raw();
    let started = Instant::now();
    let mut most_files = 0;
    let mut per_second = Vec::new();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(7) {
        let now = system_now();
        let mut bytes = Vec::new();
        for i in 0..200 {
            bytes.extend(resp_str(&[
                "EVT.ADD",
                &event(&format!("u{i}"), "t", now, 1.0),
            ]));
        }
        let got = send_recv(&mut s, &bytes, 200 * 5);
        assert_eq!(got.len(), 200 * 5);
        sent += 200;
        std::thread::sleep(Duration::from_millis(20));
        let files = dir.segments().len();
        most_files = most_files.max(files);
        per_second.push(dir_bytes(&dir.log_dir()));
    }
    assert!(
        most_files <= 6,
        "{most_files} segments at once for a 2 s window"
    );
    let most = per_second.iter().max().copied().unwrap_or(0);
    // ~9,000 events a second at under 10 bytes each: 5 s of them is far above any
    // moment's disk use if old segments go.
    assert!(
        most < sent * 10 / 7 * 5,
        "{most} bytes on disk after {sent} events"
    );
    // Writing stops: everything leaves the window, the newest segment stays (it
    // holds where the clock was).
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.segments().len() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = dir.segments();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        info_i64(&mut c, "aof_current_size") as u64,
        std::fs::metadata(&left[0]).unwrap().len()
    );
    assert_eq!(info_i64(&mut c, "aof_segments"), 1);
}

// ---------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------

/// Sends `req` and reads until what arrived ends with `suffix`.
fn roundtrip(s: &mut TcpStream, req: &[u8], suffix: &[u8]) -> String {
    use std::io::Read;
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.is_empty() || !out.ends_with(suffix) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Reads until `n` more lines arrived.
fn read_lines(s: &mut TcpStream, n: usize) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 1];
    while out.windows(2).filter(|w| w == b"\r\n").count() < n {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes a segment by the documented format: `events` events of `users` users at
/// `now`, without values.
fn write_segment(path: &Path, now: i64, users: usize, events: usize) {
    let mut b = b"SALOG\0\0\x01".to_vec();
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.push(2);
    b.extend_from_slice(&60u32.to_le_bytes());
    b.extend_from_slice(&now.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let mut defined = 0;
    let mut written = 0;
    while written < events {
        let mut body = Vec::new();
        varint(&mut body, now as u64);
        if written == 0 {
            body.push(0x02);
            varint(&mut body, 5);
            body.extend_from_slice(b"click");
        }
        for _ in 0..50_000.min(events - written) {
            let u = written % users;
            if u == defined {
                let id = format!("user{u}");
                body.push(0x01);
                varint(&mut body, id.len() as u64);
                body.extend_from_slice(id.as_bytes());
                defined += 1;
            }
            body.push(0x10);
            varint(&mut body, u as u64);
            varint(&mut body, 0);
            varint(&mut body, 0);
            written += 1;
        }
        let len = (body.len() as u32).to_le_bytes();
        let crc = crc32fast::hash(&body).to_le_bytes();
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&len);
        head[4..8].copy_from_slice(&crc);
        let hcrc = crc32fast::hash(&head[..8]).to_le_bytes();
        head[8..].copy_from_slice(&hcrc);
        b.extend_from_slice(&head);
        b.extend_from_slice(&body);
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn while_the_log_loads_clients_get_loading_and_info_says_so() {
    let dir = TempDir::new("loading");
    std::fs::create_dir_all(dir.log_dir()).unwrap();
    let now = 1_700_000_000;
    let events = 1_000_000;
    write_segment(
        &dir.log_dir().join("log-0000000001-0000000000.sal"),
        now,
        50_000,
        events,
    );
    let srv = Spawned::start(&[
        "--appendonly",
        "yes",
        "--clock",
        "manual",
        "--dir",
        dir.path(),
    ]);
    let mut s = srv.raw();
    let (mut saw_loading, mut saw_info_loading) = (false, false);
    loop {
        // INFO first: once it says loading:0, everything must be there.
        let i = roundtrip(
            &mut s,
            &resp_str(&["INFO", "persistence"]),
            b"snapshot_file:\r\n\r\n",
        );
        let loading = i.contains("loading:1");
        saw_info_loading |= loading;
        // Commands flagged `loading` answer meanwhile (PING is not, as in Redis).
        let time = roundtrip(&mut s, b"TIME\r\n", b"");
        let more = 5usize.saturating_sub(time.matches("\r\n").count());
        let time = time + &read_lines(&mut s, more);
        assert!(time.starts_with("*2\r\n$"), "{time}");
        let text = roundtrip(&mut s, &resp_str(&["EVT.TOTAL"]), b"\r\n");
        if text.starts_with("-LOADING Redis is loading the dataset in memory") {
            assert!(loading, "-LOADING although INFO said loading:0 just before");
            saw_loading = true;
            let e = roundtrip(
                &mut s,
                &resp_str(&["EVT.ADD", &event("x", "click", now, 1.0)]),
                b"\r\n",
            );
            assert!(e.starts_with("-LOADING"), "{e}");
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert_eq!(text, format!(":{events}\r\n"));
        break;
    }
    assert!(saw_info_loading, "INFO never said loading:1");
    assert!(
        saw_loading,
        "1M events loaded before the first command: too fast to see -LOADING\n{}",
        srv.log()
    );
    let mut c = redis_at(srv.addr);
    assert_eq!(
        q_i64(&mut c, &["EVT.CLOCK"]),
        now,
        "the manual clock resumes at the log's now"
    );
    assert_eq!(q_i64(&mut c, &["EVT.USER", "user7"]), 20);
    assert_eq!(info_i64(&mut c, "aof_loaded_events"), events as i64);
    assert!(srv.log().contains("log loaded"), "{}", srv.log());
}

// ---------------------------------------------------------------------------------
// SAVE, FLUSHALL, CONFIG.
// ---------------------------------------------------------------------------------

#[test]
fn save_lets_the_older_segments_go_and_flushall_empties_the_log_too() {
    let dir = TempDir::new("save-flush");
    let flags = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--clock",
        "manual",
        "--dir",
        dir.path(),
        "--snapshot",
        "window.snap",
    ];
    let a = Spawned::start(&flags);
    let mut c = redis_at(a.addr);
    let now = clock(&mut c);
    for i in 0..10 {
        add(&mut c, &event(&format!("u{i}"), "t", now - i, 1.0)).unwrap();
    }
    let before = dir.segments();
    assert_eq!(before.len(), 1);
    assert_eq!(redis::cmd("SAVE").query::<String>(&mut c).unwrap(), "OK");
    assert!(
        dir.0.join("window.snap").exists(),
        "a bare --snapshot name lives in --dir"
    );
    assert!(!before[0].exists(), "SAVE let the segment before it go");
    for i in 0..5 {
        add(&mut c, &event(&format!("v{i}"), "t", now, 1.0)).unwrap();
    }
    kill9(a.pid());
    drop(a);
    let b = Spawned::start(&flags);
    let mut c = redis_at(b.addr);
    wait_loaded(&mut c);
    assert_eq!(
        q_i64(&mut c, &["EVT.TOTAL"]),
        15,
        "snapshot + the log after it"
    );
    assert_eq!(q_i64(&mut c, &["EVT.USER", "u3"]), 1);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "v3"]), 1);

    // FLUSHALL: neither the snapshot nor the log bring the window back.
    assert_eq!(
        redis::cmd("FLUSHALL").query::<String>(&mut c).unwrap(),
        "OK"
    );
    add(&mut c, &event("after-flush", "t", now, 1.0)).unwrap();
    kill9(b.pid());
    drop(b);
    let d = Spawned::start(&flags);
    let mut c = redis_at(d.addr);
    wait_loaded(&mut c);
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 1);
    assert_eq!(q_i64(&mut c, &["EVT.USER", "after-flush"]), 1);

    // Without a snapshot file, the log alone: FLUSHALL then kill -9.
    let dir2 = TempDir::new("flush-nosnap");
    let flags2 = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--clock",
        "manual",
        "--dir",
        dir2.path(),
    ];
    let e = Spawned::start(&flags2);
    let mut c = redis_at(e.addr);
    for i in 0..7 {
        add(&mut c, &event(&format!("w{i}"), "t", now, 1.0)).unwrap();
    }
    assert_eq!(
        redis::cmd("FLUSHALL").query::<String>(&mut c).unwrap(),
        "OK"
    );
    assert!(dir2.segments().is_empty(), "{:?}", dir2.segments());
    add(&mut c, &event("kept", "t", now, 1.0)).unwrap();
    kill9(e.pid());
    drop(e);
    let f = Spawned::start(&flags2);
    let mut c = redis_at(f.addr);
    wait_loaded(&mut c);
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 1);
}

#[test]
fn config_get_and_set_appendonly_and_appendfsync() {
    let dir = TempDir::new("config");
    let srv = TestServer::start(&["--clock", "manual", "--dir", dir.path()]);
    let mut c = srv.client();
    let get = |c: &mut redis::Connection, p: &str| -> String {
        let m: HashMap<String, String> = redis::cmd("CONFIG").arg("GET").arg(p).query(c).unwrap();
        m.get(p).cloned().unwrap_or_default()
    };
    assert_eq!(get(&mut c, "appendonly"), "no");
    assert_eq!(get(&mut c, "appendfsync"), "everysec");
    assert_eq!(get(&mut c, "dir"), dir.path());
    assert_eq!(get(&mut c, "aof-skip-damaged"), "no");
    assert_eq!(info_i64(&mut c, "aof_enabled"), 0);
    let e = query_err(
        &mut c,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendfsync")
            .arg("sometimes"),
    );
    assert!(e.contains("always, everysec, no"), "{e}");
    let e = query_err(
        &mut c,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendonly")
            .arg("maybe"),
    );
    assert!(e.contains("'yes' or 'no'"), "{e}");

    // Events before the log is switched on are in its first segment.
    let now = clock(&mut c);
    for i in 0..4 {
        add(&mut c, &event(&format!("early{i}"), "t", now - i, 0.5)).unwrap();
    }
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .arg("appendfsync")
        .arg("always")
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(get(&mut c, "appendonly"), "yes");
    assert_eq!(get(&mut c, "appendfsync"), "always");
    assert_eq!(info_i64(&mut c, "aof_enabled"), 1);
    add(&mut c, &event("late", "t", now, 0.5)).unwrap();
    assert_eq!(dir.segments().len(), 1);
    drop(c);
    srv.stop();
    let srv = TestServer::start(&[
        "--clock",
        "manual",
        "--appendonly",
        "yes",
        "--dir",
        dir.path(),
    ]);
    let mut c = srv.client();
    wait_loaded(&mut c);
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 5);
    assert_eq!(q_f64(&mut c, &["EVT.SUM", "early3", "t"]), 0.5);
    assert_eq!(clock(&mut c), now);
    // Off again: the log goes, so that no later start replays it stale.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query::<()>(&mut c)
        .unwrap();
    assert!(dir.segments().is_empty(), "{:?}", dir.segments());
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 5, "the window itself stays");
}

#[test]
fn exact_sums_come_back_exact_after_kill_9() {
    let dir = TempDir::new("exact");
    let on = [
        "--clock",
        "manual",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir.path(),
    ];
    // Before the log is on: these seconds reach it as aggregate records (one per
    // second of a pair), whose sums must be kept exact, not rounded.
    let a = Spawned::start(&["--clock", "manual", "--dir", dir.path()]);
    let mut c = redis_at(a.addr);
    let now = clock(&mut c);
    // Rounded per second, 1e16 + 1 would be 1e16, and the window's sum 0.
    for (ts, v) in [(now - 1, 1e16), (now - 1, 1.0), (now, -1e16)] {
        add(&mut c, &event("agg", "t", ts, v)).unwrap();
    }
    for _ in 0..10 {
        add(&mut c, &event("agg", "tenths", now, 0.1)).unwrap();
    }
    for (k, v) in ["appendonly", "yes", "appendfsync", "always"]
        .chunks(2)
        .map(|p| (p[0], p[1]))
    {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query::<()>(&mut c)
            .unwrap();
    }
    // With the log on: one record per event (replay must not add up a second's
    // values in one double).
    for v in [1e16, 1.0, -1e16] {
        add(&mut c, &event("each", "t", now, v)).unwrap();
    }
    for v in [1e308, 1e308, -1e308] {
        add(&mut c, &event("each", "big", now, v)).unwrap();
    }
    let before: Vec<String> = ["agg t", "agg tenths", "each t", "each big"]
        .iter()
        .map(|p| {
            let (u, t) = p.split_once(' ').unwrap();
            sum(&mut c, u, t, None)
        })
        .collect();
    assert_eq!(before, ["1", "1", "1", &1e308_f64.to_string()]);
    kill9(a.pid());
    drop(a);

    let b = Spawned::start(&on);
    let mut c = redis_at(b.addr);
    wait_loaded(&mut c);
    let after: Vec<String> = ["agg t", "agg tenths", "each t", "each big"]
        .iter()
        .map(|p| {
            let (u, t) = p.split_once(' ').unwrap();
            sum(&mut c, u, t, None)
        })
        .collect();
    assert_eq!(after, before, "sums after kill -9 and replay");
    assert_eq!(q_i64(&mut c, &["EVT.TOTAL"]), 19);
}

// ---------------------------------------------------------------------------------
// Snapshot + log across restarts, against a model.
// ---------------------------------------------------------------------------------

const WINDOW: i64 = 20;
const USERS: [&str; 4] = ["ann", "bob", "cy", "dee"];
const TYPES: [&str; 2] = ["view", "buy"];

#[derive(Debug, Clone)]
enum Op {
    Add {
        user: usize,
        ty: usize,
        age: i64,
        value: Option<i8>,
    },
    Advance(i64),
    Save,
    FlushAll,
    /// SIGTERM (snapshot saved), SHUTDOWN NOSAVE, or kill -9.
    Restart(Stop),
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    NoSave,
    Kill,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..USERS.len(), 0..TYPES.len(), 0..WINDOW, proptest::option::of(-4i8..8))
            .prop_map(|(user, ty, age, value)| Op::Add { user, ty, age, value }),
        2 => (1..12i64).prop_map(Op::Advance),
        1 => Just(Op::Save),
        1 => Just(Op::FlushAll),
        2 => prop_oneof![Just(Stop::Term), Just(Stop::NoSave), Just(Stop::Kill)].prop_map(Op::Restart),
    ]
}

/// The window as a model: every accepted event and `now`.
#[derive(Debug, Default)]
struct Model {
    now: i64,
    events: Vec<(usize, usize, i64, f64)>,
}

impl Model {
    fn live(&self) -> impl Iterator<Item = &(usize, usize, i64, f64)> {
        self.events
            .iter()
            .filter(|e| e.2 > self.now - WINDOW && e.2 <= self.now)
    }
}

/// Compares every query with the model.
fn check(c: &mut redis::Connection, m: &Model, when: &str) {
    assert_eq!(clock(c), m.now, "{when}: the clock");
    assert_eq!(
        q_i64(c, &["EVT.TOTAL"]),
        m.live().count() as i64,
        "{when}: total"
    );
    for (u, name) in USERS.iter().enumerate() {
        let n = m.live().filter(|e| e.0 == u).count() as i64;
        assert_eq!(q_i64(c, &["EVT.USER", name]), n, "{when}: {name}");
        for (t, ty) in TYPES.iter().enumerate() {
            let sum: f64 = m.live().filter(|e| e.0 == u && e.1 == t).map(|e| e.3).sum();
            assert_eq!(
                q_f64(c, &["EVT.SUM", name, ty]),
                sum,
                "{when}: sum {name} {ty}"
            );
        }
    }
    for (t, ty) in TYPES.iter().enumerate() {
        let n = m.live().filter(|e| e.1 == t).count() as i64;
        assert_eq!(q_i64(c, &["EVT.TYPE", ty]), n, "{when}: {ty}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn prop_snapshot_and_log_across_restarts_equal_a_model(ops in proptest::collection::vec(op(), 1..24)) {
        let dir = TempDir::new("model");
        let flags = [
            "--appendonly", "yes", "--appendfsync", "always", "--clock", "manual",
            "--clock-start", "1700000000", "--window", "20",
            "--dir", dir.path(), "--snapshot", "window.snap",
        ];
        let mut srv = Spawned::start(&flags);
        let mut c = redis_at(srv.addr);
        let mut m = Model { now: 1_700_000_000, events: Vec::new() };
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Add { user, ty, age, value } => {
                    let ts = m.now - age;
                    let json = match value {
                        Some(v) => event(USERS[user], TYPES[ty], ts, f64::from(v) / 2.0),
                        None => bare_event(USERS[user], TYPES[ty], ts),
                    };
                    add(&mut c, &json).unwrap();
                    m.events.push((user, ty, ts, value.map_or(0.0, |v| f64::from(v) / 2.0)));
                }
                Op::Advance(by) => {
                    m.now = q_i64(&mut c, &["EVT.CLOCK", "ADVANCE", &by.to_string()]);
                }
                Op::Save => {
                    prop_assert_eq!(redis::cmd("SAVE").query::<String>(&mut c).unwrap(), "OK");
                }
                Op::FlushAll => {
                    prop_assert_eq!(redis::cmd("FLUSHALL").query::<String>(&mut c).unwrap(), "OK");
                    m.events.clear();
                }
                Op::Restart(stop) => {
                    match stop {
                        Stop::Term => {
                            std::process::Command::new("kill").args(["-TERM", &srv.pid().to_string()]).status().unwrap();
                        }
                        Stop::NoSave => {
                            let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
                        }
                        Stop::Kill => kill9(srv.pid()),
                    }
                    prop_assert!(srv.wait_exit(Duration::from_secs(30)).is_some());
                    drop(srv);
                    srv = Spawned::start(&flags);
                    c = redis_at(srv.addr);
                    wait_loaded(&mut c);
                    check(&mut c, &m, &format!("after op {i} ({op:?})"));
                }
            }
        }
        check(&mut c, &m, "at the end");
    }
}

// ---------------------------------------------------------------------------------
// A cluster node restarted under a new map.
// ---------------------------------------------------------------------------------

/// A free port below the kernel's ephemeral range, so that a node can be started
/// again on it: a free port of that range may be taken meanwhile by any outgoing
/// connection of the tests running alongside.
fn restartable_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (20_000 + (std::process::id() % 5000) as u16 * 2..low)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port")
}

/// A map of node `a` (this one, on `port`, with slots `0..=a_last`) and, when
/// `a_last` leaves slots over, node `b` (never started) with the rest.
fn write_map(path: &Path, port: u16, a_last: u16) {
    let mut nodes = vec![format!(
        r#"{{"id":"a","host":"127.0.0.1","port":{port},"slots":[[0,{a_last}]]}}"#
    )];
    if a_last < 16383 {
        nodes.push(format!(
            r#"{{"id":"b","host":"127.0.0.1","port":7002,"slots":[[{},16383]]}}"#,
            a_last + 1
        ));
    }
    std::fs::write(path, format!(r#"{{"nodes":[{}]}}"#, nodes.join(","))).unwrap();
}

#[test]
fn a_node_restarted_under_a_new_map_counts_only_its_users_from_snapshot_and_log() {
    let dir = TempDir::new("remap");
    let map = dir.0.join("cluster.json");
    let map_s = map.to_str().unwrap().to_string();
    let port = restartable_port();
    let port_s = port.to_string();
    let flags = [
        "--port",
        &port_s,
        "--cluster-config",
        &map_s,
        "--cluster-node",
        "a",
        "--clock",
        "manual",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir.path(),
        "--snapshot",
        "window.snap",
    ];
    // One node serving every slot: every user's events are counted here.
    write_map(&map, port, 16383);
    let a = Spawned::start(&flags);
    let mut c = redis_at(a.addr);
    let now = clock(&mut c);
    let users: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    for u in &users {
        add(&mut c, &event(u, "t", now, 1.0)).unwrap();
    }
    // The first events are in the snapshot, the second ones only in the log.
    assert_eq!(q(&mut c, &["SAVE"]).map(|_| ()), Ok(()));
    for u in &users {
        add(&mut c, &event(u, "t", now, 1.0)).unwrap();
    }
    let slots: Vec<i64> = users
        .iter()
        .map(|u| q_i64(&mut c, &["CLUSTER", "KEYSLOT", u]))
        .collect();
    kill9(a.pid());
    drop(a);

    // Half the slots move to node b: their users are b's now.
    write_map(&map, port, 8191);
    let a = Spawned::start(&flags);
    let mut c = redis_at(a.addr);
    wait_loaded(&mut c);
    let mine = slots.iter().filter(|&&s| s <= 8191).count() as i64;
    assert!(mine > 0 && mine < users.len() as i64, "{slots:?}");
    assert_eq!(
        q_i64(&mut c, &["EVT.TOTAL", "LOCAL"]),
        2 * mine,
        "two events of each user this node serves, none of b's"
    );
    for (u, &slot) in users.iter().zip(&slots).filter(|(_, s)| **s <= 8191) {
        assert_eq!(q_i64(&mut c, &["EVT.USER", u]), 2, "{u} (slot {slot})");
    }
}
