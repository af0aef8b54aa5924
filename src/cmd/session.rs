//! A connection's command-layer state and the dispatcher that runs its requests.
//!
//! The connection hands [`Session::request`] every framed request in order and calls
//! [`Session::flush`] when its read buffer holds no more complete requests; replies
//! are encoded into the connection's write buffer. Requests that may wait
//! ([`Cmd::batched_event`](super::Cmd::batched_event): pipelined `EVT.ADD`s) gather in
//! an [`ingest::Batch`] and are admitted together — before any other command runs,
//! so replies keep the order of requests.
//!
//! With `appendfsync always`, events are counted only once the log has them on
//! disk: the session answers [`Flow::Wait`], the connection awaits
//! [`Session::ticket`] (other connections of the thread keep running), then calls
//! [`Session::resume`], which writes the held replies; only then does the pipeline
//! go on.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::{After, CommandId, Ctx, Deferred, lookup};
use crate::clients::ClientInfo;
use crate::error::{ErrorKind, ReplyError};
use crate::ingest::{self, Batch};
use crate::persist::log::Ticket;
use crate::protocol::{self, Args, Reply, Resp};
use crate::shared::Shared;

/// A connection's own state: protocol version, name, login.
#[derive(Debug)]
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    pub resp: Resp,
    /// Whether the client logged in: true from the start when no password is set,
    /// else after a successful AUTH or HELLO ... AUTH. While no password is set,
    /// every client may run commands whatever this says.
    pub authenticated: bool,
    /// Failed AUTH / HELLO ... AUTH attempts on this connection.
    pub auth_failures: u32,
}

/// The first failed login delays the connection's next command this long; each
/// further failure doubles it, up to [`AUTH_DELAY_MAX`].
pub const AUTH_DELAY_FIRST: Duration = Duration::from_millis(10);
/// The longest delay after a failed login.
pub const AUTH_DELAY_MAX: Duration = Duration::from_secs(1);
/// Failed logins after which the connection is closed: a password guesser gets this
/// many tries per connection, spread over several seconds, instead of millions per
/// second; a person who mistypes once waits 10 ms.
pub const MAX_AUTH_FAILURES: u32 = 10;

/// How long to hold a connection after its `failures`-th failed login.
fn auth_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    AUTH_DELAY_FIRST
        .saturating_mul(1 << doublings)
        .min(AUTH_DELAY_MAX)
}

impl ClientState {
    /// Switches the protocol version (HELLO, RESET).
    pub fn set_resp(&mut self, resp: Resp) {
        self.resp = resp;
        let v = if resp == Resp::V3 { 3 } else { 2 };
        self.info.resp.store(v, Ordering::Relaxed);
    }
}

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Write the replies so far, then close (QUIT).
    Close,
    /// Write the replies so far, close, and stop the server (SHUTDOWN).
    Shutdown,
    /// Close without writing anything: the peer is not speaking RESP (a browser's
    /// `POST` or `Host:` line reached us).
    Drop,
    /// Write the replies so far, then wait this long before the next request (a
    /// failed login).
    Throttle(Duration),
    /// Write the replies so far, wait for [`Session::ticket`], call
    /// [`Session::resume`], then go on with the pipeline. `again`: the request just
    /// handed over was not run (a batch before it had to wait first) — hand it over
    /// again.
    Wait {
        again: bool,
    },
}

/// Replies held until the log has their events on disk.
enum Waiting {
    /// Pipelined events: one reply each.
    Batch {
        pending: ingest::Pending,
        id: Option<CommandId>,
        started: Instant,
    },
    /// One command's reply.
    Command {
        deferred: Deferred,
        id: CommandId,
        started: Instant,
    },
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waiting::Batch { id, .. } => write!(f, "Waiting::Batch({id:?})"),
            Waiting::Command { id, .. } => write!(f, "Waiting::Command({id:?})"),
        }
    }
}

/// A request that cannot run before the batch ahead of it is durable.
const AGAIN: Flow = Flow::Wait { again: true };

/// A connection's command-layer state; see the module doc.
#[derive(Debug)]
pub struct Session {
    client: ClientState,
    batch: Batch,
    replies: Vec<Reply>,
    /// The batched command not yet recorded as the client's last (`CLIENT LIST`).
    batched_last: Option<CommandId>,
    /// Replies waiting for the log (`appendfsync always`).
    waiting: Option<Waiting>,
}

/// A browser talking HTTP to us: `POST / HTTP/1.1` or a `Host:` header line.
pub fn cross_protocol(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
}

/// Whether the command called `name` may run before login (`no_auth` in its spec).
fn allowed_before_auth(name: &[u8]) -> bool {
    lookup(name).is_some_and(|e| e.spec().has_flag("no_auth"))
}

impl Session {
    /// The state of a new connection.
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Self {
        Session {
            client: ClientState {
                info,
                resp: Resp::V2,
                authenticated,
                auth_failures: 0,
            },
            batch: Batch::default(),
            replies: Vec::new(),
            batched_last: None,
            waiting: None,
        }
    }

    /// The client's entry in the client list.
    pub fn info(&self) -> &Arc<ClientInfo> {
        &self.client.info
    }

    /// Gives back scratch space that grew for one large request.
    pub fn shrink(&mut self) {
        self.replies = Vec::new();
        self.batch = Batch::default();
    }

    /// Whether the client may run commands: it logged in, or no password is set.
    pub fn authenticated(&self, shared: &Shared) -> bool {
        self.client.authenticated || !shared.settings.has_password()
    }

    /// Runs one request. `args` are slices of `buf` — the connection's whole read
    /// buffer, which must stay unchanged until [`Session::flush`] — or, when `inline`,
    /// of the parser's scratch space (then the request never waits in the batch).
    pub fn request(
        &mut self,
        shared: &Shared,
        buf: &[u8],
        args: Args<'_>,
        inline: bool,
        out: &mut BytesMut,
    ) -> Flow {
        let name = args.get(0).unwrap_or_default();
        if cross_protocol(name) {
            if self.flush(shared, buf, out) != Flow::Continue {
                return AGAIN;
            }
            return Flow::Drop;
        }
        if !self.authenticated(shared) && !allowed_before_auth(name) {
            let e = ReplyError::new(ErrorKind::NoAuth, "Authentication required.");
            return self.refuse(shared, buf, None, e, out);
        }
        let cmd = match super::parse(args, shared.store.window()) {
            Ok(cmd) => cmd,
            Err(refused) => return self.refuse(shared, buf, refused.id, refused.error, out),
        };
        if shared.log.loading() && !cmd.id().spec().has_flag("loading") {
            let e = ReplyError::new(ErrorKind::Loading, "Redis is loading the dataset in memory");
            return self.refuse(shared, buf, Some(cmd.id()), e, out);
        }
        if !inline && let Some(json) = cmd.batched_event() {
            self.batch.push(buf, json);
            self.batched_last = Some(cmd.id());
            return Flow::Continue;
        }
        if self.flush(shared, buf, out) != Flow::Continue {
            return AGAIN;
        }
        self.note_command(shared, cmd.id());
        let (was_in, failures) = (self.client.authenticated, self.client.auth_failures);
        let id = cmd.id();
        let mut ctx = Ctx {
            shared,
            client: &mut self.client,
            after: After::Continue,
            deferred: None,
        };
        let started = Instant::now();
        let reply = cmd.run(&mut ctx);
        if let Some(deferred) = ctx.deferred.take() {
            self.waiting = Some(Waiting::Command {
                deferred,
                id,
                started,
            });
            return Flow::Wait { again: false };
        }
        let failed = u64::from(matches!(reply, Err(_) | Ok(Reply::Error(_))));
        shared
            .stats
            .commands
            .record(id as usize, 1, started.elapsed(), failed);
        let after = ctx.after;
        if after == After::Shutdown {
            return Flow::Shutdown;
        }
        self.replies.push(reply.unwrap_or_else(Reply::Error));
        self.encode(shared, out);
        if self.client.authenticated != was_in {
            shared
                .clients
                .set_authenticated(&self.client.info, self.client.authenticated);
        }
        match after {
            After::Close => Flow::Close,
            After::Shutdown => Flow::Shutdown,
            After::Continue if self.client.auth_failures > failures => {
                if self.client.auth_failures >= MAX_AUTH_FAILURES {
                    if let Some(suppressed) = shared.may_log() {
                        tracing::warn!(peer = %self.client.info.addr, suppressed,
                            failures = self.client.auth_failures,
                            "too many failed logins; connection closed");
                    }
                    Flow::Close
                } else {
                    Flow::Throttle(auth_delay(self.client.auth_failures))
                }
            }
            After::Continue => Flow::Continue,
        }
    }

    /// Answers a request refused before it runs (of command `id`, if known), after
    /// the batch before it.
    fn refuse(
        &mut self,
        shared: &Shared,
        buf: &[u8],
        id: Option<CommandId>,
        e: ReplyError,
        out: &mut BytesMut,
    ) -> Flow {
        if self.flush(shared, buf, out) != Flow::Continue {
            return AGAIN;
        }
        if let Some(id) = id {
            shared.stats.commands.reject(id as usize);
        }
        self.reply_error(shared, e, out);
        Flow::Continue
    }

    /// Admits the batched events and encodes their replies. The connection calls it
    /// once its read buffer holds no complete request, before it moves the buffer.
    /// [`Flow::Wait`] when the replies wait for the log.
    pub fn flush(&mut self, shared: &Shared, buf: &[u8], out: &mut BytesMut) -> Flow {
        if self.batch.is_empty() {
            return Flow::Continue;
        }
        let first = self.replies.len();
        let started = Instant::now();
        let pending = self
            .batch
            .flush(shared, buf, &self.client.info, &mut self.replies);
        if let Some(pending) = pending {
            self.waiting = Some(Waiting::Batch {
                pending,
                id: self.batched_last.take(),
                started,
            });
            return Flow::Wait { again: false };
        }
        let id = self.batched_last.take();
        self.record_batch(shared, first, started, id);
        self.encode(shared, out);
        Flow::Continue
    }

    /// Counts a batch's replies (from `first` on) in INFO's per-command figures.
    fn record_batch(&self, shared: &Shared, first: usize, started: Instant, id: Option<CommandId>) {
        let took = started.elapsed();
        if let Some(id) = id {
            let done = self.replies.get(first..).unwrap_or_default();
            let failed = done.iter().filter(|r| matches!(r, Reply::Error(_))).count();
            shared
                .stats
                .commands
                .record(id as usize, done.len() as u64, took, failed as u64);
            self.note_command(shared, id);
        }
    }

    /// What the held replies wait for ([`Flow::Wait`]).
    pub fn ticket(&self) -> Option<Ticket> {
        match &self.waiting {
            Some(Waiting::Batch { pending, .. }) => Some(pending.ticket().clone()),
            Some(Waiting::Command { deferred, .. }) => Some(deferred.ticket.clone()),
            None => None,
        }
    }

    /// Encodes the held replies once their ticket is fulfilled.
    pub fn resume(&mut self, shared: &Shared, out: &mut BytesMut) {
        match self.waiting.take() {
            Some(Waiting::Batch {
                pending,
                id,
                started,
            }) => {
                let first = self.replies.len();
                pending.finish(shared, &self.client.info, &mut self.replies);
                self.record_batch(shared, first, started, id);
            }
            Some(Waiting::Command {
                deferred,
                id,
                started,
            }) => {
                let reply = (deferred.finish)(shared, &self.client.info);
                let failed = u64::from(matches!(reply, Reply::Error(_)));
                shared
                    .stats
                    .commands
                    .record(id as usize, 1, started.elapsed(), failed);
                self.replies.push(reply);
            }
            None => return,
        }
        self.encode(shared, out);
    }

    /// Answers with an error outside any command (a protocol error, NOAUTH).
    pub fn reply_error(&mut self, shared: &Shared, e: ReplyError, out: &mut BytesMut) {
        self.replies.push(Reply::Error(e));
        self.encode(shared, out);
    }

    /// Records `id` as the client's current command (`CLIENT LIST`: `cmd=`, `idle=`).
    fn note_command(&self, shared: &Shared, id: CommandId) {
        let info = &self.client.info;
        info.last_active_ms
            .store(shared.uptime_ms(), Ordering::Relaxed);
        info.last_cmd.store(id as usize, Ordering::Relaxed);
    }

    /// Encodes the pending replies in the client's protocol, counting errors by kind.
    fn encode(&mut self, shared: &Shared, out: &mut BytesMut) {
        for reply in self.replies.drain(..) {
            if let Reply::Error(e) = &reply {
                shared.stats.count_error(e.kind);
            }
            protocol::encode(&reply, self.client.resp, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_delays_double_up_to_the_cap() {
        assert_eq!(auth_delay(1), Duration::from_millis(10));
        assert_eq!(auth_delay(2), Duration::from_millis(20));
        assert_eq!(auth_delay(4), Duration::from_millis(80));
        assert_eq!(auth_delay(9), AUTH_DELAY_MAX);
        assert_eq!(auth_delay(u32::MAX), AUTH_DELAY_MAX);
    }

    #[test]
    fn cross_protocol_words() {
        assert!(cross_protocol(b"POST"));
        assert!(cross_protocol(b"host:"));
        assert!(!cross_protocol(b"host"));
        assert!(allowed_before_auth(b"AUTH") && allowed_before_auth(b"hello"));
        assert!(allowed_before_auth(b"quit"));
        assert!(!allowed_before_auth(b"ping") && !allowed_before_auth(b"nosuch"));
    }
}
