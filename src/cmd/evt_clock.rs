//! `EVT.CLOCK [SET <unix> | ADVANCE <seconds>]`: reads the server's `now`, or moves
//! the manual clock.

use super::spec::{ArgDoc, Spec, one_of, required_token};
use super::{Cmd, Ctx, Cursor};
use crate::error::ReplyError;
use crate::protocol::Reply;

/// What `EVT.CLOCK` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvtClock {
    Get,
    Set(i64),
    Advance(i64),
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
        "Returns the server's now; SET or ADVANCE move the manual clock.",
        &[one_of("move", MOVES)],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        if c.remaining() == 0 {
            Ok(EvtClock::Get)
        } else if c.eat("SET") {
            Ok(EvtClock::Set(c.int()?))
        } else if c.eat("ADVANCE") {
            Ok(EvtClock::Advance(c.int()?))
        } else {
            Err(ReplyError::syntax())
        }
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let clock = &ctx.shared.clock;
        let moved = match self {
            EvtClock::Get => return Ok(Reply::Int(clock.now())),
            EvtClock::Set(to) => clock.set(to),
            EvtClock::Advance(by) => clock.advance(by),
        };
        ctx.shared.expiry_wake.notify_one();
        let now = moved.map_err(|e| ReplyError::err(e.to_string()))?;
        // The log keeps the manual clock too (restarts resume it); with
        // appendfsync always, the reply waits until that is on disk.
        if let Some(ticket) = ctx.shared.log.clock_moved(now) {
            ctx.defer(ticket, move |_, _| Reply::Int(now));
        }
        Ok(Reply::Int(now))
    }
}
