//! A real server inside the test: bound to `127.0.0.1:0`, run on its own runtime
//! thread, stopped when the `TestServer` is dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use scalable_analytics::config::Config;
use scalable_analytics::server::{self, Handle, Options};

pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the given extra flags (as on the command line).
    pub fn start(flags: &[&str]) -> TestServer {
        let mut argv = vec!["scalable-analytics", "--port", "0"];
        argv.extend_from_slice(flags);
        let config = Config::try_parse_from(argv).expect("valid test flags");
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let addr = std::net::SocketAddr::new(config.bind, 0);
                let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
                let handle = server::build(&listener, config, Options::default()).expect("build");
                tx.send(handle.clone()).expect("send handle");
                server::serve(listener, handle, async move {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        let handle = rx.recv().expect("server started");
        TestServer {
            addr: handle.local_addr,
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

/// Reads until the peer closes (or times out).
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    read_n(s, usize::MAX)
}

/// The value of `field` in an INFO text.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A seed-like event JSON.
pub fn event(user: &str, ty: &str, ts: i64, value: f64) -> String {
    format!(
        r#"{{"user_id":"{user}","event_type":"{ty}","timestamp":{ts},"attributes":{{"item_id":"item456","value":{value}}}}}"#
    )
}
