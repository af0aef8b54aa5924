//! Asking the other nodes for their shares: in parallel, each over a pooled
//! connection, all within one deadline.
//!
//! A connection to another node is opened with `HELLO 3` (with `AUTH` when a password
//! is set: every node of a cluster shares it), so replies come back typed — doubles
//! as doubles, pairs as pairs — and decode into the same [`Reply`] values this node
//! builds for its own share. After a good exchange the connection goes back to an
//! idle list, tagged with the thread that used it: each serving thread runs its own
//! single-threaded runtime, and a socket is best driven by the runtime that
//! registered it, so a thread only reuses its own connections.
//!
//! Nothing here blocks a thread: the caller awaits the returned future while its
//! runtime goes on serving other connections. A node that refuses, errs or has not
//! answered by the deadline is named in the error; there is no partial answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::thread::ThreadId;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::map::Node;
use crate::protocol::{Reply, decode_reply, encode_request};

/// Idle connections kept per other node (over all serving threads); more are closed
/// after use. Each in-flight share takes its own connection, so this bounds only
/// what a burst leaves behind.
pub const MAX_IDLE_PER_NODE: usize = 32;

/// Largest reply accepted from another node: a share is a count, a series or a
/// top-k list, far below this; a node sending more is treated as failing.
pub const MAX_SHARE_BYTES: usize = 64 * 1024 * 1024;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Why a node gave no share.
#[derive(Debug)]
pub enum Failure {
    /// Connecting, writing or reading failed.
    Io(std::io::Error),
    /// It closed the connection before answering.
    Closed,
    /// It refused the cluster's `HELLO` (wrong password, ...).
    Refused(String),
    /// It answered something that is not RESP3, or too much of it.
    Garbled(String),
    /// No answer by the deadline.
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "{e}"),
            Failure::Closed => f.write_str("closed the connection without answering"),
            Failure::Refused(why) => write!(f, "refused the cluster's login: {why}"),
            Failure::Garbled(why) => write!(f, "answered garbage: {why}"),
            Failure::Timeout(d) => write!(f, "did not answer within {} ms", d.as_millis()),
        }
    }
}

/// One connection to another node.
#[derive(Debug)]
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    /// Connects to `node` and sends `HELLO 3 [AUTH default <password>]` followed by
    /// `request` in one write; returns the connection and the request's reply.
    async fn open(
        node: &Node,
        password: Option<&str>,
        request: &[u8],
    ) -> Result<(Peer, Reply), Failure> {
        let stream = TcpStream::connect((node.host.as_str(), node.port))
            .await
            .map_err(Failure::Io)?;
        // Requests are single small writes awaiting their reply: Nagle would only
        // delay them.
        let _ = stream.set_nodelay(true);
        let mut peer = Peer {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
        };
        let hello = match password {
            Some(p) => encode_request(&["HELLO", "3", "AUTH", "default", p]),
            None => encode_request(&["HELLO", "3"]),
        };
        peer.stream
            .write_all(&[hello.as_slice(), request].concat())
            .await
            .map_err(Failure::Io)?;
        if let Reply::Error(e) = peer.read().await? {
            return Err(Failure::Refused(e.to_string()));
        }
        let reply = peer.read().await?;
        Ok((peer, reply))
    }

    /// Sends `request` and reads its reply.
    async fn call(&mut self, request: &[u8]) -> Result<Reply, Failure> {
        self.stream.write_all(request).await.map_err(Failure::Io)?;
        self.read().await
    }

    /// Reads one reply.
    async fn read(&mut self) -> Result<Reply, Failure> {
        loop {
            if !self.buf.is_empty()
                && let Some((reply, used)) = decode_reply(&self.buf).map_err(Failure::Garbled)?
            {
                self.buf.advance(used);
                return Ok(reply);
            }
            if self.buf.len() > MAX_SHARE_BYTES {
                return Err(Failure::Garbled(format!(
                    "a reply of more than {MAX_SHARE_BYTES} bytes"
                )));
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err(Failure::Closed),
                Ok(_) => {}
                Err(e) => return Err(Failure::Io(e)),
            }
        }
    }
}

/// Idle connections to the other nodes, one list per node.
#[derive(Debug)]
pub struct Pool {
    idle: Vec<Mutex<Vec<(ThreadId, Peer)>>>,
}

impl Pool {
    /// A pool for a map of `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Pool {
            idle: (0..nodes).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    // The lists' locks are `std`'s: held for a push or a pop, never across an
    // `.await`; a poisoned list is still a list of connections.
    fn take(&self, node: usize) -> Option<Peer> {
        let me = std::thread::current().id();
        let mut idle = self
            .idle
            .get(node)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let pos = idle.iter().rposition(|(t, _)| *t == me)?;
        Some(idle.swap_remove(pos).1)
    }

    fn give_back(&self, node: usize, peer: Peer) {
        if !peer.buf.is_empty() {
            // Bytes past the reply: the exchange is out of step; never reuse it.
            return;
        }
        if let Some(list) = self.idle.get(node) {
            let mut idle = list.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_PER_NODE {
                idle.push((std::thread::current().id(), peer));
            }
        }
    }

    /// Node `index`'s reply to `request` (an encoded command) by `deadline`.
    pub async fn ask(
        &self,
        index: usize,
        node: &Node,
        password: Option<&str>,
        request: &[u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let exchange = async {
            if let Some(mut peer) = self.take(index) {
                match peer.call(request).await {
                    Ok(reply) => return Ok((peer, reply)),
                    // An idle connection the node has closed since (it restarted, or
                    // its `timeout` passed): try once on a fresh one.
                    Err(Failure::Io(_) | Failure::Closed) => {}
                    Err(other) => return Err(other),
                }
            }
            Peer::open(node, password, request).await
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => Err(Failure::Timeout(timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok((peer, reply))) => {
                self.give_back(index, peer);
                Ok(reply)
            }
        }
    }
}

/// A future to await among others.
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs `futures` concurrently on the calling task and returns their outputs in
/// order: no task is spawned, so dropping the result drops every one of them.
pub async fn join_all<T>(futures: Vec<Boxed<'_, T>>) -> Vec<T> {
    let mut futures: Vec<Option<Boxed<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, done) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *done = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
