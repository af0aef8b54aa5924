//! Queries about the whole window — `EVT.TOTAL`, `EVT.TYPE`, and the analytics that
//! follow them (`EVT.TOP`, `EVT.ACTIVE`, `EVT.SERIES TOTAL|TYPE`) — answered for the
//! whole cluster from whichever node a client asks.
//!
//! Such a command takes `[LOCAL]` after its other arguments: without it, in cluster
//! mode, the node reads its own share at its `now`, asks every other node for theirs
//! with the same command plus `LOCAL AT <now>`, and merges them
//! ([`crate::cluster::merge`]); with it, the node answers with its own share. `AT
//! <unix-seconds>` is how nodes pass their `now` to each other: the share is read at
//! that second, which must be within [`MAX_SKEW`] of this node's clock (outside it the
//! node refuses, rather than answer for another second). Outside cluster mode a node's
//! share is the whole answer, and `LOCAL` changes nothing.
//!
//! A query plugs in with three things (see [`answer`]): the words asking another node
//! for its share, how to read this node's share at a given `now`, and a
//! [`Merge`](crate::cluster::merge::Merge).

use super::{Ctx, Cursor, Later};
use crate::cluster::Ask;
use crate::cluster::merge::Merge;
use crate::error::ReplyError;
use crate::protocol::Reply;
use crate::shared::Shared;

/// Most seconds a share's `AT <now>` may differ from this node's clock. Nodes' wall
/// clocks agree to milliseconds under NTP, so two readings differ by at most the
/// one second boundary between them; the manual clock is moved cluster-wide and
/// agrees exactly. More means a node's clock is wrong, and its share would be of
/// another window.
pub const MAX_SKEW: i64 = 1;

/// Whose answer a query gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole cluster's (this node's alone outside cluster mode).
    Cluster,
    /// This node's share (`LOCAL`).
    Local,
    /// This node's share at another node's `now` (`LOCAL AT <now>`).
    At(i64),
}

/// The trailing `[WINDOW <s>] [LOCAL [AT <now>]]` (either order), then the end.
pub fn window_and_scope(c: &mut Cursor<'_>) -> Result<(Option<u32>, Scope), ReplyError> {
    let mut span = None;
    let mut scope = None;
    while c.remaining() > 0 {
        if span.is_none() && c.eat("WINDOW") {
            span = Some(c.window_value()?);
        } else if scope.is_none() && c.eat("LOCAL") {
            scope = Some(local_at(c)?);
        } else {
            return Err(ReplyError::syntax());
        }
    }
    Ok((span, scope.unwrap_or(Scope::Cluster)))
}

/// A trailing `[LOCAL [AT <now>]]`, then the end.
pub fn scope(c: &mut Cursor<'_>) -> Result<Scope, ReplyError> {
    if c.remaining() == 0 {
        return Ok(Scope::Cluster);
    }
    if !c.eat("LOCAL") {
        return Err(ReplyError::syntax());
    }
    let scope = local_at(c)?;
    c.finish()?;
    Ok(scope)
}

/// What follows `LOCAL`: `AT <now>`, or nothing.
pub fn local_at(c: &mut Cursor<'_>) -> Result<Scope, ReplyError> {
    if c.eat("AT") {
        Ok(Scope::At(c.int()?))
    } else {
        Ok(Scope::Local)
    }
}

/// `WINDOW <s>` as words of a request, when a span was given.
pub fn window_words(span: Option<u32>) -> Vec<Vec<u8>> {
    match span {
        Some(s) => vec![b"WINDOW".to_vec(), s.to_string().into_bytes()],
        None => Vec::new(),
    }
}

/// The instant a query reads: the clock, or the asking node's `now` (checked).
pub fn instant(ctx: &Ctx<'_>, scope: Scope) -> Result<i64, ReplyError> {
    let now = ctx.now();
    match scope {
        Scope::At(at) if (at - now).abs() > MAX_SKEW => Err(ReplyError::err(format!(
            "asked for the window at {at}, but this node's clock reads {now}: more than \
             {MAX_SKEW} s apart (check the nodes' clocks, or EVT.CLOCK SET with the manual clock)"
        ))),
        // The store never reads before its latest `now`: a share asked for a second
        // this node has passed is read at its own second, within MAX_SKEW.
        Scope::At(at) => Ok(at),
        Scope::Cluster | Scope::Local => Ok(now),
    }
}

/// This node's share of a cluster-wide answer: read already, or still being read (a
/// scan that yields to other clients between its steps).
pub enum Share {
    Ready(Reply),
    Later(Later),
}

/// Whether a query in `scope` gathers the other nodes' shares (cluster mode, more
/// than one node, no `LOCAL`): some shares are then lists a merge needs whole
/// (`EVT.ACTIVE TYPES`, `EVT.TOP TYPES`) rather than the answer itself.
pub fn gathering(ctx: &Ctx<'_>, scope: Scope) -> bool {
    scope == Scope::Cluster && ctx.shared.cluster.as_ref().is_some_and(|c| !c.alone())
}

/// Answers a cluster-wide query: `local` reads this node's share at a `now`; in
/// cluster mode without `LOCAL` the other nodes are asked with what `request` builds
/// (the command and its arguments, without any `LOCAL`; built only then) followed by `LOCAL AT <now>`, and the
/// shares merged by `merge`. The reply then comes later ([`Ctx::reply_later`]).
pub fn answer<M: Merge>(
    ctx: &mut Ctx<'_>,
    scope: Scope,
    request: impl FnOnce() -> Vec<Vec<u8>>,
    merge: M,
    local: impl FnOnce(&Shared, i64) -> Result<Reply, ReplyError>,
) -> Result<Reply, ReplyError> {
    let now = instant(ctx, scope)?;
    let share = local(ctx.shared, now)?;
    answer_share(ctx, scope, now, request, merge, Share::Ready(share))
}

/// As [`answer`], with this node's share read at `now` (from [`instant`]) already, or
/// on its way.
pub fn answer_share<M: Merge>(
    ctx: &mut Ctx<'_>,
    scope: Scope,
    now: i64,
    request: impl FnOnce() -> Vec<Vec<u8>>,
    merge: M,
    share: Share,
) -> Result<Reply, ReplyError> {
    let cluster = match ctx.shared.cluster.as_ref() {
        Some(c) if gathering(ctx, scope) => c.clone(),
        _ => {
            return match share {
                Share::Ready(reply) => Ok(reply),
                Share::Later(later) => {
                    ctx.reply_later(later);
                    Ok(Reply::Null)
                }
            };
        }
    };
    let request = request();
    let what = String::from_utf8_lossy(request.first().map_or(&b""[..], |w| w)).to_uppercase();
    if ctx.in_transaction() {
        return Err(ReplyError::err(format!(
            "{what} for the whole cluster cannot run inside MULTI (the other nodes' shares \
             would come later than the transaction's instant); add LOCAL for this node's share"
        )));
    }
    let mut request = request;
    request.extend([
        b"LOCAL".to_vec(),
        b"AT".to_vec(),
        now.to_string().into_bytes(),
    ]);
    let password = ctx.shared.settings.password();
    let ask = move |local| Ask {
        request,
        local,
        merge,
        what,
        hint: "add LOCAL for this node's share only",
    };
    match share {
        Share::Ready(local) => ctx.reply_later(cluster.gather(ask(local), password)),
        Share::Later(later) => ctx.reply_later(Box::pin(async move {
            let local = later.await?;
            cluster.gather(ask(local), password).await
        })),
    }
    Ok(Reply::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<(Option<u32>, Scope), ReplyError> {
        let line = format!("{line}\r\n");
        let limits = crate::protocol::Limits {
            max_bulk_len: 1024,
            max_args: 16,
        };
        let mut buf = crate::protocol::ArgBuf::default();
        crate::protocol::parse_request(line.as_bytes(), &limits, &mut buf).unwrap();
        let mut c = Cursor::new(buf.args(line.as_bytes()), 1, 60);
        window_and_scope(&mut c)
    }

    #[test]
    fn window_and_scope_in_either_order() {
        assert_eq!(parse("evt.total").unwrap(), (None, Scope::Cluster));
        assert_eq!(
            parse("evt.total WINDOW 5").unwrap(),
            (Some(5), Scope::Cluster)
        );
        assert_eq!(parse("evt.total local").unwrap(), (None, Scope::Local));
        assert_eq!(
            parse("evt.total WINDOW 5 LOCAL AT 100").unwrap(),
            (Some(5), Scope::At(100))
        );
        assert_eq!(
            parse("evt.total LOCAL AT 100 WINDOW 5").unwrap(),
            (Some(5), Scope::At(100))
        );
        assert!(parse("evt.total LOCAL LOCAL").is_err());
        assert!(parse("evt.total WINDOW 5 WINDOW 6").is_err());
        assert!(parse("evt.total LOCAL AT").is_err());
        assert!(parse("evt.total AT 5").is_err());
        assert!(parse("evt.total WINDOW 61").is_err());
    }
}
