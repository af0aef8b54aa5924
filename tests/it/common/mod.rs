//! What the integration tests share. Here: a real server inside the test
//! ([`TestServer`]: bound to `127.0.0.1:0`, run on its own runtime thread, stopped when
//! dropped), the real binary in a child process ([`Spawned`]), byte-level socket
//! helpers and `redis` crate helpers. In `raw`: the one raw RESP client. In `query`:
//! helpers over a `redis` connection. In `process`: programs run to completion.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use scalable_analytics::{Config, Handle, Options};

mod process;
mod query;
mod raw;

pub use process::*;
pub use query::*;
pub use raw::*;

pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the given extra flags (as on the command line).
    pub fn start(flags: &[&str]) -> TestServer {
        let config = Self::config(flags);
        let listener =
            std::net::TcpListener::bind(std::net::SocketAddr::new(config.bind, 0)).expect("bind");
        Self::serve(listener, config)
    }

    /// Starts a server on `listener`, already bound (a cluster's nodes must know each
    /// other's ports before any of them starts).
    pub fn start_on(listener: std::net::TcpListener, flags: &[&str]) -> TestServer {
        Self::serve(listener, Self::config(flags))
    }

    fn config(flags: &[&str]) -> Config {
        let mut argv = vec!["scalable-analytics", "--port", "0"];
        argv.extend_from_slice(flags);
        Config::try_parse_from(argv).expect("valid test flags")
    }

    fn serve(listener: std::net::TcpListener, config: Config) -> TestServer {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let handle = match scalable_analytics::build(&listener, config, Options::default())
                {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                tx.send(Ok(handle.clone())).expect("send handle");
                let _ = scalable_analytics::serve(listener, handle, async move {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        let handle = match rx.recv().expect("server started") {
            Ok(h) => h,
            Err(e) => panic!("the server did not start: {e}"),
        };
        TestServer {
            addr: handle.local_addr(),
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub fn url_resp3(&self) -> String {
        format!("redis://{}/?protocol=resp3", self.addr)
    }

    /// A `redis` crate connection (RESP2).
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect")
    }

    /// A `redis` crate connection speaking RESP3.
    pub fn client3(&self) -> redis::Connection {
        redis::Client::open(self.url_resp3())
            .and_then(|c| c.get_connection())
            .expect("connect resp3")
    }

    /// A raw socket with a read timeout.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect raw");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.set_nodelay(true).ok();
        s
    }

    /// Stops the server and waits for it to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until the server thread has ended (after SHUTDOWN), up to `timeout`.
    pub fn wait_stopped(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Sends `bytes`, then reads until `expect_len` bytes arrived or the peer closed.
pub fn send_recv(s: &mut TcpStream, bytes: &[u8], expect_len: usize) -> Vec<u8> {
    s.write_all(bytes).expect("write");
    read_n(s, expect_len)
}

/// Reads until `n` bytes arrived, the peer closed, or the read timed out.
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while out.len() < n {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
        }
    }
    out
}

/// The value of `field` in an INFO text.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

/// A seed-like event JSON.
pub fn event(user: &str, ty: &str, ts: i64, value: f64) -> String {
    format!(
        r#"{{"user_id":"{user}","event_type":"{ty}","timestamp":{ts},"attributes":{{"item_id":"item456","value":{value}}}}}"#
    )
}

// ---------------------------------------------------------------------------------
// More helpers, shared by the protocol, window and tools tests.
// ---------------------------------------------------------------------------------

/// The RESP multibulk encoding of a command, as a client library sends it.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// [`resp`] for text arguments.
pub fn resp_str(args: &[&str]) -> Vec<u8> {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    resp(&bytes)
}

/// Reads until the peer closes the connection. The flag says whether it did close
/// (`false`: the read timed out with the connection still open).
pub fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (out, false);
            }
            // A reset is a close too (the server closed with our bytes unread).
            Err(_) => return (out, true),
        }
    }
}

/// Writes `bytes` from a second thread while reading `expect_len` bytes here, so
/// that neither side can block the other however large the pipeline is.
pub fn send_recv_concurrent(s: &mut TcpStream, bytes: Vec<u8>, expect_len: usize) -> Vec<u8> {
    let mut w = s.try_clone().expect("clone socket");
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&bytes);
    });
    let out = read_n(s, expect_len);
    writer.join().expect("writer thread");
    out
}

/// A server error as `"<CODE> <detail>"`, e.g. `"ERR syntax error"`.
pub fn err_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("not a server error: {e}"),
    }
}

/// Runs `cmd`, which must fail with a server error, and returns that error's text.
pub fn query_err(con: &mut redis::Connection, cmd: &redis::Cmd) -> String {
    match cmd.query::<redis::Value>(con) {
        Ok(v) => panic!("expected an error reply, got {v:?}"),
        Err(e) => err_text(&e),
    }
}

/// The whole `INFO` text (or one section).
pub fn info(con: &mut redis::Connection, section: Option<&str>) -> String {
    let mut c = redis::cmd("INFO");
    if let Some(s) = section {
        c.arg(s);
    }
    c.query::<String>(con).expect("INFO")
}

/// A numeric INFO field.
pub fn info_i64(con: &mut redis::Connection, field: &str) -> i64 {
    num_field(&info(con, None), field)
}

/// Polls INFO until `field` has the value `want`, for up to `timeout`; returns the
/// last value seen when it never does.
pub fn wait_info(
    con: &mut redis::Connection,
    field: &str,
    want: &str,
    timeout: Duration,
) -> Result<(), Option<String>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let seen = info_field(&info(con, None), field);
        if seen.as_deref() == Some(want) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(seen);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The server's `now` (`EVT.CLOCK`).
pub fn clock(con: &mut redis::Connection) -> i64 {
    redis::cmd("EVT.CLOCK").query(con).expect("EVT.CLOCK")
}

/// Seconds since the epoch by the system clock.
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time after 1970")
        .as_secs() as i64
}

/// `EVT.ADD json`, the reply as `Ok(())` or the error text.
pub fn add(con: &mut redis::Connection, json: &str) -> Result<(), String> {
    redis::cmd("EVT.ADD")
        .arg(json)
        .query::<()>(con)
        .map_err(|e| err_text(&e))
}

/// An event without attributes.
pub fn bare_event(user: &str, ty: &str, ts: i64) -> String {
    format!(r#"{{"user_id":"{user}","event_type":"{ty}","timestamp":{ts}}}"#)
}

/// The real `scalable-analytics` binary in a child process, for tests whose failure
/// mode could take the test process down with it (runaway memory, a stuck worker):
/// the child runs under an address-space limit, so such a bug ends the child and
/// fails the test instead of exhausting the machine.
pub struct Spawned {
    child: std::process::Child,
    pub addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// Set once the server's stderr reached its end (the process exited).
    log_done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Address-space limit for [`Spawned`] servers, in KiB (the server needs ~200 MB).
pub const SPAWNED_MEMORY_LIMIT_KB: u64 = 1024 * 1024;

impl Spawned {
    /// Starts the binary on `127.0.0.1:0` with `flags`, and waits for its
    /// `listening on` line.
    pub fn start(flags: &[&str]) -> Spawned {
        Spawned::spawn(None, flags, "")
    }

    /// [`Spawned::start`] with a configuration file as the first argument.
    pub fn start_with_file(file: Option<&str>, flags: &[&str]) -> Spawned {
        Spawned::spawn(file, flags, "")
    }

    /// [`Spawned::start`] under a file-size limit of `bytes` (`ulimit -f`, rounded
    /// down to 512-byte blocks): writes past it fail with `EFBIG`, a full disk
    /// without root.
    pub fn start_with_file_limit(flags: &[&str], bytes: u64) -> Spawned {
        Spawned::spawn(
            None,
            flags,
            &format!(" && ulimit -f {}", (bytes / 512).max(1)),
        )
    }

    fn spawn(file: Option<&str>, flags: &[&str], more_limits: &str) -> Spawned {
        use std::io::BufRead;
        let bin = env!("CARGO_BIN_EXE_scalable-analytics");
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -v {SPAWNED_MEMORY_LIMIT_KB}{more_limits} && exec \"$0\" \"$@\""
            ))
            .arg(bin)
            .args(file)
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(if flags.contains(&"--log-level") {
                &[][..]
            } else {
                &["--log-level", "info"][..]
            })
            .args(flags)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn scalable-analytics");
        let stderr = child.stderr.take().expect("stderr pipe");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        let log_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = log_done.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
                // Announced after the line is in the log, so `log()` has it.
                if let Some(addr) = line.split("listening on ").nth(1)
                    && let Ok(addr) = addr.trim().parse::<SocketAddr>()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not say where it listens:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Spawned {
            child,
            addr,
            log,
            log_done,
        }
    }

    /// The whole log of a server that has exited (waits up to `timeout` for the
    /// exit and for the last line).
    pub fn final_log(&mut self, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        self.wait_exit(timeout).expect("the server exits");
        while !self.log_done.load(std::sync::atomic::Ordering::Acquire) {
            assert!(std::time::Instant::now() < deadline, "the log never ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.log()
    }

    /// A raw socket with a 10 s read timeout.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to spawned server");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.set_nodelay(true).ok();
        s
    }

    /// The child's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether a fresh connection gets `+PONG` for `PING`.
    pub fn pings(&self) -> bool {
        pings(self.addr)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until what arrived ends with `suffix` (or the read times out / peer closes).
pub fn read_until_suffix(s: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(suffix) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
        }
    }
    out
}

/// Runs the binary with `args` to completion (killed after `timeout`): the exit status
/// (`None` when it had to be killed) and its output, stdout then stderr.
pub fn run_binary(args: &[&str], timeout: Duration) -> (Option<std::process::ExitStatus>, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scalable-analytics"));
    cmd.args(args).env_remove("RUST_LOG");
    let done = run_program(cmd, None, timeout);
    (done.status, format!("{}{}", done.stdout, done.stderr))
}
