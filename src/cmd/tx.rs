//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, with Redis's
//! semantics and wording.
//!
//! While a connection is in `MULTI`, the dispatcher ([`super::session`]) queues its
//! commands (a copy of their arguments) and answers `+QUEUED`; a command refused while
//! queueing (unknown, wrong arity, not allowed in a transaction, over the limits)
//! makes `EXEC` fail with `EXECABORT`. `EXEC` closes the [`crate::gate::Gate`] — no
//! event from another connection is applied and no second expires until it is done —
//! reads the clock once, and runs the queue at that one `now`: `MULTI; EVT.TOTAL;
//! EVT.USER a; EVT.USER b; EXEC` always adds up, even under concurrent writers.
//!
//! An `EXEC` holds every other client for as long as it runs, so a transaction is
//! bounded: at most [`MAX_TX_COMMANDS`] commands, [`MAX_TX_EVENTS`] events and
//! [`MAX_TX_BYTES`] bytes of arguments — about 10 ms of work at the most.

use std::sync::atomic::Ordering;

use super::spec::{KeyPos, Spec, arg, multiple};
use super::timing::run_timed;
use super::{Cmd, CommandId, Ctx, Cursor, session};
use crate::error::{ErrorKind, ReplyError};
use crate::protocol::{Args, OwnedArgs, Reply};
use crate::stats::Stopwatch;

/// Most commands one transaction may queue.
pub const MAX_TX_COMMANDS: usize = 1000;
/// Most events one transaction may add (`EVT.ADD` counts one, `EVT.MADD` its events).
pub const MAX_TX_EVENTS: usize = 10_000;
/// Most bytes of arguments one transaction may queue.
pub const MAX_TX_BYTES: usize = 16 * 1024 * 1024;

/// A connection's open transaction.
#[derive(Debug, Default)]
pub struct Transaction {
    queued: Vec<OwnedArgs>,
    /// A command was refused while queueing: `EXEC` must fail.
    dirty: bool,
    events: usize,
    bytes: usize,
}

impl Transaction {
    /// Marks the transaction failed (a command was refused while queueing).
    pub fn flag(&mut self) {
        self.dirty = true;
    }

    /// Queues command `id` with arguments `args`, or says why not.
    pub fn queue(&mut self, id: CommandId, args: Args<'_>) -> Result<(), ReplyError> {
        if id.spec().has_flag("no_multi") {
            return Err(ReplyError::err("Command not allowed inside a transaction"));
        }
        let events = match id {
            CommandId::EvtAdd => 1,
            CommandId::EvtMadd => args.len().saturating_sub(1),
            _ => 0,
        };
        let owned = OwnedArgs::copy(args);
        if self.queued.len() >= MAX_TX_COMMANDS
            || self.events + events > MAX_TX_EVENTS
            || self.bytes + owned.size() > MAX_TX_BYTES
        {
            return Err(ReplyError::err(format!(
                "transaction too long: at most {MAX_TX_COMMANDS} commands, {MAX_TX_EVENTS} events \
                 and {MAX_TX_BYTES} bytes, so that EXEC never holds other clients for long"
            )));
        }
        self.events += events;
        self.bytes += owned.size();
        self.queued.push(owned);
        Ok(())
    }
}

/// Commands a connection in `MULTI` runs at once instead of queueing.
pub fn runs_inside_multi(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::Exec
            | CommandId::Discard
            | CommandId::Multi
            | CommandId::Watch
            | CommandId::Quit
            | CommandId::Reset
    )
}

const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];

/// `MULTI`.
#[derive(Debug)]
pub struct Multi;

impl<'a> Cmd<'a> for Multi {
    const SPEC: &'static Spec = &Spec {
        since: "1.2.0",
        ..Spec::new("multi", 1, TX, "transactions", "Starts a transaction.", &[])
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Multi)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        if ctx.client.multi.is_some() {
            return Err(ReplyError::err("MULTI calls can not be nested"));
        }
        ctx.client.multi = Some(Transaction::default());
        Ok(Reply::Ok)
    }
}

/// `EXEC`.
#[derive(Debug)]
pub struct Exec;

impl<'a> Cmd<'a> for Exec {
    const SPEC: &'static Spec = &Spec {
        since: "1.2.0",
        complexity: "Depends on commands in the transaction",
        ..Spec::new(
            "exec",
            1,
            &["noscript", "loading", "stale", "skip_slowlog"],
            "transactions",
            "Executes all commands in a transaction.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Exec)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let Some(tx) = ctx.client.multi.take() else {
            return Err(ReplyError::err("EXEC without MULTI"));
        };
        let shared = ctx.shared;
        if tx.dirty {
            ctx.client.watching.clear(&shared.watches);
            return Err(ReplyError::new(
                ErrorKind::ExecAbort,
                "Transaction discarded because of previous errors.",
            ));
        }
        // Closed before the watch check, so nothing can touch a watched user between
        // the check and the commands.
        let _closed = shared.gate.close();
        let touched = ctx.client.watching.dirty.load(Ordering::Relaxed);
        ctx.client.watching.clear(&shared.watches);
        if touched {
            return Ok(Reply::NullArray);
        }
        let now = shared.clock.now();
        let saved_now = ctx.now.replace(now);
        let mut replies = Vec::with_capacity(tx.queued.len());
        // With `appendfsync always`, events inside the transaction are answered once
        // durable: their places in the array are filled in when the log says so.
        let mut held: Vec<(usize, super::Deferred)> = Vec::new();
        for owned in &tx.queued {
            let reply = run_queued(ctx, owned.args());
            if let Some(d) = ctx.deferred.take() {
                held.push((replies.len(), d));
            }
            replies.push(reply);
        }
        ctx.now = saved_now;
        if let Some(ticket) = held.last().map(|(_, d)| d.ticket.clone()) {
            // The log fulfils tickets in order: the last one covers them all.
            ctx.defer(ticket, move |shared, peer| {
                for (i, d) in held {
                    if let Some(slot) = replies.get_mut(i) {
                        *slot = (d.finish)(shared, peer);
                    }
                }
                Reply::Array(replies)
            });
            return Ok(Reply::Null);
        }
        Ok(Reply::Array(replies))
    }
}

/// `DISCARD`.
#[derive(Debug)]
pub struct Discard;

impl<'a> Cmd<'a> for Discard {
    const SPEC: &'static Spec = &Spec {
        since: "2.0.0",
        ..Spec::new(
            "discard",
            1,
            TX,
            "transactions",
            "Discards a transaction.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Discard)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        if ctx.client.multi.take().is_none() {
            return Err(ReplyError::err("DISCARD without MULTI"));
        }
        ctx.client.watching.clear(&ctx.shared.watches);
        Ok(Reply::Ok)
    }
}

/// `WATCH user_id [user_id ...]`.
#[derive(Debug)]
pub struct Watch<'a> {
    users: Vec<&'a [u8]>,
}

impl<'a> Cmd<'a> for Watch<'a> {
    const SPEC: &'static Spec = &Spec {
        since: "2.2.0",
        complexity: "O(1) for every user",
        key: KeyPos::From(1),
        ..Spec::new(
            "watch",
            -2,
            TX,
            "transactions",
            "Watches users: EXEC answers a null array if an event for one is applied first.",
            &[multiple(arg("user_id", "key"))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Watch { users: c.rest() })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        if ctx.client.multi.is_some() {
            return Err(ReplyError::err("WATCH inside MULTI is not allowed"));
        }
        let w = &mut ctx.client.watching;
        for user in self.users {
            if !w.users.iter().any(|u| **u == *user) {
                ctx.shared.watches.watch(user, &w.dirty);
                w.users.push(user.into());
            }
        }
        Ok(Reply::Ok)
    }
}

/// `UNWATCH`.
#[derive(Debug)]
pub struct Unwatch;

impl<'a> Cmd<'a> for Unwatch {
    const SPEC: &'static Spec = &Spec {
        since: "2.2.0",
        ..Spec::new(
            "unwatch",
            1,
            TX,
            "transactions",
            "Forgets all watched users.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Unwatch)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        ctx.client.watching.clear(&ctx.shared.watches);
        Ok(Reply::Ok)
    }
}

/// Runs one queued command of a transaction (`EXEC`), its reply or error.
fn run_queued(ctx: &mut Ctx<'_>, args: Args<'_>) -> Reply {
    let cmd = match super::parse(args, ctx.shared.store.window()) {
        Ok(cmd) => cmd,
        Err(refused) => return Reply::Error(refused.error),
    };
    session::monitor(ctx.shared, &ctx.client.info, cmd.id(), args);
    run_timed(ctx, cmd, args, Stopwatch::start()).unwrap_or_else(Reply::Error)
}
