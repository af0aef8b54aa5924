//! `EVT.CLOCK [SET <unix> | ADVANCE <seconds>] [LOCAL]`: reads the server's `now`, or
//! moves the manual clock — of every node of a cluster, unless `LOCAL`, so that the
//! nodes keep reading the window at the same second.

use super::global::{self, Scope};
use super::spec::{ArgDoc, LOCAL_ARG, Spec, one_of, required_token};
use super::{Cmd, Ctx, Cursor};
use crate::cluster::Ask;
use crate::cluster::merge::Same;
use crate::error::ReplyError;
use crate::protocol::Reply;

/// What `EVT.CLOCK` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Get,
    Set(i64),
    Advance(i64),
}

/// `EVT.CLOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvtClock {
    pub mv: Move,
    pub scope: Scope,
}

const MOVES: &[ArgDoc] = &[
    required_token("unix-seconds", "SET", "integer"),
    required_token("seconds", "ADVANCE", "integer"),
];

impl<'a> Cmd<'a> for EvtClock {
    const SPEC: &'static Spec = &Spec::new(
        "evt.clock",
        -1,
        &["fast"],
        "module",
        "Returns the server's now; SET or ADVANCE move the manual clock (of every node of a cluster unless LOCAL).",
        &[one_of("move", MOVES), LOCAL_ARG],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let mv = if c.remaining() == 0 {
            Move::Get
        } else if c.eat("SET") {
            Move::Set(c.int()?)
        } else if c.eat("ADVANCE") {
            Move::Advance(c.int()?)
        } else {
            return Err(ReplyError::syntax());
        };
        let scope = match (mv, global::scope(c)?) {
            // `AT` is how shares are read; a clock is not read at another instant.
            (_, Scope::At(_)) => return Err(ReplyError::syntax()),
            (_, scope) => scope,
        };
        Ok(EvtClock { mv, scope })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let cluster = match ctx.shared.cluster.as_ref() {
            Some(c) if self.scope == Scope::Cluster && !c.alone() => Some(c.clone()),
            _ => None,
        };
        if cluster.is_some() && self.mv != Move::Get && ctx.in_transaction() {
            return Err(ReplyError::err(
                "EVT.CLOCK cannot move the other nodes' clocks inside MULTI; \
                 move them outside it, or add LOCAL",
            ));
        }
        let clock = &ctx.shared.clock;
        let moved = match self.mv {
            Move::Get => return Ok(Reply::Int(ctx.now())),
            Move::Set(to) => clock.set(to),
            Move::Advance(by) => clock.advance(by),
        };
        ctx.shared.expiry_wake.notify_one();
        let now = moved.map_err(|e| ReplyError::err(e.to_string()))?;
        // The log keeps the manual clock too (restarts resume it); with
        // appendfsync always, the reply waits until that is on disk.
        let logged = ctx.shared.log.clock_moved(now);
        // Inside a transaction, the commands after this one read the moved clock.
        if ctx.now.is_some() {
            ctx.now = Some(now);
        }
        let Some(cluster) = cluster else {
            if let Some(ticket) = logged {
                ctx.defer(ticket, move |_, _| Reply::Int(now));
            }
            return Ok(Reply::Int(now));
        };
        // Every node is put at this node's new `now` (SET, even for ADVANCE), so
        // the nodes agree afterwards even if they did not quite agree before.
        let ask = Ask {
            request: ["EVT.CLOCK", "SET", &now.to_string(), "LOCAL"]
                .map(|w| w.as_bytes().to_vec())
                .to_vec(),
            local: Reply::Int(now),
            merge: Same,
            what: format!("EVT.CLOCK (moved to {now} on this node)"),
            hint: "send EVT.CLOCK SET to the nodes named, or to every node with LOCAL",
        };
        let password = ctx.shared.settings.password();
        ctx.reply_later(cluster.gather(ask, password));
        Ok(Reply::Null)
    }
}
