//! Asking the other nodes for their shares: in parallel, over a few long-lived
//! connections, all within one deadline.
//!
//! Each serving thread keeps one *link* per other node: a task on the thread's own
//! runtime owning one connection. Shares asked by that thread's clients queue on the
//! link, go out pipelined — every request waiting is written with one write — and the
//! replies come back in order, so fifty clients asking `EVT.TOTAL` at once cost the
//! other node a handful of reads and writes, not fifty connections. A thread only
//! uses its own links: a socket is best driven by the runtime that registered it,
//! and connections to a node stay bounded by the serving threads.
//!
//! A connection is opened with `HELLO 3` (with `AUTH` when a password is set: every
//! node of a cluster shares it), so replies come back typed — doubles as doubles,
//! pairs as pairs — and decode into the same [`Reply`] values this node builds for its
//! own share.
//!
//! Nothing here blocks a thread: the caller awaits a reply while its runtime goes on
//! serving other connections. A node that refuses, errs or has not answered by the
//! deadline is named in the error; there is no partial answer. Every share request is
//! a read at a given instant (or an idempotent `EVT.CLOCK SET`), so a request caught
//! by a connection that closed under it is sent once more on a fresh one.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::thread::ThreadId;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::map::Node;
use crate::protocol::{Reply, decode_reply, encode_request};

/// Share requests that may wait on one link (one serving thread's connection to
/// one node). Each client connection has at most one cluster-wide query in flight,
/// so this is only reached with as many clients on one thread all asking at once;
/// beyond it a query fails at once instead of queueing without bound.
pub const MAX_QUEUED_PER_LINK: usize = 10_000;

/// Largest reply accepted from another node: a share is a count, a series or a
/// top-k list, far below this; a node sending more is treated as failing.
pub const MAX_SHARE_BYTES: usize = 64 * 1024 * 1024;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Why a node gave no share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Connecting, writing or reading failed.
    Io(String),
    /// It closed the connection before answering.
    Closed,
    /// It refused the cluster's `HELLO` (wrong password, ...).
    Refused(String),
    /// It answered something that is not RESP3, or too much of it.
    Garbled(String),
    /// No answer by the deadline.
    Timeout(Duration),
    /// Too many queries already wait for it on this thread.
    Busy,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => f.write_str(e),
            Failure::Closed => f.write_str("closed the connection without answering"),
            Failure::Refused(why) => write!(f, "refused the cluster's login: {why}"),
            Failure::Garbled(why) => write!(f, "answered garbage: {why}"),
            Failure::Timeout(d) => write!(f, "did not answer within {} ms", d.as_millis()),
            Failure::Busy => write!(
                f,
                "has {MAX_QUEUED_PER_LINK} queries waiting for it from this thread already"
            ),
        }
    }
}

impl Failure {
    /// Whether the connection failed under the request (worth one more try on a
    /// fresh connection), rather than the node answering badly or too late.
    fn broken(&self) -> bool {
        matches!(self, Failure::Io(_) | Failure::Closed)
    }
}

/// One connection to another node.
#[derive(Debug)]
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    /// Connects to `node` and logs in with `HELLO 3 [AUTH default <password>]`.
    async fn open(node: &Node, password: Option<&str>) -> Result<Peer, Failure> {
        let stream = TcpStream::connect((node.host.as_str(), node.port))
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        // Requests are small writes awaiting their replies: Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let mut peer = Peer {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
        };
        let hello = match password {
            Some(p) => encode_request(&["HELLO", "3", "AUTH", "default", p]),
            None => encode_request(&["HELLO", "3"]),
        };
        peer.write(&hello).await?;
        if let Reply::Error(e) = peer.read().await? {
            return Err(Failure::Refused(e.to_string()));
        }
        Ok(peer)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| Failure::Io(e.to_string()))
    }

    /// Reads one reply. Cancel-safe: bytes read stay in the buffer.
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
                Err(e) => return Err(Failure::Io(e.to_string())),
            }
        }
    }
}

/// One share request on its way through a link.
#[derive(Debug)]
struct Job {
    request: Arc<[u8]>,
    /// The cluster's password when the query was asked (a connection opened for it
    /// logs in with it).
    password: Option<Arc<str>>,
    reply: oneshot::Sender<Result<Reply, Failure>>,
    /// Whether it was sent once already, on a connection that broke.
    retried: bool,
}

/// A sent job waiting for its reply.
struct Sent {
    job: Job,
    at: Instant,
}

/// The task owning one thread's connection to one node: it writes the queued
/// requests, pipelined, and hands out the replies in order.
async fn link(node: Node, mut jobs: mpsc::Receiver<Job>, timeout: Duration) {
    let mut conn: Option<Peer> = None;
    let mut queued: Vec<Job> = Vec::new();
    let mut sent: VecDeque<Sent> = VecDeque::new();
    loop {
        while let Ok(job) = jobs.try_recv() {
            queued.push(job);
        }
        if !queued.is_empty() {
            let batch = std::mem::take(&mut queued);
            send(&node, &mut conn, batch, &mut sent, timeout).await;
        }
        let Some(oldest) = sent.front().map(|s| s.at) else {
            match jobs.recv().await {
                Some(job) => queued.push(job),
                // The pool is gone: the server is stopping.
                None => return,
            }
            continue;
        };
        let Some(peer) = conn.as_mut() else {
            // Cannot happen: jobs are only sent on a connection.
            fail_all(&mut sent, &Failure::Closed, &mut queued);
            continue;
        };
        tokio::select! {
            read = peer.read() => match read {
                Ok(reply) => {
                    if let Some(s) = sent.pop_front() {
                        let _ = s.job.reply.send(Ok(reply));
                    }
                }
                Err(f) => {
                    conn = None;
                    fail_all(&mut sent, &f, &mut queued);
                }
            },
            job = jobs.recv() => match job {
                Some(job) => queued.push(job),
                None => return,
            },
            _ = tokio::time::sleep_until(oldest + timeout) => {
                // The node holds a request past the deadline: its connection is out
                // of step for good. Whoever asked has given up by now.
                conn = None;
                fail_all(&mut sent, &Failure::Timeout(timeout), &mut queued);
            }
        }
    }
}

/// Writes `batch` on the connection (opening it first if needed), pipelined.
async fn send(
    node: &Node,
    conn: &mut Option<Peer>,
    batch: Vec<Job>,
    sent: &mut VecDeque<Sent>,
    timeout: Duration,
) {
    let bytes: Vec<u8> = batch
        .iter()
        .flat_map(|j| j.request.iter().copied())
        .collect();
    let attempt = async {
        if conn.is_none() {
            let password = batch.iter().find_map(|j| j.password.clone());
            *conn = Some(Peer::open(node, password.as_deref()).await?);
        }
        match conn.as_mut() {
            Some(peer) => peer.write(&bytes).await,
            None => Err(Failure::Closed),
        }
    };
    let outcome = match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout(timeout)),
    };
    match outcome {
        Ok(()) => {
            let at = Instant::now();
            sent.extend(batch.into_iter().map(|job| Sent { job, at }));
        }
        Err(f) => {
            *conn = None;
            for job in batch {
                let _ = job.reply.send(Err(f.clone()));
            }
        }
    }
}

/// Fails every sent job with `f`, except those worth one more try on a fresh
/// connection, which go back to `queued`.
fn fail_all(sent: &mut VecDeque<Sent>, f: &Failure, queued: &mut Vec<Job>) {
    for Sent { mut job, .. } in sent.drain(..) {
        if f.broken() && !job.retried {
            job.retried = true;
            queued.push(job);
        } else {
            let _ = job.reply.send(Err(f.clone()));
        }
    }
}

/// Every serving thread's links to the other nodes.
#[derive(Debug, Default)]
pub struct Pool {
    // `std`'s lock: held to look a link up or add one, never across an `.await`; a
    // poisoned map is still a map of live links.
    links: Mutex<HashMap<(ThreadId, usize), mpsc::Sender<Job>>>,
}

impl Pool {
    /// This thread's link to node `index`, started on this thread's runtime if it
    /// has none (or its task has ended).
    fn link(&self, index: usize, node: &Node, timeout: Duration) -> mpsc::Sender<Job> {
        let key = (std::thread::current().id(), index);
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = links.get(&key)
            && !tx.is_closed()
        {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(MAX_QUEUED_PER_LINK);
        tokio::spawn(link(node.clone(), rx, timeout));
        links.insert(key, tx.clone());
        tx
    }

    /// Node `index`'s reply to `request` (an encoded command) by `deadline`.
    pub async fn ask(
        &self,
        index: usize,
        node: &Node,
        password: Option<Arc<str>>,
        request: Arc<[u8]>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request,
            password,
            reply,
            retried: false,
        };
        match self.link(index, node, timeout).try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(Failure::Busy),
            // The link's task ended (its runtime stopped): start another.
            Err(mpsc::error::TrySendError::Closed(job)) => {
                if self.link(index, node, timeout).try_send(job).is_err() {
                    return Err(Failure::Busy);
                }
            }
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => Err(Failure::Timeout(timeout)),
            Ok(Err(_)) => Err(Failure::Closed),
            Ok(Ok(r)) => r,
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
