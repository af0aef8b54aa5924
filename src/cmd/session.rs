//! A connection's command-layer state and the dispatcher that runs its requests.
//!
//! The connection hands [`Session::request`] every framed request in order and calls
//! [`Session::flush`] when its read buffer holds no more complete requests; replies
//! are encoded into the connection's write buffer. Requests that may wait
//! ([`Cmd::batched_event`](super::Cmd::batched_event): pipelined `EVT.ADD`s) gather in
//! an [`ingest::Batch`] and are admitted together — before any other command runs,
//! so replies keep the order of requests. Pipelined point queries
//! ([`Cmd::batched_read`](super::Cmd::batched_read): `EVT.USER`, `EVT.SUM`) gather
//! the same way in [`Reads`] and are answered together; a run holds one or the other.
//!
//! In cluster mode a command naming a user another node serves (its spec's `key`) is
//! answered `-MOVED` here, before it runs or is queued. A command whose reply must
//! wait for other nodes hands a future to [`Ctx::reply_later`]; the request then
//! answers [`Flow::Wait`], and the connection awaits [`Session::settle`] before it
//! hands over the next request.
//!
//! With `appendfsync always`, events are counted only once the log has them on
//! disk: the same [`Flow::Wait`] holds their replies (and the rest of the pipeline)
//! while [`Session::settle`] awaits the log's ticket; other connections of the thread
//! keep running.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use std::borrow::Cow;

use super::client_control::ReplyMode;
use super::client_state::ClientState;
use super::client_state::{MAX_AUTH_FAILURES, auth_delay};
use super::evt_add::Add;
use super::observe;
use super::reads::Reads;
use super::timing::{self, record, run_timed};
use super::tx;
use super::{After, CommandId, Ctx, Deferred, lookup};
use crate::clients::ClientInfo;
use crate::config::Settings;
use crate::error::{ErrorKind, ReplyError};
use crate::ingest::{self, Batch};
use crate::observe::MonitorFeed;
use crate::protocol::{self, Args, OwnedArgs, Reply, Resp};
use crate::shared::Shared;
use crate::stats::Stopwatch;
use crate::watch::Watching;

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
    /// `CLIENT PAUSE` holds this request back until then (or until `CLIENT UNPAUSE`):
    /// it is not consumed, and runs when the connection comes back to it.
    Postpone(Instant),
    /// Replies come later (a cluster-wide answer, or events waiting for the log
    /// under `appendfsync always`): write the replies so far, await
    /// [`Session::settle`], then go on with the pipeline. `again`: the request just
    /// handed over was not run (a batch before it had to wait first) — hand it over
    /// again.
    Wait {
        again: bool,
    },
}

/// A request that cannot run before the replies ahead of it are settled.
const AGAIN: Flow = Flow::Wait { again: true };

/// Replies on their way, and what INFO and the slow log record once they arrive.
enum Waiting {
    /// A cluster-wide answer.
    Later {
        later: super::Later,
        id: CommandId,
        started: Instant,
        args: OwnedArgs,
    },
    /// Pipelined events waiting for the log: one reply each.
    Batch {
        pending: ingest::Pending,
        id: Option<CommandId>,
        started: Stopwatch,
    },
    /// One command's reply waiting for the log.
    Command {
        deferred: Deferred,
        id: CommandId,
        started: Instant,
    },
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waiting::Later { id, .. } => write!(f, "Waiting::Later({id:?})"),
            Waiting::Batch { id, .. } => write!(f, "Waiting::Batch({id:?})"),
            Waiting::Command { id, .. } => write!(f, "Waiting::Command({id:?})"),
        }
    }
}

/// A connection's command-layer state; see the module doc.
#[derive(Debug)]
pub struct Session {
    client: ClientState,
    batch: Batch,
    /// Pipelined point queries waiting to be answered together.
    reads: Reads,
    replies: Vec<Reply>,
    /// The batched command not yet recorded as the client's last (`CLIENT LIST`).
    batched_last: Option<CommandId>,
    /// Under `CLIENT REPLY SKIP`: the SKIP's own reply was dropped, the next one is.
    skipping: bool,
    /// The command the last request named.
    last_name: super::LastName,
    /// The replies [`Flow::Wait`] waits for.
    waiting: Option<Waiting>,
}

/// Until when `CLIENT PAUSE` holds command `id` back, if it does. `CLIENT UNPAUSE`
/// is never held: it is how a pause ends early.
fn paused(shared: &Shared, id: CommandId) -> Option<Instant> {
    if !shared.pause.is_on() || id == CommandId::ClientUnpause {
        return None;
    }
    shared.pause.holds(id.spec().has_flag("write"))
}

/// Shows command `id` to the connections in `MONITOR` mode, when there are any.
pub(super) fn monitor(shared: &Shared, client: &ClientInfo, id: CommandId, args: Args<'_>) {
    if shared.monitors.active() && observe::monitored(id) {
        let max = Settings::size(&shared.settings.client_output_buffer_limit);
        shared.monitors.feed(client, args, max);
    }
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
                multi: None,
                watching: Watching::default(),
                reply_mode: ReplyMode::On,
                monitor: None,
            },
            batch: Batch::default(),
            reads: Reads::default(),
            replies: Vec::new(),
            batched_last: None,
            skipping: false,
            last_name: super::LastName::default(),
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
        self.reads = Reads::default();
    }

    /// The connection is closing: forget what it watches, stop monitoring.
    pub fn close(&mut self, shared: &Shared) {
        self.client.watching.clear(&shared.watches);
        if self.client.monitor.take().is_some() {
            shared.monitors.remove(self.client.info.id);
        }
    }

    /// The lines to stream, while the connection is in `MONITOR` mode; the
    /// connection takes it while it waits, and gives it back.
    pub fn take_monitor(&mut self) -> Option<MonitorFeed> {
        self.client.monitor.take()
    }

    /// Gives back what [`Session::take_monitor`] took.
    pub fn put_monitor(&mut self, feed: Option<MonitorFeed>) {
        self.client.monitor = feed;
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
        // The next request of a pipelined run of `EVT.ADD <json>`: what its name
        // decides (the lookup, the parse, joining the batch) the run's first request
        // settled; what the server's state decides (login, pause, monitors) is checked
        // again. The general path below costs ~200 instructions more an event.
        if !inline
            && self.batched_last == Some(CommandId::EvtAdd)
            && let Some(event) = Add::next_in_run(args)
            && self.last_name.is(name)
            && self.authenticated(shared)
            && !shared.pause.is_on()
            && !shared.monitors.active()
        {
            self.batch.push(buf, event);
            return Flow::Continue;
        }
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
        let cmd = match super::parse_in(args, shared.store.window(), &mut self.last_name) {
            Ok(cmd) => cmd,
            Err(refused) => return self.refuse(shared, buf, refused.id, refused.error, out),
        };
        let id = cmd.id();
        if shared.log.loading() && !id.spec().has_flag("loading") {
            let e = ReplyError::new(ErrorKind::Loading, "Redis is loading the dataset in memory");
            return self.refuse(shared, buf, Some(id), e, out);
        }
        // Cluster mode: a user another node serves is answered with where it lives.
        // Standalone, this is one test of a `None`.
        if let Some(cluster) = shared.cluster.as_deref()
            && let Err(moved) = id.spec().key.route(cluster, args)
        {
            return self.refuse(shared, buf, Some(id), moved, out);
        }
        let (batched, read) = if inline || self.client.multi.is_some() {
            (None, None)
        } else {
            (cmd.batched_event(), cmd.batched_read())
        };
        // A run holds events or queries of one command, not both: a query must see
        // the events sent before it.
        let joins = match (&batched, &read) {
            (Some(_), _) => self.reads.is_empty(),
            (None, Some(_)) => self.batch.is_empty() && self.reads.takes(id),
            (None, None) => false,
        };
        // Everything before this request is answered first (and may have to wait:
        // then this request comes back, nothing of it done yet).
        if (!joins || shared.pause.is_on()) && self.flush(shared, buf, out) != Flow::Continue {
            return AGAIN;
        }
        if let Some(until) = paused(shared, id) {
            return Flow::Postpone(until);
        }
        // A queued command is shown to monitors when EXEC runs it.
        if self.client.multi.is_some() && !tx::runs_inside_multi(id) {
            return self.queue(shared, id, args, out);
        }
        monitor(shared, &self.client.info, id, args);
        if let Some(event) = batched {
            self.batch.push(buf, event);
            self.batched_last = Some(id);
            return Flow::Continue;
        }
        if let Some(read) = read {
            if self.reads.push(buf, id, read) {
                return Flow::Continue;
            }
            // Not in the read buffer after all: answered on its own, after the run.
            if self.flush(shared, buf, out) != Flow::Continue {
                return AGAIN;
            }
        }
        self.run(shared, cmd, args, out)
    }

    /// Inside `MULTI`: queues the command (`+QUEUED`), or refuses it and flags the
    /// transaction, so that `EXEC` aborts.
    fn queue(
        &mut self,
        shared: &Shared,
        id: CommandId,
        args: Args<'_>,
        out: &mut BytesMut,
    ) -> Flow {
        let Some(tx) = &mut self.client.multi else {
            return Flow::Continue;
        };
        let reply = match tx.queue(id, args) {
            Ok(()) => Reply::Simple(Cow::Borrowed("QUEUED")),
            Err(e) => {
                tx.flag();
                shared.stats.commands.reject(id as usize);
                Reply::Error(e)
            }
        };
        self.replies.push(reply);
        self.encode(shared, out);
        Flow::Continue
    }

    /// Runs a command that is not batched: timed, through the gate (but `EXEC`), its
    /// reply encoded now or, when it must wait, once [`Session::settle`] has it.
    fn run(
        &mut self,
        shared: &Shared,
        cmd: super::Command<'_>,
        args: Args<'_>,
        out: &mut BytesMut,
    ) -> Flow {
        let id = cmd.id();
        self.note_command(shared, id);
        let (was_in, failures) = (self.client.authenticated, self.client.auth_failures);
        let mut ctx = Ctx {
            shared,
            client: &mut self.client,
            after: After::Continue,
            now: None,
            later: None,
            deferred: None,
        };
        let watch = Stopwatch::start();
        let reply = if id == CommandId::Exec {
            // EXEC closes the gate itself: a pass held here would never drain.
            run_timed(&mut ctx, cmd, args, watch)
        } else {
            let _pass = shared.gate.pass();
            run_timed(&mut ctx, cmd, args, watch)
        };
        if let Some(later) = ctx.later.take() {
            self.waiting = Some(Waiting::Later {
                later,
                id,
                started: watch.started(),
                args: OwnedArgs::copy(args),
            });
            return Flow::Wait { again: false };
        }
        if let Some(deferred) = ctx.deferred.take() {
            self.waiting = Some(Waiting::Command {
                deferred,
                id,
                started: watch.started(),
            });
            return Flow::Wait { again: false };
        }
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
        self.then(shared, after, failures)
    }

    /// What the connection does after a command: go on, close, stop the server, or,
    /// after a failed login, wait (the brake) or close (too many).
    fn then(&self, shared: &Shared, after: After, failures_before: u32) -> Flow {
        match after {
            After::Close => Flow::Close,
            After::Shutdown => Flow::Shutdown,
            After::Continue if self.client.auth_failures > failures_before => {
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
    /// the requests before it; a refusal while queueing dooms the transaction.
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
        if let Some(tx) = &mut self.client.multi {
            tx.flag();
        }
        self.reply_error(shared, e, out);
        Flow::Continue
    }

    /// Admits the batched events and encodes their replies. The connection calls it
    /// once its read buffer holds no complete request, before it moves the buffer.
    /// [`Flow::Wait`] when the replies wait for the log (`appendfsync always`).
    pub fn flush(&mut self, shared: &Shared, buf: &[u8], out: &mut BytesMut) -> Flow {
        if !self.reads.is_empty() {
            let first = self.replies.len();
            let started = Stopwatch::start();
            let id = {
                let _pass = shared.gate.pass();
                let now = shared.clock.now();
                self.reads.flush(shared, buf, now, &mut self.replies)
            };
            self.record_batch(shared, first, started, id);
            self.encode(shared, out);
        }
        if self.batch.is_empty() {
            return Flow::Continue;
        }
        let first = self.replies.len();
        let started = Stopwatch::start();
        let pending = {
            let _pass = shared.gate.pass();
            self.batch
                .flush(shared, buf, &self.client.info, &mut self.replies)
        };
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

    /// Counts a batch's replies (from `first` on) as calls of `id`.
    fn record_batch(
        &self,
        shared: &Shared,
        first: usize,
        started: Stopwatch,
        id: Option<CommandId>,
    ) {
        let Some(id) = id else {
            return;
        };
        let done = self.replies.get(first..).unwrap_or_default();
        timing::record_batch(shared, done, started, id);
        self.note_command(shared, id);
    }

    /// Awaits the replies [`Flow::Wait`] announced and encodes them. The
    /// connection's thread serves its other connections meanwhile.
    pub async fn settle(&mut self, shared: &Shared, out: &mut BytesMut) {
        match self.waiting.take() {
            None => return,
            Some(Waiting::Later {
                later,
                id,
                started,
                args,
            }) => {
                let reply = later.await;
                let took = started.elapsed();
                record(shared, id, took, &reply, args.args(), &self.client.info);
                self.replies.push(reply.unwrap_or_else(Reply::Error));
            }
            Some(Waiting::Batch {
                pending,
                id,
                started,
            }) => {
                pending.ticket().clone().wait().await;
                let first = self.replies.len();
                pending.finish(shared, &self.client.info, &mut self.replies);
                self.record_batch(shared, first, started, id);
            }
            Some(Waiting::Command {
                deferred,
                id,
                started,
            }) => {
                deferred.ticket.clone().wait().await;
                let reply = (deferred.finish)(shared, &self.client.info);
                let failed = u64::from(matches!(reply, Reply::Error(_)));
                shared
                    .stats
                    .commands
                    .record(id as usize, 1, started.elapsed(), failed);
                self.replies.push(reply);
            }
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

    /// Encodes the pending replies in the client's protocol, counting errors by kind
    /// (replies `CLIENT REPLY` turned off are counted, not sent).
    fn encode(&mut self, shared: &Shared, out: &mut BytesMut) {
        // Accepted events' `+OK`s are counted and written a run at a time.
        let mut oks = 0;
        for reply in self.replies.drain(..) {
            if let (Reply::Ok, ReplyMode::On) = (&reply, self.client.reply_mode) {
                oks += 1;
                // An `Ok` owns nothing: this skips a call of the enum's drop glue
                // for every event's reply (~28 instructions).
                std::mem::forget(reply);
                continue;
            }
            if oks > 0 {
                protocol::encode_oks(oks, self.client.resp, out);
                oks = 0;
            }
            if let Reply::Error(e) = &reply {
                shared.stats.count_error(e.kind);
            }
            match self.client.reply_mode {
                ReplyMode::On => {}
                ReplyMode::Off => continue,
                ReplyMode::Skip => {
                    self.skipping = !self.skipping;
                    if !self.skipping {
                        self.client.reply_mode = ReplyMode::On;
                    }
                    continue;
                }
            }
            protocol::encode(&reply, self.client.resp, out);
        }
        if oks > 0 {
            protocol::encode_oks(oks, self.client.resp, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
