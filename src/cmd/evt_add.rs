//! `EVT.ADD` and `EVT.MADD`: events in (see [`crate::ingest`]), routed by user in
//! cluster mode.

use super::spec::{KeyPos, Spec, arg, multiple, optional};
use super::{Cmd, Ctx, Cursor};
use crate::config::Settings;
use crate::error::ReplyError;
use crate::ingest::{self, MAX_EVENT_REPLY, Submitted};
use crate::protocol::{Args, Reply};

/// `EVT.ADD [user_id] <json>`: counts one event. With the user id first (the keyed
/// form cluster clients route by), the JSON's `user_id` must be that user, and may be
/// left out.
#[derive(Debug)]
pub struct Add<'a> {
    event: Submitted<'a>,
}

impl<'a> Add<'a> {
    /// The event of `EVT.ADD <json>` (`args` with the name), read as [`Cmd::parse`]
    /// reads it: the session's way for the next request of a pipelined run. The keyed
    /// form is left to the general path, which routes it in cluster mode.
    #[inline]
    pub fn next_in_run(args: Args<'a>) -> Option<Submitted<'a>> {
        match args.len() {
            2 => args.get(1).map(Submitted::json),
            _ => None,
        }
    }
}

impl<'a> Cmd<'a> for Add<'a> {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(1)",
        key: KeyPos::AtWhen { at: 1, argc: 3 },
        ..Spec::new(
            "evt.add",
            -2,
            &["write", "fast"],
            "module",
            "Counts one event given as a JSON object; with the user id first, cluster clients route it to the user's node.",
            &[optional(arg("user_id", "key")), arg("json", "string")],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let event = match c.remaining() {
            1 => Submitted::json(c.required()),
            2 => Submitted {
                key: Some(c.required()),
                json: c.required(),
            },
            _ => return Err(ReplyError::arity(Self::SPEC.name)),
        };
        Ok(Add { event })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let mut replies = Vec::with_capacity(1);
        if let Some(p) = ingest::admit(
            ctx.shared,
            &[self.event],
            &ctx.client.info,
            ctx.now,
            &mut replies,
        ) {
            // appendfsync always: answered once the event is on disk.
            ctx.defer(p.ticket().clone(), move |shared, peer| {
                let mut replies = Vec::with_capacity(1);
                p.finish(shared, peer, &mut replies);
                replies.pop().unwrap_or(Reply::Ok)
            });
        }
        Ok(replies.pop().unwrap_or(Reply::Ok))
    }

    fn batched_event(&self) -> Option<Submitted<'a>> {
        Some(self.event)
    }
}

/// Most events in one `EVT.MADD`: its reply (at most [`MAX_EVENT_REPLY`] bytes per
/// event, 25 MB here) stays well inside the default output limit, and one command
/// holds its serving thread for a bounded time (~0.1 s).
pub const MAX_MADD_EVENTS: usize = 100_000;

/// `EVT.MADD <json> [json ...]`: counts several events, one result each.
#[derive(Debug)]
pub struct MultiAdd<'a> {
    events: Vec<Submitted<'a>>,
}

impl<'a> Cmd<'a> for MultiAdd<'a> {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(N) where N is the number of events",
        ..Spec::new(
            "evt.madd",
            -2,
            &["write"],
            "module",
            "Counts several events; replies with one result per event.",
            &[multiple(arg("json", "string"))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let events = c.rest().into_iter().map(Submitted::json).collect();
        Ok(MultiAdd { events })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        // Refused whole, before anything is applied: a client that reads its replies
        // is never cut off for the size of one, and never left not knowing which of
        // its events counted.
        let output = Settings::size(&ctx.shared.settings.client_output_buffer_limit);
        let most = MAX_MADD_EVENTS.min(output / 2 / MAX_EVENT_REPLY);
        if self.events.len() > most {
            return Err(ReplyError::err(format!(
                "EVT.MADD takes at most {most} events (its reply must fit in half of \
                 client-output-buffer-limit); send them in several commands"
            )));
        }
        let mut each = Vec::with_capacity(self.events.len());
        if let Some(p) = ingest::admit_all(
            ctx.shared,
            &self.events,
            &ctx.client.info,
            ctx.now,
            &mut each,
        )? {
            // appendfsync always: answered once the events are on disk.
            ctx.defer(p.ticket().clone(), move |shared, peer| {
                let mut each = Vec::new();
                p.finish(shared, peer, &mut each);
                Reply::Array(each)
            });
        }
        Ok(Reply::Array(each))
    }
}
